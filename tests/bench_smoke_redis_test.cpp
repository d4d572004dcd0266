/// Smoke test of goring-bench and bare-relay: every scenario at tiny sizes
/// against the real goring (and `relay --bare` against bare-relay), each
/// run a second or two. It checks that the bench exits 0 and that its JSON
/// report holds plausible figures; never how fast anything is (that is what
/// the benchmarks are for).
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/goring_process.hpp"
#include "tests/support/process.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/token.hpp"
#include "tests/support/ws_client.hpp"

#ifndef GORING_BENCH_BINARY
#error "GORING_BENCH_BINARY must name the goring-bench binary under test"
#endif
#ifndef BARE_RELAY_BINARY
#error "BARE_RELAY_BINARY must name the bare-relay binary under test"
#endif

using namespace goring::test;
using namespace std::chrono_literals;

namespace {

namespace fs = std::filesystem;

/// One finished goring-bench run.
struct bench_result {
  int exit_code = -1;
  json report;
  /// Its stdout and stderr, for the failure message.
  std::string output;
};

std::string read_file(const fs::path& path) {
  std::ifstream in{path};
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// Runs goring-bench with `args` (plus `--json FILE`) and waits for it, at
/// most `timeout`.
bench_result run_bench(std::vector<std::string> args, std::chrono::milliseconds timeout = 30s) {
  static int runs = 0;
  auto dir = fs::temp_directory_path()
             / ("goring-bench-smoke-" + std::to_string(::getpid()) + "-" + std::to_string(++runs));
  fs::create_directories(dir);
  auto json_path = dir / "report.json";
  auto log_path = dir / "output.log";
  std::vector<std::string> argv{GORING_BENCH_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--json", json_path.string()});

  bench_result result;
  {
    child_process bench{argv, {}, log_path.string()};
    // Signal 0 sends nothing: this only waits for the exit.
    int status = bench.stop(0, timeout);
    if (status >= 0 && WIFEXITED(status))
      result.exit_code = WEXITSTATUS(status);
  }
  result.output = read_file(log_path);
  result.report = json::parse(read_file(json_path));
  fs::remove_all(dir);
  return result;
}

/// The member at `path` of the report, or nullptr when it is missing.
const rapidjson::Value* member(const json& report, std::initializer_list<const char*> path) {
  if (!report.is_object())
    return nullptr;
  const rapidjson::Value* at = &report.value();
  for (const char* key : path) {
    if (!at->IsObject())
      return nullptr;
    auto it = at->FindMember(key);
    if (it == at->MemberEnd())
      return nullptr;
    at = &it->value;
  }
  return at;
}

/// The number at `path`; the test case stops when there is none.
double number(const json& report, std::initializer_list<const char*> path) {
  auto* v = member(report, path);
  std::string where;
  for (const char* key : path)
    where += std::string{where.empty() ? "" : "."} + key;
  INFO("report member " << where);
  REQUIRE(v != nullptr);
  REQUIRE(v->IsNumber());
  return v->GetDouble();
}

/// Exit 0, a report that says ok, and the run's output shown when not.
void require_success(const bench_result& run) {
  INFO("goring-bench output:\n" << run.output);
  REQUIRE(run.exit_code == 0);
  REQUIRE(run.report.is_object());
  auto* ok = member(run.report, {"ok"});
  REQUIRE(ok != nullptr);
  REQUIRE(ok->IsBool());
  CHECK(ok->GetBool());
}

/// p99 >= p50 > 0 for the latency at `path`, and samples behind it.
void check_latency(const json& report, std::initializer_list<const char*> path) {
  std::vector<const char*> keys{path};
  auto at = [&](const char* leaf) {
    std::vector<const char*> full = keys;
    full.push_back(leaf);
    auto* v = &report.value();
    for (const char* key : full) {
      REQUIRE(v->IsObject());
      auto it = v->FindMember(key);
      REQUIRE(it != v->MemberEnd());
      v = &it->value;
    }
    REQUIRE(v->IsNumber());
    return v->GetDouble();
  };
  CHECK(at("count") > 0);
  CHECK(at("p50") > 0);
  CHECK(at("p99") >= at("p50"));
  CHECK(at("max") >= at("p99"));
}

/// A benchmark measures goring, not its limits: every frame and connection
/// comes from one loopback address, far faster than any person sends.
const std::map<std::string, std::string> bench_settings = {{"MESSAGE_RATE", "0"},
                                                           {"MAX_CONNECTIONS", "0"}};

std::vector<std::string> goring_target(const goring_process& server) {
  return {"--url",     "ws://127.0.0.1:" + std::to_string(server.port()) + "/ws",
          "--secret",  test_jwt_secret,
          "--threads", "2",
          "--timeout", "5"};
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
bool accepts_connections(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

} // namespace

TEST_CASE("setup: two pairs go through twenty full call cycles each on goring") {
  redis_server redis;
  goring_process server{redis.addr(), "goring-1", bench_settings};
  auto run =
    run_bench(std::vector<std::string>{"setup"} + goring_target(server)
              + std::vector<std::string>{"--pairs", "2", "--cycles", "20", "--redis", redis.addr(),
                                         "--server-pid", std::to_string(server.pid())});
  require_success(run);
  auto& report = run.report;
  CHECK(number(report, {"connections", "open"}) == 4);
  CHECK(number(report, {"cycles", "requested"}) == 40);
  CHECK(number(report, {"cycles", "completed"}) == 40);
  CHECK(number(report, {"cycles", "failed"}) == 0);
  CHECK(number(report, {"cycles", "per_s"}) > 0);
  check_latency(report, {"latency_ms", "start_to_ring"});
  check_latency(report, {"latency_ms", "accept_to_accepted"});
  check_latency(report, {"latency_ms", "cycle"});
  CHECK(number(report, {"latency_ms", "start_to_ring", "count"}) == 40);
  // goring runs scripts for every cycle; the bench's own INFO is left out.
  CHECK(number(report, {"redis", "commands_per_cycle"}) > 0);
  CHECK(number(report, {"redis", "connected_clients"}) >= 1);
  CHECK(number(report, {"server", "cpu_s"}) >= 0);
  auto* rss = member(report, {"server", "rss_kib"});
  REQUIRE(rss != nullptr);
  REQUIRE(rss->IsArray());
  REQUIRE(rss->Size() == 1);
  CHECK((*rss)[0].GetDouble() > 0);
}

TEST_CASE("relay: two accepted calls ping-pong webrtc.ice through goring") {
  redis_server redis;
  goring_process server{redis.addr(), "goring-1", bench_settings};
  auto run =
    run_bench(std::vector<std::string>{"relay"} + goring_target(server)
              + std::vector<std::string>{"--calls", "2", "--duration", "1", "--redis", redis.addr(),
                                         "--server-pid", std::to_string(server.pid())});
  require_success(run);
  auto& report = run.report;
  CHECK(number(report, {"calls", "live"}) == 2);
  CHECK(number(report, {"calls", "relaying"}) == 2);
  CHECK(number(report, {"messages", "relayed"}) > 0);
  CHECK(number(report, {"messages", "per_s"}) > 0);
  CHECK(number(report, {"messages", "frame_bytes"}) > 100);
  check_latency(report, {"latency_ms", "round_trip"});
  CHECK(number(report, {"server", "cpu_us_per_message"}) >= 0);
}

TEST_CASE("connect and idle: fifty connections open, then twenty are held idle on goring") {
  redis_server redis;
  goring_process server{redis.addr(), "goring-1", bench_settings};

  auto connect =
    run_bench(std::vector<std::string>{"connect"} + goring_target(server)
              + std::vector<std::string>{"--connections", "50", "--concurrency", "10"});
  require_success(connect);
  CHECK(number(connect.report, {"connections", "requested"}) == 50);
  CHECK(number(connect.report, {"connections", "open"}) == 50);
  CHECK(number(connect.report, {"connections", "failed"}) == 0);
  CHECK(number(connect.report, {"connections", "per_s"}) > 0);
  check_latency(connect.report, {"connections", "upgrade_ms"});

  auto idle =
    run_bench(std::vector<std::string>{"idle"} + goring_target(server)
              + std::vector<std::string>{"--connections", "20", "--hold", "1", "--settle", "0.2",
                                         "--server-pid", std::to_string(server.pid())});
  require_success(idle);
  CHECK(number(idle.report, {"idle", "connections"}) == 20);
  CHECK(number(idle.report, {"idle", "dropped_while_held"}) == 0);
  CHECK(number(idle.report, {"idle", "hold_s"}) >= 1);
  CHECK(number(idle.report, {"idle", "rss_kib_after"}) > 0);
  CHECK(number(idle.report, {"idle", "cpu_core_fraction"}) >= 0);
  CHECK(member(idle.report, {"idle", "rss_kib_per_connection"}) != nullptr);
  CHECK(server.running());
}

TEST_CASE("relay --bare: frames of a webrtc.ice frame's size ping-pong through bare-relay") {
  auto port = free_port();
  child_process relay{{BARE_RELAY_BINARY, "--port", std::to_string(port), "--threads", "1"}};
  REQUIRE(wait_until([&] { return accepts_connections(port); }, 5s));

  auto run =
    run_bench({"relay", "--bare", "--url", "ws://127.0.0.1:" + std::to_string(port) + "/ws",
               "--calls", "2", "--duration", "1", "--threads", "2", "--timeout", "5",
               "--server-pid", std::to_string(relay.pid())});
  require_success(run);
  auto& report = run.report;
  CHECK(number(report, {"connections", "open"}) == 4);
  CHECK(number(report, {"calls", "relaying"}) == 2);
  CHECK(number(report, {"messages", "relayed"}) > 0);
  check_latency(report, {"latency_ms", "round_trip"});

  // The same frame size as a real webrtc.ice frame through goring: a UUID
  // session id in the same frame.
  CHECK(number(report, {"messages", "frame_bytes"}) > 100);

  // It drains and exits 0 on SIGTERM.
  int status = relay.stop(SIGTERM, 5s);
  REQUIRE(status >= 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
