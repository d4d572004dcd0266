/// The call actor's state machine on CAF's deterministic test coordinator:
/// starting -> ringing -> accepted -> over, with stand-ins for the
/// participants' connections and a scripted Redis bridge. No Redis, no
/// threads, no real time.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "actors/atoms.hpp"
#include "actors/call_actor.hpp"
#include "codec/protocol.hpp"
#include "redis/keys.hpp"
#include "tests/support/actor_fixture.hpp"
#include "tests/support/scripted_bridge.hpp"
#include "tests/support/ws_client.hpp"

using namespace goring;
using namespace goring::test;
using namespace std::chrono_literals;
using protocol::signal_error;
using redis::script;

namespace {

using ask_atom = caf::atom_constant<caf::atom("ask")>;
using tell_atom = caf::atom_constant<caf::atom("tell")>;

constexpr const char* session_id = "s-1";

/// One message a participant's connection got from the call actor.
struct delivery {
  enum class kind { event, write, route, relay };
  kind what;
  /// event, write, relay: the frame.
  std::string text;
  /// event: the hint (the call actor); route: the peer's connection.
  caf::actor actor;
  /// route: the session, and the peer's user when its connection is not here.
  std::string session;
  std::string user;

  json frame() const {
    return json::parse(text);
  }
  std::string type() const {
    return frame().str("type");
  }
  json payload() const {
    return frame().at("payload");
  }
};

/// A short name for what came, e.g. "event call.accepted", "route".
std::string describe(const delivery& d) {
  switch (d.what) {
    case delivery::kind::event:
      return "event " + d.type();
    case delivery::kind::write:
      return "write " + d.type();
    case delivery::kind::route:
      return "route";
    case delivery::kind::relay:
      return "relay";
  }
  return "?";
}

std::vector<std::string> describe(const std::vector<delivery>& ds) {
  std::vector<std::string> out;
  for (auto& d : ds)
    out.push_back(describe(d));
  return out;
}

/// The answer to a request a participant made of the call actor.
struct answer {
  bool ok = false;
  /// A refusal the client would see (signal_failure); internal_error with
  /// `caf_error` set for an error from CAF itself (the actor was gone).
  signal_error code = signal_error::none;
  std::string message;
  bool caf_error = false;
};

struct participant_log {
  std::vector<delivery> got;
  std::vector<answer> answers;
};

/// Stands in for a connection actor: registers with the bridge as one
/// does, records everything the call actor sends it, and makes the requests
/// the test tells it to.
caf::behavior participant_fn(caf::event_based_actor* self, std::string user, caf::actor bridge,
                             std::shared_ptr<participant_log> log) {
  self
    ->request(bridge, no_request_timeout, register_atom::value, user, user + "/token",
              caf::actor{self})
    .await([](std::vector<std::string>&) {});
  return {
    [log](signal_atom, std::string& payload, caf::actor& hint) {
      // Checks only: an exception would end this actor, not the test.
      CHECK(!payload.empty());
      CHECK(payload.substr(0, 1) == std::string{protocol::signal_tag::event});
      if (payload.empty())
        return;
      log->got.push_back({delivery::kind::event, payload.substr(1), hint, {}, {}});
    },
    [log](write_atom, std::string& frame) {
      log->got.push_back({delivery::kind::write, std::move(frame), {}, {}, {}});
    },
    [log](route_atom, std::string& session, caf::actor& peer_conn, std::string& peer_user) {
      log->got.push_back({delivery::kind::route, {}, peer_conn, session, peer_user});
    },
    [log](relay_atom, std::string& frame, int64_t) {
      log->got.push_back({delivery::kind::relay, std::move(frame), {}, {}, {}});
    },
    [self, log](ask_atom, const caf::actor& call, caf::message& msg) {
      self->request(call, no_request_timeout, std::move(msg))
        .then(
          [log](bool) {
            log->answers.push_back({true, signal_error::none, {}, false});
          },
          [log](caf::error& err) {
            auto [code, message] = read_failure(err);
            log->answers.push_back({false, code, message, err.category() != caf::atom("goring")});
          });
    },
    [self](tell_atom, const caf::actor& call, caf::message& msg) {
      self->send(call, std::move(msg));
    },
    [self](caf::error& why) {
      // As a connection actor ends: with the departure as its exit reason.
      self->quit(std::move(why));
    },
  };
}

/// A user's connection, as the call actor sees it.
class participant {
public:
  participant(instance_fixture& f, const std::string& user)
    : info{user, "Name of " + user, user + "_nick"}, log_(std::make_shared<participant_log>()),
      actor(f.spawn(participant_fn, user, f.ctx->bridge, log_)) {
    // nop
  }

