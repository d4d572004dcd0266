/// goring-bench: a load generator for servers that speak goring's wire
/// protocol. See `goring-bench --help`.
#include <csignal>
#include <ctime>
#include <fstream>
#include <iostream>

#include <sys/resource.h>

#include "tools/bench/options.hpp"
#include "tools/bench/scenarios.hpp"

using namespace goring::bench;

namespace {

/// Open files kept for what is not a WebSocket: Redis, epoll, eventfds,
/// timers, the JSON file, stdio.
constexpr rlim_t spare_files = 64;

/// The open-file limit, raised to the hard limit when it is lower.
rlim_t open_file_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
    return 1024;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
      lim = raised;
  }
  return lim.rlim_cur;
}

std::string utc_now() {
  char buf[32];
  auto now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

} // namespace

int main(int argc, char** argv) {
  bench_options opt;
  try {
    opt = parse_options(argc, argv);
  } catch (const help_requested&) {
    std::cout << usage();
    return 0;
  } catch (const usage_error& e) {
    std::cerr << "goring-bench: " << e.what() << "\n";
    return 2;
  }

  auto limit = open_file_limit();
  auto needed = opt.connections_needed();
  if (limit <= spare_files || needed > limit - spare_files) {
    std::cerr << "goring-bench: " << needed << " connections need " << needed + spare_files
              << " open files; the limit here is " << limit << " (at most "
              << (limit > spare_files ? limit - spare_files : 0) << " connections)\n";
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);

  try {
    bench_env env(opt);
    report rep;
    auto root = rep.root();
    root.set("scenario", scenario_name(opt.scenario));
    root.set("started_at", utc_now());
    root.set("run", opt.run);
    root.set("url", opt.url);
    if (opt.url2.empty())
      root.set_null("url2");
    else
      root.set("url2", opt.url2);
    root.set("threads", env.pool.size());
    root.set("timeout_s", opt.timeout);

    scenario_outcome outcome;
    switch (opt.scenario) {
      case scenario_kind::connect:
        outcome = run_connect(env, root);
        break;
      case scenario_kind::setup:
        outcome = run_setup(env, root);
        break;
      case scenario_kind::relay:
        outcome = run_relay(env, root);
        break;
      case scenario_kind::idle:
        outcome = run_idle(env, root);
        break;
    }
    root.set("ok", outcome.ok);

    auto text = rep.text();
    std::cout << text << std::flush;
    if (!opt.json_path.empty()) {
      std::ofstream file{opt.json_path};
      file << text;
      if (!file) {
        std::cerr << "goring-bench: cannot write " << opt.json_path << "\n";
        return 1;
      }
    }
    std::cerr << outcome.summary << (outcome.ok ? "" : " [NOT OK: see the report's errors]")
              << "\n";
    return outcome.ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "goring-bench: " << e.what() << "\n";
    return 1;
  }
}
