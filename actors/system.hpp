/// Boots the actor system and the Redis bridge for one goring instance, and
/// gives net/ and main what they need of the actors without CAF headers.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "auth/jwt_auth.hpp"
#include "config/config.hpp"
#include "net/runtime_port.hpp"
#include "redis/reply.hpp"

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace goring {

class actor_runtime final : public runtime_port {
public:
  /// Starts the actors; Redis I/O runs on `io`.
  actor_runtime(const settings& config, boost::asio::io_context& io);
  ~actor_runtime();

  actor_runtime(const actor_runtime&) = delete;
  actor_runtime& operator=(const actor_runtime&) = delete;

  /// Spawns the connection actor of an accepted WebSocket.
  std::shared_ptr<connection_port> open_connection(std::weak_ptr<client_link> link,
                                                   const auth::claims& who,
                                                   const std::string& remote_addr) override;

  /// Answers an admin API request (/admin/...) asynchronously: `done` gets
  /// the HTTP status and a JSON body, on a CAF thread.
  void admin(std::string method, std::string target,
             std::function<void(unsigned status, std::string body)> done) override;

  /// The name of an essential actor (Redis bridge, alarm) that stopped, or
  /// null: when set the process is broken and must be restarted.
  const char* stopped_actor() const override;

  /// Both Redis connections are up.
  bool redis_healthy() const override;

  /// Redis works, pub/sub delivers, the token keys are there (JWT_JWKS_URL),
  /// and the instance is not draining.
  bool ready() const override;

  /// Draining: new WebSockets are refused.
  bool draining() const override;

  /// The token check connection actors use for auth.refresh; set before
  /// the first connection.
  void set_verifier(std::shared_ptr<const auth::jwt_verifier> verifier);

  /// Sends one Redis command through the bridge's command path (its
  /// reconnects, its command timeout, its metrics): `done` gets the reply,
  /// or an error reply, exactly once, on a CAF thread. For components
  /// outside the actors (webhooks/delivery_worker).
  void redis_command(std::vector<std::string> argv, std::function<void(redis::reply)> done);

  /// "SERVER_ID/run-nonce": this run's name, as its owner tokens carry it.
  const std::string& instance_id() const;

  /// Publishes the admin listener's address in the instance heartbeat.
  void set_admin_addr(std::string addr);

  /// Counts a client cut off for not reading (goring_slow_consumer_disconnects_total).
  void count_slow_consumer() override;

  /// WebSocket sessions alive, so a drain can wait for their close frames.
  void session_opened() override;
  void session_closed() override;
  int live_sessions() const;

  /// Starts a drain and returns at once (POST /admin/drain); the instance
  /// then waits, not ready, for SIGTERM.
  void start_drain() override;

  /// Drains: readiness goes false, every WebSocket is closed with 1012
  /// (calls go on, to be resumed elsewhere), keys are released and the
  /// heartbeat removed. Waits at most `grace`.
  void drain(std::chrono::milliseconds grace);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace goring
