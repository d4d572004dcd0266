/// The token check on the WebSocket upgrade: tokens minted here, good and
/// bad, and what the verifier says about each.
#include <doctest/doctest.h>

#include <chrono>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "config/config.hpp"
#include "auth/jwt_auth.hpp"
#include "auth/token_source.hpp"
#include "codec/protocol.hpp"
#include "tests/support/token.hpp"

namespace {

using goring::auth::jwt_verifier;
using goring::auth::token_check;
using goring::test::base64url;

const std::string secret = "unit-test-secret";
const std::string hs256_header = R"({"alg":"HS256","typ":"JWT"})";

long long now() {
  return static_cast<long long>(std::time(nullptr));
}

std::string mac(const EVP_MD* md, const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

/// header.payload, both given as JSON text.
std::string signing_input(const std::string& header, const std::string& payload) {
  return base64url(header) + "." + base64url(payload);
}

/// A token with any header and payload, signed with HMAC-SHA256.
std::string signed_token(const std::string& header, const std::string& payload,
                         const std::string& key = secret) {
  auto input = signing_input(header, payload);
  return input + "." + base64url(mac(EVP_sha256(), key, input));
}

/// A correctly signed HS256 token with these claims.
std::string token_with(const std::string& claims) {
  return signed_token(hs256_header, claims);
}

std::string exp_claim(long long exp) {
  return R"({"hash":"alice","exp":)" + std::to_string(exp) + "}";
}

/// HS256 with `secret`; exp optional, so the cases below can leave it out
/// (the default, exp required, has its own cases).
token_check verify(std::string_view token) {
  goring::auth::verifier_options options;
  options.secret = secret;
  options.require_exp = false;
  return jwt_verifier{options}.verify(token);
}

/// Checks that `token` is refused with a refusal that mentions `words` and
/// repeats neither the token nor any of its parts.
void check_refused(const std::string& token, std::string_view words) {
  auto check = verify(token);
  CAPTURE(token.substr(0, 200));
  CAPTURE(check.refusal);
  CHECK_FALSE(check.valid.has_value());
  CHECK_FALSE(check.refusal.empty());
  CHECK(check.refusal.find(words) != std::string::npos);
  std::string_view rest = token;
  while (!rest.empty()) {
    auto dot = rest.find('.');
    auto part = rest.substr(0, dot);
    if (part.size() >= 6)
      CHECK(check.refusal.find(part) == std::string::npos);
    if (dot == std::string_view::npos)
      break;
    rest.remove_prefix(dot + 1);
  }
}

/// The claims of an accepted token, or a failed check that shows why not.
goring::auth::claims accepted(const std::string& token) {
  auto check = verify(token);
  CAPTURE(check.refusal);
  REQUIRE(check.valid.has_value());
  CHECK(check.refusal.empty());
  return *check.valid;
}

} // namespace

// --- accepted ----------------------------------------------------------------

TEST_CASE("a valid token gives the user id, name and username") {
  auto exp = now() + 3600;
  auto claims = accepted(token_with(R"({"hash":"u-42","name":"Alice","username":"alice.handle",)"
                                    R"("iat":1700000000,"exp":)"
                                    + std::to_string(exp) + "}"));
  CHECK(claims.user_id == "u-42");
  CHECK(claims.name == "Alice");
  CHECK(claims.username == "alice.handle");
  REQUIRE(claims.expires_at.has_value());
  CHECK(*claims.expires_at == std::chrono::system_clock::time_point{std::chrono::seconds{exp}});
}

TEST_CASE("a token from the test support minter is accepted") {
  goring::test::token_spec spec;
  spec.user_id = "bob";
  spec.name = "Bob";
  spec.secret = secret;
  auto claims = accepted(goring::test::mint_token(spec));
  CHECK(claims.user_id == "bob");
  CHECK(claims.name == "Bob");
  CHECK(claims.username.empty());
}

TEST_CASE("a hash given as a number is read as its decimal text") {
  CHECK(accepted(token_with(R"({"hash":42})")).user_id == "42");
  CHECK(accepted(token_with(R"({"hash":9007199254740993})")).user_id == "9007199254740993");
  CHECK(accepted(token_with(R"({"hash":9223372036854775807})")).user_id == "9223372036854775807");
  // Above INT64_MAX the claim is unsigned; it must not wrap to a negative id.
  CHECK(accepted(token_with(R"({"hash":18446744073709551615})")).user_id == "18446744073709551615");
}

TEST_CASE("with exp optional a token without exp is accepted and has no expiry") {
  auto claims = accepted(token_with(R"({"hash":"alice"})"));
  CHECK(claims.user_id == "alice");
  CHECK(claims.name.empty());
  CHECK(claims.username.empty());
  CHECK_FALSE(claims.expires_at.has_value());
}

TEST_CASE("a token that expired within the 5 s leeway is still accepted") {
  CHECK(accepted(token_with(exp_claim(now() - 2))).user_id == "alice");
  CHECK(accepted(token_with(exp_claim(now()))).user_id == "alice");
}

TEST_CASE("a 100 KB token that is correctly signed is read whole") {
  std::string name(100'000, 'n');
  auto claims = accepted(token_with(R"({"hash":"alice","name":")" + name + "\"}"));
  CHECK(claims.name == name);
}

// --- refused -----------------------------------------------------------------

TEST_CASE("an expired token is refused") {
  check_refused(token_with(exp_claim(now() - 60)), "expired");
  check_refused(token_with(exp_claim(now() - 3600)), "expired");
  check_refused(token_with(exp_claim(1)), "expired");
}

TEST_CASE("a token whose exp is negative is refused as expired") {
  // The JWT library reads exp as unsigned, so -100 looks like the far future.
  check_refused(token_with(exp_claim(-100)), "expired");
  check_refused(token_with(exp_claim(-1)), "expired");
}

TEST_CASE("an exp that is not a number is refused") {
  check_refused(token_with(R"({"hash":"alice","exp":"tomorrow"})"), "token");
  check_refused(token_with(R"({"hash":"alice","exp":true})"), "token");
}

TEST_CASE("an exp or nbf that no clock can hold is refused, signed or not") {
  // The library converts these to uint64_t before it checks the signature;
  // fuzzing found that 1e300 there is undefined behaviour.
  for (const char* name : {"exp", "nbf"}) {
    for (const char* value : {"1e300", "-2.5", "-1e300", "9.3e18", "18446744073709551615"}) {
      auto claims = std::string{R"({"hash":"alice",")"} + name + "\":" + value + "}";
      CAPTURE(claims);
      check_refused(token_with(claims), "out of range");
      check_refused(signed_token(hs256_header, claims, "another-secret"), "out of range");
    }
  }
}

TEST_CASE("a fractional exp in the future is accepted") {
  auto exp = now() + 3600;
  auto claims = accepted(token_with(R"({"hash":"alice","exp":)" + std::to_string(exp) + ".75}"));
  REQUIRE(claims.expires_at.has_value());
  CHECK(*claims.expires_at == std::chrono::system_clock::time_point{std::chrono::seconds{exp}});
}

TEST_CASE("an exp past what a clock holds is accepted as the year 2242") {
  // 9223372036854775807 s would overflow system_clock's nanoseconds.
  for (long long exp : {9223372036854775807LL, 253402300799LL}) {
    auto claims = accepted(token_with(exp_claim(exp)));
    REQUIRE(claims.expires_at.has_value());
    CHECK(*claims.expires_at
          == std::chrono::system_clock::time_point{std::chrono::seconds{1LL << 33}});
  }
}

TEST_CASE("a token signed with another secret is refused") {
  check_refused(signed_token(hs256_header, R"({"hash":"alice"})", "not-the-secret"),
                "signature invalid");
  check_refused(signed_token(hs256_header, R"({"hash":"alice"})", ""), "signature invalid");
}

TEST_CASE("a tampered payload under the original signature is refused") {
  auto original = token_with(R"({"hash":"alice"})");
  auto forged_payload = base64url(R"({"hash":"admin"})");
  auto first_dot = original.find('.');
  auto second_dot = original.find('.', first_dot + 1);
  auto forged = original.substr(0, first_dot + 1) + forged_payload + original.substr(second_dot);
  check_refused(forged, "signature invalid");
}

TEST_CASE("a token with its signature cut or changed is refused") {
  auto token = token_with(R"({"hash":"alice"})");
  check_refused(token.substr(0, token.rfind('.') + 1), "token");
  auto flipped = token;
  flipped[token.rfind('.') + 1] = flipped[token.rfind('.') + 1] == 'A' ? 'B' : 'A';
  check_refused(flipped, "signature invalid");
}

TEST_CASE("alg none is refused, with or without a signature") {
  auto none = R"({"alg":"none","typ":"JWT"})";
  check_refused(signing_input(none, R"({"hash":"alice"})") + ".", "algorithm not allowed");
  check_refused(signed_token(none, R"({"hash":"alice"})"), "algorithm not allowed");
  check_refused(signing_input(R"({"alg":"None"})", R"({"hash":"alice"})") + ".",
                "algorithm not allowed");
}

TEST_CASE("algorithms other than HS256 are refused, even correctly signed") {
  auto hs512_header = R"({"alg":"HS512","typ":"JWT"})";
  auto input = signing_input(hs512_header, R"({"hash":"alice"})");
  check_refused(input + "." + base64url(mac(EVP_sha512(), secret, input)), "algorithm not allowed");
  check_refused(signed_token(R"({"alg":"RS256","typ":"JWT"})", R"({"hash":"alice"})"),
                "algorithm not allowed");
  check_refused(signed_token(R"({"alg":"hs256"})", R"({"hash":"alice"})"), "algorithm not allowed");
}

TEST_CASE("a header without a string alg is refused") {
  for (std::string header : {R"({"typ":"JWT"})", R"({"alg":256})", R"({"alg":null})",
                             R"({"alg":["HS256"]})", R"(["HS256"])", R"("HS256")"}) {
    CAPTURE(header);
    check_refused(signed_token(header, R"({"hash":"alice"})"), "malformed token");
  }
}

TEST_CASE("a token without a usable hash claim is refused by naming it") {
  check_refused(token_with(R"({"name":"Alice"})"), "'hash'");
  check_refused(token_with(R"({"hash":""})"), "'hash'");
  check_refused(token_with(R"({"hash":{"id":"alice"}})"), "'hash'");
  check_refused(token_with(R"({"hash":true})"), "'hash'");
  check_refused(token_with(R"({"hash":null})"), "'hash'");
  check_refused(token_with(R"({"hash":1.5})"), "'hash'");
}

TEST_CASE("a user id as long as call.start's callee_id may be is accepted, one byte more is "
          "refused") {
  auto limit = goring::protocol::max_id_length;
  std::string longest(limit, 'u');
  CHECK(accepted(token_with(R"({"hash":")" + longest + "\"}")).user_id == longest);
  // Counted in bytes, as the codec counts callee_id: 128 two-byte letters.
  std::string accented;
  for (std::size_t i = 0; i < limit / 2; ++i)
    accented += "\u00e9";
  CHECK(accepted(token_with(R"({"hash":")" + accented + "\"}")).user_id.size() == limit);
  check_refused(token_with(R"({"hash":")" + std::string(limit + 1, 'u') + "\"}"),
                "longer than " + std::to_string(limit) + " bytes");
  check_refused(token_with(R"({"hash":")" + std::string(5000, 'u') + "\"}"), "user id");
}

