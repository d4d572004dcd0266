/// The pure parts of webhooks/: the signature, the retry schedule, and the
/// JSON body an event of the stream becomes.
#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include "webhooks/event.hpp"
#include "webhooks/retry.hpp"
#include "webhooks/signature.hpp"

namespace {

using goring::redis::reply;
using namespace std::chrono_literals;

reply text(std::string s) {
  reply r;
  r.type = reply::kind::string;
  r.str = std::move(s);
  return r;
}

reply array(std::vector<reply> xs) {
  reply r;
  r.type = reply::kind::array;
  r.elements = std::move(xs);
  return r;
}

/// A stream entry as XREADGROUP returns it.
reply entry(const std::string& id, const std::vector<std::string>& pairs) {
  std::vector<reply> fields;
  for (auto& p : pairs)
    fields.push_back(text(p));
  return array({text(id), array(std::move(fields))});
}

} // namespace

TEST_CASE("HMAC-SHA256 matches RFC 4231 test case 2") {
  CHECK(goring::webhooks::hmac_sha256_hex("Jefe", "what do ya want for nothing?")
        == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("the signature header signs the time, a dot and the raw body") {
  auto header = goring::webhooks::signature_header("Jefe", 1733531234, R"({"a":1})");
  CHECK(header
        == "t=1733531234,v1=" + goring::webhooks::hmac_sha256_hex("Jefe", R"(1733531234.{"a":1})"));
}

TEST_CASE("retries back off exponentially with jitter: the first within a second, none over "
          "30 s") {
  using goring::webhooks::retry_delay;
  for (double unit : {0.0, 0.25, 0.5, 0.999}) {
    CAPTURE(unit);
    CHECK(retry_delay(1, unit) <= 1s);
    CHECK(retry_delay(1, unit) >= 500ms);
    CHECK(retry_delay(2, unit) <= 2s);
    CHECK(retry_delay(2, unit) >= 1s);
    CHECK(retry_delay(4, unit) <= 8s);
    CHECK(retry_delay(4, unit) >= 4s);
    for (unsigned retry : {6u, 7u, 20u, 1000u}) {
      CAPTURE(retry);
      CHECK(retry_delay(retry, unit) <= 30s);
      CHECK(retry_delay(retry, unit) >= 15s);
    }
  }
  // The jitter spreads retries of one moment apart.
  CHECK(retry_delay(3, 0.0) != retry_delay(3, 0.9));
  // Nonsense randomness stays in bounds.
  CHECK(retry_delay(1, -3.0) <= 1s);
  CHECK(retry_delay(1, 7.0) >= 500ms);
}

TEST_CASE("an event older than the max age by its next try is expired") {
  using goring::webhooks::expired;
  CHECK_FALSE(expired(1'000, 1'000 + 60'000, 60s));
  CHECK(expired(1'000, 1'000 + 60'001, 60s));
}

TEST_CASE("a stream entry becomes the body of its webhook, with its id and fields") {
  auto read = goring::webhooks::read_entry(
    entry("1733531234567-0",
          {"type", "callee.offline", "session_id", "s-1", "caller_id", "alice", "callee_id", "bob",
           "created_at", "1733531234567", "caller_info", R"({"user_id":"alice","name":"Alice"})",
           "ring_expires_at", "1733531279567"}));
  REQUIRE(read.value);
  auto& ev = *read.value;
  CHECK(ev.entry_id == "1733531234567-0");
  CHECK(ev.id == "s-1:callee.offline");
  CHECK(ev.type == "callee.offline");
  CHECK(ev.created_at == 1733531234567);
  rapidjson::Document body;
  body.Parse(ev.body.c_str());
  REQUIRE_FALSE(body.HasParseError());
  CHECK(std::string{body["id"].GetString()} == "s-1:callee.offline");
  CHECK(std::string{body["type"].GetString()} == "callee.offline");
  CHECK(body["created_at"].GetInt64() == 1733531234567);
  CHECK(std::string{body["session_id"].GetString()} == "s-1");
  CHECK(std::string{body["caller_id"].GetString()} == "alice");
  CHECK(std::string{body["callee_id"].GetString()} == "bob");
  CHECK(std::string{body["caller_info"]["name"].GetString()} == "Alice");
  CHECK(body["ring_expires_at"].GetInt64() == 1733531279567);
  CHECK_FALSE(body.HasMember("reason"));
}

TEST_CASE("call.ended carries its reason and duration") {
  auto read = goring::webhooks::read_entry(
    entry("5-0", {"type", "call.ended", "session_id", "s-1", "caller_id", "alice", "callee_id",
                  "bob", "created_at", "9000", "reason", "ended_by_user", "duration_ms", "4200"}));
  REQUIRE(read.value);
  rapidjson::Document body;
  body.Parse(read.value->body.c_str());
  CHECK(std::string{body["reason"].GetString()} == "ended_by_user");
  CHECK(body["duration_ms"].GetInt64() == 4200);
}

TEST_CASE("unusable entries are named, not sent: deleted, or missing what a script writes") {
  // Redis 6.2 lists an entry deleted while pending as [id, nil].
  auto deleted = goring::webhooks::read_entry(array({text("7-0"), reply{}}));
  CHECK(deleted.entry_id == "7-0");
  CHECK_FALSE(deleted.value);
  auto partial =
    goring::webhooks::read_entry(entry("8-0", {"type", "call.started", "created_at", "x"}));
  CHECK(partial.entry_id == "8-0");
  CHECK_FALSE(partial.value);
  CHECK_FALSE(goring::webhooks::read_entry(text("junk")).value);
  // Bad caller_info is left out, not sent as broken JSON.
  auto bad_info =
    goring::webhooks::read_entry(entry("9-0", {"type", "call.started", "session_id", "s",
                                               "created_at", "1", "caller_info", "{not json"}));
  REQUIRE(bad_info.value);
  rapidjson::Document body;
  body.Parse(bad_info.value->body.c_str());
  REQUIRE_FALSE(body.HasParseError());
  CHECK_FALSE(body.HasMember("caller_info"));
}

TEST_CASE("XREADGROUP and XAUTOCLAIM replies give their entries and the cursor") {
  auto one = entry("1-0", {"type", "call.started", "session_id", "s", "created_at", "1"});
  auto read = goring::webhooks::read_group_reply(
    array({array({text("goring:webhooks"), array({one, one})})}));
  CHECK(read.size() == 2);
  CHECK(goring::webhooks::read_group_reply(reply{}).empty());
  std::string cursor;
  auto claimed =
    goring::webhooks::read_autoclaim_reply(array({text("12-3"), array({one}), array({})}), cursor);
  CHECK(claimed.size() == 1);
  CHECK(cursor == "12-3");
  goring::webhooks::read_autoclaim_reply(reply::make_error("NOGROUP"), cursor);
  CHECK(cursor == "0-0");
  CHECK(goring::webhooks::entry_time_ms("1733531234567-12") == 1733531234567);
  CHECK(goring::webhooks::entry_time_ms("nonsense") == 0);
}

TEST_CASE("stream entry ids are ordered as numbers: time, then sequence") {
  goring::webhooks::stream_order before;
  CHECK(before("1733531234567-2", "1733531234567-10"));
  CHECK_FALSE(before("1733531234567-10", "1733531234567-2"));
  CHECK(before("999-5", "1000-0"));
  CHECK_FALSE(before("5-0", "5-0"));
}
