#include "tools/goringctl/redis_directory.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <set>
#include <thread>

#include <hiredis/hiredis.h>

#include "config/config.hpp"
#include "redis/cluster_keys.hpp"
#include "redis/keys.hpp"
#include "tools/goringctl/admin_client.hpp"
#include "tools/goringctl/error.hpp"

namespace goringctl {

namespace keys = goring::redis::keys;
namespace cluster = goring::redis::cluster;

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

/// How long goringctl waits in all for a cluster in a failover: a master it
/// cannot reach, or CLUSTERDOWN/TRYAGAIN, makes it read the slot map again
/// and retry until then (a replica takes over about two node timeouts
/// after its master's death: 2 s with cluster-node-timeout 1000).
constexpr std::chrono::seconds cluster_settle{10};
constexpr std::chrono::milliseconds cluster_retry_pause{250};

/// What may pass as the cluster fails over: a connection lost, or refused.
class node_lost : public error {
public:
  using error::error;
};

/// An error reply that says the cluster is between two slot maps.
bool cluster_unsettled(const std::string& text) {
  return text.rfind("CLUSTERDOWN", 0) == 0 || text.rfind("TRYAGAIN", 0) == 0;
}

/// A cluster node's "MOVED SLOT HOST:PORT" or "ASK SLOT HOST:PORT".
struct redirect {
  bool moved = false;
  uint16_t slot = 0;
  std::string addr;
};

/// The redirect in an error reply; nothing when it is another error. An
/// address without a host (":PORT", the node's endpoint unknown) is on the
/// host of `from`.
std::optional<redirect> redirect_in(const std::string& text, const std::string& from) {
  redirect r;
  std::string rest;
  if (text.rfind("MOVED ", 0) == 0) {
    r.moved = true;
    rest = text.substr(6);
  } else if (text.rfind("ASK ", 0) == 0) {
    rest = text.substr(4);
  } else {
    return std::nullopt;
  }
  auto space = rest.find(' ');
  if (space == std::string::npos || space == 0 || space > 5
      || rest.find_first_not_of("0123456789") < space)
    return std::nullopt;
  auto slot = std::stoul(rest.substr(0, space));
  if (slot >= cluster::slot_count)
    return std::nullopt;
  r.slot = static_cast<uint16_t>(slot);
  r.addr = rest.substr(space + 1);
  if (r.addr.empty())
    return std::nullopt;
  if (r.addr.front() == ':')
    r.addr = from.substr(0, from.rfind(':')) + r.addr;
  return r;
}

} // namespace

/// One blocking hiredis connection, logged in as goring logs in.
class redis_directory::link {
public:
  /// Connects to "HOST:PORT" (port 6379 when left out) and authenticates
  /// with REDIS_PASSWORD (and REDIS_USERNAME) when set.
  explicit link(const std::string& addr);
  ~link() {
    redisFree(ctx_);
  }
  link(const link&) = delete;
  link& operator=(const link&) = delete;

  const std::string& address() const {
    return addr_;
  }
  /// Sends one command and returns any reply, an error reply too; throws
  /// when the connection fails.
  reply_ptr send(const std::vector<std::string>& argv);
  /// send(), throwing on an error reply as well.
  reply_ptr run(const std::vector<std::string>& argv);

private:
  std::string addr_;
  redisContext* ctx_ = nullptr;
};

void redis_directory::reply_deleter::operator()(redisReply* reply) const {
  freeReplyObject(reply);
}

