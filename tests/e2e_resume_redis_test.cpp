/// End to end: calls that outlive their users' connections. Drains, dropped
/// connections, takeovers and crashes against real goring processes and a
/// real Redis (one redis-server, or a Redis Cluster with
/// GORING_TEST_REDIS=cluster); a participant who comes back within
/// RECONNECT_GRACE resumes.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "redis/keys.hpp"
#include "tests/support/goring_process.hpp"
#include "tests/support/redis_backend.hpp"
#include "tests/support/token.hpp"
#include "tests/support/ws_client.hpp"

using namespace goring::test;
namespace keys = goring::redis::keys;
using steady = std::chrono::steady_clock;

namespace {

constexpr auto check_interval = 200ms;
constexpr auto heartbeat_ttl = 2s;

/// Short timeouts for every wait of these scenarios, with a reconnect grace
/// of `grace`.
std::map<std::string, std::string> quick(const std::string& grace) {
  return {{"RECONNECT_GRACE", grace},
          {"CALL_CHECK_INTERVAL", "200ms"},
          {"HEARTBEAT_TTL", "2s"},
          {"RING_TIMEOUT", "15s"}};
}

/// Two goring processes with different SERVER_IDs and one Redis.
struct two_instances {
  redis_backend redis;
  goring_process first;
  goring_process second;

  explicit two_instances(const std::map<std::string, std::string>& env)
    : first(redis, "goring-1", env), second(redis, "goring-2", env) {
    // nop
  }

  /// Connects `client` as the user its label names to `instance`.
  void join(ws_client& client, goring_process& instance) {
    connect_online(client, instance, redis, user_token(client.label()));
  }

  /// Connects `client` again as its user to `instance`, once Redis names a
  /// new owner instead of `previous_owner`.
  void rejoin(ws_client& client, goring_process& instance, const std::string& previous_owner) {
    connect_online(client, instance, redis, user_token(client.label()), previous_owner);
  }

  std::string hget(const std::string& key, const std::string& field) {
    return redis.hget(key, field);
  }

  std::string get(const std::string& key) {
    return redis.get(key);
  }

  /// Checks Redis still holds the call `session_id` between the two users,
  /// live in `state`.
  void check_call_kept(const std::string& session_id, const std::string& caller,
                       const std::string& callee, const std::string& state) {
    INFO("call ", session_id, " between ", caller, " and ", callee);
    CHECK(hget(redis.session_key(session_id), "state") == state);
    CHECK(get(redis.user_call_key(caller)) == session_id);
    CHECK(get(redis.user_call_key(callee)) == session_id);
  }
};

std::chrono::milliseconds since(steady::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start);
}

/// ICE both ways between `a` and `b`, each arriving unchanged.
void check_relays_both_ways(ws_client& a, ws_client& b, const std::string& session_id) {
  check_relay(a, b, session_id);
  check_relay(b, a, session_id);
}

/// Offer and answer both ways, then ICE: a renegotiation after a resume.
void check_negotiation(ws_client& offerer, ws_client& answerer, const std::string& session_id) {
  auto offer = json_fields(
    {{"session_id", session_id},
     {"sdp", "v=0\r\no=- 77 3 IN IP4 127.0.0.1\r\na=ice-restart\r\nm=audio 9 RTP/AVP 111\r\n"}});
  offerer.send("webrtc.offer", offer);
  CHECK(answerer.expect("webrtc.offer") == json::parse(offer));
  auto answer =
    json_fields({{"session_id", session_id}, {"sdp", "v=0\r\no=- 78 3 IN IP4 127.0.0.1\r\n"}});
  answerer.send("webrtc.answer", answer);
  CHECK(offerer.expect("webrtc.answer") == json::parse(answer));
  check_relays_both_ways(offerer, answerer, session_id);
}

/// Waits for `instance` to drain and exit after SIGTERM while `clients`
/// (all on it) read their close: each gets 1012 "service restart", and the
/// process exits 0 within 10 s.
void drain_instance(goring_process& instance, std::vector<ws_client*> clients) {
  auto started = steady::now();
  auto exit_code = std::async(std::launch::async, [&] { return instance.stop(); });
  for (auto* client : clients) {
    INFO(client->label(), " on the draining ", instance.server_id());
    auto closed = client->expect_close(10s);
    REQUIRE(closed.has_value());
    CHECK(closed->code == 1012);
    CHECK(closed->reason == "service restart");
  }
  CHECK(exit_code.get() == 0);
  INFO("drained in ", since(started).count(), " ms");
  CHECK(since(started) < 10s);
}

} // namespace