  const std::string& id() const {
    return info.user_id;
  }
  std::string info_json() const {
    return protocol::to_json(info);
  }

  /// Sends `call` a request from this connection; the answer is recorded.
  template <class... Ts>
  void ask(const caf::actor& call, Ts&&... xs) {
    caf::anon_send(actor, ask_atom::value, call, caf::make_message(std::forward<Ts>(xs)...));
  }
  /// Sends `call` a message from this connection.
  template <class... Ts>
  void tell(const caf::actor& call, Ts&&... xs) {
    caf::anon_send(actor, tell_atom::value, call, caf::make_message(std::forward<Ts>(xs)...));
  }

  // What a connection actor sends a call actor.
  void start(const caf::actor& call) {
    ask(call, start_atom::value);
  }
  void join(const caf::actor& call) {
    tell(call, join_atom::value, id(), actor, info_json());
  }
  void accept(const caf::actor& call) {
    ask(call, accept_atom::value, id(), info_json());
  }
  void reject(const caf::actor& call) {
    ask(call, reject_atom::value, id());
  }
  void end(const caf::actor& call) {
    ask(call, end_atom::value, id());
  }
  void relay(const caf::actor& call, const std::string& frame) {
    tell(call, relay_atom::value, id(), frame, int64_t{0});
  }
  /// An event its connection read from pub/sub (made on the peer's instance).
  void remote(const caf::actor& call, protocol::event_type type, const std::string& info) {
    tell(call, remote_atom::value, static_cast<uint8_t>(type), std::string{}, info);
  }
  /// The connection ends: departure::away (no close frame, replaced,
  /// draining) or departure::hung_up.
  void drop(departure why) {
    caf::anon_send(actor, caf::make_error(why));
  }

  /// Everything that came since the last take().
  std::vector<delivery> take() {
    auto got = std::move(log_->got);
    log_->got.clear();
    return got;
  }
  /// The one thing that came since the last take(); the test stops unless
  /// exactly one did.
  delivery take_one() {
    auto got = take();
    REQUIRE_MESSAGE(got.size() == 1, id() << " got " << got.size() << " messages, not one");
    return got.front();
  }
  /// The answers that came since the last take_answers(), in order.
  std::vector<answer> take_answers() {
    auto answers = std::move(log_->answers);
    log_->answers.clear();
    return answers;
  }
  /// The one answer that came; the test stops unless exactly one did.
  answer take_answer() {
    auto answers = take_answers();
    REQUIRE_MESSAGE(answers.size() == 1, id() << " has " << answers.size() << " answers, not one");
    return answers.front();
  }

  const protocol::user_info info;

private:
  std::shared_ptr<participant_log> log_;

public:
  const caf::actor actor;
};

/// The info object a frame carries, compared as JSON.
json info_of(const participant& p) {
  return json::parse(p.info_json());
}

/// The setup a connection actor opens a new call with: the caller's full
/// info, the callee's id.
call_setup new_call(const participant& caller, const participant& callee) {
  return {session_id,  caller.id(),           callee.id(),
          caller.info, {callee.id(), {}, {}}, call_phase::starting};
}

/// A call actor the test owns (the bridge spawns them in production).
caf::actor spawn_call(instance_fixture& f, call_setup setup, const participant& local) {
  auto call = spawn_call_actor(f.sys, f.ctx, std::move(setup), local.id(), local.actor);
  f.stop_at_end(call);
  return call;
}

/// alice calls bob, both on this instance: alice's start is answered, she
/// got call.ringing, and bob got call.ring from the call actor and joined it.
caf::actor ringing_call(instance_fixture& f, participant& alice, participant& bob) {
  f.run(); // both registered
  auto call = spawn_call(f, new_call(alice, bob), alice);
  alice.start(call);
  f.run();
  REQUIRE(alice.take_answer().ok);
  REQUIRE(describe(alice.take()) == std::vector<std::string>{"write call.ringing"});
  REQUIRE(describe(bob.take()) == std::vector<std::string>{"event call.ring"});
  bob.join(call);
  f.run();
  return call;
}

/// ringing_call, then bob accepts and alice got call.accepted.
caf::actor accepted_call(instance_fixture& f, participant& alice, participant& bob) {
  auto call = ringing_call(f, alice, bob);
  bob.accept(call);
  f.run();
  REQUIRE(bob.take_answer().ok);
  REQUIRE(describe(alice.take()) == std::vector<std::string>{"event call.accepted"});
  REQUIRE(bob.take().empty());
  return call;
}

/// The check period the call actor ticks at.
std::chrono::milliseconds check_period(const settings& s) {
  return std::min(s.call_check_interval, s.session_ttl / 3);
}

void check_ended(const delivery& d, const std::string& reason, const participant& peer) {
  CHECK(describe(d) == "event call.ended");
  auto payload = d.payload();
  CHECK(payload.str("session_id") == session_id);
  CHECK(payload.str("reason") == reason);
  CHECK(payload.at("peer_info") == info_of(peer));
}

} // namespace

