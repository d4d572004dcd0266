/// redis::async_connection against a real redis-server: replies, pub/sub,
/// lost servers, reconnects and AUTH.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <hiredis/hiredis.h>

#include "redis/async_connection.hpp"
#include "tests/support/process.hpp"
#include "tests/support/redis_server.hpp"

namespace {

using namespace std::chrono_literals;
using goring::redis::async_connection;
using goring::redis::endpoint;
using goring::redis::reply;
using kind = goring::redis::reply::kind;

/// An io_context run by several threads, as in the server, so the tests
/// also check that the connection keeps to its strand.
class io_runner {
public:
  explicit io_runner(int threads = 3) {
    for (int i = 0; i < threads; ++i)
      threads_.emplace_back([this] {
        io_.run();
        ++finished_;
      });
  }
  ~io_runner() {
    finish();
  }

  boost::asio::io_context& io() {
    return io_;
  }

  /// Lets the threads run out of work; true if they did so within 3 s
  /// (nothing left waiting), else stops the io_context.
  bool finish() {
    if (threads_.empty())
      return true;
    guard_.reset();
    bool drained = goring::test::wait_until(
      [&] { return finished_ == static_cast<int>(threads_.size()); }, 3s);
    halt();
    return drained;
  }

  /// Stops the io_context at once, with whatever work it still has.
  void halt() {
    io_.stop();
    for (auto& t : threads_)
      t.join();
    threads_.clear();
  }

private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type>
    guard_ = boost::asio::make_work_guard(io_);
  std::atomic<int> finished_{0};
  std::vector<std::thread> threads_;
};

/// What a connection reported through its callbacks, for the test to wait on.
class recorder {
public:
  struct state {
    int connected = 0;
    std::vector<std::string> disconnects;
    std::vector<std::pair<std::string, std::string>> messages;
    int inline_calls = 0;
  };

  /// Runs on every on_connected, after it was counted (e.g. to subscribe).
  std::function<void()> on_connected_hook;

  async_connection::callbacks callbacks() {
    async_connection::callbacks cbs;
    cbs.on_connected = [this] {
      update([](state& s) { ++s.connected; });
      if (on_connected_hook)
        on_connected_hook();
    };
    cbs.on_disconnected = [this](const std::string& why) {
      update([&](state& s) { s.disconnects.push_back(why); });
    };
    cbs.on_message
      = [this](const std::string& channel, const std::string& payload) {
          update([&](state& s) { s.messages.emplace_back(channel, payload); });
        };
    return cbs;
  }

  /// Waits until `pred(state)` holds; false after `timeout`.
  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return pred(state_); });
  }

  bool wait_connected(int times, std::chrono::milliseconds timeout = 5s) {
    return wait([&](const state& s) { return s.connected >= times; }, timeout);
  }

  bool wait_disconnected(size_t times, std::chrono::milliseconds timeout = 5s) {
    return wait([&](const state& s) { return s.disconnects.size() >= times; },
                timeout);
  }

  state snapshot() {
    std::lock_guard lock(mutex_);
    return state_;
  }

private:
  template <class F>
  void update(F f) {
    std::lock_guard lock(mutex_);
    if (std::this_thread::get_id() == test_thread_)
      ++state_.inline_calls;
    f(state_);
    changed_.notify_all();
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  state state_;
  std::thread::id test_thread_ = std::this_thread::get_id();
};

endpoint at(uint16_t port, std::string password = {}) {
  endpoint where;
  where.port = port;
  where.password = std::move(password);
  return where;
}

/// Waits (bounded) for a reply handed to a handler, and checks it was not
/// called inline in the calling thread.
template <class Send>
reply await_reply(Send send, std::chrono::milliseconds timeout = 3s) {
  auto promise = std::make_shared<std::promise<std::pair<reply, bool>>>();
  auto future = promise->get_future();
  auto caller = std::this_thread::get_id();
  send([promise, caller](reply r) {
    promise->set_value({std::move(r), std::this_thread::get_id() == caller});
  });
  REQUIRE(future.wait_for(timeout) == std::future_status::ready);
  auto [r, was_inline] = future.get();
  CHECK_FALSE(was_inline);
  return r;
}

