/// Redis Cluster key hashing without a server: CRC16, slots and hash tags
/// against values from the Cluster specification, the user tag rule, and
/// how commands are routed. cluster_topology_redis_test checks the same
/// slots against a real CLUSTER KEYSLOT.
#include <doctest/doctest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "redis/cluster_keys.hpp"
#include "redis/keys.hpp"

namespace {

namespace cluster = goring::redis::cluster;
using cluster::route_kind;

TEST_CASE("crc16 is the XMODEM form the Cluster specification names") {
  CHECK(cluster::crc16("123456789") == 0x31C3);
  CHECK(cluster::crc16("") == 0);
}

TEST_CASE("slots of plain keys match the Cluster specification and tutorial") {
  CHECK(cluster::key_slot("foo") == 12182);
  CHECK(cluster::key_slot("bar") == 5061);
  CHECK(cluster::key_slot("hello") == 866);
  CHECK(cluster::key_slot("123456789") == (0x31C3 & 16383));
}

TEST_CASE("the hash tag rule: first '{', first '}' after it, not empty") {
  CHECK(cluster::hashed_part("{user1000}.following") == "user1000");
  CHECK(cluster::hashed_part("foo{}{bar}") == "foo{}{bar}");
  CHECK(cluster::hashed_part("foo{{bar}}zap") == "{bar");
  CHECK(cluster::hashed_part("foo{bar}{zap}") == "bar");
  CHECK(cluster::hashed_part("no braces") == "no braces");
  CHECK(cluster::hashed_part("open{only") == "open{only");
  CHECK(cluster::hashed_part("}{x}") == "x");
  CHECK(cluster::key_slot("{user1000}.following") == cluster::key_slot("{user1000}.followers"));
  CHECK(cluster::key_slot("a{foo}b") == cluster::key_slot("foo"));
}

TEST_CASE("user tags hold no brace, are never empty, and keep ordinary ids readable") {
  CHECK(cluster::user_tag("alice") == "alice");
  CHECK(cluster::user_tag("6217138344386500") == "6217138344386500");
  CHECK(cluster::user_tag("a}b{c") == "a%7Db%7Bc");
  CHECK(cluster::user_tag("}") == "%7D");
  CHECK(cluster::user_tag("{") == "%7B");
  CHECK(cluster::user_tag("%") == "%25");
  CHECK(cluster::user_tag("") == "%");
  CHECK(cluster::user_key("ws:user:", "a}b{c") == "ws:user:{a%7Db%7Bc}");
}

/// Ids an app could hand out, picked to attack the rule: braces, escapes
/// written out by hand, the empty id, bytes that are not UTF-8.
std::vector<std::string> hostile_ids() {
  return {"",          "%",     "%%",     "{",       "}",           "{}",
          "}{",        "a}b{c", "a",      "a{",      "a}",          "{a}",
          "%7B",       "%7D",   "%25",    "%7Ba%7D", "a%7Db%7Bc",   "{a}b",
          "b{a}",      "alice", "alice}", "{alice}", "%7Balice%7D", std::string("\0}", 2),
          "\xff{\xfe", "{{}}",  "}}{{"};
}

TEST_CASE("every key of one user hashes its tag, whatever the id holds") {
  for (auto& id : hostile_ids()) {
    CAPTURE(id);
    auto tag = cluster::user_tag(id);
    CHECK(tag.find('{') == std::string::npos);
    CHECK(tag.find('}') == std::string::npos);
    CHECK_FALSE(tag.empty());
    for (auto prefix : {goring::redis::keys::user_prefix, goring::redis::keys::user_call_prefix,
                        goring::redis::keys::signal_prefix}) {
      auto key = cluster::user_key(prefix, id);
      CHECK(cluster::hashed_part(key) == tag);
      // Whatever a later layout appends after the tag.
      CHECK(cluster::hashed_part(key + ":x}{y}") == tag);
      CHECK(cluster::key_slot(key) == cluster::key_slot(cluster::user_key("ws:user:", id)));
    }
  }
}

TEST_CASE("two ids never hash the same string") {
  std::set<std::string> tags;
  auto ids = hostile_ids();
  for (auto& id : ids)
    tags.insert(cluster::user_tag(id));
  CHECK(tags.size() == ids.size());
  // The naive tag ("{" id "}") fails exactly here: "a}b{c" would hash as
  // "a", and "}" would hash its whole key, a different slot per prefix.
  CHECK(cluster::hashed_part("ws:user:{a}b{c}") == "a");
  CHECK(cluster::hashed_part("ws:user:{}}") == "ws:user:{}}");
}

/// route_of on an argv that outlives the answer (its key is a view into it).
struct routed {
  route_kind kind;
  std::string key;
};
routed route(const std::vector<std::string>& argv) {
  auto r = cluster::route_of(argv);
  return {r.kind, std::string(r.key)};
}

TEST_CASE("commands are routed by their first key") {
  auto r = route({"GET", "ws:user:alice"});
  CHECK(r.kind == route_kind::by_key);
  CHECK(r.key == "ws:user:alice");
  r = route({"hset", "call:session:1", "state", "ringing"});
  CHECK(r.kind == route_kind::by_key);
  CHECK(r.key == "call:session:1");
  r = route({"EVALSHA", "abc", "2", "k1", "k2", "arg"});
  CHECK(r.kind == route_kind::by_key);
  CHECK(r.key == "k1");
  r = route({"evalsha", "abc", "0", "arg"});
  CHECK(r.kind == route_kind::any_master);
  CHECK(r.key.empty());
  r = route({"PUBLISH", "ws:signal:bob", "payload"});
  CHECK(r.kind == route_kind::by_key);
  CHECK(r.key == "ws:signal:bob");
  CHECK(route({"SCRIPT", "LOAD", "return 1"}).kind == route_kind::every_master);
  CHECK(route({"SCRIPT", "EXISTS", "abc"}).kind == route_kind::any_master);
  CHECK(route({"PING"}).kind == route_kind::any_master);
  CHECK(route({"CLIENT", "SETNAME", "x"}).kind == route_kind::any_master);
  CHECK(route({}).kind == route_kind::any_master);
}

TEST_CASE("stream commands are routed by their stream") {
  auto r = route({"XGROUP", "CREATE", "goring:webhooks:{0-0}", "g", "0", "MKSTREAM"});
  CHECK(r.kind == route_kind::by_key);
  CHECK(r.key == "goring:webhooks:{0-0}");
  r = route({"XREADGROUP", "GROUP", "g", "c", "COUNT", "64", "STREAMS", "s1", ">"});
  CHECK(r.kind == route_kind::by_key);
  CHECK(r.key == "s1");
  r = route({"xread", "COUNT", "1", "streams", "s2", "0"});
  CHECK(r.key == "s2");
  CHECK(route({"XREADGROUP", "GROUP", "g", "c"}).kind == route_kind::any_master);
  r = route({"XAUTOCLAIM", "s3", "g", "c", "60000", "0-0"});
  CHECK(r.key == "s3");
  CHECK(route({"XINFO", "STREAM", "s4"}).key == "s4");
}

TEST_CASE("partition tags spread evenly over the slots, naive tags do not") {
  // Naive tags: "{0}".."{2}" leave the first of three equal masters empty.
  auto third = [](uint16_t slot) { return slot * 3 / cluster::slot_count; };
  CHECK(third(cluster::key_slot("{0}")) == 2);
  CHECK(third(cluster::key_slot("{1}")) == 1);
  CHECK(third(cluster::key_slot("{2}")) == 1);
  for (unsigned count : {1U, 3U, 16U, 32U, 100U}) {
    CAPTURE(count);
    std::set<std::string> tags;
    for (unsigned p = 0; p < count; ++p) {
      auto tag = cluster::partition_tag(p, count);
      CHECK(tag.rfind(std::to_string(p) + "-", 0) == 0);
      CHECK(tag.find_first_of("{}") == std::string::npos);
      // In the p-th of `count` equal slot ranges: one partition per range.
      CHECK(cluster::key_slot(tag) * count / cluster::slot_count == p);
      tags.insert(tag);
    }
    CHECK(tags.size() == count);
  }
}

TEST_CASE("a session and its webhook stream share a slot, whatever the session id holds") {
  namespace keys = goring::redis::keys;
  std::vector<unsigned> per_third(3);
  for (std::string sid : {"s-1", "", "{", "}", "a}b{c", "{x}", "%7B", "s-2"}) {
    CAPTURE(sid);
    auto key = keys::tagged_session(sid);
    CHECK(key.rfind("call:session:{", 0) == 0);
    CHECK(key.size() >= sid.size());
    CHECK(key.compare(key.size() - sid.size(), sid.size(), sid) == 0);
    CHECK(cluster::key_slot(key) == cluster::key_slot(keys::tagged_webhook_stream(sid)));
  }
  std::set<std::string> streams;
  for (unsigned p = 0; p < keys::cluster_partitions; ++p) {
    auto stream = keys::partition_webhook_stream(p);
    CHECK(stream.rfind("goring:webhooks:{", 0) == 0);
    streams.insert(stream);
    ++per_third[cluster::key_slot(stream) * 3 / cluster::slot_count];
  }
  CHECK(streams.size() == keys::cluster_partitions);
  // 32 partitions over three equal masters: 10 or 11 each.
  for (auto n : per_third)
    CHECK((n == 10 || n == 11));
  // Every session id lands in one of those streams.
  for (int i = 0; i < 200; ++i)
    CHECK(streams.count(keys::tagged_webhook_stream("s-" + std::to_string(i))) == 1);
}

} // namespace