TEST_CASE("SIGTERM of one instance mid-call: its user reconnects to the other instance, resumes, "
          "and ICE flows both ways without call.ended on either side") {
  two_instances env{quick("4s")};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  auto session_id = connect_call(alice, bob);
  check_relays_both_ways(alice, bob, session_id);

  drain_instance(env.first, {&alice});
  // The drain gave alice's presence and its heartbeat back, and kept the call.
  CHECK_FALSE(key_exists(env.redis, env.redis.user_key("alice")));
  CHECK_FALSE(key_exists(env.redis, keys::server("goring-1")));
  CHECK(key_exists(env.redis, keys::server("goring-2")));
  env.check_call_kept(session_id, "alice", "bob", "accepted");
  bob.expect_nothing(300ms);

  ws_client alice_again{"alice"};
  env.join(alice_again, env.second);
  expect_resumed(alice_again, session_id, "bob", "accepted", "caller");
  check_relays_both_ways(alice_again, bob, session_id);
  check_relays_both_ways(bob, alice_again, session_id);

  // Well past the grace counted from the drain, the call still goes on.
  bob.expect_nothing(4500ms);
  alice_again.expect_nothing(100ms);
  env.check_call_kept(session_id, "alice", "bob", "accepted");
  check_negotiation(bob, alice_again, session_id);

  // Hanging up works as ever: the first call.ended either side sees.
  alice_again.end_call(session_id);
  expect_ended(bob, session_id, "ended_by_user", "alice");
  alice_again.expect_nothing(200ms);
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
}

TEST_CASE("a dropped connection (no close frame) reconnects to the same instance within the "
          "grace: the call resumes and relays both ways") {
  // A grace of 4 s leaves a slow machine time to rejoin within it.
  two_instances env{quick("4s")};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  auto session_id = connect_call(alice, bob);
  auto old_owner = presence_owner(env.redis, "alice");

  alice.drop();
  // Long enough for call checks to notice alice away, well within the grace.
  bob.expect_nothing(700ms);
  env.check_call_kept(session_id, "alice", "bob", "accepted");

  ws_client alice_again{"alice"};
  env.rejoin(alice_again, env.first, old_owner);
  expect_resumed(alice_again, session_id, "bob", "accepted", "caller");
  check_relays_both_ways(alice_again, bob, session_id);

  // The grace counted from the drop runs out: alice is back, nothing ends.
  bob.expect_nothing(4500ms);
  alice_again.expect_nothing(100ms);
  check_negotiation(alice_again, bob, session_id);

  bob.end_call(session_id);
  expect_ended(alice_again, session_id, "ended_by_user", "bob");
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
}

TEST_CASE("a callee whose connection drops reconnects to the instance both users are on: the call "
          "resumes") {
  redis_backend redis;
  goring_process goring{redis, "goring-1", quick("4s")};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  connect_online(alice, goring, redis, user_token("alice"));
  connect_online(bob, goring, redis, user_token("bob"));
  auto session_id = connect_call(alice, bob);
  auto old_owner = presence_owner(redis, "bob");

  bob.drop();
  alice.expect_nothing(500ms);
  ws_client bob_again{"bob"};
  connect_online(bob_again, goring, redis, user_token("bob"), old_owner);
  expect_resumed(bob_again, session_id, "alice", "accepted", "callee");
  check_relays_both_ways(bob_again, alice, session_id);

  alice.expect_nothing(4500ms);
  bob_again.expect_nothing(100ms);
  check_relays_both_ways(alice, bob_again, session_id);
  alice.end_call(session_id);
  expect_ended(bob_again, session_id, "ended_by_user", "alice");
  CHECK(call_released(redis, session_id, "alice", "bob"));
}