TEST_CASE("caller starts, callee rings, callee accepts: each side hears its event") {
  instance_fixture f;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  f.run();
  auto call = spawn_call(f, new_call(alice, bob), alice);
  auto over = f.watch(call);

  alice.start(call);
  f.run();
  CHECK(alice.take_answer().ok);
  // The caller's connection writes call.ringing as it is.
  auto ringing = alice.take_one();
  CHECK(describe(ringing) == "write call.ringing");
  CHECK(ringing.payload().str("session_id") == session_id);
  CHECK(ringing.payload().str("callee_id") == "bob");
  // The callee's comes through the bridge (deliver), with the call actor as
  // the hint its connection joins.
  auto ring = bob.take_one();
  CHECK(describe(ring) == "event call.ring");
  CHECK(ring.actor == call);
  CHECK(ring.payload().str("session_id") == session_id);
  CHECK(ring.payload().str("caller_id") == "alice");
  CHECK(ring.payload().at("caller_info") == info_of(alice));
  CHECK(f.redis->script_names() == std::vector<std::string>{"call_start"});
  CHECK(f.redis->session(session_id).state == "ringing");
  CHECK(f.redis->published.empty());

  bob.join(call);
  bob.accept(call);
  f.run();
  CHECK(bob.take_answer().ok);
  CHECK(bob.take().empty());
  auto accepted = alice.take_one();
  CHECK(describe(accepted) == "event call.accepted");
  CHECK(accepted.actor == call);
  CHECK(accepted.payload().str("session_id") == session_id);
  CHECK(accepted.payload().at("callee_info") == info_of(bob));
  CHECK(f.redis->script_names() == std::vector<std::string>{"call_start", "call_accept"});
  CHECK(f.redis->session(session_id).state == "accepted");
  CHECK(json::parse(f.redis->session(session_id).callee_info) == info_of(bob));
  CHECK_FALSE(over->ended);
}

TEST_CASE("callee rejects: the caller hears call.rejected and the call is over") {
  instance_fixture f;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  auto call = ringing_call(f, alice, bob);
  auto over = f.watch(call);

  bob.reject(call);
  f.run();
  CHECK(bob.take_answer().ok);
  CHECK(bob.take().empty());
  auto rejected = alice.take_one();
  CHECK(describe(rejected) == "event call.rejected");
  CHECK(rejected.payload().str("session_id") == session_id);
  CHECK(rejected.payload().at("callee_info") == info_of(bob));
  CHECK(f.redis->script_names() == std::vector<std::string>{"call_start", "call_reject"});
  CHECK(f.redis->session(session_id).state == "rejected");
  CHECK(over->ended);
}

TEST_CASE("only the callee may accept or reject, the call rings on") {
  instance_fixture f;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  auto call = ringing_call(f, alice, bob);

  alice.accept(call);
  f.run();
  auto a = alice.take_answer();
  CHECK_FALSE(a.ok);
  CHECK(a.code == signal_error::unauthorized);
  alice.reject(call);
  f.run();
  CHECK(alice.take_answer().code == signal_error::unauthorized);
  // Refused before any script ran.
  CHECK(f.redis->script_names() == std::vector<std::string>{"call_start"});
  CHECK(alice.take().empty());
  CHECK(bob.take().empty());

  bob.accept(call);
  f.run();
  CHECK(bob.take_answer().ok);
}

TEST_CASE("caller cancels while it rings: the callee hears call.ended cancelled") {
  instance_fixture f;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  auto call = ringing_call(f, alice, bob);
  auto over = f.watch(call);

  alice.end(call);
  f.run();
  CHECK(alice.take_answer().ok);
  CHECK(alice.take().empty());
  check_ended(bob.take_one(), "cancelled", alice);
  CHECK(f.redis->script_names() == std::vector<std::string>{"call_start", "call_end"});
  CHECK(f.redis->last(script::call_end).args.at(5) == "user");
  CHECK(f.redis->session(session_id).ended_reason == "cancelled");
  CHECK(over->ended);
}

