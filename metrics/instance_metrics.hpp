/// goring's own metrics, looked up once: the hot path keeps the references
/// and updates them without locks (see metrics/metrics.hpp).
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "codec/protocol.hpp"
#include "metrics/metrics.hpp"

namespace goring {

struct instance_metrics {
  /// Frames received from clients, by type ("invalid" when unparseable).
  std::array<metrics::counter*, protocol::client_type_count> received{};
  metrics::counter* received_invalid = nullptr;
  /// Errors sent to clients, by code.
  std::array<metrics::counter*, protocol::signal_error_count> errors{};
  metrics::counter_family* sent = nullptr;
  metrics::counter_family* connections_opened = nullptr;
  metrics::counter_family* calls = nullptr;
  metrics::counter_family* redis_commands_failed = nullptr;
  metrics::histogram* call_setup = nullptr;
  metrics::histogram* call_duration = nullptr;
  metrics::histogram* relay = nullptr;
  metrics::histogram_family* redis_command = nullptr;
  metrics::counter* redis_reconnects = nullptr;
  /// The command path came up on another master than before (a failover
  /// followed).
  metrics::counter* redis_failovers = nullptr;
  metrics::counter* pubsub_in = nullptr;
  metrics::counter* pubsub_out = nullptr;
  /// Frames dropped for going over MESSAGE_RATE, and clients closed (1008)
  /// for going on.
  metrics::counter* rate_limited_frames = nullptr;
  metrics::counter* rate_limit_disconnects = nullptr;
  /// HTTP requests on the public port refused before any routing:
  /// header_too_large (431), body_too_large (413), handshake_timeout.
  metrics::counter_family* http_refused = nullptr;
  /// GET/HEAD under WEB_ROOT, by result: served, not_found, refused (an
  /// unsafe path: traversal, a symlink out of the root, a file too big).
  metrics::counter_family* static_files = nullptr;
  /// Tokens refused on the upgrade and in auth.refresh, by reason (see
  /// auth::refusal_reason).
  metrics::counter_family* tokens_refused = nullptr;

  /// Frames sent to clients, by type; cached per type name.
  metrics::counter& sent_of(std::string_view type);
  /// goring_calls_total{outcome}: accepted, rejected, cancelled, no_answer,
  /// busy, offline, failed, ended.
  void count_call(const char* outcome);
  /// goring_connections_opened_total{result}: accepted, unauthorized,
  /// draining, replaced, forbidden_origin, ip_rate_limited, ip_connections,
  /// instance_full, keys_not_ready.
  void count_connection(const char* result);
  /// goring_tokens_refused_total{reason}: missing, malformed, algorithm,
  /// unknown_kid, no_kid, signature, expired, claim, no_keys.
  void count_refused_token(const char* reason);
  void count_received(const protocol::frame_parse& parsed);
  /// The master commands go to now: goring_redis_master_info{addr} reads
  /// it, and goring_redis_master_unknown_seconds_total stops counting.
  void redis_master_known(const std::string& addr);
  /// No master takes commands now (lost, or a failover under way); the time
  /// until redis_master_known counts as unknown. Also the state at start.
  void redis_master_lost();
  void count_error(protocol::signal_error code);
};

/// The process's metrics, registered in metrics::global() on first use.
instance_metrics& goring_metrics();

/// The "type" of a frame, read without a JSON parse (for sent counts).
std::string_view frame_type(std::string_view frame);

/// Seconds since `start_ns` (from steady_ns()).
double seconds_since(long long start_ns);

/// Monotonic nanoseconds, for timing spans across actors.
long long steady_ns();

} // namespace goring
