/// redis::cluster_topology against a real six-node Redis Cluster on
/// loopback (tests/support/redis_cluster): routing over three masters,
/// MOVED after a slot moved, ASK during a migration, sharded pub/sub across
/// shards and after a slot move, a master killed with SIGKILL, and a
/// bounded number of connections. Each test case starts its own cluster.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "redis/cluster_keys.hpp"
#include "redis/cluster_topology.hpp"
#include "redis/keys.hpp"
#include "tests/support/process.hpp"
#include "tests/support/redis_cluster.hpp"
#include "tests/support/sentinel_set.hpp"

namespace {

using namespace std::chrono_literals;
using goring::redis::cluster_topology;
using goring::redis::endpoint;
using goring::redis::link_role;
using goring::redis::reply;
using goring::test::redis_cluster;
using goring::test::redis_server;
using goring::test::wait_until;
using kind = goring::redis::reply::kind;
namespace cluster = goring::redis::cluster;

/// An io_context run by three threads, as in the server.
class io_runner {
public:
  io_runner() {
    for (int i = 0; i < 3; ++i)
      threads_.emplace_back([this] { io_.run(); });
  }
  ~io_runner() {
    guard_.reset();
    io_.stop();
    for (auto& t : threads_)
      t.join();
  }
  boost::asio::io_context& io() {
    return io_;
  }

private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_ =
    boost::asio::make_work_guard(io_);
  std::vector<std::thread> threads_;
};

/// What a topology reported, for the test to wait on.
struct recorder {
  std::mutex m;
  std::condition_variable changed;
  int commands_up = 0;
  int commands_up_moved = 0;
  int subscriber_up = 0;
  int failovers = 0;
  bool commands_healthy = false;
  bool subscriber_healthy = false;
  std::vector<std::pair<std::string, std::string>> messages;

  goring::redis::topology_events events() {
    goring::redis::topology_events e;
    e.on_up = [this](link_role role, bool moved) {
      update([&] {
        if (role == link_role::commands) {
          ++commands_up;
          commands_up_moved += moved ? 1 : 0;
          commands_healthy = true;
        } else {
          ++subscriber_up;
          subscriber_healthy = true;
        }
      });
    };
    e.on_down = [this](link_role role, const std::string&) {
      update(
        [&] { (role == link_role::commands ? commands_healthy : subscriber_healthy) = false; });
    };
    e.on_failover = [this] { update([&] { ++failovers; }); };
    e.on_message = [this](const std::string& channel, const std::string& payload) {
      update([&] { messages.emplace_back(channel, payload); });
    };
    return e;
  }

  template <class F>
  void update(F f) {
    std::lock_guard<std::mutex> lock{m};
    f();
    changed.notify_all();
  }

  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds timeout = 20s) {
    std::unique_lock<std::mutex> lock{m};
    return changed.wait_for(lock, timeout, pred);
  }

  bool got(const std::string& channel, const std::string& payload,
           std::chrono::milliseconds timeout = 10s) {
    return wait(
      [&] {
        for (auto& [c, p] : messages)
          if (c == channel && p == payload)
            return true;
        return false;
      },
      timeout);
  }
};

endpoint named(const std::string& name) {
  endpoint e;
  e.client_name = "goring:test:" + name;
  return e;
}

std::unique_ptr<cluster_topology> make(io_runner& io, redis_cluster& c, recorder& rec,
                                       const std::string& id = "a", const std::string& user = {},
                                       const std::string& password = {}) {
  cluster_topology::options opts;
  // One seed is enough; the map names the rest.
  endpoint seed;
  seed.port = c.nodes()[0]->port();
  opts.seeds.push_back(seed);
  opts.commands = named(id + ":commands");
  opts.subscriber = named(id + ":subscriber");
  opts.control = named(id + ":cluster");
  for (auto* e : {&opts.commands, &opts.subscriber, &opts.control}) {
    e->username = user;
    e->password = password;
  }
  auto t = std::make_unique<cluster_topology>(io.io(), std::move(opts), rec.events());
  t->start();
  return t;
}

