/// End to end on one instance: every call flow through the real goring binary,
/// a real Redis (one redis-server, or a Redis Cluster with
/// GORING_TEST_REDIS=cluster) and real WebSocket clients.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "redis/keys.hpp"
#include "tests/support/goring_process.hpp"
#include "tests/support/one_instance.hpp"
#include "tests/support/redis_backend.hpp"
#include "tests/support/token.hpp"
#include "tests/support/ws_client.hpp"

using namespace goring::test;
namespace keys = goring::redis::keys;

namespace {

/// Checks a `*_info` object names `user_id` with the claims of user_token.
void check_full_info(const json& info, const std::string& user_id) {
  INFO("info ", info);
  CHECK(info.str("user_id") == user_id);
  CHECK(info.str("name") == display_name_of(user_id));
  CHECK(info.str("username") == username_of(user_id));
}

} // namespace

TEST_CASE("caller hears ringing and the callee gets the ring with the caller's info") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);

  alice.start_call("bob");
  auto ringing = alice.expect("call.ringing");
  auto session_id = ringing.str("session_id");
  REQUIRE(!session_id.empty());
  CHECK(ringing.str("callee_id") == "bob");

  auto ring = bob.expect("call.ring");
  CHECK(ring.str("session_id") == session_id);
  CHECK(ring.str("caller_id") == "alice");
  check_full_info(ring.at("caller_info"), "alice");

  // Redis holds the session as the reference's data model describes it.
  auto session = env.redis.session_key(session_id);
  CHECK(env.hget(session, "caller_id") == "alice");
  CHECK(env.hget(session, "callee_id") == "bob");
  CHECK(env.hget(session, "state") == "ringing");
  CHECK(!env.hget(session, "created_at").empty());
  CHECK(env.get(env.redis.user_call_key("alice")) == session_id);
  CHECK(env.get(env.redis.user_call_key("bob")) == session_id);

  alice.expect_nothing(200ms);
  bob.expect_nothing(200ms);
}

TEST_CASE("claims missing from a token are left out of the info the peer gets") {
  one_instance env;
  ws_client dave{"dave"};
  ws_client erin{"erin"};
  token_spec bare;
  bare.user_id = "dave"; // hash only: no name, no username
  connect_online(dave, env.goring, env.redis, mint_token(bare));
  token_spec handle_only;
  handle_only.user_id = "erin";
  handle_only.username = "erin.handle";
  connect_online(erin, env.goring, env.redis, mint_token(handle_only));

  dave.start_call("erin");
  auto session_id = dave.expect("call.ringing").str("session_id");
  auto caller_info = erin.expect("call.ring").at("caller_info");
  INFO("caller_info ", caller_info);
  CHECK(caller_info.str("user_id") == "dave");
  CHECK_FALSE(caller_info.has("name"));
  CHECK_FALSE(caller_info.has("username"));

  erin.accept(session_id);
  auto callee_info = dave.expect("call.accepted").at("callee_info");
  INFO("callee_info ", callee_info);
  CHECK(callee_info.str("user_id") == "erin");
  CHECK_FALSE(callee_info.has("name"));
  CHECK(callee_info.str("username") == "erin.handle");
}

TEST_CASE("callee accepts and only the caller hears about it, with the callee's info") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);
  auto session_id = place_call(alice, bob);

  bob.accept(session_id);
  auto accepted = alice.expect("call.accepted");
  CHECK(accepted.str("session_id") == session_id);
  check_full_info(accepted.at("callee_info"), "bob");
  bob.expect_nothing(300ms);
  CHECK(env.hget(env.redis.session_key(session_id), "state") == "accepted");
}