reply call(async_connection& conn, std::vector<std::string> argv,
           std::chrono::milliseconds timeout = 3s) {
  return await_reply(
    [&](goring::redis::reply_handler h) {
      conn.command(std::move(argv), std::move(h));
    },
    timeout);
}

reply subscribe(async_connection& conn, std::vector<std::string> channels) {
  return await_reply([&](goring::redis::reply_handler h) {
    conn.subscribe(std::move(channels), std::move(h));
  });
}

/// True once a client of `server` is blocked in BLPOP.
bool has_blocked_client(goring::test::redis_server& server) {
  auto info = server.run({"INFO", "clients"});
  return info.str.find("blocked_clients:1") != std::string::npos;
}

/// How many clients of `server` are subscribed to `channel`.
long long subscribers(goring::test::redis_server& server,
                      const std::string& channel) {
  auto r = server.run({"PUBSUB", "NUMSUB", channel});
  return r.elements.size() == 2 ? r.elements[1].integer : -1;
}

/// True if a redis-server on `port` answers PING at all (NOAUTH counts).
bool answers_ping(uint16_t port) {
  timeval tv{0, 200000};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c == nullptr)
    return false;
  bool answered = false;
  if (c->err == 0) {
    auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
    answered = r != nullptr;
    if (r != nullptr)
      freeReplyObject(r);
  }
  redisFree(c);
  return answered;
}

/// A redis-server the test starts itself, for what redis_server does not
/// offer: a chosen port (to come back on after a kill) and extra arguments
/// such as --requirepass.
class own_redis_server {
public:
  explicit own_redis_server(uint16_t port,
                            std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{
      "redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1",
      "--save",       "",       "--appendonly",       "no",     "--loglevel",
      "warning"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = goring::test::child_process(argv);
    REQUIRE(goring::test::wait_until([&] { return answers_ping(port); }, 5s));
  }

private:
  goring::test::child_process proc_;
};

} // namespace

TEST_CASE("commands get their replies in the order they were sent") {
  goring::test::redis_server server;
  // Declared first: it outlives the io threads that call it.
  recorder events;
  io_runner runner;
  async_connection conn(runner.io(), at(server.port()), events.callbacks());
  conn.start();
  REQUIRE(events.wait_connected(1));
  CHECK(conn.connected());

  auto set = call(conn, {"SET", "greeting", "hello"});
  CHECK(set.type == kind::status);
  CHECK(set.str == "OK");
  auto get = call(conn, {"GET", "greeting"});
  CHECK(get.type == kind::string);
  CHECK(get.str == "hello");
  CHECK(call(conn, {"GET", "no-such-key"}).is_nil());
  auto wrong = call(conn, {"NOSUCHCOMMAND"});
  CHECK(wrong.is_error());

  // 1000 INCRs sent without waiting; the handlers run on one strand, so
  // the vector is only touched by one thread at a time.
  constexpr size_t count = 1000;
  auto values = std::make_shared<std::vector<long long>>();
  auto all = std::make_shared<std::promise<void>>();
  auto done = all->get_future();
  for (size_t i = 0; i < count; ++i)
    conn.command({"INCR", "counter"}, [values, all](reply r) {
      values->push_back(r.type == kind::integer ? r.integer : -1);
      if (values->size() == count)
        all->set_value();
    });
  REQUIRE(done.wait_for(5s) == std::future_status::ready);
  std::vector<long long> expected;
  for (size_t i = 1; i <= count; ++i)
    expected.push_back(static_cast<long long>(i));
  CHECK(*values == expected);
  CHECK(server.run({"GET", "counter"}).str == "1000");
  CHECK(events.snapshot().inline_calls == 0);
}

