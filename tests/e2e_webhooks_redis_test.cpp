/// End to end: signed webhooks and the offline ring. A receiver in this
/// process (tests/support/http_test_server) stands in for the app's
/// backend and checks every request's signature with its own HMAC; the
/// real goring binary posts to it, over http:// or https:// with a test CA.
/// Scenarios: an offline callee woken, rung on connect, accepting; an
/// offline ring nobody answers; the receiver failing for a while; the
/// producing instance killed -9 while the receiver is down; settings that
/// cannot work. The offline rings (one instance, two), the receiver
/// answering 503 and the killed producer run again on a Redis Cluster (one
/// stream per session partition); the others test what does not depend on
/// the Redis layout (settings, TLS, the example receivers, the ring
/// timeout, one Redis coming back empty) and run on one Redis only, to keep
/// CI short.
#include <doctest/doctest.h>

#include <csignal>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/wait.h>

#include "redis/keys.hpp"
#include "tests/support/goring_process.hpp"
#include "tests/support/http_test_server.hpp"
#include "tests/support/one_instance.hpp"
#include "tests/support/process.hpp"
#include "tests/support/redis_backend.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/test_ca.hpp"
#include "tests/support/token.hpp"
#include "tests/support/ws_client.hpp"

using namespace goring::test;
using namespace std::chrono_literals;
namespace keys = goring::redis::keys;

namespace {

const std::string secret = "test-webhook-secret-0123456789abcdef";

/// HMAC-SHA256 in lowercase hex, computed here, not with goring's code.
std::string hmac_hex(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &length);
  std::ostringstream out;
  for (unsigned i = 0; i < length; ++i) {
    static const char* digits = "0123456789abcdef";
    out << digits[mac[i] >> 4] << digits[mac[i] & 15];
  }
  return out.str();
}

/// Checks one request as a receiver must: POST, JSON, a fresh signature of
/// "<t>.<body>", the event id header matching the body. Returns the body.
json checked_event(const recorded_request& req) {
  CAPTURE(req.body);
  CHECK(req.method == "POST");
  CHECK(req.header("Content-Type") == "application/json");
  auto sig = req.header("Goring-Signature");
  CAPTURE(sig);
  auto comma = sig.find(",v1=");
  REQUIRE(sig.rfind("t=", 0) == 0);
  REQUIRE(comma != std::string::npos);
  auto t = sig.substr(2, comma - 2);
  CHECK(sig.substr(comma + 4) == hmac_hex(secret, t + "." + req.body));
  auto age = static_cast<long long>(std::time(nullptr)) - std::stoll(t);
  CHECK(age >= -5);
  CHECK(age <= 300);
  auto body = json::parse(req.body);
  REQUIRE(body.is_object());
  CHECK(req.header("Goring-Event-Id") == body.str("id"));
  CHECK(body.str("id") == body.str("session_id") + ":" + body.str("type"));
  CHECK(body.at("created_at").value().IsInt64());
  return body;
}

/// The receiver, and what it has been sent.
struct receiver {
  http_test_server server;

  receiver() {
    server.answer(200, "");
  }
  receiver(const std::string& cert, const std::string& key) : server(cert, key) {
    server.answer(200, "");
  }

  /// Every request from index `from` on, each checked.
  std::vector<json> events(std::size_t from = 0) {
    std::vector<json> out;
    auto all = server.all_requests();
    for (std::size_t i = from; i < all.size(); ++i)
      out.push_back(checked_event(all[i]));
    return out;
  }

  /// Waits until events from `from` on include each of `types` for
  /// `session_id`; returns them by type (the first of each).
  std::map<std::string, json> wait_for(const std::string& session_id,
                                       const std::vector<std::string>& types,
                                       std::chrono::milliseconds timeout = 20s,
                                       std::size_t from = 0) {
    std::map<std::string, json> seen;
    wait_until(
      [&] {
        seen.clear();
        auto all = server.all_requests();
        for (std::size_t i = from; i < all.size(); ++i) {
          auto body = json::parse(all[i].body);
          if (body.is_object() && body.str("session_id") == session_id)
            seen.emplace(body.str("type"), body);
        }
        for (auto& t : types)
          if (seen.count(t) == 0)
            return false;
        return true;
      },
      timeout);
    for (auto& t : types) {
      INFO("waiting for ", t);
      CHECK(seen.count(t) == 1);
    }
    // Every request so far carries a valid signature.
    events();
    return seen;
  }
};

