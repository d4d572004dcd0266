/// A Redis master, its replica and three sentinels, each a private process
/// on a free loopback port, set up for quick failovers; and ways to see who
/// is master now.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tests/support/redis_server.hpp"

namespace goring::test {

class sentinel_set {
public:
  /// The name the sentinels monitor the master under.
  static constexpr const char* master_name = "goring-master";

  /// Starts the master, the replica (both `--replica-read-only no`, so a
  /// test can drop keys on the replica alone to act out a write that never
  /// reached it) and three sentinels with down-after-milliseconds 1000 and
  /// a short failover-timeout; waits (up to 20 s) until the replica is in
  /// sync and every sentinel knows the replica and the two other
  /// sentinels: a failover can happen from then on. The test stops when it
  /// does not. `master_persistence` is the first master's.
  explicit sentinel_set(redis_persistence master_persistence = redis_persistence::none);

  redis_server& first_master() {
    return master_;
  }
  redis_server& first_replica() {
    return replica_;
  }
  std::vector<redis_server*> sentinels() {
    return {&sentinel_a_, &sentinel_b_, &sentinel_c_};
  }

  /// "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3", the form REDIS_SENTINELS
  /// takes.
  std::string sentinel_list() const;
  /// REDIS_SENTINELS and REDIS_SENTINEL_MASTER for a goring_process, plus
  /// `extra`.
  std::map<std::string, std::string>
  goring_env(std::map<std::string, std::string> extra = {}) const;

  /// The port the sentinels name as the master now (the first one that
  /// answers), 0 when none answers.
  uint16_t named_master_port();
  /// Waits (up to `timeout`) until `server` answers ROLE as a master and
  /// every live sentinel names it. Returns whether it happened.
  bool wait_master(redis_server& server,
                   std::chrono::milliseconds timeout = std::chrono::seconds(15));
  /// Waits (up to `timeout`) until `server` answers ROLE as a replica whose
  /// link to its master is up.
  bool wait_replica(redis_server& server,
                    std::chrono::milliseconds timeout = std::chrono::seconds(15));

private:
  redis_server master_;
  redis_server replica_;
  redis_server sentinel_a_;
  redis_server sentinel_b_;
  redis_server sentinel_c_;
};

/// The first element of `server`'s ROLE reply ("master", "slave",
/// "sentinel"), "" when it does not answer.
std::string role_of(redis_server& server);

/// The names of the connections in `server`'s CLIENT LIST ("" for unnamed).
std::vector<std::string> client_names(redis_server& server);

} // namespace goring::test