TEST_CASE("nobody answers within RING_TIMEOUT: both sides hear no_answer") {
  instance_fixture f;
  f.config().ring_timeout = 30s;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  auto call = ringing_call(f, alice, bob);
  auto over = f.watch(call);

  f.advance(30s - 1ms);
  CHECK(alice.take().empty());
  CHECK(bob.take().empty());
  CHECK(f.redis->runs(script::call_timeout) == 0);
  CHECK_FALSE(over->ended);

  f.advance(1ms);
  check_ended(alice.take_one(), "no_answer", bob);
  check_ended(bob.take_one(), "no_answer", alice);
  CHECK(f.redis->runs(script::call_timeout) == 1);
  CHECK(f.redis->session(session_id).ended_reason == "no_answer");
  CHECK(over->ended);
}

TEST_CASE("an accept just before the ring timeout wins, the timer then does nothing") {
  instance_fixture f;
  f.config().ring_timeout = 30s;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  auto call = ringing_call(f, alice, bob);

  f.advance(30s - 1ms);
  bob.accept(call);
  f.run();
  CHECK(bob.take_answer().ok);
  CHECK(describe(alice.take()) == std::vector<std::string>{"event call.accepted"});

  f.advance(1min);
  CHECK(alice.take().empty());
  CHECK(bob.take().empty());
  CHECK(f.redis->runs(script::call_timeout) == 0);
  CHECK(f.redis->session(session_id).state == "accepted");
}

TEST_CASE("double accept: the second is told the call is already accepted") {
  instance_fixture f;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  auto call = ringing_call(f, alice, bob);

  // Two taps: both wait in the call actor's mailbox before it reads the
  // first; the second is read once the first's script answered.
  bob.accept(call);
  bob.accept(call);
  f.run();
  auto answers = bob.take_answers();
  REQUIRE(answers.size() == 2);
  CHECK(answers[0].ok);
  CHECK_FALSE(answers[1].ok);
  CHECK(answers[1].code == signal_error::invalid_state);
  CHECK(answers[1].message == "the call is already accepted");
  CHECK(f.redis->runs(script::call_accept) == 1);
  CHECK(describe(alice.take()) == std::vector<std::string>{"event call.accepted"});
  CHECK(bob.take().empty());
}

TEST_CASE("an accept Redis took already (its first answer was lost) counts as accepted") {
  instance_fixture f;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  auto call = ringing_call(f, alice, bob);

  f.redis->canned[script::call_accept].push_back(
    array_reply({"invalid_state", "alice", "bob", "accepted"}));
  bob.accept(call);
  f.run();
  CHECK(bob.take_answer().ok);
  auto accepted = alice.take_one();
  CHECK(describe(accepted) == "event call.accepted");
  CHECK(accepted.payload().at("callee_info") == info_of(bob));

  // The actor is in the accepted state: relays go through.
  bob.relay(call, R"({"type":"webrtc.answer"})");
  f.run();
  CHECK(describe(alice.take()) == std::vector<std::string>{"relay"});
}

TEST_CASE("accept read before the caller's cancel: accepted, then ended_by_user") {
  instance_fixture f;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  auto call = ringing_call(f, alice, bob);
  auto over = f.watch(call);

  bob.accept(call);
  f.step(bob.actor); // bob's accept is in the call actor's mailbox
  alice.end(call);
  f.step(alice.actor); // alice's call.end right behind it
  f.run();

  CHECK(bob.take_answer().ok);
  CHECK(alice.take_answer().ok);
  CHECK(describe(alice.take()) == std::vector<std::string>{"event call.accepted"});
  // call_end ran on an accepted session: not a cancel any more.
  check_ended(bob.take_one(), "ended_by_user", alice);
  CHECK(f.redis->script_names()
        == std::vector<std::string>{"call_start", "call_accept", "call_end"});
  CHECK(over->ended);
}

TEST_CASE("cancel read before the callee's accept: cancelled, and the accept finds no call "
          "actor") {
  instance_fixture f;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  auto call = ringing_call(f, alice, bob);
  auto over = f.watch(call);

  alice.end(call);
  f.step(alice.actor);
  bob.accept(call);
  f.step(bob.actor);
  f.run();

  CHECK(alice.take_answer().ok);
  CHECK(alice.take().empty());
  check_ended(bob.take_one(), "cancelled", alice);
  // The actor quit with the accept still in its mailbox: CAF answers it
  // with an error of its own, which makes bob's connection ask Redis what
  // became of the session (connection_actor_test covers that part).
  auto refused = bob.take_answer();
  CHECK_FALSE(refused.ok);
  CHECK(refused.caf_error);
  CHECK(f.redis->script_names() == std::vector<std::string>{"call_start", "call_end"});
  CHECK(over->ended);
}