TEST_CASE("offer, answer and ICE reach the peer unchanged in both directions") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  auto session_id = env.join_in_call(alice, bob);
  auto sid = "\"" + session_id + "\"";

  auto offer = R"({"session_id":)" + sid + R"(,"sdp":"v=0\r\no=- 4611731400430051336 2 IN IP4 )"
               + R"(127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"})";
  alice.send("webrtc.offer", offer);
  CHECK(bob.expect("webrtc.offer") == json::parse(offer));

  auto answer = R"({"session_id":)" + sid
                + R"(,"sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=x \"quoted\" \u00e9\r\n"})";
  bob.send("webrtc.answer", answer);
  CHECK(alice.expect("webrtc.answer") == json::parse(answer));

  auto ice_from_alice =
    R"({"session_id":)" + sid
    + R"(,"candidate":"candidate:1 1 UDP 2122252543 192.168.1.1 12345 typ host",)"
    + R"("sdpMid":"0","sdpMLineIndex":0})";
  alice.send("webrtc.ice", ice_from_alice);
  CHECK(bob.expect("webrtc.ice") == json::parse(ice_from_alice));

  auto ice_from_bob =
    R"({"session_id":)" + sid
    + R"(,"candidate":"candidate:2 1 UDP 1686052607 203.0.113.7 54321 typ srflx",)"
    + R"("sdpMid":"audio","sdpMLineIndex":1})";
  bob.send("webrtc.ice", ice_from_bob);
  CHECK(alice.expect("webrtc.ice") == json::parse(ice_from_bob));

  // The optional fields may be absent; the relay adds none.
  auto bare_ice =
    R"({"session_id":)" + sid + R"(,"candidate":"candidate:3 1 TCP 1 10.0.0.1 9 typ host"})";
  bob.send("webrtc.ice", bare_ice);
  CHECK(alice.expect("webrtc.ice") == json::parse(bare_ice));

  // Nothing echoes back to the sender.
  alice.expect_nothing(200ms);
  bob.expect_nothing(200ms);
}

TEST_CASE("a long SDP in many frames reaches the peer whole, and the frames after it too") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  auto session_id = env.join_in_call(alice, bob);
  // ~30 KB, under MAX_SDP_BYTES: several reads of goring's and several
  // WebSocket frames from this client (Beast fragments at 4 KB).
  auto long_sdp = [](const std::string& tag) {
    std::string sdp = "v=0\\r\\n";
    for (int line = 0; sdp.size() < 30'000; ++line)
      sdp +=
        "a=" + tag + "-" + std::to_string(line) + " 1 UDP 2122252543 127.0.0.1 9 typ host\\r\\n";
    return sdp;
  };
  auto offer = R"({"session_id":")" + session_id + R"(","sdp":")" + long_sdp("offer") + R"("})";
  auto ice = R"({"session_id":")" + session_id
             + R"(","candidate":"candidate:1 1 UDP 2122252543 192.168.1.1 12345 typ host"})";
  alice.send("webrtc.offer", offer);
  alice.send("webrtc.ice", ice);
  CHECK(bob.expect("webrtc.offer") == json::parse(offer));
  CHECK(bob.expect("webrtc.ice") == json::parse(ice));

  auto answer = R"({"session_id":")" + session_id + R"(","sdp":")" + long_sdp("answer") + R"("})";
  bob.send("webrtc.ice", ice);
  bob.send("webrtc.answer", answer);
  bob.send("webrtc.ice", ice);
  CHECK(alice.expect("webrtc.ice") == json::parse(ice));
  CHECK(alice.expect("webrtc.answer") == json::parse(answer));
  CHECK(alice.expect("webrtc.ice") == json::parse(ice));
}

TEST_CASE("caller hangs up an accepted call: the callee hears ended_by_user and the keys go") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  auto session_id = env.join_in_call(alice, bob);

  alice.end_call(session_id);
  auto ended = expect_ended(bob, session_id, "ended_by_user", "alice");
  CHECK(ended.at("peer_info").str("name") == "Alice");
  alice.expect_nothing(300ms);
  CHECK(call_released(env.redis, session_id, "alice", "bob"));

  // Both are free: the other way round works at once.
  place_call(bob, alice);
}

TEST_CASE("callee hangs up an accepted call: the caller hears ended_by_user") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  auto session_id = env.join_in_call(alice, bob);

  bob.end_call(session_id);
  auto ended = expect_ended(alice, session_id, "ended_by_user", "bob");
  CHECK(ended.at("peer_info").str("name") == "Bob");
  bob.expect_nothing(300ms);
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
}

