/// The Redis a test's goring processes use: one private redis-server, or a
/// six-node Redis Cluster when GORING_TEST_REDIS=cluster; with the key names
/// of the layout goring uses on it and commands routed to the right node.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "redis/reply.hpp"
#include "tests/support/redis_cluster.hpp"
#include "tests/support/redis_server.hpp"

namespace goring::test {

/// Which Redis the e2e suites run against.
enum class redis_mode {
  single,  ///< one redis-server, REDIS_ADDR
  cluster, ///< a six-node Redis Cluster, REDIS_CLUSTER
};

/// GORING_TEST_REDIS: "cluster" is redis_mode::cluster, anything else (or
/// nothing) redis_mode::single. ctest registers the suites that work in both
/// once per mode (tests/CMakeLists.txt).
redis_mode test_redis_mode();

/// Whether this run is the Cluster variant.
inline bool cluster_run() {
  return test_redis_mode() == redis_mode::cluster;
}

/// Whether GORING_TEST_REDIS names `mode` itself ("single" or "cluster"),
/// not just by default.
bool redis_mode_named(redis_mode mode);

/// A TEST_CASE decorator for a case that needs the one redis-server (it
/// stops or restarts "the" Redis, or reads what only one server can tell):
/// skipped when GORING_TEST_REDIS=cluster, and ctest reports it skipped.
/// Say why beside it. Only a mode named explicitly skips: doctest leaves
/// skipped cases out of --list-test-cases, which ctest's discovery runs with
/// no GORING_TEST_REDIS, so there every case must be listed.
inline doctest::skip single_redis_only() {
  return doctest::skip(redis_mode_named(redis_mode::cluster));
}
/// The other way round: a case about what only a cluster does (a master
/// failing over), skipped when GORING_TEST_REDIS=single.
inline doctest::skip cluster_redis_only() {
  return doctest::skip(redis_mode_named(redis_mode::single));
}

class redis_backend {
public:
  /// Starts what test_redis_mode() asks for: a redis_server (with
  /// `persistence`) or a redis_cluster (which has no persistence option; its
  /// nodes keep nothing across a kill).
  explicit redis_backend(redis_persistence persistence = redis_persistence::none);
  /// Starts what `mode` asks for.
  explicit redis_backend(redis_mode mode, redis_persistence persistence = redis_persistence::none);
  /// A view of a redis_server the caller owns (single mode): what the
  /// redis_server& helpers of goring_process go through.
  explicit redis_backend(redis_server& borrowed);
  ~redis_backend();

  redis_backend(const redis_backend&) = delete;
  redis_backend& operator=(const redis_backend&) = delete;

  bool is_cluster() const {
    return cluster_ != nullptr;
  }
  /// The one redis-server (single mode only; the test stops otherwise).
  redis_server& server();
  /// The cluster (cluster mode only; the test stops otherwise).
  redis_cluster& cluster();

  /// The settings that point goring at this Redis: REDIS_ADDR, or
  /// REDIS_CLUSTER with every node as a seed.
  std::map<std::string, std::string> goring_env() const;

  /// Runs a command where its key lives: in a cluster on the master of the
  /// slot of its first key (redis::cluster::route_of), following one MOVED;
  /// keyless commands on any live node. PUBLISH becomes SPUBLISH in a
  /// cluster, since goring subscribes with sharded pub/sub there.
  redis::reply run(const std::vector<std::string>& argv);

  /// The node that holds `key` now: the server, or the master of its slot.
  redis_server& node_of(const std::string& key);

  /// Stops the server, or every node of the cluster (SIGTERM): Redis is
  /// gone.
  void stop();

  /// KEYS `pattern` over every master.
  std::vector<std::string> keys_matching(const std::string& pattern);
  /// FLUSHALL on the server, or on every master: an empty Redis again
  /// (scripts stay loaded).
  void flush();

  /// GET / HGET, "" when the key or field is missing.
  std::string get(const std::string& key);
  std::string hget(const std::string& key, const std::string& field);

  /// Key names in the layout goring uses on this Redis: a user's presence
  /// and call keys carry the user's hash tag in a cluster
  /// (`ws:user:{alice}`); the others are the same in both.
  std::string user_key(const std::string& user_id) const;
  std::string user_call_key(const std::string& user_id) const;
  std::string session_key(const std::string& session_id) const;
  std::string server_key(const std::string& server_id) const;
  /// The KEYS pattern of every presence key, of every user's call key.
  std::string user_pattern() const;
  std::string user_call_pattern() const;

private:
  std::unique_ptr<redis_server> own_server_;
  std::unique_ptr<redis_cluster> own_cluster_;
  redis_server* server_ = nullptr;
  redis_cluster* cluster_ = nullptr;
};

} // namespace goring::test
