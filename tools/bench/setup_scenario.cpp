/// setup: caller/callee pairs going through full call cycles, closed loop
/// (each pair starts its next call when the last is over) or open loop (a
/// set rate of call starts, whatever the server's pace).
#include "tools/bench/scenarios.hpp"

#include <deque>

#include <boost/asio/steady_timer.hpp>

#include "tools/bench/call_pair.hpp"

namespace goring::bench {

namespace {

/// What one thread's pairs are to do.
struct setup_plan {
  /// Cycles per pair; 0: until the deadline.
  std::size_t cycles_per_pair = 0;
  clock::time_point deadline;
  /// Open loop: cycle starts per second on this thread; 0: closed loop.
  double rate = 0;
};

/// Runs one thread's pairs through their cycles and counts them.
class setup_driver {
public:
  setup_driver(boost::asio::io_context& io, std::vector<call_pair*> pairs, thread_stats& stats,
               setup_plan plan, std::atomic<std::size_t>& threads_done)
    : pairs_(std::move(pairs)), stats_(stats), plan_(plan), threads_done_(threads_done),
      ticker_(io), attempts_(pairs_.size(), 0) {
    // nop
  }

  /// On the driver's thread.
  void start() {
    for (std::size_t i = 0; i < pairs_.size(); ++i) {
      pairs_[i]->on_over([this, i](call_pair&, bool completed) { on_over(i, completed); });
      if (!pairs_[i]->usable()) {
        ++stats_.errors["pair not connected"];
        continue;
      }
      if (plan_.rate > 0) {
        idle_.push_back(i);
      } else {
        ++busy_;
        pairs_[i]->start_call(true);
      }
    }
    if (plan_.rate > 0) {
      interval_ = seconds_of(1.0 / plan_.rate);
      next_tick_ = clock::now();
      tick();
    } else {
      ticking_ = false;
      check_done();
    }
  }

private:
  bool more_wanted(std::size_t attempts) const {
    return (plan_.cycles_per_pair == 0 || attempts < plan_.cycles_per_pair)
           && clock::now() < plan_.deadline;
  }

  void on_over(std::size_t i, bool completed) {
    if (completed)
      ++stats_.cycles_completed;
    else
      ++stats_.cycles_failed;
    ++attempts_[i];
    if (plan_.rate == 0 && more_wanted(attempts_[i]) && !pairs_[i]->dead()) {
      pairs_[i]->start_call(true);
      return;
    }
    --busy_;
    if (plan_.rate > 0 && !pairs_[i]->dead())
      idle_.push_back(i);
    check_done();
  }

  void tick() {
    auto now = clock::now();
    if (now >= plan_.deadline || (plan_.cycles_per_pair != 0 && started_ >= target_starts())) {
      ticking_ = false;
      check_done();
      return;
    }
    if (idle_.empty()) {
      ++stats_.skipped;
    } else {
      auto i = idle_.front();
      idle_.pop_front();
      ++busy_;
      ++started_;
      pairs_[i]->start_call(true);
    }
    next_tick_ += interval_;
    // A thread that fell far behind does not make up for it in one burst.
    if (next_tick_ < now - std::chrono::seconds(1))
      next_tick_ = now;
    ticker_.expires_at(next_tick_);
    ticker_.async_wait([this](boost::system::error_code ec) {
      if (!ec)
        tick();
    });
  }

  std::size_t target_starts() const {
    return plan_.cycles_per_pair * pairs_.size();
  }

  void check_done() {
    if (busy_ == 0 && !ticking_ && !reported_) {
      reported_ = true;
      threads_done_.fetch_add(1);
    }
  }

