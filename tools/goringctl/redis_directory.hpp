/// What Redis knows about the fleet: the live instances (their `ws:server`
/// heartbeats), who owns a user's connection, and a call's session hash;
/// from one Redis, a master found through Sentinel, or a Redis Cluster.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

struct redisContext;
struct redisReply;

namespace goringctl {

/// One live instance, from its `ws:server:{server_id}` hash.
struct instance_entry {
  std::string server_id;
  std::string instance; ///< "server_id/run-nonce"
  std::string version;
  std::string started_at; ///< Unix seconds
  std::string admin;      ///< "host:port", "" without an admin listener
};

/// A Redis hash's fields in the order Redis lists them.
using hash_fields = std::vector<std::pair<std::string, std::string>>;

/// A blocking connection to the Redis of a goring fleet (in Cluster mode, one
/// to each master it needs). Every command is bounded by the same timeout as
/// admin requests; failures throw goringctl::error naming the address.
class redis_directory {
public:
  /// Connects to "HOST:PORT" (port 6379 when left out) and authenticates
  /// with REDIS_PASSWORD (and REDIS_USERNAME) when set, as goring does.
  explicit redis_directory(const std::string& addr);
  /// Asks the sentinels in `sentinels` ("HOST:PORT,...", port 26379 when
  /// left out) in turn where master `master_name` is ("": the variable
  /// REDIS_SENTINEL_MASTER), logging in to them with REDIS_SENTINEL_USERNAME
  /// and REDIS_SENTINEL_PASSWORD when set; connects there and checks with
  /// ROLE that it is the master, as goring does.
  static std::unique_ptr<redis_directory> through_sentinels(const std::string& sentinels,
                                                            std::string master_name);

  /// Reads the slot map (CLUSTER SLOTS) from the first of `seeds`
  /// ("HOST:PORT,...", port 6379 when left out) that answers, logging in
  /// with REDIS_PASSWORD (and REDIS_USERNAME) as goring does. A user's keys
  /// are then read in the cluster layout (`ws:user:{tag}`) on the master of
  /// their slot, listings run on every master, and a MOVED or ASK answer is
  /// followed. A master that cannot be reached, or a cluster that answers
  /// CLUSTERDOWN or TRYAGAIN (a failover under way), makes it read the slot
  /// map again and retry, for up to `cluster_settle` in all.
  static std::unique_ptr<redis_directory> through_cluster(const std::string& seeds);

  /// "HOST:PORT" of the Redis it talks to; the seed list in Cluster mode.
  const std::string& address() const {
    return addr_;
  }
  ~redis_directory();
  redis_directory(const redis_directory&) = delete;
  redis_directory& operator=(const redis_directory&) = delete;

  /// Every instance with a `ws:server:*` key, sorted by server id.
  std::vector<instance_entry> instances();
  /// The instance `server_id`, when its heartbeat key is live.
  std::optional<instance_entry> instance(const std::string& server_id);
  /// The server id from the owner token in `ws:user:{user_id}`, when the
  /// user is connected anywhere.
  std::optional<std::string> owner_server(const std::string& user_id);
  /// `call:session:{session_id}`, empty when there is no such call.
  hash_fields session(const std::string& session_id);
  /// The name of a user's presence key here: `ws:user:{user_id}`, or in
  /// Cluster mode `ws:user:{tag}` (redis/cluster_keys.hpp).
  std::string user_key(const std::string& user_id) const;

private:
  struct reply_deleter {
    void operator()(redisReply* reply) const;
  };
  using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;
  /// One blocking, logged-in hiredis connection.
  class link;
  /// A slot range of CLUSTER SLOTS and its master's "HOST:PORT".
  struct slot_owner {
    uint16_t first = 0;
    uint16_t last = 0;
    std::string master;
  };

  redis_directory();
  /// Asks the seeds, then the masters it knew, for the slot map; throws
  /// when none answers.
  void read_slot_map();
  /// In Cluster mode, runs `attempt` until it succeeds, reading the slot
  /// map again after a lost master or a cluster that is down, until
  /// `cluster_settle` is over.
  template <typename F>
  auto settled(const std::string& what, F attempt) -> decltype(attempt());
  /// One try of run() in Cluster mode.
  reply_ptr run_in_cluster(const std::vector<std::string>& argv);
  /// One try of scan().
  std::vector<std::string> scan_once(const std::string& pattern);
  /// Runs one command: on the one Redis, or in Cluster mode on the master
  /// of the slot of `argv[1]`, following MOVED and ASK. Throws on a
  /// connection error or an error reply.
  reply_ptr run(const std::vector<std::string>& argv);
  /// The keys matching `pattern` (SCAN; on every master in Cluster mode),
  /// sorted, each once.
  std::vector<std::string> scan(const std::string& pattern);
  hash_fields hgetall(const std::string& key);
  /// The connection to `addr`, opened on first use.
  link& node(const std::string& addr);
  /// The master of `slot` per the slot map; throws when none owns it.
  const std::string& master_of(uint16_t slot) const;

  std::string addr_;
  bool cluster_ = false;
  /// The single Redis's connection, or the cluster's by "HOST:PORT".
  std::map<std::string, std::unique_ptr<link>> nodes_;
  std::vector<slot_owner> slots_;
  /// The --cluster seeds, "HOST:PORT" each.
  std::vector<std::string> seeds_;
};

} // namespace goringctl
