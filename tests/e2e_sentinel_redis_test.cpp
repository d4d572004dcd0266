/// Sentinel mode against real processes: a master, its replica and three
/// sentinels (down-after-milliseconds 1000), two goring instances, a call in
/// progress across them and idle users. The master dies, hangs, or every
/// sentinel restarts; goring follows, and its clients see no more than a
/// short window of errors.
#include <doctest/doctest.h>

#include <map>
#include <optional>
#include <sstream>
#include <string>

#include "redis/keys.hpp"
#include "tests/support/goring_process.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/sentinel_set.hpp"
#include "tests/support/token.hpp"
#include "tests/support/ws_client.hpp"

using namespace goring::test;
namespace keys = goring::redis::keys;
using reply_kind = goring::redis::reply::kind;
using clock_type = std::chrono::steady_clock;

namespace {

/// Wide bounds: these are outcomes, not timings (bench/failover.sh measures
/// those).
constexpr auto failover_bound = 20s;
constexpr auto recovery_bound = 15s;

std::chrono::milliseconds since(clock_type::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start);
}

/// GET on the admin listener.
http_response admin_get(const goring_process& goring, const std::string& target) {
  return http_get(goring.admin_port(), target, 1s);
}

bool is_ready(const goring_process& goring) {
  return admin_get(goring, "/ready").status == 200;
}

/// The value of the first sample of /metrics whose line starts with
/// `prefix` (a name, or a name and labels), nothing when none does.
std::optional<double> sample(const goring_process& goring, const std::string& prefix) {
  auto res = admin_get(goring, "/metrics");
  std::istringstream lines{res.body};
  std::string line;
  while (std::getline(lines, line))
    if (line.compare(0, prefix.size(), prefix) == 0 && line.size() > prefix.size()
        && line[prefix.size()] == ' ')
      return std::stod(line.substr(prefix.size() + 1));
  return std::nullopt;
}

/// Two goring instances in Sentinel mode; users join them with the first
/// master watched for their presence keys.
struct sentinel_env {
  sentinel_set redis;
  goring_process east;
  goring_process west;

  static std::map<std::string, std::string> fast() {
    return {{"CALL_CHECK_INTERVAL", "500ms"}, {"PUBSUB_PROBE_INTERVAL", "500ms"}};
  }

  explicit sentinel_env(redis_persistence master_persistence = redis_persistence::none)
    : redis(master_persistence), east("", "goring-east", redis.goring_env(fast())),
      west("", "goring-west", redis.goring_env(fast())) {
    // nop
  }

  void join(ws_client& client, goring_process& instance) {
    connect_online(client, instance, redis.first_master(), user_token(client.label()));
  }

  /// Both instances ready again (Redis works and pub/sub delivers).
  void wait_ready() {
    for (auto* goring : {&east, &west}) {
      INFO("goring ", goring->server_id());
      CHECK(wait_until([&] { return is_ready(*goring); }, recovery_bound));
    }
  }

  /// Neither instance ever took its commands or subscriptions to `server`.
  bool goring_absent_from(redis_server& server) {
    for (auto& name : client_names(server))
      if (name.rfind("goring:", 0) == 0)
        return false;
    return true;
  }
};

/// `caller` calls `callee` again and again, as a client does on
/// internal_error, until the call rings (or `bound` passes); then the
/// callee rejects it. Returns how many attempts failed first.
int call_until_it_rings(ws_client& caller, ws_client& callee, std::chrono::milliseconds bound) {
  auto deadline = clock_type::now() + bound;
  int failed = 0;
  for (;;) {
    caller.start_call(callee.label());
    auto frame = caller.next(5s);
    REQUIRE_MESSAGE(frame.has_value(), caller.label(), " heard nothing back from call.start");
    if (frame->type == "call.ringing") {
      auto session_id = frame->payload.str("session_id");
      auto ring = callee.expect("call.ring", 5s);
      CHECK(ring.str("session_id") == session_id);
      callee.reject(session_id);
      caller.expect("call.rejected");
      return failed;
    }
    INFO(caller.label(), " got ", frame->data);
    REQUIRE(frame->type == "error");
    // The window of the failover: a clear error the client may retry.
    CHECK(frame->payload.str("code") == "internal_error");
    CHECK(!frame->payload.str("message").empty());
    ++failed;
    REQUIRE_MESSAGE(clock_type::now() < deadline, "calls still fail ",
                    std::chrono::duration_cast<std::chrono::seconds>(bound).count(),
                    " s after the failover");
    std::this_thread::sleep_for(200ms);
  }
}

/// Reads on every client for `duration`, failing on any frame: nothing is
/// said to a client through the failover, and nobody is cut off.
void quiet_and_open(std::initializer_list<ws_client*> clients, std::chrono::milliseconds duration) {
  auto deadline = clock_type::now() + duration;
  while (clock_type::now() < deadline)
    for (auto* client : clients)
      client->expect_nothing(25ms);
  for (auto* client : clients) {
    INFO(client->label());
    CHECK(client->is_open());
  }
}