TEST_CASE("a dropped connection that does not come back: the peer hears peer_disconnected after "
          "the grace, not before, and the keys go") {
  two_instances env{quick("2s")};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  auto session_id = connect_call(alice, bob);

  auto dropped = steady::now();
  bob.drop();
  // Nothing for most of the grace...
  alice.expect_nothing(1700ms);
  env.check_call_kept(session_id, "alice", "bob", "accepted");
  CHECK(wait_until([&] { return !key_exists(env.redis, env.redis.user_key("bob")); }, 1s));
  // ...then the end, within a few check intervals after it.
  expect_ended(alice, session_id, "peer_disconnected", "bob");
  auto waited = since(dropped);
  INFO("call.ended came ", waited.count(), " ms after the drop");
  CHECK(waited >= 1900ms);
  // Not long after the grace (a bound wide enough for a loaded machine).
  CHECK(waited <= 2s + 3s);
  alice.expect_nothing(300ms);
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
  CHECK_FALSE(key_exists(env.redis, env.redis.user_key("bob")));
  CHECK(key_exists(env.redis, env.redis.user_key("alice")));

  // bob is offline and alice is free.
  alice.start_call("bob");
  alice.expect_error("user_offline");

  // bob comes back too late: no call to resume, and a new call works.
  ws_client bob_again{"bob"};
  env.join(bob_again, env.second);
  bob_again.expect_nothing(300ms);
  auto next_session = place_call(alice, bob_again);
  CHECK(next_session != session_id);
}

TEST_CASE("a client that closes with a close frame ends its call at once: the peer on the other "
          "instance hears peer_disconnected without waiting for the grace") {
  two_instances env{quick("10s")};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  auto session_id = connect_call(alice, bob);

  auto closed = steady::now();
  alice.close();
  expect_ended(bob, session_id, "peer_disconnected", "alice");
  INFO("call.ended came ", since(closed).count(), " ms after the close");
  // Far sooner than the 10 s grace.
  CHECK(since(closed) < 5s);
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
  CHECK(wait_until([&] { return !key_exists(env.redis, env.redis.user_key("alice")); }, 3s));

  // Coming back within the grace resumes nothing: the call is over.
  ws_client alice_again{"alice"};
  env.join(alice_again, env.first);
  alice_again.expect_nothing(500ms);
  bob.expect_nothing(100ms);
  place_call(bob, alice_again);
}

TEST_CASE("a call follows its users through takeovers on the same instance and across "
          "instances: 4000 on the old connection, call.resumed on the new, relays go on") {
  two_instances env{quick("2s")};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  auto session_id = connect_call(alice, bob);

  auto take_over = [&](ws_client& old_conn, ws_client& new_conn, goring_process& where,
                       const std::string& peer_id, const std::string& role) {
    INFO(new_conn.label(), " takes over on ", where.server_id());
    env.rejoin(new_conn, where, presence_owner(env.redis, new_conn.label()));
    auto closed = old_conn.expect_close();
    REQUIRE(closed.has_value());
    CHECK(closed->code == 4000);
    CHECK(closed->reason == "replaced");
    expect_resumed(new_conn, session_id, peer_id, "accepted", role);
  };

  // Same instance (goring-1).
  ws_client alice_2{"alice"};
  take_over(alice, alice_2, env.first, "bob", "caller");
  bob.expect_nothing(300ms);
  check_relays_both_ways(alice_2, bob, session_id);

  // Across instances (goring-1 to goring-2, where bob is).
  ws_client alice_3{"alice"};
  take_over(alice_2, alice_3, env.second, "bob", "caller");
  bob.expect_nothing(300ms);
  check_relays_both_ways(bob, alice_3, session_id);

  // The callee moves too (goring-2 to goring-1).
  ws_client bob_2{"bob"};
  take_over(bob, bob_2, env.first, "alice", "callee");
  alice_3.expect_nothing(300ms);
  check_negotiation(alice_3, bob_2, session_id);

  // Nobody is away: the grace runs out and nothing ends.
  alice_3.expect_nothing(2500ms);
  bob_2.expect_nothing(100ms);
  env.check_call_kept(session_id, "alice", "bob", "accepted");
  check_relays_both_ways(bob_2, alice_3, session_id);

  bob_2.end_call(session_id);
  expect_ended(alice_3, session_id, "ended_by_user", "bob");
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
}