TEST_CASE("arguments with NUL bytes and CRLF round-trip unchanged") {
  goring::test::redis_server server;
  // Declared first: it outlives the io threads that call it.
  recorder events;
  io_runner runner;
  async_connection conn(runner.io(), at(server.port()), events.callbacks());
  conn.start();
  REQUIRE(events.wait_connected(1));

  const std::string key("key\0with\0nuls", 13);
  const std::string value("a\0b\r\nc\0", 7);
  CHECK(call(conn, {"SET", key, value}).str == "OK");
  auto got = call(conn, {"GET", key});
  CHECK(got.type == kind::string);
  CHECK(got.str.size() == 7);
  CHECK(got.str == value);
  CHECK(server.run({"GET", key}).str == value);
}

TEST_CASE("EVAL returning a nested table arrives as an array reply") {
  goring::test::redis_server server;
  // Declared first: it outlives the io threads that call it.
  recorder events;
  io_runner runner;
  async_connection conn(runner.io(), at(server.port()), events.callbacks());
  conn.start();
  REQUIRE(events.wait_connected(1));

  auto r = call(
    conn, {"EVAL", "return {1, 'two', {3, KEYS[1], ARGV[1]}}", "1", "k", "v"});
  REQUIRE(r.type == kind::array);
  REQUIRE(r.elements.size() == 3);
  CHECK(r.elements[0].type == kind::integer);
  CHECK(r.elements[0].integer == 1);
  CHECK(r.elements[1].type == kind::string);
  CHECK(r.elements[1].str == "two");
  REQUIRE(r.elements[2].type == kind::array);
  REQUIRE(r.elements[2].elements.size() == 3);
  CHECK(r.elements[2].elements[0].integer == 3);
  CHECK(r.elements[2].elements[1].str == "k");
  CHECK(r.elements[2].elements[2].str == "v");

  auto failed
    = call(conn, {"EVAL", "return redis.call('INCR', 'x', 'y')", "0"});
  CHECK(failed.is_error());
}

TEST_CASE("a message published by another client reaches on_message") {
  goring::test::redis_server server;
  // Declared first: it outlives the io threads that call it.
  recorder events;
  io_runner runner;
  async_connection conn(runner.io(), at(server.port()), events.callbacks());
  conn.start();
  REQUIRE(events.wait_connected(1));

  auto confirmed = subscribe(conn, {"room:1"});
  REQUIRE(confirmed.type == kind::array);
  REQUIRE(confirmed.elements.size() == 3);
  CHECK(confirmed.elements[0].str == "subscribe");
  CHECK(confirmed.elements[1].str == "room:1");
  CHECK(confirmed.elements[2].integer == 1);

  CHECK(server.run({"PUBLISH", "room:1", "hello"}).integer == 1);
  REQUIRE(events.wait([](auto& s) { return s.messages.size() >= 1; }));
  CHECK(events.snapshot().messages[0]
        == std::pair<std::string, std::string>("room:1", "hello"));

  // Three channels at once: on_done once, with the last confirmation.
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto last = await_reply([&](goring::redis::reply_handler h) {
    conn.subscribe({"a", "b", "c"}, [calls, h](reply r) {
      ++*calls;
      h(std::move(r));
    });
  });
  REQUIRE(last.elements.size() == 3);
  CHECK(last.elements[1].str == "c");
  CHECK(last.elements[2].integer == 4);

  const std::string binary("x\0y", 3);
  CHECK(server.run({"PUBLISH", "c", binary}).integer == 1);
  REQUIRE(events.wait([](auto& s) { return s.messages.size() >= 2; }));
  CHECK(events.snapshot().messages[1]
        == std::pair<std::string, std::string>("c", binary));
  CHECK(*calls == 1);

  // A subscribed connection refuses plain commands instead of confusing
  // hiredis' pub/sub bookkeeping.
  CHECK(call(conn, {"GET", "x"}).is_error());
  CHECK(call(conn, {"SUBSCRIBE", "d"}).is_error());
  CHECK(events.snapshot().inline_calls == 0);
}

