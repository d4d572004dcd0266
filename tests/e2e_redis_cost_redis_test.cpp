/// What goring costs Redis, counted with INFO commandstats against a real
/// redis-server: commands per call cycle, per relayed message, and
/// connections per instance with many users. Counts, not timings: each
/// scenario is deterministic, so the counts are asserted and also printed.
///
/// Redis counts the commands a Lua script runs as commands too. "Sent" is
/// what goring sends (EVALSHA, PUBLISH, ...: one round trip each);
/// "executed" adds the commands inside the scripts.
#include <doctest/doctest.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/goring_process.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/token.hpp"
#include "tests/support/ws_client.hpp"

using namespace goring::test;

namespace {

/// Periodic refreshes must not fall into a measured window. The ping-pongs
/// send 200 frames back to back, a flood to MESSAGE_RATE: off.
const std::map<std::string, std::string> quiet_timers = {
  {"PRESENCE_TTL", "600s"},          {"SESSION_TTL", "600s"},          {"RING_TIMEOUT", "600s"},
  {"CALL_CHECK_INTERVAL", "600s"},   {"HEARTBEAT_TTL", "600s"},        {"PUBSUB_PROBE_INTERVAL", "600s"},
  {"MESSAGE_RATE", "0"}};

/// Calls per command since the last reset, without the test's own
/// INFO/CONFIG/KEYS/DBSIZE.
std::map<std::string, long> command_calls(redis_server& redis) {
  auto info = redis.run({"INFO", "commandstats"});
  std::map<std::string, long> calls;
  std::istringstream lines{info.str};
  std::string line;
  while (std::getline(lines, line)) {
    // cmdstat_evalsha:calls=3,usec=...
    auto colon = line.find(':');
    if (line.rfind("cmdstat_", 0) != 0 || colon == std::string::npos)
      continue;
    auto name = line.substr(8, colon - 8);
    if (name == "info" || name == "config" || name == "config|resetstat" || name == "keys"
        || name == "dbsize" || name == "client|list")
      continue;
    auto at = line.find("calls=", colon);
    calls[name] = std::stol(line.substr(at + 6));
  }
  return calls;
}

long total(const std::map<std::string, long>& calls) {
  long sum = 0;
  for (auto& [name, n] : calls)
    sum += n;
  return sum;
}

/// The commands goring itself sends; none of them runs inside a script.
long sent(const std::map<std::string, long>& calls) {
  long sum = 0;
  for (auto& [name, n] : calls)
    if (name == "evalsha" || name == "eval" || name == "publish" || name == "subscribe"
        || name == "unsubscribe" || name.rfind("script", 0) == 0)
      sum += n;
  return sum;
}

std::string describe(const std::map<std::string, long>& calls) {
  std::string out;
  for (auto& [name, n] : calls)
    out += name + "=" + std::to_string(n) + " ";
  return out.empty() ? "none" : out;
}

void reset_stats(redis_server& redis) {
  redis.run({"CONFIG", "RESETSTAT"});
}

/// One full cycle: start, ringing, ring, accept, accepted, end, ended.
void call_cycle(ws_client& caller, ws_client& callee) {
  caller.start_call(callee.label());
  auto session_id = caller.expect("call.ringing").str("session_id");
  callee.expect("call.ring");
  callee.accept(session_id);
  caller.expect("call.accepted");
  caller.end_call(session_id);
  callee.expect("call.ended");
}

std::string connected_call(ws_client& caller, ws_client& callee) {
  caller.start_call(callee.label());
  auto session_id = caller.expect("call.ringing").str("session_id");
  callee.expect("call.ring");
  callee.accept(session_id);
  caller.expect("call.accepted");
  return session_id;
}

/// `count` ICE candidates each way, each read before the next is sent.
void ping_pong(ws_client& a, ws_client& b, const std::string& session_id, int count) {
  auto ice = json_fields({{"session_id", session_id},
                          {"candidate", "candidate:1 1 UDP 2122252543 127.0.0.1 40000 typ host"}});
  for (int i = 0; i < count; ++i) {
    a.send("webrtc.ice", ice);
    b.expect("webrtc.ice");
    b.send("webrtc.ice", ice);
    a.expect("webrtc.ice");
  }
}

long connected_clients(redis_server& redis) {
  auto info = redis.run({"INFO", "clients"});
  auto at = info.str.find("connected_clients:");
  return at == std::string::npos ? -1 : std::stol(info.str.substr(at + 18));
}

} // namespace

