#include "tools/bench/bench_env.hpp"

#include <algorithm>
#include <cmath>
#include <thread>

#include "tools/bench/token.hpp"

namespace goring::bench {

clock::duration seconds_of(double seconds) {
  return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
}

void sleep_seconds(double seconds) {
  std::this_thread::sleep_for(seconds_of(std::min(seconds, hard_cap_seconds)));
}

bench_env::bench_env(const bench_options& options)
  : opt(options), primary(resolve_target(options.url)),
    secondary(options.url2.empty() ? std::nullopt
                                   : std::optional<target>{resolve_target(options.url2)}),
    step_timeout(std::chrono::milliseconds(static_cast<int64_t>(options.timeout * 1000))),
    probe(options.server_pids, options.redis, options.redis_password), pool(options.threads) {
  for (std::size_t i = 0; i < pool.size(); ++i)
    stats.push_back(std::make_unique<thread_stats>());
}

std::string bench_env::user(std::size_t n) const {
  return "bench-" + opt.run + "-" + std::to_string(n);
}

std::shared_ptr<ws_client> bench_env::add_client(client_set& set, std::size_t thread,
                                                 const target& where, std::size_t n) {
  auto client =
    std::make_shared<ws_client>(pool.context(thread), where, mint_token(opt.secret, user(n)),
                                *stats[thread], counters, step_timeout);
  set.clients.push_back(client);
  set.threads.push_back(thread);
  return client;
}

namespace {

/// One thread's share of a concurrent connection phase.
struct lane_queue {
  std::vector<std::shared_ptr<ws_client>> clients;
  std::size_t next = 0;
};

void launch_next(const std::shared_ptr<lane_queue>& queue) {
  if (queue->next == queue->clients.size())
    return;
  auto& client = queue->clients[queue->next++];
  client->connect([queue](bool) { launch_next(queue); });
}

/// The in-order chain: client `i` starts connecting once client `i - 1` is
/// upgraded (or has failed), on whichever thread client `i` lives.
struct ordered_chain {
  bench_env* env;
  client_set set;
};

void connect_in_order(const std::shared_ptr<ordered_chain>& chain, std::size_t i) {
  if (i == chain->set.clients.size())
    return;
  chain->set.clients[i]->connect([chain, i](bool) {
    if (i + 1 < chain->set.clients.size())
      chain->env->on_thread(chain->set.threads[i + 1],
                            [chain, i] { connect_in_order(chain, i + 1); });
  });
}

} // namespace

connect_result bench_env::connect_all(const client_set& set, std::size_t concurrency,
                                      bool in_order) {
  connect_result result;
  result.requested = set.clients.size();
  auto open_before = counters.open.load();
  auto failed_before = counters.failed.load();
  auto started = clock::now();
  if (set.clients.empty())
    return result;
  if (in_order) {
    auto chain = std::make_shared<ordered_chain>(ordered_chain{this, set});
    on_thread(set.threads[0], [chain] { connect_in_order(chain, 0); });
  } else {
    std::vector<std::shared_ptr<lane_queue>> queues(pool.size());
    for (auto& q : queues)
      q = std::make_shared<lane_queue>();
    for (std::size_t i = 0; i < set.clients.size(); ++i)
      queues[set.threads[i]]->clients.push_back(set.clients[i]);
    for (std::size_t t = 0; t < pool.size(); ++t) {
      auto share = static_cast<double>(queues[t]->clients.size()) / set.clients.size();
      auto lanes = std::max<std::size_t>(
        1, static_cast<std::size_t>(std::llround(share * static_cast<double>(concurrency))));
      on_thread(t, [queue = queues[t], lanes] {
        for (std::size_t l = 0; l < lanes; ++l)
          launch_next(queue);
      });
    }
  }
  auto settled = [&] {
    return counters.open.load() - open_before + counters.failed.load() - failed_before
           >= set.clients.size();
  };
  result.capped = !wait_until(settled, started + seconds_of(hard_cap_seconds));
  result.seconds = std::chrono::duration<double>(clock::now() - started).count();
  result.open = counters.open.load() - open_before;
  result.failed = counters.failed.load() - failed_before;
  return result;
}

void bench_env::close_all(const client_set& set) {
  std::vector<std::vector<std::shared_ptr<ws_client>>> by_thread(pool.size());
  for (std::size_t i = 0; i < set.clients.size(); ++i)
    by_thread[set.threads[i]].push_back(set.clients[i]);
  for (std::size_t t = 0; t < pool.size(); ++t)
    on_thread(t, [clients = std::move(by_thread[t])] {
      for (auto& c : clients)
        c->close();
    });
  wait_until([&] { return counters.closed.load() >= counters.open.load(); },
             clock::now() + step_timeout);
}

thread_stats bench_env::stop_and_merge() {
  pool.stop();
  thread_stats all;
  for (auto& s : stats)
    all.merge(*s);
  return all;
}

} // namespace goring::bench