TEST_CASE("relays in an accepted call go to the peer's connection, and the sender gets a "
          "route") {
  instance_fixture f;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  auto call = accepted_call(f, alice, bob);

  const std::string offer = R"({"type":"webrtc.offer","payload":{"session_id":"s-1","sdp":"v=0"}})";
  alice.relay(call, offer);
  f.run();
  auto relayed = bob.take_one();
  CHECK(describe(relayed) == "relay");
  CHECK(relayed.text == offer); // unchanged
  // The next relays may skip the call actor: straight to bob's connection.
  auto route = alice.take_one();
  CHECK(describe(route) == "route");
  CHECK(route.session == session_id);
  CHECK(route.actor == bob.actor);
  CHECK(route.user.empty());

  const std::string ice = R"({"type":"webrtc.ice","payload":{"session_id":"s-1"}})";
  alice.relay(call, ice);
  bob.relay(call, R"({"type":"webrtc.answer"})");
  f.run();
  // alice holds her route already; bob gets his with his first relay.
  auto to_bob = bob.take();
  REQUIRE(describe(to_bob) == std::vector<std::string>{"relay", "route"});
  CHECK(to_bob[0].text == ice);
  CHECK(to_bob[1].actor == alice.actor);
  auto to_alice = alice.take();
  REQUIRE(describe(to_alice) == std::vector<std::string>{"relay"});
  CHECK(to_alice[0].text == R"({"type":"webrtc.answer"})");
  // Relays cost no script.
  CHECK(f.redis->script_names() == std::vector<std::string>{"call_start", "call_accept"});
  CHECK(f.redis->published.empty());
}

TEST_CASE("a relay while the call rings is refused to its sender, the peer gets nothing") {
  instance_fixture f;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  auto call = ringing_call(f, alice, bob);

  alice.relay(call, R"({"type":"webrtc.offer"})");
  f.run();
  auto refusal = alice.take_one();
  CHECK(describe(refusal) == "write error");
  CHECK(refusal.payload().str("code") == "invalid_state");
  CHECK(refusal.payload().str("message") == "the call has not been accepted yet");
  CHECK(bob.take().empty());
  CHECK(f.redis->published.empty());
}

TEST_CASE("callee on another instance: the ring is published, its accept comes as a remote "
          "event, relays are published to its channel") {
  instance_fixture f;
  participant alice{f, "alice"};
  f.run();
  f.redis->present.insert("bob"); // connected to another instance
  protocol::user_info bob{"bob", "Bob", "bobby"};
  auto call = spawn_call(
    f, {session_id, "alice", "bob", alice.info, {"bob", {}, {}}, call_phase::starting}, alice);
  auto over = f.watch(call);
  alice.start(call);
  f.run();
  CHECK(alice.take_answer().ok);
  CHECK(describe(alice.take()) == std::vector<std::string>{"write call.ringing"});
  REQUIRE(f.redis->published.size() == 1);
  CHECK(f.redis->published[0].first == "bob");
  auto ring = json::parse(f.redis->published[0].second.substr(1));
  CHECK(f.redis->published[0].second[0] == protocol::signal_tag::event);
  CHECK(ring.str("type") == "call.ring");
  f.redis->published.clear();

  // bob's instance ran call_accept; alice's connection read call.accepted.
  alice.remote(call, protocol::event_type::accepted, protocol::to_json(bob));
  f.run();
  CHECK(alice.take().empty()); // her connection writes the frame it read

  const std::string offer = R"({"type":"webrtc.offer"})";
  alice.relay(call, offer);
  f.run();
  REQUIRE(f.redis->published.size() == 1);
  CHECK(f.redis->published[0].first == "bob");
  CHECK(f.redis->published[0].second == protocol::signal_tag::relay + offer);
  auto route = alice.take_one();
  CHECK(describe(route) == "route");
  CHECK_FALSE(route.actor);
  CHECK(route.user == "bob");

  // bob hung up over there: alice's connection read call.ended.
  alice.remote(call, protocol::event_type::ended, protocol::to_json(bob));
  f.run();
  CHECK(over->ended);
  CHECK(alice.take().empty());
  CHECK(f.redis->script_names() == std::vector<std::string>{"call_start"});
}

TEST_CASE("a rejection made on the callee's instance ends the call actor here") {
  instance_fixture f;
  participant alice{f, "alice"};
  f.run();
  f.redis->present.insert("bob");
  auto call = spawn_call(
    f, {session_id, "alice", "bob", alice.info, {"bob", {}, {}}, call_phase::starting}, alice);
  auto over = f.watch(call);
  alice.start(call);
  f.run();
  alice.take();
  alice.remote(call, protocol::event_type::rejected, R"({"user_id":"bob"})");
  f.run();
  CHECK(over->ended);
  CHECK(alice.take().empty());
}