  std::vector<call_pair*> pairs_;
  thread_stats& stats_;
  setup_plan plan_;
  std::atomic<std::size_t>& threads_done_;
  boost::asio::steady_timer ticker_;
  std::vector<std::size_t> attempts_;
  std::deque<std::size_t> idle_;
  std::size_t busy_ = 0;
  std::size_t started_ = 0;
  bool ticking_ = true;
  bool reported_ = false;
  clock::duration interval_{};
  clock::time_point next_tick_;
};

} // namespace

scenario_outcome run_setup(bench_env& env, json_object root) {
  const auto& opt = env.opt;
  auto threads = env.pool.size();
  client_set set;
  std::vector<std::unique_ptr<call_pair>> pairs;
  std::vector<std::vector<call_pair*>> by_thread(threads);
  for (std::size_t p = 0; p < opt.pairs; ++p) {
    auto t = p % threads;
    auto caller = env.add_client(set, t, env.primary, 2 * p);
    auto callee = env.add_client(set, t, env.second_target(), 2 * p + 1);
    pairs.push_back(std::make_unique<call_pair>(caller, callee, env.user(2 * p + 1), *env.stats[t],
                                                env.step_timeout));
    by_thread[t].push_back(pairs.back().get());
  }

  auto opened = env.connect_all(set, opt.concurrency, false);
  sleep_seconds(opt.settle);

  std::atomic<std::size_t> threads_done{0};
  std::vector<std::unique_ptr<setup_driver>> drivers;
  auto before = env.probe.take();
  auto started = clock::now();
  auto deadline = started + seconds_of(opt.duration);
  for (std::size_t t = 0; t < threads; ++t) {
    setup_plan plan;
    plan.cycles_per_pair = opt.cycles;
    plan.deadline = deadline;
    if (opt.rate > 0)
      plan.rate =
        opt.rate * static_cast<double>(by_thread[t].size()) / static_cast<double>(opt.pairs);
    drivers.push_back(std::make_unique<setup_driver>(env.pool.context(t), by_thread[t],
                                                     *env.stats[t], plan, threads_done));
    env.on_thread(t, [d = drivers.back().get()] { d->start(); });
  }
  // The last cycles may each take up to the step timeout, and a failed one
  // its cool-down.
  bool finished = wait_until([&] { return threads_done.load() == threads; },
                             deadline + env.step_timeout + std::chrono::seconds(1));
  auto seconds = std::chrono::duration<double>(clock::now() - started).count();
  auto after = env.probe.take();
  auto dropped = env.counters.dropped.load();
  env.close_all(set);
  auto stats = env.stop_and_merge();

  put_connections(root, opened, stats, dropped);
  auto cycles = root.object("cycles");
  cycles.set("mode", opt.rate > 0 ? "open" : "closed");
  if (opt.rate > 0)
    cycles.set("rate", opt.rate);
  cycles.set("pairs", opt.pairs);
  if (opt.cycles > 0)
    cycles.set("requested", opt.cycles * opt.pairs);
  else
    cycles.set_null("requested");
  cycles.set("completed", stats.cycles_completed);
  cycles.set("failed", stats.cycles_failed);
  cycles.set("timeouts", stats.timeouts);
  cycles.set("retries", stats.retries);
  cycles.set("skipped_ticks", stats.skipped);
  cycles.set("seconds", seconds);
  auto per_s = seconds > 0 ? static_cast<double>(stats.cycles_completed) / seconds : 0.0;
  cycles.set("per_s", per_s);
  cycles.set("finished_in_time", finished);
  auto latency = root.object("latency_ms");
  put_latency(latency, "start_to_ringing", stats.start_to_ringing);
  put_latency(latency, "start_to_ring", stats.start_to_ring);
  put_latency(latency, "accept_to_accepted", stats.accept_to_accepted);
  put_latency(latency, "end_to_ended", stats.end_to_ended);
  put_latency(latency, "cycle", stats.cycle);
  auto delta = after - before;
  auto completed = static_cast<double>(stats.cycles_completed);
  put_server(root, delta, "cycle", completed);
  put_errors(root, stats);

  scenario_outcome out;
  out.ok = opened.open == opened.requested && finished && stats.cycles_failed == 0
           && (opt.cycles == 0 || opt.rate > 0 || stats.cycles_completed == opt.cycles * opt.pairs);
  out.summary =
    format("setup: %llu cycles (%llu failed) in %.2f s (%.0f/s), start-to-ring p50 %.2f p90 %.2f "
           "p99 %.2f ms, accept-to-accepted p50 %.2f p90 %.2f p99 %.2f ms",
           static_cast<unsigned long long>(stats.cycles_completed),
           static_cast<unsigned long long>(stats.cycles_failed), seconds, per_s,
           ms(stats.start_to_ring.percentile(0.5)), ms(stats.start_to_ring.percentile(0.9)),
           ms(stats.start_to_ring.percentile(0.99)), ms(stats.accept_to_accepted.percentile(0.5)),
           ms(stats.accept_to_accepted.percentile(0.9)),
           ms(stats.accept_to_accepted.percentile(0.99)))
    + server_summary(delta, "cycle", completed);
  return out;
}

} // namespace goring::bench
