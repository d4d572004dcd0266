/// idle: C WebSockets held open and silent for H seconds, while the
/// server's memory and CPU (and Redis' commands) are read.
#include "tools/bench/scenarios.hpp"

namespace goring::bench {

namespace {

uint64_t total_rss_kib(const server_snapshot& s) {
  uint64_t kib = 0;
  for (const auto& p : s.processes)
    kib += p.rss_kib;
  return kib;
}

} // namespace

scenario_outcome run_idle(bench_env& env, json_object root) {
  const auto& opt = env.opt;
  client_set set;
  for (std::size_t i = 0; i < opt.connections; ++i)
    env.add_client(set, i % env.pool.size(), i % 2 == 1 ? env.second_target() : env.primary, i);

  auto before_connect = env.probe.take();
  auto opened = env.connect_all(set, opt.concurrency, false);
  sleep_seconds(opt.settle);
  auto dropped_before = env.counters.dropped.load();
  auto hold_start = env.probe.take();
  sleep_seconds(opt.hold);
  auto hold_end = env.probe.take();
  auto dropped = env.counters.dropped.load() - dropped_before;
  env.close_all(set);
  auto stats = env.stop_and_merge();

  auto held = hold_end - hold_start;
  auto user_seconds = static_cast<double>(opened.open) * held.seconds;
  put_connections(root, opened, stats, dropped_before);
  auto idle = root.object("idle");
  idle.set("connections", opened.open);
  idle.set("settle_s", opt.settle);
  idle.set("hold_s", held.seconds);
  idle.set("dropped_while_held", dropped);
  double rss_per_connection = 0;
  double core_fraction = held.seconds > 0 ? held.cpu_seconds / held.seconds : 0.0;
  if (env.probe.has_processes()) {
    auto rss_before = total_rss_kib(before_connect);
    auto rss_after = total_rss_kib(hold_end);
    rss_per_connection = opened.open == 0 ? 0.0
                                          : (static_cast<double>(rss_after) - rss_before)
                                              / static_cast<double>(opened.open);
    idle.set("rss_kib_before", rss_before);
    idle.set("rss_kib_after", rss_after);
    idle.set("rss_kib_per_connection", rss_per_connection);
    idle.set("cpu_s", held.cpu_seconds);
    idle.set("cpu_core_fraction", core_fraction);
  }
  put_server(root, held, "idle_user_second", user_seconds);
  put_errors(root, stats);

  scenario_outcome out;
  out.ok = opened.open == opened.requested && !opened.capped && dropped == 0;
  out.summary = format("idle: %zu/%zu connections held %.1f s, %zu dropped", opened.open,
                       opened.requested, held.seconds, dropped);
  if (env.probe.has_processes())
    out.summary += format(", server RSS %.1f KiB/connection, CPU %.2f%% of a core",
                          rss_per_connection, core_fraction * 100);
  if (held.has_redis && user_seconds > 0)
    out.summary += format(", redis %.4f commands/user-s, %llu redis clients",
                          static_cast<double>(held.redis_commands) / user_seconds,
                          static_cast<unsigned long long>(held.redis_clients));
  return out;
}

} // namespace goring::bench