/// Drops a call's keys on `server` alone: a write the old master took that
/// never reached the replica (replication is asynchronous).
void lose_call(redis_server& server, const std::string& session_id, const std::string& caller,
               const std::string& callee) {
  REQUIRE(
    server.run({"DEL", keys::session(session_id), keys::user_call(caller), keys::user_call(callee)})
      .integer
    == 3);
}

/// After a failover to `server`: the call is back there as it was.
void check_call_on(redis_server& server, const std::string& session_id) {
  CHECK(wait_until([&] { return key_exists(server, keys::session(session_id)); }, 5s));
  auto state = server.run({"HGET", keys::session(session_id), "state"});
  CHECK(state.str == "accepted");
  CHECK(server.run({"GET", keys::user_call("alice")}).str == session_id);
  CHECK(server.run({"GET", keys::user_call("bob")}).str == session_id);
}

void check_failovers(sentinel_env& env, double count, redis_server& master) {
  for (auto* goring : {&env.east, &env.west}) {
    INFO("goring ", goring->server_id());
    CHECK(sample(*goring, "goring_redis_failovers_total") == count);
    CHECK(sample(*goring, "goring_redis_master_info{addr=\"" + master.addr() + "\"}") == 1.0);
  }
}

} // namespace

TEST_CASE("the master is killed (kill -9): goring follows the promoted replica; the call goes "
          "on and relays, new calls ring, a user in a call is busy, nobody is cut off") {
  sentinel_env env;
  auto& old_master = env.redis.first_master();
  auto& replica = env.redis.first_replica();
  ws_client alice{"alice"}, bob{"bob"}, carol{"carol"}, dave{"dave"}, eve{"eve"};
  env.join(alice, env.east);
  env.join(bob, env.west);
  env.join(carol, env.east);
  env.join(dave, env.west);
  env.join(eve, env.east);
  auto session_id = connect_call(alice, bob);
  check_relay(alice, bob, session_id);
  check_relay(bob, alice, session_id);
  check_failovers(env, 0, old_master);
  lose_call(replica, session_id, "alice", "bob");

  auto killed = clock_type::now();
  old_master.kill();
  REQUIRE(env.redis.wait_master(replica, failover_bound));
  MESSAGE("the sentinels promoted the replica ", since(killed).count(), " ms after the kill");
  env.wait_ready();

  // New calls ring again, across the instances; until then, errors to retry.
  auto failed = call_until_it_rings(carol, dave, recovery_bound);
  MESSAGE("new calls ring ", since(killed).count(), " ms after the kill (", failed,
          " attempts failed first)");
  // The call in progress was written back to the new master and relays.
  check_call_on(replica, session_id);
  check_relay(alice, bob, session_id);
  check_relay(bob, alice, session_id);
  eve.start_call("bob");
  eve.expect_error("user_busy");
  // Every user is still there, on the new master too.
  for (auto* user : {"alice", "bob", "carol", "dave", "eve"}) {
    INFO("user ", user);
    CHECK(wait_until([&] { return key_exists(replica, keys::user(user)); }, 5s));
  }
  check_failovers(env, 1, replica);
  quiet_and_open({&alice, &bob, &carol, &dave, &eve}, 500ms);

  // The old master comes back, empty: the sentinels make it a replica, and
  // goring never sends it anything.
  old_master.restart();
  CHECK(env.redis.wait_replica(old_master));
  check_relay(alice, bob, session_id);
  CHECK(env.goring_absent_from(old_master));

  alice.end_call(session_id);
  expect_ended(bob, session_id, "ended_by_user", "alice");
  CHECK(call_released(replica, session_id, "alice", "bob"));
}

