#include "tests/support/cluster_runner.hpp"

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <doctest/doctest.h>

#include "redis/cluster_topology.hpp"
#include "redis/command_runner.hpp"
#include "tests/support/process.hpp"

namespace goring::test {

using namespace std::chrono_literals;

namespace {
/// Far above any transition's steps, below ctest's timeout.
constexpr auto answer_timeout = 20s;
} // namespace

struct cluster_runner::impl {
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard =
    boost::asio::make_work_guard(io);
  std::unique_ptr<redis::cluster_topology> topology;
  std::unique_ptr<redis::command_runner> runner;
  std::atomic<bool> up{false};
  /// Replies handed to the runner so far.
  std::atomic<std::size_t> completed{0};
  std::thread thread;

  /// Here rather than in ~cluster_runner, so that a constructor that
  /// throws (a REQUIRE timed out) still stops the thread.
  ~impl() {
    if (!thread.joinable())
      return;
    auto done = std::make_shared<std::promise<void>>();
    boost::asio::post(io, [this, done] {
      topology->stop();
      done->set_value();
    });
    done->get_future().wait_for(5s);
    guard.reset();
    io.stop();
    thread.join();
  }
};

cluster_runner::cluster_runner(redis_cluster& cluster) : impl_(std::make_unique<impl>()) {
  auto& m = *impl_;
  redis::cluster_topology::options opts;
  redis::endpoint seed;
  seed.port = cluster.nodes()[0]->port();
  opts.seeds.push_back(seed);
  opts.commands.client_name = "goring:test:commands";
  opts.subscriber.client_name = "goring:test:subscriber";
  opts.control.client_name = "goring:test:cluster";
  redis::topology_events events;
  events.on_up = [&m](redis::link_role role, bool) {
    if (role == redis::link_role::commands)
      m.up = true;
  };
  events.on_down = [](redis::link_role, const std::string&) {};
  events.on_failover = [] {};
  events.on_message = [](const std::string&, const std::string&) {};
  m.topology = std::make_unique<redis::cluster_topology>(m.io, std::move(opts), events);
  m.runner =
    std::make_unique<redis::command_runner>(*m.topology, [&m](uint64_t id, redis::reply r) {
      boost::asio::post(m.io, [&m, id, r = std::move(r)]() mutable {
        m.runner->complete(id, std::move(r));
        ++m.completed;
      });
    });
  m.thread = std::thread{[&m] { m.io.run(); }};
  boost::asio::post(m.io, [&m] { m.topology->start(); });
  REQUIRE(wait_until([&m] { return m.up.load(); }, 20s));
  // Nothing else is in flight yet: the next script_count replies are the
  // loads'.
  boost::asio::post(m.io, [&m] { m.runner->load_scripts(); });
  REQUIRE(wait_until([&m] { return m.completed.load() >= redis::script_count; }, 10s));
}

cluster_runner::~cluster_runner() = default;

redis::reply cluster_runner::run(redis::script_call call) {
  return run_together({std::move(call)}).at(0);
}

std::vector<redis::reply> cluster_runner::run_together(std::vector<redis::script_call> calls) {
  auto& m = *impl_;
  std::vector<std::shared_ptr<std::promise<redis::reply>>> promises;
  for (std::size_t i = 0; i < calls.size(); ++i)
    promises.push_back(std::make_shared<std::promise<redis::reply>>());
  boost::asio::post(m.io, [&m, calls = std::move(calls), promises]() mutable {
    for (std::size_t i = 0; i < calls.size(); ++i)
      m.runner->run(std::move(calls[i]),
                    [p = promises[i]](redis::reply r) { p->set_value(std::move(r)); });
  });
  std::vector<redis::reply> out;
  for (auto& p : promises) {
    auto f = p->get_future();
    REQUIRE(f.wait_for(answer_timeout) == std::future_status::ready);
    out.push_back(f.get());
  }
  return out;
}

redis::reply cluster_runner::command(std::vector<std::string> argv) {
  auto& m = *impl_;
  auto promise = std::make_shared<std::promise<redis::reply>>();
  auto future = promise->get_future();
  boost::asio::post(m.io, [&m, argv = std::move(argv), promise]() mutable {
    m.topology->command(std::move(argv),
                        [promise](redis::reply r) { promise->set_value(std::move(r)); });
  });
  REQUIRE(future.wait_for(answer_timeout) == std::future_status::ready);
  return future.get();
}

} // namespace goring::test