TEST_CASE("a participant who hangs up (close frame) ends the call at once: peer_disconnected") {
  instance_fixture f;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  auto call = accepted_call(f, alice, bob);
  auto over = f.watch(call);

  alice.drop(departure::hung_up);
  f.run();
  check_ended(bob.take_one(), "peer_disconnected", alice);
  CHECK(f.redis->last(script::call_end).args.at(0) == "alice");
  CHECK(f.redis->last(script::call_end).args.at(5) == "disconnect");
  CHECK(over->ended);
}

TEST_CASE("a participant away with RECONNECT_GRACE=0: the call checks end it at their next "
          "ticks") {
  instance_fixture f;
  f.config().reconnect_grace = 0ms;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  auto call = accepted_call(f, alice, bob);
  auto over = f.watch(call);

  alice.drop(departure::away);
  // Within two check periods: the first check that misses alice starts
  // her grace, the next one finds it over.
  f.advance(2 * check_period(f.config()));
  check_ended(bob.take_one(), "peer_disconnected", alice);
  CHECK(f.redis->session(session_id).ended_reason == "peer_disconnected");
  CHECK(f.redis->runs(script::call_end) == 0); // the check ended it
  CHECK(over->ended);
}

TEST_CASE("a participant away who does not come back within RECONNECT_GRACE: the peer hears "
          "peer_disconnected after the grace") {
  instance_fixture f;
  f.config().reconnect_grace = 20s;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  auto call = accepted_call(f, alice, bob);
  auto over = f.watch(call);

  alice.drop(departure::away);
  f.advance(20s - 1ms);
  CHECK(bob.take().empty());
  CHECK(f.redis->session(session_id).state == "accepted");
  CHECK_FALSE(over->ended);

  f.advance(1ms);
  auto at_grace_end = bob.take();
  // A timer at the grace's end: bob hears it then, not at a later tick.
  CHECK(at_grace_end.size() == 1);

  f.advance(check_period(f.config()));
  auto got = at_grace_end;
  for (auto& d : bob.take())
    got.push_back(d);
  REQUIRE(got.size() == 1);
  check_ended(got[0], "peer_disconnected", alice);
  CHECK(f.redis->session(session_id).ended_reason == "peer_disconnected");
  CHECK(over->ended);
}

TEST_CASE("a participant away who comes back within RECONNECT_GRACE: the call goes on with "
          "the new connection") {
  instance_fixture f;
  f.config().reconnect_grace = 20s;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  auto call = accepted_call(f, alice, bob);
  auto over = f.watch(call);
  // bob relays once, so his connection holds a route to alice's.
  bob.relay(call, R"({"type":"webrtc.offer"})");
  f.run();
  CHECK(describe(alice.take()) == std::vector<std::string>{"relay"});
  CHECK(bob.take_one().actor == alice.actor);

  alice.drop(departure::away);
  f.run();
  // bob's relays go to alice's channel while she is away.
  auto away_route = bob.take_one();
  CHECK(describe(away_route) == "route");
  CHECK_FALSE(away_route.actor);
  CHECK(away_route.user == "alice");

  f.advance(10s);
  participant alice_again{f, "alice"};
  f.run();
  alice_again.join(call);
  f.run();
  // ... and to her new connection once it joined.
  auto back_route = bob.take_one();
  CHECK(describe(back_route) == "route");
  CHECK(back_route.actor == alice_again.actor);

  f.advance(1min);
  CHECK(bob.take().empty());
  CHECK(alice_again.take().empty());
  CHECK_FALSE(over->ended);
  CHECK(f.redis->session(session_id).state == "accepted");
  CHECK(f.redis->runs(script::call_check) > 0);

  bob.relay(call, R"({"type":"webrtc.ice"})");
  f.run();
  CHECK(describe(alice_again.take()) == std::vector<std::string>{"relay"});
}

TEST_CASE("when every participant here goes away, the call waits out the grace, then ends") {
  instance_fixture f;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  auto call = accepted_call(f, alice, bob);
  auto over = f.watch(call);
  auto checks = f.redis->runs(script::call_check);

  alice.drop(departure::away);
  bob.drop(departure::away);
  f.run();
  // Each drop is checked at once; the grace keeps the actor and the call.
  CHECK(f.redis->runs(script::call_check) > checks);
  f.advance(f.config().reconnect_grace - 1ms);
  CHECK_FALSE(over->ended);
  CHECK(f.redis->session(session_id).state == "accepted");

  f.advance(1ms + check_period(f.config()));
  CHECK(over->ended);
  CHECK(f.redis->session(session_id).state != "accepted");
}

