/// The connection actor on CAF's deterministic test coordinator: frames in
/// through its connection_port, frames and closes out through a recording
/// client_link, the real call actors behind it and a scripted Redis bridge.
/// No sockets, no Redis, no threads, no real time.
#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "actors/atoms.hpp"
#include "actors/connection_actor.hpp"
#include "auth/jwt_auth.hpp"
#include "codec/protocol.hpp"
#include "net/link.hpp"
#include "tests/support/actor_fixture.hpp"
#include "tests/support/scripted_bridge.hpp"
#include "tests/support/ws_client.hpp"

using namespace goring;
using namespace goring::test;
using namespace std::chrono_literals;
using redis::script;

namespace {

/// The WebSocket side of a connection actor: what it would write.
class recording_link : public client_link {
public:
  void send(std::string frame) override {
    frames.push_back(std::move(frame));
  }
  void close(uint16_t code, std::string reason) override {
    closes.emplace_back(code, std::move(reason));
  }

  std::vector<std::string> frames;
  std::vector<std::pair<uint16_t, std::string>> closes;
};

/// One frame a client got: its type and payload.
struct frame {
  std::string text;
  json parsed;

  std::string type() const {
    return parsed.str("type");
  }
  json payload() const {
    return parsed.at("payload");
  }
};

/// A user's WebSocket: frames go to its connection actor as a session
/// hands them over, and what the actor writes is recorded.
class client {
public:
  client(instance_fixture& f, const std::string& user,
         std::optional<std::chrono::system_clock::time_point> expires_at = std::nullopt)
    : f_(f), user_(user), link_(std::make_shared<recording_link>()),
      port_(spawn_connection_actor(
        f.sys, f.ctx, link_, auth::claims{user, "Name of " + user, user + "_nick", expires_at},
        "192.0.2.1")) {
    // nop
  }

  /// As a session does when it goes away: a socket that closed without
  /// saying how counts as lost.
  ~client() {
    port_.reset();
  }

  const std::string& id() const {
    return user_;
  }
  json info() const {
    return json::parse(protocol::to_json({user_, "Name of " + user_, user_ + "_nick"}));
  }

  /// The connection actor, as it registered with the bridge.
  caf::actor actor() {
    if (!actor_) {
      auto it = f_.redis->connections.find(user_);
      REQUIRE_MESSAGE(it != f_.redis->connections.end(), user_ << " is not registered");
      actor_ = it->second;
    }
    return actor_;
  }

  // -- From the client --

  void send_text(const std::string& text) {
    port_->text_frame(text);
  }
  void send(const std::string& type, const std::string& payload_json) {
    send_text(R"({"type":")" + type + R"(","payload":)" + payload_json + "}");
  }
  void start_call(const std::string& callee) {
    send("call.start", R"({"callee_id":")" + callee + R"("})");
  }
  void accept(const std::string& session_id) {
    send("call.accept", R"({"session_id":")" + session_id + R"("})");
  }
  void reject(const std::string& session_id) {
    send("call.reject", R"({"session_id":")" + session_id + R"("})");
  }
  void end_call(const std::string& session_id) {
    send("call.end", R"({"session_id":")" + session_id + R"("})");
  }
  /// Sends a webrtc.* frame whose `field` is `value`; returns it as sent.
  std::string relay(const std::string& type, const std::string& session_id,
                    const std::string& field, const std::string& value) {
    auto text = R"({"type":")" + type + R"(","payload":{"session_id":")" + session_id + R"(",")"
                + field + R"(":")" + value + R"("}})";
    send_text(text);
    return text;
  }
  std::string offer(const std::string& session_id, const std::string& sdp) {
    return relay("webrtc.offer", session_id, "sdp", sdp);
  }
  std::string answer(const std::string& session_id, const std::string& sdp) {
    return relay("webrtc.answer", session_id, "sdp", sdp);
  }
  std::string ice(const std::string& session_id, const std::string& candidate) {
    return relay("webrtc.ice", session_id, "candidate", candidate);
  }
  void send_binary() {
    port_->binary_frame();
  }
  /// The socket ends: client_closed (a close frame), connection_lost (no
  /// close frame) or policy (cut off by the server).
  void socket_closed(close_kind why) {
    port_->closed(why);
  }

  // -- To the client --

  /// The frames written since the last take().
  std::vector<frame> take() {
    std::vector<frame> out;
    for (auto& text : link_->frames)
      out.push_back({text, json::parse(text)});
    link_->frames.clear();
    return out;
  }
  /// The one frame written since the last take(); the test stops unless it
  /// is one frame of `type`. Returns its payload.
  json expect(const std::string& type) {
    auto got = take();
    REQUIRE_MESSAGE(got.size() == 1, user_ << " got " << got.size() << " frames, not one");
    REQUIRE_MESSAGE(got[0].type() == type, user_ << " got " << got[0].text);
    return got[0].payload();
  }
  /// expect("error") with `code`.
  json expect_error(const std::string& code) {
    auto payload = expect("error");
    CHECK(payload.str("code") == code);
    CHECK(!payload.str("message").empty());
    return payload;
  }
  std::vector<std::string> types() {
    std::vector<std::string> out;
    for (auto& fr : take())
      out.push_back(fr.type());
    return out;
  }
  /// Every close the actor asked for: (code, reason).
  const std::vector<std::pair<uint16_t, std::string>>& closes() const {
    return link_->closes;
  }

