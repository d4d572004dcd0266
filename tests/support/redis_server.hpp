/// A private redis-server on a free loopback port, and a blocking client to
/// look at what it holds. Every test process starts its own.
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

class redis_server {
public:
  /// Starts redis-server with no persistence on a free port and waits until
  /// it answers PING (throws if it does not within 5 s).
  redis_server();
  /// The same, with the persistence `persistence` asks for.
  explicit redis_server(redis_persistence persistence);
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
  /// Starts it again on the same port (with persistence, from the data it
  /// wrote) and waits until it answers PING (throws if not within 5 s).
  void restart();
  /// The redis-server's PID, -1 while it is stopped.
  pid_t pid() const {
    return proc_.pid();
  }

private:
  void connect();
  /// Starts redis-server on port_ and waits for PING.
  void launch();

  uint16_t port_ = 0;
  child_process proc_;
  redisContext* ctx_ = nullptr;
  redis_persistence persistence_ = redis_persistence::none;
  /// The data directory with persistence, removed by the destructor.
  std::string dir_;
};

} // namespace goring::test
