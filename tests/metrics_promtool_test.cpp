/// goring's exposition checked by Prometheus' own linter: `promtool check metrics` must find
/// nothing in a registry holding every kind of family and the process metrics.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>

#include <sys/wait.h>
#include <unistd.h>

#include "metrics/metrics.hpp"

namespace {

using goring::metrics::registry;

/// promtool's path, or empty when it is not on PATH.
std::string find_promtool() {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "";
  while (!dirs.empty()) {
    auto colon = dirs.find(':');
    auto dir = std::string(dirs.substr(0, colon));
    auto candidate = (dir.empty() ? std::string(".") : dir) + "/promtool";
    if (access(candidate.c_str(), X_OK) == 0)
      return candidate;
    if (colon == std::string_view::npos)
      break;
    dirs.remove_prefix(colon + 1);
  }
  return {};
}

/// What `promtool check metrics` said about a text given on its stdin.
struct verdict {
  int exit_status = -1; // -1 when it did not exit normally
  std::string output;   // stdout and stderr together
};

verdict check_metrics(const std::string& exposition) {
  auto promtool = find_promtool();
  // CI installs promtool, so its absence is a broken setup, not a reason to skip.
  REQUIRE_MESSAGE(!promtool.empty(), "promtool is not on PATH; install it with "
                                     "`apt-get install -y --no-install-recommends prometheus`");
  // The text goes through a file on stdin, which keeps popen one-directional.
  char path[] = "/tmp/goring_metrics_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE_MESSAGE(fd >= 0, "cannot create a temporary file");
  for (std::size_t written = 0; written < exposition.size();) {
    auto n = write(fd, exposition.data() + written, exposition.size() - written);
    REQUIRE(n > 0);
    written += static_cast<std::size_t>(n);
  }
  close(fd);
  auto command = "'" + promtool + "' check metrics < '" + path + "' 2>&1";
  verdict result;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE_MESSAGE(pipe != nullptr, "cannot run " << command);
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;)
    result.output.append(buffer, n);
  int status = pclose(pipe);
  unlink(path);
  if (status != -1 && WIFEXITED(status))
    result.exit_status = WEXITSTATUS(status);
  return result;
}

/// A registry with every kind of family goring uses, each with samples.
void fill(registry& r) {
  goring::metrics::register_process_metrics(r);
  r.counter("goring_redis_errors_total", "Redis commands that failed.").with().inc();
  auto& received =
    r.counter("goring_messages_received_total", "Frames received from clients, by type.", {"type"});
  received.with({"call.start"}).inc(3);
  received.with({"odd \"type\"\\\nhere"}).inc();
  r.counter("goring_cpu_seconds_total", "A counter with a fraction.").with().inc(0.25);
  r.gauge("goring_calls_active", "Calls in progress on this instance.").with().set(2);
  r.gauge("goring_build_info", "Build of this goring, always 1.", {"version"})
    .with({"0.1.0"})
    .set(1);
  r.gauge("goring_headroom_ratio", "A gauge at infinity.")
    .with()
    .set(std::numeric_limits<double>::infinity());
  auto& setup =
    r.histogram("goring_call_setup_seconds", "From call.start to call.accepted, in seconds.")
      .with();
  for (double seconds : {0.0002, 0.03, 1.5, 20.0})
    setup.observe(seconds);
  auto& redis = r.histogram("goring_redis_command_seconds", "Redis round trips, by command.",
                            {"command"}, goring::metrics::exponential_buckets(0.0001, 4, 8));
  redis.with({"EVALSHA"}).observe(0.002);
  redis.with({"PUBLISH"}).observe(0.0004);
  r.gauge_callback("goring_connections", "Open client WebSocket connections.", [] { return 5.0; });
  r.gauge_callback("goring_actors", "Live actors, by kind.", {"kind"}, [] {
    return std::vector<goring::metrics::labelled_value>{{{"call"}, 1}, {{"connection"}, 5}};
  });
  r.counter_callback("goring_redis_reconnects_total", "Reconnections to Redis.",
                     [] { return 0.0; });
}

} // namespace

TEST_CASE("promtool finds nothing in an exposition with every kind of family") {
  registry r;
  fill(r);
  auto exposition = r.expose();
  CAPTURE(exposition);
  auto result = check_metrics(exposition);
  CHECK_MESSAGE(result.exit_status == 0, "promtool said:\n" << result.output);
  CHECK_MESSAGE(result.output.empty(), "promtool said:\n" << result.output);
}

TEST_CASE("promtool finds nothing in the global registry") {
  auto result = check_metrics(goring::metrics::global().expose());
  CHECK_MESSAGE(result.exit_status == 0, "promtool said:\n" << result.output);
  CHECK_MESSAGE(result.output.empty(), "promtool said:\n" << result.output);
}

TEST_CASE("the check itself fails on a lint finding") {
  // Written by hand, since the registry refuses it: proves findings are not lost on the way.
  auto result = check_metrics("# HELP requests Requests.\n# TYPE requests counter\nrequests 1\n");
  CHECK(result.exit_status != 0);
  CHECK(result.output.find("_total") != std::string::npos);
}
