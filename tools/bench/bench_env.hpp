/// What every scenario works with: the options, the targets, the client
/// threads and their stats, the server probes, and the two phases every
/// scenario has (open the connections, close them).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/post.hpp>

#include "tools/bench/io_pool.hpp"
#include "tools/bench/options.hpp"
#include "tools/bench/server_probe.hpp"
#include "tools/bench/target.hpp"
#include "tools/bench/thread_stats.hpp"
#include "tools/bench/ws_client.hpp"

namespace goring::bench {

using clock = std::chrono::steady_clock;

/// Clients and the thread each one runs on.
struct client_set {
  std::vector<std::shared_ptr<ws_client>> clients;
  std::vector<std::size_t> threads;
};

/// How the connection phase went.
struct connect_result {
  std::size_t requested = 0;
  std::size_t open = 0;
  std::size_t failed = 0;
  double seconds = 0;
  /// The phase hit the hard cap with attempts still pending.
  bool capped = false;
};

class bench_env {
public:
  /// Resolves the targets and opens the probes; throws std::runtime_error
  /// when one cannot be.
  explicit bench_env(const bench_options& options);

  const bench_options& opt;
  target primary;
  std::optional<target> secondary;
  std::chrono::milliseconds step_timeout;
  server_probe probe;
  connection_counters counters;
  /// One per client thread, touched only by that thread until the pool has
  /// stopped.
  std::vector<std::unique_ptr<thread_stats>> stats;
  /// Declared last: destroyed first, with the handlers it still holds.
  io_pool pool;

  /// bench-{run}-{n}
  std::string user(std::size_t n) const;
  /// The target of a pair's callee (or of every second connection).
  const target& second_target() const {
    return secondary ? *secondary : primary;
  }
  /// A client for user `n` on thread `thread`, added to `set`.
  std::shared_ptr<ws_client> add_client(client_set& set, std::size_t thread, const target& where,
                                        std::size_t n);

  /// Runs `f` on client thread `thread`.
  template <class F>
  void on_thread(std::size_t thread, F&& f) {
    boost::asio::post(pool.context(thread), std::forward<F>(f));
  }

  /// Opens every client of `set`, at most `concurrency` attempts in flight
  /// (each thread works through its own clients). With `in_order` they are
  /// opened one after another in the order of `set`, each once the last is
  /// upgraded (bare-relay pairs connections in the order their upgrade
  /// requests arrive). Bounded by the hard cap.
  connect_result connect_all(const client_set& set, std::size_t concurrency, bool in_order);

  /// Closes every open client and waits (up to the step timeout) for the
  /// close handshakes.
  void close_all(const client_set& set);

  /// Stops the client threads; then every thread's stats may be read.
  thread_stats stop_and_merge();
};

/// Polls `done` every 2 ms until it holds or `deadline` passes; returns
/// whether it held.
template <class Predicate>
bool wait_until(Predicate done, clock::time_point deadline);

/// Sleeps `seconds` (at most the hard cap).
void sleep_seconds(double seconds);

/// Seconds as a clock duration.
clock::duration seconds_of(double seconds);

} // namespace goring::bench

#include <thread>

template <class Predicate>
bool goring::bench::wait_until(Predicate done, clock::time_point deadline) {
  for (;;) {
    if (done())
      return true;
    if (clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}
