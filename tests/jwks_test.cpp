/// Keys from an identity provider's JWKS: which JWKs become keys, which key
/// a token's kid and alg pick, and what the verifier refuses (and why) with
/// a key set that is replaced while tokens are being checked. No network:
/// the documents are made here from keys OpenSSL generates.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "auth/jwks.hpp"
#include "auth/jwt_auth.hpp"
#include "auth/key_store.hpp"
#include "auth/public_key.hpp"
#include "tests/support/token.hpp"

namespace {

using goring::auth::jwt_verifier;
using goring::auth::key_store;
using goring::auth::parse_jwks;
using goring::auth::refusal_reason;
using goring::auth::verifier_options;
using namespace goring::test;

long long now() {
  return static_cast<long long>(std::time(nullptr));
}

/// Keys made once for this file: two RSA (rotation), one P-256, one P-384.
const key_pair& rsa_a() {
  static const key_pair k = new_rsa_key();
  return k;
}
const key_pair& rsa_b() {
  static const key_pair k = new_rsa_key();
  return k;
}
const key_pair& ec256() {
  static const key_pair k = new_ec_key("P-256");
  return k;
}
const key_pair& ec384() {
  static const key_pair k = new_ec_key("P-384");
  return k;
}

std::string header(const std::string& alg, const std::string& kid = {}) {
  return R"({"alg":")" + alg + R"(","typ":"JWT")" + (kid.empty() ? "" : R"(,"kid":")" + kid + "\"")
         + "}";
}

std::string claims(const std::string& sub = "alice") {
  return R"({"sub":")" + sub + R"(","exp":)" + std::to_string(now() + 600) + "}";
}

/// A token signed with `key` (a private PEM, or a secret for HS*).
std::string token(const std::string& alg, const std::string& key, const std::string& kid,
                  const std::string& payload = claims()) {
  return sign_jwt(alg, key, header(alg, kid), payload);
}

/// A verifier over `store`, sub as the user claim, these algorithms.
jwt_verifier verifier_on(std::shared_ptr<key_store> store,
                         std::vector<std::string> algorithms = {"RS256", "RS384", "PS256", "ES256",
                                                                "ES384"}) {
  verifier_options options;
  options.algorithms = std::move(algorithms);
  options.jwks = std::move(store);
  options.user_claim = "sub";
  return jwt_verifier{options};
}

std::shared_ptr<key_store> store_of(const std::string& document) {
  auto store = std::make_shared<key_store>();
  auto update = store->take_jwks(document);
  CAPTURE(update.error);
  REQUIRE(update.error.empty());
  return store;
}

/// Checks a refusal: its reason and words.
void refused(const jwt_verifier& verifier, const std::string& token, refusal_reason reason,
             const std::string& words) {
  auto check = verifier.verify(token);
  CAPTURE(check.refusal);
  CHECK_FALSE(check.valid.has_value());
  CHECK(goring::auth::reason_name(check.reason) == std::string{goring::auth::reason_name(reason)});
  CHECK(check.refusal.find(words) != std::string::npos);
}

std::string accepted_user(const jwt_verifier& verifier, const std::string& token) {
  auto check = verifier.verify(token);
  CAPTURE(check.refusal);
  REQUIRE(check.valid.has_value());
  return check.valid->user_id;
}

} // namespace

// --- JWKs into keys -----------------------------------------------------------

TEST_CASE("RSA and EC JWKs become keys that verify RS256, RS384, PS256, ES256 and ES384 tokens") {
  auto store =
    store_of(jwks_of({jwk_of(rsa_a(), "rsa-1", "RS256"), jwk_of(rsa_b(), "rsa-2", ""),
                      jwk_of(ec256(), "ec-1", "ES256"), jwk_of(ec384(), "ec-2", "ES384")}));
  auto verifier = verifier_on(store);
  CHECK(verifier.keys_ready());
  CHECK(accepted_user(verifier, token("RS256", rsa_a().private_pem, "rsa-1")) == "alice");
  // A JWK without alg takes every algorithm its type suits.
  CHECK(accepted_user(verifier, token("RS384", rsa_b().private_pem, "rsa-2")) == "alice");
  CHECK(accepted_user(verifier, token("PS256", rsa_b().private_pem, "rsa-2")) == "alice");
  CHECK(accepted_user(verifier, token("ES256", ec256().private_pem, "ec-1")) == "alice");
  CHECK(accepted_user(verifier, token("ES384", ec384().private_pem, "ec-2")) == "alice");
  // Another key's signature under a kid: the signature is wrong.
  refused(verifier, token("RS256", rsa_b().private_pem, "rsa-1"), refusal_reason::signature,
          "signature invalid");
  refused(verifier, token("ES256", new_ec_key("P-256").private_pem, "ec-1"),
          refusal_reason::signature, "signature invalid");
}