TEST_CASE("a call check that finds the call ended elsewhere tells the local participants") {
  instance_fixture f;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  auto call = accepted_call(f, alice, bob);
  auto over = f.watch(call);

  // Ended on another instance; the event on the way here was lost.
  f.redis->canned[script::call_check].push_back(array_reply({"gone", "ended", "ended_by_user"}));
  f.advance(check_period(f.config()));
  check_ended(alice.take_one(), "ended_by_user", bob);
  check_ended(bob.take_one(), "ended_by_user", alice);
  CHECK(over->ended);
}

TEST_CASE("the caller hangs up while call_start runs: the callee hears the ring, then "
          "peer_disconnected") {
  instance_fixture f;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  f.run();
  auto call = spawn_call(f, new_call(alice, bob), alice);
  auto over = f.watch(call);

  alice.start(call);
  f.step(alice.actor); // the start is in the call actor's mailbox
  alice.drop(departure::hung_up);
  f.step(alice.actor); // alice's connection ends: its down message is behind the start
  f.run();

  // NOTE: the start handler's answer has a branch for "the caller left while
  // Redis created the session" (end the call without a ring), but it is not
  // taken: the start awaits its script, and CAF 0.17 holds every other
  // message back meanwhile, the down message too. The call rings first and
  // ends when the down message is read. This asserts that behaviour.
  auto got = bob.take();
  REQUIRE(describe(got) == std::vector<std::string>{"event call.ring", "event call.ended"});
  check_ended(got[1], "peer_disconnected", alice);
  CHECK(f.redis->script_names() == std::vector<std::string>{"call_start", "call_end"});
  CHECK(f.redis->last(script::call_end).args.at(5) == "disconnect");
  CHECK(over->ended);
}

TEST_CASE("call_start refusals reach the caller as the client's errors, the actor ends") {
  struct refusal_case {
    const char* redis_says;
    signal_error code;
    const char* message;
  };
  for (auto c : {refusal_case{"offline", signal_error::user_offline, "user bob is not connected"},
                 refusal_case{"callee_busy", signal_error::user_busy, "user bob is busy"},
                 refusal_case{"exists", signal_error::internal_error,
                              "could not create the call session"}}) {
    CAPTURE(c.redis_says);
    instance_fixture f;
    participant alice{f, "alice"};
    participant bob{f, "bob"};
    f.run();
    f.redis->canned[script::call_start].push_back(string_reply(c.redis_says));
    auto call = spawn_call(f, new_call(alice, bob), alice);
    auto over = f.watch(call);
    alice.start(call);
    f.run();
    auto a = alice.take_answer();
    CHECK_FALSE(a.ok);
    CHECK(a.code == c.code);
    CHECK(a.message == c.message);
    CHECK(alice.take().empty());
    CHECK(bob.take().empty());
    CHECK(over->ended);
  }
}

TEST_CASE("a callee already in another call: the caller hears user_busy") {
  instance_fixture f;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  f.run();
  f.redis->sessions["other"] = fake_session{"carol", "bob", "accepted", "", "", "", {}};
  auto call = spawn_call(f, new_call(alice, bob), alice);
  alice.start(call);
  f.run();
  CHECK(alice.take_answer().code == signal_error::user_busy);
  CHECK(bob.take().empty());
}

TEST_CASE("a caller already in a call (on any instance): call_start says caller_busy") {
  instance_fixture f;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  f.run();
  f.redis->sessions["other"] = fake_session{"alice", "carol", "accepted", "", "", "", {}};
  auto call = spawn_call(f, new_call(alice, bob), alice);
  auto over = f.watch(call);
  alice.start(call);
  f.run();
  auto a = alice.take_answer();
  CHECK_FALSE(a.ok);
  // As the reference answers.
  CHECK(a.code == signal_error::user_busy);
  CHECK(bob.take().empty());
  CHECK(over->ended);
}

TEST_CASE("call_start fails in Redis: internal_error, and the session is ended in case it was "
          "made") {
  instance_fixture f;
  participant alice{f, "alice"};
  participant bob{f, "bob"};
  f.run();
  f.redis->canned[script::call_start].push_back(redis::reply::make_error("ERR timeout"));
  auto call = spawn_call(f, new_call(alice, bob), alice);
  auto over = f.watch(call);
  alice.start(call);
  f.run();
  CHECK(alice.take_answer().code == signal_error::internal_error);
  CHECK(f.redis->script_names() == std::vector<std::string>{"call_start", "call_end"});
  CHECK(f.redis->last(script::call_end).args.at(0) == "alice");
  CHECK(f.redis->last(script::call_end).args.at(5) == "disconnect");
  CHECK(bob.take().empty());
  CHECK(over->ended);
}

