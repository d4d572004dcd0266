#include "tools/bench/options.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <random>
#include <thread>

namespace goring::bench {

namespace {

double parse_number(const std::string& flag, const std::string& text, double low, double high) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !std::isfinite(value))
    throw usage_error(flag + " wants a number, not '" + text + "'");
  if (value < low || value > high)
    throw usage_error(flag + " must be between " + std::to_string(static_cast<long long>(low))
                      + " and " + std::to_string(static_cast<long long>(high)));
  return value;
}

std::size_t parse_count(const std::string& flag, const std::string& text, double low, double high) {
  auto value = parse_number(flag, text, low, high);
  if (value != std::floor(value))
    throw usage_error(flag + " wants a whole number, not '" + text + "'");
  return static_cast<std::size_t>(value);
}

std::string random_run_id() {
  std::random_device rd;
  std::mt19937 rng{rd()};
  static constexpr char digits[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 6; ++i)
    id += digits[rng() % 16];
  return id;
}

bool valid_run_id(const std::string& id) {
  if (id.empty() || id.size() > 32)
    return false;
  for (char c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_')
      return false;
  return true;
}

} // namespace

const char* scenario_name(scenario_kind kind) {
  switch (kind) {
    case scenario_kind::connect:
      return "connect";
    case scenario_kind::setup:
      return "setup";
    case scenario_kind::relay:
      return "relay";
    case scenario_kind::idle:
      return "idle";
  }
  return "?";
}

std::size_t bench_options::connections_needed() const {
  switch (scenario) {
    case scenario_kind::connect:
    case scenario_kind::idle:
      return connections;
    case scenario_kind::setup:
      return 2 * pairs;
    case scenario_kind::relay:
      return 2 * calls;
  }
  return 0;
}

std::string usage() {
  return R"(goring-bench SCENARIO [options]: a load generator for servers that speak
goring's WebSocket protocol (ws://HOST:PORT/ws?token=JWT, JSON frames).

Scenarios
  connect   open --connections N WebSockets, --concurrency C at a time:
            connections/s, upgrade latency (TCP connect to 101) p50/p99
  setup     --pairs P caller/callee pairs doing full call cycles (call.start,
            call.ringing + call.ring, call.accept, call.accepted, call.end,
            call.ended): closed loop (--cycles K per pair and/or --duration S)
            or open loop (--rate R cycle starts/s over all pairs): cycles/s,
            start-to-ring and accept-to-accepted p50/p90/p99
  relay     --calls K accepted calls ping-ponging webrtc.ice for --duration S
            (--window W frames in flight per call): relayed messages/s,
            round trip p50/p99. With --bare the target is bare-relay: pairs
            of plain WebSockets exchange frames of a webrtc.ice frame's size
  idle      --connections C idle WebSockets held --hold H seconds: server RSS
            per connection, server CPU while idle (needs --server-pid)

Options
  --url URL            target, ws://HOST:PORT[/PATH]   [ws://127.0.0.1:8080/ws]
  --url2 URL           a second instance: the callee of every pair (connect,
                       idle: every second connection) goes there
  --secret S           HS256 secret the tokens are signed with
                                               [dev-secret-change-in-production]
  --run ID             users are bench-ID-N                           [random]
  --threads N          client threads, one io_context each      [CPU cores]
  --connections N      connect, idle                                  [1000]
  --concurrency C      connection attempts in flight                   [100]
  --pairs P            setup                                            [10]
  --cycles K           setup: cycles per pair     [100 unless --duration set]
  --duration S         setup, relay (relay: 5); at most 120
  --rate R             setup: open loop, R cycle starts per second;
                       relay: R relayed messages per second over all calls
                       (two per round trip), each call's pings paced evenly:
                       round trips at a set load
  --calls K            relay                                            [10]
  --window W           relay: frames in flight per call                  [1]
  --bare               relay: the target is bare-relay (no call protocol);
                       connections open one at a time, as it pairs them in
                       the order their upgrade requests arrive
  --hold H             idle: seconds to hold, at most 120               [10]
  --settle S           seconds between connecting and measuring (idle: 1) [0]
  --timeout S          bound on each step (a connection, a cycle)       [10]
  --server-pid PID     server process (repeatable, one per instance): CPU
                       per cycle / message / connection, RSS (idle)
  --redis HOST:PORT    Redis the servers use: INFO commandstats deltas per
                       cycle / message / idle user-second, connected_clients
  --redis-password P
  --json FILE          also write the JSON report to FILE
  --help

Output: JSON on stdout (and --json FILE), a one-line summary on stderr.
Latencies are in milliseconds; percentiles are within 0.4%. Redis command
counts come from INFO commandstats and include commands run inside scripts;
goring-bench's own INFO calls are left out. connected_clients leaves out
goring-bench's own Redis connection.

Bounds: every measured phase and every connection phase lasts at most 120 s;
connections are refused beyond the open-file limit (getrlimit) less 64.
Exit status: 0 when everything asked for was done, 1 when some connection,
cycle or call failed (the report says which), 2 on a bad command line.
)";
}