std::map<std::string, std::string> webhook_env(const std::string& url,
                                               std::map<std::string, std::string> more = {}) {
  more["WEBHOOK_URL"] = url;
  more["WEBHOOK_SECRET"] = secret;
  return more;
}

/// The events waiting in Redis: the one stream, or on a cluster the sum
/// over the session partitions' streams.
long long stream_length(redis_backend& redis) {
  if (!redis.is_cluster())
    return redis.run({"XLEN", std::string{keys::webhook_stream}}).integer;
  long long sum = 0;
  for (unsigned p = 0; p < keys::cluster_partitions; ++p)
    sum += redis.run({"XLEN", keys::partition_webhook_stream(p)}).integer;
  return sum;
}

/// The events pending for consumers (read, not yet acknowledged), summed
/// as stream_length.
long long pending_count(redis_backend& redis) {
  auto pending = [&](const std::string& stream) {
    auto r = redis.run({"XPENDING", stream, std::string{keys::webhook_group}});
    return r.type == goring::redis::reply::kind::array && !r.elements.empty()
             ? r.elements[0].integer
             : 0LL;
  };
  if (!redis.is_cluster())
    return pending(std::string{keys::webhook_stream});
  long long sum = 0;
  for (unsigned p = 0; p < keys::cluster_partitions; ++p)
    sum += pending(keys::partition_webhook_stream(p));
  return sum;
}

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

} // namespace

