/// End to end on one instance: every error code, refused tokens, limits,
/// health, takeover and shutdown, through the real goring binary, on one
/// redis-server or a Redis Cluster (GORING_TEST_REDIS=cluster).
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "redis/keys.hpp"
#include "tests/support/goring_process.hpp"
#include "tests/support/one_instance.hpp"
#include "tests/support/raw_client.hpp"
#include "tests/support/redis_backend.hpp"
#include "tests/support/token.hpp"
#include "tests/support/ws_client.hpp"

using namespace goring::test;
namespace keys = goring::redis::keys;

namespace {

/// A check that the connection still serves: a call to someone offline is
/// answered with user_offline.
void check_still_serves(ws_client& client) {
  INFO(client.label(), " still serves after an error");
  client.start_call("nobody-is-here");
  client.expect_error("user_offline");
}

} // namespace

TEST_CASE("tokens the server must refuse get 401 and no WebSocket") {
  one_instance env;
  struct refused {
    const char* what;
    std::string target;
  };
  std::vector<refused> cases{
    {"no token", "/ws"},
    {"an empty token", "/ws?token="},
    {"not a JWT", "/ws?token=" + flawed_token("mallory", token_flaw::not_a_jwt)},
    {"three dots of garbage", "/ws?token=abc.def.ghi"},
    {"an expired token", "/ws?token=" + flawed_token("mallory", token_flaw::expired)},
    {"a wrong secret", "/ws?token=" + flawed_token("mallory", token_flaw::wrong_secret)},
    {"alg none", "/ws?token=" + flawed_token("mallory", token_flaw::alg_none)},
    {"no hash claim", "/ws?token=" + flawed_token("mallory", token_flaw::no_hash)},
  };
  for (auto& c : cases) {
    INFO("a token with ", c.what);
    ws_client mallory{"mallory"};
    CHECK(mallory.try_connect_target(env.goring.port(), c.target) == 401);
    CHECK_FALSE(mallory.is_open());
  }
  CHECK(env.keys_matching("ws:user:*").empty());

  // The same user with a good token gets in.
  ws_client mallory{"mallory"};
  CHECK(mallory.try_connect(env.goring.port(), user_token("mallory")) == 101);
  wait_online(env.redis, "mallory");
}

TEST_CASE("health is 200 OK while Redis works and 503 once Redis is gone") {
  one_instance env;
  auto healthy = http_get(env.goring.port(), "/health");
  CHECK(healthy.status == 200);
  CHECK(healthy.body == "OK");

  env.redis.stop();
  int status = 0;
  bool noticed = wait_until(
    [&] {
      status = http_get(env.goring.port(), "/health", 1s).status;
      return status == 503;
    },
    6s);
  INFO("last /health status ", status);
  CHECK(noticed);
  CHECK(env.goring.running());
}

TEST_CASE("malformed frames get invalid_message and the connection goes on") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);

  std::vector<std::string> frames{
    "hello",
    "{\"type\":",
    "[1,2,3]",
    "42",
    "\"call.start\"",
    "null",
    R"({"type":"call.dance","payload":{}})",
    R"({"payload":{"callee_id":"bob"}})",
    R"({"type":42,"payload":{"callee_id":"bob"}})",
    R"({"type":"call.start"})",
    R"({"type":"call.start","payload":"bob"})",
    R"({"type":"call.start","payload":{}})",
    R"({"type":"call.start","payload":{"callee_id":""}})",
    R"({"type":"call.start","payload":{"callee_id":42}})",
    R"({"type":"call.start","payload":{"callee_id":null}})",
    R"({"type":"call.start","payload":{"callee_id":"alice"}})", // calling yourself
    R"({"type":"call.accept","payload":{}})",
    R"({"type":"call.accept","payload":{"session_id":""}})",
    R"({"type":"call.accept","payload":{"session_id":7}})",
    R"({"type":"call.reject","payload":{"session_id":["x"]}})",
    R"({"type":"call.end","payload":{}})",
    R"({"type":"webrtc.offer","payload":{"sdp":"v=0\r\n"}})",
    R"({"type":"webrtc.offer","payload":{"session_id":"s-1"}})",
    R"({"type":"webrtc.answer","payload":{"session_id":"s-1","sdp":5}})",
    R"({"type":"webrtc.ice","payload":{"session_id":"s-1"}})",
    R"({"type":"webrtc.ice","payload":{"session_id":"s-1","candidate":""}})",
  };
  for (auto& frame : frames) {
    INFO("frame ", frame);
    alice.send_text(frame);
    alice.expect_error("invalid_message");
  }
  bob.expect_nothing(200ms);

  // Still connected, still calling.
  CHECK(alice.is_open());
  place_call(alice, bob);
}

