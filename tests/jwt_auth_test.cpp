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

#include "net/jwt_auth.hpp"
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

token_check verify(std::string_view token) {
  return jwt_verifier{secret}.verify(token);
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

TEST_CASE("a token without exp is accepted and has no expiry") {
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
