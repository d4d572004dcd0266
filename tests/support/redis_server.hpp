/// A private redis-server on a free loopback port, and a blocking client to
/// look at what it holds. Every test process starts its own.
#pragma once

#include <string>
#include <vector>

#include "redis/reply.hpp"
#include "tests/support/process.hpp"

struct redisContext;

namespace goring::test {

class redis_server {
public:
  /// Starts redis-server with no persistence on a free port and waits until
  /// it answers PING (throws if it does not within 5 s).
  redis_server();
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

private:
  void connect();

  uint16_t port_ = 0;
  child_process proc_;
  redisContext* ctx_ = nullptr;
};

} // namespace goring::test