private:
  instance_fixture& f_;
  std::string user_;
  std::shared_ptr<recording_link> link_;
  std::shared_ptr<connection_port> port_;
  caf::actor actor_;
};

/// alice calls bob: alice got call.ringing, bob call.ring. Returns the
/// session id.
std::string place_call(instance_fixture& f, client& alice, client& bob) {
  f.run();
  alice.start_call(bob.id());
  f.run();
  auto ringing = alice.expect("call.ringing");
  auto session_id = ringing.str("session_id");
  REQUIRE(!session_id.empty());
  auto ring = bob.expect("call.ring");
  REQUIRE(ring.str("session_id") == session_id);
  return session_id;
}

/// place_call, then bob accepts: alice got call.accepted, bob nothing.
std::string connect_call(instance_fixture& f, client& alice, client& bob) {
  auto session_id = place_call(f, alice, bob);
  bob.accept(session_id);
  f.run();
  REQUIRE(alice.expect("call.accepted").str("session_id") == session_id);
  REQUIRE(bob.take().empty());
  return session_id;
}

void check_ended(const json& payload, const std::string& session_id, const std::string& reason,
                 const client& peer) {
  CHECK(payload.str("session_id") == session_id);
  CHECK(payload.str("reason") == reason);
  CHECK(payload.at("peer_info") == peer.info());
}

} // namespace