TEST_CASE("after unsubscribe no more messages arrive on that channel") {
  goring::test::redis_server server;
  // Declared first: it outlives the io threads that call it.
  recorder events;
  io_runner runner;
  async_connection conn(runner.io(), at(server.port()), events.callbacks());
  conn.start();
  REQUIRE(events.wait_connected(1));
  REQUIRE(subscribe(conn, {"news", "sports"}).type == kind::array);

  conn.unsubscribe({"news", "never-subscribed"});
  REQUIRE(goring::test::wait_until(
    [&] { return subscribers(server, "news") == 0; }, 2s));
  CHECK(server.run({"PUBLISH", "news", "lost"}).integer == 0);
  // Messages on one connection arrive in order: once "sports" is here, a
  // "news" message would have been too.
  CHECK(server.run({"PUBLISH", "sports", "after"}).integer == 1);
  REQUIRE(events.wait([](auto& s) { return !s.messages.empty(); }));
  auto messages = events.snapshot().messages;
  REQUIRE(messages.size() == 1);
  CHECK(messages[0] == std::pair<std::string, std::string>("sports", "after"));

  // Unsubscribing everything, then subscribing again, works.
  conn.unsubscribe({"sports"});
  REQUIRE(goring::test::wait_until(
    [&] { return subscribers(server, "sports") == 0; }, 2s));
  REQUIRE(subscribe(conn, {"news"}).type == kind::array);
  CHECK(server.run({"PUBLISH", "news", "again"}).integer == 1);
  REQUIRE(events.wait([](auto& s) { return s.messages.size() >= 2; }));
  CHECK(events.snapshot().messages[1]
        == std::pair<std::string, std::string>("news", "again"));
}

TEST_CASE("a command while redis is down gets an error reply at once") {
  goring::test::redis_server server;
  // Declared first: it outlives the io threads that call it.
  recorder events;
  io_runner runner;
  async_connection conn(runner.io(), at(server.port()), events.callbacks());

  // Not started yet.
  auto before = call(conn, {"PING"});
  CHECK(before.is_error());
  CHECK(before.str == "redis not connected");

  conn.start();
  REQUIRE(events.wait_connected(1));
  server.stop();
  REQUIRE(events.wait_disconnected(1));
  CHECK_FALSE(conn.connected());

  auto start = std::chrono::steady_clock::now();
  auto r = call(conn, {"PING"});
  CHECK(std::chrono::steady_clock::now() - start < 500ms);
  CHECK(r.is_error());
  CHECK(r.str == "redis not connected");
  auto sub = subscribe(conn, {"x"});
  CHECK(sub.is_error());

  // It keeps trying (connection refused each time) and says so.
  REQUIRE(events.wait_disconnected(3));
  auto s = events.snapshot();
  CHECK(s.disconnects[0] == "Server closed the connection");
  CHECK(s.disconnects[2] == "Connection refused");
  CHECK(s.connected == 1);
  CHECK(events.snapshot().inline_calls == 0);
}

