/// End to end: tokens from the app's own identity provider. A JWKS server
/// in this process (tests/support/http_test_server) publishes RSA and EC
/// keys made here; goring fetches them from JWT_JWKS_URL, over http:// on
/// loopback or https:// with a CA made at test time. Users connect and
/// call by `sub`; keys are added and removed while goring runs; the
/// provider fails in every way while the known keys keep working; the
/// first fetch fails at start; bad settings stop the start.
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>

#include "tests/support/goring_process.hpp"
#include "tests/support/http_test_server.hpp"
#include "tests/support/one_instance.hpp"
#include "tests/support/process.hpp"
#include "tests/support/raw_client.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/test_ca.hpp"
#include "tests/support/token.hpp"
#include "tests/support/ws_client.hpp"

using namespace goring::test;
using namespace std::chrono_literals;

namespace {

/// The provider's keys, made once per test process.
const key_pair& rsa_1() {
  static const auto k = new_rsa_key();
  return k;
}
const key_pair& rsa_2() {
  static const auto k = new_rsa_key();
  return k;
}
const key_pair& ec_1() {
  static const auto k = new_ec_key("P-256");
  return k;
}

/// A token as an OpenID Connect provider mints it: the user in `sub`, the
/// key's kid in the header.
std::string provider_token(const std::string& user, const std::string& alg, const key_pair& key,
                           const std::string& kid) {
  token_spec spec;
  spec.user_id = user;
  spec.user_claim = "sub";
  spec.name = display_name_of(user);
  spec.preferred_username = user + ".idp";
  spec.algorithm = alg;
  spec.secret = key.private_pem;
  spec.kid = kid;
  return mint_token(spec);
}

/// goring's settings for a JWKS at `url` (JWT_SECRET left unset: with no
/// HS algorithm allowed none is needed).
std::map<std::string, std::string> jwks_env(const std::string& url,
                                            std::map<std::string, std::string> more = {}) {
  std::map<std::string, std::string> env{{"JWT_JWKS_URL", url},
                                         {"JWT_ALGORITHMS", "RS256,ES256"},
                                         {"JWT_USER_CLAIM", "sub"},
                                         {"JWT_SECRET", ""}};
  for (auto& [k, v] : more)
    env[k] = v;
  return env;
}

bool becomes_ready(const goring_process& goring, std::chrono::milliseconds timeout = 15s) {
  return wait_until([&] { return http_get(goring.admin_port(), "/ready", 500ms).status == 200; },
                    timeout);
}

/// Whether an upgrade with `token` opens (101), retried until `timeout`.
bool accepted_within(const goring_process& goring, const std::string& token,
                     std::chrono::milliseconds timeout) {
  return wait_until(
    [&] {
      ws_client probe{"probe"};
      return probe.try_connect(goring.port(), token) == 101;
    },
    timeout);
}

upgrade_answer try_token(const goring_process& goring, const std::string& token) {
  ws_client client{"client"};
  return client.try_connect_with(goring.port(), "/ws?token=" + token, {});
}

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

} // namespace

TEST_CASE("RSA and EC keys from the JWKS: users connect and call by sub, their info intact") {
  http_test_server idp;
  idp.answer(200, jwks_of({jwk_of(rsa_1(), "rsa-1", "RS256"), jwk_of(ec_1(), "ec-1", "ES256")}));
  one_instance env{jwks_env(idp.url("/.well-known/jwks.json"))};
  REQUIRE(becomes_ready(env.goring));
  CHECK(idp.last_request().target == "/.well-known/jwks.json");

  ws_client alice{"alice"};
  ws_client bob{"bob"};
  connect_online(alice, env.goring, env.redis, provider_token("alice", "RS256", rsa_1(), "rsa-1"));
  connect_online(bob, env.goring, env.redis, provider_token("bob", "ES256", ec_1(), "ec-1"));
  alice.start_call("bob");
  alice.expect("call.ringing");
  auto ring = bob.expect("call.ring");
  auto caller = ring.at("caller_info");
  INFO("caller_info ", caller);
  CHECK(caller.str("user_id") == "alice");
  CHECK(caller.str("name") == "Alice");
  // No `username` claim: preferred_username stands in.
  CHECK(caller.str("username") == "alice.idp");
  bob.accept(ring.str("session_id"));
  auto accepted = alice.expect("call.accepted");
  CHECK(accepted.at("callee_info").str("user_id") == "bob");
  CHECK(accepted.at("callee_info").str("username") == "bob.idp");

  CHECK(env.metric("goring_jwks_keys") == 2);
  CHECK(env.metric("goring_jwks_fetches_total{outcome=\"ok\"}") >= 1);
  CHECK(env.metric("goring_jwks_age_seconds") >= 0);
  CHECK(env.metric("goring_jwks_age_seconds") < 3600);
}