TEST_CASE("a whole call: ring, accept, relays both ways, end") {
  instance_fixture f;
  client alice{f, "alice"};
  client bob{f, "bob"};
  f.run();
  CHECK(alice.take().empty()); // no ice.servers without STUN/TURN settings

  alice.start_call("bob");
  f.run();
  auto ringing = alice.expect("call.ringing");
  auto session_id = ringing.str("session_id");
  CHECK(session_id.size() == 36); // a UUID
  CHECK(ringing.str("callee_id") == "bob");
  auto ring = bob.expect("call.ring");
  CHECK(ring.str("session_id") == session_id);
  CHECK(ring.str("caller_id") == "alice");
  CHECK(ring.at("caller_info") == alice.info());
  CHECK(f.redis->script_names() == std::vector<std::string>{"call_start"});

  bob.accept(session_id);
  f.run();
  auto accepted = alice.expect("call.accepted");
  CHECK(accepted.str("session_id") == session_id);
  CHECK(accepted.at("callee_info") == bob.info());
  CHECK(bob.take().empty());
  CHECK(f.redis->script_names() == std::vector<std::string>{"call_start", "call_accept"});

  // Relays reach the peer as they were sent, in order: the first through
  // the call actor, the next ones along the route it hands out.
  auto offer = alice.offer(session_id, "v=0 offer");
  auto ice1 = alice.ice(session_id, "candidate:1");
  auto ice2 = alice.ice(session_id, "candidate:2");
  f.run();
  auto got = bob.take();
  REQUIRE(got.size() == 3);
  CHECK(got[0].text == offer);
  CHECK(got[1].text == ice1);
  CHECK(got[2].text == ice2);
  // alice holds a route to bob's connection by now: this one goes direct.
  auto ice3 = alice.ice(session_id, "candidate:3");
  f.run();
  got = bob.take();
  REQUIRE(got.size() == 1);
  CHECK(got[0].text == ice3);

  auto answer = bob.answer(session_id, "v=0 answer");
  f.run();
  got = alice.take();
  REQUIRE(got.size() == 1);
  CHECK(got[0].text == answer);
  // Relays cost no script.
  CHECK(f.redis->script_names() == std::vector<std::string>{"call_start", "call_accept"});

  alice.end_call(session_id);
  f.run();
  CHECK(alice.take().empty());
  check_ended(bob.expect("call.ended"), session_id, "ended_by_user", alice);
  CHECK(f.redis->script_names()
        == std::vector<std::string>{"call_start", "call_accept", "call_end"});
  CHECK(f.redis->calls.empty()); // the call actor is gone

  // A relay after the end is refused by Redis' word: the call is over.
  alice.offer(session_id, "v=0 late");
  f.run();
  CHECK(alice.expect_error("invalid_state").str("message") == "the call is ended");
  CHECK(bob.take().empty());
}

TEST_CASE("invalid JSON is answered with invalid_message and the connection goes on") {
  instance_fixture f;
  client alice{f, "alice"};
  client bob{f, "bob"};
  f.run();

  alice.send_text("{\"type\": \"call.start\", ");
  f.run();
  auto error = alice.expect_error("invalid_message");
  CHECK(error.str("message").rfind("message is not valid JSON: ", 0) == 0);
  CHECK(alice.closes().empty());

  alice.send_text("[1, 2]");
  alice.send("call.dial", "{}");
  f.run();
  auto errors = alice.take();
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].payload().str("message")
        == "message must be a JSON object with 'type' and 'payload'");
  CHECK(errors[1].payload().str("message") == "unknown message type 'call.dial'");
  CHECK(alice.closes().empty());

  // Still in service.
  alice.start_call("bob");
  f.run();
  CHECK(alice.types() == std::vector<std::string>{"call.ringing"});
  CHECK(bob.types() == std::vector<std::string>{"call.ring"});
}

TEST_CASE("a binary frame is answered with invalid_message") {
  instance_fixture f;
  client alice{f, "alice"};
  f.run();
  alice.send_binary();
  f.run();
  CHECK(alice.expect_error("invalid_message").str("message")
        == "binary frames are not supported; send JSON text frames");
  CHECK(alice.closes().empty());
}

TEST_CASE("call.start to oneself or without callee_id: invalid_message, no call") {
  instance_fixture f;
  client alice{f, "alice"};
  f.run();

  alice.start_call("alice");
  f.run();
  CHECK(alice.expect_error("invalid_message").str("message") == "you cannot call yourself");

  alice.send("call.start", "{}");
  f.run();
  CHECK(alice.expect_error("invalid_message").str("message")
        == "call.start: field 'callee_id' is missing");

  alice.send("call.start", R"({"callee_id":""})");
  f.run();
  CHECK(alice.expect_error("invalid_message").str("message")
        == "call.start: field 'callee_id' must not be empty");

  CHECK(f.redis->scripts.empty());
  CHECK(f.redis->spawned.empty());
  CHECK(alice.closes().empty());
}

TEST_CASE("call.start to a user who is not connected: user_offline") {
  instance_fixture f;
  client alice{f, "alice"};
  f.run();
  alice.start_call("nobody");
  f.run();
  CHECK(alice.expect_error("user_offline").str("message") == "user nobody is not connected");
  CHECK(f.redis->script_names() == std::vector<std::string>{"call_start"});
  CHECK(f.redis->calls.empty());
}