TEST_CASE("a binary frame gets invalid_message and the connection goes on") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);

  alice.send_binary(R"({"type":"call.start","payload":{"callee_id":"bob"}})");
  alice.expect_error("invalid_message");
  bob.expect_nothing(300ms);
  place_call(alice, bob);
}

TEST_CASE("a frame over MAX_MESSAGE_BYTES closes the connection with 1009 and ends its call") {
  one_instance env{{{"MAX_MESSAGE_BYTES", "1024"}}};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  auto session_id = env.join_in_call(alice, bob);

  // Just under the limit is fine.
  auto sdp = std::string(900, 'a');
  auto small = json_fields({{"session_id", session_id}, {"sdp", sdp}});
  alice.send("webrtc.offer", small);
  CHECK(bob.expect("webrtc.offer") == json::parse(small));

  auto big = json_fields({{"session_id", session_id}, {"sdp", std::string(2000, 'a')}});
  alice.send("webrtc.offer", big);
  auto closed = alice.expect_close();
  REQUIRE(closed.has_value());
  CHECK(closed->code == 1009);
  expect_ended(bob, session_id, "peer_disconnected", "alice");
}

TEST_CASE("calling a user who is not connected is user_offline") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);

  alice.start_call("nobody");
  alice.expect_error("user_offline");

  bob.close();
  CHECK(wait_until([&] { return !key_exists(env.redis, env.redis.user_key("bob")); }, 3s));
  alice.start_call("bob");
  alice.expect_error("user_offline");
  CHECK_FALSE(key_exists(env.redis, env.redis.user_call_key("alice")));
}

TEST_CASE("calling someone already in a call is user_busy, caller or callee") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  ws_client carol{"carol"};
  ws_client dave{"dave"};
  env.join(alice);
  env.join(bob);
  env.join(carol);
  env.join(dave);
  auto session_id = place_call(alice, bob);

  carol.start_call("bob");
  carol.expect_error("user_busy");
  carol.start_call("alice");
  carol.expect_error("user_busy");
  alice.expect_nothing(200ms);
  bob.expect_nothing(100ms);

  // The busy call goes on, and carol can still call someone free.
  bob.accept(session_id);
  alice.expect("call.accepted");
  carol.start_call("bob");
  carol.expect_error("user_busy");
  place_call(carol, dave);
}

TEST_CASE("a caller already in a call who starts another hears user_busy, as from the reference, "
          "and the call goes on") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  ws_client carol{"carol"};
  env.join(alice);
  env.join(bob);
  env.join(carol);
  auto session_id = place_call(alice, bob);

  // Ringing, then accepted: the connection knows its call.
  alice.start_call("carol");
  auto busy = alice.expect_error("user_busy");
  CHECK(busy.str("message") == "you are already in a call");
  bob.accept(session_id);
  alice.expect("call.accepted");
  alice.start_call("carol");
  alice.expect_error("user_busy");
  carol.expect_nothing(200ms);
  CHECK(env.hget(env.redis.session_key(session_id), "state") == "accepted");

  // Only Redis knows of carol's call (held by no connection of hers here):
  // call_start refuses her as the caller, with the same answer.
  env.redis.run({"HSET", env.redis.session_key("s-elsewhere"), "caller_id", "carol", "callee_id",
                 "dave", "state", "accepted"});
  env.redis.run({"SET", env.redis.user_call_key("carol"), "s-elsewhere"});
  carol.start_call("alice");
  busy = carol.expect_error("user_busy");
  CHECK(busy.str("message") == "you are already in a call");
  alice.expect_nothing(200ms);
}

