/// The JWKS fetcher with a real server in this process: the first fetch,
/// the refresh, what a failed fetch leaves in force, the on-demand fetch of
/// an unknown kid and its rate limit, and Cache-Control. Waits are bounded
/// and nothing is timed: the tests count fetches and look at keys.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "auth/key_store.hpp"
#include "outbound/http_client.hpp"
#include "outbound/jwks_fetcher.hpp"
#include "tests/support/http_test_server.hpp"
#include "tests/support/process.hpp"
#include "tests/support/token.hpp"

namespace {

using namespace goring::outbound;
using goring::auth::key_store;
using goring::test::http_test_server;
using goring::test::jwk_of;
using goring::test::jwks_of;
using goring::test::wait_until;
using namespace std::chrono_literals;

const goring::test::key_pair& key_a() {
  static const auto k = goring::test::new_rsa_key();
  return k;
}
const goring::test::key_pair& key_b() {
  static const auto k = goring::test::new_ec_key("P-256");
  return k;
}

/// The kids of the set in force, in order.
std::vector<std::string> kids(const key_store& store) {
  std::vector<std::string> out;
  if (auto set = store.current())
    for (auto& k : set->keys())
      out.push_back(k.kid);
  return out;
}

/// A fetcher of `server`'s /jwks into a key store, on its own I/O thread.
struct fetching {
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  std::shared_ptr<key_store> store = std::make_shared<key_store>();
  std::atomic<int> taken{0};
  std::unique_ptr<jwks_fetcher> fetcher;
  std::thread thread;

  fetching(const http_test_server& server, std::chrono::milliseconds refresh) {
    auto client = make_http_client(io);
    REQUIRE(client.client);
    fetcher = std::make_unique<jwks_fetcher>(
      io, client.client, *parse_url(server.url()).value, refresh, [this](std::string_view body) {
        auto update = store->take_jwks(body);
        if (update.error.empty())
          ++taken;
        return jwks_verdict{update.error, update.keys, update.change};
      });
    thread = std::thread{[this] { io.run(); }};
    fetcher->start();
  }
  ~fetching() {
    fetcher->stop();
    work.reset();
    io.stop();
    thread.join();
  }

  /// Asks for an on-demand fetch and waits until it says it is done.
  void refresh_and_wait() {
    auto done = std::make_shared<std::promise<void>>();
    auto future = done->get_future();
    fetcher->refresh_soon([done] { done->set_value(); });
    REQUIRE(future.wait_for(10s) == std::future_status::ready);
  }
};

} // namespace

TEST_CASE("the first fetch brings the key set, the refresh brings a new key and drops an old one") {
  http_test_server server;
  server.answer(200, jwks_of({jwk_of(key_a(), "a", "RS256")}));
  fetching f{server, 1s};
  REQUIRE(wait_until([&] { return f.store->current() != nullptr; }, 10s));
  CHECK(kids(*f.store) == std::vector<std::string>{"a"});
  server.answer(200, jwks_of({jwk_of(key_a(), "a", "RS256"), jwk_of(key_b(), "b", "ES256")}));
  CHECK(wait_until([&] { return kids(*f.store).size() == 2; }, 10s));
  server.answer(200, jwks_of({jwk_of(key_b(), "b", "ES256")}));
  CHECK(wait_until([&] { return kids(*f.store) == std::vector<std::string>{"b"}; }, 10s));
}

