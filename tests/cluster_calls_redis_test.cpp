/// The call transitions in Cluster mode (redis/cluster_calls) against a
/// real six-node Redis Cluster on loopback, through the command runner on
/// the cluster topology, as the bridge runs them: each answers what its
/// one script answers on a single Redis, with the users of a call on two
/// masters, and the races of scripts_redis_test hold across slots. One
/// cluster serves the whole file; every case uses users of its own.
#include <doctest/doctest.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "redis/cluster_calls.hpp"
#include "redis/cluster_keys.hpp"
#include "redis/keys.hpp"
#include "redis/scripts.hpp"
#include "tests/support/cluster_runner.hpp"
#include "tests/support/redis_cluster.hpp"

namespace {

using namespace std::chrono_literals;
namespace redis = goring::redis;
namespace keys = goring::redis::keys;
using goring::test::redis_cluster;
using goring::test::wait_until;
using redis::millis;
using redis::outcome_status;
using redis::reply;
using redis::script_call;
using redis::start_result;

constexpr millis presence_ttl{30'000};
constexpr millis session_ttl{60'000};
constexpr millis ended_ttl{5'000};
constexpr millis reconnect_grace{10'000};
constexpr long long created_at = 1'700'000'000;
const std::string server_1 = "server-1";
const std::string instance_1 = "server-1/run-1";

std::string token_of(const std::string& user) {
  return instance_1 + "/conn-" + user;
}

long long now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// The cluster and a command runner on it (tests/support/cluster_runner),
/// as the bridge runs one in goring.
class cluster_store {
public:
  /// Runs a transition as the bridge does, and waits for its answer.
  reply run(script_call call) {
    return runner_.run(std::move(call));
  }
  /// Starts several transitions in one go (back to back in the runner's
  /// context, so their steps interleave), and waits for all answers.
  std::vector<reply> run_together(std::vector<script_call> calls) {
    return runner_.run_together(std::move(calls));
  }
  /// One plain command, routed by the topology.
  reply command(std::vector<std::string> argv) {
    return runner_.command(std::move(argv));
  }

  std::string get(const std::string& key) {
    auto r = command({"GET", key});
    return r.is_nil() ? "(nil)" : r.str;
  }
  std::string state(const std::string& sid) {
    auto r = command({"HGET", keys::tagged_session(sid), "state"});
    return r.is_nil() ? "(nil)" : r.str;
  }
  redis_cluster& cluster() {
    return cluster_;
  }

  /// The instance's heartbeat, and the user connected through it.
  void online(const std::string& user) {
    run(redis::heartbeat(server_1, instance_1, 60'000ms, "test", created_at, ""));
    auto r = run(redis::claim_user(user, token_of(user), presence_ttl));
    REQUIRE(r.type == reply::kind::array);
  }
  start_result start(const std::string& caller, const std::string& callee, const std::string& sid) {
    return redis::parse_start_result(
      run(redis::call_start(caller, callee, sid, created_at, session_ttl, "{}")));
  }
  redis::call_outcome accept(const std::string& sid, const std::string& user) {
    return redis::parse_call_outcome(
      run(redis::call_accept(sid, user, session_ttl, "{}", created_at + 1)));
  }

private:
  redis_cluster cluster_;
  goring::test::cluster_runner runner_{cluster_};
};

cluster_store& store() {
  static cluster_store s;
  return s;
}

/// A user id starting with `stem` whose keys live on another master than
/// `other`'s.
std::string elsewhere(const std::string& stem, const std::string& other) {
  auto& c = store().cluster();
  auto master_of = [&](const std::string& u) {
    return c.master_of(redis::cluster::key_slot(keys::tagged_user(u)))->port();
  };
  for (int i = 0;; ++i) {
    auto u = stem + std::to_string(i);
    if (master_of(u) != master_of(other))
      return u;
  }
}

} // namespace

TEST_CASE("a user's keys share one slot in the Cluster layout, braces and all") {
  for (std::string id : {"alice", "a}b{c", "}", "{", "", "%7B"}) {
    CAPTURE(id);
    CHECK(store().cluster().keyslot(keys::tagged_user(id))
          == store().cluster().keyslot(keys::tagged_user_call(id)));
    CHECK(redis::cluster::key_slot(keys::tagged_user(id))
          == store().cluster().keyslot(keys::tagged_user(id)));
  }
}

TEST_CASE("claim, takeover and release of presence in the Cluster layout") {
  auto& s = store();
  std::string user = "claim-a}b{c";
  auto first = s.run(redis::claim_user(user, "srv/run/c1", presence_ttl));
  REQUIRE(first.type == reply::kind::array);
  CHECK(first.elements.size() == 1);
  CHECK(first.elements[0].str.empty());
  CHECK(s.get(keys::tagged_user(user)) == "srv/run/c1");
  auto second = s.run(redis::claim_user(user, "srv/run/c2", presence_ttl));
  CHECK(second.elements[0].str == "srv/run/c1");
  // The replaced connection's release spares its successor's key.
  CHECK(s.run(redis::release_user(user, "srv/run/c1")).integer == 0);
  CHECK(s.get(keys::tagged_user(user)) == "srv/run/c2");
  CHECK(s.run(redis::release_user(user, "srv/run/c2")).integer == 1);
  CHECK(s.get(keys::tagged_user(user)) == "(nil)");
}

TEST_CASE("a call between users on two masters rings, is accepted and ends, keys and all") {
  auto& s = store();
  std::string alice = "flow-alice";
  auto bob = elsewhere("flow-bob", alice);
  s.online(alice);
  s.online(bob);
  CHECK(s.start(alice, bob, "flow-1") == start_result::ok);
  CHECK(s.state("flow-1") == "ringing");
  CHECK(s.get(keys::tagged_user_call(alice)) == "flow-1");
  CHECK(s.get(keys::tagged_user_call(bob)) == "flow-1");
  // A reconnecting callee resumes the ringing call.
  auto resumed = s.run(redis::claim_user(bob, token_of(bob), presence_ttl));
  REQUIRE(resumed.elements.size() == 9);
  CHECK(resumed.elements[1].str == "flow-1");
  CHECK(resumed.elements[4].str == "ringing");

  CHECK(s.accept("flow-1", alice).status == outcome_status::unauthorized);
  auto accepted = s.accept("flow-1", bob);
  CHECK(accepted.status == outcome_status::ok);
  CHECK(accepted.caller_id == alice);
  CHECK(s.accept("flow-1", bob).status == outcome_status::invalid_state);
  auto check = redis::parse_check_outcome(
    s.run(redis::call_check("flow-1", session_ttl, now_ms(), reconnect_grace, ended_ttl)));
  CHECK(check.status == redis::check_outcome::kind::live);

  auto ended = redis::parse_call_outcome(
    s.run(redis::call_end("flow-1", alice, ended_ttl, created_at + 9, false)));
  CHECK(ended.status == outcome_status::ok);
  CHECK(ended.detail == "ended_by_user");
  CHECK(s.state("flow-1") == "ended");
  CHECK(s.get(keys::tagged_user_call(alice)) == "(nil)");
  CHECK(s.get(keys::tagged_user_call(bob)) == "(nil)");
}

TEST_CASE("offline, busy and taken starts answer as call_start does and leave nothing behind") {
  auto& s = store();
  std::string alice = "busy-alice";
  auto bob = elsewhere("busy-bob", alice);
  auto carol = elsewhere("busy-carol", bob);
  s.online(alice);
  s.online(bob);
  CHECK(s.start(alice, "busy-nobody", "busy-0") == start_result::offline);
  CHECK(s.state("busy-0") == "(nil)");
  REQUIRE(s.start(alice, bob, "busy-1") == start_result::ok);
  s.online(carol);
  CHECK(s.start(carol, bob, "busy-2") == start_result::callee_busy);
  CHECK(s.start(alice, carol, "busy-3") == start_result::caller_busy);
  CHECK(s.start(carol, alice, "busy-1") == start_result::exists);
  for (auto sid : {"busy-2", "busy-3"})
    CHECK(s.state(sid) == "(nil)");
  CHECK(s.get(keys::tagged_user_call(carol)) == "(nil)");
  CHECK(s.get(keys::tagged_user_call(bob)) == "busy-1");
  // Rejected, both are free again and carol's call goes through.
  auto rejected =
    redis::parse_call_outcome(s.run(redis::call_reject("busy-1", bob, ended_ttl, created_at)));
  CHECK(rejected.status == outcome_status::ok);
  CHECK(s.start(carol, bob, "busy-4") == start_result::ok);
}

TEST_CASE("simultaneous callers of one callee on other masters: exactly one rings") {
  auto& s = store();
  std::string callee = "race-callee";
  s.online(callee);
  std::vector<script_call> starts;
  for (int i = 0; i < 6; ++i) {
    auto caller = "race-caller-" + std::to_string(i);
    s.online(caller);
    starts.push_back(redis::call_start(caller, callee, "race-" + std::to_string(i), created_at,
                                       session_ttl, "{}"));
  }
  auto answers = s.run_together(std::move(starts));
  int ok = 0;
  std::string winner;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    auto result = redis::parse_start_result(answers[i]);
    CAPTURE(answers[i].str);
    CHECK((result == start_result::ok || result == start_result::callee_busy));
    if (result == start_result::ok) {
      ++ok;
      winner = "race-" + std::to_string(i);
    } else {
      CHECK(s.state("race-" + std::to_string(i)) == "(nil)");
      CHECK(s.get(keys::tagged_user_call("race-caller-" + std::to_string(i))) == "(nil)");
    }
  }
  CHECK(ok == 1);
  CHECK(s.get(keys::tagged_user_call(callee)) == winner);
}

TEST_CASE("alice calls bob while bob calls alice: at most one call, and nothing left behind") {
  auto& s = store();
  for (int round = 0; round < 10; ++round) {
    auto alice = "cross-a" + std::to_string(round);
    auto bob = elsewhere("cross-b" + std::to_string(round) + "-", alice);
    s.online(alice);
    s.online(bob);
    auto answers = s.run_together({redis::call_start(alice, bob, "cross-ab" + std::to_string(round),
                                                     created_at, session_ttl, "{}"),
                                   redis::call_start(bob, alice, "cross-ba" + std::to_string(round),
                                                     created_at, session_ttl, "{}")});
    int ok = 0;
    for (auto& a : answers)
      ok += redis::parse_start_result(a) == start_result::ok ? 1 : 0;
    CHECK(ok == 1);
    CHECK(s.get(keys::tagged_user_call(alice)) == s.get(keys::tagged_user_call(bob)));
  }
}

TEST_CASE("an accept against the caller's cancel: one wins, and both users are free after") {
  auto& s = store();
  for (int round = 0; round < 10; ++round) {
    auto alice = "cancel-a" + std::to_string(round);
    auto bob = elsewhere("cancel-b" + std::to_string(round) + "-", alice);
    auto sid = "cancel-" + std::to_string(round);
    s.online(alice);
    s.online(bob);
    REQUIRE(s.start(alice, bob, sid) == start_result::ok);
    auto answers = s.run_together({redis::call_accept(sid, bob, session_ttl, "{}", created_at + 1),
                                   redis::call_end(sid, alice, ended_ttl, created_at + 1, false)});
    auto accepted = redis::parse_call_outcome(answers[0]);
    auto ended = redis::parse_call_outcome(answers[1]);
    CHECK(ended.status == outcome_status::ok);
    CHECK(ended.detail == (accepted.status == outcome_status::ok ? "ended_by_user" : "cancelled"));
    CHECK(s.state(sid) == "ended");
    CHECK(s.get(keys::tagged_user_call(alice)) == "(nil)");
    CHECK(s.get(keys::tagged_user_call(bob)) == "(nil)");
  }
}

TEST_CASE("the ring timeout ends an unanswered call, and accept after it finds it over") {
  auto& s = store();
  std::string alice = "timeout-alice";
  auto bob = elsewhere("timeout-bob", alice);
  s.online(alice);
  s.online(bob);
  REQUIRE(s.start(alice, bob, "timeout-1") == start_result::ok);
  auto timed_out =
    redis::parse_call_outcome(s.run(redis::call_timeout("timeout-1", ended_ttl, created_at + 30)));
  CHECK(timed_out.status == outcome_status::ok);
  CHECK(s.accept("timeout-1", bob).status == outcome_status::invalid_state);
  CHECK(s.get(keys::tagged_user_call(bob)) == "(nil)");
}

TEST_CASE("a call check ends the call of a participant whose instance is gone") {
  auto& s = store();
  std::string alice = "gone-alice";
  auto bob = elsewhere("gone-bob", alice);
  s.online(alice);
  // Bob's key names a run that has no heartbeat: gone at once.
  REQUIRE(s.run(redis::claim_user(bob, "server-9/run-9/conn", presence_ttl)).type
          == reply::kind::array);
  REQUIRE(s.command({"SET", keys::tagged_user_call(bob), "gone-1"}).str == "OK");
  REQUIRE(s.command({"SET", keys::tagged_user_call(alice), "gone-1"}).str == "OK");
  REQUIRE(s.command({"HSET", keys::tagged_session("gone-1"), "caller_id", alice, "callee_id", bob,
                     "state", "accepted", "created_at", std::to_string(created_at)})
            .integer
          == 4);
  auto check = redis::parse_check_outcome(
    s.run(redis::call_check("gone-1", session_ttl, now_ms(), reconnect_grace, ended_ttl)));
  CHECK(check.status == redis::check_outcome::kind::ended);
  CHECK(check.gone_user == bob);
  CHECK(s.state("gone-1") == "ended");
  CHECK(s.get(keys::tagged_user_call(alice)) == "(nil)");
  CHECK(s.get(keys::tagged_user_call(bob)) == "(nil)");
}

TEST_CASE("the repair path: keys a start or an end left half done are taken over") {
  auto& s = store();
  std::string alice = "repair-alice";
  auto bob = elsewhere("repair-bob", alice);
  s.online(alice);
  s.online(bob);
  // An end that decided (session ended) but died before clearing the keys.
  REQUIRE(s.command({"HSET", keys::tagged_session("repair-old"), "state", "ended"}).integer == 1);
  REQUIRE(s.command({"SET", keys::tagged_user_call(bob), "repair-old"}).str == "OK");
  // A start that died after opening its session and reserving alice, more
  // than the pending timeout ago.
  auto old_ms = now_ms() - redis::cluster_calls::pending_timeout.count() - 1000;
  REQUIRE(s.command({"HSET", keys::tagged_session("repair-dead"), "state", "pending", "opened_ms",
                     std::to_string(old_ms)})
            .integer
          == 2);
  REQUIRE(s.command({"SET", keys::tagged_user_call(alice), "repair-dead"}).str == "OK");
  CHECK(s.start(bob, alice, "repair-new") == start_result::ok);
  CHECK(s.state("repair-dead") == "(nil)"); // it can never commit now
  CHECK(s.get(keys::tagged_user_call(alice)) == "repair-new");
  CHECK(s.get(keys::tagged_user_call(bob)) == "repair-new");
  // A start still in progress (young pending session) is not taken from.
  auto carol = elsewhere("repair-carol", alice);
  auto dave = elsewhere("repair-dave", carol);
  s.online(carol);
  s.online(dave);
  REQUIRE(s.command({"HSET", keys::tagged_session("repair-young"), "state", "pending", "opened_ms",
                     std::to_string(now_ms())})
            .integer
          == 2);
  REQUIRE(s.command({"SET", keys::tagged_user_call(dave), "repair-young"}).str == "OK");
  CHECK(s.start(carol, dave, "repair-late") == start_result::callee_busy);
  CHECK(s.get(keys::tagged_user_call(dave)) == "repair-young");
  // ... and when that start commits after being judged dead, it cannot.
  REQUIRE(s.command({"DEL", keys::tagged_session("repair-young")}).integer == 1);
  auto commit = s.run({redis::script::session_commit, {keys::tagged_session("repair-young")}, {}});
  CHECK(commit.str == "abandoned");
}

TEST_CASE("a refresh of users over many slots extends each and reports the ones taken over") {
  auto& s = store();
  std::vector<std::string> users;
  std::vector<std::string> tokens;
  for (int i = 0; i < 40; ++i) {
    users.push_back("refresh-" + std::to_string(i));
    tokens.push_back(token_of(users.back()));
    s.online(users.back());
  }
  std::set<uint16_t> slots;
  for (auto& u : users)
    slots.insert(redis::cluster::key_slot(keys::tagged_user(u)));
  REQUIRE(slots.size() > 10);
  s.run(redis::claim_user(users[7], "other/run/conn", presence_ttl));
  s.run(redis::claim_user(users[31], "other/run/conn", presence_ttl));
  REQUIRE(s.command({"DEL", keys::tagged_user(users[3])}).integer == 1);
  auto lost = s.run(redis::refresh_users(users, tokens, presence_ttl));
  REQUIRE(lost.type == reply::kind::array);
  REQUIRE(lost.elements.size() == 2);
  CHECK(lost.elements[0].integer == 8);
  CHECK(lost.elements[1].integer == 32);
  CHECK(s.get(keys::tagged_user(users[3])) == tokens[3]);
  CHECK(s.get(keys::tagged_user(users[7])) == "other/run/conn");
}

TEST_CASE("a failover's restore writes a call back on both masters, and keeps a newer call") {
  auto& s = store();
  std::string alice = "restore-alice";
  auto bob = elsewhere("restore-bob", alice);
  auto restore = [&](const std::string& sid) {
    return s
      .run(redis::call_restore(sid, alice, bob, "accepted", created_at, "{}", "{}", created_at + 1,
                               session_ttl))
      .str;
  };
  CHECK(restore("restore-1") == "restored");
  CHECK(s.state("restore-1") == "accepted");
  CHECK(s.get(keys::tagged_user_call(alice)) == "restore-1");
  CHECK(s.get(keys::tagged_user_call(bob)) == "restore-1");
  CHECK(restore("restore-1") == "kept");
  // Bob is in a newer live call: the old one is not brought back.
  REQUIRE(s.command({"HSET", keys::tagged_session("restore-2"), "state", "ringing"}).integer == 1);
  REQUIRE(s.command({"SET", keys::tagged_user_call(bob), "restore-2"}).str == "OK");
  REQUIRE(s.command({"DEL", keys::tagged_session("restore-1")}).integer == 1);
  CHECK(restore("restore-1") == "taken");
  CHECK(s.state("restore-1") == "(nil)");
}

namespace {

/// The types of the events in `stream`, oldest first.
std::vector<std::string> event_types(const std::string& stream) {
  std::vector<std::string> types;
  auto r = store().command({"XRANGE", stream, "-", "+"});
  for (auto& entry : r.elements) {
    if (entry.elements.size() < 2)
      continue;
    auto& fields = entry.elements[1].elements;
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2)
      if (fields[i].str == "type")
        types.push_back(fields[i + 1].str);
  }
  return types;
}

/// Events on, as the call actor asks for them: the reference's stream
/// name, which the runner turns into the session's partition stream.
redis::event_log events_on() {
  return {std::string{keys::webhook_stream}, now_ms()};
}

} // namespace

TEST_CASE("a call's events go to its partition's stream, in the steps that decide") {
  auto& s = store();
  std::string alice = "hook-alice";
  auto bob = elsewhere("hook-bob", alice);
  s.online(alice);
  s.online(bob);
  const std::string sid = "hook-1";
  auto stream = keys::tagged_webhook_stream(sid);
  CHECK(s.cluster().keyslot(stream) == s.cluster().keyslot(keys::tagged_session(sid)));
  CHECK(event_types(stream).empty());
  auto started = redis::parse_start_result(
    s.run(redis::call_start(alice, bob, sid, created_at, session_ttl, "{}", events_on())));
  CHECK(started == start_result::ok);
  CHECK(event_types(stream) == std::vector<std::string>{"call.started"});
  // A refused start writes nothing (its stream may be hook-1's: the count).
  auto before = event_types(keys::tagged_webhook_stream("hook-2")).size();
  CHECK(redis::parse_start_result(s.run(
          redis::call_start(bob, alice, "hook-2", created_at, session_ttl, "{}", events_on())))
        == start_result::caller_busy);
  CHECK(event_types(keys::tagged_webhook_stream("hook-2")).size() == before);
  CHECK(redis::parse_call_outcome(
          s.run(redis::call_accept(sid, bob, session_ttl, "{}", created_at + 1, events_on())))
          .status
        == outcome_status::ok);
  CHECK(redis::parse_call_outcome(
          s.run(redis::call_end(sid, alice, ended_ttl, created_at + 9, false, events_on())))
          .status
        == outcome_status::ok);
  CHECK(event_types(stream)
        == std::vector<std::string>{"call.started", "call.accepted", "call.ended"});
  CHECK(s.get(keys::tagged_user_call(alice)) == "(nil)");
  CHECK(s.get(keys::tagged_user_call(bob)) == "(nil)");
}

TEST_CASE("an offline callee rings with the offline ring on, reserved, and callee.offline is "
          "written, but without it the start is offline and leaves nothing") {
  auto& s = store();
  std::string alice = "wake-alice";
  auto bob = elsewhere("wake-bob", alice);
  s.online(alice);
  // bob has no connection.
  auto before = event_types(keys::tagged_webhook_stream("wake-0")).size();
  CHECK(redis::parse_start_result(s.run(
          redis::call_start(alice, bob, "wake-0", created_at, session_ttl, "{}", events_on())))
        == start_result::offline);
  CHECK(s.state("wake-0") == "(nil)");
  CHECK(event_types(keys::tagged_webhook_stream("wake-0")).size() == before);
  CHECK(s.get(keys::tagged_user_call(bob)) == "(nil)");

  const std::string sid = "wake-1";
  auto at = now_ms();
  auto rang = redis::parse_start_result(
    s.run(redis::call_start(alice, bob, sid, created_at, session_ttl, "{}",
                            {std::string{keys::webhook_stream}, at}, millis{30'000})));
  CHECK(rang == start_result::offline_ring);
  CHECK(s.state(sid) == "ringing");
  CHECK(s.command({"HGET", keys::tagged_session(sid), "offline_ring"}).str == "1");
  CHECK(s.command({"HGET", keys::tagged_session(sid), "ring_expires_at"}).str
        == std::to_string(at + 30'000));
  CHECK(s.get(keys::tagged_user_call(alice)) == sid);
  CHECK(s.get(keys::tagged_user_call(bob)) == sid);
  auto types = event_types(keys::tagged_webhook_stream(sid));
  REQUIRE(types.size() >= 2);
  CHECK(std::vector<std::string>(types.end() - 2, types.end())
        == std::vector<std::string>{"call.started", "callee.offline"});

  // bob's phone woke up: his claim finds the ringing call.
  auto claimed = s.run(redis::claim_user(bob, token_of(bob), presence_ttl));
  REQUIRE(claimed.elements.size() == 9);
  CHECK(claimed.elements[1].str == sid);
  CHECK(claimed.elements[7].str == "1");
  // Someone else calling bob meanwhile finds him busy.
  std::string carol = elsewhere("wake-carol", bob);
  s.online(carol);
  CHECK(s.start(carol, bob, "wake-2") == start_result::callee_busy);
  CHECK(s.accept(sid, bob).status == outcome_status::ok);
}