TEST_CASE("a user id with NUL, CR, LF or another control character is refused") {
  for (std::string escape : {"\\u0000", "\\r", "\\n", "\\t", "\\u001b", "\\u007f",
                             "\\u0085", "\\u009f"}) {
    CAPTURE(escape);
    check_refused(token_with(R"({"hash":"ali)" + escape + R"(ce"})"), "control character");
    check_refused(token_with(R"({"hash":")" + escape + R"("})"), "user id");
  }
  // Letters next to the C1 block are no controls.
  CHECK(accepted(token_with(R"({"hash":"\u00a0\u00c0\u0100"})")).user_id
        == "\xc2\xa0\xc3\x80\xc4\x80");
}

TEST_CASE("text that is not three dot-separated parts is refused") {
  auto refused_as = [](const std::string& token, std::string_view words) {
    auto check = verify(token);
    CAPTURE(token);
    CHECK_FALSE(check.valid.has_value());
    CHECK(check.refusal.find(words) != std::string::npos);
  };
  refused_as("", "missing token");
  auto token = token_with(R"({"hash":"alice"})");
  check_refused(base64url(hs256_header), "three dot-separated parts");
  check_refused(signing_input(hs256_header, R"({"hash":"alice"})"), "three dot-separated parts");
  check_refused(token + ".extra", "three dot-separated parts");
  check_refused(token + ".", "three dot-separated parts");
  check_refused("this-is-not-a-jwt", "three dot-separated parts");
  refused_as("..", "malformed token");
}