bool healthy(recorder& rec) {
  return rec.wait([&] { return rec.commands_healthy && rec.subscriber_healthy; });
}

reply call(cluster_topology& t, std::vector<std::string> argv) {
  auto promise = std::make_shared<std::promise<reply>>();
  auto future = promise->get_future();
  t.command(std::move(argv), [promise](reply r) { promise->set_value(std::move(r)); });
  REQUIRE(future.wait_for(10s) == std::future_status::ready);
  return future.get();
}

reply subscribe(cluster_topology& t, std::vector<std::string> channels) {
  auto promise = std::make_shared<std::promise<reply>>();
  auto future = promise->get_future();
  t.subscribe(std::move(channels), [promise](reply r) { promise->set_value(std::move(r)); });
  REQUIRE(future.wait_for(10s) == std::future_status::ready);
  return future.get();
}

/// A key named `prefix` + n whose slot `master` serves now.
std::string key_on(redis_cluster& c, redis_server& master, const std::string& prefix) {
  auto ranges = c.slots();
  for (int n = 0; n < 100000; ++n) {
    auto key = prefix + std::to_string(n);
    auto slot = cluster::key_slot(key);
    for (auto& r : ranges)
      if (r.first <= slot && slot <= r.last && r.master_port == master.port())
        return key;
  }
  FAIL("no key found for " << master.addr());
  return {};
}

/// Whether `server` holds `key` (asked directly, no redirect followed).
std::string value_on(redis_server& server, const std::string& key) {
  auto r = server.run({"GET", key});
  return r.type == kind::string ? r.str : "(" + r.str + ")";
}

/// How many `kind` error replies (MOVED, ASK) `server` has sent so far.
long long errors_sent(redis_server& server, const std::string& kind) {
  auto text = goring::test::info_value(server, "errorstats", "errorstat_" + kind);
  return text.rfind("count=", 0) == 0 ? std::stoll(text.substr(6)) : 0;
}

long long shard_subscribers(redis_server& server, const std::string& channel) {
  auto r = server.run({"PUBSUB", "SHARDNUMSUB", channel});
  return r.type == kind::array && r.elements.size() == 2 ? r.elements[1].integer : -1;
}

TEST_CASE("the harness makes a six-node cluster whose slots match ours") {
  redis_cluster c;
  CHECK(c.nodes().size() == 6);
  CHECK(c.masters().size() == 3);
  CHECK(c.seeds().size() == 6);
  int replicas = 0;
  for (auto* n : c.nodes())
    if (goring::test::info_value(*n, "replication", "role") == "slave") {
      ++replicas;
      CHECK(goring::test::info_value(*n, "replication", "master_link_status") == "up");
    }
  CHECK(replicas == 3);
  // Our CRC16 and tag rule against the server's own CLUSTER KEYSLOT.
  for (std::string key : {"foo", "bar", "hello", "{user1000}.following", "foo{}{bar}",
                          "foo{{bar}}zap", "ws:user:alice"})
    CHECK(c.keyslot(key) == cluster::key_slot(key));
  for (std::string id : {"a}b{c", "}", "{", "", "%7D", "alice"}) {
    CAPTURE(id);
    auto slot = c.keyslot(cluster::user_key(goring::redis::keys::user_prefix, id));
    CHECK(slot == cluster::key_slot(cluster::user_key(goring::redis::keys::user_prefix, id)));
    CHECK(slot == c.keyslot(cluster::user_key(goring::redis::keys::user_call_prefix, id)));
    CHECK(slot == c.keyslot(cluster::user_key(goring::redis::keys::signal_prefix, id)));
  }
}

