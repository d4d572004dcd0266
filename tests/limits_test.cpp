/// The pure pieces of goring's limits: the token bucket, the per-IP and
/// per-instance admission table, and the origin policy.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "admission/admission.hpp"
#include "admission/origin_policy.hpp"
#include "admission/token_bucket.hpp"

using goring::admission;
using goring::normalize_origin;
using goring::origin_allowed;
using goring::token_bucket;

namespace {

constexpr int64_t second = 1'000'000'000;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

std::shared_ptr<admission> table(double rate, double burst, unsigned per_ip, unsigned instance) {
  return std::make_shared<admission>(admission::limits{rate, burst, per_ip, instance});
}

} // namespace

TEST_CASE("a token bucket gives its burst at once, then its rate, never more than the burst") {
  auto t0 = int64_t{1000} * second;
  auto bucket = token_bucket::full(3, t0);
  CHECK(bucket.take(2, 3, t0));
  CHECK(bucket.take(2, 3, t0));
  CHECK(bucket.take(2, 3, t0));
  CHECK_FALSE(bucket.take(2, 3, t0));
  // Half a second at 2/s earns one token.
  CHECK(bucket.take(2, 3, t0 + second / 2));
  CHECK_FALSE(bucket.take(2, 3, t0 + second / 2));
  // A long pause fills it to the burst, not beyond.
  auto later = t0 + 100 * second;
  CHECK(bucket.is_full(2, 3, later));
  int taken = 0;
  while (bucket.take(2, 3, later))
    ++taken;
  CHECK(taken == 3);
  // A clock that goes backwards earns nothing.
  CHECK_FALSE(bucket.take(2, 3, later - second));
}

TEST_CASE("admission counts connections per IP and flags the one over the limit") {
  auto gate = table(0, 0, 2, 0);
  auto now = now_ns();
  auto a = gate->connect("192.0.2.1", now);
  auto b = gate->connect("192.0.2.1", now);
  auto other = gate->connect("192.0.2.2", now);
  CHECK_FALSE(a.over_ip_limit());
  CHECK_FALSE(b.over_ip_limit());
  CHECK_FALSE(other.over_ip_limit());
  {
    auto c = gate->connect("192.0.2.1", now);
    CHECK(c.over_ip_limit());
    CHECK(gate->check_ip(c, now) == admission::verdict::ip_connections);
  }
  // The refused one went, and so does one of the two: a new one fits.
  {
    auto still_two = gate->connect("192.0.2.1", now);
    CHECK(still_two.over_ip_limit());
  }
  b = admission::ticket{};
  auto d = gate->connect("192.0.2.1", now);
  CHECK_FALSE(d.over_ip_limit());
  CHECK(gate->check_ip(d, now) == admission::verdict::admitted);
  CHECK(gate->tracked_ips() == 2);
}

TEST_CASE("IPv4 clients count per address, IPv6 clients per /64 prefix") {
  CHECK(admission::client_key("192.0.2.1") == "192.0.2.1");
  CHECK(admission::client_key("::ffff:192.0.2.1") == "192.0.2.1");
  CHECK(admission::client_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64");
  CHECK(admission::client_key("2001:db8:1:2::1") == "2001:db8:1:2::/64");
  CHECK(admission::client_key("2001:db8:1:3::1") == "2001:db8:1:3::/64");
  CHECK(admission::client_key("::1") == "::/64");
  CHECK(admission::client_key("not an address") == "not an address");

  // Two addresses of one /64 share its limit; the next /64 has its own.
  auto gate = table(0, 0, 2, 0);
  auto now = now_ns();
  auto a = gate->connect(admission::client_key("2001:db8:1:2::1"), now);
  auto b = gate->connect(admission::client_key("2001:db8:1:2::2"), now);
  auto c = gate->connect(admission::client_key("2001:db8:1:2:ffff::9"), now);
  auto elsewhere = gate->connect(admission::client_key("2001:db8:1:3::1"), now);
  CHECK_FALSE(a.over_ip_limit());
  CHECK_FALSE(b.over_ip_limit());
  CHECK(c.over_ip_limit());
  CHECK_FALSE(elsewhere.over_ip_limit());
  CHECK(gate->tracked_ips() == 2);
}

TEST_CASE("admission limits upgrades per second per IP, whatever becomes of them") {
  auto gate = table(1, 2, 0, 0);
  auto now = now_ns();
  auto t = gate->connect("198.51.100.7", now);
  CHECK(gate->check_ip(t, now) == admission::verdict::admitted);
  CHECK(gate->check_ip(t, now) == admission::verdict::admitted);
  CHECK(gate->check_ip(t, now) == admission::verdict::ip_rate_limited);
  // Another address has its own bucket.
  auto u = gate->connect("198.51.100.8", now);
  CHECK(gate->check_ip(u, now) == admission::verdict::admitted);
  // A second later there is one more.
  CHECK(gate->check_ip(t, now + second) == admission::verdict::admitted);
  CHECK(gate->check_ip(t, now + second) == admission::verdict::ip_rate_limited);
}

TEST_CASE("an IP stays in the table until it has no connection and a full bucket") {
  auto gate = table(1000, 1, 10, 0);
  {
    auto t = gate->connect("203.0.113.9", now_ns());
    CHECK(gate->check_ip(t, now_ns()) == admission::verdict::admitted);
    CHECK(gate->tracked_ips() == 1);
  }
  // At 1000/s the one token is back within a millisecond; whichever of the
  // release or the sweep sees it full drops the entry.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  {
    auto t = gate->connect("203.0.113.10", now_ns() + 2 * second); // lets the sweep run
  }
  CHECK(gate->tracked_ips() == 0);

  // Nothing per IP configured: nothing tracked at all.
  auto open = table(0, 0, 0, 0);
  auto t = open->connect("203.0.113.11", now_ns());
  CHECK(open->tracked_ips() == 0);
  CHECK(open->check_ip(t, now_ns()) == admission::verdict::admitted);
}

