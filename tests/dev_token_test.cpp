/// Development tokens (POST /dev/token): what bodies are taken, and that a
/// minted token passes goring's own verifier with the claims asked for.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "config/config.hpp"
#include "auth/dev_token.hpp"
#include "auth/jwt_auth.hpp"
#include "tests/support/ws_client.hpp"

namespace {

using namespace goring::auth;
using goring::test::json;

long long now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

goring::settings dev_settings() {
  goring::settings s;
  s.dev_mode = true;
  s.jwt_secret = "dev-token-test-secret";
  return s;
}

/// Checks that `body` is refused with an error that mentions `word`.
void check_refused(const std::string& body, const std::string& word) {
  auto parsed = parse_dev_token_request(body);
  CAPTURE(body);
  CAPTURE(parsed.error);
  CHECK_FALSE(parsed.request);
  CHECK(parsed.error.find(word) != std::string::npos);
}

} // namespace

TEST_CASE("a body with user_id and an optional name is taken") {
  auto a = parse_dev_token_request(R"({"user_id":"alice","name":"Alice"})");
  REQUIRE(a.request);
  CHECK(a.request->user_id == "alice");
  CHECK(a.request->name == "Alice");
  auto b = parse_dev_token_request(R"({"user_id":"bob.smith@example-1_x"})");
  REQUIRE(b.request);
  CHECK(b.request->name.empty());
  auto c = parse_dev_token_request(R"({"user_id":"carol","name":null,"other":[1]})");
  REQUIRE(c.request);
  auto d = parse_dev_token_request(R"({"user_id":"dave","name":"Dävé 😀"})");
  REQUIRE(d.request);
  CHECK(d.request->name == "Dävé 😀");
}

TEST_CASE("bad bodies are refused with a reason") {
  check_refused("", "not JSON");
  check_refused("user_id=alice", "not JSON");
  check_refused(std::string(10000, '['), "not JSON");
  check_refused("[]", "object");
  check_refused("\"alice\"", "object");
  check_refused("{}", "'user_id' is missing");
  check_refused(R"({"user_id":7})", "'user_id' must be a string");
  check_refused(R"({"user_id":""})", "'user_id' must be 1 to 256");
  check_refused(R"({"user_id":"a b"})", "A-Z a-z 0-9");
  check_refused(R"({"user_id":"a:b"})", "A-Z a-z 0-9");
  check_refused(R"({"user_id":"a/b"})", "A-Z a-z 0-9");
  check_refused(R"({"user_id":"al\u0000ice"})", "A-Z a-z 0-9");
  check_refused("{\"user_id\":\"" + std::string(257, 'a') + "\"}", "1 to 256");
  check_refused(R"({"user_id":"alice","name":5})", "'name' must be a string");
  check_refused("{\"user_id\":\"alice\",\"name\":\"" + std::string(65, 'n') + "\"}",
                "longer than 64");
  check_refused("{\"user_id\":\"alice\",\"name\":\"\xff\xfe\"}", "UTF-8");
  check_refused(R"({"user_id":"alice","name":"a\u0000b"})", "NUL");
}

TEST_CASE("user ids: 1 to 256 characters of A-Z a-z 0-9 . _ @ -") {
  CHECK(valid_dev_user_id("alice"));
  CHECK(valid_dev_user_id("A.b_c@d-9"));
  CHECK(valid_dev_user_id(std::string(256, 'a')));
  CHECK_FALSE(valid_dev_user_id(std::string(257, 'a')));
  CHECK_FALSE(valid_dev_user_id(""));
  CHECK_FALSE(valid_dev_user_id("ali ce"));
  CHECK_FALSE(valid_dev_user_id("ålice"));
}

TEST_CASE("a minted token passes goring's verifier with the claims asked for") {
  auto s = dev_settings();
  auto now = now_seconds();
  auto token = mint_dev_token(s, {"alice", "Alice"}, now);
  CHECK(token.expires_at == now + 3600);
  auto setup = make_verifier(s);
  REQUIRE(setup.verifier);
  auto check = setup.verifier->verify(token.token);
  CAPTURE(check.refusal);
  REQUIRE(check.valid);
  CHECK(check.valid->user_id == "alice");
  CHECK(check.valid->name == "Alice");
  CHECK(check.valid->username == "alice");
  REQUIRE(check.valid->expires_at);
  CHECK(
    std::chrono::duration_cast<std::chrono::seconds>(check.valid->expires_at->time_since_epoch())
      .count()
    == now + 3600);
}

TEST_CASE("with JWT_USER_CLAIM=sub the user id goes into sub, where the verifier looks") {
  auto s = dev_settings();
  s.jwt_user_claim = "sub";
  auto token = mint_dev_token(s, {"alice", "Alice"}, now_seconds());
  auto setup = make_verifier(s);
  REQUIRE(setup.verifier);
  auto check = setup.verifier->verify(token.token);
  CAPTURE(check.refusal);
  REQUIRE(check.valid);
  CHECK(check.valid->user_id == "alice");
  // A verifier that looks in `hash` does not find it there.
  s.jwt_user_claim = "hash";
  CHECK_FALSE(make_verifier(s).verifier->verify(token.token).valid);
}

TEST_CASE("with JWT_ISSUER and JWT_AUDIENCE the token carries them and still verifies") {
  auto s = dev_settings();
  s.jwt_issuer = "https://issuer.example";
  s.jwt_audience = "goring";
  auto token = mint_dev_token(s, {"bob", ""}, now_seconds());
  auto setup = make_verifier(s);
  REQUIRE(setup.verifier);
  auto check = setup.verifier->verify(token.token);
  CAPTURE(check.refusal);
  REQUIRE(check.valid);
  CHECK(check.valid->user_id == "bob");
  CHECK(check.valid->name.empty());
}

TEST_CASE("minting needs HS256 among JWT_ALGORITHMS") {
  auto s = dev_settings();
  CHECK(dev_token_unavailable(s).empty());
  s.jwt_algorithms = {"HS256", "RS256"};
  CHECK(dev_token_unavailable(s).empty());
  s.jwt_algorithms = {"RS256"};
  CHECK(dev_token_unavailable(s).find("HS256") != std::string::npos);
  s.jwt_algorithms = {"HS512"};
  CHECK_FALSE(dev_token_unavailable(s).empty());
}

TEST_CASE("the answer and error bodies are JSON") {
  auto answer = json::parse(encode_dev_token({"a.b.c", 42}, "alice"));
  REQUIRE(answer.is_object());
  CHECK(answer.str("token") == "a.b.c");
  CHECK(answer.str("user_id") == "alice");
  CHECK(answer.value()["expires_at"].GetInt64() == 42);
  auto error = json::parse(encode_error_body("field \"x\" is bad"));
  CHECK(error.str("error") == "field \"x\" is bad");
}