TEST_CASE("parts that are not base64url or not JSON are refused") {
  check_refused("!!!!!!!!.@@@@@@@@.########", "malformed token");
  check_refused(signed_token("not json at all", R"({"hash":"alice"})"), "malformed token");
  check_refused(signed_token(hs256_header, "not json at all"), "token");
  check_refused(signed_token(hs256_header, R"(["alice"])"), "token");
  check_refused(signed_token(hs256_header, R"({"hash":"alice")"), "token");
}

TEST_CASE("an '=' anywhere but at the end of a part is refused") {
  // The library's decoder shifts the -1 it reads for a misplaced '=', which
  // is undefined behaviour (found by fuzzing).
  auto token = token_with(R"({"hash":"alice","exp":4102444800})");
  auto first_dot = token.find('.');
  for (auto at : {first_dot + 3, first_dot - 2, token.size() - 5, std::size_t{1}}) {
    auto broken = token;
    broken[at] = '=';
    check_refused(broken, "malformed token");
  }
}

TEST_CASE("padding at the end of a part is accepted") {
  // {"hash":"alice"} is 16 bytes: base64 of it ends in "==".
  auto header = base64url(hs256_header);
  auto payload = base64url(R"({"hash":"alice"})") + "==";
  auto input = header + "." + payload;
  auto token = input + "." + base64url(mac(EVP_sha256(), secret, input));
  CHECK(accepted(token).user_id == "alice");
}

