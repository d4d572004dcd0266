/// relay: accepted calls ping-ponging webrtc.ice; with --bare, pairs of
/// plain WebSockets on bare-relay ping-ponging frames of the same size.
#include "tools/bench/scenarios.hpp"

#include <thread>

#include "tools/bench/call_pair.hpp"

namespace goring::bench {

namespace {

/// Where the calls are, read by the main thread, counted by the client
/// threads.
struct relay_progress {
  enum phase_kind : int { setting_up, relaying, ending };
  std::atomic<int> phase{setting_up};
  std::atomic<std::size_t> live{0};
  std::atomic<std::size_t> failed{0};
  std::atomic<std::size_t> relaying_pairs{0};
  std::atomic<std::size_t> relay_done{0};
  /// Calls that ended while frames were being relayed.
  std::atomic<std::size_t> lost{0};
  std::atomic<std::size_t> ended{0};
};

} // namespace

scenario_outcome run_relay(bench_env& env, json_object root) {
  const auto& opt = env.opt;
  auto threads = env.pool.size();
  client_set set;
  std::vector<std::unique_ptr<call_pair>> pairs;
  std::vector<std::vector<call_pair*>> by_thread(threads);
  for (std::size_t k = 0; k < opt.calls; ++k) {
    auto t = k % threads;
    auto caller = env.add_client(set, t, env.primary, 2 * k);
    auto callee = env.add_client(set, t, env.second_target(), 2 * k + 1);
    pairs.push_back(std::make_unique<call_pair>(caller, callee, env.user(2 * k + 1), *env.stats[t],
                                                env.step_timeout));
    by_thread[t].push_back(pairs.back().get());
  }

  // bare-relay pairs connections in the order their upgrade requests
  // arrive: they are opened one after another, caller then callee.
  auto opened = env.connect_all(set, opt.concurrency, opt.bare);
  sleep_seconds(opt.settle);

  relay_progress progress;
  for (std::size_t t = 0; t < threads; ++t) {
    env.on_thread(t, [&progress, &env, bare = opt.bare, mine = by_thread[t], t] {
      for (auto* pair : mine) {
        pair->on_live([&progress](call_pair&) { progress.live.fetch_add(1); });
        pair->on_over([&progress](call_pair&, bool) {
          switch (progress.phase.load()) {
            case relay_progress::setting_up:
              progress.failed.fetch_add(1);
              break;
            case relay_progress::relaying:
              progress.lost.fetch_add(1);
              break;
            default:
              progress.ended.fetch_add(1);
          }
        });
        if (!pair->usable()) {
          ++env.stats[t]->errors["pair not connected"];
          progress.failed.fetch_add(1);
        } else if (bare) {
          progress.live.fetch_add(1);
        } else {
          pair->start_call(false);
        }
      }
    });
  }
  wait_until([&] { return progress.live.load() + progress.failed.load() >= opt.calls; },
             clock::now() + env.step_timeout + std::chrono::seconds(1));

  progress.phase = relay_progress::relaying;
  auto before = env.probe.take();
  auto started = clock::now();
  auto stop_at = started + seconds_of(opt.duration);
  std::atomic<std::size_t> frame_bytes{0};
  // --rate R relayed messages/s: each call's share of the round trips (two
  // relays each), evenly paced.
  auto interval =
    opt.rate > 0 ? seconds_of(2.0 * static_cast<double>(opt.calls) / opt.rate) : clock::duration{};
  for (std::size_t t = 0; t < threads; ++t) {
    env.on_thread(t, [&, mine = by_thread[t]] {
      for (auto* pair : mine) {
        if (!pair->usable() || (!opt.bare && !pair->live()))
          continue;
        frame_bytes = pair->relay_frame_bytes();
        progress.relaying_pairs.fetch_add(1);
        pair->start_relay(
          opt.window, stop_at, [&progress](call_pair&) { progress.relay_done.fetch_add(1); },
          interval);
      }
    });
  }
  std::this_thread::sleep_until(stop_at);
  auto after = env.probe.take();
  bool drained =
    wait_until([&] { return progress.relay_done.load() >= progress.relaying_pairs.load(); },
               stop_at + env.step_timeout);
  auto relaying = progress.relaying_pairs.load();

  progress.phase = relay_progress::ending;
  if (!opt.bare) {
    std::atomic<std::size_t> to_end{0};
    std::atomic<std::size_t> threads_counted{0};
    for (std::size_t t = 0; t < threads; ++t) {
      env.on_thread(t, [&to_end, &threads_counted, mine = by_thread[t]] {
        for (auto* pair : mine) {
          if (pair->live()) {
            to_end.fetch_add(1);
            pair->end_call();
          }
        }
        threads_counted.fetch_add(1);
      });
    }
    // Once every thread has counted its live calls, `to_end` is final.
    wait_until(
      [&] { return threads_counted.load() == threads && progress.ended.load() >= to_end.load(); },
      clock::now() + env.step_timeout);
  }
  auto dropped = env.counters.dropped.load();
  env.close_all(set);
  auto stats = env.stop_and_merge();

  put_connections(root, opened, stats, dropped);
  root.set("bare", opt.bare);
  auto calls = root.object("calls");
  calls.set("requested", opt.calls);
  calls.set("live", progress.live.load());
  calls.set("failed", progress.failed.load());
  calls.set("lost_while_relaying", progress.lost.load());
  calls.set("relaying", relaying);
  auto seconds = std::chrono::duration<double>(stop_at - started).count();
  auto per_s = static_cast<double>(stats.messages) / seconds;
  auto messages = root.object("messages");
  messages.set("relayed", stats.messages);
  messages.set("seconds", seconds);
  messages.set("per_s", per_s);
  messages.set("window", opt.window);
  if (opt.rate > 0)
    messages.set("rate", opt.rate);
  messages.set("frame_bytes", frame_bytes.load());
  messages.set("drained", drained);
  put_latency(root.object("latency_ms"), "round_trip", stats.round_trip);
  auto delta = after - before;
  put_server(root, delta, "message", static_cast<double>(stats.messages));
  put_errors(root, stats);

  scenario_outcome out;
  out.ok = opened.open == opened.requested && relaying == opt.calls && progress.lost.load() == 0
           && drained && stats.messages > 0;
  out.summary = format("relay%s: %llu messages over %zu calls in %.2f s (%.0f/s), round trip p50 "
                       "%.3f ms p99 %.3f ms",
                       opt.bare ? " (bare)" : "", static_cast<unsigned long long>(stats.messages),
                       relaying, seconds, per_s, ms(stats.round_trip.percentile(0.5)),
                       ms(stats.round_trip.percentile(0.99)))
                + server_summary(delta, "message", static_cast<double>(stats.messages));
  return out;
}

} // namespace goring::bench
