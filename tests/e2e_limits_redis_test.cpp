/// End to end, the limits of docs/security.md: allowed origins,
/// the per-connection message rate, upgrades and connections per IP,
/// connections per instance, SDP and candidate sizes, the handshake timeout
/// (slowloris) and the header size; each against the real goring binary.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/goring_process.hpp"
#include "tests/support/one_instance.hpp"
#include "tests/support/raw_client.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/token.hpp"
#include "tests/support/ws_client.hpp"

using namespace goring::test;

namespace {

/// An upgrade over a raw connection with `headers`; returns the status and
/// leaves the connection with `client`.
int raw_upgrade(raw_client& client, uint16_t port, const std::string& user,
                const std::string& headers = {}) {
  REQUIRE(client.connect(port));
  REQUIRE(client.send(upgrade_request(port, "/ws?token=" + user_token(user), headers)));
  return client.read_status();
}

std::string opened(const char* result) {
  return std::string{"goring_connections_opened_total{result=\""} + result + "\"}";
}

std::string ice(const std::string& session_id, const std::string& candidate) {
  return json_fields({{"session_id", session_id}, {"candidate", candidate}});
}

} // namespace

TEST_CASE("ALLOWED_ORIGINS: a browser from another origin gets 403, listed origins and "
          "clients without Origin get in") {
  one_instance env{{{"ALLOWED_ORIGINS", "https://app.example.com, http://localhost:3000"}}};
  auto port = env.goring.port();

  raw_client listed;
  CHECK(raw_upgrade(listed, port, "alice", "Origin: https://app.example.com\r\n") == 101);
  wait_online(env.redis, "alice");
  raw_client same_in_other_case;
  CHECK(raw_upgrade(same_in_other_case, port, "bob", "Origin: HTTPS://App.Example.COM:443\r\n")
        == 101);
  wait_online(env.redis, "bob");
  raw_client dev_server;
  CHECK(raw_upgrade(dev_server, port, "carol", "Origin: http://localhost:3000\r\n") == 101);

  for (std::string origin :
       {"https://evil.example.net", "http://app.example.com", "http://localhost:3001", "null"}) {
    INFO("Origin: ", origin);
    raw_client foreign;
    CHECK(raw_upgrade(foreign, port, "mallory", "Origin: " + origin + "\r\n") == 403);
    CHECK(foreign.received().find("origin") != std::string::npos);
    CHECK(foreign.wait_closed(3s));
  }
  CHECK(presence_owner(env.redis, "mallory").empty());
  CHECK(env.metric(opened("forbidden_origin")) == 4);
  CHECK(env.log().find("origin 'https://evil.example.net' is not in ALLOWED_ORIGINS")
        != std::string::npos);

  // A non-browser client sends no Origin: the token decides.
  ws_client dave{"dave"};
  env.join(dave);
  dave.start_call("nobody-is-here");
  dave.expect_error("user_offline");
}

TEST_CASE("without ALLOWED_ORIGINS any origin gets in, and goring warns at start-up") {
  one_instance env;
  raw_client foreign;
  CHECK(raw_upgrade(foreign, env.goring.port(), "alice", "Origin: https://anywhere.test\r\n")
        == 101);
  wait_online(env.redis, "alice");
  CHECK(env.log().find("ALLOWED_ORIGINS is not set") != std::string::npos);
}