TEST_CASE("a caller already in a call starts another: refused before any script") {
  instance_fixture f;
  client alice{f, "alice"};
  client bob{f, "bob"};
  client carol{f, "carol"};
  place_call(f, alice, bob);

  alice.start_call("carol");
  f.run();
  auto error = alice.expect("error");
  // As the reference answers.
  CHECK(error.str("code") == "user_busy");
  CHECK(f.redis->script_names() == std::vector<std::string>{"call_start"});
  CHECK(carol.take().empty());
  CHECK(bob.take().empty());
}

TEST_CASE("call.accept for a session nobody knows: session_not_found") {
  instance_fixture f;
  client bob{f, "bob"};
  f.run();
  bob.accept("no-such-session");
  f.run();
  CHECK(bob.expect_error("session_not_found").str("message")
        == "no call with session_id no-such-session");
  CHECK(f.redis->scripts.empty());
}

TEST_CASE("callee rejects: the caller hears call.rejected") {
  instance_fixture f;
  client alice{f, "alice"};
  client bob{f, "bob"};
  auto session_id = place_call(f, alice, bob);

  bob.reject(session_id);
  f.run();
  CHECK(bob.take().empty());
  auto rejected = alice.expect("call.rejected");
  CHECK(rejected.str("session_id") == session_id);
  CHECK(rejected.at("callee_info") == bob.info());
  CHECK(f.redis->script_names() == std::vector<std::string>{"call_start", "call_reject"});
}

TEST_CASE("caller cancels while it rings: the callee hears cancelled") {
  instance_fixture f;
  client alice{f, "alice"};
  client bob{f, "bob"};
  auto session_id = place_call(f, alice, bob);

  alice.end_call(session_id);
  f.run();
  CHECK(alice.take().empty());
  check_ended(bob.expect("call.ended"), session_id, "cancelled", alice);
}

TEST_CASE("the ring times out: both hear no_answer") {
  instance_fixture f;
  f.config().ring_timeout = 30s;
  client alice{f, "alice"};
  client bob{f, "bob"};
  auto session_id = place_call(f, alice, bob);

  f.advance(30s - 1ms);
  CHECK(alice.take().empty());
  CHECK(bob.take().empty());
  f.advance(1ms);
  check_ended(alice.expect("call.ended"), session_id, "no_answer", bob);
  check_ended(bob.expect("call.ended"), session_id, "no_answer", alice);
}

TEST_CASE("a relay while it rings: invalid_state to the sender, nothing to the peer") {
  instance_fixture f;
  client alice{f, "alice"};
  client bob{f, "bob"};
  auto session_id = place_call(f, alice, bob);

  alice.offer(session_id, "v=0 early");
  f.run();
  CHECK(alice.expect_error("invalid_state").str("message") == "the call has not been accepted yet");
  CHECK(bob.take().empty());
}

TEST_CASE("bob's accept read before alice's cancel: accepted, then ended_by_user") {
  instance_fixture f;
  client alice{f, "alice"};
  client bob{f, "bob"};
  auto session_id = place_call(f, alice, bob);

  bob.accept(session_id);
  f.step(bob.actor()); // bob's connection sent its accept to the call actor
  alice.end_call(session_id);
  f.step(alice.actor()); // alice's end is behind it
  f.run();
  auto accepted = alice.take();
  REQUIRE(accepted.size() == 1);
  CHECK(accepted[0].type() == "call.accepted");
  check_ended(bob.expect("call.ended"), session_id, "ended_by_user", alice);
  CHECK(f.redis->script_names()
        == std::vector<std::string>{"call_start", "call_accept", "call_end"});
}

