#include "tools/goringctl/commands.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "tools/goringctl/admin_client.hpp"
#include "tools/goringctl/cli.hpp"
#include "tools/goringctl/error.hpp"
#include "tools/goringctl/redis_directory.hpp"
#include "tools/goringctl/table.hpp"
#include "tools/goringctl/token.hpp"

namespace goringctl {

namespace {

using allocator = rapidjson::Document::AllocatorType;

/// What a command works with: the command line, Redis when --redis names
/// it, the output streams, and the exit status so far.
struct context {
  const invocation& in;
  std::ostream& out;
  std::ostream& err;
  std::unique_ptr<redis_directory> redis;
  int status = 0;

  redis_directory& directory() {
    if (!redis)
      redis = !in.cluster.empty() ? redis_directory::through_cluster(in.cluster)
              : !in.sentinels.empty()
                ? redis_directory::through_sentinels(in.sentinels, in.sentinel_master)
                : std::make_unique<redis_directory>(in.redis_addr);
    return *redis;
  }

  /// An instance that failed while others answered: said on stderr, the
  /// rest of the answer still printed, the exit status 1.
  void report(const std::string& message) {
    err << "goringctl: " << message << '\n';
    status = exit_failure;
  }
};

/// One instance a command talks to. With --admin, server_id and instance
/// are unknown and left empty.
struct target {
  std::string server_id;
  std::string instance;
  admin_client client;
};

/// "SERVER (HOST:PORT)" or "HOST:PORT", for messages.
std::string name_of(const target& t) {
  return t.server_id.empty() ? t.client.address() : t.server_id + " (" + t.client.address() + ")";
}

/// The instance --admin names (or the default admin address).
target admin_target(const context& ctx) {
  return target{{}, {}, admin_client{ctx.in.admin_url, ctx.in.token}};
}

target target_of(const context& ctx, const instance_entry& entry) {
  if (entry.admin.empty())
    throw error{"instance " + entry.server_id + " has no admin listener (ADMIN_PORT=0)"};
  return target{entry.server_id, entry.instance, admin_client{entry.admin, ctx.in.token}};
}

/// With --admin, that instance; with --redis, every live one. An instance
/// without an admin listener is reported and left out.
std::vector<target> targets(context& ctx) {
  if (!ctx.in.use_redis())
    return {admin_target(ctx)};
  std::vector<target> out;
  for (const auto& entry : ctx.directory().instances()) {
    try {
      out.push_back(target_of(ctx, entry));
    } catch (const error& e) {
      ctx.report(e.what());
    }
  }
  return out;
}

/// The instance that holds `user_id`'s connection, from its presence key
/// (`ws:user:{id}`).
target owner_of(context& ctx, const std::string& user_id) {
  auto server_id = ctx.directory().owner_server(user_id);
  if (!server_id)
    throw error{"user " + user_id + " is not connected (Redis has no "
                + ctx.directory().user_key(user_id) + ")"};
  auto entry = ctx.directory().instance(*server_id);
  if (!entry)
    throw error{"user " + user_id + " is held by " + *server_id
                + ", which is not live (no ws:server:" + *server_id + ")"};
  return target_of(ctx, *entry);
}

void set_string(rapidjson::Value& object, const char* name, const std::string& value,
                allocator& alloc) {
  rapidjson::Value text{value.c_str(), static_cast<rapidjson::SizeType>(value.size()), alloc};
  if (object.HasMember(name))
    object[name] = text;
  else
    object.AddMember(rapidjson::StringRef(name), text, alloc);
}

/// Names the instance a row came from, unless the row does itself.
void tag(rapidjson::Value& row, const target& t, allocator& alloc) {
  if (!row.IsObject())
    return;
  if (!t.server_id.empty() && !row.HasMember("server_id"))
    set_string(row, "server_id", t.server_id, alloc);
  if (!t.instance.empty() && !row.HasMember("instance"))
    set_string(row, "instance", t.instance, alloc);
}

/// GET `path` (a list) from every target: one array of all rows, each
/// tagged with its instance.
rapidjson::Document gather(context& ctx, const std::string& path) {
  rapidjson::Document all{rapidjson::kArrayType};
  auto list = targets(ctx);
  for (const auto& t : list) {
    try {
      auto rows = t.client.get_json(path);
      if (!rows.IsArray())
        throw error{"admin API at " + t.client.address() + " answered " + path
                    + " with something other than a list"};
      for (auto& row : rows.GetArray()) {
        rapidjson::Value copy{row, all.GetAllocator()};
        tag(copy, t, all.GetAllocator());
        all.PushBack(copy, all.GetAllocator());
      }
    } catch (const error& e) {
      // With one instance there is nothing else to show.
      if (!ctx.in.use_redis())
        throw;
      ctx.report(e.what());
    }
  }
  return all;
}

/// Columns with the instance first when rows come from several.
std::vector<column> with_server(const context& ctx, std::vector<column> columns) {
  if (ctx.in.use_redis())
    columns.insert(columns.begin(), column{"SERVER", {"server_id"}});
  return columns;
}

void print(context& ctx, const rapidjson::Value& value, const std::vector<column>& columns) {
  if (ctx.in.json)
    print_json(ctx.out, value);
  else if (value.IsArray())
    print_table(ctx.out, columns, value);
  else
    print_fields(ctx.out, value);
}

rapidjson::Value hash_object(const hash_fields& fields, allocator& alloc) {
  rapidjson::Value object{rapidjson::kObjectType};
  for (const auto& [name, value] : fields)
    set_string(object, name.c_str(), value, alloc);
  return object;
}

// -- The commands, one function each ------------------------------------------

int cmd_actors(context& ctx) {
  std::string path = "/admin/actors";
  if (auto kind = ctx.in.option("kind"); !kind.empty())
    path += "?kind=" + url_encode(kind);
  auto rows = gather(ctx, path);
  print(ctx, rows,
        with_server(ctx, {{"KIND", {"kind"}},
                          {"ID", {"id"}},
                          {"USER/SESSION", {"user_id", "session_id"}},
                          {"STATE", {"state"}},
                          {"AGE", {"age_seconds"}},
                          {"MAILBOX", {"mailbox"}},
                          {"HANDLED", {"handled"}}}));
  return ctx.status;
}

int cmd_users(context& ctx) {
  auto rows = gather(ctx, "/admin/users");
  print(ctx, rows,
        {{"USER", {"user_id"}},
         {"INSTANCE", {"server_id", "instance"}},
         {"SESSION", {"session_id"}},
         {"CONNECTED", {"connected_at"}},
         {"REMOTE", {"remote_addr"}}});
  return ctx.status;
}

int cmd_user(context& ctx) {
  const auto& user_id = ctx.in.args.at(0);
  auto t = ctx.in.use_redis() ? owner_of(ctx, user_id) : admin_target(ctx);
  auto user = t.client.get_json("/admin/users/" + url_encode(user_id),
                                "user " + user_id + " is not connected to " + name_of(t));
  if (!user.IsObject())
    throw error{"admin API at " + t.client.address()
                + " answered with something other than a user"};
  tag(user, t, user.GetAllocator());
  print(ctx, user, {});
  return ctx.status;
}

int cmd_calls(context& ctx) {
  auto rows = gather(ctx, "/admin/calls");
  std::vector<column> columns{{"SESSION", {"session_id"}}, {"STATE", {"state"}}};
  if (ctx.in.use_redis()) {
    // What Redis says beside what each call actor says: they should agree.
    for (auto& row : rows.GetArray()) {
      if (!row.IsObject() || !row.HasMember("session_id") || !row["session_id"].IsString())
        continue;
      std::string state;
      for (const auto& [name, value] : ctx.directory().session(row["session_id"].GetString()))
        if (name == "state")
          state = value;
      set_string(row, "redis_state", state, rows.GetAllocator());
    }
    columns.push_back({"REDIS", {"redis_state"}});
  }
  columns.insert(columns.end(), {{"CALLER", {"caller_id"}},
                                 {"CALLEE", {"callee_id"}},
                                 {"LOCAL", {"local_users"}},
                                 {"AGE", {"age_seconds"}}});
  print(ctx, rows, with_server(ctx, columns));
  return ctx.status;
}

int cmd_call(context& ctx) {
  const auto& session_id = ctx.in.args.at(0);
  auto path = "/admin/calls/" + url_encode(session_id);
  if (!ctx.in.use_redis()) {
    auto t = admin_target(ctx);
    auto call = t.client.get_json(path, "no call " + session_id + " on " + name_of(t));
    print(ctx, call, {});
    return ctx.status;
  }
  // Redis's hash and every instance's call actor for the session.
  rapidjson::Document answer{rapidjson::kObjectType};
  auto& alloc = answer.GetAllocator();
  set_string(answer, "session_id", session_id, alloc);
  auto fields = ctx.directory().session(session_id);
  rapidjson::Value redis_hash{rapidjson::kNullType};
  if (!fields.empty())
    redis_hash = hash_object(fields, alloc);
  rapidjson::Value actors{rapidjson::kArrayType};
  for (const auto& t : targets(ctx)) {
    try {
      if (auto call = t.client.find_json(path)) {
        rapidjson::Value copy{*call, alloc};
        tag(copy, t, alloc);
        actors.PushBack(copy, alloc);
      }
    } catch (const error& e) {
      ctx.report(e.what());
    }
  }
  if (redis_hash.IsNull() && actors.Empty() && ctx.status == 0)
    throw error{"no call " + session_id + ": neither Redis nor any instance knows it"};
  answer.AddMember("redis", redis_hash, alloc);
  answer.AddMember("actors", actors, alloc);
  if (ctx.in.json) {
    print_json(ctx.out, answer);
    return ctx.status;
  }
  if (answer["redis"].IsNull()) {
    ctx.out << "Redis: no call:session:" << session_id << "\n";
  } else {
    ctx.out << "Redis call:session:" << session_id << "\n";
    print_fields(ctx.out, answer["redis"]);
  }
  ctx.out << "\nCall actors\n";
  print_table(ctx.out,
              {{"SERVER", {"server_id"}},
               {"STATE", {"state"}},
               {"CALLER", {"caller_id"}},
               {"CALLEE", {"callee_id"}},
               {"LOCAL", {"local_users"}},
               {"AGE", {"age_seconds"}}},
              answer["actors"]);
  return ctx.status;
}

int cmd_instances(context& ctx) {
  rapidjson::Document all{rapidjson::kArrayType};
  auto& alloc = all.GetAllocator();
  if (!ctx.in.use_redis()) {
    auto one = admin_target(ctx).client.get_json("/admin/instance");
    all.PushBack(rapidjson::Value{one, alloc}, alloc);
  } else {
    for (const auto& entry : ctx.directory().instances()) {
      rapidjson::Value row{rapidjson::kObjectType};
      try {
        auto t = target_of(ctx, entry);
        auto answer = t.client.get_json("/admin/instance");
        if (answer.IsObject())
          row.CopyFrom(answer, alloc);
      } catch (const error& e) {
        ctx.report(e.what());
        set_string(row, "error", e.what(), alloc);
      }
      // Redis's word for what the instance did not say (it was unreachable).
      set_string(row, "server_id", entry.server_id, alloc);
      for (const auto& [name, value] : {std::pair{"instance", entry.instance},
                                        {"version", entry.version},
                                        {"admin", entry.admin}})
        if (!row.HasMember(name))
          set_string(row, name, value, alloc);
      // Unix seconds, a number as the admin API's times are.
      if (!row.HasMember("started_at") && !entry.started_at.empty()
          && entry.started_at.find_first_not_of("0123456789") == std::string::npos)
        row.AddMember("started_at", static_cast<int64_t>(std::stoll(entry.started_at)), alloc);
      all.PushBack(row, alloc);
    }
  }
  if (ctx.in.json) {
    print_json(ctx.out, all);
    return ctx.status;
  }
  for (auto& row : all.GetArray()) {
    auto flag = [&](const char* name) {
      return row.HasMember(name) && row[name].IsBool() && row[name].GetBool();
    };
    std::string status = row.HasMember("error") ? "unreachable"
                         : flag("draining")     ? "draining"
                         : flag("ready")        ? "ready"
                                                : "not ready";
    set_string(row, "status", status, alloc);
  }
  print_table(ctx.out,
              {{"SERVER", {"server_id"}},
               {"ADMIN", {"admin"}},
               {"VERSION", {"version"}},
               {"CONNECTIONS", {"connections"}},
               {"CALLS", {"calls"}},
               {"UPTIME", {"uptime_seconds"}},
               {"STATUS", {"status"}}},
              all);
  return ctx.status;
}

int cmd_kick(context& ctx) {
  const auto& user_id = ctx.in.args.at(0);
  auto t = ctx.in.use_redis() ? owner_of(ctx, user_id) : admin_target(ctx);
  t.client.send("POST", "/admin/kick/" + url_encode(user_id),
                "user " + user_id + " is not connected to " + name_of(t));
  rapidjson::Document answer{rapidjson::kObjectType};
  answer.AddMember("kicked", true, answer.GetAllocator());
  set_string(answer, "user_id", user_id, answer.GetAllocator());
  set_string(answer, "admin", t.client.address(), answer.GetAllocator());
  tag(answer, t, answer.GetAllocator());
  if (ctx.in.json)
    print_json(ctx.out, answer);
  else
    ctx.out << "kicked " << user_id << " from " << name_of(t) << "\n";
  return ctx.status;
}

int cmd_drain(context& ctx) {
  std::optional<target> t;
  if (ctx.in.use_redis()) {
    if (ctx.in.args.empty())
      throw usage_error("drain with --redis needs the SERVER_ID of the instance to drain");
    auto entry = ctx.directory().instance(ctx.in.args[0]);
    if (!entry)
      throw error{"no live instance " + ctx.in.args[0] + " (no ws:server:" + ctx.in.args[0] + ")"};
    t = target_of(ctx, *entry);
  } else {
    if (!ctx.in.args.empty())
      throw usage_error("drain takes a SERVER_ID only with --redis; with --admin it drains that "
                        "instance");
    t = admin_target(ctx);
  }
  t->client.send("POST", "/admin/drain");
  rapidjson::Document answer{rapidjson::kObjectType};
  answer.AddMember("draining", true, answer.GetAllocator());
  set_string(answer, "admin", t->client.address(), answer.GetAllocator());
  tag(answer, *t, answer.GetAllocator());
  if (ctx.in.json)
    print_json(ctx.out, answer);
  else
    ctx.out << name_of(*t) << " is draining: /ready answers 503 from now on\n";
  return ctx.status;
}

int cmd_log_level(context& ctx) {
  const auto& level = ctx.in.args.at(0);
  if (level != "debug" && level != "info" && level != "warn" && level != "error" && level != "off")
    throw usage_error("log level '" + level + "' is not one of debug, info, warn, error, off");
  rapidjson::Document all{rapidjson::kArrayType};
  auto& alloc = all.GetAllocator();
  auto list = targets(ctx);
  if (list.empty() && ctx.status == 0)
    throw error{"no live instance is registered in Redis at " + ctx.directory().address()};
  for (const auto& t : list) {
    try {
      t.client.send("PUT", "/admin/log-level?level=" + level);
      rapidjson::Value row{rapidjson::kObjectType};
      set_string(row, "admin", t.client.address(), alloc);
      set_string(row, "log_level", level, alloc);
      tag(row, t, alloc);
      all.PushBack(row, alloc);
      if (!ctx.in.json)
        ctx.out << name_of(t) << ": log level " << level << "\n";
    } catch (const error& e) {
      if (!ctx.in.use_redis())
        throw;
      ctx.report(e.what());
    }
  }
  if (ctx.in.json)
    print_json(ctx.out, all);
  return ctx.status;
}

int cmd_token(context& ctx) {
  token_request request;
  request.secret = ctx.in.option("secret");
  if (request.secret.empty())
    if (const char* env = std::getenv("JWT_SECRET"))
      request.secret = env;
  if (request.secret.empty())
    throw usage_error("token needs --secret (or JWT_SECRET): the server's JWT_SECRET");
  request.user_id = ctx.in.option("user");
  if (request.user_id.empty())
    throw usage_error("token needs --user ID");
  if (ctx.in.options.count("name"))
    request.name = ctx.in.option("name");
  if (ctx.in.options.count("username"))
    request.username = ctx.in.option("username");
  if (ctx.in.options.count("ttl"))
    request.ttl = parse_ttl(ctx.in.option("ttl"));
  // As the server reads its variables: the first HS algorithm of
  // JWT_ALGORITHMS, and JWT_ISSUER and JWT_AUDIENCE, unless given. Empty
  // is unset.
  auto option_or_env = [&](const char* option, const char* env) -> std::optional<std::string> {
    std::string value;
    if (ctx.in.options.count(option))
      value = ctx.in.option(option);
    else if (const char* from_env = std::getenv(env))
      value = from_env;
    if (value.empty())
      return std::nullopt;
    return value;
  };
  if (ctx.in.options.count("alg")) {
    request.algorithm = ctx.in.option("alg");
  } else if (auto algorithms = option_or_env("alg", "JWT_ALGORITHMS")) {
    auto list = goring::comma_list(*algorithms);
    auto hs = std::find_if(list.begin(), list.end(),
                           [](const std::string& alg) { return alg.rfind("HS", 0) == 0; });
    if (hs != list.end())
      request.algorithm = *hs;
  }
  if (auto claim = option_or_env("user-claim", "JWT_USER_CLAIM"))
    request.user_claim = *claim;
  request.issuer = option_or_env("issuer", "JWT_ISSUER");
  request.audience = option_or_env("audience", "JWT_AUDIENCE");
  auto minted = mint_token(request);
  if (!ctx.in.json) {
    ctx.out << minted.token << "\n";
    return ctx.status;
  }
  rapidjson::Document answer{rapidjson::kObjectType};
  set_string(answer, "token", minted.token, answer.GetAllocator());
  set_string(answer, "user_id", request.user_id, answer.GetAllocator());
  answer.AddMember("expires_at", minted.expires_at, answer.GetAllocator());
  print_json(ctx.out, answer);
  return ctx.status;
}

// -- The command table ---------------------------------------------------------

struct command {
  const char* name;
  const char* synopsis;
  const char* summary;
  /// Lines of the command's --help beyond the synopsis and summary.
  const char* details;
  /// The command options it takes (names without dashes).
  std::vector<std::string> options;
  std::size_t min_args;
  std::size_t max_args;
  int (*run)(context&);
};

const std::vector<command>& commands() {
  static const std::vector<command> all = {
    {"actors",
     "actors [--kind KIND]",
     "live actors: kind, id, user or session, state, age, mailbox, handled",
     "  --kind KIND   only actors of this kind (connection, call, bridge, ...)\n",
     {"kind"},
     0,
     0,
     cmd_actors},
    {"users",
     "users",
     "connected users: instance, since when, remote address, call",
     "",
     {},
     0,
     0,
     cmd_users},
    {"user",
     "user USER_ID",
     "where one user is connected and their current call",
     "  With --redis, the instance is the one ws:user:USER_ID names.\n",
     {},
     1,
     1,
     cmd_user},
    {"calls",
     "calls",
     "call actors: session, state (and Redis's), participants, age",
     "  With --redis, REDIS is the state in call:session:{id}; it should agree.\n",
     {},
     0,
     0,
     cmd_calls},
    {"call",
     "call SESSION_ID",
     "one call: Redis's call:session hash and each instance's actor",
     "",
     {},
     1,
     1,
     cmd_call},
    {"instances",
     "instances",
     "live instances: id, admin address, version, connections, calls, uptime",
     "  With --redis, every ws:server:* heartbeat; with --admin, that instance.\n",
     {},
     0,
     0,
     cmd_instances},
    {"kick",
     "kick USER_ID",
     "close a user's connection (code 4002), wherever it is",
     "  With --redis, on the instance ws:user:USER_ID names.\n",
     {},
     1,
     1,
     cmd_kick},
    {"drain",
     "drain [SERVER_ID]",
     "start an instance's graceful drain (/ready turns 503)",
     "  With --admin, drains that instance; with --redis, the one named SERVER_ID.\n",
     {},
     0,
     1,
     cmd_drain},
    {"log-level",
     "log-level LEVEL",
     "set the log level (debug, info, warn, error, off) at runtime",
     "  With --redis, on every live instance.\n",
     {},
     1,
     1,
     cmd_log_level},
    {"token",
     "token --user ID [--secret S] [--name N] [--username U] [--ttl 1h] [--alg HS256] "
     "[--issuer I] [--audience A] [--user-claim C]",
     "mint a development JWT (HS256/384/512); needs no server",
     "  --user ID       the user id (the `hash` claim, or --user-claim's)\n"
     "  --secret S      the server's JWT_SECRET (default: $JWT_SECRET)\n"
     "  --name N        the `name` claim\n"
     "  --username U    the `username` claim\n"
     "  --ttl 1h        lifetime: 90s, 30m, 1h, 7d (default 1h)\n"
     "  --alg A         HS256, HS384 or HS512 (default: the first HS one of\n"
     "                  $JWT_ALGORITHMS, else HS256)\n"
     "  --issuer I      the `iss` claim (default: $JWT_ISSUER, if set)\n"
     "  --audience A    the `aud` claim (default: $JWT_AUDIENCE, if set)\n"
     "  --user-claim C  the claim that holds the user id (default: $JWT_USER_CLAIM,\n"
     "                  else hash)\n",
     {"secret", "user", "name", "username", "ttl", "alg", "issuer", "audience", "user-claim"},
     0,
     0,
     cmd_token},
  };
  return all;
}

const char* global_options =
  "Options (before or after the command):\n"
  "  --admin URL    one instance's admin API, http://HOST:PORT (default http://127.0.0.1:9090)\n"
  "  --redis ADDR   every instance registered in this Redis (HOST:PORT; REDIS_USERNAME and\n"
  "                 REDIS_PASSWORD if set)\n"
  "  --sentinels LIST\n"
  "                 the same, with Redis found through these sentinels (HOST:PORT,...;\n"
  "                 e.g. \"$REDIS_SENTINELS\"; REDIS_SENTINEL_USERNAME and\n"
  "                 REDIS_SENTINEL_PASSWORD if set)\n"
  "  --sentinel-master NAME\n"
  "                 the master's name (default: $REDIS_SENTINEL_MASTER)\n"
  "  --cluster LIST\n"
  "                 the same in a Redis Cluster, from any of these seed nodes (HOST:PORT,...;\n"
  "                 e.g. \"$REDIS_CLUSTER\"; REDIS_USERNAME and REDIS_PASSWORD if set)\n"
  "  --token T      the admin token (default: $GORING_ADMIN_TOKEN)\n"
  "  --json         print JSON (an array or an object) instead of a table\n"
  "  --help         this help, or a command's with COMMAND --help\n";

void print_usage(std::ostream& out) {
  out << "goringctl: inspect and control goring instances through their admin API\n\n"
      << "Usage: goringctl [--admin URL | --redis ADDR | --sentinels LIST | --cluster LIST]\n"
         "                 [--token T] [--json] COMMAND [ARGS]\n"
      << "       goringctl COMMAND --help\n\n"
      << "Commands:\n";
  std::size_t width = 0;
  for (const auto& cmd : commands())
    width = std::max(width, std::string_view{cmd.name}.size());
  for (const auto& cmd : commands())
    out << "  " << cmd.name << std::string(width - std::string_view{cmd.name}.size() + 2, ' ')
        << cmd.summary << "\n";
  out << "\n"
      << global_options
      << "\nExit status: 0 on success, 1 on a failure (unreachable instance, refused token,\n"
         "not found), 2 on a command line goringctl cannot run.\n";
}

void print_command_help(std::ostream& out, const command& cmd) {
  out << "Usage: goringctl [--admin URL | --redis ADDR | --sentinels LIST | --cluster LIST]\n"
         "                 [--token T] [--json] "
      << cmd.synopsis << "\n\n"
      << cmd.summary << "\n";
  if (*cmd.details != '\0')
    out << "\n" << cmd.details;
  out << "\n" << global_options;
}

const command* find_command(const std::string& name) {
  for (const auto& cmd : commands())
    if (name == cmd.name)
      return &cmd;
  return nullptr;
}

/// Checks the command's options and arguments against its table entry.
void check_arguments(const command& cmd, const invocation& in) {
  for (const auto& [name, value] : in.options) {
    bool known = false;
    for (const auto& allowed : cmd.options)
      known = known || allowed == name;
    if (!known)
      throw usage_error("unknown option --" + name + " for '" + cmd.name + "' (see goringctl "
                        + cmd.name + " --help)");
  }
  if (in.args.size() < cmd.min_args || in.args.size() > cmd.max_args)
    throw usage_error(std::string{"usage: goringctl "} + cmd.synopsis);
}

} // namespace

int run(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  try {
    auto in = parse_command_line(argc, argv, std::getenv("GORING_ADMIN_TOKEN"));
    if (in.command.empty() || in.command == "help") {
      if (in.command.empty() && !in.help) {
        print_usage(err);
        return exit_usage;
      }
      if (!in.args.empty()) {
        if (const auto* cmd = find_command(in.args[0])) {
          print_command_help(out, *cmd);
          return 0;
        }
      }
      print_usage(out);
      return 0;
    }
    const auto* cmd = find_command(in.command);
    if (cmd == nullptr)
      throw usage_error("unknown command '" + in.command + "' (see goringctl --help)");
    if (in.help) {
      print_command_help(out, *cmd);
      return 0;
    }
    check_arguments(*cmd, in);
    context ctx{in, out, err, nullptr, 0};
    return cmd->run(ctx);
  } catch (const error& e) {
    err << "goringctl: " << e.what() << "\n";
    return e.status();
  } catch (const std::exception& e) {
    err << "goringctl: " << e.what() << "\n";
    return exit_failure;
  }
}

} // namespace goringctl
