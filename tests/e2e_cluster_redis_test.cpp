/// End to end on two instances sharing one Redis (a redis-server, or a Redis
/// Cluster with GORING_TEST_REDIS=cluster): calls whose users sit on
/// different goring processes, and takeover across them.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <map>
#include <string>

#include "redis/keys.hpp"
#include "tests/support/goring_process.hpp"
#include "tests/support/redis_backend.hpp"
#include "tests/support/token.hpp"
#include "tests/support/ws_client.hpp"

using namespace goring::test;
namespace keys = goring::redis::keys;

namespace {

/// Two goring processes with different SERVER_IDs and one Redis.
struct two_instances {
  redis_backend redis;
  goring_process first;
  goring_process second;

  explicit two_instances(const std::map<std::string, std::string>& env = {})
    : first(redis, "goring-1", env), second(redis, "goring-2", env) {
    // nop
  }

  /// Connects `client` as the user its label names to `instance`.
  void join(ws_client& client, goring_process& instance) {
    connect_online(client, instance, redis, user_token(client.label()));
  }
};

/// Checks a `*_info` object names `user_id` with the claims of user_token.
void check_full_info(const json& info, const std::string& user_id) {
  INFO("info ", info);
  CHECK(info.str("user_id") == user_id);
  CHECK(info.str("name") == display_name_of(user_id));
  CHECK(info.str("username") == username_of(user_id));
}

} // namespace

TEST_CASE("a call across two instances: ring, accept, relay both ways, hang up") {
  two_instances env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  CHECK(presence_owner(env.redis, "alice") != presence_owner(env.redis, "bob"));

  alice.start_call("bob");
  auto ringing = alice.expect("call.ringing");
  auto session_id = ringing.str("session_id");
  REQUIRE(!session_id.empty());
  CHECK(ringing.str("callee_id") == "bob");
  auto ring = bob.expect("call.ring");
  CHECK(ring.str("session_id") == session_id);
  CHECK(ring.str("caller_id") == "alice");
  check_full_info(ring.at("caller_info"), "alice");

  bob.accept(session_id);
  auto accepted = alice.expect("call.accepted");
  CHECK(accepted.str("session_id") == session_id);
  check_full_info(accepted.at("callee_info"), "bob");
  bob.expect_nothing(300ms);

  auto offer = json_fields(
    {{"session_id", session_id},
     {"sdp", "v=0\r\no=- 42 2 IN IP4 127.0.0.1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"}});
  alice.send("webrtc.offer", offer);
  CHECK(bob.expect("webrtc.offer") == json::parse(offer));

  auto answer =
    json_fields({{"session_id", session_id}, {"sdp", "v=0\r\no=- 43 2 IN IP4 127.0.0.1\r\n"}});
  bob.send("webrtc.answer", answer);
  CHECK(alice.expect("webrtc.answer") == json::parse(answer));

  auto ice_out = R"({"session_id":")" + session_id
                 + R"(","candidate":"candidate:1 1 UDP 2122252543 192.168.1.1 12345 typ host",)"
                 + R"("sdpMid":"0","sdpMLineIndex":0})";
  alice.send("webrtc.ice", ice_out);
  CHECK(bob.expect("webrtc.ice") == json::parse(ice_out));

  auto ice_back = R"({"session_id":")" + session_id
                  + R"(","candidate":"candidate:2 1 UDP 1686052607 203.0.113.9 40000 typ srflx",)"
                  + R"("sdpMid":"audio","sdpMLineIndex":1})";
  bob.send("webrtc.ice", ice_back);
  CHECK(alice.expect("webrtc.ice") == json::parse(ice_back));
  alice.expect_nothing(200ms);
  bob.expect_nothing(100ms);

  bob.end_call(session_id);
  auto ended = expect_ended(alice, session_id, "ended_by_user", "bob");
  // bob accepted, so alice's instance knows his claims too.
  CHECK(ended.at("peer_info").str("name") == display_name_of("bob"));
  bob.expect_nothing(300ms);
  CHECK(call_released(env.redis, session_id, "alice", "bob"));

  // Both are free for the next call, the other way round.
  place_call(bob, alice);
}

TEST_CASE("the caller on one instance hangs up an accepted call with the callee on the other") {
  two_instances env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  auto session_id = connect_call(alice, bob);

  alice.end_call(session_id);
  expect_ended(bob, session_id, "ended_by_user", "alice");
  alice.expect_nothing(300ms);
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
}

TEST_CASE("the caller cancels a ring that sits on the other instance") {
  two_instances env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  auto session_id = place_call(alice, bob);

  alice.end_call(session_id);
  expect_ended(bob, session_id, "cancelled", "alice");
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
}

TEST_CASE("the callee on the other instance rejects: the caller hears rejected with its info") {
  two_instances env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  auto session_id = place_call(alice, bob);

  bob.reject(session_id);
  auto rejected = alice.expect("call.rejected");
  CHECK(rejected.str("session_id") == session_id);
  check_full_info(rejected.at("callee_info"), "bob");
  bob.expect_nothing(300ms);
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
  place_call(alice, bob);
}

