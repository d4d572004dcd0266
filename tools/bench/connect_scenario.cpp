/// connect: N WebSockets opened as fast as the server takes them.
#include "tools/bench/scenarios.hpp"

namespace goring::bench {

scenario_outcome run_connect(bench_env& env, json_object root) {
  const auto& opt = env.opt;
  client_set set;
  for (std::size_t i = 0; i < opt.connections; ++i)
    env.add_client(set, i % env.pool.size(), i % 2 == 1 ? env.second_target() : env.primary, i);

  auto before = env.probe.take();
  auto opened = env.connect_all(set, opt.concurrency, false);
  // With --settle, what the servers do right after the upgrades (registering
  // users) is counted too.
  sleep_seconds(opt.settle);
  auto after = env.probe.take();
  auto dropped = env.counters.dropped.load();
  env.close_all(set);
  auto stats = env.stop_and_merge();

  root.set("concurrency", opt.concurrency);
  put_connections(root, opened, stats, dropped);
  auto delta = after - before;
  put_server(root, delta, "connection", static_cast<double>(opened.open));
  put_errors(root, stats);

  scenario_outcome out;
  out.ok = opened.open == opened.requested && !opened.capped;
  out.summary =
    format("connect: %zu/%zu open in %.3f s (%.0f/s), upgrade p50 %.2f ms p99 %.2f ms, "
           "%zu failed",
           opened.open, opened.requested, opened.seconds,
           opened.seconds > 0 ? static_cast<double>(opened.open) / opened.seconds : 0.0,
           ms(stats.upgrade.percentile(0.5)), ms(stats.upgrade.percentile(0.99)), opened.failed)
    + server_summary(delta, "connection", static_cast<double>(opened.open));
  return out;
}

} // namespace goring::bench