TEST_CASE("alice's cancel read before bob's accept: bob hears cancelled, then invalid_state") {
  instance_fixture f;
  client alice{f, "alice"};
  client bob{f, "bob"};
  auto session_id = place_call(f, alice, bob);

  alice.end_call(session_id);
  f.step(alice.actor());
  bob.accept(session_id);
  f.step(bob.actor());
  f.run();
  CHECK(alice.take().empty());
  auto got = bob.take();
  REQUIRE(got.size() == 2);
  CHECK(got[0].type() == "call.ended");
  check_ended(got[0].payload(), session_id, "cancelled", alice);
  // The call actor was gone when the accept came: Redis says what became
  // of the session.
  CHECK(got[1].type() == "error");
  CHECK(got[1].payload().str("code") == "invalid_state");
  CHECK(got[1].payload().str("message") == "the call is ended");
  CHECK(f.redis->script_names() == std::vector<std::string>{"call_start", "call_end"});
}

TEST_CASE("a second accept after the call was accepted: invalid_state") {
  instance_fixture f;
  client alice{f, "alice"};
  client bob{f, "bob"};
  auto session_id = connect_call(f, alice, bob);

  bob.accept(session_id);
  f.run();
  CHECK(bob.expect_error("invalid_state").str("message") == "the call is already accepted");
  CHECK(alice.take().empty());
  CHECK(f.redis->runs(script::call_accept) == 1);
}

TEST_CASE("replaced by a newer connection: close 4000, and the call goes on") {
  instance_fixture f;
  client alice{f, "alice"};
  client bob{f, "bob"};
  auto session_id = connect_call(f, alice, bob);
  auto gone = f.watch(alice.actor());

  caf::anon_send(alice.actor(), replaced_atom::value);
  f.run();
  CHECK(alice.closes() == std::vector<std::pair<uint16_t, std::string>>{{4000, "replaced"}});
  CHECK(alice.take().empty());
  CHECK(gone->ended);
  CHECK(is_away(gone->reason));
  // Away, not hung up: the new connection may take the call up.
  CHECK(bob.take().empty());
  CHECK(f.redis->session(session_id).state == "accepted");
  CHECK(f.redis->calls.count(session_id) == 1);
}

TEST_CASE("the instance shuts down: close 1012, and the call goes on") {
  instance_fixture f;
  client alice{f, "alice"};
  client bob{f, "bob"};
  auto session_id = connect_call(f, alice, bob);
  auto gone = f.watch(alice.actor());

  caf::anon_send(alice.actor(), shutdown_atom::value);
  f.run();
  CHECK(alice.closes() == std::vector<std::pair<uint16_t, std::string>>{{1012, "service restart"}});
  CHECK(gone->ended);
  CHECK(is_away(gone->reason));
  CHECK(bob.take().empty());
  CHECK(f.redis->session(session_id).state == "accepted");
}

TEST_CASE("an operator kicks a user: close 4002, and the peer hears peer_disconnected") {
  instance_fixture f;
  client alice{f, "alice"};
  client bob{f, "bob"};
  auto session_id = connect_call(f, alice, bob);
  auto gone = f.watch(alice.actor());

  caf::anon_send(alice.actor(), kick_atom::value);
  f.run();
  CHECK(alice.closes()
        == std::vector<std::pair<uint16_t, std::string>>{{4002, "kicked by operator"}});
  CHECK(gone->ended);
  CHECK_FALSE(is_away(gone->reason));
  check_ended(bob.expect("call.ended"), session_id, "peer_disconnected", alice);
  CHECK(f.redis->last(script::call_end).args.at(5) == "disconnect");
}

TEST_CASE("a token past its exp (and JWT_LEEWAY): close 4001") {
  instance_fixture f;
  client alice{f, "alice", std::chrono::system_clock::now() - 1h};
  f.advance(0ms); // the expiry alarm is due at once
  CHECK(alice.closes() == std::vector<std::pair<uint16_t, std::string>>{{4001, "token expired"}});
  CHECK(alice.take().empty());
}

TEST_CASE("a client that closes its socket with a close frame hangs up: the peer hears "
          "peer_disconnected at once") {
  instance_fixture f;
  client alice{f, "alice"};
  client bob{f, "bob"};
  auto session_id = connect_call(f, alice, bob);

  bob.socket_closed(close_kind::client_closed);
  f.run();
  check_ended(alice.expect("call.ended"), session_id, "peer_disconnected", bob);
  CHECK(f.redis->calls.empty());
  CHECK(f.redis->present.count("bob") == 0);
}

