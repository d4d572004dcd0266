/// goring-bench's command line: the scenario, its sizes and bounds.
#pragma once

#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/types.h>

namespace goring::bench {

enum class scenario_kind { connect, setup, relay, idle };

/// The longest any measured phase (and any connection phase) may last.
inline constexpr double hard_cap_seconds = 120;

/// A command line goring-bench refuses; the message says why.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct bench_options {
  scenario_kind scenario = scenario_kind::connect;
  std::string url = "ws://127.0.0.1:8080/ws";
  /// Empty: one instance.
  std::string url2;
  std::string secret = "dev-secret-change-in-production";
  /// Users are named bench-{run}-{n}; random when not given.
  std::string run;
  unsigned threads = 2;
  /// connect and idle.
  std::size_t connections = 1000;
  /// Connection attempts in flight at once.
  std::size_t concurrency = 100;
  /// setup.
  std::size_t pairs = 10;
  /// setup: cycles per pair; unbounded (then --duration bounds it) when 0
  /// after parsing.
  std::size_t cycles = 0;
  /// setup and relay, in seconds.
  double duration = 0;
  /// setup: open loop at this many cycle starts per second; 0 = closed loop.
  double rate = 0;
  /// relay.
  std::size_t calls = 10;
  std::size_t window = 1;
  bool bare = false;
  /// idle: seconds held.
  double hold = 10;
  /// Seconds to wait between connecting and measuring.
  double settle = 0;
  /// Bound on each step: one connection, one call cycle, a drain.
  double timeout = 10;
  std::vector<pid_t> server_pids;
  std::string redis;
  std::string redis_password;
  std::string json_path;

  /// WebSocket connections the scenario opens.
  std::size_t connections_needed() const;
};

/// Parses argv (argv[1] is the scenario). Throws usage_error; `--help`
/// throws help_requested.
bench_options parse_options(int argc, char** argv);

/// `--help` was asked for.
struct help_requested {};

/// The text of `goring-bench --help`.
std::string usage();

const char* scenario_name(scenario_kind kind);

} // namespace goring::bench