TEST_CASE("unknown session ids are session_not_found") {
  one_instance env;
  ws_client alice{"alice"};
  env.join(alice);

  alice.accept("no-such-session");
  alice.expect_error("session_not_found");
  alice.reject("no-such-session");
  alice.expect_error("session_not_found");
  alice.end_call("no-such-session");
  alice.expect_error("session_not_found");
  check_still_serves(alice);
}

TEST_CASE("someone outside the call may not relay to it, end it or accept it") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  ws_client carol{"carol"};
  env.join(alice);
  env.join(bob);
  env.join(carol);

  auto ringing_session = place_call(alice, bob);
  carol.accept(ringing_session);
  carol.expect_error("unauthorized");
  bob.accept(ringing_session);
  alice.expect("call.accepted");
  auto session_id = ringing_session;

  carol.send("webrtc.offer", json_fields({{"session_id", session_id}, {"sdp", "v=0\r\n"}}));
  carol.expect_error("unauthorized");
  carol.send("webrtc.ice", json_fields({{"session_id", session_id}, {"candidate", "candidate:1"}}));
  carol.expect_error("unauthorized");
  carol.end_call(session_id);
  carol.expect_error("unauthorized");
  alice.expect_nothing(300ms);
  bob.expect_nothing(100ms);

  // The call is untouched.
  auto offer = json_fields({{"session_id", session_id}, {"sdp", "v=0\r\n"}});
  alice.send("webrtc.offer", offer);
  CHECK(bob.expect("webrtc.offer") == json::parse(offer));
  check_still_serves(carol);
}

TEST_CASE("a relay that reaches a user's channel after its call ended is not written to the user's "
          "next connection") {
  // What a peer's relay sent just before the end looks like when it arrives
  // on the channel of a user who is in no call (now connected afresh).
  one_instance env;
  ws_client alice{"alice"};
  env.join(alice);
  auto stray = std::string{"R"}
               + R"({"type":"webrtc.ice","payload":{"session_id":"00000000-0000-4000-8000-)"
               + R"(000000000000","candidate":"candidate:1 1 UDP 1 127.0.0.1 9 typ host"}})";
  CHECK(env.redis.run({"PUBLISH", keys::signal("alice"), stray}).integer == 1);
  alice.expect_nothing(300ms);

  // In a call, relays over the channel still arrive (what an instance
  // publishes for a peer on another instance).
  ws_client bob{"bob"};
  env.join(bob);
  auto session_id = connect_call(alice, bob);
  auto ice = R"({"type":"webrtc.ice","payload":{"session_id":")" + session_id
             + R"(","candidate":"candidate:1 1 UDP 1 127.0.0.1 9 typ host"}})";
  CHECK(env.redis.run({"PUBLISH", keys::signal("alice"), "R" + ice}).integer == 1);
  CHECK(alice.expect("webrtc.ice").str("session_id") == session_id);
}

TEST_CASE("the caller may not accept or reject its own call") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);
  auto session_id = place_call(alice, bob);

  alice.accept(session_id);
  alice.expect_error("unauthorized");
  alice.reject(session_id);
  alice.expect_error("unauthorized");
  bob.expect_nothing(300ms);
  CHECK(env.redis.run({"HGET", env.redis.session_key(session_id), "state"}).str == "ringing");

  // The callee still can.
  bob.accept(session_id);
  alice.expect("call.accepted");
}