redis_directory::link::link(const std::string& addr) : addr_(addr) {
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
    throw node_lost{"cannot reach Redis at " + addr + ": out of memory"};
  // A constructor that throws runs no destructor: the context is freed here
  // (LeakSanitizer found it leaking when Redis was unreachable).
  try {
    if (ctx_->err != 0)
      throw node_lost{"cannot reach Redis at " + addr + ": " + ctx_->errstr};
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

redis_directory::reply_ptr redis_directory::link::send(const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lengths;
  for (const auto& arg : argv) {
    args.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  reply_ptr reply{static_cast<redisReply*>(
    redisCommandArgv(ctx_, static_cast<int>(args.size()), args.data(), lengths.data()))};
  if (!reply)
    throw node_lost{"Redis at " + addr_ + " failed on " + argv.front() + ": " + ctx_->errstr};
  return reply;
}

redis_directory::reply_ptr redis_directory::link::run(const std::vector<std::string>& argv) {
  auto reply = send(argv);
  if (reply->type == REDIS_REPLY_ERROR)
    throw error{"Redis at " + addr_ + " refused " + argv.front() + ": " + reply_text(reply.get())};
  return reply;
}

redis_directory::redis_directory(const std::string& addr) : addr_(addr) {
  nodes_.emplace(addr, std::make_unique<link>(addr));
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

std::unique_ptr<redis_directory> redis_directory::through_cluster(const std::string& seeds) {
  auto list = goring::parse_host_list(seeds, goring::default_redis_port);
  if (!list)
    throw usage_error("cluster seed list '" + seeds + "' must be HOST:PORT,HOST:PORT,...");
  std::unique_ptr<redis_directory> directory{new redis_directory};
  directory->addr_ = seeds;
  directory->cluster_ = true;
  for (const auto& seed : *list)
    directory->seeds_.push_back(seed.to_string());
  directory->read_slot_map();
  return directory;
}

void redis_directory::read_slot_map() {
  std::vector<std::string> ask = seeds_;
  for (const auto& range : slots_)
    if (std::find(ask.begin(), ask.end(), range.master) == ask.end())
      ask.push_back(range.master);
  std::string failures;
  for (const auto& where : ask) {
    try {
      auto map = node(where).run({"CLUSTER", "SLOTS"});
      // Each range: first slot, last slot, then the master [host, port, id,
      // ...] and its replicas.
      std::vector<slot_owner> read;
      for (size_t i = 0; map->type == REDIS_REPLY_ARRAY && i < map->elements; ++i) {
        const auto* range = map->element[i];
        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3
            || range->element[2]->type != REDIS_REPLY_ARRAY || range->element[2]->elements < 2)
          throw error{"Redis at " + where + " answered CLUSTER SLOTS with an unexpected reply"};
        const auto* master = range->element[2];
        // An empty (or unknown, "?") host is the host of the node asked.
        auto host = reply_text(master->element[0]);
        if (host.empty() || host == "?")
          host = where.substr(0, where.rfind(':'));
        read.push_back(slot_owner{static_cast<uint16_t>(range->element[0]->integer),
                                  static_cast<uint16_t>(range->element[1]->integer),
                                  host + ":" + std::to_string(master->element[1]->integer)});
      }
      if (read.empty())
        throw error{"Redis at " + where + " serves no hash slots (is the cluster created?)"};
      slots_ = std::move(read);
      return;
    } catch (const node_lost& e) {
      // Its connection is of no more use: the next try opens a new one.
      nodes_.erase(where);
      failures += std::string{failures.empty() ? "" : "; "} + e.what();
    } catch (const error& e) {
      failures += std::string{failures.empty() ? "" : "; "} + e.what();
    }
  }
  throw error{"no Redis Cluster seed of " + addr_ + " told its slot map: " + failures};
}

template <typename F>
auto redis_directory::settled(const std::string& what, F attempt) -> decltype(attempt()) {
  auto deadline = std::chrono::steady_clock::now() + cluster_settle;
  for (;;) {
    std::string problem;
    try {
      return attempt();
    } catch (const node_lost& e) {
      problem = e.what();
    }
    if (std::chrono::steady_clock::now() + cluster_retry_pause > deadline)
      throw error{problem + " (" + what + ": the cluster did not settle within "
                  + std::to_string(cluster_settle.count())
                  + " s; is a master down without a "
                    "replica to take over?)"};
    std::this_thread::sleep_for(cluster_retry_pause);
    try {
      read_slot_map();
    } catch (const error&) {
      // Tried again on the next round, until the deadline.
    }
  }
}

redis_directory::redis_directory() = default;
redis_directory::~redis_directory() = default;

redis_directory::link& redis_directory::node(const std::string& addr) {
  auto it = nodes_.find(addr);
  if (it == nodes_.end())
    it = nodes_.emplace(addr, std::make_unique<link>(addr)).first;
  return *it->second;
}

const std::string& redis_directory::master_of(uint16_t slot) const {
  // The first range that holds the slot: a MOVED answer puts its slot first.
  for (const auto& range : slots_)
    if (range.first <= slot && slot <= range.last)
      return range.master;
  // Between two slot maps (a failover): settled() reads the map again.
  throw node_lost{"no master of the Redis Cluster at " + addr_ + " serves hash slot "
                  + std::to_string(slot) + " (is the cluster down?)"};
}

redis_directory::reply_ptr redis_directory::run(const std::vector<std::string>& argv) {
  if (!cluster_)
    return nodes_.begin()->second->run(argv);
  return settled(argv.front() + " " + argv.at(1), [&] { return run_in_cluster(argv); });
}

redis_directory::reply_ptr redis_directory::run_in_cluster(const std::vector<std::string>& argv) {
  // Every command goringctl sends in a cluster names its key first.
  auto addr = master_of(cluster::key_slot(argv.at(1)));
  bool asking = false;
  // A slot may move again while a redirect is followed; a few hops do.
  for (int hop = 0; hop < 5; ++hop) {
    reply_ptr reply;
    try {
      auto& to = node(addr);
      if (asking)
        to.run({"ASKING"});
      reply = to.send(argv);
    } catch (const node_lost&) {
      nodes_.erase(addr);
      throw;
    }
    if (reply->type != REDIS_REPLY_ERROR)
      return reply;
    auto text = reply_text(reply.get());
    if (cluster_unsettled(text))
      throw node_lost{"Redis at " + addr + " refused " + argv.front() + ": " + text};
    auto next = redirect_in(text, addr);
    if (!next)
      throw error{"Redis at " + addr + " refused " + argv.front() + ": " + text};
    // MOVED: the slot has a new master for good; ASK: for this key only,
    // while the slot migrates.
    if (next->moved)
      slots_.insert(slots_.begin(), slot_owner{next->slot, next->slot, next->addr});
    asking = !next->moved;
    addr = next->addr;
  }
  throw error{"Redis Cluster at " + addr_ + " redirected " + argv.front() + " " + argv.at(1)
              + " five times (is a slot migrating?); try again"};
}

std::vector<std::string> redis_directory::scan(const std::string& pattern) {
  if (!cluster_)
    return scan_once(pattern);
  return settled("SCAN " + pattern, [&] { return scan_once(pattern); });
}

std::vector<std::string> redis_directory::scan_once(const std::string& pattern) {
  std::set<std::string> masters;
  if (cluster_)
    for (const auto& range : slots_)
      masters.insert(range.master);
  else
    masters.insert(nodes_.begin()->first);
  std::vector<std::string> found_keys;
  for (const auto& master : masters) {
    std::string cursor = "0";
    do {
      reply_ptr reply;
      try {
        reply = node(master).send({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
      } catch (const node_lost&) {
        nodes_.erase(master);
        throw;
      }
      if (reply->type == REDIS_REPLY_ERROR) {
        auto text = reply_text(reply.get());
        if (cluster_ && cluster_unsettled(text))
          throw node_lost{"Redis at " + master + " refused SCAN: " + text};
        throw error{"Redis at " + master + " refused SCAN: " + text};
      }
      if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
        throw error{"Redis at " + master + " answered SCAN with an unexpected reply"};
      cursor = reply_text(reply->element[0]);
      const auto* found = reply->element[1];
      for (size_t i = 0; i < found->elements; ++i)
        found_keys.push_back(reply_text(found->element[i]));
    } while (cursor != "0");
  }
  // SCAN may return a key twice.
  std::sort(found_keys.begin(), found_keys.end());
  found_keys.erase(std::unique(found_keys.begin(), found_keys.end()), found_keys.end());
  return found_keys;
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
  std::vector<instance_entry> out;
  for (const auto& key : scan(keys::server("*"))) {
    auto id = key.substr(keys::server_prefix.size());
    // A heartbeat may expire between SCAN and HGETALL: that instance is gone.
    if (auto entry = instance(id))
      out.push_back(std::move(*entry));
  }
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
  auto reply = run({"GET", user_key(user_id)});
  if (reply->type != REDIS_REPLY_STRING)
    return std::nullopt;
  // The owner token is "server_id/run-nonce/connection-number".
  auto owner = reply_text(reply.get());
  return owner.substr(0, owner.find('/'));
}

hash_fields redis_directory::session(const std::string& session_id) {
  return hgetall(cluster_ ? keys::tagged_session(session_id) : keys::session(session_id));
}

std::string redis_directory::user_key(const std::string& user_id) const {
  return cluster_ ? cluster::user_key(keys::user_prefix, user_id) : keys::user(user_id);
}

} // namespace goringctl
