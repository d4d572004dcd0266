/// End to end: relays sent as fast as a client can, from the first moment
/// it may, reach the peer complete and in the order sent, after the frame
/// that opened the call to them (call.accepted, call.resumed). Relays
/// between two participants of one instance go from connection actor to
/// connection actor once the call actor handed them a route; these
/// scenarios cross the moment that route is set up, on one instance, across
/// two, and after takeovers.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "tests/support/goring_process.hpp"
#include "tests/support/one_instance.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/token.hpp"
#include "tests/support/ws_client.hpp"

using namespace goring::test;

namespace {

/// Relays per side and burst: far more than fit in one scheduling round.
constexpr int burst = 200;

/// The limits off: a burst is faster than MESSAGE_RATE allows.
std::map<std::string, std::string> unlimited() {
  return {{"MESSAGE_RATE", "0"}, {"RECONNECT_GRACE", "5s"}, {"CALL_CHECK_INTERVAL", "200ms"}};
}

/// The `n`th ICE candidate `from` sends in a burst.
std::string candidate(const std::string& from, int n) {
  return "candidate:" + std::to_string(n) + " 1 UDP 2122252543 192.0.2.1 "
         + std::to_string(1000 + n) + " typ host " + from;
}

/// Sends `burst` ICE candidates, numbered, without waiting for anything.
void send_burst(ws_client& from, const std::string& session_id) {
  for (int n = 0; n < burst; ++n)
    from.send("webrtc.ice",
              json_fields({{"session_id", session_id}, {"candidate", candidate(from.label(), n)}}));
}

/// `to` reads `from`'s burst: every candidate, in order, nothing between.
void expect_burst(ws_client& to, const ws_client& from, const std::string& session_id) {
  for (int n = 0; n < burst; ++n) {
    INFO(to.label(), " reads relay ", n, " of ", from.label());
    auto ice = to.expect("webrtc.ice");
    REQUIRE(ice.str("session_id") == session_id);
    REQUIRE(ice.str("candidate") == candidate(from.label(), n));
  }
}

/// Rings, then the callee accepts and relays at once; the caller relays as
/// soon as it reads call.accepted, which comes before any of the callee's
/// relays. Both bursts arrive whole and in order.
std::string accept_and_relay(ws_client& caller, ws_client& callee) {
  auto session_id = place_call(caller, callee);
  callee.accept(session_id);
  send_burst(callee, session_id);
  auto accepted = caller.expect("call.accepted");
  CHECK(accepted.str("session_id") == session_id);
  send_burst(caller, session_id);
  expect_burst(caller, callee, session_id);
  expect_burst(callee, caller, session_id);
  caller.expect_nothing(100ms);
  callee.expect_nothing(100ms);
  return session_id;
}

/// Both sides relay at once, in bursts, after `fresh` resumed the call:
/// all of it arrives, in order.
void relay_after_resume(ws_client& fresh, ws_client& peer, const std::string& session_id) {
  send_burst(fresh, session_id);
  send_burst(peer, session_id);
  expect_burst(peer, fresh, session_id);
  expect_burst(fresh, peer, session_id);
}

} // namespace

TEST_CASE("one instance: relays right after accept and right after call.accepted arrive whole "
          "and in order, call after call") {
  one_instance env{unlimited()};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);
  for (int round = 0; round < 3; ++round) {
    INFO("round ", round);
    auto& caller = round % 2 == 0 ? alice : bob;
    auto& callee = round % 2 == 0 ? bob : alice;
    auto session_id = accept_and_relay(caller, callee);
    // After the end, relays of the call reach nobody.
    caller.end_call(session_id);
    expect_ended(callee, session_id, "ended_by_user", caller.label());
    caller.expect_nothing(100ms);
  }
}

TEST_CASE("two instances: relays right after accept and right after call.accepted arrive whole "
          "and in order") {
  redis_server redis;
  goring_process first{redis.addr(), "goring-1", unlimited()};
  goring_process second{redis.addr(), "goring-2", unlimited()};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  connect_online(alice, first, redis, user_token("alice"));
  connect_online(bob, second, redis, user_token("bob"));
  for (int round = 0; round < 2; ++round) {
    INFO("round ", round);
    auto& caller = round % 2 == 0 ? alice : bob;
    auto& callee = round % 2 == 0 ? bob : alice;
    auto session_id = accept_and_relay(caller, callee);
    callee.end_call(session_id);
    expect_ended(caller, session_id, "ended_by_user", callee.label());
  }
}

TEST_CASE("relays in bursts go on whole and in order after takeovers on one instance and across "
          "two") {
  redis_server redis;
  goring_process first{redis.addr(), "goring-1", unlimited()};
  goring_process second{redis.addr(), "goring-2", unlimited()};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  connect_online(alice, first, redis, user_token("alice"));
  connect_online(bob, first, redis, user_token("bob"));
  auto session_id = accept_and_relay(alice, bob);

  auto take_over = [&](ws_client& old_conn, ws_client& new_conn, goring_process& where,
                       const std::string& peer_id, const std::string& role) {
    INFO(new_conn.label(), " takes over on ", where.server_id());
    connect_online(new_conn, where, redis, user_token(new_conn.label()),
                   presence_owner(redis, new_conn.label()));
    auto closed = old_conn.expect_close();
    REQUIRE(closed.has_value());
    CHECK(closed->code == 4000);
    expect_resumed(new_conn, session_id, peer_id, "accepted", role);
  };

  // Same instance: the callee's route moves to the new connection.
  ws_client alice_2{"alice"};
  take_over(alice, alice_2, first, "bob", "caller");
  relay_after_resume(alice_2, bob, session_id);

  // Across instances: the peers reach each other through Redis.
  ws_client bob_2{"bob"};
  take_over(bob, bob_2, second, "alice", "callee");
  relay_after_resume(bob_2, alice_2, session_id);

  // Back together on one instance.
  ws_client alice_3{"alice"};
  take_over(alice_2, alice_3, second, "bob", "caller");
  relay_after_resume(alice_3, bob_2, session_id);

  alice_3.end_call(session_id);
  expect_ended(bob_2, session_id, "ended_by_user", "alice");
}