TEST_CASE("MESSAGE_RATE: frames over the rate are dropped with rate_limited, the connection "
          "stays and serves again after a pause") {
  one_instance env{{{"MESSAGE_RATE", "5"}, {"MESSAGE_BURST", "5"}}};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);
  auto session_id = connect_call(alice, bob); // alice's call.start took one token

  // Eight candidates at once: four fit in what is left of the burst.
  constexpr int sent = 8;
  for (int i = 0; i < sent; ++i)
    alice.send("webrtc.ice", ice(session_id, "candidate:" + std::to_string(i)));
  int relayed = 0;
  while (bob.next(500ms))
    ++relayed;
  int refused = 0;
  while (auto f = alice.next(500ms)) {
    INFO("alice got ", f->data);
    CHECK(f->type == "error");
    CHECK(f->payload.str("code") == "rate_limited");
    CHECK(f->payload.str("message").find("at most 5 a second") != std::string::npos);
    ++refused;
  }
  CHECK(relayed >= 4);
  CHECK(refused >= 1);
  CHECK(relayed + refused == sent);
  CHECK(env.metric("goring_rate_limited_frames_total") == refused);
  CHECK(env.metric("goring_errors_sent_total{code=\"rate_limited\"}") == refused);
  CHECK(alice.is_open());

  // A client that waits is served again; the call never noticed.
  std::this_thread::sleep_for(1500ms);
  check_relay(alice, bob, session_id);
  check_relay(bob, alice, session_id);
  CHECK(env.metric("goring_rate_limit_disconnects_total") == 0);
}

TEST_CASE("MESSAGE_RATE: a client that floods on is closed with 1008 and its call ends") {
  one_instance env{{{"MESSAGE_RATE", "5"}, {"MESSAGE_BURST", "5"}}};
  ws_client bob{"bob"};
  env.join(bob);
  raw_client flooder;
  REQUIRE(raw_upgrade(flooder, env.goring.port(), "alice") == 101);
  wait_online(env.redis, "alice");

  // Fifty frames in one write: five pass, then a second's worth (five) are
  // refused with rate_limited, and the next closes the connection.
  std::string flood;
  for (int i = 0; i < 50; ++i)
    flood += client_text_frame(R"({"type":"call.start","payload":{"callee_id":"bob"}})");
  REQUIRE(flooder.send(flood));
  REQUIRE(flooder.wait_closed(5s));
  auto frames = server_frames(flooder.received());
  REQUIRE(!frames.empty());
  auto& last = frames.back();
  CHECK(last.opcode == 8);
  CHECK(last.close_code() == 1008);
  CHECK(last.close_reason() == "rate limit exceeded");
  int rate_limited = 0;
  for (auto& f : frames)
    if (f.opcode == 1 && f.payload.find("\"rate_limited\"") != std::string::npos)
      ++rate_limited;
  CHECK(rate_limited == 5);
  CHECK(env.metric("goring_rate_limit_disconnects_total") == 1);

  // The first frame rang bob; the flooder's end ended that call.
  auto ring = bob.expect("call.ring");
  expect_ended(bob, ring.str("session_id"), "peer_disconnected", "alice");
  REQUIRE(wait_until([&] { return presence_owner(env.redis, "alice").empty(); }, 3s));
}

TEST_CASE("with the default per-IP limits, 150 users behind one address all connect, as the "
          "phones behind a carrier-grade NAT do") {
  // Empty: the settings' defaults, not the suite's 0 (see goring_process).
  one_instance env{{{"UPGRADE_RATE_PER_IP", ""},
                    {"UPGRADE_BURST_PER_IP", ""},
                    {"MAX_CONNECTIONS_PER_IP", ""}}};
  auto port = env.goring.port();
  // More than the old defaults let in (a burst of 20 upgrades, 100
  // connections per IP), all open at once, opened back to back.
  std::vector<ws_client> phones;
  for (int i = 0; i < 150; ++i) {
    auto user = "phone-" + std::to_string(i);
    phones.emplace_back(user);
    INFO(user);
    REQUIRE(phones.back().try_connect(port, user_token(user)) == 101);
  }
  CHECK(env.metric(opened("ip_rate_limited")) == 0);
  CHECK(env.metric(opened("ip_connections")) == 0);
  wait_online(env.redis, "phone-149");
  phones.front().start_call("phone-149");
  phones.back().expect("call.ring");
}