TEST_CASE("a full call cycle on one instance costs three script calls and nothing else") {
  redis_server redis;
  goring_process goring{redis.addr(), "goring-1", quiet_timers};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  connect_online(alice, goring, redis, user_token("alice"));
  connect_online(bob, goring, redis, user_token("bob"));

  constexpr int cycles = 20;
  reset_stats(redis);
  for (int i = 0; i < cycles; ++i)
    call_cycle(alice, bob);
  auto calls = command_calls(redis);
  MESSAGE("one instance, " << cycles << " call cycles: " << describe(calls) << "= "
                           << double(sent(calls)) / cycles << " commands sent and "
                           << double(total(calls)) / cycles << " executed per cycle");
  CHECK(calls["evalsha"] == 3 * cycles);
  CHECK(sent(calls) == 3 * cycles);
}

TEST_CASE("relayed messages between users on one instance cost Redis nothing") {
  redis_server redis;
  goring_process goring{redis.addr(), "goring-1", quiet_timers};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  connect_online(alice, goring, redis, user_token("alice"));
  connect_online(bob, goring, redis, user_token("bob"));
  auto session_id = connected_call(alice, bob);

  constexpr int rounds = 200;
  reset_stats(redis);
  ping_pong(alice, bob, session_id, rounds);
  auto calls = command_calls(redis);
  MESSAGE("one instance, " << 2 * rounds << " relayed messages: " << describe(calls));
  CHECK(total(calls) == 0);
}

TEST_CASE("across two instances a relayed message costs one PUBLISH, a call cycle six commands") {
  redis_server redis;
  goring_process one{redis.addr(), "goring-1", quiet_timers};
  goring_process two{redis.addr(), "goring-2", quiet_timers};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  connect_online(alice, one, redis, user_token("alice"));
  connect_online(bob, two, redis, user_token("bob"));

  constexpr int cycles = 20;
  reset_stats(redis);
  for (int i = 0; i < cycles; ++i)
    call_cycle(alice, bob);
  auto cycle_calls = command_calls(redis);
  MESSAGE("two instances, " << cycles << " call cycles: " << describe(cycle_calls) << "= "
                            << double(sent(cycle_calls)) / cycles << " commands sent and "
                            << double(total(cycle_calls)) / cycles << " executed per cycle");
  // start, accept, end; ring, accepted and ended published to the other side.
  CHECK(cycle_calls["evalsha"] == 3 * cycles);
  CHECK(cycle_calls["publish"] == 3 * cycles);
  CHECK(sent(cycle_calls) == 6 * cycles);

  auto session_id = connected_call(alice, bob);
  constexpr int rounds = 200;
  reset_stats(redis);
  ping_pong(alice, bob, session_id, rounds);
  auto relay_calls = command_calls(redis);
  MESSAGE("two instances, " << 2 * rounds << " relayed messages: " << describe(relay_calls));
  CHECK(relay_calls["publish"] == 2 * rounds);
  CHECK(total(relay_calls) == 2 * rounds);
}

TEST_CASE("a thousand connected users share two Redis connections per instance") {
  redis_server redis;
  goring_process goring{
    redis.addr(),
    "goring-1",
    {{"PRESENCE_TTL", "3s"}, {"HEARTBEAT_TTL", "600s"}, {"PUBSUB_PROBE_INTERVAL", "600s"}}};
  long before = connected_clients(redis); // goring's two and the test's one
  constexpr int users = 1000;
  std::vector<ws_client> clients;
  clients.reserve(users);
  for (int i = 0; i < users; ++i) {
    clients.emplace_back("user-" + std::to_string(i));
    clients.back().connect(goring.port(), user_token(clients.back().label()));
  }
  bool all_online = wait_until(
    [&] {
      auto keys = redis.run({"KEYS", "ws:user:*"});
      return keys.elements.size() == static_cast<std::size_t>(users);
    },
    std::chrono::seconds(30));
  REQUIRE(all_online);
  long with_users = connected_clients(redis);
  MESSAGE("Redis clients: " << before << " before, " << with_users << " with " << users
                            << " users connected (the test's own connection included)");
  CHECK(before == 3);
  CHECK(with_users == 3);

  // Idle users: presence refreshes come in batches, not per user.
  reset_stats(redis);
  auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  auto seconds =
    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto calls = command_calls(redis);
  MESSAGE(users << " idle users for " << seconds << " s with PRESENCE_TTL=3s: "
                << describe(calls) << "= " << double(sent(calls)) / (users * seconds)
                << " commands sent and " << double(total(calls)) / (users * seconds)
                << " executed per idle user-second");
  // Refreshed every second in batches of 500: a handful of script calls,
  // not one per user.
  CHECK(sent(calls) == calls["evalsha"]);
  CHECK(sent(calls) < users / 10);
  // One key operation per user and refresh: the SET that extends the key
  // (and tells it is still this connection's); no GET, no PEXPIRE.
  CHECK(calls["get"] == 0);
  CHECK(calls["pexpire"] == 0);
  CHECK(calls["set"] == 500 * calls["evalsha"]);
  CHECK(total(calls) == sent(calls) + calls["set"]);
}