TEST_CASE("bytes outside base64url, as a percent-decoded query can give, are refused") {
  // The JWT library indexes a 256-entry table with a signed char: such bytes
  // read outside it. They must be refused before the library sees them.
  check_refused("\xff\xfe\x80\xff.\xff\xff\xff\xff.\xff\xff\xff\xff", "malformed token");
  auto token = token_with(R"({"hash":"alice"})");
  check_refused(std::string{"\xc3\xa9"} + token, "token");
  check_refused(token + "\x80", "token");
  check_refused(token + " ", "token");
}

TEST_CASE("a 100 KB token of garbage is refused without trouble") {
  std::string garbage(100'000, 'A');
  check_refused(garbage, "three dot-separated parts");
  check_refused(garbage + "." + garbage + "." + garbage, "token");
  check_refused(std::string(50'000, '.') + garbage, "three dot-separated parts");
}

TEST_CASE("a refusal never repeats the token it refused") {
  // Each kind of bad token, with a recognisable user id inside the claims.
  auto claims = R"({"hash":"secret-user-id-1234","exp":1})";
  std::vector<std::string> tokens = {
    token_with(claims),
    signed_token(hs256_header, R"({"hash":"secret-user-id-1234"})", "wrong"),
    signing_input(R"({"alg":"none"})", R"({"hash":"secret-user-id-1234"})") + ".",
    signed_token(R"({"alg":"HS384"})", R"({"hash":"secret-user-id-1234"})"),
    token_with(R"({"name":"secret-user-id-1234"})"),
    signed_token("secret-user-id-1234", "x"),
    "secret-user-id-1234",
  };
  for (auto& token : tokens) {
    auto check = verify(token);
    CAPTURE(check.refusal);
    CHECK_FALSE(check.valid.has_value());
    CHECK(check.refusal.find("secret-user-id-1234") == std::string::npos);
    check_refused(token, "");
  }
}

// --- the allowlist, public keys, and the claims checks ----------------------

namespace {

using goring::auth::verifier_options;
using goring::test::ec_key;
using goring::test::rsa_key;
using goring::test::sign_jwt;

std::string header_of(const std::string& alg) {
  return R"({"alg":")" + alg + R"(","typ":"JWT"})";
}

std::string alice_claims() {
  return R"({"hash":"alice","exp":)" + std::to_string(now() + 600) + "}";
}

verifier_options options_for(std::vector<std::string> algorithms, std::string public_pem = {}) {
  verifier_options options;
  options.algorithms = std::move(algorithms);
  options.secret = secret;
  options.public_key_pem = std::move(public_pem);
  return options;
}

/// Checks that `verifier` refuses `token` with words in the refusal.
void refused_by(const jwt_verifier& verifier, const std::string& token, std::string_view words) {
  auto check = verifier.verify(token);
  CAPTURE(check.refusal);
  CHECK_FALSE(check.valid.has_value());
  CHECK(check.refusal.find(words) != std::string::npos);
}

/// Settings as goring reads them, with `env` as its environment.
goring::settings settings_of(const std::vector<std::string>& env, bool dev = false) {
  std::vector<const char*> envp;
  for (auto& e : env)
    envp.push_back(e.c_str());
  envp.push_back(nullptr);
  const char* argv[] = {"goring", "--dev", nullptr};
  auto parsed = goring::parse_settings(dev ? 2 : 1, argv, envp.data());
  CAPTURE(parsed.error);
  REQUIRE(parsed.error.empty());
  return parsed.values;
}

} // namespace

TEST_CASE("the default verifier refuses a token without exp") {
  jwt_verifier hs256{secret};
  refused_by(hs256, token_with(R"({"hash":"alice"})"), "no 'exp' claim");
  CHECK(hs256.verify(token_with(alice_claims())).valid.has_value());
}

TEST_CASE("RS256 and ES256 tokens verify with the PEM public key") {
  jwt_verifier rs{options_for({"RS256"}, rsa_key().public_pem)};
  auto rs_check =
    rs.verify(sign_jwt("RS256", rsa_key().private_pem, header_of("RS256"), alice_claims()));
  CAPTURE(rs_check.refusal);
  REQUIRE(rs_check.valid.has_value());
  CHECK(rs_check.valid->user_id == "alice");

  jwt_verifier es{options_for({"ES256"}, ec_key().public_pem)};
  auto es_check =
    es.verify(sign_jwt("ES256", ec_key().private_pem, header_of("ES256"), alice_claims()));
  CAPTURE(es_check.refusal);
  REQUIRE(es_check.valid.has_value());
  CHECK(es_check.valid->user_id == "alice");

  // Another payload under the original signature: refused.
  auto token = sign_jwt("RS256", rsa_key().private_pem, header_of("RS256"), alice_claims());
  auto forged = token.substr(0, token.find('.') + 1)
                + base64url(R"({"hash":"admin","exp":)" + std::to_string(now() + 600) + "}")
                + token.substr(token.rfind('.'));
  refused_by(rs, forged, "signature invalid");
}

TEST_CASE("algorithm confusion: an HS256 token signed with the public key text is refused") {
  // The classic attack: the server's public key is public, so an attacker
  // signs an HS256 token with its PEM text as the HMAC secret.
  auto forged = sign_jwt("HS256", rsa_key().public_pem, header_of("HS256"), alice_claims());
  jwt_verifier rs_only{options_for({"RS256"}, rsa_key().public_pem)};
  refused_by(rs_only, forged, "algorithm not allowed: 'HS256'");
  // Even with HS256 also allowed, HS tokens verify with JWT_SECRET only.
  jwt_verifier both{options_for({"HS256", "RS256"}, rsa_key().public_pem)};
  refused_by(both, forged, "signature invalid");
  // Without any secret, HS is refused outright, never verified with the PEM.
  auto no_secret = options_for({"HS256", "RS256"}, rsa_key().public_pem);
  no_secret.secret.clear();
  refused_by(jwt_verifier{no_secret}, forged, "no key");
  // The same with an EC key.
  auto forged_ec = sign_jwt("HS256", ec_key().public_pem, header_of("HS256"), alice_claims());
  refused_by(jwt_verifier{options_for({"ES256"}, ec_key().public_pem)}, forged_ec,
             "algorithm not allowed");
}

TEST_CASE("a token for one algorithm presented under another is refused") {
  jwt_verifier rs{options_for({"RS256"}, rsa_key().public_pem)};
  jwt_verifier es{options_for({"ES256"}, ec_key().public_pem)};
  auto rs_token = sign_jwt("RS256", rsa_key().private_pem, header_of("RS256"), alice_claims());
  auto es_token = sign_jwt("ES256", ec_key().private_pem, header_of("ES256"), alice_claims());
  // Not in the allowlist.
  refused_by(rs, es_token, "algorithm not allowed: 'ES256'");
  refused_by(es, rs_token, "algorithm not allowed: 'RS256'");
  refused_by(rs, token_with(alice_claims()), "algorithm not allowed: 'HS256'");
  // The header relabelled to an allowed algorithm, signature kept.
  auto relabel = [](const std::string& token, const std::string& alg) {
    return base64url(header_of(alg)) + token.substr(token.find('.'));
  };
  refused_by(rs, relabel(es_token, "RS256"), "signature invalid");
  refused_by(es, relabel(rs_token, "ES256"), "signature invalid");
  refused_by(rs, relabel(rs_token, "RS384"), "algorithm not allowed");
  jwt_verifier rs_family{options_for({"RS256", "RS512"}, rsa_key().public_pem)};
  refused_by(rs_family, relabel(rs_token, "RS512"), "signature invalid");
  // An HS256 token relabelled HS512 under an HS512 allowlist.
  jwt_verifier hs512{options_for({"HS512"})};
  refused_by(hs512, relabel(token_with(alice_claims()), "HS512"), "signature invalid");
}

TEST_CASE("alg none can never be allowed") {
  jwt_verifier verifier{options_for({"none", "HS256"})};
  refused_by(verifier, signing_input(R"({"alg":"none"})", alice_claims()) + ".",
             "algorithm not allowed: 'none' (allowed: HS256)");
}

TEST_CASE("issuer and audience are checked when configured") {
  auto options = options_for({"HS256"});
  options.issuer = "https://auth.example";
  options.audience = "goring";
  jwt_verifier verifier{options};
  auto exp = std::to_string(now() + 600);
  auto with = [&](const std::string& extra) {
    return token_with(R"({"hash":"alice","exp":)" + exp + extra + "}");
  };
  CHECK(verifier.verify(with(R"(,"iss":"https://auth.example","aud":"goring")")).valid);
  CHECK(verifier.verify(with(R"(,"iss":"https://auth.example","aud":["x","goring"])")).valid);
  refused_by(verifier, with(R"(,"aud":"goring")"), "issuer");
  refused_by(verifier, with(R"(,"iss":"https://evil.example","aud":"goring")"), "issuer");
  refused_by(verifier, with(R"(,"iss":7,"aud":"goring")"), "issuer");
  refused_by(verifier, with(R"(,"iss":"https://auth.example")"), "audience");
  refused_by(verifier, with(R"(,"iss":"https://auth.example","aud":"other")"), "audience");
  refused_by(verifier, with(R"(,"iss":"https://auth.example","aud":["other"])"), "audience");
  // Not configured: not checked.
  CHECK(jwt_verifier{options_for({"HS256"})}.verify(with(R"(,"iss":"anyone")")).valid);
}

TEST_CASE("the leeway is configurable") {
  auto strict = options_for({"HS256"});
  strict.leeway = std::chrono::seconds{0};
  refused_by(jwt_verifier{strict}, token_with(exp_claim(now() - 3)), "expired");
  auto lenient = options_for({"HS256"});
  lenient.leeway = std::chrono::seconds{60};
  CHECK(jwt_verifier{lenient}.verify(token_with(exp_claim(now() - 30))).valid);
  CHECK(jwt_verifier{lenient}.leeway() == std::chrono::seconds{60});
  // nbf in the future (beyond the leeway) is refused.
  refused_by(jwt_verifier{strict},
             token_with(R"({"hash":"alice","nbf":)" + std::to_string(now() + 600) + "}"),
             "not valid yet");
}

// --- the verifier goring builds from its settings ---------------------------

TEST_CASE("the default development secret is refused outside development mode") {
  auto production = goring::auth::make_verifier(settings_of({}));
  CHECK(!production.verifier);
  CHECK(production.error.find("default development secret") != std::string::npos);
  CHECK(production.error.find("GORING_ENV=development") != std::string::npos);

  auto dev = goring::auth::make_verifier(settings_of({}, true));
  CHECK(static_cast<bool>(dev.verifier));
  CHECK(dev.warning.find("development") != std::string::npos);
  CHECK(static_cast<bool>(
    goring::auth::make_verifier(settings_of({"GORING_ENV=development"})).verifier));

  auto real = goring::auth::make_verifier(settings_of({"JWT_SECRET=a-real-secret"}));
  CHECK(static_cast<bool>(real.verifier));
  CHECK(real.warning.empty());
  // Only RS256 allowed: the default secret is never used, so no refusal.
  auto key_file = goring::test::write_temp_file("rsa-pub", rsa_key().public_pem);
  auto rs = goring::auth::make_verifier(
    settings_of({"JWT_ALGORITHMS=RS256", "JWT_PUBLIC_KEY_FILE=" + key_file}));
  CAPTURE(rs.error);
  CHECK(static_cast<bool>(rs.verifier));
}

TEST_CASE("a public key setting that cannot work stops the start with a reason") {
  auto rsa_file = goring::test::write_temp_file("rsa-pub", rsa_key().public_pem);
  auto ec_file = goring::test::write_temp_file("ec-pub", ec_key().public_pem);
  auto private_file = goring::test::write_temp_file("rsa-priv", rsa_key().private_pem);
  auto error_of = [](const std::vector<std::string>& env) {
    auto setup = goring::auth::make_verifier(settings_of(env));
    CHECK(!setup.verifier);
    return setup.error;
  };
  CHECK(error_of({"JWT_ALGORITHMS=RS256"}).find("JWT_PUBLIC_KEY_FILE is not set")
        != std::string::npos);
  CHECK(error_of({"JWT_SECRET=s", "JWT_PUBLIC_KEY_FILE=" + rsa_file}).find("no RS/ES")
        != std::string::npos);
  CHECK(error_of({"JWT_ALGORITHMS=RS256", "JWT_PUBLIC_KEY_FILE=/nonexistent/key.pem"})
          .find("cannot read")
        != std::string::npos);
  CHECK(error_of({"JWT_ALGORITHMS=RS256", "JWT_PUBLIC_KEY_FILE=" + private_file})
          .find("no PEM public key")
        != std::string::npos);
  CHECK(error_of({"JWT_ALGORITHMS=ES256", "JWT_PUBLIC_KEY_FILE=" + rsa_file}).find("EC public key")
        != std::string::npos);
  CHECK(error_of({"JWT_ALGORITHMS=RS256", "JWT_PUBLIC_KEY_FILE=" + ec_file}).find("RSA public key")
        != std::string::npos);
  CHECK(error_of({"JWT_ALGORITHMS=ES384", "JWT_PUBLIC_KEY_FILE=" + ec_file}).find("secp384r1")
        != std::string::npos);
  // The public key as the HMAC secret: algorithm confusion by configuration.
  CHECK(error_of({"JWT_ALGORITHMS=HS256,RS256", "JWT_PUBLIC_KEY_FILE=" + rsa_file,
                  "JWT_SECRET=" + rsa_key().public_pem})
          .find("PEM")
        != std::string::npos);
  auto ok = goring::auth::make_verifier(
    settings_of({"JWT_ALGORITHMS=ES256", "JWT_PUBLIC_KEY_FILE=" + ec_file}));
  CAPTURE(ok.error);
  REQUIRE(static_cast<bool>(ok.verifier));
  CHECK(
    ok.verifier->verify(sign_jwt("ES256", ec_key().private_pem, header_of("ES256"), alice_claims()))
      .valid);
}

// --- where the token comes from ---------------------------------------------

TEST_CASE("bearer_credentials: the Bearer scheme in any case, spaces trimmed, nothing else") {
  using goring::auth::bearer_credentials;
  CHECK(bearer_credentials("Bearer abc") == std::string_view{"abc"});
  CHECK(bearer_credentials("  bEaReR \t abc  ") == std::string_view{"abc"});
  CHECK_FALSE(bearer_credentials("Basic abc"));
  CHECK_FALSE(bearer_credentials("Bearerabc"));
  CHECK_FALSE(bearer_credentials("Bearer"));
  CHECK_FALSE(bearer_credentials(""));
}

TEST_CASE("the token comes from the query, a Bearer header or a subprotocol, exactly one") {
  using goring::auth::find_token;
  using views = std::vector<std::string_view>;
  auto query = find_token(std::string{"q.q.q"}, {}, {});
  CHECK(query.token == std::string{"q.q.q"});
  CHECK(query.where == "query");
  CHECK(query.subprotocol.empty());

  auto bearer = find_token(std::nullopt, views{"Bearer a.b.c"}, {});
  CHECK(bearer.token == std::string{"a.b.c"});
  CHECK(bearer.where == "authorization");
  CHECK(find_token(std::nullopt, views{"bearer   a.b.c  "}, {}).token == std::string{"a.b.c"});
  // Another scheme is not a token (a proxy's Basic auth, say).
  CHECK_FALSE(find_token(std::nullopt, views{"Basic dXNlcjpwdw=="}, {}).token);
  CHECK_FALSE(find_token(std::nullopt, views{"Bearer"}, {}).token);
  CHECK_FALSE(find_token(std::nullopt, views{"Bearera.b.c"}, {}).token);

  auto browser = find_token(std::nullopt, {}, views{"goring, goring.bearer.x.y.z"});
  CHECK(browser.token == std::string{"x.y.z"});
  CHECK(browser.where == "subprotocol");
  CHECK(browser.subprotocol == "goring");
  CHECK(browser.refusal.empty());
  // Split over two headers, other subprotocols around.
  auto split = find_token(std::nullopt, {}, views{"chat", "goring.bearer.x.y.z ,goring"});
  CHECK(split.token == std::string{"x.y.z"});
  CHECK(split.subprotocol == "goring");
  // The marker alone (token in the query) is still selected.
  auto marker = find_token(std::string{"q.q.q"}, {}, views{"goring"});
  CHECK(marker.where == "query");
  CHECK(marker.subprotocol == "goring");

  // A token subprotocol without the marker could only be answered by
  // echoing the token: refused.
  auto lone = find_token(std::nullopt, {}, views{"goring.bearer.x.y.z"});
  CHECK_FALSE(lone.token);
  CHECK(lone.refusal.find("'goring'") != std::string::npos);
  CHECK(lone.refusal.find("x.y.z") == std::string::npos);

  // Two places, or two of one kind: refused, naming the places only.
  auto two = find_token(std::string{"q.q.q"}, views{"Bearer a.b.c"}, {});
  CHECK_FALSE(two.token);
  CHECK(two.refusal.find("query, authorization") != std::string::npos);
  CHECK(two.refusal.find("a.b.c") == std::string::npos);
  CHECK_FALSE(find_token(std::nullopt, views{"Bearer a.b.c", "Bearer d.e.f"}, {}).token);
  CHECK_FALSE(
    find_token(std::nullopt, {}, views{"goring,goring.bearer.a.b.c,goring.bearer.d.e.f"}).token);
  CHECK_FALSE(find_token(std::string{"q.q.q"}, {}, views{"goring, goring.bearer.a.b.c"}).token);
  // Empty values count as absent.
  CHECK_FALSE(find_token(std::string{}, {}, {}).token);
  CHECK(find_token(std::string{}, views{"Bearer a.b.c"}, {}).token == std::string{"a.b.c"});
}

TEST_CASE("HS256, HS384 and HS512 tokens verify, and one changed signature byte anywhere is "
          "refused") {
  // goring checks HS signatures itself, in constant time, before the library.
  jwt_verifier hs{options_for({"HS256", "HS384", "HS512"})};
  for (auto [alg, md] : {std::pair{"HS256", EVP_sha256()}, std::pair{"HS384", EVP_sha384()},
                         std::pair{"HS512", EVP_sha512()}}) {
    CAPTURE(alg);
    auto input = signing_input(header_of(alg), alice_claims());
    auto raw_mac = mac(md, secret, input);
    auto check = hs.verify(input + "." + base64url(raw_mac));
    CAPTURE(check.refusal);
    REQUIRE(check.valid.has_value());
    CHECK(check.valid->user_id == "alice");
    // The first, a middle and the last byte of the MAC, each changed alone.
    for (std::size_t at : {std::size_t{0}, raw_mac.size() / 2, raw_mac.size() - 1}) {
      auto changed = raw_mac;
      changed[at] = static_cast<char>(changed[at] ^ 0x01);
      refused_by(hs, input + "." + base64url(changed), "signature invalid");
    }
    // The MAC of another algorithm of the family: another length.
    auto* other = md == EVP_sha256() ? EVP_sha512() : EVP_sha256();
    refused_by(hs, input + "." + base64url(mac(other, secret, input)), "signature invalid");
    refused_by(hs, input + "." + base64url(raw_mac.substr(0, raw_mac.size() - 1)),
               "signature invalid");
  }
}

TEST_CASE("with JWT_JWKS_URL the keys come from it: no JWT_SECRET needed, no PEM file beside it") {
  auto jwks = goring::auth::make_verifier(settings_of(
    {"JWT_ALGORITHMS=RS256,ES256", "JWT_JWKS_URL=https://idp.example/jwks", "JWT_USER_CLAIM=sub"}));
  CAPTURE(jwks.error);
  REQUIRE(static_cast<bool>(jwks.verifier));
  REQUIRE(static_cast<bool>(jwks.jwks));
  CHECK_FALSE(jwks.verifier->keys_ready());
  CHECK(jwks.warning.empty());

  auto error_of = [](const std::vector<std::string>& env) {
    auto setup = goring::auth::make_verifier(settings_of(env));
    CHECK(!setup.verifier);
    return setup.error;
  };
  auto rsa_file = goring::test::write_temp_file("rsa-pub", rsa_key().public_pem);
  CHECK(error_of({"JWT_ALGORITHMS=RS256", "JWT_JWKS_URL=https://idp.example/jwks",
                  "JWT_PUBLIC_KEY_FILE=" + rsa_file})
          .find("both set")
        != std::string::npos);
  CHECK(error_of({"JWT_SECRET=s", "JWT_JWKS_URL=https://idp.example/jwks"})
          .find("allows no RS/PS/ES algorithm")
        != std::string::npos);
  // An HS algorithm beside the JWKS still wants a real secret.
  CHECK(error_of({"JWT_ALGORITHMS=HS256,RS256", "JWT_JWKS_URL=https://idp.example/jwks"})
          .find("default development secret")
        != std::string::npos);
  // No JWKS means the key must come from a file.
  CHECK(error_of({"JWT_ALGORITHMS=PS256"}).find("JWT_JWKS_URL") != std::string::npos);
}