TEST_CASE("a failed fetch leaves the set in force: 503, garbage, no key, a stall, a flood, gone") {
  http_test_server server;
  server.answer(200, jwks_of({jwk_of(key_a(), "a", "RS256")}));
  fetching f{server, 1s};
  REQUIRE(wait_until([&] { return f.store->current() != nullptr; }, 10s));
  auto in_force = f.store->current();
  auto after_more_fetches = [&](std::size_t more) {
    auto seen = server.requests();
    CHECK(server.wait_requests(seen + more, 20s));
  };
  for (auto [status, body] : std::vector<std::pair<unsigned, std::string>>{
         {503, "unavailable"},
         {200, "<html>not json</html>"},
         {200, R"({"keys":[]})"},
         {200, R"({"keys":[{"kty":"oct","k":"c2VjcmV0"}]})"},
         {404, jwks_of({jwk_of(key_b(), "b", "ES256")})}}) {
    CAPTURE(body);
    server.answer(status, body);
    after_more_fetches(2);
    CHECK(f.store->current() == in_force);
  }
  for (auto how : {http_test_server::behaviour::stall, http_test_server::behaviour::flood,
                   http_test_server::behaviour::hang_up}) {
    server.misbehave(how);
    after_more_fetches(1);
    CHECK(f.store->current() == in_force);
  }
  server.close();
  std::this_thread::sleep_for(1500ms); // a fetch or two find nobody
  CHECK(f.store->current() == in_force);
  // Back: the next good document is taken.
  server.listen();
  server.answer(200, jwks_of({jwk_of(key_b(), "b", "ES256")}));
  CHECK(wait_until([&] { return kids(*f.store) == std::vector<std::string>{"b"}; }, 40s));
}

TEST_CASE("an unknown kid fetches at once, and a flood of them fetches once in 10 s") {
  http_test_server server;
  server.answer(200, jwks_of({jwk_of(key_a(), "a", "RS256")}));
  // A refresh far off: every fetch here is the first or on demand.
  fetching f{server, std::chrono::hours(1)};
  REQUIRE(wait_until([&] { return f.store->current() != nullptr; }, 10s));
  REQUIRE(server.requests() == 1);
  server.answer(200, jwks_of({jwk_of(key_a(), "a", "RS256"), jwk_of(key_b(), "b", "ES256")}));
  f.refresh_and_wait();
  CHECK(server.requests() == 2);
  CHECK(kids(*f.store).size() == 2);
  // 200 more made-up kids within the gap: no fetch, and every caller goes on.
  std::atomic<int> done{0};
  for (int i = 0; i < 200; ++i)
    f.fetcher->refresh_soon([&] { ++done; });
  CHECK(wait_until([&] { return done == 200; }, 5s));
  CHECK(server.requests() == 2);
}

TEST_CASE("callers that ask while a fetch runs wait for it, and are let go when it fails") {
  http_test_server server;
  server.misbehave(http_test_server::behaviour::stall);
  fetching f{server, std::chrono::hours(1)};
  REQUIRE(server.wait_requests(1, 10s));
  std::atomic<int> done{0};
  for (int i = 0; i < 5; ++i)
    f.fetcher->refresh_soon([&] { ++done; });
  // The stalled fetch ends at its timeout; the callers with it.
  CHECK(wait_until([&] { return done == 5; }, 20s));
  CHECK(f.store->current() == nullptr);
}

TEST_CASE("Cache-Control max-age: a shorter one brings the next fetch sooner") {
  http_test_server server;
  server.answer(200, jwks_of({jwk_of(key_a(), "a", "RS256")}),
                {{"Content-Type", "application/json"}, {"Cache-Control", "public, max-age=0"}});
  // Without max-age the next fetch would be an hour away; max-age=0 asks
  // for the shortest wait there is (jwks_on_demand_gap).
  fetching f{server, std::chrono::hours(1)};
  REQUIRE(wait_until([&] { return f.store->current() != nullptr; }, 10s));
  CHECK(server.wait_requests(2, 30s));
}

TEST_CASE("cache_max_age reads max-age, no-cache and no-store, and ignores the rest") {
  CHECK(cache_max_age("max-age=300") == std::chrono::seconds(300));
  CHECK(cache_max_age("public, max-age=19383, must-revalidate, no-transform")
        == std::chrono::seconds(19383));
  CHECK(cache_max_age("Max-Age=\"60\"") == std::chrono::seconds(60));
  CHECK(cache_max_age("no-cache") == std::chrono::seconds(0));
  CHECK(cache_max_age("max-age=60, no-store") == std::chrono::seconds(0));
  CHECK_FALSE(cache_max_age("public").has_value());
  CHECK_FALSE(cache_max_age("max-age=").has_value());
  CHECK_FALSE(cache_max_age("max-age=-5").has_value());
  CHECK_FALSE(cache_max_age("max-age=99999999999999").has_value());
  CHECK_FALSE(cache_max_age("").has_value());
}