TEST_CASE("commands in flight when the connection drops get error replies") {
  goring::test::redis_server server;
  // Declared first: it outlives the io threads that call it.
  recorder events;
  io_runner runner;
  async_connection conn(runner.io(), at(server.port()), events.callbacks());
  conn.start();
  REQUIRE(events.wait_connected(1));

  auto blpop = std::make_shared<std::promise<reply>>();
  auto get = std::make_shared<std::promise<reply>>();
  auto blpop_reply = blpop->get_future();
  auto get_reply = get->get_future();
  conn.command({"BLPOP", "empty-list", "5"},
               [blpop](reply r) { blpop->set_value(std::move(r)); });
  conn.command({"GET", "x"}, [get](reply r) { get->set_value(std::move(r)); });
  REQUIRE(
    goring::test::wait_until([&] { return has_blocked_client(server); }, 2s));

  // SKIPME defaults to yes: this kills our connection, not the test's.
  CHECK(server.run({"CLIENT", "KILL", "TYPE", "normal"}).integer == 1);
  REQUIRE(blpop_reply.wait_for(2s) == std::future_status::ready);
  REQUIRE(get_reply.wait_for(2s) == std::future_status::ready);
  auto first = blpop_reply.get();
  CHECK(first.is_error());
  CHECK(first.str.find("redis connection lost") != std::string::npos);
  CHECK(get_reply.get().is_error());

  REQUIRE(events.wait_disconnected(1));
  REQUIRE(events.wait_connected(2));
  CHECK(call(conn, {"PING"}).str == "PONG");
}

TEST_CASE("reconnects when a new redis-server comes up on the same port") {
  std::optional<goring::test::redis_server> first;
  first.emplace();
  auto port = first->port();
  // Declared first: it outlives the io threads that call it.
  recorder events;
  io_runner runner;
  async_connection conn(runner.io(), at(port), events.callbacks());
  conn.start();
  REQUIRE(events.wait_connected(1));
  CHECK(call(conn, {"SET", "k", "v"}).str == "OK");

  first->stop();
  REQUIRE(events.wait_disconnected(1));
  CHECK_FALSE(conn.connected());

  own_redis_server second(port);
  REQUIRE(events.wait_connected(2));
  CHECK(conn.connected());
  CHECK(call(conn, {"PING"}).str == "PONG");
  // A new, empty server.
  CHECK(call(conn, {"GET", "k"}).is_nil());
}

TEST_CASE("CLIENT KILL TYPE pubsub makes the subscriber reconnect") {
  goring::test::redis_server server;
  // Declared first: it outlives the io threads that call it.
  recorder events;
  io_runner runner;
  std::optional<async_connection> conn;
  auto confirmations = std::make_shared<std::atomic<int>>(0);
  // As the owner does: subscribe again after every (re)connect.
  events.on_connected_hook = [&conn, confirmations] {
    if (conn)
      conn->subscribe({"calls"}, [confirmations](reply r) {
        if (!r.is_error())
          ++*confirmations;
      });
  };
  conn.emplace(runner.io(), at(server.port()), events.callbacks());
  conn->start();
  REQUIRE(events.wait_connected(1));
  REQUIRE(goring::test::wait_until([&] { return *confirmations == 1; }, 2s));
  CHECK(server.run({"PUBLISH", "calls", "one"}).integer == 1);

  CHECK(server.run({"CLIENT", "KILL", "TYPE", "pubsub"}).integer == 1);
  REQUIRE(events.wait_disconnected(1));
  REQUIRE(events.wait_connected(2));
  REQUIRE(goring::test::wait_until([&] { return *confirmations == 2; }, 2s));
  CHECK(server.run({"PUBLISH", "calls", "two"}).integer == 1);
  REQUIRE(events.wait([](auto& s) { return s.messages.size() >= 2; }));
  auto s = events.snapshot();
  CHECK(s.messages[0].second == "one");
  CHECK(s.messages[1].second == "two");
  CHECK(s.disconnects.size() == 1);
  conn.reset();
}

TEST_CASE("AUTH with the right password logs in") {
  auto port = goring::test::free_port();
  own_redis_server server(port, {"--requirepass", "s3cret"});
  // Declared first: it outlives the io threads that call it.
  recorder events;
  io_runner runner;
  async_connection conn(runner.io(), at(port, "s3cret"), events.callbacks());
  conn.start();
  REQUIRE(events.wait_connected(1));
  CHECK(call(conn, {"PING"}).str == "PONG");
  CHECK(call(conn, {"SET", "k", "v"}).str == "OK");
  CHECK(call(conn, {"GET", "k"}).str == "v");
  CHECK(events.snapshot().disconnects.empty());
}