TEST_CASE("UPGRADE_RATE_PER_IP: upgrades beyond the burst get 429 until the bucket refills") {
  one_instance env{{{"UPGRADE_RATE_PER_IP", "1"}, {"UPGRADE_BURST_PER_IP", "3"}}};
  auto port = env.goring.port();
  // Every attempt counts, a refused token included.
  ws_client refused{"mallory"};
  CHECK(refused.try_connect(port, "not-a-token") == 401);
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  // The burst is spent before anything waits (at 1 upgrade/s a slow wait
  // would refill the bucket): online is checked after the refusals.
  alice.connect(port, user_token("alice"));
  bob.connect(port, user_token("bob"));

  raw_client third;
  CHECK(raw_upgrade(third, port, "carol") == 429);
  CHECK(third.received().find("Retry-After: 1") != std::string::npos);
  CHECK(third.received().find("too many connection attempts") != std::string::npos);
  ws_client carol{"carol"};
  CHECK(carol.try_connect(port, user_token("carol")) == 429);
  CHECK(env.metric(opened("ip_rate_limited")) == 2);
  wait_online(env.redis, "alice");
  wait_online(env.redis, "bob");

  // A second later one more fits; the open connections never noticed.
  ws_client carol_later{"carol"};
  CHECK(wait_until([&] { return carol_later.try_connect(port, user_token("carol")) == 101; }, 5s));
  alice.start_call("bob");
  bob.expect("call.ring");
}

TEST_CASE("MAX_CONNECTIONS_PER_IP: connections beyond it get 429, requests still being sent "
          "count, and a slot frees when one closes") {
  one_instance env{{{"MAX_CONNECTIONS_PER_IP", "3"}, {"HANDSHAKE_TIMEOUT", "3s"}}};
  auto port = env.goring.port();
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);
  // The third: a connection that has not sent its request yet.
  raw_client idle;
  REQUIRE(idle.connect(port));
  ws_client carol{"carol"};
  CHECK(carol.try_connect(port, user_token("carol")) == 429);
  CHECK(env.metric(opened("ip_connections")) == 1);
  // Not only upgrades: a connection over the limit gets nothing else
  // either, or requests such as /health could hold sockets without end.
  CHECK(http_get(port, "/health").status == 429);

  // The silent one gives up its place (or the server drops it at
  // HANDSHAKE_TIMEOUT): carol gets in.
  idle = raw_client{};
  CHECK(wait_until([&] { return carol.try_connect(port, user_token("carol")) == 101; }, 5s));
  wait_online(env.redis, "carol");
  ws_client dave{"dave"};
  CHECK(dave.try_connect(port, user_token("dave")) == 429);
  bob.close();
  CHECK(wait_until([&] { return dave.try_connect(port, user_token("dave")) == 101; }, 5s));
}

TEST_CASE("MAX_CONNECTIONS: a full instance answers 503 and takes the next once one leaves") {
  one_instance env{{{"MAX_CONNECTIONS", "2"}}};
  auto port = env.goring.port();
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);
  raw_client third;
  CHECK(raw_upgrade(third, port, "carol") == 503);
  CHECK(third.received().find("instance full") != std::string::npos);
  CHECK(env.metric(opened("instance_full")) == 1);
  // /health still answers: only WebSockets are capped.
  CHECK(http_get(port, "/health").status == 200);

  alice.close();
  ws_client carol{"carol"};
  CHECK(wait_until([&] { return carol.try_connect(port, user_token("carol")) == 101; }, 5s));
  wait_online(env.redis, "carol");
  carol.start_call("bob");
  bob.expect("call.ring");
}