TEST_CASE("accepting twice is invalid_state and changes nothing") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  auto session_id = env.join_in_call(alice, bob);

  bob.accept(session_id);
  bob.expect_error("invalid_state");
  alice.expect_nothing(300ms);

  auto offer = json_fields({{"session_id", session_id}, {"sdp", "v=0\r\n"}});
  alice.send("webrtc.offer", offer);
  CHECK(bob.expect("webrtc.offer") == json::parse(offer));
}

TEST_CASE("webrtc before the callee accepts is invalid_state and reaches nobody") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);
  auto session_id = place_call(alice, bob);

  alice.send("webrtc.offer", json_fields({{"session_id", session_id}, {"sdp", "v=0\r\n"}}));
  alice.expect_error("invalid_state");
  bob.send("webrtc.ice", json_fields({{"session_id", session_id}, {"candidate", "candidate:1"}}));
  bob.expect_error("invalid_state");
  alice.expect_nothing(300ms);
  bob.expect_nothing(100ms);

  bob.accept(session_id);
  alice.expect("call.accepted");
  auto offer = json_fields({{"session_id", session_id}, {"sdp", "v=0\r\n"}});
  alice.send("webrtc.offer", offer);
  CHECK(bob.expect("webrtc.offer") == json::parse(offer));
}

TEST_CASE("accepting a call the caller already cancelled is refused") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);
  auto session_id = place_call(alice, bob);

  alice.end_call(session_id);
  expect_ended(bob, session_id, "cancelled", "alice");
  bob.accept(session_id);
  // The cancel deleted the session, so either answer is right.
  auto error = bob.expect("error");
  INFO("error ", error);
  auto code = error.str("code");
  CHECK((code == "session_not_found" || code == "invalid_state"));
  alice.expect_nothing(300ms);
  place_call(bob, alice);
}

TEST_CASE("callee accepts while the caller hangs up: one consistent outcome either way") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);
  auto session_id = place_call(alice, bob);

  // Sent back to back on two connections: the server may take either first.
  alice.end_call(session_id);
  bob.accept(session_id);

  // What comes within `first`, then whatever follows closely. bob hears
  // something either way (its first frame may be slow on a loaded
  // machine); alice's call.accepted, if the accept came first, went out
  // before bob's call.ended, so it is there once bob's frames are.
  auto drain = [](ws_client& client, std::chrono::milliseconds first,
                  std::chrono::milliseconds quiet) {
    std::vector<ws_frame> frames;
    for (auto wait = first; auto f = client.next(wait); wait = quiet)
      frames.push_back(std::move(*f));
    return frames;
  };
  auto to_bob = drain(bob, frame_timeout, 1500ms);
  auto to_alice = drain(alice, 300ms, 300ms);
  std::string seen = "alice got:";
  for (auto& f : to_alice)
    seen += " " + f.data;
  seen += "; bob got:";
  for (auto& f : to_bob)
    seen += " " + f.data;
  INFO(seen);

  auto has = [](const std::vector<ws_frame>& frames, const std::string& type, const char* field,
                const std::vector<std::string>& values) {
    for (auto& f : frames)
      if (f.type == type)
        for (auto& v : values)
          if (f.payload.str(field) == v)
            return true;
    return false;
  };
  // The cancel first: bob hears cancelled and his accept is refused.
  bool cancel_first = to_alice.empty() && to_bob.size() == 2
                      && has(to_bob, "call.ended", "reason", {"cancelled"})
                      && has(to_bob, "error", "code", {"session_not_found", "invalid_state"});
  // The accept first: alice hears accepted, then her end reaches bob.
  bool accept_first =
    to_alice.size() == 1 && has(to_alice, "call.accepted", "session_id", {session_id})
    && to_bob.size() == 1 && has(to_bob, "call.ended", "reason", {"ended_by_user"});
  CHECK((cancel_first || accept_first));
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
  place_call(bob, alice);
}