TEST_CASE("caller cancels while it rings: the callee hears cancelled and cannot accept") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);
  auto session_id = place_call(alice, bob);

  alice.end_call(session_id);
  expect_ended(bob, session_id, "cancelled", "alice");
  alice.expect_nothing(300ms);
  CHECK(call_released(env.redis, session_id, "alice", "bob"));

  // The session is gone (or ended): accepting it now is refused.
  bob.accept(session_id);
  auto error = bob.expect("error");
  INFO("error ", error);
  auto code = error.str("code");
  CHECK((code == "session_not_found" || code == "invalid_state"));
  alice.expect_nothing(200ms);

  place_call(bob, alice);
}

TEST_CASE("callee hangs up while it rings: the caller hears ended_by_user") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);
  auto session_id = place_call(alice, bob);

  bob.end_call(session_id);
  expect_ended(alice, session_id, "ended_by_user", "bob");
  bob.expect_nothing(300ms);
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
}

TEST_CASE("callee rejects: the caller hears rejected with the callee's info") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);
  auto session_id = place_call(alice, bob);

  bob.reject(session_id);
  auto rejected = alice.expect("call.rejected");
  CHECK(rejected.str("session_id") == session_id);
  check_full_info(rejected.at("callee_info"), "bob");
  bob.expect_nothing(300ms);
  CHECK(call_released(env.redis, session_id, "alice", "bob"));

  place_call(alice, bob);
}

TEST_CASE("nobody answers within the ring timeout: both hear no_answer and are free again") {
  one_instance env{{{"RING_TIMEOUT", "2s"}}};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);
  // The server's ring timer starts before place_call returns.
  auto started = std::chrono::steady_clock::now();
  auto session_id = place_call(alice, bob);

  // Not before its time...
  auto quiet = 1s
               - std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - started);
  if (quiet > 0ms)
    alice.expect_nothing(quiet);
  else
    MESSAGE("place_call took over 1 s: the quiet window before the timeout was not checked");
  // ...but soon after it.
  expect_ended(alice, session_id, "no_answer", "bob");
  expect_ended(bob, session_id, "no_answer", "alice");
  CHECK(call_released(env.redis, session_id, "alice", "bob"));

  // Both can place calls right away.
  auto next_session = place_call(bob, alice);
  CHECK(next_session != session_id);
  bob.end_call(next_session);
  expect_ended(alice, next_session, "cancelled", "bob");
  place_call(alice, bob);
}

TEST_CASE("an accepted call outlives the ring timeout") {
  one_instance env{{{"RING_TIMEOUT", "1s"}}};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  auto session_id = env.join_in_call(alice, bob);

  alice.expect_nothing(1800ms);
  bob.expect_nothing(100ms);
  CHECK(env.hget(env.redis.session_key(session_id), "state") == "accepted");
}

TEST_CASE("callee's connection drops while it rings and it does not come back: the caller hears "
          "peer_disconnected once the reconnect grace is over") {
  one_instance env{{{"RECONNECT_GRACE", "1s"}, {"CALL_CHECK_INTERVAL", "200ms"}}};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);
  auto session_id = place_call(alice, bob);

  // No close frame: bob may still come back, so the call waits for him.
  bob.drop();
  alice.expect_nothing(700ms);
  CHECK(env.hget(env.redis.session_key(session_id), "state") == "ringing");
  expect_ended(alice, session_id, "peer_disconnected", "bob");
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
  CHECK_FALSE(key_exists(env.redis, env.redis.user_key("bob")));
}

namespace {

/// No periodic call check within any test's time (SESSION_TTL bounds the
/// period too), so an end can only come from the drop or the grace timer.
std::map<std::string, std::string> no_check_due(const std::string& grace) {
  return {{"RECONNECT_GRACE", grace},
          {"CALL_CHECK_INTERVAL", "600s"},
          {"SESSION_TTL", "1800s"},
          {"RING_TIMEOUT", "600s"}};
}

} // namespace