TEST_CASE("the master hangs (SIGSTOP): goring fails over, re-asserts what the replica missed, "
          "and the old master, awake again (SIGCONT) and demoted, is never written to") {
  sentinel_env env;
  auto& old_master = env.redis.first_master();
  auto& replica = env.redis.first_replica();
  ws_client alice{"alice"}, bob{"bob"}, carol{"carol"}, dave{"dave"}, eve{"eve"};
  env.join(alice, env.east);
  env.join(bob, env.west);
  env.join(carol, env.east);
  env.join(dave, env.west);
  env.join(eve, env.east);
  auto session_id = connect_call(alice, bob);
  check_relay(alice, bob, session_id);
  // The replica missed bob's presence and the call: only goring knows them.
  lose_call(replica, session_id, "alice", "bob");
  REQUIRE(replica.run({"DEL", keys::user("bob")}).integer == 1);
  auto bob_owner = presence_owner(old_master, "bob");

  auto stopped = clock_type::now();
  old_master.pause();
  bool promoted = env.redis.wait_master(replica, failover_bound);
  if (!promoted)
    old_master.resume();
  REQUIRE(promoted);
  MESSAGE("the sentinels promoted the replica ", since(stopped).count(), " ms after SIGSTOP");
  env.wait_ready();
  call_until_it_rings(carol, dave, recovery_bound);
  check_call_on(replica, session_id);
  CHECK(wait_until([&] { return presence_owner(replica, "bob") == bob_owner; }, 5s));
  check_relay(alice, bob, session_id);
  check_relay(bob, alice, session_id);
  eve.start_call("alice");
  eve.expect_error("user_busy");

  // The old master wakes up believing it is the master, with the old data
  // and whatever goring had sent it before the switch; the sentinels demote
  // it. goring stays with the new master and never goes back.
  old_master.resume();
  CHECK(env.redis.wait_replica(old_master));
  CHECK(wait_until([&] { return env.goring_absent_from(old_master); }, 5s));
  check_failovers(env, 1, replica);
  check_relay(alice, bob, session_id);
  quiet_and_open({&alice, &bob, &carol, &dave, &eve}, 500ms);
  CHECK(env.goring_absent_from(old_master));
  CHECK(presence_owner(replica, "bob") == bob_owner);

  bob.end_call(session_id);
  expect_ended(alice, session_id, "ended_by_user", "bob");
}

TEST_CASE("every sentinel restarts while the master lives: nothing changes for goring or its "
          "clients") {
  sentinel_env env;
  auto& master = env.redis.first_master();
  ws_client alice{"alice"}, bob{"bob"}, carol{"carol"}, dave{"dave"};
  env.join(alice, env.east);
  env.join(bob, env.west);
  env.join(carol, env.east);
  env.join(dave, env.west);
  auto session_id = connect_call(alice, bob);
  check_relay(alice, bob, session_id);

  for (auto* sentinel : env.redis.sentinels())
    sentinel->stop();
  // Without any sentinel the master still works: calls ring, relays flow.
  check_relay(alice, bob, session_id);
  check_relay(bob, alice, session_id);
  CHECK(call_until_it_rings(carol, dave, 0s) == 0);
  quiet_and_open({&alice, &bob, &carol, &dave}, 1500ms);
  CHECK(is_ready(env.east));
  CHECK(is_ready(env.west));

  for (auto* sentinel : env.redis.sentinels())
    sentinel->restart();
  // Both instances find a sentinel again.
  auto watching = [&](const std::string& server_id) {
    for (auto* sentinel : env.redis.sentinels())
      for (auto& name : client_names(*sentinel))
        if (name == "goring:" + server_id + ":sentinel")
          return true;
    return false;
  };
  CHECK(
    wait_until([&] { return watching("goring-east") && watching("goring-west"); }, recovery_bound));
  CHECK(call_until_it_rings(dave, carol, 0s) == 0);
  check_relay(bob, alice, session_id);
  check_failovers(env, 0, master);
  quiet_and_open({&alice, &bob, &carol, &dave}, 500ms);

  alice.end_call(session_id);
  expect_ended(bob, session_id, "ended_by_user", "alice");
}

TEST_CASE("no master at all (master and replica down): call transitions answer internal_error "
          "at once, readiness is false, nobody is cut off; the master's return brings all back") {
  sentinel_env env{redis_persistence::aof};
  auto& master = env.redis.first_master();
  ws_client alice{"alice"}, bob{"bob"}, carol{"carol"}, dave{"dave"};
  env.join(alice, env.east);
  env.join(bob, env.west);
  env.join(carol, env.east);
  env.join(dave, env.west);
  auto session_id = connect_call(alice, bob);

  // Nothing to fail over to.
  env.redis.first_replica().kill();
  master.kill();
  for (auto* goring : {&env.east, &env.west}) {
    INFO("goring ", goring->server_id());
    CHECK(wait_until([&] { return admin_get(*goring, "/ready").status == 503; }, 5s));
    CHECK(admin_get(*goring, "/health").status == 200); // the process is fine
  }
  carol.start_call("dave");
  carol.expect_error("internal_error");
  // The call is not ended by a hang-up that cannot be written.
  alice.end_call(session_id);
  alice.expect_error("internal_error");
  quiet_and_open({&alice, &bob, &carol, &dave}, 1000ms);

  // The master comes back with its data (AOF): the same master, no failover.
  master.restart();
  env.wait_ready();
  check_relay(alice, bob, session_id);
  check_relay(bob, alice, session_id);
  CHECK(call_until_it_rings(carol, dave, recovery_bound) >= 0);
  check_failovers(env, 0, master);
  alice.end_call(session_id);
  expect_ended(bob, session_id, "ended_by_user", "alice");
}