bench_options parse_options(int argc, char** argv) {
  bench_options opt;
  opt.threads = std::max(1u, std::min(std::thread::hardware_concurrency(), 64u));
  if (argc < 2)
    throw usage_error("no scenario given (connect, setup, relay, idle); see --help");
  std::string first = argv[1];
  if (first == "--help" || first == "-h")
    throw help_requested{};
  if (first == "connect")
    opt.scenario = scenario_kind::connect;
  else if (first == "setup")
    opt.scenario = scenario_kind::setup;
  else if (first == "relay")
    opt.scenario = scenario_kind::relay;
  else if (first == "idle")
    opt.scenario = scenario_kind::idle;
  else
    throw usage_error("unknown scenario '" + first + "' (connect, setup, relay, idle)");

  bool cycles_set = false;
  bool duration_set = false;
  bool settle_set = false;
  for (int i = 2; i < argc; ++i) {
    std::string flag = argv[i];
    std::string value;
    bool inline_value = false;
    if (auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      inline_value = true;
    }
    auto next = [&]() -> const std::string& {
      if (!inline_value) {
        if (i + 1 >= argc)
          throw usage_error(flag + " wants a value");
        value = argv[++i];
      }
      return value;
    };
    if (flag == "--help" || flag == "-h") {
      throw help_requested{};
    } else if (flag == "--bare") {
      opt.bare = true;
    } else if (flag == "--url") {
      opt.url = next();
    } else if (flag == "--url2") {
      opt.url2 = next();
    } else if (flag == "--secret") {
      opt.secret = next();
    } else if (flag == "--run") {
      opt.run = next();
      if (!valid_run_id(opt.run))
        throw usage_error("--run wants 1 to 32 letters, digits, '-' or '_'");
    } else if (flag == "--threads") {
      opt.threads = static_cast<unsigned>(parse_count(flag, next(), 1, 64));
    } else if (flag == "--connections") {
      opt.connections = parse_count(flag, next(), 1, 1e6);
    } else if (flag == "--concurrency") {
      opt.concurrency = parse_count(flag, next(), 1, 1e6);
    } else if (flag == "--pairs") {
      opt.pairs = parse_count(flag, next(), 1, 5e5);
    } else if (flag == "--cycles") {
      opt.cycles = parse_count(flag, next(), 1, 1e8);
      cycles_set = true;
    } else if (flag == "--duration") {
      opt.duration = parse_number(flag, next(), 0.001, hard_cap_seconds);
      duration_set = true;
    } else if (flag == "--rate") {
      opt.rate = parse_number(flag, next(), 0.001, 1e7);
    } else if (flag == "--calls") {
      opt.calls = parse_count(flag, next(), 1, 5e5);
    } else if (flag == "--window") {
      opt.window = parse_count(flag, next(), 1, 1000);
    } else if (flag == "--hold") {
      opt.hold = parse_number(flag, next(), 0, hard_cap_seconds);
    } else if (flag == "--settle") {
      opt.settle = parse_number(flag, next(), 0, 60);
      settle_set = true;
    } else if (flag == "--timeout") {
      opt.timeout = parse_number(flag, next(), 0.01, 60);
    } else if (flag == "--server-pid") {
      opt.server_pids.push_back(static_cast<pid_t>(parse_count(flag, next(), 1, 4194304)));
    } else if (flag == "--redis") {
      opt.redis = next();
    } else if (flag == "--redis-password") {
      opt.redis_password = next();
    } else if (flag == "--json") {
      opt.json_path = next();
    } else {
      throw usage_error("unknown option " + flag + "; see --help");
    }
  }

  if (opt.run.empty())
    opt.run = random_run_id();
  if (opt.bare && opt.scenario != scenario_kind::relay)
    throw usage_error("--bare is for the relay scenario only");
  if (opt.bare && !opt.url2.empty())
    throw usage_error("--bare pairs connections on one bare-relay; --url2 does not apply");
  if (opt.rate > 0 && opt.scenario != scenario_kind::setup && opt.scenario != scenario_kind::relay)
    throw usage_error("--rate is for the setup and relay scenarios only");
  if (opt.scenario == scenario_kind::setup && !cycles_set)
    opt.cycles = duration_set ? 0 : 100;
  if (opt.scenario == scenario_kind::relay && !duration_set)
    opt.duration = 5;
  if (!duration_set && opt.scenario == scenario_kind::setup)
    opt.duration = hard_cap_seconds;
  if (opt.scenario == scenario_kind::idle && !settle_set)
    opt.settle = 1;
  if (opt.concurrency > opt.connections_needed())
    opt.concurrency = opt.connections_needed();
  return opt;
}

} // namespace goring::bench