// Only the caller's instance times the ring; the callee's hears no_answer
// over pub/sub (a bug once let the second timer's actor swallow it).
TEST_CASE("nobody answers across instances: both hear no_answer and can call again") {
  two_instances env{{{"RING_TIMEOUT", "1s"}}};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  auto session_id = place_call(alice, bob);

  expect_ended(alice, session_id, "no_answer", "bob");
  expect_ended(bob, session_id, "no_answer", "alice");
  CHECK(call_released(env.redis, session_id, "alice", "bob"));

  auto next_session = place_call(bob, alice);
  alice.accept(next_session);
  bob.expect("call.accepted");
}

TEST_CASE("the caller's connection drops while the callee on the other instance rings: the "
          "callee hears peer_disconnected once the reconnect grace is over") {
  two_instances env{{{"RECONNECT_GRACE", "1s"}, {"CALL_CHECK_INTERVAL", "200ms"}}};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  auto session_id = place_call(alice, bob);

  // No close frame: the call waits for alice to come back, on any instance.
  alice.drop();
  bob.expect_nothing(700ms);
  expect_ended(bob, session_id, "peer_disconnected", "alice");
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
  CHECK_FALSE(key_exists(env.redis, env.redis.user_key("alice")));
}

TEST_CASE("the callee on the other instance disconnects during an accepted call") {
  two_instances env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  auto session_id = connect_call(alice, bob);

  bob.close();
  expect_ended(alice, session_id, "peer_disconnected", "bob");
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
  CHECK(wait_until([&] { return !key_exists(env.redis, env.redis.user_key("bob")); }, 3s));
}

TEST_CASE("a connection on the other instance takes over: the old one gets 4000 replaced and the "
          "call moves to the new one") {
  two_instances env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  auto session_id = connect_call(alice, bob);
  auto old_owner = presence_owner(env.redis, "alice");

  ws_client alice_again{"alice"};
  connect_online(alice_again, env.second, env.redis, user_token("alice"), old_owner);
  auto closed = alice.expect_close();
  REQUIRE(closed.has_value());
  CHECK(closed->code == 4000);
  CHECK(closed->reason == "replaced");
  expect_resumed(alice_again, session_id, "bob", "accepted", "caller");
  // bob hears nothing of the move, and the call relays both ways.
  bob.expect_nothing(300ms);
  check_relay(alice_again, bob, session_id);
  check_relay(bob, alice_again, session_id);

  // The old instance's release does not take the new connection's key.
  auto new_owner = presence_owner(env.redis, "alice");
  alice_again.expect_nothing(500ms);
  CHECK_FALSE(new_owner.empty());
  CHECK(new_owner != old_owner);
  CHECK(presence_owner(env.redis, "alice") == new_owner);

  // Ending the moved call reaches bob, and the next call reaches alice on
  // her new instance.
  alice_again.end_call(session_id);
  expect_ended(bob, session_id, "ended_by_user", "alice");
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
  auto next_session = place_call(bob, alice_again);
  alice_again.accept(next_session);
  bob.expect("call.accepted");
}

TEST_CASE("a takeover back onto the first instance closes the connection on the second") {
  two_instances env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.second);
  env.join(bob, env.first);
  auto old_owner = presence_owner(env.redis, "alice");

  ws_client alice_again{"alice"};
  connect_online(alice_again, env.first, env.redis, user_token("alice"), old_owner);
  auto closed = alice.expect_close();
  REQUIRE(closed.has_value());
  CHECK(closed->code == 4000);
  CHECK(closed->reason == "replaced");

  place_call(bob, alice_again);
}

TEST_CASE("an instance draining on SIGTERM closes its clients with 1012 and keeps their calls, "
          "a user who does not come back ends the call for the peer after the grace") {
  two_instances env{{{"RECONNECT_GRACE", "2s"}, {"CALL_CHECK_INTERVAL", "200ms"}}};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  auto session_id = connect_call(alice, bob);

  auto drained = std::chrono::steady_clock::now();
  auto exit_code = std::async(std::launch::async, [&] { return env.first.stop(); });
  auto closed = alice.expect_close(10s);
  REQUIRE(closed.has_value());
  CHECK(closed->code == 1012);
  CHECK(closed->reason == "service restart");
  CHECK(exit_code.get() == 0);

  // The drain released alice's presence and the instance's heartbeat, and
  // left the call to wait for her.
  CHECK_FALSE(key_exists(env.redis, env.redis.user_key("alice")));
  CHECK_FALSE(key_exists(env.redis, keys::server("goring-1")));
  CHECK(key_exists(env.redis, keys::server("goring-2")));
  CHECK(env.redis.run({"HGET", env.redis.session_key(session_id), "state"}).str == "accepted");
  CHECK(env.redis.run({"GET", env.redis.user_call_key("alice")}).str == session_id);
  CHECK(key_exists(env.redis, env.redis.user_key("bob")));
  CHECK(http_get(env.second.port(), "/health").status == 200);

  // alice stays away: bob hears nothing until the grace is nearly over...
  auto quiet_until = drained + 1700ms;
  auto now = std::chrono::steady_clock::now();
  if (now < quiet_until)
    bob.expect_nothing(std::chrono::duration_cast<std::chrono::milliseconds>(quiet_until - now));
  // ...then the end.
  expect_ended(bob, session_id, "peer_disconnected", "alice");
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
}