TEST_CASE("commands reach the master of their key's slot, on all three masters") {
  redis_cluster c;
  io_runner io;
  recorder rec;
  auto t = make(io, c, rec);
  REQUIRE(healthy(rec));
  CHECK(t->describe().find("cluster of 3 masters") == 0);
  auto masters = c.masters();
  REQUIRE(masters.size() == 3);
  for (auto* m : masters) {
    auto key = key_on(c, *m, "route:");
    CAPTURE(key);
    CHECK(call(*t, {"SET", key, "on " + m->addr()}).str == "OK");
    CHECK(call(*t, {"GET", key}).str == "on " + m->addr());
    CHECK(value_on(*m, key) == "on " + m->addr());
    // A script by its first key.
    auto r = call(*t, {"EVAL", "return redis.call('GET', KEYS[1])", "1", key});
    CHECK(r.str == "on " + m->addr());
  }
  // SCRIPT LOAD reaches every master, so EVALSHA finds it anywhere.
  auto sha = call(*t, {"SCRIPT", "LOAD", "return KEYS[1]"});
  REQUIRE(sha.type == kind::string);
  for (auto* m : masters) {
    auto exists = m->run({"SCRIPT", "EXISTS", sha.str});
    REQUIRE(exists.type == kind::array);
    CHECK(exists.elements[0].integer == 1);
    auto key = key_on(c, *m, "sha:");
    CHECK(call(*t, {"EVALSHA", sha.str, "1", key}).str == key);
  }
  // Keys of two slots in one command: Redis says so, we do not hide it.
  auto cross = call(*t, {"MGET", key_on(c, *masters[0], "x:"), key_on(c, *masters[1], "x:")});
  CHECK(cross.is_error());
  CHECK(cross.str.find("CROSSSLOT") == 0);
  t->stop();
}

TEST_CASE("a slot moved to another master answers MOVED, and the topology follows it") {
  redis_cluster c;
  io_runner io;
  recorder rec;
  auto t = make(io, c, rec);
  REQUIRE(healthy(rec));
  auto masters = c.masters();
  auto& from = *masters[0];
  auto& to = *masters[1];
  auto key = key_on(c, from, "moving:");
  auto slot = cluster::key_slot(key);
  REQUIRE(call(*t, {"SET", key, "v1"}).str == "OK");
  c.move_slot(slot, from, to);
  REQUIRE(c.master_of(slot) == &to);
  // The topology still routes to `from`, which answers MOVED.
  CHECK(from.run({"GET", key}).str.find("MOVED") == 0);
  auto moved_before = errors_sent(from, "MOVED");
  CHECK(call(*t, {"GET", key}).str == "v1");
  CHECK(errors_sent(from, "MOVED") == moved_before + 1);
  CHECK(call(*t, {"SET", key, "v2"}).str == "OK");
  CHECK(value_on(to, key) == "v2");
  // And the map it learnt sends the slot's other keys straight there.
  auto sibling = "{" + std::string(cluster::hashed_part(key)) + "}:sibling";
  REQUIRE(cluster::key_slot(sibling) == slot);
  CHECK(call(*t, {"SET", sibling, "s"}).str == "OK");
  CHECK(value_on(to, sibling) == "s");
  CHECK(errors_sent(from, "MOVED") == moved_before + 1);
  t->stop();
}

