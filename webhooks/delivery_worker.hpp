/// Delivers the call events of the webhook stream (redis/keys.hpp,
/// webhook_stream) to WEBHOOK_URL, signed, at least once: every instance
/// reads new events in one consumer group (XREADGROUP), POSTs them with
/// outbound/http_client, acknowledges and deletes each one delivered
/// (XACK, XDEL), retries the others with backoff (webhooks/retry.hpp) until
/// WEBHOOK_MAX_AGE, and claims the events a dead instance left pending
/// (XAUTOCLAIM). Bounded: at most max_in_flight requests and max_held
/// events in memory per instance; the rest wait in Redis. It never touches
/// signaling: a slow receiver slows nothing but this worker.
/// Metrics: goring_webhook_* (docs/operations.md).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "outbound/url.hpp"
#include "redis/reply.hpp"

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace goring::outbound {
class http_client;
} // namespace goring::outbound

namespace goring::webhooks {

/// Sends one Redis command; `done` gets its reply exactly once, on any
/// thread, an error reply when Redis cannot be reached. In goring it goes
/// through the Redis bridge's command path (actors/system.hpp).
using redis_command =
  std::function<void(std::vector<std::string> argv, std::function<void(redis::reply)> done)>;

struct worker_options {
  outbound::url target;
  std::string secret;
  std::chrono::milliseconds max_age{std::chrono::hours(24)};
  /// This instance's consumer name in the group (SERVER_ID/run-nonce).
  std::string consumer;
  /// The streams to read, each in the same consumer group: one on a
  /// single Redis, one per session partition on a cluster
  /// (redis/keys.hpp, cluster_partitions).
  std::vector<std::string> streams;
  std::string group;
  /// POSTs running at once.
  std::size_t max_in_flight = 16;
  /// Events read and not yet delivered or dropped, held in memory.
  std::size_t max_held = 256;
  /// How often new events are looked for in a stream while it has none.
  std::chrono::milliseconds poll_interval{200};
  /// How often pending events of dead consumers are claimed, and the
  /// stream's length and oldest event are read for the metrics.
  std::chrono::milliseconds claim_interval{5'000};
  /// An event pending this long without its consumer touching it is
  /// claimed. Longer than the longest retry wait plus a request, since a
  /// live consumer touches (XCLAIM) each event before each retry.
  std::chrono::milliseconds claim_idle{60'000};
  /// One POST, connect to last byte.
  std::chrono::milliseconds request_timeout{5'000};
};

/// Registers the goring_webhook_* families, so /metrics lists them (at
/// zero) also while webhooks are off: alert rules and dashboards find them.
void register_metrics();

class delivery_worker {
public:
  delivery_worker(boost::asio::io_context& io, std::shared_ptr<outbound::http_client> client,
                  redis_command redis, worker_options options);
  /// Stops (see stop()).
  ~delivery_worker();

  delivery_worker(const delivery_worker&) = delete;
  delivery_worker& operator=(const delivery_worker&) = delete;

  /// Creates the consumer group if needed and starts reading. Call once.
  void start();

  /// Reads and sends nothing more; events still held stay pending in Redis
  /// for another instance to claim.
  void stop();

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace goring::webhooks