TEST_CASE("the instance takes MAX_CONNECTIONS WebSockets and frees a slot when one ends") {
  auto gate = table(0, 0, 0, 2);
  auto now = now_ns();
  auto a = gate->connect("192.0.2.1", now);
  auto b = gate->connect("192.0.2.2", now);
  auto c = gate->connect("192.0.2.3", now);
  CHECK(gate->take_instance_slot(a));
  CHECK(gate->take_instance_slot(a)); // the same ticket twice holds one slot
  CHECK(gate->take_instance_slot(b));
  CHECK_FALSE(gate->take_instance_slot(c));
  CHECK(gate->open_websockets() == 2);
  {
    auto moved = std::move(a); // the WebSocket session takes the ticket over
    CHECK(gate->open_websockets() == 2);
  }
  CHECK(gate->open_websockets() == 1);
  CHECK(gate->take_instance_slot(c));

  auto unlimited = table(0, 0, 0, 0);
  std::vector<admission::ticket> many;
  for (int i = 0; i < 100; ++i) {
    many.push_back(unlimited->connect("192.0.2.1", now));
    CHECK(unlimited->take_instance_slot(many.back()));
  }
  CHECK(unlimited->open_websockets() == 100);
}

TEST_CASE("origins compare as scheme://host[:port], host case-insensitive, default ports left "
          "out") {
  CHECK(normalize_origin("https://App.Example.com") == "https://app.example.com");
  CHECK(normalize_origin("HTTPS://app.example.com:443") == "https://app.example.com");
  CHECK(normalize_origin("http://localhost:80") == "http://localhost");
  CHECK(normalize_origin("http://localhost:3000") == "http://localhost:3000");
  CHECK(normalize_origin("https://[::1]:8443") == "https://[::1]:8443");
  CHECK(normalize_origin("*") == "*");
  CHECK(normalize_origin("null") == "null");
  for (const char* bad :
       {"", "example.com", "https://", "https://a.com/path", "https://a.com:x",
        "https://user@a.com", "://a.com", "https://a.com:123456", "https://a:b:c"}) {
    INFO("origin '", bad, "'");
    CHECK_FALSE(normalize_origin(bad).has_value());
  }

  std::vector<std::string> allowed{"https://app.example.com", "http://localhost:3000"};
  CHECK(origin_allowed(allowed, "https://app.example.com"));
  CHECK(origin_allowed(allowed, "https://APP.example.com:443"));
  CHECK(origin_allowed(allowed, "http://localhost:3000"));
  CHECK_FALSE(origin_allowed(allowed, "http://localhost:3001"));
  CHECK_FALSE(origin_allowed(allowed, "http://app.example.com"));
  CHECK_FALSE(origin_allowed(allowed, "https://app.example.com.evil.test"));
  CHECK_FALSE(origin_allowed(allowed, "null"));
  CHECK_FALSE(origin_allowed(allowed, "garbage"));
  CHECK(origin_allowed({}, "https://anything.test"));
  CHECK(origin_allowed({"*"}, "https://anything.test"));
}