TEST_CASE("two callers ring one callee at the same moment: one rings, the other is busy") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client carol{"carol"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(carol);
  env.join(bob);

  for (int round = 0; round < 5; ++round) {
    INFO("round ", round);
    // Back to back, before either answer is read.
    alice.start_call("bob");
    carol.start_call("bob");
    auto to_alice = alice.next();
    auto to_carol = carol.next();
    REQUIRE(to_alice.has_value());
    REQUIRE(to_carol.has_value());
    INFO("alice got ", to_alice->data, "; carol got ", to_carol->data);
    bool alice_won = to_alice->type == "call.ringing";
    bool carol_won = to_carol->type == "call.ringing";
    REQUIRE(alice_won != carol_won);
    auto& winner = alice_won ? alice : carol;
    auto& loser_frame = alice_won ? *to_carol : *to_alice;
    CHECK(loser_frame.type == "error");
    CHECK(loser_frame.payload.str("code") == "user_busy");
    auto session_id = (alice_won ? *to_alice : *to_carol).payload.str("session_id");

    auto ring = bob.expect("call.ring");
    CHECK(ring.str("caller_id") == winner.label());
    CHECK(ring.str("session_id") == session_id);
    bob.expect_nothing(200ms);

    winner.end_call(session_id);
    expect_ended(bob, session_id, "cancelled", winner.label());
    CHECK(call_released(env.redis, session_id, winner.label(), "bob"));
  }
}

TEST_CASE("Redis failing mid-session answers internal_error and keeps the connection") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice);
  env.join(bob);

  env.redis.stop();
  alice.start_call("bob");
  alice.expect_error("internal_error", 8s);
  CHECK(alice.is_open());

  // Frames that need no Redis are still answered.
  alice.send_text("not json");
  alice.expect_error("invalid_message");
}

TEST_CASE("a second connection of a user takes over: the old one gets 4000 replaced and the call "
          "moves to the new one") {
  one_instance env;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  auto session_id = env.join_in_call(alice, bob);
  auto old_owner = presence_owner(env.redis, "alice");

  ws_client alice_again{"alice"};
  connect_online(alice_again, env.goring, env.redis, user_token("alice"), old_owner);
  auto closed = alice.expect_close();
  REQUIRE(closed.has_value());
  CHECK(closed->code == 4000);
  CHECK(closed->reason == "replaced");
  expect_resumed(alice_again, session_id, "bob", "accepted", "caller");
  // bob hears nothing of the move, and the call relays both ways.
  bob.expect_nothing(300ms);
  check_relay(bob, alice_again, session_id);
  check_relay(alice_again, bob, session_id);

  // The old connection's release must not take the new one's key.
  auto new_owner = presence_owner(env.redis, "alice");
  alice_again.expect_nothing(500ms);
  CHECK(presence_owner(env.redis, "alice") == new_owner);
  CHECK_FALSE(new_owner.empty());
  CHECK(new_owner != old_owner);

  // The moved call ends as any other, and calls reach the new connection.
  bob.end_call(session_id);
  expect_ended(alice_again, session_id, "ended_by_user", "bob");
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
  auto next_session = place_call(bob, alice_again);
  alice_again.accept(next_session);
  bob.expect("call.accepted");
}