TEST_CASE("offline ring: the backend is asked to wake the callee, who connects, is rung, "
          "accepts and talks, and every event arrives signed") {
  receiver backend;
  one_instance env{webhook_env(backend.server.url("/hooks"), {{"OFFLINE_RING_TIMEOUT", "30s"}})};
  ws_client alice{"alice"};
  env.join(alice);

  alice.start_call("bob");
  auto ringing = alice.expect("call.ringing");
  auto session_id = ringing.str("session_id");
  REQUIRE(!session_id.empty());
  CHECK(ringing.str("callee_id") == "bob");
  CHECK(ringing.at("callee_offline").value().IsTrue());

  auto first = backend.wait_for(session_id, {"call.started", "callee.offline"});
  auto& offline = first["callee.offline"];
  CHECK(offline.str("caller_id") == "alice");
  CHECK(offline.str("callee_id") == "bob");
  CHECK(offline.at("caller_info").str("user_id") == "alice");
  CHECK(offline.at("caller_info").str("name") == display_name_of("alice"));
  auto expires = offline.at("ring_expires_at").value().GetInt64();
  CHECK(expires - offline.at("created_at").value().GetInt64() == 30'000);

  // Someone else calling bob meanwhile finds him busy.
  ws_client carol{"carol"};
  env.join(carol);
  carol.start_call("bob");
  carol.expect_error("user_busy");

  // bob's phone woke up: his app connects and is rung at once, from Redis.
  ws_client bob{"bob"};
  env.join(bob);
  auto ring = bob.expect("call.ring");
  CHECK(ring.str("session_id") == session_id);
  CHECK(ring.str("caller_id") == "alice");
  CHECK(ring.at("caller_info").str("name") == display_name_of("alice"));

  bob.accept(session_id);
  auto accepted = alice.expect("call.accepted");
  CHECK(accepted.str("session_id") == session_id);
  alice.end_call(session_id);
  expect_ended(bob, session_id, "ended_by_user", "alice");

  auto all =
    backend.wait_for(session_id, {"call.started", "callee.offline", "call.accepted", "call.ended"});
  CHECK(all["call.accepted"].at("callee_info").str("user_id") == "bob");
  CHECK(all["call.ended"].str("reason") == "ended_by_user");
  CHECK(all["call.ended"].at("duration_ms").value().GetInt64() >= 0);
  CHECK(all.count("call.rejected") == 0);
  // One instance sends a session's events in the order they happened.
  std::vector<std::string> order;
  for (auto& ev : backend.events())
    order.push_back(ev.str("type"));
  CHECK(
    order
    == std::vector<std::string>{"call.started", "callee.offline", "call.accepted", "call.ended"});
  // Delivered events leave the stream.
  CHECK(wait_until([&] { return stream_length(env.redis) == 0; }, 10s));
  CHECK(env.metric("goring_webhook_deliveries_total{type=\"callee.offline\",outcome=\"delivered\"}")
        >= 1);
}

TEST_CASE("an offline ring across instances: the callee's app connects to the other instance, "
          "is rung, and accepts, while the caller moved to the other instance meanwhile") {
  receiver backend;
  redis_backend redis;
  auto env = webhook_env(backend.server.url(), {{"OFFLINE_RING_TIMEOUT", "30s"}});
  goring_process one{redis, "goring-one", env};
  goring_process two{redis, "goring-two", env};
  ws_client alice{"alice"};
  connect_online(alice, one, redis, user_token("alice"));
  alice.start_call("bob");
  auto ringing = alice.expect("call.ringing");
  auto session_id = ringing.str("session_id");
  CHECK(ringing.at("callee_offline").value().IsTrue());
  backend.wait_for(session_id, {"call.started", "callee.offline"});

  // alice's network changes: she comes back through the other instance and
  // takes the ringing call up there.
  auto before = presence_owner(redis, "alice");
  ws_client alice_again{"alice"};
  connect_online(alice_again, two, redis, user_token("alice"), before);
  expect_resumed(alice_again, session_id, "bob", "ringing", "caller");

  ws_client bob{"bob"};
  connect_online(bob, one, redis, user_token("bob"));
  auto ring = bob.expect("call.ring");
  CHECK(ring.str("session_id") == session_id);
  bob.accept(session_id);
  CHECK(alice_again.expect("call.accepted").str("session_id") == session_id);
  bob.end_call(session_id);
  expect_ended(alice_again, session_id, "ended_by_user", "bob");
  auto events = backend.wait_for(session_id, {"call.accepted", "call.ended"});
  CHECK(events["call.ended"].str("reason") == "ended_by_user");
}

TEST_CASE("an offline ring nobody answers ends with no_answer at the timeout"
          * single_redis_only()) {
  receiver backend;
  one_instance env{webhook_env(backend.server.url(), {{"OFFLINE_RING_TIMEOUT", "1s"}})};
  ws_client alice{"alice"};
  env.join(alice);
  alice.start_call("bob");
  auto session_id = alice.expect("call.ringing").str("session_id");
  auto ended = alice.expect("call.ended", 10s);
  CHECK(ended.str("session_id") == session_id);
  CHECK(ended.str("reason") == "no_answer");
  auto events = backend.wait_for(session_id, {"call.started", "callee.offline", "call.ended"});
  CHECK(events["call.ended"].str("reason") == "no_answer");
  CHECK(events["call.ended"].at("duration_ms").value().GetInt64() == 0);
  // bob connecting later is rung for nothing.
  ws_client bob{"bob"};
  env.join(bob);
  bob.expect_nothing(300ms);
}

TEST_CASE("without OFFLINE_RING_TIMEOUT an offline callee is user_offline, as in the reference, "
          "and no event is written"
          * single_redis_only()) {
  receiver backend;
  one_instance env{webhook_env(backend.server.url())};
  ws_client alice{"alice"};
  env.join(alice);
  alice.start_call("bob");
  alice.expect_error("user_offline");
  alice.expect_nothing(300ms);
  CHECK(stream_length(env.redis) == 0);
  CHECK(backend.server.requests() == 0);
}

TEST_CASE("a receiver answering 503 for a while loses nothing: the events come again until it "
          "takes them") {
  receiver backend;
  backend.server.answer(503, "busy");
  one_instance env{webhook_env(backend.server.url())};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  auto session_id = env.join_in_call(alice, bob);
  bob.end_call(session_id);
  expect_ended(alice, session_id, "ended_by_user", "bob");

  // Refused, and tried again; the session's later events wait behind the
  // first (one instance keeps a session's order).
  REQUIRE(backend.server.wait_requests(3, 20s));
  CHECK(stream_length(env.redis) == 3);
  for (auto& ev : backend.events())
    CHECK(ev.str("type") == "call.started");
  auto refused = backend.server.requests();
  backend.server.answer(200, "");
  auto events =
    backend.wait_for(session_id, {"call.started", "call.accepted", "call.ended"}, 45s, refused);
  CHECK(events["call.ended"].str("reason") == "ended_by_user");
  CHECK(wait_until([&] { return stream_length(env.redis) == 0; }, 10s));
  CHECK(env.metric("goring_webhook_retries_total{type=\"call.started\"}") >= 1);
  CHECK(env.metric("goring_webhook_failed_attempts_total{reason=\"status_5xx\"}") >= 3);
  CHECK(env.metric("goring_ready") == 1);
}

TEST_CASE("the receiver is down and the instance that wrote the events is killed -9: another "
          "instance delivers them") {
  receiver backend;
  backend.server.close();
  redis_backend redis;
  auto env = webhook_env(backend.server.url(), {{"WEBHOOK_CLAIM_TIMEOUT", "3s"}});
  std::string session_id;
  {
    goring_process doomed{redis, "goring-doomed", env};
    ws_client alice{"alice"};
    ws_client bob{"bob"};
    connect_online(alice, doomed, redis, user_token("alice"));
    connect_online(bob, doomed, redis, user_token("bob"));
    session_id = connect_call(alice, bob);
    alice.end_call(session_id);
    expect_ended(bob, session_id, "ended_by_user", "alice");
    // The doomed instance has taken all three (they are pending for it)
    // and failed to deliver them.
    CHECK(wait_until(
      [&] {
        return pending_count(redis) == 3
               && read_file(doomed.log_path()).find("failed (connect") != std::string::npos;
      },
      10s));
    doomed.kill();
  }
  CHECK(backend.server.requests() == 0);
  backend.server.listen();
  goring_process survivor{redis, "goring-survivor", env};
  auto events = backend.wait_for(session_id, {"call.started", "call.accepted", "call.ended"}, 45s);
  CHECK(events["call.ended"].str("reason") == "ended_by_user");
  CHECK(wait_until([&] { return stream_length(redis) == 0; }, 10s));
  CHECK(read_file(survivor.log_path()).find("another instance left pending") != std::string::npos);
}

TEST_CASE("Redis comes back empty: the consumer group is made again and later calls are "
          "delivered"
          * single_redis_only()) {
  receiver backend;
  one_instance env{webhook_env(backend.server.url())};
  {
    ws_client alice{"alice"};
    ws_client bob{"bob"};
    auto first = env.join_in_call(alice, bob);
    bob.end_call(first);
    backend.wait_for(first, {"call.started", "call.accepted", "call.ended"});
  }
  env.redis.server().stop();
  env.redis.server().restart(); // no persistence: the stream and its group are gone
  ws_client carol{"carol"};
  ws_client dave{"dave"};
  // The clients reconnect once goring's Redis paths are up again.
  REQUIRE(wait_until(
    [&] {
      return env.metric("goring_ready") == 1
             && env.redis.run({"XINFO", "GROUPS", std::string{keys::webhook_stream}}).type
                  == goring::redis::reply::kind::array;
    },
    20s));
  auto second = env.join_in_call(carol, dave);
  carol.end_call(second);
  auto events = backend.wait_for(second, {"call.started", "call.accepted", "call.ended"});
  CHECK(events["call.ended"].str("reason") == "ended_by_user");
}

TEST_CASE("events go over https to a receiver whose certificate the test CA signed"
          * single_redis_only()) {
  test_ca ca;
  auto cert = ca.issue("receiver", {"IP:127.0.0.1", "DNS:localhost"});
  receiver backend{cert.cert_file, cert.key_file};
  one_instance env{webhook_env(backend.server.url("/hooks"), {{"OUTBOUND_CA_FILE", ca.ca_file()}})};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  auto session_id = env.join_in_call(alice, bob);
  bob.end_call(session_id);
  auto events = backend.wait_for(session_id, {"call.started", "call.accepted", "call.ended"});
  CHECK(events["call.ended"].str("reason") == "ended_by_user");
  CHECK(backend.server.last_request().target == "/hooks");
}

TEST_CASE("the receiver examples of docs/webhooks.md (Node and Python) take goring's signed "
          "events"
          * single_redis_only()) {
  for (std::vector<std::string> example :
       {std::vector<std::string>{"node", GORING_SOURCE_DIR "/docs/examples/webhook-receiver.mjs"},
        std::vector<std::string>{"python3",
                                 GORING_SOURCE_DIR "/docs/examples/webhook_receiver.py"}}) {
    CAPTURE(example[0]);
    auto port = free_port();
    auto log = write_temp_file("webhook-receiver-example", "");
    child_process receiver_process{
      example, {{"PORT", std::to_string(port)}, {"WEBHOOK_SECRET", secret}}, log};
    REQUIRE(wait_until([&] { return read_file(log).find("listening") != std::string::npos; }, 10s));
    one_instance env{webhook_env("http://127.0.0.1:" + std::to_string(port) + "/goring",
                                 {{"OFFLINE_RING_TIMEOUT", "30s"}})};
    ws_client alice{"alice"};
    env.join(alice);
    alice.start_call("bob");
    auto session_id = alice.expect("call.ringing").str("session_id");
    alice.end_call(session_id);
    // Delivered, so the example found every signature good (it answers 401
    // otherwise, and the events would stay in the stream).
    CHECK(wait_until(
      [&] {
        auto text = read_file(log);
        return text.find("push to bob: " + display_name_of("alice")) != std::string::npos
               && text.find("ended: cancelled, 0 ms") != std::string::npos;
      },
      15s));
    CHECK(wait_until([&] { return stream_length(env.redis) == 0; }, 10s));
    CAPTURE(read_file(log));
  }
}

TEST_CASE("webhook settings that cannot work stop the start with a clear error"
          * single_redis_only()) {
  struct refused {
    std::map<std::string, std::string> env;
    const char* words;
  };
  std::vector<refused> cases{
    {{{"WEBHOOK_URL", "http://127.0.0.1:9/hook"}}, "WEBHOOK_SECRET is not"},
    {{{"WEBHOOK_URL", "http://127.0.0.1:9/hook"}, {"WEBHOOK_SECRET", "too-short"}},
     "at least 32 bytes"},
    {{{"WEBHOOK_URL", "ftp://127.0.0.1/hook"}, {"WEBHOOK_SECRET", secret}},
     "neither http nor https"},
    {{{"WEBHOOK_URL", "https://user:pw@backend.example/hook"}, {"WEBHOOK_SECRET", secret}},
     "user info"},
    {{{"OFFLINE_RING_TIMEOUT", "30s"}}, "OFFLINE_RING_TIMEOUT"},
    {{{"WEBHOOK_URL", "https://backend.example/hook"},
      {"WEBHOOK_SECRET", secret},
      {"WEBHOOK_MAX_AGE", "forever"}},
     "WEBHOOK_MAX_AGE"},
  };
  for (auto& c : cases) {
    // A valid JWT_SECRET: the refusal must come from the webhook settings.
    auto env = c.env;
    env.emplace("JWT_SECRET", "test-secret-for-refusals");
    expect_refused_at_start(env, c.words);
  }
}
