/// The four scenarios of goring-bench. Each runs on a fresh bench_env,
/// fills the JSON report and returns whether everything asked for was done,
/// with a one-line summary.
#pragma once

#include <string>

#include "tools/bench/bench_env.hpp"
#include "tools/bench/report.hpp"

namespace goring::bench {

struct scenario_outcome {
  bool ok = false;
  std::string summary;
};

/// N connections as fast as they go: connections/s, upgrade latency.
scenario_outcome run_connect(bench_env& env, json_object root);
/// Full call cycles, closed or open loop: cycles/s, setup latencies.
scenario_outcome run_setup(bench_env& env, json_object root);
/// Live calls ping-ponging webrtc.ice (or bare frames): messages/s, round trip.
scenario_outcome run_relay(bench_env& env, json_object root);
/// Idle connections held: server RSS per connection, CPU while idle.
scenario_outcome run_idle(bench_env& env, json_object root);

/// The "connections" block: what the connection phase opened, how fast,
/// the upgrade latency, and the connections the server dropped.
void put_connections(json_object root, const connect_result& r, const thread_stats& stats,
                     std::size_t dropped);

/// The "errors" block: every kind of failure with its count, and frames
/// that matched no step.
void put_errors(json_object root, const thread_stats& stats);

/// printf into a std::string.
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

/// " server 12.3 us/cycle, redis 2.00 commands/cycle" for what is known.
std::string server_summary(const server_delta& d, const char* unit, double units);

} // namespace goring::bench