TEST_CASE("keys goring cannot use are left out, each with its reason") {
  auto good = jwk_of(rsa_a(), "good", "RS256");
  auto with = [](std::string jwk, const std::string& member) {
    return jwk.substr(0, jwk.size() - 1) + "," + member + "}";
  };
  auto rsa = jwk_of(rsa_b(), "", "");
  std::vector<std::pair<std::string, std::string>> cases = {
    {with(jwk_of(rsa_b(), "enc", "RSA-OAEP"), R"("x5t":"x")"), "RSA-OAEP"},
    {R"({"kty":"oct","kid":"hmac","k":"c2VjcmV0"})", "kty 'oct'"},
    {jwk_of(new_rsa_key(1024), "small", "RS256"), "under 2048 bits"},
    {jwk_of(new_ec_key("P-521"), "p521", ""), "P-521"},
    {jwk_of(ec256(), "wrong-curve", "ES384"), "does not fit curve"},
    {with(rsa.substr(0, rsa.size() - 1) + R"(,"kid":"private"})", R"("d":"AAAA")"), "private"},
    {R"({"kty":"RSA","kid":"b64","n":"***","e":"AQAB"})", "not base64url"},
    {R"({"kty":"EC","kid":"short","crv":"P-256","x":"AAAA","y":"AAAA"})", "32 bytes"},
    {R"({"kty":"EC","kid":"off","crv":"P-256","x":")" + base64url(std::string(32, '\x01'))
       + R"(","y":")" + base64url(std::string(32, '\x02')) + R"("})",
     "not on P-256"},
    {with(jwk_of(rsa_b(), "ops", ""), R"("key_ops":["encrypt"])"), "key_ops"},
    {R"({"kty":"RSA","kid":7})", "not a string"},
    {R"("just a string")", "not an object"},
    {jwk_of(rsa_b(), "good", ""), "kid of an earlier key"},
  };
  // use other than sig.
  auto enc = jwk_of(rsa_b(), "enc-use", "");
  auto pos = enc.find(R"("use":"sig")");
  REQUIRE(pos != std::string::npos);
  enc.replace(pos, 11, R"("use":"enc")");
  cases.emplace_back(enc, "use 'enc'");

  std::vector<std::string> jwks{good};
  for (auto& c : cases)
    jwks.push_back(c.first);
  auto parsed = parse_jwks(jwks_of(jwks));
  CAPTURE(parsed.error);
  REQUIRE(parsed.keys.has_value());
  REQUIRE(parsed.keys->keys().size() == 1);
  CHECK(parsed.keys->keys()[0].kid == "good");
  REQUIRE(parsed.skipped.size() == cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(parsed.skipped[i]);
    CHECK(parsed.skipped[i].find(cases[i].second) != std::string::npos);
  }
}

