/// What every actor of one goring instance shares: settings, the bridge,
/// and live counts for shutdown.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include <caf/actor.hpp>

#include "config/config.hpp"
#include "auth/jwt_auth.hpp"

namespace goring {

struct instance_context {
  settings config;
  /// "server_id/nonce": prefix of every owner token this process writes;
  /// the nonce tells this run from an earlier run with the same SERVER_ID.
  std::string instance_id;
  caf::actor bridge;
  /// Timers that do not keep a quit actor in memory (actors/alarm.hpp).
  caf::actor alarm;
  std::shared_ptr<std::atomic<std::size_t>> alarms_pending =
    std::make_shared<std::atomic<std::size_t>>(0);
  /// Checks the tokens of auth.refresh, as the upgrade checks them.
  std::shared_ptr<const auth::jwt_verifier> verifier;
  std::atomic<uint64_t> next_connection_id{1};
  std::atomic<int> live_connections{0};
  std::atomic<int> live_calls{0};
  /// Connections the bridge still holds a ws:user key for.
  std::atomic<int> registered_connections{0};
  std::atomic<bool> redis_healthy{false};
  /// Failovers the Redis topology followed (its on_failover), counted
  /// before any command reaches the new master: a call that finds its keys
  /// gone after one writes them back instead of ending.
  std::atomic<uint64_t> redis_failovers{0};
  /// The last pub/sub probe came back (false until the first one does).
  std::atomic<bool> probe_ok{false};
  std::atomic<bool> draining{false};
  /// The name of an actor the instance cannot work without (the Redis
  /// bridge, the alarm) that stopped before shutdown; null while all live.
  /// Nothing restarts them: the process is broken, /health says so, and the
  /// orchestrator restarts it (watch_essential below).
  std::atomic<const char*> stopped_actor{nullptr};
  /// "host:port" of the admin listener, published in the heartbeat.
  std::string admin_addr;
  long long started_at = 0;

  /// Event counts, exported as metrics (lock-free: relaxed atomics).
  std::atomic<uint64_t> probe_failures{0};
  std::atomic<uint64_t> redis_errors{0};
  std::atomic<uint64_t> slow_consumers{0};
  void count_probe_failure() {
    probe_failures.fetch_add(1, std::memory_order_relaxed);
  }
  void count_redis_error() {
    redis_errors.fetch_add(1, std::memory_order_relaxed);
  }

  /// Ready for traffic: Redis works, pub/sub delivers, not draining, no
  /// essential actor stopped, and tokens can be checked (the JWKS of
  /// JWT_JWKS_URL has arrived).
  bool ready() const {
    return redis_healthy.load() && probe_ok.load() && !draining.load()
           && stopped_actor.load() == nullptr && (!verifier || verifier->keys_ready());
  }
};

using context_ptr = std::shared_ptr<instance_context>;

/// Session records of ended calls linger this long so a late accept is told
/// the call is over rather than unknown.
inline std::chrono::milliseconds ended_ttl(const settings& s) {
  return std::min(s.session_ttl, std::chrono::milliseconds{60'000});
}

/// Watches an actor the instance cannot work without: if it stops for any
/// reason but user_shutdown (the runtime's own shutdown), `ctx->stopped_actor`
/// becomes `name` (a string literal) and an error is logged.
void watch_essential(const caf::actor& essential, const context_ptr& ctx, const char* name);

/// Unix time in seconds, as stored in session hashes.
long long unix_now();

} // namespace goring
