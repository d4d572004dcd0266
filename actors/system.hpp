/// Boots the actor system and the Redis bridge for one goring instance, and
/// gives net/ and main what they need of the actors without CAF headers.
#pragma once

#include <chrono>
#include <memory>

#include "config/config.hpp"
#include "net/jwt_auth.hpp"
#include "net/link.hpp"

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace goring {

class actor_runtime {
public:
  /// Starts the actors; Redis I/O runs on `io`.
  actor_runtime(const settings& config, boost::asio::io_context& io);
  ~actor_runtime();

  actor_runtime(const actor_runtime&) = delete;
  actor_runtime& operator=(const actor_runtime&) = delete;

  /// Spawns the connection actor of an accepted WebSocket.
  std::shared_ptr<connection_port> open_connection(std::weak_ptr<client_link> link,
                                                   const auth::claims& who);

  /// Both Redis connections are up.
  bool redis_healthy() const;

  /// Closes every WebSocket with 1001 and waits, at most `grace`, until
  /// every connection and call actor is gone and their keys are released.
  void drain(std::chrono::milliseconds grace);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace goring
