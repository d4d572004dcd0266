#include "metrics/instance_metrics.hpp"

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace goring {

namespace {

/// Where commands go, and how long there was nowhere (steady nanoseconds).
struct master_state {
  std::mutex mutex;
  std::string addr;
  long long lost_since = steady_ns();
  long long unknown_ns = 0;
};

master_state& master() {
  static master_state* state = new master_state;
  return *state;
}

} // namespace

instance_metrics& goring_metrics() {
  static instance_metrics* m = [] {
    auto* out = new instance_metrics;
    auto& reg = metrics::global();
    auto& received = reg.counter("goring_messages_received_total",
                                 "Frames received from clients, by type.", {"type"});
    for (std::size_t i = 0; i < out->received.size(); ++i)
      out->received[i] =
        &received.with({std::string{protocol::type_name(static_cast<protocol::client_type>(i))}});
    out->received_invalid = &received.with({"invalid"});
    auto& errors =
      reg.counter("goring_errors_sent_total", "Error frames sent to clients, by code.", {"code"});
    for (std::size_t i = 1; i < out->errors.size(); ++i)
      out->errors[i] =
        &errors.with({std::string{protocol::wire_code(static_cast<protocol::signal_error>(i))}});
    out->sent =
      &reg.counter("goring_messages_sent_total", "Frames sent to clients, by type.", {"type"});
    out->connections_opened =
      &reg.counter("goring_connections_opened_total",
                   "WebSocket upgrades by result: accepted, unauthorized, draining, broken, "
                   "replaced, forbidden_origin, ip_rate_limited, ip_connections, "
                   "instance_full, keys_not_ready.",
                   {"result"});
    out->rate_limited_frames =
      &reg
         .counter("goring_rate_limited_frames_total",
                  "Client frames dropped with error rate_limited (over MESSAGE_RATE).")
         .with();
    out->rate_limit_disconnects =
      &reg
         .counter("goring_rate_limit_disconnects_total",
                  "Clients closed with 1008 for going on over MESSAGE_RATE.")
         .with();
    out->http_refused =
      &reg.counter("goring_http_requests_refused_total",
                   "HTTP requests on the public port refused while being read, by reason: "
                   "header_too_large, body_too_large, handshake_timeout.",
                   {"reason"});
    out->static_files =
      &reg.counter("goring_static_requests_total",
                   "GET/HEAD of the web client's files under WEB_ROOT, by result: served, "
                   "not_found, refused.",
                   {"result"});
    out->tokens_refused =
      &reg.counter("goring_tokens_refused_total",
                   "Tokens refused on the upgrade and in auth.refresh, by reason: missing, "
                   "malformed, algorithm, unknown_kid, no_kid, signature, expired, claim, "
                   "no_keys.",
                   {"reason"});
    out->calls =
      &reg.counter("goring_calls_total", "Calls by outcome, counted where decided.", {"outcome"});
    out->call_setup =
      &reg
         .histogram("goring_call_setup_seconds",
                    "From the ring to the accept, as the accepting instance saw it.")
         .with();
    out->call_duration =
      &reg
         .histogram("goring_call_duration_seconds", "From the accept to the end of a call.", {},
                    metrics::exponential_buckets(1, 2, 14))
         .with();
    out->relay = &reg
                    .histogram("goring_relay_seconds",
                               "Time inside goring from a webrtc frame read to the frame handed "
                               "to the peer's socket or published.",
                               {}, metrics::exponential_buckets(1e-5, 2, 16))
                    .with();
    out->redis_command = &reg.histogram("goring_redis_command_seconds",
                                        "Redis round trips by command (script name for EVALSHA).",
                                        {"command"}, metrics::exponential_buckets(5e-5, 2, 16));
    out->redis_commands_failed =
      &reg.counter("goring_redis_command_errors_total",
                   "Redis commands answered with an error, by command.", {"command"});
    out->redis_reconnects =
      &reg.counter("goring_redis_reconnects_total", "Redis connections made again after a loss.")
         .with();
    master(); // the time without a master counts from here
    out->redis_failovers = &reg
                              .counter("goring_redis_failovers_total",
                                       "Times the command path came up on another Redis master "
                                       "than before (a Sentinel failover followed).")
                              .with();
    reg.gauge_callback("goring_redis_master_info",
                       "1 for the Redis master commands go to now; no sample while none is known.",
                       {"addr"}, [] {
                         auto& m = master();
                         std::lock_guard<std::mutex> guard{m.mutex};
                         std::vector<metrics::labelled_value> out;
                         if (m.lost_since == 0)
                           out.push_back({{m.addr}, 1});
                         return out;
                       });
    reg.counter_callback("goring_redis_master_unknown_seconds_total",
                         "Seconds during which no Redis master took commands (down, or a "
                         "failover under way).",
                         [] {
                           auto& m = master();
                           std::lock_guard<std::mutex> guard{m.mutex};
                           auto ns =
                             m.unknown_ns + (m.lost_since != 0 ? steady_ns() - m.lost_since : 0);
                           return static_cast<double>(ns) / 1e9;
                         });
    auto& pubsub =
      reg.counter("goring_pubsub_messages_total",
                  "Pub/sub messages published (out) and received (in).", {"direction"});
    out->pubsub_in = &pubsub.with({"in"});
    out->pubsub_out = &pubsub.with({"out"});
    reg.gauge("goring_build_info", "Always 1; the labels say which build runs.", {"version"})
      .with({GORING_VERSION})
      .set(1);
    return out;
  }();
  return *m;
}

metrics::counter& instance_metrics::sent_of(std::string_view type) {
  // Few distinct types: a small cache per thread keeps the family's lookup
  // (and its mutex) off the hot path after the first frame of each type.
  thread_local std::unordered_map<std::string, metrics::counter*> cache;
  auto it = cache.find(std::string{type});
  if (it != cache.end())
    return *it->second;
  auto* c = &sent->with({std::string{type}});
  cache.emplace(std::string{type}, c);
  return *c;
}

void instance_metrics::count_call(const char* outcome) {
  thread_local std::unordered_map<std::string, metrics::counter*> cache;
  auto it = cache.find(outcome);
  if (it == cache.end())
    it = cache.emplace(outcome, &calls->with({outcome})).first;
  it->second->inc();
}

void instance_metrics::count_connection(const char* result) {
  connections_opened->with({result}).inc();
}

void instance_metrics::count_refused_token(const char* reason) {
  tokens_refused->with({reason}).inc();
}

void instance_metrics::count_received(const protocol::frame_parse& parsed) {
  if (parsed.message)
    received[static_cast<std::size_t>(parsed.message->type)]->inc();
  else
    received_invalid->inc();
}

void instance_metrics::redis_master_known(const std::string& addr) {
  auto& m = master();
  std::lock_guard<std::mutex> guard{m.mutex};
  if (m.lost_since != 0)
    m.unknown_ns += steady_ns() - m.lost_since;
  m.lost_since = 0;
  m.addr = addr;
}

void instance_metrics::redis_master_lost() {
  auto& m = master();
  std::lock_guard<std::mutex> guard{m.mutex};
  if (m.lost_since == 0)
    m.lost_since = steady_ns();
}

void instance_metrics::count_error(protocol::signal_error code) {
  auto i = static_cast<std::size_t>(code);
  if (i > 0 && i < errors.size())
    errors[i]->inc();
}

std::string_view frame_type(std::string_view frame) {
  auto key = frame.find("\"type\"");
  if (key == std::string_view::npos || key > 64)
    return "other";
  auto open = frame.find('"', frame.find(':', key + 6));
  if (open == std::string_view::npos)
    return "other";
  auto close = frame.find('"', open + 1);
  if (close == std::string_view::npos)
    return "other";
  // Only known types become label values: a relay is the client's text.
  auto type = frame.substr(open + 1, close - open - 1);
  for (std::string_view known :
       {"call.ringing", "call.ring", "call.accepted", "call.rejected", "call.ended", "call.resumed",
        "error", "webrtc.offer", "webrtc.answer", "webrtc.ice", "ice.servers"})
    if (type == known)
      return known;
  return "other";
}

long long steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

double seconds_since(long long start_ns) {
  return static_cast<double>(steady_ns() - start_ns) / 1e9;
}

} // namespace goring