TEST_CASE("MAX_SDP_BYTES and MAX_CANDIDATE_BYTES: bigger fields get invalid_message naming the "
          "limit, and the call goes on") {
  one_instance env{{{"MAX_SDP_BYTES", "1000"}, {"MAX_CANDIDATE_BYTES", "100"}}};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  auto session_id = env.join_in_call(alice, bob);

  auto fits = json_fields({{"session_id", session_id}, {"sdp", std::string(1000, 'v')}});
  alice.send("webrtc.offer", fits);
  CHECK(bob.expect("webrtc.offer") == json::parse(fits));
  alice.send("webrtc.offer",
             json_fields({{"session_id", session_id}, {"sdp", std::string(1001, 'v')}}));
  auto error = alice.expect_error("invalid_message");
  CHECK(error.str("message").find("MAX_SDP_BYTES") != std::string::npos);
  bob.send("webrtc.answer",
           json_fields({{"session_id", session_id}, {"sdp", std::string(5000, 'v')}}));
  bob.expect_error("invalid_message");

  auto small = ice(session_id, std::string(100, 'c'));
  bob.send("webrtc.ice", small);
  CHECK(alice.expect("webrtc.ice") == json::parse(small));
  bob.send("webrtc.ice", ice(session_id, std::string(101, 'c')));
  error = bob.expect_error("invalid_message");
  CHECK(error.str("message").find("MAX_CANDIDATE_BYTES") != std::string::npos);

  // Nothing over the limits reached the peer, and the call relays on.
  alice.expect_nothing(200ms);
  check_relay(alice, bob, session_id);
  check_relay(bob, alice, session_id);
}

TEST_CASE("HANDSHAKE_TIMEOUT: a client that sends half a request, or dribbles it, is "
          "disconnected while others connect") {
  one_instance env{{{"HANDSHAKE_TIMEOUT", "1s"}}};
  auto port = env.goring.port();
  auto request = upgrade_request(port, "/ws?token=" + user_token("mallory"));

  raw_client stalled;
  REQUIRE(stalled.connect(port));
  REQUIRE(stalled.send(request.substr(0, request.size() / 2)));
  // Meanwhile a normal client gets in and works.
  ws_client alice{"alice"};
  env.join(alice);
  alice.start_call("nobody-is-here");
  alice.expect_error("user_offline");
  CHECK(stalled.wait_closed(5s));
  CHECK(stalled.received().empty());

  // One byte every 100 ms would take seconds: it is cut off long before.
  raw_client dribbler;
  REQUIRE(dribbler.connect(port));
  std::size_t sent = 0;
  while (sent < request.size() && !dribbler.closed()) {
    dribbler.send(request.substr(sent, 1));
    ++sent;
    dribbler.wait_closed(100ms);
  }
  CHECK(dribbler.closed());
  CHECK(sent < request.size());
  CHECK(presence_owner(env.redis, "mallory").empty());
  CHECK(env.metric("goring_http_requests_refused_total{reason=\"handshake_timeout\"}") == 2);

  // A connection that sends nothing at all is closed too.
  raw_client silent;
  REQUIRE(silent.connect(port));
  CHECK(silent.wait_closed(5s));
}

TEST_CASE("MAX_HEADER_BYTES: a request with a header over it gets 431, under it the upgrade "
          "works") {
  one_instance env{{{"MAX_HEADER_BYTES", "4096"}}};
  auto port = env.goring.port();

  raw_client huge;
  REQUIRE(huge.connect(port));
  REQUIRE(huge.send(upgrade_request(port, "/ws?token=" + user_token("mallory"),
                                    "X-Filler: " + std::string(16 * 1024, 'x') + "\r\n")));
  CHECK(huge.read_status() == 431);
  CHECK(huge.received().find("at most 4096 bytes") != std::string::npos);
  CHECK(huge.wait_closed(5s));

  // A long URL counts as header too.
  raw_client long_target;
  REQUIRE(long_target.connect(port));
  REQUIRE(long_target.send(upgrade_request(port, "/ws?token=" + user_token("mallory")
                                                   + "&pad=" + std::string(8000, 'p'))));
  CHECK(long_target.read_status() == 431);
  CHECK(env.metric("goring_http_requests_refused_total{reason=\"header_too_large\"}") == 2);

  raw_client fits;
  CHECK(raw_upgrade(fits, port, "alice", "X-Filler: " + std::string(2000, 'x') + "\r\n") == 101);
  wait_online(env.redis, "alice");
  CHECK(presence_owner(env.redis, "mallory").empty());

  // A body over the public port's 4 KiB gets 413.
  raw_client body;
  REQUIRE(body.connect(port));
  REQUIRE(body.send("POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n"
                    + std::string(10000, 'b')));
  CHECK(body.read_status() == 413);
}
