/// A private redis-server on a free loopback port, and a blocking client to
/// look at what it holds: a plain server, a replica, or a sentinel. Every
/// test process starts its own.
#pragma once

#include <string>
#include <vector>

#include "redis/reply.hpp"
#include "tests/support/process.hpp"

struct redisContext;

namespace goring::test {

/// Whether a redis_server keeps its data across stop() and restart().
enum class redis_persistence {
  none, ///< no RDB, no AOF: a restart comes back empty
  aof,  ///< `--appendonly yes` in a private temporary directory
};

/// What a redis_server is besides a plain server.
struct redis_options {
  redis_persistence persistence = redis_persistence::none;
  /// A replica of the master on this loopback port (--replicaof); 0: none.
  uint16_t replica_of = 0;
  /// A sentinel (`redis-server CONF --sentinel`) that monitors the master
  /// on this loopback port as `monitor_name`, with quorum 2; 0: none.
  uint16_t sentinel_of = 0;
  std::string monitor_name = "goring-master";
  /// `sentinel <option> <monitor_name> <value>` lines, e.g.
  /// {"down-after-milliseconds", "1000"}.
  std::vector<std::pair<std::string, std::string>> sentinel_settings;
  /// More command-line arguments (not for sentinels), e.g.
  /// {"--replica-read-only", "no"}.
  std::vector<std::string> args;
};

class redis_server {
public:
  /// Starts redis-server with no persistence on a free port and waits until
  /// it answers PING (throws if it does not within 5 s).
  redis_server();
  /// The same, with the persistence `persistence` asks for.
  explicit redis_server(redis_persistence persistence);
  /// The same, as `options` say (a replica answers PING while it syncs).
  explicit redis_server(redis_options options);
  ~redis_server();

  uint16_t port() const {
    return port_;
  }
  /// "127.0.0.1:PORT", the form REDIS_ADDR takes.
  std::string addr() const;

  /// Runs one command on a blocking connection of the test's own.
  redis::reply run(const std::vector<std::string>& argv);

  /// Stops the server (SIGTERM) to test what happens without Redis.
  void stop();
  /// Kills it at once (SIGKILL): no shutdown, no last words to replicas.
  void kill();
  /// SIGSTOP: it hangs with its sockets open, as a stuck or partitioned
  /// server does; resume() is SIGCONT.
  void pause();
  void resume();
  /// Starts it again on the same port (with persistence, from the data it
  /// wrote; a sentinel from the configuration it rewrote) and waits until
  /// it answers PING (throws if not within 5 s).
  void restart();
  /// The redis-server's PID, -1 while it is stopped.
  pid_t pid() const {
    return proc_.pid();
  }

private:
  void connect();
  /// Starts redis-server on port_ and waits for PING.
  void launch();

  /// Writes a sentinel's configuration file for port_.
  void write_sentinel_config();

  uint16_t port_ = 0;
  child_process proc_;
  redisContext* ctx_ = nullptr;
  redis_options options_;
  /// The data directory with persistence (a sentinel's configuration),
  /// removed by the destructor.
  std::string dir_;
};

} // namespace goring::test