TEST_CASE("a document without a usable key is refused as a whole, garbage too") {
  std::string many = R"({"keys":[)";
  for (int i = 0; i < 101; ++i)
    many += std::string{i ? "," : ""} + R"({"kty":"oct"})";
  many += "]}";
  std::vector<std::pair<std::string, std::string>> cases = {
    {"", "not JSON"},
    {"<html>502 Bad Gateway</html>", "not JSON"},
    {R"({"keys":)", "not JSON"},
    {R"([])", "no JWKS"},
    {R"({"keys":{}})", "no JWKS"},
    {R"({"jwks":[]})", "no JWKS"},
    {R"({"keys":[]})", "no usable key"},
    {R"({"keys":[{"kty":"oct","k":"c2VjcmV0"}]})", "kty 'oct'"},
    {many, "over 100"},
    {std::string(100'000, '['), "not JSON"},
    {std::string{"{\"keys\":[\xff\xfe]}"}, "not JSON"},
  };
  for (auto& [document, words] : cases) {
    CAPTURE(document.substr(0, 80));
    auto parsed = parse_jwks(document);
    CHECK_FALSE(parsed.keys.has_value());
    CAPTURE(parsed.error);
    CHECK(parsed.error.find(words) != std::string::npos);
  }
}

TEST_CASE("base64url decodes without padding, tolerates it, and refuses other characters") {
  using goring::auth::base64url_decode;
  CHECK(base64url_decode("") == std::string{});
  CHECK(base64url_decode("AQAB") == std::string{"\x01\x00\x01", 3});
  CHECK(base64url_decode("YQ") == std::string{"a"});
  CHECK(base64url_decode("YQ==") == std::string{"a"});
  CHECK(base64url_decode("-_-_") == std::string{"\xfb\xff\xbf", 3});
  CHECK_FALSE(base64url_decode("Y").has_value());
  CHECK_FALSE(base64url_decode("a+b/").has_value());
  CHECK_FALSE(base64url_decode("ab c").has_value());
  CHECK_FALSE(base64url_decode("a=bc").has_value());
}

TEST_CASE("a JWK's public key is the key OpenSSL made, in PEM as well") {
  auto parsed = parse_jwks(jwks_of({jwk_of(rsa_a(), "r", ""), jwk_of(ec384(), "e", "")}));
  REQUIRE(parsed.keys.has_value());
  REQUIRE(parsed.keys->keys().size() == 2);
  CHECK(parsed.keys->keys()[0].key.pem() == rsa_a().public_pem);
  CHECK(parsed.keys->keys()[0].key.bits() == 2048);
  CHECK(parsed.keys->keys()[1].key.pem() == ec384().public_pem);
  CHECK(parsed.keys->keys()[1].key.curve() == "secp384r1");
}

// --- which key checks a token -------------------------------------------------

TEST_CASE("the token's kid picks its key, an unknown kid, or none among many keys, is refused") {
  auto verifier =
    verifier_on(store_of(jwks_of({jwk_of(rsa_a(), "a", "RS256"), jwk_of(rsa_b(), "b", "RS256")})));
  CHECK(accepted_user(verifier, token("RS256", rsa_a().private_pem, "a")) == "alice");
  CHECK(accepted_user(verifier, token("RS256", rsa_b().private_pem, "b")) == "alice");
  refused(verifier, token("RS256", rsa_a().private_pem, "c"), refusal_reason::unknown_kid,
          "key id 'c' is not in the key set");
  refused(verifier, token("RS256", rsa_a().private_pem, ""), refusal_reason::no_kid, "no 'kid'");
  // A kid that is not a string is no kid.
  refused(verifier, sign_jwt("RS256", rsa_a().private_pem, R"({"alg":"RS256","kid":1})", claims()),
          refusal_reason::malformed, "'kid' is not a string");
}

TEST_CASE("with one key, a token without kid uses it") {
  auto verifier = verifier_on(store_of(jwks_of({jwk_of(ec256(), "", "ES256")})));
  CHECK(accepted_user(verifier, token("ES256", ec256().private_pem, "")) == "alice");
  // With a kid, the kid must be that key's (which has none).
  refused(verifier, token("ES256", ec256().private_pem, "x"), refusal_reason::unknown_kid,
          "not in the key set");
}

TEST_CASE("the token's alg must be its key's: another alg under the same kid is refused") {
  auto verifier = verifier_on(store_of(jwks_of(
    {jwk_of(rsa_a(), "rs", "RS256"), jwk_of(rsa_b(), "any-rsa", ""), jwk_of(ec256(), "ec", "")})));
  // The key says RS256; an RS384 or PS256 signature by the same key is not
  // what the provider publishes it for.
  refused(verifier, token("RS384", rsa_a().private_pem, "rs"), refusal_reason::algorithm,
          "does not match its key (RS256)");
  refused(verifier, token("PS256", rsa_a().private_pem, "rs"), refusal_reason::algorithm,
          "does not match");
  // A kid of an RSA key under ES256, a P-256 key under ES384.
  refused(verifier, token("ES256", ec256().private_pem, "any-rsa"), refusal_reason::algorithm,
          "an RSA key");
  refused(verifier, token("ES384", ec384().private_pem, "ec"), refusal_reason::algorithm,
          "an EC key on prime256v1");
  // The allowlist comes first: RS512 is not in it.
  refused(verifier, token("RS512", rsa_b().private_pem, "any-rsa"), refusal_reason::algorithm,
          "not allowed: 'RS512'");
}

TEST_CASE("alg none and HMAC tokens keyed with a published key are refused") {
  auto rsa_jwk = jwk_of(rsa_a(), "a", "RS256");
  auto store = store_of(jwks_of({rsa_jwk}));
  // Without HS in JWT_ALGORITHMS: refused by the allowlist.
  auto rs_only = verifier_on(store, {"RS256"});
  auto none = base64url(R"({"alg":"none","kid":"a"})") + "." + base64url(claims()) + ".";
  refused(rs_only, none, refusal_reason::algorithm, "not allowed: 'none'");
  for (const std::string& secret : {rsa_jwk, rsa_a().public_pem}) {
    refused(rs_only, token("HS256", secret, "a"), refusal_reason::algorithm,
            "not allowed: 'HS256'");
  }
  // With HS256 allowed too, HS verifies with JWT_SECRET only, never a JWK.
  verifier_options options;
  options.algorithms = {"HS256", "RS256"};
  options.secret = "the-real-secret";
  options.jwks = store;
  options.user_claim = "sub";
  jwt_verifier both{options};
  for (const std::string& secret : {rsa_jwk, rsa_a().public_pem}) {
    refused(both, token("HS256", secret, "a"), refusal_reason::signature, "signature invalid");
  }
  CHECK(accepted_user(both, token("HS256", "the-real-secret", "")) == "alice");
  CHECK(accepted_user(both, token("RS256", rsa_a().private_pem, "a")) == "alice");
  refused(both, none, refusal_reason::algorithm, "not allowed: 'none'");
}

// --- claims -------------------------------------------------------------------

TEST_CASE("the user id comes from JWT_USER_CLAIM, a token without it is refused") {
  auto store = store_of(jwks_of({jwk_of(rsa_a(), "a", "RS256")}));
  auto by_sub = verifier_on(store);
  CHECK(accepted_user(by_sub, token("RS256", rsa_a().private_pem, "a", claims("user-7")))
        == "user-7");
  auto no_sub = R"({"hash":"alice","exp":)" + std::to_string(now() + 600) + "}";
  refused(by_sub, token("RS256", rsa_a().private_pem, "a", no_sub), refusal_reason::claim,
          "no 'sub' claim");
  // Any claim name, namespaced ones too.
  verifier_options options;
  options.algorithms = {"RS256"};
  options.jwks = store;
  options.user_claim = "https://app.example/user_id";
  auto namespaced =
    R"({"https://app.example/user_id":42,"exp":)" + std::to_string(now() + 600) + "}";
  CHECK(accepted_user(jwt_verifier{options}, token("RS256", rsa_a().private_pem, "a", namespaced))
        == "42");
}

TEST_CASE("username falls back to preferred_username, name and username are kept") {
  auto verifier = verifier_on(store_of(jwks_of({jwk_of(rsa_a(), "a", "RS256")})));
  auto exp = std::to_string(now() + 600);
  auto check = verifier.verify(
    token("RS256", rsa_a().private_pem, "a",
          R"({"sub":"u1","name":"Alice","preferred_username":"alice.p","exp":)" + exp + "}"));
  REQUIRE(check.valid.has_value());
  CHECK(check.valid->name == "Alice");
  CHECK(check.valid->username == "alice.p");
  check = verifier.verify(
    token("RS256", rsa_a().private_pem, "a",
          R"({"sub":"u1","username":"alice.u","preferred_username":"alice.p","exp":)" + exp + "}"));
  REQUIRE(check.valid.has_value());
  CHECK(check.valid->username == "alice.u");
}

TEST_CASE("exp, nbf, iss and aud are checked with JWKS keys as with the others") {
  verifier_options options;
  options.algorithms = {"ES256"};
  options.jwks = store_of(jwks_of({jwk_of(ec256(), "e", "ES256")}));
  options.user_claim = "sub";
  options.issuer = "https://idp.example/";
  options.audience = "goring";
  jwt_verifier verifier{options};
  auto signed_with = [](const std::string& payload) {
    return token("ES256", ec256().private_pem, "e", payload);
  };
  auto exp = std::to_string(now() + 600);
  CHECK(accepted_user(verifier, signed_with(R"({"sub":"a","iss":"https://idp.example/",)"
                                            R"("aud":["x","goring"],"exp":)"
                                            + exp + "}"))
        == "a");
  refused(verifier,
          signed_with(R"({"sub":"a","iss":"https://idp.example/","aud":"goring","exp":)"
                      + std::to_string(now() - 60) + "}"),
          refusal_reason::expired, "expired");
  refused(verifier,
          signed_with(R"({"sub":"a","iss":"https://idp.example/","aud":"goring","exp":)" + exp
                      + R"(,"nbf":)" + std::to_string(now() + 600) + "}"),
          refusal_reason::claim, "not valid yet");
  refused(verifier,
          signed_with(R"({"sub":"a","iss":"https://other/","aud":"goring","exp":)" + exp + "}"),
          refusal_reason::claim, "issuer");
  refused(verifier,
          signed_with(R"({"sub":"a","iss":"https://idp.example/","aud":"web","exp":)" + exp + "}"),
          refusal_reason::claim, "audience");
  refused(verifier, signed_with(R"({"sub":"a","iss":"https://idp.example/","aud":"goring"})"),
          refusal_reason::claim, "no 'exp'");
}

TEST_CASE("a header typ other than JWT or at+jwt is refused") {
  auto verifier = verifier_on(store_of(jwks_of({jwk_of(rsa_a(), "a", "RS256")})));
  for (std::string typ : {"JWT", "jwt", "at+jwt", "application/at+JWT"}) {
    CAPTURE(typ);
    auto t = sign_jwt("RS256", rsa_a().private_pem,
                      R"({"alg":"RS256","kid":"a","typ":")" + typ + "\"}", claims());
    CHECK(verifier.verify(t).valid.has_value());
  }
  refused(verifier,
          sign_jwt("RS256", rsa_a().private_pem, R"({"alg":"RS256","kid":"a","typ":"dpop+jwt"})",
                   claims()),
          refusal_reason::malformed, "type is not JWT");
}

// --- the set in force ----------------------------------------------------------

TEST_CASE("before the first key set, RS tokens are refused as having no key, HS ones are not") {
  auto store = std::make_shared<key_store>();
  verifier_options options;
  options.algorithms = {"HS256", "RS256"};
  options.secret = "s";
  options.jwks = store;
  jwt_verifier verifier{options};
  CHECK_FALSE(verifier.keys_ready());
  refused(verifier, token("RS256", rsa_a().private_pem, "a"), refusal_reason::no_keys,
          "not fetched yet");
  CHECK(
    verifier
      .verify(token("HS256", "s", "", R"({"hash":"h","exp":)" + std::to_string(now() + 60) + "}"))
      .valid.has_value());
  // A document that is refused leaves it so.
  CHECK_FALSE(store->take_jwks("not json").error.empty());
  CHECK_FALSE(verifier.keys_ready());
  CHECK(store->take_jwks(jwks_of({jwk_of(rsa_a(), "a", "RS256")})).error.empty());
  CHECK(verifier.keys_ready());
}

TEST_CASE("a new set replaces the old: a new kid is accepted, a removed one refused, and a bad "
          "document changes nothing") {
  auto store = store_of(jwks_of({jwk_of(rsa_a(), "old", "RS256")}));
  auto verifier = verifier_on(store);
  auto old_token = token("RS256", rsa_a().private_pem, "old");
  auto new_token = token("RS256", rsa_b().private_pem, "new");
  CHECK(verifier.verify(old_token).valid.has_value());
  refused(verifier, new_token, refusal_reason::unknown_kid, "'new'");

  auto both =
    store->take_jwks(jwks_of({jwk_of(rsa_a(), "old", "RS256"), jwk_of(rsa_b(), "new", "RS256")}));
  CHECK(both.error.empty());
  CHECK(both.keys == 2);
  CHECK(both.change.find("new: 'new' RS256") != std::string::npos);
  CHECK(verifier.verify(old_token).valid.has_value());
  CHECK(verifier.verify(new_token).valid.has_value());

  auto only_new = store->take_jwks(jwks_of({jwk_of(rsa_b(), "new", "RS256")}));
  CHECK(only_new.change.find("gone: 'old' RS256") != std::string::npos);
  refused(verifier, old_token, refusal_reason::unknown_kid, "'old'");
  CHECK(verifier.verify(new_token).valid.has_value());

  for (const std::string& bad :
       std::vector<std::string>{"", "{}", R"({"keys":[]})", std::string(300, '{')}) {
    auto update = store->take_jwks(bad);
    CHECK_FALSE(update.error.empty());
    CHECK(update.keys == 1);
    CHECK(verifier.verify(new_token).valid.has_value());
  }
  // The same set again: nothing worth a log line.
  CHECK(store->take_jwks(jwks_of({jwk_of(rsa_b(), "new", "RS256")})).change.empty());
}

TEST_CASE("tokens are checked on several threads while the set is replaced, none wrongly") {
  auto a = jwk_of(rsa_a(), "a", "RS256");
  auto b = jwk_of(rsa_b(), "b", "RS256");
  auto store = store_of(jwks_of({a, b}));
  auto verifier = verifier_on(store);
  auto in_both = token("RS256", rsa_a().private_pem, "a");
  auto forged = token("RS256", rsa_b().private_pem, "a");
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::atomic<long> checks{0};
  std::atomic<int> started{0};
  std::vector<std::thread> checkers;
  for (int i = 0; i < 3; ++i)
    checkers.emplace_back([&] {
      ++started;
      while (!stop) {
        if (!verifier.verify(in_both).valid || verifier.verify(forged).valid)
          ++wrong;
        checks += 2;
      }
    });
  while (started < 3)
    std::this_thread::yield();
  // Every set holds `a`; `b` comes and goes: at least 200 times, and on
  // until the checkers have done some work (a loaded machine may not have
  // run them yet), within a bound so the test always ends.
  for (int i = 0; i < 200 || (checks < 600 && i < 100'000); ++i)
    REQUIRE(store->take_jwks(i % 2 ? jwks_of({a}) : jwks_of({b, a})).error.empty());
  stop = true;
  for (auto& t : checkers)
    t.join();
  CHECK(wrong == 0);
  CHECK(checks > 0);
}

TEST_CASE("an unknown kid asks the refresher, without one the caller goes on at once") {
  auto store = std::make_shared<key_store>();
  int done = 0;
  store->request_refresh([&] { ++done; });
  CHECK(done == 1);
  int asked = 0;
  store->set_refresher([&](std::function<void()> finished) {
    ++asked;
    finished();
  });
  auto verifier = verifier_on(store);
  verifier.refresh_keys([&] { ++done; });
  CHECK(asked == 1);
  CHECK(done == 2);
  // Without a JWKS there is nothing to fetch.
  jwt_verifier hs{std::string{"secret"}};
  hs.refresh_keys([&] { ++done; });
  CHECK(done == 3);
  CHECK(hs.keys_ready());
}

TEST_CASE("a PEM key checks tokens whatever their kid, PS256 included") {
  verifier_options options;
  options.algorithms = {"RS256", "PS256"};
  options.public_key_pem = rsa_a().public_pem;
  options.user_claim = "sub";
  jwt_verifier verifier{options};
  CHECK(verifier.keys_ready());
  CHECK(accepted_user(verifier, token("RS256", rsa_a().private_pem, "whatever")) == "alice");
  CHECK(accepted_user(verifier, token("PS256", rsa_a().private_pem, "")) == "alice");
  refused(verifier, token("PS256", rsa_b().private_pem, ""), refusal_reason::signature,
          "signature invalid");
}