// -- webhooks and the offline ring -------------------------------------------

TEST_CASE("with webhooks on every script gets the event stream as its last key, off, none") {
  for (bool on : {false, true}) {
    CAPTURE(on);
    instance_fixture f;
    if (on) {
      f.config().webhook_url = "http://127.0.0.1:9/hooks";
      f.config().webhook_secret = std::string(32, 's');
    }
    participant alice{f, "alice"};
    participant bob{f, "bob"};
    auto call = accepted_call(f, alice, bob);
    alice.end(call);
    f.run();
    REQUIRE(alice.take_answer().ok);
    for (auto id : {script::call_start, script::call_accept, script::call_end}) {
      auto& keys = f.redis->last(id).keys;
      CAPTURE(redis::script_name(id));
      CHECK((keys.back() == std::string{redis::keys::webhook_stream}) == on);
    }
  }
}

TEST_CASE("an offline callee: the caller hears call.ringing with callee_offline, nobody is "
          "rung, and OFFLINE_RING_TIMEOUT ends it with no_answer") {
  instance_fixture f;
  f.config().webhook_url = "http://127.0.0.1:9/hooks";
  f.config().webhook_secret = std::string(32, 's');
  f.config().ring_timeout = 30s;
  f.config().offline_ring_timeout = 45s;
  participant alice{f, "alice"};
  f.run();
  auto call = spawn_call(
    f, {session_id, "alice", "bob", alice.info, {"bob", {}, {}}, call_phase::starting}, alice);
  auto over = f.watch(call);
  alice.start(call);
  f.run();
  CHECK(alice.take_answer().ok);
  auto ringing = alice.take_one();
  CHECK(describe(ringing) == "write call.ringing");
  CHECK(ringing.payload().str("callee_id") == "bob");
  CHECK(ringing.payload().at("callee_offline").value().IsTrue());
  CHECK(f.redis->last(script::call_start).args.at(9) == "45000");
  // Nobody to ring: bob's next connection reads the ring from Redis.
  CHECK(f.redis->published.empty());
  CHECK(f.redis->session(session_id).state == "ringing");

  // RING_TIMEOUT does not end it, nor do the checks for bob's absence.
  f.advance(30s);
  CHECK(alice.take().empty());
  CHECK(f.redis->runs(script::call_timeout) == 0);
  CHECK_FALSE(over->ended);
  f.advance(15s);
  auto ended = alice.take_one();
  CHECK(describe(ended) == "event call.ended");
  CHECK(ended.payload().str("reason") == "no_answer");
  CHECK(ended.payload().at("peer_info").str("user_id") == "bob");
  CHECK(f.redis->runs(script::call_timeout) == 1);
  CHECK(over->ended);
}

TEST_CASE("an offline ring without webhooks is user_offline, as the reference answers") {
  instance_fixture f;
  f.config().offline_ring_timeout = 45s; // refused at start without WEBHOOK_URL
  participant alice{f, "alice"};
  f.run();
  auto call = spawn_call(
    f, {session_id, "alice", "bob", alice.info, {"bob", {}, {}}, call_phase::starting}, alice);
  alice.start(call);
  f.run();
  CHECK(alice.take_answer().code == signal_error::user_offline);
  CHECK(alice.take().empty());
}

TEST_CASE("a caller who takes up an offline ring again after a reconnect keeps its end: "
          "ring_expires_at, not RING_TIMEOUT from the reconnect") {
  instance_fixture f;
  f.config().webhook_url = "http://127.0.0.1:9/hooks";
  f.config().webhook_secret = std::string(32, 's');
  f.config().ring_timeout = 30s;
  f.config().offline_ring_timeout = 60s;
  participant alice{f, "alice"};
  f.run();
  f.redis->sessions[session_id] =
    fake_session{"alice", "bob", "ringing", "", alice.info_json(), "", {}, true};
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  call_setup setup{session_id, "alice", "bob", alice.info, {"bob", {}, {}}, call_phase::ringing};
  setup.ring_expires_at = now_ms + 40'000; // 20 s of the ring went by before the reconnect
  auto call = spawn_call(f, setup, alice);
  auto over = f.watch(call);
  f.run();
  f.advance(30s);
  CHECK(f.redis->runs(script::call_timeout) == 0);
  CHECK_FALSE(over->ended);
  f.advance(11s);
  CHECK(f.redis->runs(script::call_timeout) == 1);
  auto got = alice.take();
  REQUIRE(got.size() == 1);
  CHECK(got[0].payload().str("reason") == "no_answer");
  CHECK(over->ended);
}