TEST_CASE("a key published later is accepted at once, a key removed stops at the next refresh") {
  http_test_server idp;
  idp.answer(200, jwks_of({jwk_of(rsa_1(), "old", "RS256")}));
  one_instance env{jwks_env(idp.url(), {{"JWT_JWKS_REFRESH", "2s"}})};
  REQUIRE(becomes_ready(env.goring));
  auto old_token = provider_token("alice", "RS256", rsa_1(), "old");
  auto new_token = provider_token("bob", "ES256", ec_1(), "new");
  ws_client alice{"alice"};
  connect_online(alice, env.goring, env.redis, old_token);

  // Rotation: the provider adds a key and its tokens come at once. The
  // unknown kid fetches the set again and the upgrade is checked once more,
  // so the very first try gets in, no restart, no waiting for a refresh.
  idp.answer(200, jwks_of({jwk_of(rsa_1(), "old", "RS256"), jwk_of(ec_1(), "new", "ES256")}));
  ws_client bob{"bob"};
  CHECK(bob.try_connect(env.goring.port(), new_token) == 101);
  CHECK(env.metric("goring_jwks_keys") == 2);

  // Removal: once a refresh has seen the set without it, its tokens stop.
  // (Probes are carol and dave, so alice's connection stays hers.)
  auto old_probe = provider_token("carol", "RS256", rsa_1(), "old");
  idp.answer(200, jwks_of({jwk_of(ec_1(), "new", "ES256")}));
  CHECK(wait_until([&] { return try_token(env.goring, old_probe).status == 401; }, 20s));
  auto answer = try_token(env.goring, old_probe);
  CHECK(answer.body.find("'old' is not in the key set") != std::string::npos);
  CHECK(accepted_within(env.goring, provider_token("dave", "ES256", ec_1(), "new"), 5s));
  CHECK(env.metric("goring_jwks_keys") == 1);
  // A connection made with the old key stays: tokens are checked when they
  // are presented.
  alice.start_call("nobody-here");
  alice.expect_error("user_offline");
}

TEST_CASE("tokens the key set does not vouch for are refused, each counted by its reason") {
  http_test_server idp;
  idp.answer(200, jwks_of({jwk_of(rsa_1(), "rsa-1", "RS256"), jwk_of(ec_1(), "ec-1", "ES256")}));
  one_instance env{jwks_env(idp.url(), {{"JWT_ALGORITHMS", "RS256,ES256,HS256"},
                                        {"JWT_SECRET", test_jwt_secret},
                                        {"JWT_JWKS_REFRESH", "60m"}})};
  REQUIRE(becomes_ready(env.goring));
  auto fetches_at_start = idp.requests();
  auto payload = R"({"sub":"mallory","exp":)" + std::to_string(std::time(nullptr) + 600) + "}";
  auto published_jwk = jwk_of(rsa_1(), "rsa-1", "RS256");
  struct refused {
    const char* what;
    std::string token;
    const char* words;
  };
  std::vector<refused> cases{
    {"an unknown kid", provider_token("mallory", "RS256", rsa_1(), "made-up"),
     "not in the key set"},
    {"no kid among two keys", provider_token("mallory", "RS256", rsa_1(), ""), "no 'kid'"},
    {"an RS256 token under the EC key's kid", provider_token("mallory", "RS256", rsa_1(), "ec-1"),
     "does not match its key"},
    {"RS384, not allowed", provider_token("mallory", "RS384", rsa_1(), "rsa-1"), "not allowed"},
    {"signed by another key under a known kid",
     provider_token("mallory", "RS256", rsa_2(), "rsa-1"), "signature invalid"},
    {"HS256 keyed with the published JWK",
     sign_jwt("HS256", published_jwk, R"({"alg":"HS256","kid":"rsa-1"})", payload),
     "signature invalid"},
    {"HS256 keyed with the published key's PEM",
     sign_jwt("HS256", rsa_1().public_pem, R"({"alg":"HS256","kid":"rsa-1"})", payload),
     "signature invalid"},
    {"alg none", base64url(R"({"alg":"none","kid":"rsa-1"})") + "." + base64url(payload) + ".",
     "not allowed: 'none'"},
    {"no sub",
     sign_jwt("RS256", rsa_1().private_pem, R"({"alg":"RS256","kid":"rsa-1"})",
              R"({"hash":"mallory","exp":)" + std::to_string(std::time(nullptr) + 600) + "}"),
     "no 'sub' claim"},
  };
  for (auto& c : cases) {
    INFO(c.what);
    auto answer = try_token(env.goring, c.token);
    CHECK(answer.status == 401);
    CAPTURE(answer.body);
    CHECK(answer.body.find(c.words) != std::string::npos);
  }
  CHECK(env.metric("goring_tokens_refused_total{reason=\"unknown_kid\"}") >= 1);
  CHECK(env.metric("goring_tokens_refused_total{reason=\"no_kid\"}") >= 1);
  CHECK(env.metric("goring_tokens_refused_total{reason=\"algorithm\"}") >= 3);
  CHECK(env.metric("goring_tokens_refused_total{reason=\"signature\"}") >= 3);
  CHECK(env.metric("goring_tokens_refused_total{reason=\"claim\"}") >= 1);

  // A flood of made-up kids: at most one more fetch (the one above, of the
  // first unknown kid, counts too), however many tokens.
  for (int i = 0; i < 30; ++i)
    CHECK(try_token(env.goring,
                    provider_token("mallory", "RS256", rsa_1(), "made-up-" + std::to_string(i)))
            .status
          == 401);
  CHECK(idp.requests() <= fetches_at_start + 2);
  // A good token still gets in.
  ws_client alice{"alice"};
  CHECK(alice.try_connect(env.goring.port(), provider_token("alice", "ES256", ec_1(), "ec-1"))
        == 101);
}