TEST_CASE("during a migration ASK sends a command to the importing master") {
  redis_cluster c;
  io_runner io;
  recorder rec;
  auto t = make(io, c, rec);
  REQUIRE(healthy(rec));
  auto masters = c.masters();
  auto& from = *masters[1];
  auto& to = *masters[2];
  auto base = key_on(c, from, "asked:");
  auto tag = std::string(cluster::hashed_part(base));
  auto slot = cluster::key_slot(base);
  auto moved = "{" + tag + "}:moved";
  auto stays = "{" + tag + "}:stays";
  auto fresh = "{" + tag + "}:fresh";
  REQUIRE(call(*t, {"SET", moved, "m"}).str == "OK");
  REQUIRE(call(*t, {"SET", stays, "s"}).str == "OK");
  c.begin_migration(slot, from, to);
  c.migrate_key(moved, from, to);
  CHECK(from.run({"GET", moved}).str.find("ASK") == 0);
  // Still on `from`: answered there; already on `to`: ASK, then ASKING + GET there.
  CHECK(call(*t, {"GET", stays}).str == "s");
  auto asks_before = errors_sent(from, "ASK");
  CHECK(call(*t, {"GET", moved}).str == "m");
  CHECK(errors_sent(from, "ASK") == asks_before + 1);
  // A new key of a migrating slot is made on the importing master.
  CHECK(call(*t, {"SET", fresh, "f"}).str == "OK");
  auto count = to.run({"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)});
  CHECK(count.integer == 2);
  // ASK moves nothing in the map: the slot is still `from`'s until the end.
  c.finish_migration(slot, from, to);
  for (auto& [k, v] :
       std::map<std::string, std::string>{{moved, "m"}, {stays, "s"}, {fresh, "f"}}) {
    CHECK(call(*t, {"GET", k}).str == v);
    CHECK(value_on(to, k) == v);
  }
  t->stop();
}

TEST_CASE("sharded pub/sub reaches subscribers on every shard, published from another instance") {
  redis_cluster c;
  io_runner io;
  recorder sub_rec, pub_rec;
  auto subscriber = make(io, c, sub_rec, "sub");
  auto publisher = make(io, c, pub_rec, "pub");
  REQUIRE(healthy(sub_rec));
  REQUIRE(healthy(pub_rec));
  std::vector<std::string> channels;
  for (auto* m : c.masters())
    for (int i = 0; i < 3; ++i)
      channels.push_back(
        key_on(c, *m, goring::redis::keys::signal("user" + std::to_string(i) + "-")));
  auto r = subscribe(*subscriber, channels);
  CHECK_FALSE(r.is_error());
  for (auto& ch : channels) {
    CAPTURE(ch);
    auto* owner = c.master_of(cluster::key_slot(ch));
    REQUIRE(owner != nullptr);
    CHECK(shard_subscribers(*owner, ch) == 1);
    // PUBLISH goes out as SPUBLISH to the channel's shard.
    auto n = call(*publisher, {"PUBLISH", ch, "hello " + ch});
    CHECK(n.type == kind::integer);
    CHECK(n.integer == 1);
    CHECK(sub_rec.got(ch, "hello " + ch));
  }
  // Unsubscribed: nobody listens on its shard any more.
  subscriber->unsubscribe({channels[0]});
  auto* owner = c.master_of(cluster::key_slot(channels[0]));
  CHECK(wait_until([&] { return shard_subscribers(*owner, channels[0]) == 0; }, 5s));
  subscriber->stop();
  publisher->stop();
}

TEST_CASE("a subscribe() of channels whose SSUBSCRIBE is already on its way answers once they "
          "listen") {
  // What the bridge meets after a reconnect: the topology's own resync has
  // sent the channels' SSUBSCRIBE, and the bridge subscribes them again and
  // publishes its probe in the answer. An answer before the confirmation
  // let the probe overtake the SSUBSCRIBE and be lost (bench/cluster-failover.sh).
  // Here the first subscribe() plays the resync, on a master that holds
  // every command (CLIENT PAUSE) so that its SSUBSCRIBE stays unconfirmed:
  // the second finds the channel on its way and must not answer before the
  // master goes on, and in its answer the master counts a subscriber.
  redis_cluster c;
  io_runner io;
  recorder rec;
  auto t = make(io, c, rec);
  REQUIRE(healthy(rec));
  for (auto* m : c.masters()) {
    auto channel = key_on(c, *m, "ws:on-its-way-");
    auto first = std::make_shared<std::promise<reply>>();
    auto second = std::make_shared<std::promise<reply>>();
    REQUIRE(m->run({"CLIENT", "PAUSE", "5000", "ALL"}).type == kind::status);
    t->subscribe({channel}, [first](reply r) { first->set_value(std::move(r)); });
    t->subscribe({channel}, [second](reply r) { second->set_value(std::move(r)); });
    auto answer = second->get_future();
    // Long enough for an answer that does not wait to arrive.
    CHECK(answer.wait_for(300ms) == std::future_status::timeout);
    REQUIRE(m->run({"CLIENT", "UNPAUSE"}).type == kind::status);
    REQUIRE(answer.wait_for(10s) == std::future_status::ready);
    CHECK_FALSE(answer.get().is_error());
    auto count = m->run({"PUBSUB", "SHARDNUMSUB", channel});
    REQUIRE(count.elements.size() == 2);
    CHECK(count.elements[1].integer == 1);
    auto done = first->get_future();
    REQUIRE(done.wait_for(10s) == std::future_status::ready);
    CHECK_FALSE(done.get().is_error());
  }
  t->stop();
}

TEST_CASE("a channel whose slot moves is subscribed again on its new master") {
  redis_cluster c;
  io_runner io;
  recorder rec;
  auto t = make(io, c, rec);
  REQUIRE(healthy(rec));
  auto masters = c.masters();
  auto& from = *masters[0];
  auto& to = *masters[2];
  auto channel = key_on(c, from, "ws:signal:mover-");
  auto other = key_on(c, from, "ws:signal:stayer-");
  auto slot = cluster::key_slot(channel);
  REQUIRE(cluster::key_slot(other) != slot);
  REQUIRE_FALSE(subscribe(*t, {channel, other}).is_error());
  REQUIRE(shard_subscribers(from, channel) == 1);
  c.move_slot(slot, from, to);
  // `from` dropped it (a sunsubscribe push); the topology subscribes on `to`.
  CHECK(wait_until([&] { return shard_subscribers(to, channel) == 1; }, 10s));
  CHECK(shard_subscribers(from, other) == 1);
  auto n = to.run({"SPUBLISH", channel, "after the move"});
  CHECK(n.integer == 1);
  CHECK(rec.got(channel, "after the move"));
  CHECK(from.run({"SPUBLISH", other, "still here"}).integer == 1);
  CHECK(rec.got(other, "still here"));
  t->stop();
}

TEST_CASE("subscribing a channel whose slot moved unnoticed follows MOVED to its new master") {
  redis_cluster c;
  io_runner io;
  recorder rec;
  auto t = make(io, c, rec);
  REQUIRE(healthy(rec));
  auto masters = c.masters();
  auto& from = *masters[1];
  auto& to = *masters[0];
  auto channel = key_on(c, from, "ws:signal:late-");
  c.move_slot(cluster::key_slot(channel), from, to);
  // Unless a periodic refresh came first, the map still names `from`,
  // which answers the SSUBSCRIBE with MOVED; either way the caller gets
  // success, not the redirect.
  auto r = subscribe(*t, {channel});
  CHECK_FALSE(r.is_error());
  CHECK(shard_subscribers(to, channel) == 1);
  CHECK(shard_subscribers(from, channel) == 0);
  CHECK(to.run({"SPUBLISH", channel, "found"}).integer == 1);
  CHECK(rec.got(channel, "found"));
  t->stop();
}

TEST_CASE("a master killed with SIGKILL: its replica takes over, commands and channels resume") {
  redis_cluster c;
  io_runner io;
  recorder rec;
  auto t = make(io, c, rec);
  REQUIRE(healthy(rec));
  auto masters = c.masters();
  auto& victim = *masters[1];
  auto key = key_on(c, victim, "survivor:");
  auto channel = key_on(c, victim, "ws:signal:survivor-");
  auto elsewhere = key_on(c, *masters[0], "bystander:");
  REQUIRE(call(*t, {"SET", key, "before"}).str == "OK");
  REQUIRE(call(*t, {"SET", elsewhere, "b"}).str == "OK");
  REQUIRE_FALSE(subscribe(*t, {channel}).is_error());
  // The write must reach the replica before the kill, or it is lost with it.
  redis_server* replica = nullptr;
  for (auto* n : c.nodes())
    if (goring::test::info_value(*n, "replication", "role") == "slave"
        && goring::test::info_value(*n, "replication", "master_port")
             == std::to_string(victim.port()))
      replica = n;
  REQUIRE(replica != nullptr);
  REQUIRE(replica->run({"READONLY"}).str == "OK");
  REQUIRE(wait_until([&] { return value_on(*replica, key) == "before"; }, 10s));
  int ups_before = 0;
  rec.update([&] { ups_before = rec.commands_up; });

  auto* successor = c.kill_master(victim);
  REQUIRE_MESSAGE(successor != nullptr, "the replica did not take over within 30 s");
  CHECK(successor != &victim);
  // The topology sees the new map, calls it a failover, and is up again.
  CHECK(rec.wait([&] {
    return rec.failovers >= 1 && rec.commands_up > ups_before && rec.commands_up_moved >= 1
           && rec.commands_healthy && rec.subscriber_healthy;
  }));
  CHECK(call(*t, {"GET", key}).str == "before");
  CHECK(call(*t, {"SET", key, "after"}).str == "OK");
  CHECK(value_on(*successor, key) == "after");
  CHECK(call(*t, {"GET", elsewhere}).str == "b");
  CHECK(t->describe().find(successor->addr()) != std::string::npos);
  CHECK(t->describe().find(victim.addr()) == std::string::npos);
  // The channel is subscribed again on the new master of its slot.
  CHECK(wait_until([&] { return shard_subscribers(*successor, channel) == 1; }, 10s));
  CHECK(call(*t, {"PUBLISH", channel, "after the failover"}).integer == 1);
  CHECK(rec.got(channel, "after the failover"));
  t->stop();
}

TEST_CASE("connections stay two per master plus one, whatever the traffic") {
  redis_cluster c;
  io_runner io;
  recorder rec;
  auto t = make(io, c, rec, "bounded");
  REQUIRE(healthy(rec));
  std::vector<std::string> channels;
  for (int i = 0; i < 300; ++i)
    channels.push_back(goring::redis::keys::signal("user" + std::to_string(i)));
  REQUIRE_FALSE(subscribe(*t, channels).is_error());
  // 3000 commands in flight at once, over keys on every master.
  std::atomic<int> done{0}, errors{0};
  for (int i = 0; i < 3000; ++i)
    t->command({"SET", "bulk:" + std::to_string(i), "x"}, [&](reply r) {
      errors += r.is_error() ? 1 : 0;
      ++done;
    });
  REQUIRE(wait_until([&] { return done == 3000; }, 20s));
  CHECK(errors == 0);
  CHECK(t->connection_count() == 2 * 3 + 1);
  std::map<std::string, int> per_role;
  for (auto* m : c.masters()) {
    std::map<std::string, int> here;
    for (auto& name : goring::test::client_names(*m))
      if (name.rfind("goring:test:bounded:", 0) == 0)
        ++here[name];
    CAPTURE(m->addr());
    CHECK(here["goring:test:bounded:commands"] == 1);
    CHECK(here["goring:test:bounded:subscriber"] == 1);
    for (auto& [name, count] : here)
      per_role[name] += count;
  }
  CHECK(per_role["goring:test:bounded:commands"] == 3);
  CHECK(per_role["goring:test:bounded:subscriber"] == 3);
  t->stop();
}

TEST_CASE("every connection logs in as the configured ACL user, as with a single Redis") {
  redis_cluster c{{"--user", "goring", "on", ">cluster-secret", "~*", "&*", "+@all"}};
  io_runner io;
  recorder wrong_rec;
  auto wrong = make(io, c, wrong_rec, "wrong", "goring", "not-the-secret");
  recorder rec;
  auto t = make(io, c, rec, "auth", "goring", "cluster-secret");
  REQUIRE(healthy(rec));
  auto key = key_on(c, *c.masters()[0], "auth:");
  CHECK(call(*t, {"SET", key, "v"}).str == "OK");
  REQUIRE_FALSE(subscribe(*t, {goring::redis::keys::signal("auth-user")}).is_error());
  int ours = 0;
  for (auto* n : c.nodes()) {
    auto list = n->run({"CLIENT", "LIST"});
    std::istringstream lines{list.str};
    std::string line;
    while (std::getline(lines, line)) {
      if (line.find(" name=goring:test:auth:") == std::string::npos)
        continue;
      ++ours;
      CAPTURE(line);
      CHECK(line.find(" user=goring ") != std::string::npos);
    }
  }
  CHECK(ours == 2 * 3 + 1);
  // A wrong password never gets a slot map, so it never says it is up.
  CHECK_FALSE(wrong_rec.wait([&] { return wrong_rec.commands_healthy; }, 1500ms));
  CHECK(wrong->describe().find("no slot map yet") != std::string::npos);
  wrong->stop();
  t->stop();
}

} // namespace