TEST_CASE("a lost connection comes back within RECONNECT_GRACE: call.resumed, and relays "
          "reach the new connection") {
  instance_fixture f;
  f.config().reconnect_grace = 20s;
  client alice{f, "alice"};
  client bob{f, "bob"};
  auto session_id = connect_call(f, alice, bob);
  bob.answer(session_id, "v=0 answer");
  f.run();
  CHECK(alice.take().size() == 1);

  alice.socket_closed(close_kind::connection_lost);
  f.run();
  CHECK(bob.take().empty());
  f.advance(5s);
  CHECK(bob.take().empty());

  // alice connects again; claim_user finds her call.
  f.redis->claims["alice"] = {"",
                              session_id,
                              "alice",
                              "bob",
                              "accepted",
                              protocol::to_json({"alice", "Name of alice", "alice_nick"}),
                              protocol::to_json({"bob", "Name of bob", "bob_nick"})};
  client alice_again{f, "alice"};
  f.run();
  auto resumed = alice_again.expect("call.resumed");
  CHECK(resumed.str("session_id") == session_id);
  CHECK(resumed.str("peer_id") == "bob");
  CHECK(resumed.str("state") == "accepted");
  CHECK(resumed.str("role") == "caller");
  CHECK(f.redis->spawned.size() == 1); // the call actor that waited for her

  auto ice = bob.ice(session_id, "candidate:after");
  f.run();
  auto got = alice_again.take();
  REQUIRE(got.size() == 1);
  CHECK(got[0].text == ice);
  auto offer = alice_again.offer(session_id, "v=0 again");
  f.run();
  got = bob.take();
  REQUIRE(got.size() == 1);
  CHECK(got[0].text == offer);

  f.advance(1min);
  CHECK(bob.take().empty());
  CHECK(alice_again.take().empty());
  CHECK(f.redis->session(session_id).state == "accepted");
}

TEST_CASE("a callee rung while offline connects and hears call.ring, read from Redis, then "
          "accepts as usual") {
  instance_fixture f;
  client alice{f, "alice"};
  f.run();
  const std::string session_id = "s-offline";
  auto alice_info = protocol::to_json({"alice", "Name of alice", "alice_nick"});
  f.redis->sessions[session_id] =
    fake_session{"alice", "bob", "ringing", "", alice_info, "", {}, true};
  // claim_user: the call, and that it rang bob while he had no connection.
  f.redis->claims["bob"] = {"",         session_id, "alice", "bob",          "ringing",
                            alice_info, "",         "1",     "1733531279567"};
  client bob{f, "bob"};
  f.run();
  auto ring = bob.expect("call.ring");
  CHECK(ring.str("session_id") == session_id);
  CHECK(ring.str("caller_id") == "alice");
  CHECK(ring.at("caller_info").str("name") == "Name of alice");
  CHECK(bob.take().empty());

  bob.accept(session_id);
  f.run();
  CHECK(alice.expect("call.accepted").str("session_id") == session_id);
  CHECK(f.redis->session(session_id).state == "accepted");
}

TEST_CASE("a callee who was rung online and reconnects still hears call.resumed") {
  instance_fixture f;
  client alice{f, "alice"};
  f.run();
  const std::string session_id = "s-online";
  auto alice_info = protocol::to_json({"alice", "Name of alice", "alice_nick"});
  f.redis->sessions[session_id] = fake_session{"alice", "bob", "ringing", "", alice_info, "", {}};
  f.redis->claims["bob"] = {"", session_id, "alice", "bob", "ringing", alice_info, "", "", ""};
  client bob{f, "bob"};
  f.run();
  auto resumed = bob.expect("call.resumed");
  CHECK(resumed.str("session_id") == session_id);
  CHECK(resumed.str("role") == "callee");
}