TEST_CASE("with RECONNECT_GRACE=0 a connection that drops without a close frame ends its call "
          "at once, ringing or accepted, with no call check due") {
  one_instance env{no_check_due("0s")};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  ws_client carol{"carol"};
  ws_client dave{"dave"};
  env.join(carol);
  env.join(dave);

  SUBCASE("accepted, the caller drops") {
    auto session_id = env.join_in_call(alice, bob);
    alice.drop();
    expect_ended(bob, session_id, "peer_disconnected", "alice");
    CHECK(call_released(env.redis, session_id, "alice", "bob"));
  }
  SUBCASE("ringing, the callee drops") {
    env.join(alice);
    env.join(bob);
    auto session_id = place_call(alice, bob);
    bob.drop();
    expect_ended(alice, session_id, "peer_disconnected", "bob");
    CHECK(call_released(env.redis, session_id, "alice", "bob"));
  }
  // The others' call is untouched.
  auto other = place_call(carol, dave);
  dave.accept(other);
  carol.expect("call.accepted");
  check_relay(carol, dave, other);
}

TEST_CASE("with a reconnect grace a dropped participant's call ends when the grace runs out, "
          "with no call check due") {
  one_instance env{no_check_due("2s")};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  auto session_id = env.join_in_call(alice, bob);

  alice.drop();
  // Within the grace: the call waits for alice (her drop was noted).
  CHECK(wait_until(
    [&] { return !env.hget(env.redis.session_key(session_id), "away:caller").empty(); }, 3s));
  CHECK(env.hget(env.redis.session_key(session_id), "state") == "accepted");
  // The periodic check is 600 s away: only the grace's own timer ends it.
  expect_ended(bob, session_id, "peer_disconnected", "alice", 15s);
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
}

TEST_CASE("caller closes its connection while it rings: the callee hears peer_disconnected") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);
  auto session_id = place_call(alice, bob);

  alice.close();
  expect_ended(bob, session_id, "peer_disconnected", "alice");
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
  CHECK(wait_until([&] { return !key_exists(env.redis, env.redis.user_key("alice")); }, 3s));
}

TEST_CASE("caller's connection drops during an accepted call and it does not come back: the "
          "callee hears peer_disconnected once the reconnect grace is over") {
  one_instance env{{{"RECONNECT_GRACE", "1s"}, {"CALL_CHECK_INTERVAL", "200ms"}}};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  auto session_id = env.join_in_call(alice, bob);

  alice.drop();
  bob.expect_nothing(700ms);
  CHECK(env.hget(env.redis.session_key(session_id), "state") == "accepted");
  expect_ended(bob, session_id, "peer_disconnected", "alice");
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
  CHECK_FALSE(key_exists(env.redis, env.redis.user_key("alice")));
}

TEST_CASE("callee closes its connection during an accepted call: the caller hears "
          "peer_disconnected and the presence key goes") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  auto session_id = env.join_in_call(alice, bob);

  bob.close();
  expect_ended(alice, session_id, "peer_disconnected", "bob");
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
  CHECK(wait_until([&] { return !key_exists(env.redis, env.redis.user_key("bob")); }, 3s));
  CHECK(key_exists(env.redis, env.redis.user_key("alice")));

  // bob is offline now.
  alice.start_call("bob");
  alice.expect_error("user_offline");
}

// Call keys are extended by the call check, which runs at least every third
// of SESSION_TTL (a bug once let them expire between two checks).
TEST_CASE("an accepted call lives on past the session TTL and still relays both ways") {
  one_instance env{{{"SESSION_TTL", "2s"}}};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  auto session_id = env.join_in_call(alice, bob);

  // Well past two TTLs with no traffic at all.
  alice.expect_nothing(5s);
  bob.expect_nothing(100ms);

  auto session = env.redis.session_key(session_id);
  CHECK(env.hget(session, "state") == "accepted");
  auto ttl = env.redis.run({"PTTL", session});
  INFO("PTTL ", session, " = ", ttl.integer);
  CHECK(ttl.integer > 0);
  CHECK(env.get(env.redis.user_call_key("alice")) == session_id);
  CHECK(env.get(env.redis.user_call_key("bob")) == session_id);

  auto offer = json_fields({{"session_id", session_id}, {"sdp", "v=0\r\n"}});
  alice.send("webrtc.offer", offer);
  CHECK(bob.expect("webrtc.offer") == json::parse(offer));
  auto answer = json_fields({{"session_id", session_id}, {"sdp", "v=0\r\na=answer\r\n"}});
  bob.send("webrtc.answer", answer);
  CHECK(alice.expect("webrtc.answer") == json::parse(answer));

  alice.end_call(session_id);
  expect_ended(bob, session_id, "ended_by_user", "alice");
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
}