TEST_CASE("the provider answering 503, garbage, slowly, too much or not at all: known keys work") {
  http_test_server idp;
  auto keys = jwks_of({jwk_of(rsa_1(), "rsa-1", "RS256"), jwk_of(ec_1(), "ec-1", "ES256")});
  idp.answer(200, keys);
  one_instance env{jwks_env(idp.url(), {{"JWT_JWKS_REFRESH", "1s"}})};
  REQUIRE(becomes_ready(env.goring));
  auto token = provider_token("alice", "RS256", rsa_1(), "rsa-1");
  auto still_works = [&](const char* after) {
    INFO("after ", after);
    CHECK(try_token(env.goring, token).status == 101);
    CHECK(http_get(env.goring.admin_port(), "/ready").status == 200);
    CHECK(env.metric("goring_jwks_keys") == 2);
  };
  auto outcome = [&](const std::string& name) {
    return env.metric("goring_jwks_fetches_total{outcome=\"" + name + "\"}");
  };
  idp.answer(503, "upstream down");
  CHECK(wait_until([&] { return outcome("http_status") >= 2; }, 20s));
  still_works("503");
  idp.answer(200, "<html>gateway error</html>");
  CHECK(wait_until([&] { return outcome("invalid") >= 1; }, 20s));
  idp.answer(200, R"({"keys":[{"kty":"oct","k":"c2VjcmV0"}]})");
  CHECK(wait_until([&] { return outcome("invalid") >= 2; }, 20s));
  still_works("garbage and a set without usable keys");
  idp.misbehave(http_test_server::behaviour::stall);
  CHECK(wait_until([&] { return outcome("timeout") >= 1; }, 30s));
  still_works("a body that never ends");
  idp.misbehave(http_test_server::behaviour::flood);
  CHECK(wait_until([&] { return outcome("too_large") >= 1; }, 20s));
  still_works("a body too large");
  idp.close();
  CHECK(wait_until([&] { return outcome("connect") >= 1; }, 40s));
  still_works("the provider gone");
  CHECK(env.log().find("stay in use") != std::string::npos);
  // Back with a new set: taken at the next try.
  idp.listen();
  idp.answer(200, jwks_of({jwk_of(ec_1(), "ec-1", "ES256")}));
  CHECK(wait_until([&] { return env.metric("goring_jwks_keys") == 1; }, 40s));
}