TEST_CASE("SIGTERM drains: readiness and new upgrades get 503, clients are closed with 1012, the "
          "presence keys and the heartbeat go, the calls stay, and the process exits 0") {
  // A grace and a check interval far beyond the 10 s stop() waits: the drain
  // ends when its work is done, not when a call actor's next check or the
  // grace comes.
  one_instance env{{{"SHUTDOWN_GRACE", "30s"}, {"CALL_CHECK_INTERVAL", "60s"}}};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  ws_client carol{"carol"};
  env.join(alice);
  env.join(bob);
  env.join(carol);
  auto session_id = connect_call(alice, bob);
  REQUIRE(env.keys_matching("ws:user:*").size() == 3);
  CHECK(key_exists(env.redis, keys::server("goring-1")));
  {
    http_response ready;
    bool was_ready = wait_until(
      [&] {
        ready = http_get(env.goring.admin_port(), "/ready", 1s);
        return ready.status == 200;
      },
      5s);
    INFO("/ready before the drain: ", ready.status, " ", ready.body);
    CHECK(was_ready);
  }
  // A connection the server accepts before the drain, upgraded during it.
  ws_client late{"dave"};
  REQUIRE(late.open_tcp(env.goring.port()));
  // A WebSocket client that never reads, so never answers the close frame:
  // its session holds the process up for the close grace (3 s), so the
  // steps below happen while it drains, however slow this machine is. With
  // only the ws_clients the drain was over in milliseconds, and a late
  // upgrade on a slow machine once found the process gone.
  raw_client mute;
  REQUIRE(mute.connect(env.goring.port()));
  REQUIRE(mute.send(upgrade_request(env.goring.port(), "/ws?token=" + user_token("frank"))));
  REQUIRE(mute.read_status() == 101);
  wait_online(env.redis, "frank");

  auto started = std::chrono::steady_clock::now();
  auto exit_code = std::async(std::launch::async, [&] { return env.goring.stop(); });
  http_response ready;
  INFO("/ready during the drain: ", ready.status, " ", ready.body);
  CHECK(wait_until(
    [&] {
      ready = http_get(env.goring.admin_port(), "/ready", 500ms);
      return ready.status == 503;
    },
    2s));
  CHECK(ready.body == "draining");
  CHECK(late.try_upgrade("/ws?token=" + user_token("dave")) == 503);
  ws_client later{"erin"};
  CHECK(later.try_connect(env.goring.port(), user_token("erin"), 1s) != 101);

  for (auto* client : {&alice, &bob, &carol}) {
    INFO(client->label());
    auto closed = client->expect_close(10s);
    REQUIRE(closed.has_value());
    CHECK(closed->code == 1012);
    CHECK(closed->reason == "service restart");
  }
  // stop() gives up (-1) after 10 s, a third of SHUTDOWN_GRACE.
  CHECK(exit_code.get() == 0);
  CHECK(std::chrono::steady_clock::now() - started < 10s);
  auto left = env.keys_matching("ws:user:*");
  INFO("left behind: ", left.size(), " ws:user keys");
  CHECK(left.empty());
  CHECK_FALSE(key_exists(env.redis, keys::server("goring-1")));
  // The call waits in Redis for its users to come back to another instance.
  CHECK(env.redis.run({"HGET", env.redis.session_key(session_id), "state"}).str == "accepted");
  CHECK(env.redis.run({"GET", env.redis.user_call_key("alice")}).str == session_id);
  CHECK(env.redis.run({"GET", env.redis.user_call_key("bob")}).str == session_id);
}

TEST_CASE("SIGTERM drains a call whose users dropped before without waiting for the call's "
          "check, and the heartbeat still goes") {
  one_instance env{{{"SHUTDOWN_GRACE", "30s"}, {"CALL_CHECK_INTERVAL", "60s"}}};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  auto session_id = env.join_in_call(alice, bob);
  // Gone without a close frame: away, so the call actor stays, holding nobody.
  alice.drop();
  bob.drop();
  auto away = [&] {
    auto log = env.log();
    return log.find(": alice is away") != std::string::npos
           && log.find(": bob is away") != std::string::npos;
  };
  REQUIRE(wait_until(away, 5s));
  auto started = std::chrono::steady_clock::now();
  // stop() gives up (-1) after 10 s, a third of SHUTDOWN_GRACE.
  CHECK(env.goring.stop() == 0);
  CHECK(std::chrono::steady_clock::now() - started < 10s);
  CHECK_FALSE(key_exists(env.redis, keys::server("goring-1")));
  CHECK(env.redis.run({"HGET", env.redis.session_key(session_id), "state"}).str == "accepted");
}