TEST_CASE("a wrong password is reported through on_disconnected and retried") {
  auto port = goring::test::free_port();
  own_redis_server server(port, {"--requirepass", "s3cret"});
  // Declared first: it outlives the io threads that call it.
  recorder events;
  io_runner runner;
  async_connection conn(runner.io(), at(port, "wrong"), events.callbacks());
  conn.start();
  REQUIRE(events.wait_disconnected(2, 3s));
  auto s = events.snapshot();
  CHECK(s.connected == 0);
  CHECK(s.disconnects[0].find("AUTH failed") != std::string::npos);
  CHECK(s.disconnects[0].find("WRONGPASS") != std::string::npos);
  CHECK_FALSE(conn.connected());
  CHECK(call(conn, {"PING"}).str == "redis not connected");
}

TEST_CASE("a server that never answers AUTH is given up on and retried") {
  // A listening socket nobody accepts from: the TCP connect succeeds (the
  // kernel's backlog), the AUTH is never answered.
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(listener >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) == 0);
  REQUIRE(::listen(listener, 8) == 0);
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len)
          == 0);

  {
    recorder events;
    io_runner runner;
    async_connection conn(runner.io(), at(ntohs(addr.sin_port), "pw"),
                          events.callbacks());
    conn.start();
    CHECK(events.wait_disconnected(1, 5s));
    auto s = events.snapshot();
    CHECK(s.connected == 0);
    CHECK((!s.disconnects.empty() && s.disconnects[0] == "connect timed out"));
  }
  ::close(listener);
}

TEST_CASE("stop fails commands in flight and reports nothing afterwards") {
  goring::test::redis_server server;
  // Declared first: it outlives the io threads that call it.
  recorder events;
  io_runner runner;
  std::optional<async_connection> conn;
  conn.emplace(runner.io(), at(server.port()), events.callbacks());
  conn->start();
  REQUIRE(events.wait_connected(1));

  auto blpop = std::make_shared<std::promise<reply>>();
  auto blpop_reply = blpop->get_future();
  conn->command({"BLPOP", "empty-list", "5"},
                [blpop](reply r) { blpop->set_value(std::move(r)); });
  REQUIRE(
    goring::test::wait_until([&] { return has_blocked_client(server); }, 2s));

  conn->stop();
  REQUIRE(blpop_reply.wait_for(1s) == std::future_status::ready);
  CHECK(blpop_reply.get().is_error());
  CHECK_FALSE(conn->connected());
  CHECK(call(*conn, {"PING"}).str == "redis not connected");

  // Nothing more: no on_disconnected for our own stop, no reconnect.
  std::this_thread::sleep_for(300ms);
  auto s = events.snapshot();
  CHECK(s.disconnects.empty());
  CHECK(s.connected == 1);
  CHECK(server.run({"PUBLISH", "x", "y"}).integer == 0);

  // No timer or socket wait is left behind in the io_context.
  conn.reset();
  CHECK(runner.finish());
}

TEST_CASE("destroying a connection after its io_context stopped is safe") {
  goring::test::redis_server server;
  // Declared first: it outlives the io threads that call it.
  recorder events;
  io_runner runner;
  auto conn = std::make_unique<async_connection>(runner.io(), at(server.port()),
                                                 events.callbacks());
  conn->start();
  REQUIRE(events.wait_connected(1));
  conn->command({"BLPOP", "empty-list", "5"}, [](reply) {});
  REQUIRE(
    goring::test::wait_until([&] { return has_blocked_client(server); }, 2s));

  runner.halt();
  auto start = std::chrono::steady_clock::now();
  conn.reset();
  CHECK(std::chrono::steady_clock::now() - start < 500ms);
  // The io_context is destroyed with `runner`, and with it the posted stop
  // that still holds the connection's state.
}