TEST_CASE("when the first fetch fails, upgrades get 503 with Retry-After and readiness is false") {
  http_test_server idp;
  idp.close();
  one_instance env{jwks_env(idp.url(), {{"JWT_JWKS_REFRESH", "60m"}})};
  // The public /health stays up: the process is fine, only not ready.
  CHECK(http_get(env.goring.port(), "/health").status == 200);
  CHECK(http_get(env.goring.admin_port(), "/health").status == 200);
  auto ready = http_get(env.goring.admin_port(), "/ready");
  CHECK(ready.status == 503);
  CHECK(ready.body.find("token keys") != std::string::npos);

  raw_client raw;
  REQUIRE(raw.connect(env.goring.port()));
  REQUIRE(raw.send(upgrade_request(
    env.goring.port(), "/ws?token=" + provider_token("alice", "RS256", rsa_1(), "rsa-1"))));
  CHECK(raw.read_status() == 503);
  CHECK(raw.received().find("Retry-After: ") != std::string::npos);
  CHECK(env.metric("goring_connections_opened_total{result=\"keys_not_ready\"}") >= 1);
  CHECK(env.metric("goring_jwks_keys") == 0);
  CHECK(env.metric("goring_ready") == 0);
  CHECK(env.log().find("no key set yet") != std::string::npos);

  // The provider comes up: the retry finds it, and upgrades get in.
  idp.listen();
  idp.answer(200, jwks_of({jwk_of(rsa_1(), "rsa-1", "RS256")}));
  REQUIRE(becomes_ready(env.goring, 45s));
  ws_client alice{"alice"};
  connect_online(alice, env.goring, env.redis, provider_token("alice", "RS256", rsa_1(), "rsa-1"));
  CHECK(env.metric("goring_ready") == 1);
}

TEST_CASE("an https JWKS is verified: the test CA through OUTBOUND_CA_FILE or SSL_CERT_FILE") {
  test_ca ca;
  auto cert = ca.issue("idp", {"IP:127.0.0.1", "DNS:localhost"});
  http_test_server idp{cert.cert_file, cert.key_file};
  idp.answer(200, jwks_of({jwk_of(rsa_1(), "rsa-1", "RS256")}));
  auto token = provider_token("alice", "RS256", rsa_1(), "rsa-1");
  redis_server redis;
  {
    goring_process goring{redis.addr(), "goring-ca-file",
                          jwks_env(idp.url(), {{"OUTBOUND_CA_FILE", ca.ca_file()}})};
    REQUIRE(becomes_ready(goring));
    CHECK(try_token(goring, token).status == 101);
  }
  {
    // OpenSSL's default paths honour SSL_CERT_FILE; by name this time.
    goring_process goring{redis.addr(), "goring-ssl-cert-file",
                          jwks_env("https://localhost:" + std::to_string(idp.port()) + "/jwks",
                                   {{"SSL_CERT_FILE", ca.ca_file()}})};
    REQUIRE(becomes_ready(goring));
    CHECK(try_token(goring, token).status == 101);
  }
  {
    // The system CAs do not know the test CA: no keys, so no upgrades.
    goring_process goring{redis.addr(), "goring-system-cas", jwks_env(idp.url())};
    CHECK(wait_until(
      [&] { return read_file(goring.log_path()).find("(tls)") != std::string::npos; }, 15s));
    CHECK(http_get(goring.admin_port(), "/ready").status == 503);
    CHECK(try_token(goring, token).status == 503);
  }
}

TEST_CASE("settings that cannot work stop the start with a clear error") {
  auto key_file = write_temp_file("rsa-pub", rsa_1().public_pem);
  struct refused {
    std::map<std::string, std::string> env;
    const char* words;
  };
  std::vector<refused> cases{
    {{{"JWT_JWKS_URL", "http://idp.example.com/jwks"}, {"JWT_ALGORITHMS", "RS256"}},
     "not loopback"},
    {{{"JWT_JWKS_URL", "ftp://127.0.0.1/jwks"}, {"JWT_ALGORITHMS", "RS256"}},
     "neither http nor https"},
    {{{"JWT_JWKS_URL", "https://user:pw@idp.example.com/jwks"}, {"JWT_ALGORITHMS", "RS256"}},
     "user info"},
    {{{"JWT_JWKS_URL", "https://idp.example.com/jwks"}, {"JWT_SECRET", "s"}},
     "allows no RS/PS/ES algorithm"},
    {{{"JWT_JWKS_URL", "https://idp.example.com/jwks"},
      {"JWT_ALGORITHMS", "RS256"},
      {"JWT_PUBLIC_KEY_FILE", key_file}},
     "both set"},
    {{{"JWT_JWKS_URL", "https://idp.example.com/jwks"},
      {"JWT_ALGORITHMS", "RS256"},
      {"OUTBOUND_CA_FILE", "/nonexistent/ca.pem"}},
     "OUTBOUND_CA_FILE"},
  };
  for (auto& c : cases)
    expect_refused_at_start(c.env, c.words);
}
