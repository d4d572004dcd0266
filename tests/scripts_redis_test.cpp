/// The Lua scripts against a real Redis, run through the C++ builders: every
/// transition of presence, of instances' heartbeats and of a call, and the
/// races they prevent. On one redis-server each transition is its one
/// script (EVAL); with GORING_TEST_REDIS=cluster, on a six-node Redis
/// Cluster, it goes through the command runner as goring runs it there (the
/// single-slot steps of redis/cluster_calls), and every key the test reads
/// or writes itself is in the Cluster layout (tests/support/redis_backend).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <initializer_list>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <hiredis/hiredis.h>

#include "redis/keys.hpp"
#include "redis/scripts.hpp"
#include "tests/support/cluster_runner.hpp"
#include "tests/support/redis_backend.hpp"

namespace {

namespace keys = goring::redis::keys;
using goring::redis::call_outcome;
using goring::redis::millis;
using goring::redis::outcome_status;
using goring::redis::reply;
using goring::redis::script_call;
using goring::redis::status_name;
using goring::test::cluster_redis_only;
using goring::test::single_redis_only;
using argv_t = std::vector<std::string>;

constexpr millis presence_ttl{30'000};
constexpr millis session_ttl{60'000};
constexpr millis ended_ttl{5'000};
constexpr millis short_ttl{2'000};
constexpr millis heartbeat_ttl{15'000};
constexpr millis reconnect_grace{10'000};
constexpr long long created_at = 1'700'000'000;
constexpr long long accepted_at = created_at + 5;
constexpr long long ended_at = created_at + 9;
/// When the first call_check runs, in Unix milliseconds.
constexpr long long check_at = (accepted_at + 60) * 1000;

const std::string absent = "(nil)";
const std::string alice_info = R"({"name":"Alice"})";
const std::string bob_info = R"({"name":"Bob"})";

// Instances are "server_id/run-nonce"; a restart under the same SERVER_ID
// is another run.
const std::string server_1 = "server-1";
const std::string instance_1 = "server-1/run-1";
const std::string restarted_1 = "server-1/run-2";
const std::string server_2 = "server-2";
const std::string instance_2 = "server-2/run-1";

/// An owner token: "server_id/run-nonce/conn".
std::string token_on(const std::string& instance, const std::string& conn) {
  return instance + "/" + conn;
}

std::string token_of(const std::string& user) {
  return token_on(instance_1, "conn-" + user);
}

/// A later connection of alice's, through another instance.
const std::string other_token = token_on(instance_2, "conn-9");

std::string describe(const reply& r);

/// An array element: strings quoted, so an empty one still shows.
std::string describe_element(const reply& r) {
  return r.type == reply::kind::string ? "\"" + r.str + "\"" : describe(r);
}

/// A reply as text, so a failed CHECK shows what Redis really answered.
std::string describe(const reply& r) {
  switch (r.type) {
    case reply::kind::nil:
      return absent;
    case reply::kind::integer:
      return std::to_string(r.integer);
    case reply::kind::string:
    case reply::kind::status:
      return r.str;
    case reply::kind::error:
      return "error: " + r.str;
    case reply::kind::array: {
      std::string out = "[";
      for (auto& e : r.elements)
        out += (out.size() > 1 ? "," : "") + describe_element(e);
      return out + "]";
    }
  }
  return "?";
}

/// What describe() shows for an array of these strings.
std::string list(std::initializer_list<std::string> xs) {
  std::string out = "[";
  for (auto& x : xs)
    out += (out.size() > 1 ? ",\"" : "\"") + x + "\"";
  return out + "]";
}

/// The status (first element) of a script's array reply.
std::string status_of(const reply& r) {
  return r.type == reply::kind::array && !r.elements.empty() ? r.elements[0].str : describe(r);
}

script_call claim(const std::string& user, const std::string& token, millis ttl = presence_ttl) {
  return goring::redis::claim_user(user, token, ttl);
}

script_call release(const std::string& user, const std::string& token) {
  return goring::redis::release_user(user, token);
}

script_call start(const std::string& caller, const std::string& callee,
                  const std::string& session_id) {
  return goring::redis::call_start(caller, callee, session_id, created_at, session_ttl, alice_info);
}

script_call accept(const std::string& session_id, const std::string& user) {
  return goring::redis::call_accept(session_id, user, session_ttl, bob_info, accepted_at);
}

script_call reject(const std::string& session_id, const std::string& user) {
  return goring::redis::call_reject(session_id, user, ended_ttl, ended_at);
}

script_call hang_up(const std::string& session_id, const std::string& user) {
  return goring::redis::call_end(session_id, user, ended_ttl, ended_at, false);
}

script_call disconnect(const std::string& session_id, const std::string& user) {
  return goring::redis::call_end(session_id, user, ended_ttl, ended_at, true);
}

script_call ring_timeout(const std::string& session_id) {
  return goring::redis::call_timeout(session_id, ended_ttl, ended_at);
}

script_call check(const std::string& session_id, long long now_ms) {
  return goring::redis::call_check(session_id, session_ttl, now_ms, reconnect_grace, ended_ttl);
}

/// A call actor's copy of an accepted alice -> bob call, written back.
script_call restore(const std::string& session_id, const std::string& state = "accepted",
                    const std::string& caller = "alice", const std::string& callee = "bob") {
  return goring::redis::call_restore(session_id, caller, callee, state, created_at, alice_info,
                                     state == "accepted" ? bob_info : "",
                                     state == "accepted" ? accepted_at : 0, session_ttl);
}

script_call beat(const std::string& server_id, const std::string& instance) {
  return goring::redis::heartbeat(server_id, instance, heartbeat_ttl, "1.2.0", created_at,
                                  "127.0.0.1:9100");
}

script_call leave(const std::string& server_id, const std::string& instance) {
  return goring::redis::server_leave(server_id, instance);
}

/// A transition as one script: `EVAL text n keys... args...`.
argv_t eval(const script_call& call) {
  return goring::redis::eval_argv(call, "");
}

/// A blocking connection of the test's own, to send commands back to back
/// in one write (a pipeline) or from a thread of their own.
class raw_connection {
public:
  explicit raw_connection(uint16_t port) {
    timeval tv{2, 0};
    ctx_ = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (ctx_ == nullptr || ctx_->err != 0) {
      if (ctx_ != nullptr)
        redisFree(ctx_);
      throw std::runtime_error("cannot connect to the test redis-server");
    }
  }
  ~raw_connection() {
    redisFree(ctx_);
  }
  raw_connection(const raw_connection&) = delete;
  raw_connection& operator=(const raw_connection&) = delete;

  void append(const argv_t& argv) {
    std::vector<const char*> args;
    std::vector<size_t> lens;
    for (auto& a : argv) {
      args.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(ctx_, static_cast<int>(args.size()), args.data(), lens.data());
  }

  /// The next reply; the first call writes everything appended so far.
  reply next() {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr)
      return reply::make_error("connection lost");
    auto out = goring::redis::to_reply(static_cast<const redisReply*>(raw));
    freeReplyObject(raw);
    return out;
  }

  reply run(const argv_t& argv) {
    append(argv);
    return next();
  }

private:
  redisContext* ctx_ = nullptr;
};

/// Cluster mode: one cluster for the whole process (it takes seconds to
/// start, a case milliseconds) and two command runners on it, two goring
/// instances as far as Redis can tell.
struct shared_cluster {
  goring::test::redis_backend redis{goring::test::redis_mode::cluster};
  goring::test::cluster_runner runner{redis.cluster()};
  goring::test::cluster_runner other_runner{redis.cluster()};
};

shared_cluster& the_cluster() {
  static shared_cluster c;
  return c;
}

/// The test's Redis, and short ways to look into it: a private redis-server
/// per test, or the process's cluster, emptied for each test.
class call_store {
public:
  call_store() {
    if (goring::test::cluster_run()) {
      auto& c = the_cluster();
      redis_ = &c.redis;
      runner_ = &c.runner;
      other_runner_ = &c.other_runner;
      flush();
    } else {
      own_ = std::make_unique<goring::test::redis_backend>(goring::test::redis_mode::single);
      redis_ = own_.get();
    }
  }

  bool on_cluster() const {
    return runner_ != nullptr;
  }

  /// A transition: its script (one Redis), or its steps (Cluster).
  reply run(const script_call& call) {
    return on_cluster() ? runner_->run(call) : redis_->run(eval(call));
  }
  /// A plain command, where its key lives.
  reply run(const argv_t& argv) {
    return redis_->run(argv);
  }
  std::string status(const script_call& call) {
    return describe(run(call));
  }
  call_outcome outcome(const script_call& call) {
    return goring::redis::parse_call_outcome(run(call));
  }

  // The keys in the layout of this Redis.
  std::string user_key(const std::string& user) const {
    return redis_->user_key(user);
  }
  std::string user_call_key(const std::string& user) const {
    return redis_->user_call_key(user);
  }
  std::string session_key(const std::string& session_id) const {
    return redis_->session_key(session_id);
  }
  std::string server_key(const std::string& server_id) const {
    return redis_->server_key(server_id);
  }

  std::string value(const std::string& key) {
    return describe(run({"GET", key}));
  }
  std::string field(const std::string& session_id, const std::string& name) {
    return describe(run({"HGET", session_key(session_id), name}));
  }
  std::string server_field(const std::string& server_id, const std::string& name) {
    return describe(run({"HGET", server_key(server_id), name}));
  }
  bool exists(const std::string& key) {
    return run({"EXISTS", key}).integer == 1;
  }
  long long pttl(const std::string& key) {
    return run({"PTTL", key}).integer;
  }
  void shorten(const std::string& key) {
    REQUIRE(run({"PEXPIRE", key, std::to_string(short_ttl.count())}).integer == 1);
  }
  /// One DEL per key: on a cluster they live in several slots.
  void del(std::initializer_list<std::string> keys) {
    for (auto& key : keys)
      run({"DEL", key});
  }
  /// Every key there is, sorted and joined by spaces ("" for none).
  std::string all_keys() {
    std::string out;
    for (auto& key : sorted_keys())
      out += (out.empty() ? "" : " ") + key;
    return out;
  }

  /// The user connects to instance_1, whose heartbeat is alive.
  void go_online(const std::string& user) {
    run(claim(user, token_of(user)));
    if (!exists(server_key("server-1")))
      server_up("server-1", instance_1);
  }
  /// The user's connection closes and gives its presence key back.
  void go_away(const std::string& user) {
    REQUIRE(status(release(user, value(user_key(user)))) == "1");
  }
  /// The instance writes its heartbeat: its connections count as present.
  void server_up(const std::string& server_id, const std::string& instance) {
    REQUIRE(run(beat(server_id, instance)).type == reply::kind::string);
  }
  void ringing(const std::string& caller, const std::string& callee,
               const std::string& session_id) {
    go_online(caller);
    go_online(callee);
    REQUIRE(status(start(caller, callee, session_id)) == "ok");
  }
  void accepted(const std::string& caller, const std::string& callee,
                const std::string& session_id) {
    ringing(caller, callee, session_id);
    REQUIRE(outcome(accept(session_id, callee)).status == outcome_status::ok);
  }

  /// Runs the transitions one right after the other, in this order: on one
  /// Redis in one write on one connection (Redis runs them back to back);
  /// on a cluster each one's steps done before the next starts.
  std::vector<reply> pipelined(const std::vector<script_call>& calls) {
    std::vector<reply> out;
    if (on_cluster()) {
      for (auto& call : calls)
        out.push_back(runner_->run(call));
      return out;
    }
    raw_connection conn{redis_->server().port()};
    for (auto& call : calls)
      conn.append(eval(call));
    for (std::size_t i = 0; i < calls.size(); ++i)
      out.push_back(conn.next());
    return out;
  }

  /// Runs two transitions released at the same moment, from two
  /// connections (one Redis) or two command runners (a cluster): the order
  /// in which Redis runs them, or their steps, is up to chance.
  std::pair<reply, reply> at_once(const script_call& a, const script_call& b) {
    std::unique_ptr<raw_connection> conn_a;
    std::unique_ptr<raw_connection> conn_b;
    if (!on_cluster()) {
      conn_a = std::make_unique<raw_connection>(redis_->server().port());
      conn_b = std::make_unique<raw_connection>(redis_->server().port());
    }
    auto run_a = [&] { return on_cluster() ? runner_->run(a) : conn_a->run(eval(a)); };
    auto run_b = [&] { return on_cluster() ? other_runner_->run(b) : conn_b->run(eval(b)); };
    std::promise<void> go;
    std::shared_future<void> started = go.get_future().share();
    reply reply_a;
    reply reply_b;
    std::thread thread_a{[&] {
      started.wait();
      reply_a = run_a();
    }};
    std::thread thread_b{[&] {
      started.wait();
      reply_b = run_b();
    }};
    go.set_value();
    thread_a.join();
    thread_b.join();
    return {std::move(reply_a), std::move(reply_b)};
  }

  void flush() {
    redis_->flush();
  }

private:
  std::vector<std::string> sorted_keys() {
    auto out = redis_->keys_matching("*");
    std::sort(out.begin(), out.end());
    return out;
  }

  std::unique_ptr<goring::test::redis_backend> own_; // one redis-server
  goring::test::redis_backend* redis_ = nullptr;
  goring::test::cluster_runner* runner_ = nullptr;
  goring::test::cluster_runner* other_runner_ = nullptr;
};

std::vector<std::string> sorted(std::vector<std::string> xs) {
  std::sort(xs.begin(), xs.end());
  return xs;
}

std::string names(outcome_status status) {
  return std::string{status_name(status)};
}

constexpr int race_rounds = 20;

} // namespace

// -- presence: claim_user, release_user, refresh_users -----------------------

TEST_CASE_FIXTURE(call_store, "a user's first connection claims a free presence key") {
  auto previous = run(claim("alice", token_of("alice")));
  CHECK(describe(previous) == list({""}));
  CHECK(value(user_key("alice")) == token_of("alice"));
  CHECK(pttl(user_key("alice")) > 0);
  CHECK(pttl(user_key("alice")) <= presence_ttl.count());
}

TEST_CASE_FIXTURE(call_store, "a second connection takes the key over and learns whom it "
                              "replaced") {
  go_online("alice");
  shorten(user_key("alice"));
  auto previous = run(claim("alice", other_token));
  CHECK(describe(previous) == list({token_of("alice")}));
  CHECK(value(user_key("alice")) == other_token);
  CHECK(pttl(user_key("alice")) > short_ttl.count());
}

TEST_CASE_FIXTURE(call_store, "a closing connection releases the key it owns") {
  go_online("alice");
  CHECK(status(release("alice", token_of("alice"))) == "1");
  CHECK_FALSE(exists(user_key("alice")));
  // Nobody owns it any more: a second release deletes nothing.
  CHECK(status(release("alice", token_of("alice"))) == "0");
}

TEST_CASE_FIXTURE(call_store, "a replaced connection's release leaves its successor's key "
                              "alone") {
  go_online("alice");
  run(claim("alice", other_token));
  CHECK(status(release("alice", token_of("alice"))) == "0");
  CHECK(value(user_key("alice")) == other_token);
  CHECK(pttl(user_key("alice")) > 0);
}

TEST_CASE_FIXTURE(call_store, "a takeover against the old connection's release: the new "
                              "connection keeps the key in either order") {
  auto takeover = claim("alice", other_token);
  auto old_release = release("alice", token_of("alice"));

  SUBCASE("the release runs first") {
    go_online("alice");
    auto replies = pipelined({old_release, takeover});
    CHECK(describe(replies[0]) == "1");
    CHECK(describe(replies[1]) == list({""}));
  }
  SUBCASE("the takeover runs first") {
    go_online("alice");
    auto replies = pipelined({takeover, old_release});
    CHECK(describe(replies[0]) == list({token_of("alice")}));
    CHECK(describe(replies[1]) == "0");
  }
  SUBCASE("both at the same moment") {
    for (int round = 0; round < race_rounds; ++round) {
      flush();
      go_online("alice");
      auto [taken, released] = at_once(takeover, old_release);
      // Either the takeover saw the old token and the release found the
      // key no longer its own, or the release won and the takeover found
      // the key free.
      if (describe(taken) == list({""}))
        CHECK(describe(released) == "1");
      else
        CHECK((describe(taken) == list({token_of("alice")}) && describe(released) == "0"));
      CHECK(value(user_key("alice")) == other_token);
    }
  }
  CHECK(value(user_key("alice")) == other_token);
}

TEST_CASE_FIXTURE(call_store,
                  "a reconnecting user learns the live call to resume, with both sides' info") {
  std::string state;
  std::string callee_info;
  SUBCASE("while ringing") {
    ringing("alice", "bob", "s-1");
    state = "ringing";
    callee_info = ""; // bob has not answered yet
  }
  SUBCASE("while accepted") {
    accepted("alice", "bob", "s-1");
    state = "accepted";
    callee_info = bob_info;
  }
  // alice's connection closed; bob's old one is still open (a takeover).
  go_away("alice");
  auto alice_back = token_on(instance_2, "conn-alice");
  auto bob_back = token_on(instance_2, "conn-bob");

  CHECK(describe(run(claim("alice", alice_back)))
        == list({"", "s-1", "alice", "bob", state, alice_info, callee_info, "", ""}));
  CHECK(describe(run(claim("bob", bob_back)))
        == list({token_of("bob"), "s-1", "alice", "bob", state, alice_info, callee_info, "", ""}));
  CHECK(value(user_key("alice")) == alice_back);
  CHECK(value(user_key("bob")) == bob_back);
  // Claiming reads the call and changes nothing in it.
  CHECK(field("s-1", "state") == state);
  CHECK(value(user_call_key("alice")) == "s-1");
  CHECK(value(user_call_key("bob")) == "s-1");
}

TEST_CASE_FIXTURE(call_store, "a reconnecting user resumes no call that is over or not theirs") {
  SUBCASE("the call ended") {
    ringing("alice", "bob", "s-1");
    REQUIRE(outcome(hang_up("s-1", "bob")).status == outcome_status::ok);
  }
  SUBCASE("a stale call key points at an ended call") {
    accepted("alice", "bob", "s-1");
    REQUIRE(outcome(disconnect("s-1", "alice")).status == outcome_status::ok);
    run({"SET", user_call_key("alice"), "s-1"});
  }
  SUBCASE("a stale call key points at a rejected call") {
    ringing("bob", "alice", "s-1");
    REQUIRE(outcome(reject("s-1", "alice")).status == outcome_status::ok);
    run({"SET", user_call_key("alice"), "s-1"});
  }
  SUBCASE("a stale call key points at a vanished call") {
    go_online("alice");
    run({"SET", user_call_key("alice"), "s-gone"});
  }
  SUBCASE("a stale call key points at a live call of others") {
    accepted("carol", "dave", "s-1");
    go_online("alice");
    run({"SET", user_call_key("alice"), "s-1"});
  }
  CHECK(describe(run(claim("alice", other_token))) == list({token_of("alice")}));
  CHECK(value(user_key("alice")) == other_token);
}

TEST_CASE_FIXTURE(call_store, "an instance refreshes its users: extends its own keys, "
                              "rewrites vanished ones, reports those taken over") {
  go_online("alice");
  shorten(user_key("alice"));
  // bob's key vanished (Redis restarted without persistence).
  // carol and dave reconnected through another instance.
  for (std::string user : {"carol", "dave"})
    run(claim(user, token_on(instance_2, "conn-" + user), short_ttl));

  auto lost = run(goring::redis::refresh_users(
    {"alice", "bob", "carol", "dave"},
    {token_of("alice"), token_of("bob"), token_of("carol"), token_of("dave")}, session_ttl));

  CHECK(describe(lost) == "[3,4]");
  CHECK(value(user_key("alice")) == token_of("alice"));
  CHECK(pttl(user_key("alice")) > short_ttl.count());
  CHECK(value(user_key("bob")) == token_of("bob"));
  CHECK(pttl(user_key("bob")) > short_ttl.count());
  // Taken-over keys keep their owner (their TTL may be extended: the
  // script learns whose a key is from the SET that extends it).
  CHECK(value(user_key("carol")) == token_on(instance_2, "conn-carol"));
  CHECK(value(user_key("dave")) == token_on(instance_2, "conn-dave"));

  // With every key its own, nobody is reported.
  auto none = run(goring::redis::refresh_users({"alice", "bob"},
                                               {token_of("alice"), token_of("bob")}, session_ttl));
  CHECK(describe(none) == "[]");
}

// -- call_start --------------------------------------------------------------

TEST_CASE_FIXTURE(call_store, "a call to an online, free callee starts ringing") {
  go_online("alice");
  go_online("bob");
  CHECK(status(start("alice", "bob", "s-1")) == "ok");

  CHECK(field("s-1", "caller_id") == "alice");
  CHECK(field("s-1", "callee_id") == "bob");
  CHECK(field("s-1", "state") == "ringing");
  CHECK(field("s-1", "created_at") == std::to_string(created_at));
  CHECK(field("s-1", "caller_info") == alice_info);
  CHECK(value(user_call_key("alice")) == "s-1");
  CHECK(value(user_call_key("bob")) == "s-1");
  for (auto key : {session_key("s-1"), user_call_key("alice"), user_call_key("bob")}) {
    CAPTURE(key);
    CHECK(pttl(key) > 0);
    CHECK(pttl(key) <= session_ttl.count());
  }
}

TEST_CASE_FIXTURE(call_store, "calling an offline callee is refused and writes nothing") {
  go_online("alice");
  CHECK(status(start("alice", "bob", "s-1")) == "offline");
  CHECK_FALSE(exists(session_key("s-1")));
  CHECK_FALSE(exists(user_call_key("alice")));
  CHECK_FALSE(exists(user_call_key("bob")));
}

TEST_CASE_FIXTURE(call_store, "calling a callee already in a call is refused as "
                              "callee_busy") {
  SUBCASE("its call is ringing") {
    ringing("carol", "bob", "s-1");
  }
  SUBCASE("its call is accepted") {
    accepted("carol", "bob", "s-1");
  }
  go_online("alice");
  CHECK(status(start("alice", "bob", "s-2")) == "callee_busy");
  CHECK_FALSE(exists(session_key("s-2")));
  CHECK_FALSE(exists(user_call_key("alice")));
  CHECK(value(user_call_key("bob")) == "s-1");
  CHECK(value(user_call_key("carol")) == "s-1");
}

TEST_CASE_FIXTURE(call_store, "a caller already in a call cannot start another") {
  SUBCASE("its call is ringing") {
    ringing("alice", "bob", "s-1");
  }
  SUBCASE("its call is accepted") {
    accepted("alice", "bob", "s-1");
  }
  go_online("carol");
  CHECK(status(start("alice", "carol", "s-2")) == "caller_busy");
  CHECK_FALSE(exists(session_key("s-2")));
  CHECK_FALSE(exists(user_call_key("carol")));
  CHECK(value(user_call_key("alice")) == "s-1");
}

TEST_CASE_FIXTURE(call_store, "a stale call key pointing at a vanished or ended session is "
                              "ignored and cleared") {
  go_online("alice");
  go_online("bob");
  SUBCASE("the session vanished") {
    run({"SET", user_call_key("alice"), "s-gone"});
    run({"SET", user_call_key("bob"), "s-gone"});
  }
  SUBCASE("the session ended") {
    ringing("carol", "bob", "s-old");
    REQUIRE(outcome(hang_up("s-old", "carol")).status == outcome_status::ok);
    // A key left behind, say by a crash between two writes.
    run({"SET", user_call_key("alice"), "s-old"});
    run({"SET", user_call_key("bob"), "s-old"});
  }
  SUBCASE("the session was rejected") {
    ringing("carol", "bob", "s-old");
    REQUIRE(outcome(reject("s-old", "bob")).status == outcome_status::ok);
    run({"SET", user_call_key("alice"), "s-old"});
    run({"SET", user_call_key("bob"), "s-old"});
  }
  CHECK(status(start("alice", "bob", "s-1")) == "ok");
  CHECK(value(user_call_key("alice")) == "s-1");
  CHECK(value(user_call_key("bob")) == "s-1");
  CHECK(field("s-1", "state") == "ringing");
}

TEST_CASE_FIXTURE(call_store, "a stale caller key leaves the caller free even when the callee "
                              "turns out busy") {
  ringing("carol", "bob", "s-1");
  go_online("alice");
  run({"SET", user_call_key("alice"), "s-gone"});
  CHECK(status(start("alice", "bob", "s-2")) == "callee_busy");
  CHECK(value(user_call_key("bob")) == "s-1");
  if (on_cluster()) {
    // In steps a stale key is replaced only by a reservation, given back
    // when the start fails: alice's key is gone if she came first in the
    // fixed order, else still stale. Either way it names no live call.
    auto left = value(user_call_key("alice"));
    CHECK((left == absent || left == "s-gone"));
  } else {
    CHECK_FALSE(exists(user_call_key("alice")));
  }
  go_online("dave");
  CHECK(status(start("alice", "dave", "s-3")) == "ok");
  CHECK(value(user_call_key("alice")) == "s-3");
}

TEST_CASE_FIXTURE(call_store, "a session id that is taken is refused as exists") {
  ringing("alice", "bob", "s-1");
  REQUIRE(outcome(hang_up("s-1", "alice")).status == outcome_status::ok);
  go_online("carol");
  go_online("dave");
  CHECK(status(start("carol", "dave", "s-1")) == "exists");
  CHECK_FALSE(exists(user_call_key("carol")));
  CHECK_FALSE(exists(user_call_key("dave")));
  CHECK(field("s-1", "caller_id") == "alice");
  CHECK(field("s-1", "state") == "ended");
}

TEST_CASE_FIXTURE(call_store, "a start caught between its steps is pending: never live, its "
                              "callee busy for others, ringing once committed"
                                * cluster_redis_only()) {
  // Cluster only: on one Redis a start is one script, with no between.
  // Here alice's start to bob has opened its session and reserved bob.
  go_online("alice");
  go_online("bob");
  using goring::redis::script;
  REQUIRE(status({script::session_open,
                  {session_key("s-1")},
                  {"alice", "bob", std::to_string(created_at), std::to_string(session_ttl.count()),
                   alice_info}})
          == "ok");
  REQUIRE(status({script::user_reserve,
                  {user_call_key("bob")},
                  {"s-1", std::to_string(session_ttl.count()), "", ""}})
          == list({"ok"}));
  CHECK(field("s-1", "state") == "pending");
  // bob reconnecting resumes nothing, cannot accept, and a check finds no
  // live call.
  CHECK(describe(run(claim("bob", token_on(instance_1, "conn-bob-2")))) == list({token_of("bob")}));
  auto early = outcome(accept("s-1", "bob"));
  CHECK(early.status == outcome_status::invalid_state);
  CHECK(early.detail == "pending");
  CHECK(describe(run(check("s-1", check_at))) == list({"gone", "pending", ""}));
  // A start this young is in progress, not dead: bob is busy for carol.
  go_online("carol");
  CHECK(status(start("carol", "bob", "s-2")) == "callee_busy");
  CHECK(value(user_call_key("bob")) == "s-1");
  REQUIRE(status({script::user_reserve,
                  {user_call_key("alice")},
                  {"s-1", std::to_string(session_ttl.count()), "", ""}})
          == list({"ok"}));
  CHECK(status({script::session_commit, {session_key("s-1")}, {}}) == "ok");
  CHECK(field("s-1", "state") == "ringing");
  CHECK(outcome(accept("s-1", "bob")).status == outcome_status::ok);
}

TEST_CASE_FIXTURE(call_store, "two callers ringing one callee at the same moment: exactly "
                              "one rings") {
  auto check_one_rings = [&](const reply& from_alice, const reply& from_carol) {
    CHECK(sorted({describe(from_alice), describe(from_carol)})
          == std::vector<std::string>{"callee_busy", "ok"});
    auto [winner, loser, won, lost] = describe(from_alice) == "ok"
                                        ? std::tuple{"alice", "carol", "s-alice", "s-carol"}
                                        : std::tuple{"carol", "alice", "s-carol", "s-alice"};
    CHECK(value(user_call_key("bob")) == won);
    CHECK(value(user_call_key(winner)) == won);
    CHECK(field(won, "caller_id") == winner);
    CHECK_FALSE(exists(user_call_key(loser)));
    CHECK_FALSE(exists(session_key(lost)));
  };
  auto prepare = [&] {
    flush();
    go_online("alice");
    go_online("bob");
    go_online("carol");
  };
  auto from_alice = start("alice", "bob", "s-alice");
  auto from_carol = start("carol", "bob", "s-carol");

  SUBCASE("pipelined") {
    prepare();
    auto replies = pipelined({from_alice, from_carol});
    CHECK(describe(replies[0]) == "ok");
    check_one_rings(replies[0], replies[1]);
  }
  SUBCASE("from two connections") {
    for (int round = 0; round < race_rounds; ++round) {
      prepare();
      auto [a, c] = at_once(from_alice, from_carol);
      check_one_rings(a, c);
    }
  }
}

TEST_CASE_FIXTURE(call_store, "alice calls bob while bob calls alice: exactly one call "
                              "rings") {
  auto alice_to_bob = start("alice", "bob", "s-ab");
  auto bob_to_alice = start("bob", "alice", "s-ba");
  auto check_one_rings = [&](const reply& ab, const reply& ba, bool at_once) {
    // The loser is already in the winner's call when its own script runs.
    // In steps (Cluster), run at once, it may instead lose the user both
    // starts reserve first: its callee, or its caller, whose call key it
    // found free a moment before.
    CHECK((describe(ab) == "ok") != (describe(ba) == "ok"));
    auto loser = describe(ab) == "ok" ? describe(ba) : describe(ab);
    if (on_cluster() && at_once)
      CHECK((loser == "caller_busy" || loser == "callee_busy"));
    else
      CHECK(loser == "caller_busy");
    auto won = describe(ab) == "ok" ? "s-ab" : "s-ba";
    auto lost = describe(ab) == "ok" ? "s-ba" : "s-ab";
    CHECK(value(user_call_key("alice")) == won);
    CHECK(value(user_call_key("bob")) == won);
    CHECK_FALSE(exists(session_key(lost)));
  };

  SUBCASE("pipelined") {
    go_online("alice");
    go_online("bob");
    auto replies = pipelined({bob_to_alice, alice_to_bob});
    CHECK(describe(replies[0]) == "ok");
    check_one_rings(replies[1], replies[0], false);
  }
  SUBCASE("from two connections") {
    for (int round = 0; round < race_rounds; ++round) {
      flush();
      go_online("alice");
      go_online("bob");
      auto [ab, ba] = at_once(alice_to_bob, bob_to_alice);
      check_one_rings(ab, ba, true);
    }
  }
}

// -- call_accept -------------------------------------------------------------

TEST_CASE_FIXTURE(call_store, "the callee accepts a ringing call") {
  ringing("alice", "bob", "s-1");
  for (auto key : {session_key("s-1"), user_call_key("alice"), user_call_key("bob")})
    shorten(key);

  auto out = outcome(accept("s-1", "bob"));
  CHECK(out.status == outcome_status::ok);
  CHECK(out.caller_id == "alice");
  CHECK(out.callee_id == "bob");
  CHECK(out.detail == "accepted");

  CHECK(field("s-1", "state") == "accepted");
  CHECK(field("s-1", "accepted_at") == std::to_string(accepted_at));
  CHECK(field("s-1", "callee_info") == bob_info);
  CHECK(field("s-1", "caller_info") == alice_info);
  for (auto key : {session_key("s-1"), user_call_key("alice"), user_call_key("bob")}) {
    CAPTURE(key);
    CHECK(pttl(key) > short_ttl.count());
    CHECK(pttl(key) <= session_ttl.count());
  }
}

TEST_CASE_FIXTURE(call_store, "only the callee can accept a call") {
  ringing("alice", "bob", "s-1");
  std::string who;
  SUBCASE("the caller") {
    who = "alice";
  }
  SUBCASE("a stranger") {
    who = "mallory";
  }
  CAPTURE(who);
  auto out = outcome(accept("s-1", who));
  CHECK(out.status == outcome_status::unauthorized);
  CHECK(out.caller_id == "alice");
  CHECK(out.callee_id == "bob");
  CHECK(out.detail == "ringing");
  CHECK(field("s-1", "state") == "ringing");
  CHECK(field("s-1", "accepted_at") == absent);
}

TEST_CASE_FIXTURE(call_store, "a second accept finds the call already accepted") {
  ringing("alice", "bob", "s-1");
  REQUIRE(outcome(accept("s-1", "bob")).status == outcome_status::ok);
  auto again = outcome(goring::redis::call_accept("s-1", "bob", session_ttl,
                                                  R"({"device":"tablet"})", accepted_at + 1));
  CHECK(again.status == outcome_status::invalid_state);
  CHECK(again.detail == "accepted");
  CHECK(field("s-1", "accepted_at") == std::to_string(accepted_at));
  CHECK(field("s-1", "callee_info") == bob_info);
}

TEST_CASE_FIXTURE(call_store, "an accept after the caller cancelled finds the call over") {
  ringing("alice", "bob", "s-1");
  auto cancel = outcome(hang_up("s-1", "alice"));
  REQUIRE(cancel.status == outcome_status::ok);
  REQUIRE(cancel.detail == "cancelled");

  auto out = outcome(accept("s-1", "bob"));
  CHECK(out.status == outcome_status::invalid_state);
  CHECK(out.detail == "ended");
  CHECK(field("s-1", "state") == "ended");
  CHECK(field("s-1", "accepted_at") == absent);
  // The ended record stays, briefly, so the late accept is told why.
  CHECK(pttl(session_key("s-1")) > 0);
  CHECK(pttl(session_key("s-1")) <= ended_ttl.count());
  CHECK_FALSE(exists(user_call_key("alice")));
  CHECK_FALSE(exists(user_call_key("bob")));
}

TEST_CASE_FIXTURE(call_store, "every script on an unknown session finds nothing") {
  CHECK(outcome(accept("s-none", "bob")).status == outcome_status::not_found);
  CHECK(outcome(reject("s-none", "bob")).status == outcome_status::not_found);
  CHECK(outcome(hang_up("s-none", "alice")).status == outcome_status::not_found);
  CHECK(outcome(disconnect("s-none", "alice")).status == outcome_status::not_found);
  CHECK(outcome(ring_timeout("s-none")).status == outcome_status::not_found);
  CHECK(describe(run(check("s-none", check_at))) == list({"gone", "", ""}));
  CHECK_FALSE(exists(session_key("s-none")));
  CHECK(all_keys() == "");
}

// -- call_reject -------------------------------------------------------------

TEST_CASE_FIXTURE(call_store, "the callee rejects a ringing call and both are free again") {
  ringing("alice", "bob", "s-1");
  auto out = outcome(reject("s-1", "bob"));
  CHECK(out.status == outcome_status::ok);
  CHECK(out.caller_id == "alice");
  CHECK(out.callee_id == "bob");
  CHECK(out.detail == "rejected");

  CHECK_FALSE(exists(user_call_key("alice")));
  CHECK_FALSE(exists(user_call_key("bob")));
  CHECK(field("s-1", "state") == "rejected");
  CHECK(field("s-1", "ended_reason") == "rejected");
  CHECK(field("s-1", "ended_at") == std::to_string(ended_at));
  CHECK(pttl(session_key("s-1")) > 0);
  CHECK(pttl(session_key("s-1")) <= ended_ttl.count());

  // A late accept is told the call is over.
  CHECK(outcome(accept("s-1", "bob")).status == outcome_status::invalid_state);
  // Both can call again at once.
  CHECK(status(start("alice", "bob", "s-2")) == "ok");
}

TEST_CASE_FIXTURE(call_store, "the caller cannot reject its own call") {
  ringing("alice", "bob", "s-1");
  auto out = outcome(reject("s-1", "alice"));
  CHECK(out.status == outcome_status::unauthorized);
  CHECK(out.detail == "ringing");
  CHECK(field("s-1", "state") == "ringing");
  CHECK(value(user_call_key("alice")) == "s-1");
  CHECK(value(user_call_key("bob")) == "s-1");
}

TEST_CASE_FIXTURE(call_store, "a reject after the accept changes nothing") {
  accepted("alice", "bob", "s-1");
  auto out = outcome(reject("s-1", "bob"));
  CHECK(out.status == outcome_status::invalid_state);
  CHECK(out.detail == "accepted");
  CHECK(field("s-1", "state") == "accepted");
  CHECK(field("s-1", "ended_reason") == absent);
  CHECK(value(user_call_key("alice")) == "s-1");
  CHECK(value(user_call_key("bob")) == "s-1");
  CHECK(pttl(session_key("s-1")) > ended_ttl.count());
}

// -- call_end ----------------------------------------------------------------

TEST_CASE_FIXTURE(call_store, "the caller hanging up a ringing call cancels it") {
  ringing("alice", "bob", "s-1");
  auto out = outcome(hang_up("s-1", "alice"));
  CHECK(out.status == outcome_status::ok);
  CHECK(out.caller_id == "alice");
  CHECK(out.callee_id == "bob");
  CHECK(out.detail == "cancelled");
  CHECK(field("s-1", "state") == "ended");
  CHECK(field("s-1", "ended_reason") == "cancelled");
  CHECK(field("s-1", "ended_at") == std::to_string(ended_at));
  CHECK(pttl(session_key("s-1")) > 0);
  CHECK(pttl(session_key("s-1")) <= ended_ttl.count());
  CHECK_FALSE(exists(user_call_key("alice")));
  CHECK_FALSE(exists(user_call_key("bob")));
}

TEST_CASE_FIXTURE(call_store, "the callee hanging up a ringing call ends it by user") {
  ringing("alice", "bob", "s-1");
  auto out = outcome(hang_up("s-1", "bob"));
  CHECK(out.status == outcome_status::ok);
  CHECK(out.detail == "ended_by_user");
  CHECK(field("s-1", "ended_reason") == "ended_by_user");
  CHECK_FALSE(exists(user_call_key("alice")));
  CHECK_FALSE(exists(user_call_key("bob")));
}

TEST_CASE_FIXTURE(call_store, "either side hanging up an accepted call ends it by user") {
  accepted("alice", "bob", "s-1");
  std::string who;
  SUBCASE("the caller") {
    who = "alice";
  }
  SUBCASE("the callee") {
    who = "bob";
  }
  CAPTURE(who);
  auto out = outcome(hang_up("s-1", who));
  CHECK(out.status == outcome_status::ok);
  CHECK(out.detail == "ended_by_user");
  CHECK(field("s-1", "state") == "ended");
  CHECK(field("s-1", "ended_reason") == "ended_by_user");
  CHECK(pttl(session_key("s-1")) <= ended_ttl.count());
  CHECK_FALSE(exists(user_call_key("alice")));
  CHECK_FALSE(exists(user_call_key("bob")));
}

TEST_CASE_FIXTURE(call_store, "a participant's lost connection ends the call as "
                              "peer_disconnected") {
  std::string who;
  SUBCASE("the caller, while ringing") {
    ringing("alice", "bob", "s-1");
    who = "alice";
  }
  SUBCASE("the callee, while ringing") {
    ringing("alice", "bob", "s-1");
    who = "bob";
  }
  SUBCASE("the caller, while accepted") {
    accepted("alice", "bob", "s-1");
    who = "alice";
  }
  SUBCASE("the callee, while accepted") {
    accepted("alice", "bob", "s-1");
    who = "bob";
  }
  CAPTURE(who);
  auto out = outcome(disconnect("s-1", who));
  CHECK(out.status == outcome_status::ok);
  CHECK(out.detail == "peer_disconnected");
  CHECK(field("s-1", "state") == "ended");
  CHECK(field("s-1", "ended_reason") == "peer_disconnected");
  CHECK_FALSE(exists(user_call_key("alice")));
  CHECK_FALSE(exists(user_call_key("bob")));
}

TEST_CASE_FIXTURE(call_store, "a stranger cannot end a call") {
  SUBCASE("while ringing") {
    ringing("alice", "bob", "s-1");
  }
  SUBCASE("while accepted") {
    accepted("alice", "bob", "s-1");
  }
  auto before = field("s-1", "state");
  auto out = outcome(hang_up("s-1", "mallory"));
  CHECK(out.status == outcome_status::unauthorized);
  CHECK(out.detail == before);
  CHECK(outcome(disconnect("s-1", "mallory")).status == outcome_status::unauthorized);
  CHECK(field("s-1", "state") == before);
  CHECK(field("s-1", "ended_reason") == absent);
  CHECK(value(user_call_key("alice")) == "s-1");
  CHECK(value(user_call_key("bob")) == "s-1");
}

TEST_CASE_FIXTURE(call_store, "a second hang-up finds the call over") {
  ringing("alice", "bob", "s-1");
  REQUIRE(outcome(hang_up("s-1", "alice")).detail == "cancelled");
  auto again = outcome(hang_up("s-1", "bob"));
  CHECK(again.status == outcome_status::invalid_state);
  CHECK(again.detail == "ended");
  CHECK(field("s-1", "ended_reason") == "cancelled");
}

TEST_CASE_FIXTURE(call_store, "both sides hanging up at the same moment end the call "
                              "once") {
  for (int round = 0; round < race_rounds; ++round) {
    flush();
    accepted("alice", "bob", "s-1");
    auto [by_alice, by_bob] = at_once(hang_up("s-1", "alice"), disconnect("s-1", "bob"));
    auto a = goring::redis::parse_call_outcome(by_alice);
    auto b = goring::redis::parse_call_outcome(by_bob);
    CHECK(sorted({names(a.status), names(b.status)})
          == std::vector<std::string>{"invalid_state", "ok"});
    auto expected = a.status == outcome_status::ok ? "ended_by_user" : "peer_disconnected";
    CHECK(field("s-1", "ended_reason") == expected);
    CHECK_FALSE(exists(user_call_key("alice")));
    CHECK_FALSE(exists(user_call_key("bob")));
  }
}

TEST_CASE_FIXTURE(call_store, "the callee accepts while the caller hangs up: both hear the "
                              "same story in either order") {
  auto by_bob = accept("s-1", "bob");
  auto by_alice = hang_up("s-1", "alice");

  SUBCASE("the accept runs first") {
    ringing("alice", "bob", "s-1");
    auto replies = pipelined({by_bob, by_alice});
    auto accept_out = goring::redis::parse_call_outcome(replies[0]);
    auto end_out = goring::redis::parse_call_outcome(replies[1]);
    CHECK(accept_out.status == outcome_status::ok);
    CHECK(end_out.status == outcome_status::ok);
    CHECK(end_out.detail == "ended_by_user");
    CHECK(field("s-1", "accepted_at") == std::to_string(accepted_at));
    CHECK(field("s-1", "ended_reason") == "ended_by_user");
  }
  SUBCASE("the hang-up runs first") {
    ringing("alice", "bob", "s-1");
    auto replies = pipelined({by_alice, by_bob});
    auto end_out = goring::redis::parse_call_outcome(replies[0]);
    auto accept_out = goring::redis::parse_call_outcome(replies[1]);
    CHECK(end_out.status == outcome_status::ok);
    CHECK(end_out.detail == "cancelled");
    CHECK(accept_out.status == outcome_status::invalid_state);
    CHECK(accept_out.detail == "ended");
    CHECK(field("s-1", "accepted_at") == absent);
    CHECK(field("s-1", "ended_reason") == "cancelled");
  }
  SUBCASE("both at the same moment") {
    for (int round = 0; round < race_rounds; ++round) {
      flush();
      ringing("alice", "bob", "s-1");
      auto [accept_reply, end_reply] = at_once(by_bob, by_alice);
      auto accept_out = goring::redis::parse_call_outcome(accept_reply);
      auto end_out = goring::redis::parse_call_outcome(end_reply);
      CHECK(end_out.status == outcome_status::ok);
      if (accept_out.status == outcome_status::ok) {
        CHECK(end_out.detail == "ended_by_user");
      } else {
        CHECK(accept_out.status == outcome_status::invalid_state);
        CHECK(end_out.detail == "cancelled");
      }
      CHECK(field("s-1", "ended_reason") == end_out.detail);
    }
  }
  CHECK(field("s-1", "state") == "ended");
  CHECK_FALSE(exists(user_call_key("alice")));
  CHECK_FALSE(exists(user_call_key("bob")));
}

TEST_CASE_FIXTURE(call_store, "a callee whose instance crashed counts as offline") {
  go_online("alice");
  go_online("bob");
  // The heartbeat of their instance expired: bob's key names a dead run.
  run({"DEL", server_key("server-1")});
  CHECK(status(start("alice", "bob", "s-1")) == "offline");
  CHECK_FALSE(exists(session_key("s-1")));
  // A run of the same SERVER_ID that restarted does not vouch for it either.
  server_up("server-1", restarted_1);
  CHECK(status(start("alice", "bob", "s-1")) == "offline");
  server_up("server-1", instance_1);
  CHECK(status(start("alice", "bob", "s-1")) == "ok");
}

TEST_CASE_FIXTURE(call_store, "ending a call spares a user key that already points at "
                              "another call") {
  ringing("alice", "bob", "s-1");
  // alice's key moved on to another call (set by hand: a later start).
  run({"SET", user_call_key("alice"), "s-next"});
  std::string expected_state;
  SUBCASE("hang-up") {
    REQUIRE(outcome(hang_up("s-1", "bob")).status == outcome_status::ok);
    expected_state = "ended";
  }
  SUBCASE("reject") {
    REQUIRE(outcome(reject("s-1", "bob")).status == outcome_status::ok);
    expected_state = "rejected";
  }
  SUBCASE("ring timeout") {
    REQUIRE(outcome(ring_timeout("s-1")).status == outcome_status::ok);
    expected_state = "ended";
  }
  SUBCASE("a check finding a crashed instance's key") {
    // The heartbeat expires: both presence keys name an instance that is gone.
    run({"DEL", server_key("server-1")});
    REQUIRE(status_of(run(check("s-1", check_at))) == "ended");
    expected_state = "ended";
  }
  CHECK(field("s-1", "state") == expected_state);
  CHECK(value(user_call_key("alice")) == "s-next");
  CHECK_FALSE(exists(user_call_key("bob")));
}

// -- call_timeout ------------------------------------------------------------

TEST_CASE_FIXTURE(call_store, "a ring timeout ends an unanswered call as no_answer") {
  ringing("alice", "bob", "s-1");
  auto out = outcome(ring_timeout("s-1"));
  CHECK(out.status == outcome_status::ok);
  CHECK(out.caller_id == "alice");
  CHECK(out.callee_id == "bob");
  CHECK(out.detail == "ended");
  CHECK(field("s-1", "state") == "ended");
  CHECK(field("s-1", "ended_reason") == "no_answer");
  CHECK(field("s-1", "ended_at") == std::to_string(ended_at));
  CHECK(pttl(session_key("s-1")) > 0);
  CHECK(pttl(session_key("s-1")) <= ended_ttl.count());
  CHECK_FALSE(exists(user_call_key("alice")));
  CHECK_FALSE(exists(user_call_key("bob")));

  // The other participant's timer fires too and finds nothing to do.
  auto second = outcome(ring_timeout("s-1"));
  CHECK(second.status == outcome_status::invalid_state);
  CHECK(second.detail == "ended");
  CHECK(field("s-1", "ended_reason") == "no_answer");
}

TEST_CASE_FIXTURE(call_store, "a ring timeout after the accept changes nothing") {
  accepted("alice", "bob", "s-1");
  auto out = outcome(ring_timeout("s-1"));
  CHECK(out.status == outcome_status::invalid_state);
  CHECK(out.detail == "accepted");
  CHECK(field("s-1", "state") == "accepted");
  CHECK(field("s-1", "ended_reason") == absent);
  CHECK(field("s-1", "ended_at") == absent);
  CHECK(pttl(session_key("s-1")) > ended_ttl.count());
  CHECK(value(user_call_key("alice")) == "s-1");
  CHECK(value(user_call_key("bob")) == "s-1");
}

TEST_CASE_FIXTURE(call_store, "the callee accepts as the ring timer fires: exactly one "
                              "wins") {
  auto by_bob = accept("s-1", "bob");
  auto timer = ring_timeout("s-1");

  SUBCASE("the accept runs first") {
    ringing("alice", "bob", "s-1");
    auto replies = pipelined({by_bob, timer});
    CHECK(goring::redis::parse_call_outcome(replies[0]).status == outcome_status::ok);
    auto timeout_out = goring::redis::parse_call_outcome(replies[1]);
    CHECK(timeout_out.status == outcome_status::invalid_state);
    CHECK(timeout_out.detail == "accepted");
    CHECK(field("s-1", "state") == "accepted");
    CHECK(value(user_call_key("bob")) == "s-1");
  }
  SUBCASE("the timeout runs first") {
    ringing("alice", "bob", "s-1");
    auto replies = pipelined({timer, by_bob});
    CHECK(goring::redis::parse_call_outcome(replies[0]).status == outcome_status::ok);
    auto accept_out = goring::redis::parse_call_outcome(replies[1]);
    CHECK(accept_out.status == outcome_status::invalid_state);
    CHECK(accept_out.detail == "ended");
    CHECK(field("s-1", "ended_reason") == "no_answer");
    CHECK_FALSE(exists(user_call_key("bob")));
  }
  SUBCASE("both at the same moment") {
    for (int round = 0; round < race_rounds; ++round) {
      flush();
      ringing("alice", "bob", "s-1");
      auto [accept_reply, timeout_reply] = at_once(by_bob, timer);
      auto accept_out = goring::redis::parse_call_outcome(accept_reply);
      auto timeout_out = goring::redis::parse_call_outcome(timeout_reply);
      CHECK(sorted({names(accept_out.status), names(timeout_out.status)})
            == std::vector<std::string>{"invalid_state", "ok"});
      auto state = accept_out.status == outcome_status::ok ? "accepted" : "ended";
      CHECK(field("s-1", "state") == state);
    }
  }
}

// -- call_check --------------------------------------------------------------

TEST_CASE_FIXTURE(call_store,
                  "a check with both participants present keeps the call live and extends its "
                  "keys") {
  server_up(server_1, instance_1);
  std::string state;
  SUBCASE("while ringing") {
    ringing("alice", "bob", "s-1");
    state = "ringing";
  }
  SUBCASE("while accepted") {
    accepted("alice", "bob", "s-1");
    state = "accepted";
  }
  // bob reconnected through another instance, alive as well.
  server_up(server_2, instance_2);
  run(claim("bob", token_on(instance_2, "conn-bob")));
  auto live = {session_key("s-1"), user_call_key("alice"), user_call_key("bob")};
  for (auto& key : live)
    shorten(key);

  CHECK(describe(run(check("s-1", check_at))) == list({"live", state}));
  for (auto& key : live) {
    CAPTURE(key);
    CHECK(pttl(key) > short_ttl.count());
    CHECK(pttl(key) <= session_ttl.count());
  }
  CHECK(field("s-1", "state") == state);
  CHECK(field("s-1", "away:caller") == absent);
  CHECK(field("s-1", "away:callee") == absent);
  CHECK(value(user_key("alice")) == token_of("alice"));
  CHECK(value(user_key("bob")) == token_on(instance_2, "conn-bob"));
}

TEST_CASE_FIXTURE(call_store, "a check extends no user key that points at another call") {
  server_up(server_1, instance_1);
  ringing("alice", "bob", "s-1");
  run({"SET", user_call_key("alice"), "s-next", "PX", std::to_string(short_ttl.count())});
  CHECK(describe(run(check("s-1", check_at))) == list({"live", "ringing"}));
  CHECK(value(user_call_key("alice")) == "s-next");
  CHECK(pttl(user_call_key("alice")) <= short_ttl.count());
}

TEST_CASE_FIXTURE(call_store,
                  "a participant without a presence key has the reconnect grace to come back, "
                  "then the call ends as peer_disconnected") {
  server_up(server_1, instance_1);
  std::string who;
  std::string role;
  SUBCASE("the caller, while ringing") {
    ringing("alice", "bob", "s-1");
    who = "alice";
    role = "caller";
  }
  SUBCASE("the callee, while ringing") {
    ringing("alice", "bob", "s-1");
    who = "bob";
    role = "callee";
  }
  SUBCASE("the caller, while accepted") {
    accepted("alice", "bob", "s-1");
    who = "alice";
    role = "caller";
  }
  SUBCASE("the callee, while accepted") {
    accepted("alice", "bob", "s-1");
    who = "bob";
    role = "callee";
  }
  CAPTURE(who);
  std::string other = who == "alice" ? "bob" : "alice";
  std::string other_role = role == "caller" ? "callee" : "caller";
  auto state = field("s-1", "state");
  go_away(who);

  // The first check that misses them starts the grace.
  CHECK(describe(run(check("s-1", check_at))) == list({"live", state}));
  CHECK(field("s-1", "away:" + role) == std::to_string(check_at));
  CHECK(field("s-1", "away:" + other_role) == absent);

  // Checks within the grace keep the call and its keys alive, and count
  // from the first miss.
  shorten(session_key("s-1"));
  shorten(user_call_key(who));
  auto last_live = check_at + reconnect_grace.count() - 1;
  CHECK(describe(run(check("s-1", last_live))) == list({"live", state}));
  CHECK(field("s-1", "away:" + role) == std::to_string(check_at));
  CHECK(pttl(session_key("s-1")) > short_ttl.count());
  CHECK(pttl(user_call_key(who)) > short_ttl.count());
  CHECK(field("s-1", "state") == state);

  // The first check past the grace ends it.
  auto end_at = check_at + reconnect_grace.count();
  CHECK(describe(run(check("s-1", end_at))) == list({"ended", "alice", "bob", who}));
  CHECK(field("s-1", "state") == "ended");
  CHECK(field("s-1", "ended_reason") == "peer_disconnected");
  CHECK(field("s-1", "ended_at") == std::to_string(end_at / 1000));
  // The record stays, briefly, so late requests are told the call is over.
  CHECK(field("s-1", "caller_id") == "alice");
  CHECK(field("s-1", "callee_id") == "bob");
  CHECK(pttl(session_key("s-1")) > 0);
  CHECK(pttl(session_key("s-1")) <= ended_ttl.count());
  CHECK_FALSE(exists(user_call_key("alice")));
  CHECK_FALSE(exists(user_call_key("bob")));
  // The one still here stays online.
  CHECK(value(user_key(other)) == token_of(other));

  // The other instance's check finds the call over.
  CHECK(describe(run(check("s-1", end_at + 1))) == list({"gone", "ended", "peer_disconnected"}));
  CHECK(field("s-1", "ended_at") == std::to_string(end_at / 1000));
}

TEST_CASE_FIXTURE(call_store,
                  "a participant back within the grace clears the away mark, a later absence "
                  "starts a new grace") {
  server_up(server_1, instance_1);
  accepted("alice", "bob", "s-1");
  go_away("bob");
  REQUIRE(describe(run(check("s-1", check_at))) == list({"live", "accepted"}));
  REQUIRE(field("s-1", "away:callee") == std::to_string(check_at));

  // bob reconnects, through another instance.
  server_up(server_2, instance_2);
  auto bob_back = token_on(instance_2, "conn-bob");
  REQUIRE(status_of(run(claim("bob", bob_back))) == "");
  auto grace = reconnect_grace.count();
  CHECK(describe(run(check("s-1", check_at + grace - 1))) == list({"live", "accepted"}));
  CHECK(field("s-1", "away:callee") == absent);
  // Past the first grace the call goes on: nobody is away.
  CHECK(describe(run(check("s-1", check_at + 2 * grace))) == list({"live", "accepted"}));
  CHECK(field("s-1", "away:callee") == absent);

  // Away again: the grace starts over at the first check that misses him.
  go_away("bob");
  auto again = check_at + 3 * grace;
  CHECK(describe(run(check("s-1", again))) == list({"live", "accepted"}));
  CHECK(field("s-1", "away:callee") == std::to_string(again));
  CHECK(describe(run(check("s-1", again + grace - 1))) == list({"live", "accepted"}));
  CHECK(describe(run(check("s-1", again + grace))) == list({"ended", "alice", "bob", "bob"}));
  CHECK(field("s-1", "ended_reason") == "peer_disconnected");
}

TEST_CASE_FIXTURE(call_store,
                  "with no reconnect grace the first check that misses a participant ends the "
                  "call") {
  server_up(server_1, instance_1);
  accepted("alice", "bob", "s-1");
  go_away("bob");
  auto no_grace = [](long long now_ms) {
    return goring::redis::call_check("s-1", session_ttl, now_ms, millis{0}, ended_ttl);
  };
  CHECK(describe(run(no_grace(check_at))) == list({"ended", "alice", "bob", "bob"}));
  CHECK(field("s-1", "ended_reason") == "peer_disconnected");
  CHECK_FALSE(exists(user_call_key("alice")));
}

TEST_CASE_FIXTURE(call_store,
                  "the check at a drop counts the dropped connection's key, not yet released, as "
                  "none, and a successor's key as presence") {
  server_up(server_1, instance_1);
  server_up(server_2, instance_2);
  accepted("alice", "bob", "s-1");
  auto dropped = token_of("bob"); // still in ws:user:bob: not released yet
  auto at_drop = [&](millis grace) {
    return goring::redis::call_check("s-1", session_ttl, check_at, grace, ended_ttl, "bob",
                                     dropped);
  };
  SUBCASE("with a grace it starts at the drop") {
    CHECK(describe(run(at_drop(reconnect_grace))) == list({"live", "accepted"}));
    CHECK(field("s-1", "away:callee") == std::to_string(check_at));
    // The same token is no presence for another user.
    CHECK(field("s-1", "away:caller") == absent);
  }
  SUBCASE("without one it ends the call") {
    CHECK(describe(run(at_drop(millis{0}))) == list({"ended", "alice", "bob", "bob"}));
  }
  SUBCASE("a takeover wrote its key first: bob is present") {
    REQUIRE(status_of(run(claim("bob", token_on(instance_2, "conn-bob-2")))) == dropped);
    CHECK(describe(run(at_drop(millis{0}))) == list({"live", "accepted"}));
    CHECK(field("s-1", "away:callee") == absent);
  }
  SUBCASE("released already: absent as after any drop") {
    go_away("bob");
    CHECK(describe(run(at_drop(millis{0}))) == list({"ended", "alice", "bob", "bob"}));
  }
}

TEST_CASE_FIXTURE(call_store,
                  "a presence key left by a crashed instance ends the call at the first check") {
  server_up(server_1, instance_1);
  server_up(server_2, instance_2);
  accepted("alice", "bob", "s-1");
  // bob's connection lives on server-2.
  run(claim("bob", token_on(instance_2, "conn-bob")));
  std::string gone;
  SUBCASE("its instance's heartbeat expired") {
    run({"DEL", server_key(server_2)});
    gone = "bob";
  }
  SUBCASE("its instance left without releasing it") {
    REQUIRE(status(leave(server_2, instance_2)) == "1");
    gone = "bob";
  }
  SUBCASE("its server id restarted as another run") {
    // alice's server-1 came back as run-2; her key names run-1.
    REQUIRE(describe(run(beat(server_1, restarted_1))) == instance_1);
    gone = "alice";
  }
  CAPTURE(gone);
  CHECK(describe(run(check("s-1", check_at))) == list({"ended", "alice", "bob", gone}));
  CHECK(field("s-1", "state") == "ended");
  CHECK(field("s-1", "ended_reason") == "peer_disconnected");
  CHECK(field("s-1", "ended_at") == std::to_string(check_at / 1000));
  CHECK(pttl(session_key("s-1")) <= ended_ttl.count());
  CHECK_FALSE(exists(user_call_key("alice")));
  CHECK_FALSE(exists(user_call_key("bob")));
}

TEST_CASE_FIXTURE(call_store, "two instances checking at the same moment end the call once") {
  auto after_grace = check_at + reconnect_grace.count();
  for (int round = 0; round < race_rounds; ++round) {
    flush();
    server_up(server_1, instance_1);
    accepted("alice", "bob", "s-1");
    go_away("bob");
    REQUIRE(describe(run(check("s-1", check_at))) == list({"live", "accepted"}));

    auto [first, second] = at_once(check("s-1", after_grace), check("s-1", after_grace));
    CHECK(sorted({status_of(first), status_of(second)})
          == std::vector<std::string>{"ended", "gone"});
    auto& ended = status_of(first) == "ended" ? first : second;
    auto& gone = status_of(first) == "ended" ? second : first;
    CHECK(describe(ended) == list({"ended", "alice", "bob", "bob"}));
    CHECK(describe(gone) == list({"gone", "ended", "peer_disconnected"}));
    CHECK(field("s-1", "state") == "ended");
    CHECK(pttl(session_key("s-1")) <= ended_ttl.count());
    CHECK_FALSE(exists(user_call_key("alice")));
    CHECK_FALSE(exists(user_call_key("bob")));
  }
}

TEST_CASE_FIXTURE(call_store,
                  "a check on a vanished session answers gone without a state and writes "
                  "nothing") {
  server_up(server_1, instance_1);
  SUBCASE("it never existed") {
    // nop
  }
  SUBCASE("its ended record expired") {
    ringing("alice", "bob", "s-1");
    REQUIRE(outcome(hang_up("s-1", "alice")).status == outcome_status::ok);
    run({"DEL", session_key("s-1")});
  }
  SUBCASE("it expired while live") {
    accepted("alice", "bob", "s-1");
    del({session_key("s-1"), user_call_key("alice"), user_call_key("bob")});
  }
  CHECK(describe(run(check("s-1", check_at))) == list({"gone", "", ""}));
  CHECK_FALSE(exists(session_key("s-1")));
  CHECK_FALSE(exists(user_call_key("alice")));
  CHECK_FALSE(exists(user_call_key("bob")));
}

TEST_CASE_FIXTURE(call_store,
                  "a check after the end tells how the call ended and revives nothing") {
  server_up(server_1, instance_1);
  ringing("alice", "bob", "s-1");
  std::string state;
  std::string reason;
  SUBCASE("cancelled") {
    REQUIRE(outcome(hang_up("s-1", "alice")).status == outcome_status::ok);
    state = "ended";
    reason = "cancelled";
  }
  SUBCASE("rejected") {
    REQUIRE(outcome(reject("s-1", "bob")).status == outcome_status::ok);
    state = "rejected";
    reason = "rejected";
  }
  SUBCASE("timed out") {
    REQUIRE(outcome(ring_timeout("s-1")).status == outcome_status::ok);
    state = "ended";
    reason = "no_answer";
  }
  SUBCASE("hung up after the accept") {
    REQUIRE(outcome(accept("s-1", "bob")).status == outcome_status::ok);
    REQUIRE(outcome(hang_up("s-1", "bob")).status == outcome_status::ok);
    state = "ended";
    reason = "ended_by_user";
  }
  SUBCASE("a lost connection") {
    REQUIRE(outcome(accept("s-1", "bob")).status == outcome_status::ok);
    REQUIRE(outcome(disconnect("s-1", "alice")).status == outcome_status::ok);
    state = "ended";
    reason = "peer_disconnected";
  }
  // Even with a participant away, an ended call is not ended again.
  go_away("bob");
  CHECK(describe(run(check("s-1", check_at))) == list({"gone", state, reason}));
  CHECK(describe(run(check("s-1", check_at + reconnect_grace.count())))
        == list({"gone", state, reason}));
  CHECK(field("s-1", "state") == state);
  CHECK(field("s-1", "ended_reason") == reason);
  CHECK(field("s-1", "ended_at") == std::to_string(ended_at));
  CHECK(field("s-1", "away:callee") == absent);
  CHECK(pttl(session_key("s-1")) > 0);
  CHECK(pttl(session_key("s-1")) <= ended_ttl.count());
  CHECK_FALSE(exists(user_call_key("alice")));
  CHECK_FALSE(exists(user_call_key("bob")));
}

// -- heartbeat, server_leave -------------------------------------------------

TEST_CASE_FIXTURE(call_store, "an instance's heartbeat says who it is, for its TTL") {
  auto first = run(beat(server_1, instance_1));
  CHECK(first.type == reply::kind::string);
  CHECK(describe(first) == "");
  CHECK(server_field(server_1, "instance") == instance_1);
  CHECK(server_field(server_1, "version") == "1.2.0");
  CHECK(server_field(server_1, "started_at") == std::to_string(created_at));
  CHECK(server_field(server_1, "admin") == "127.0.0.1:9100");
  CHECK(pttl(server_key(server_1)) > 0);
  CHECK(pttl(server_key(server_1)) <= heartbeat_ttl.count());

  // The same run's next beat extends it and reports no takeover.
  shorten(server_key(server_1));
  CHECK(describe(run(beat(server_1, instance_1))) == "");
  CHECK(pttl(server_key(server_1)) > short_ttl.count());
  CHECK(server_field(server_1, "instance") == instance_1);

  // Another SERVER_ID has a heartbeat of its own.
  CHECK(describe(run(beat(server_2, instance_2))) == "");
  CHECK(server_field(server_1, "instance") == instance_1);
  CHECK(server_field(server_2, "instance") == instance_2);
}

TEST_CASE_FIXTURE(call_store,
                  "a restarted run of the same server id takes the heartbeat over and learns "
                  "the run it replaced") {
  server_up(server_1, instance_1);
  shorten(server_key(server_1));
  auto taken = run(
    goring::redis::heartbeat(server_1, restarted_1, heartbeat_ttl, "1.3.0", created_at + 60, ""));
  CHECK(describe(taken) == instance_1);
  CHECK(server_field(server_1, "instance") == restarted_1);
  CHECK(server_field(server_1, "version") == "1.3.0");
  CHECK(server_field(server_1, "started_at") == std::to_string(created_at + 60));
  CHECK(server_field(server_1, "admin") == "");
  CHECK(pttl(server_key(server_1)) > short_ttl.count());
  // From then on it is its own heartbeat.
  CHECK(describe(run(beat(server_1, restarted_1))) == "");
}

TEST_CASE_FIXTURE(call_store,
                  "an instance leaving removes its own heartbeat, never a later run's") {
  server_up(server_1, instance_1);
  SUBCASE("nobody took it over") {
    CHECK(status(leave(server_1, instance_1)) == "1");
    CHECK_FALSE(exists(server_key(server_1)));
    CHECK(status(leave(server_1, instance_1)) == "0");
  }
  SUBCASE("a restarted run took it over") {
    REQUIRE(describe(run(beat(server_1, restarted_1))) == instance_1);
    CHECK(status(leave(server_1, instance_1)) == "0");
    CHECK(server_field(server_1, "instance") == restarted_1);
    CHECK(pttl(server_key(server_1)) > 0);
    CHECK(status(leave(server_1, restarted_1)) == "1");
    CHECK_FALSE(exists(server_key(server_1)));
  }
  SUBCASE("another server id") {
    CHECK(status(leave(server_2, instance_2)) == "0");
    CHECK(server_field(server_1, "instance") == instance_1);
  }
}

// -- call_restore: after a failover ------------------------------------------

TEST_CASE_FIXTURE(call_store, "a call the new master lacks is written back from the actor's "
                              "copy, and its checks find it live") {
  accepted("alice", "bob", "s-1");
  // The failover: the new master never saw the call.
  del({session_key("s-1"), user_call_key("alice"), user_call_key("bob")});

  CHECK(status(restore("s-1")) == "restored");
  CHECK(field("s-1", "caller_id") == "alice");
  CHECK(field("s-1", "callee_id") == "bob");
  CHECK(field("s-1", "state") == "accepted");
  CHECK(field("s-1", "created_at") == std::to_string(created_at));
  CHECK(field("s-1", "accepted_at") == std::to_string(accepted_at));
  CHECK(field("s-1", "caller_info") == alice_info);
  CHECK(field("s-1", "callee_info") == bob_info);
  CHECK(value(user_call_key("alice")) == "s-1");
  CHECK(value(user_call_key("bob")) == "s-1");
  for (auto& key : {session_key("s-1"), user_call_key("alice"), user_call_key("bob")}) {
    CAPTURE(key);
    CHECK(pttl(key) > 0);
    CHECK(pttl(key) <= session_ttl.count());
  }
  CHECK(describe(run(check("s-1", check_at))) == list({"live", "accepted"}));
  // bob is busy again for a third caller, and the call ends as usual.
  go_online("carol");
  CHECK(status(start("carol", "bob", "s-2")) == "callee_busy");
  CHECK(outcome(hang_up("s-1", "bob")).status == outcome_status::ok);
}

TEST_CASE_FIXTURE(call_store, "a ringing call is written back ringing, without callee info") {
  ringing("alice", "bob", "s-1");
  del({session_key("s-1"), user_call_key("alice"), user_call_key("bob")});
  CHECK(status(restore("s-1", "ringing")) == "restored");
  CHECK(field("s-1", "state") == "ringing");
  CHECK(field("s-1", "callee_info") == absent);
  CHECK(field("s-1", "accepted_at") == absent);
  CHECK(outcome(accept("s-1", "bob")).status == outcome_status::ok);
}

TEST_CASE_FIXTURE(call_store, "a restore keeps what the new master has: a newer state, an "
                              "ended call, and writes back only a missing user key") {
  SUBCASE("the accept reached the new master, the actor still thinks ringing") {
    accepted("alice", "bob", "s-1");
    run({"DEL", user_call_key("bob")});
    CHECK(status(restore("s-1", "ringing")) == "kept");
    CHECK(field("s-1", "state") == "accepted");
    CHECK(field("s-1", "callee_info") == bob_info);
    CHECK(value(user_call_key("bob")) == "s-1");
  }
  SUBCASE("the call ended on the new master") {
    accepted("alice", "bob", "s-1");
    CHECK(outcome(hang_up("s-1", "alice")).status == outcome_status::ok);
    CHECK(status(restore("s-1")) == "kept");
    CHECK(field("s-1", "state") == "ended");
    CHECK_FALSE(exists(user_call_key("alice")));
    CHECK_FALSE(exists(user_call_key("bob")));
  }
}

TEST_CASE_FIXTURE(call_store, "a restore never brings back a call that a newer call of one "
                              "participant replaced") {
  accepted("alice", "bob", "s-1");
  del({session_key("s-1"), user_call_key("alice"), user_call_key("bob")});
  // While the call was lost, bob took another call.
  go_online("carol");
  REQUIRE(status(start("carol", "bob", "s-2")) == "ok");
  CHECK(status(restore("s-1")) == "taken");
  CHECK_FALSE(exists(session_key("s-1")));
  CHECK_FALSE(exists(user_call_key("alice")));
  CHECK(value(user_call_key("bob")) == "s-2");
  CHECK(describe(run(check("s-1", check_at))) == list({"gone", "", ""}));
}

TEST_CASE_FIXTURE(call_store, "both instances of a call restore it at the same moment: it is "
                              "written once") {
  for (int round = 0; round < race_rounds; ++round) {
    CAPTURE(round);
    flush();
    accepted("alice", "bob", "s-1");
    del({session_key("s-1"), user_call_key("alice"), user_call_key("bob")});
    auto [a, b] = at_once(restore("s-1"), restore("s-1"));
    CHECK(sorted({describe(a), describe(b)}) == std::vector<std::string>{"kept", "restored"});
    CHECK(field("s-1", "state") == "accepted");
  }
}

// -- EVALSHA -----------------------------------------------------------------

// Single only: a raw EVALSHA of claim_user in the one-server layout, whose
// two keys hash to two slots on a cluster (there cluster_runner loads every
// script on every master, and every case runs its steps by SHA).
TEST_CASE_FIXTURE(call_store,
                  "every script loads once and then runs by its SHA" * single_redis_only()) {
  using goring::redis::script;
  for (std::size_t i = 0; i < goring::redis::script_count; ++i) {
    auto id = static_cast<script>(i);
    CAPTURE(goring::redis::script_name(id));
    auto loaded = run({"SCRIPT", "LOAD", goring::redis::script_text(id)});
    CHECK(loaded.type == reply::kind::string);
    CHECK(loaded.str.size() == 40);
  }

  auto sha = run({"SCRIPT", "LOAD", goring::redis::script_text(script::claim_user)}).str;
  auto argv = goring::redis::eval_argv(
    goring::redis::claim_user("alice", token_of("alice"), presence_ttl), sha);
  REQUIRE(argv.size() == 9);
  CHECK(argv[0] == "EVALSHA");
  CHECK(argv[1] == sha);
  CHECK(argv[2] == "2");
  CHECK(argv[3] == keys::user("alice"));
  CHECK(argv[4] == keys::user_call("alice"));

  CHECK(describe(run(argv)) == list({""}));
  CHECK(value(user_key("alice")) == token_of("alice"));
  CHECK(describe(run(argv)) == list({token_of("alice")}));
}

// Single only: a raw EVALSHA of call_start, whose keys span several slots on
// a cluster; the case after this one is its Cluster twin.
TEST_CASE_FIXTURE(call_store,
                  "after a script cache flush EVALSHA answers NOSCRIPT" * single_redis_only()) {
  using goring::redis::script;
  auto sha = run({"SCRIPT", "LOAD", goring::redis::script_text(script::call_start)}).str;
  go_online("bob");
  auto call = goring::redis::call_start("alice", "bob", "s-1", created_at, session_ttl, alice_info);
  REQUIRE(describe(run({"SCRIPT", "FLUSH"})) == "OK");

  auto r = run(goring::redis::eval_argv(call, sha));
  REQUIRE(r.is_error());
  CHECK(r.str.rfind("NOSCRIPT", 0) == 0);
  auto out = goring::redis::parse_call_outcome(r);
  CHECK(out.status == outcome_status::error);
  CHECK(out.detail.rfind("NOSCRIPT", 0) == 0);
  CHECK_FALSE(exists(session_key("s-1")));

  // The server's answer to NOSCRIPT: load again and retry.
  REQUIRE(run({"SCRIPT", "LOAD", goring::redis::script_text(script::call_start)}).str == sha);
  CHECK(describe(run(goring::redis::eval_argv(call, sha))) == "ok");
  CHECK(field("s-1", "state") == "ringing");
}

TEST_CASE_FIXTURE(call_store, "after a script cache flush on every master each step sends its "
                              "text again and the call goes on"
                                * cluster_redis_only()) {
  // As after a failover to a master that never saw the scripts: each step
  // (by EVALSHA) hears NOSCRIPT and is sent once more as its text.
  go_online("alice");
  go_online("bob");
  REQUIRE(describe(run({"SCRIPT", "FLUSH"})) == "OK");
  CHECK(status(start("alice", "bob", "s-1")) == "ok");
  CHECK(field("s-1", "state") == "ringing");
  CHECK(value(user_call_key("alice")) == "s-1");
  CHECK(value(user_call_key("bob")) == "s-1");
  REQUIRE(describe(run({"SCRIPT", "FLUSH"})) == "OK");
  CHECK(outcome(accept("s-1", "bob")).status == outcome_status::ok);
  REQUIRE(describe(run({"SCRIPT", "FLUSH"})) == "OK");
  CHECK(outcome(hang_up("s-1", "alice")).detail == "ended_by_user");
  CHECK(field("s-1", "state") == "ended");
  CHECK_FALSE(exists(user_call_key("alice")));
  CHECK_FALSE(exists(user_call_key("bob")));
}

// -- webhook events: written in the same step as each transition ------------

namespace {

using goring::redis::event_log;

constexpr long long event_ms = created_at * 1000 + 250;
constexpr millis offline_ring{45'000};

const event_log events{std::string{keys::webhook_stream}, event_ms};

/// The stream a session's events land in: the one stream on one Redis, its
/// partition's on a cluster (the steps rename `events.stream` there).
std::string stream_of(const call_store& store, const std::string& session_id) {
  return store.on_cluster() ? keys::tagged_webhook_stream(session_id)
                            : std::string{keys::webhook_stream};
}

/// The entries of session_id's stream as field maps, in stream order.
std::vector<std::map<std::string, std::string>> stream_events(call_store& store,
                                                              const std::string& session_id) {
  std::vector<std::map<std::string, std::string>> out;
  auto r = store.run({"XRANGE", stream_of(store, session_id), "-", "+"});
  for (auto& entry : r.elements) {
    std::map<std::string, std::string> fields;
    auto& pairs = entry.elements[1].elements;
    for (std::size_t i = 0; i + 1 < pairs.size(); i += 2)
      fields[pairs[i].str] = pairs[i + 1].str;
    out.push_back(std::move(fields));
  }
  return out;
}

std::vector<std::string> types_of(const std::vector<std::map<std::string, std::string>>& evs) {
  std::vector<std::string> out;
  for (auto& e : evs)
    out.push_back(e.at("type"));
  return out;
}

script_call start_with_events(const std::string& caller, const std::string& callee,
                              const std::string& session_id, millis ring = millis{0}) {
  return goring::redis::call_start(caller, callee, session_id, created_at, session_ttl, alice_info,
                                   events, ring);
}

} // namespace

TEST_CASE_FIXTURE(call_store, "without the event stream key no script writes an event") {
  accepted("alice", "bob", "s-1");
  REQUIRE(outcome(hang_up("s-1", "alice")).status == outcome_status::ok);
  CHECK_FALSE(exists(stream_of(*this, "s-1")));
}

// On a cluster, as the two after it, each event lands in the stream of the
// session's partition, in the same step as the transition.
TEST_CASE_FIXTURE(call_store, "a whole call writes started, accepted and ended, in order, with "
                              "the duration from the accept") {
  go_online("alice");
  go_online("bob");
  REQUIRE(status(start_with_events("alice", "bob", "s-1")) == "ok");
  REQUIRE(outcome(goring::redis::call_accept("s-1", "bob", session_ttl, bob_info, accepted_at,
                                             {events.stream, event_ms + 1000}))
            .status
          == outcome_status::ok);
  REQUIRE(outcome(goring::redis::call_end("s-1", "alice", ended_ttl, ended_at, false,
                                          {events.stream, event_ms + 8000}))
            .status
          == outcome_status::ok);
  auto evs = stream_events(*this, "s-1");
  REQUIRE(types_of(evs) == std::vector<std::string>{"call.started", "call.accepted", "call.ended"});
  for (auto& e : evs) {
    CHECK(e.at("session_id") == "s-1");
    CHECK(e.at("caller_id") == "alice");
    CHECK(e.at("callee_id") == "bob");
  }
  CHECK(evs[0].at("created_at") == std::to_string(event_ms));
  CHECK(evs[0].at("caller_info") == alice_info);
  CHECK(evs[1].at("callee_info") == bob_info);
  CHECK(evs[2].at("reason") == "ended_by_user");
  CHECK(evs[2].at("duration_ms") == "7000");
}

TEST_CASE_FIXTURE(call_store, "reject, cancel, timeout and a lost participant each write their "
                              "event, a refused transition writes none") {
  std::string expected_type = "call.ended";
  std::string expected_reason;
  go_online("alice");
  go_online("bob");
  REQUIRE(status(start_with_events("alice", "bob", "s-1")) == "ok");
  SUBCASE("rejected") {
    REQUIRE(outcome(goring::redis::call_reject("s-1", "bob", ended_ttl, ended_at, events)).status
            == outcome_status::ok);
    expected_type = "call.rejected";
  }
  SUBCASE("cancelled") {
    REQUIRE(
      outcome(goring::redis::call_end("s-1", "alice", ended_ttl, ended_at, false, events)).status
      == outcome_status::ok);
    expected_reason = "cancelled";
  }
  SUBCASE("no answer") {
    REQUIRE(outcome(goring::redis::call_timeout("s-1", ended_ttl, ended_at, events)).status
            == outcome_status::ok);
    expected_reason = "no_answer";
  }
  SUBCASE("peer disconnected") {
    go_away("bob");
    auto r = run(goring::redis::call_check("s-1", session_ttl, check_at, millis{0}, ended_ttl, "",
                                           "", events.stream));
    REQUIRE(status_of(r) == "ended");
    expected_reason = "peer_disconnected";
  }
  // A second end is refused and writes nothing more.
  CHECK(outcome(goring::redis::call_end("s-1", "bob", ended_ttl, ended_at, false, events)).status
        == outcome_status::invalid_state);
  auto evs = stream_events(*this, "s-1");
  REQUIRE(types_of(evs) == std::vector<std::string>{"call.started", expected_type});
  if (!expected_reason.empty()) {
    CHECK(evs[1].at("reason") == expected_reason);
    CHECK(evs[1].at("duration_ms") == "0");
  }
}

TEST_CASE_FIXTURE(call_store, "an offline callee rings when the offline ring is on: "
                              "callee.offline with when the ring expires") {
  go_online("alice");
  SUBCASE("off: offline, nothing written") {
    CHECK(status(start_with_events("alice", "bob", "s-1")) == "offline");
    CHECK_FALSE(exists(session_key("s-1")));
    CHECK_FALSE(exists(stream_of(*this, "s-1")));
  }
  SUBCASE("on without the stream: offline") {
    CHECK(status(goring::redis::call_start("alice", "bob", "s-1", created_at, session_ttl,
                                           alice_info, {}, offline_ring))
          == "offline");
    CHECK_FALSE(exists(session_key("s-1")));
  }
  SUBCASE("on") {
    CHECK(status(start_with_events("alice", "bob", "s-1", offline_ring)) == "offline_ring");
    CHECK(field("s-1", "state") == "ringing");
    CHECK(field("s-1", "offline_ring") == "1");
    auto expires = std::to_string(event_ms + offline_ring.count());
    CHECK(field("s-1", "ring_expires_at") == expires);
    CHECK(value(user_call_key("bob")) == "s-1");
    auto evs = stream_events(*this, "s-1");
    REQUIRE(types_of(evs) == std::vector<std::string>{"call.started", "callee.offline"});
    CHECK(evs[1].at("caller_info") == alice_info);
    CHECK(evs[1].at("ring_expires_at") == expires);

    // A second caller meanwhile finds bob busy.
    go_online("carol");
    CHECK(status(start_with_events("carol", "bob", "s-2", offline_ring)) == "callee_busy");

    // Checks do not end the call for the callee's absence while it rings.
    for (long long at : {check_at, check_at + 2 * reconnect_grace.count()})
      CHECK(status_of(run(goring::redis::call_check("s-1", session_ttl, at, reconnect_grace,
                                                    ended_ttl, "", "", events.stream)))
            == "live");

    // bob connects: his claim says the call rang him offline.
    CHECK(describe(run(claim("bob", token_of("bob"))))
          == list({"", "s-1", "alice", "bob", "ringing", alice_info, "", "1",
                   std::to_string(event_ms + offline_ring.count())}));
  }
}
