/// What the listener and its sessions need of the instance behind them: the
/// actor runtime implements it (actors/system.hpp), so net/ decides nothing
/// and knows no actor.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "auth/jwt_auth.hpp"
#include "net/link.hpp"

namespace goring {

class runtime_port {
public:
  virtual ~runtime_port() = default;

  /// Spawns the connection actor of an accepted WebSocket.
  virtual std::shared_ptr<connection_port> open_connection(std::weak_ptr<client_link> link,
                                                           const auth::claims& who,
                                                           const std::string& remote_addr) = 0;

  /// Answers an admin API request (/admin/...) asynchronously: `done` gets
  /// the HTTP status and a JSON body, on another thread.
  virtual void admin(std::string method, std::string target,
                     std::function<void(unsigned status, std::string body)> done) = 0;

  /// The name of an essential actor (Redis bridge, alarm) that stopped, or
  /// null: when set the process is broken and must be restarted.
  virtual const char* stopped_actor() const = 0;

  /// The Redis connections are up.
  virtual bool redis_healthy() const = 0;

  /// Redis works, pub/sub delivers, the token keys are there (JWT_JWKS_URL),
  /// and the instance is not draining.
  virtual bool ready() const = 0;

  /// Draining: new WebSockets are refused.
  virtual bool draining() const = 0;

  /// Counts a client cut off for not reading (goring_slow_consumer_disconnects_total).
  virtual void count_slow_consumer() = 0;

  /// WebSocket sessions alive, so a drain can wait for their close frames.
  virtual void session_opened() = 0;
  virtual void session_closed() = 0;

  /// Starts a drain and returns at once (POST /admin/drain); the instance
  /// then waits, not ready, for SIGTERM.
  virtual void start_drain() = 0;
};

} // namespace goring
