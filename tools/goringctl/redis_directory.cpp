#include "tools/goringctl/redis_directory.hpp"

#include <algorithm>
#include <cstdlib>

#include <hiredis/hiredis.h>

#include "config/config.hpp"
#include "redis/keys.hpp"
#include "tools/goringctl/admin_client.hpp"
#include "tools/goringctl/error.hpp"

namespace goringctl {

namespace keys = goring::redis::keys;

namespace {

timeval command_timeout() {
  return timeval{static_cast<time_t>(request_timeout.count()), 0};
}

std::string reply_text(const redisReply* reply) {
  return std::string{reply->str, reply->len};
}

/// The value of an environment variable, "" when unset.
std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

/// AUTH [username] password on a blocking connection; "" on success, else
/// what Redis said.
std::string authenticate(redisContext* ctx, const std::string& username,
                         const std::string& password) {
  if (password.empty())
    return {};
  auto* reply = static_cast<redisReply*>(
    username.empty() ? redisCommand(ctx, "AUTH %s", password.c_str())
                     : redisCommand(ctx, "AUTH %s %s", username.c_str(), password.c_str()));
  if (reply == nullptr)
    return ctx->errstr;
  std::string problem = reply->type == REDIS_REPLY_ERROR ? reply_text(reply) : std::string{};
  freeReplyObject(reply);
  return problem;
}

/// One sentinel's answer for the master's "HOST:PORT"; throws an error
/// saying why there is none.
std::string ask_sentinel(const goring::host_port& sentinel, const std::string& master_name) {
  auto where = sentinel.to_string();
  redisContext* ctx =
    redisConnectWithTimeout(sentinel.host.c_str(), sentinel.port, command_timeout());
  if (ctx == nullptr)
    throw error{"sentinel " + where + ": out of memory"};
  std::string problem;
  std::string answer;
  if (ctx->err != 0) {
    problem = ctx->errstr;
  } else {
    redisSetTimeout(ctx, command_timeout());
    problem = authenticate(ctx, env("REDIS_SENTINEL_USERNAME"), env("REDIS_SENTINEL_PASSWORD"));
    if (problem.empty()) {
      auto* reply = static_cast<redisReply*>(
        redisCommand(ctx, "SENTINEL GET-MASTER-ADDR-BY-NAME %s", master_name.c_str()));
      if (reply == nullptr)
        problem = ctx->errstr;
      else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
        answer = reply_text(reply->element[0]) + ":" + reply_text(reply->element[1]);
      else if (reply->type == REDIS_REPLY_ERROR)
        problem = reply_text(reply);
      else
        problem = "does not know a master named '" + master_name + "'";
      if (reply != nullptr)
        freeReplyObject(reply);
    }
  }
  redisFree(ctx);
  if (answer.empty())
    throw error{"sentinel " + where + ": " + problem};
  return answer;
}

} // namespace

void redis_directory::reply_deleter::operator()(redisReply* reply) const {
  freeReplyObject(reply);
}

redis_directory::redis_directory(const std::string& addr) : addr_(addr) {
  std::string host = addr;
  int port = 6379;
  if (auto colon = addr.rfind(':'); colon != std::string::npos) {
    host = addr.substr(0, colon);
    auto port_text = addr.substr(colon + 1);
    if (port_text.empty() || port_text.size() > 5
        || port_text.find_first_not_of("0123456789") != std::string::npos
        || std::stoi(port_text) == 0 || std::stoi(port_text) > 65535)
      throw usage_error("Redis address '" + addr + "' has an invalid port");
    port = std::stoi(port_text);
  }
  if (host.empty())
    throw usage_error("Redis address '" + addr + "' must be HOST:PORT");
  ctx_ = redisConnectWithTimeout(host.c_str(), port, command_timeout());
  if (ctx_ == nullptr)
    throw error{"cannot reach Redis at " + addr + ": out of memory"};
  // A constructor that throws runs no destructor: the context is freed here
  // (LeakSanitizer found it leaking when Redis was unreachable).
  try {
    if (ctx_->err != 0)
      throw error{"cannot reach Redis at " + addr + ": " + ctx_->errstr};
    redisSetTimeout(ctx_, command_timeout());
    if (auto password = env("REDIS_PASSWORD"); !password.empty()) {
      auto username = env("REDIS_USERNAME");
      if (username.empty())
        run({"AUTH", password});
      else
        run({"AUTH", username, password});
    }
  } catch (...) {
    redisFree(ctx_);
    ctx_ = nullptr;
    throw;
  }
}

std::unique_ptr<redis_directory> redis_directory::through_sentinels(const std::string& sentinels,
                                                                    std::string master_name) {
  if (master_name.empty())
    master_name = env("REDIS_SENTINEL_MASTER");
  if (master_name.empty())
    throw usage_error("--sentinels needs the master's name: --sentinel-master NAME or "
                      "REDIS_SENTINEL_MASTER");
  auto list = goring::parse_host_list(sentinels, goring::default_sentinel_port);
  if (!list)
    throw usage_error("sentinel list '" + sentinels + "' must be HOST:PORT,HOST:PORT,...");
  std::string failures;
  for (const auto& sentinel : *list) {
    std::string master;
    try {
      master = ask_sentinel(sentinel, master_name);
    } catch (const error& e) {
      failures += std::string{failures.empty() ? "" : "; "} + e.what();
      continue;
    }
    auto directory = std::make_unique<redis_directory>(master);
    // What a sentinel names may be a replica for a moment during a
    // failover: goring writes nowhere else than to a master, nor reads.
    auto role = directory->run({"ROLE"});
    if (role->type != REDIS_REPLY_ARRAY || role->elements == 0
        || reply_text(role->element[0]) != "master")
      throw error{"sentinel " + sentinel.to_string() + " names " + master + " as master "
                  + master_name + ", but it is not a master (a failover under way?); try again"};
    return directory;
  }
  throw error{"no sentinel knows master " + master_name + ": " + failures};
}

redis_directory::~redis_directory() {
  if (ctx_ != nullptr)
    redisFree(ctx_);
}

redis_directory::reply_ptr redis_directory::run(const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lengths;
  for (const auto& arg : argv) {
    args.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  reply_ptr reply{static_cast<redisReply*>(
    redisCommandArgv(ctx_, static_cast<int>(args.size()), args.data(), lengths.data()))};
  if (!reply)
    throw error{"Redis at " + addr_ + " failed on " + argv.front() + ": " + ctx_->errstr};
  if (reply->type == REDIS_REPLY_ERROR)
    throw error{"Redis at " + addr_ + " refused " + argv.front() + ": " + reply_text(reply.get())};
  return reply;
}

hash_fields redis_directory::hgetall(const std::string& key) {
  auto reply = run({"HGETALL", key});
  hash_fields fields;
  if (reply->type != REDIS_REPLY_ARRAY)
    return fields;
  for (size_t i = 0; i + 1 < reply->elements; i += 2)
    fields.emplace_back(reply_text(reply->element[i]), reply_text(reply->element[i + 1]));
  return fields;
}

std::vector<instance_entry> redis_directory::instances() {
  std::vector<std::string> server_ids;
  std::string cursor = "0";
  auto pattern = keys::server("*");
  do {
    auto reply = run({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
      throw error{"Redis at " + addr_ + " answered SCAN with an unexpected reply"};
    cursor = reply_text(reply->element[0]);
    const auto* found = reply->element[1];
    for (size_t i = 0; i < found->elements; ++i)
      server_ids.push_back(reply_text(found->element[i]).substr(keys::server_prefix.size()));
  } while (cursor != "0");
  // SCAN may return a key twice.
  std::sort(server_ids.begin(), server_ids.end());
  server_ids.erase(std::unique(server_ids.begin(), server_ids.end()), server_ids.end());
  std::vector<instance_entry> out;
  for (const auto& id : server_ids)
    // A heartbeat may expire between SCAN and HGETALL: that instance is gone.
    if (auto entry = instance(id))
      out.push_back(std::move(*entry));
  return out;
}

std::optional<instance_entry> redis_directory::instance(const std::string& server_id) {
  auto fields = hgetall(keys::server(server_id));
  if (fields.empty())
    return std::nullopt;
  instance_entry entry;
  entry.server_id = server_id;
  for (const auto& [name, value] : fields) {
    if (name == "instance")
      entry.instance = value;
    else if (name == "version")
      entry.version = value;
    else if (name == "started_at")
      entry.started_at = value;
    else if (name == "admin")
      entry.admin = value;
  }
  return entry;
}

std::optional<std::string> redis_directory::owner_server(const std::string& user_id) {
  auto reply = run({"GET", keys::user(user_id)});
  if (reply->type != REDIS_REPLY_STRING)
    return std::nullopt;
  // The owner token is "server_id/run-nonce/connection-number".
  auto owner = reply_text(reply.get());
  return owner.substr(0, owner.find('/'));
}

hash_fields redis_directory::session(const std::string& session_id) {
  return hgetall(keys::session(session_id));
}

} // namespace goringctl