TEST_CASE("with RECONNECT_GRACE=0 a takeover, here or on another instance, keeps the call, a "
          "drop then ends it at once") {
  two_instances env{quick("0s")};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  auto session_id = connect_call(alice, bob);

  auto take_over = [&](ws_client& old_conn, ws_client& new_conn, goring_process& where) {
    INFO(new_conn.label(), " takes over on ", where.server_id());
    env.rejoin(new_conn, where, presence_owner(env.redis, new_conn.label()));
    auto closed = old_conn.expect_close();
    REQUIRE(closed.has_value());
    CHECK(closed->code == 4000);
    expect_resumed(new_conn, session_id, "bob", "accepted", "caller");
  };
  // The old connection goes without a close frame of its client: away, but
  // its user is already back.
  ws_client alice_2{"alice"};
  take_over(alice, alice_2, env.first);
  ws_client alice_3{"alice"};
  take_over(alice_2, alice_3, env.second);
  // Checks come every 200 ms: several see alice present.
  bob.expect_nothing(1s);
  env.check_call_kept(session_id, "alice", "bob", "accepted");
  check_relays_both_ways(alice_3, bob, session_id);

  alice_3.drop();
  expect_ended(bob, session_id, "peer_disconnected", "alice");
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
}

TEST_CASE("kill -9 of an instance: the peer hears peer_disconnected once its heartbeat expires, "
          "and its user connects to the other instance at once") {
  two_instances env{quick("10s")};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  auto session_id = connect_call(alice, bob);
  auto dead_owner = presence_owner(env.redis, "alice");

  auto killed = steady::now();
  env.first.kill();
  // No grace for a crash: the end comes within the heartbeat's TTL and a
  // few call checks, far sooner than the 10 s grace.
  expect_ended(bob, session_id, "peer_disconnected", "alice", 6s);
  auto waited = since(killed);
  INFO("call.ended came ", waited.count(), " ms after the kill");
  CHECK(waited <= heartbeat_ttl + 4s);
  CHECK_FALSE(key_exists(env.redis, keys::server("goring-1")));
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
  // Nobody released alice's key; it still names the dead instance.
  CHECK(presence_owner(env.redis, "alice") == dead_owner);

  // alice takes over the dead instance's key on goring-2 at once.
  auto reconnect = steady::now();
  ws_client alice_again{"alice"};
  env.rejoin(alice_again, env.second, dead_owner);
  // At once: not after the dead key's TTL (bound wide for a loaded machine).
  CHECK(since(reconnect) < 5s);
  alice_again.expect_nothing(500ms);
  auto next_session = connect_call(bob, alice_again);
  check_relays_both_ways(bob, alice_again, next_session);
}

TEST_CASE("kill -9 of an instance and its user reconnects to the other instance at once: resumed "
          "if the call still lives, else ended for the peer, never both") {
  two_instances env{quick("10s")};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  auto session_id = connect_call(alice, bob);
  auto dead_owner = presence_owner(env.redis, "alice");

  env.first.kill();
  ws_client alice_again{"alice"};
  env.rejoin(alice_again, env.second, dead_owner);
  // call.resumed, if it comes, is the first frame; nothing comes if the
  // call had already ended.
  auto first = alice_again.next(frame_timeout);
  if (first) {
    INFO("alice got ", first->data);
    REQUIRE(first->type == "call.resumed");
    CHECK(first->payload.str("session_id") == session_id);
    CHECK(first->payload.str("peer_id") == "bob");
    CHECK(first->payload.str("state") == "accepted");
    CHECK(first->payload.str("role") == "caller");
    // alice is on a live instance now: the dead heartbeat expiring ends
    // nothing.
    bob.expect_nothing(heartbeat_ttl + 1500ms);
    env.check_call_kept(session_id, "alice", "bob", "accepted");
    check_relays_both_ways(alice_again, bob, session_id);
  } else {
    MESSAGE("alice came back after the call ended; bob must have heard of it");
    expect_ended(bob, session_id, "peer_disconnected", "alice", 6s);
    CHECK(call_released(env.redis, session_id, "alice", "bob"));
    place_call(bob, alice_again);
  }
}

TEST_CASE("a ringing call survives the callee's reconnect to the other instance and can then be "
          "accepted") {
  two_instances env{quick("4s")};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  auto session_id = place_call(alice, bob);
  auto old_owner = presence_owner(env.redis, "bob");

  bob.drop();
  alice.expect_nothing(400ms);
  env.check_call_kept(session_id, "alice", "bob", "ringing");

  ws_client bob_again{"bob"};
  env.rejoin(bob_again, env.first, old_owner);
  expect_resumed(bob_again, session_id, "alice", "ringing", "callee");
  alice.expect_nothing(300ms);

  // Past the grace, still ringing.
  alice.expect_nothing(4200ms);
  bob_again.expect_nothing(100ms);
  env.check_call_kept(session_id, "alice", "bob", "ringing");

  bob_again.accept(session_id);
  auto accepted = alice.expect("call.accepted");
  CHECK(accepted.str("session_id") == session_id);
  CHECK(accepted.at("callee_info").str("user_id") == "bob");
  CHECK(accepted.at("callee_info").str("name") == display_name_of("bob"));
  bob_again.expect_nothing(200ms);
  CHECK(env.hget(env.redis.session_key(session_id), "state") == "accepted");
  check_negotiation(alice, bob_again, session_id);
}

TEST_CASE("a ringing call survives the caller's reconnect, and the caller can still cancel it") {
  two_instances env{quick("4s")};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.second);
  auto session_id = place_call(alice, bob);
  auto old_owner = presence_owner(env.redis, "alice");

  alice.drop();
  ws_client alice_again{"alice"};
  env.rejoin(alice_again, env.second, old_owner);
  expect_resumed(alice_again, session_id, "bob", "ringing", "caller");
  bob.expect_nothing(300ms);

  alice_again.end_call(session_id);
  expect_ended(bob, session_id, "cancelled", "alice");
  alice_again.expect_nothing(200ms);
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
}

TEST_CASE("SIGTERM of the instance both users of a call are on: both reconnect to the other "
          "instance and resume") {
  two_instances env{quick("4s")};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  env.join(alice, env.first);
  env.join(bob, env.first);
  auto session_id = connect_call(alice, bob);
  check_relays_both_ways(alice, bob, session_id);

  drain_instance(env.first, {&alice, &bob});
  CHECK_FALSE(key_exists(env.redis, env.redis.user_key("alice")));
  CHECK_FALSE(key_exists(env.redis, env.redis.user_key("bob")));
  CHECK_FALSE(key_exists(env.redis, keys::server("goring-1")));
  env.check_call_kept(session_id, "alice", "bob", "accepted");

  ws_client bob_again{"bob"};
  env.join(bob_again, env.second);
  expect_resumed(bob_again, session_id, "alice", "accepted", "callee");
  ws_client alice_again{"alice"};
  env.join(alice_again, env.second);
  expect_resumed(alice_again, session_id, "bob", "accepted", "caller");
  bob_again.expect_nothing(200ms);

  check_negotiation(alice_again, bob_again, session_id);
  // Past the grace counted from the drain: the call goes on.
  alice_again.expect_nothing(4500ms);
  bob_again.expect_nothing(100ms);
  env.check_call_kept(session_id, "alice", "bob", "accepted");
  check_relays_both_ways(bob_again, alice_again, session_id);

  alice_again.end_call(session_id);
  expect_ended(bob_again, session_id, "ended_by_user", "alice");
  CHECK(call_released(env.redis, session_id, "alice", "bob"));
}

// A race worth repeating: when the old connection's departure reaches the
// instance's call actor before the new connection joins it, the actor quits
// (no local participant left) and the new connection holds no call actor;
// later events of the call (call.accepted, call.ended), which come over
// pub/sub, must reach it all the same (a bug once dropped them).
TEST_CASE("takeovers on the same instance, again and again: every later event of the moved call "
          "reaches the new connection") {
  two_instances env{quick("2s")};
  ws_client bob{"bob"};
  env.join(bob, env.second);
  for (int round = 0; round < 40; ++round) {
    bool ringing = round % 2 == 0;
    std::string kind = ringing ? "a ringing call" : "an accepted call";
    INFO("round ", round, ", ", kind);
    ws_client alice{"alice"};
    env.join(alice, env.first);
    auto session_id = ringing ? place_call(alice, bob) : connect_call(alice, bob);
    ws_client alice_again{"alice"};
    env.rejoin(alice_again, env.first, presence_owner(env.redis, "alice"));
    REQUIRE(alice.expect_close().has_value());
    expect_resumed(alice_again, session_id, "bob", ringing ? "ringing" : "accepted", "caller");
    if (ringing) {
      bob.accept(session_id);
      alice_again.expect("call.accepted");
    }
    bob.end_call(session_id);
    expect_ended(alice_again, session_id, "ended_by_user", "bob");
    REQUIRE(call_released(env.redis, session_id, "alice", "bob"));
    alice_again.close();
    REQUIRE(wait_until([&] { return !key_exists(env.redis, env.redis.user_key("alice")); }, 3s));
  }
}
