/// The ice.servers message: TURN credentials of coturn's REST API scheme
/// checked against HMAC-SHA1 vectors computed with openssl, and the frame's
/// shape for STUN only, TURN only and both.
#include <doctest/doctest.h>

#include <string>

#include "actors/ice_servers.hpp"
#include "config/config.hpp"
#include "tests/support/ws_client.hpp"

namespace {

using goring::test::json;
using namespace goring::ice;

goring::settings with_ice(std::vector<std::string> stun, std::vector<std::string> turn,
                          std::string secret = {}, long long ttl = 3600) {
  goring::settings s;
  s.stun_urls = std::move(stun);
  s.turn_urls = std::move(turn);
  s.turn_secret = std::move(secret);
  s.turn_ttl = std::chrono::seconds{ttl};
  return s;
}

std::vector<std::string> urls_of(const rapidjson::Value& server) {
  std::vector<std::string> out;
  for (auto& url : server["urls"].GetArray())
    out.emplace_back(url.GetString(), url.GetStringLength());
  return out;
}

} // namespace

TEST_CASE("HMAC-SHA1 in base64 matches openssl's") {
  // printf '%s' 'what do ya want for nothing?' | openssl dgst -sha1 -hmac Jefe -binary | base64
  CHECK(hmac_sha1_base64("Jefe", "what do ya want for nothing?") == "7/zfauXrL6LSdBbV8YTfnCWafHk=");
  // printf '' | openssl dgst -sha1 -hmac '' -binary | base64
  CHECK(hmac_sha1_base64("", "") == "+9sdGxiqbAgyS31ktx+3Y3BpDh0=");
}

TEST_CASE("TURN credentials: username expiry:user_id, credential its HMAC with the secret") {
  // printf '%s' '1700003600:alice' | openssl dgst -sha1 -hmac coturn-shared-secret -binary | base64
  auto c = make_turn_credentials("coturn-shared-secret", "alice", 1700003600);
  CHECK(c.username == "1700003600:alice");
  CHECK(c.credential == "igdZ8kesMome7M9yvKcGWZZbLTc=");
}

TEST_CASE("without STUN_URLS and TURN_URLS there is no ice.servers message") {
  goring::settings s;
  CHECK_FALSE(enabled(s));
  CHECK_FALSE(refreshes(s));
}

TEST_CASE("STUN only: one entry with its urls, no credentials, no ttl, no refresh") {
  auto s = with_ice({"stun:stun.example.org:3478", "stun:[::1]:3478"}, {});
  CHECK(enabled(s));
  CHECK_FALSE(refreshes(s));
  auto frame = json::parse(encode_ice_servers(s, "alice", 1700000000));
  REQUIRE(frame.is_object());
  CHECK(frame.str("type") == "ice.servers");
  auto payload = frame.at("payload");
  CHECK_FALSE(payload.has("ttl"));
  CHECK_FALSE(payload.has("expires_at"));
  auto& servers = payload.value()["ice_servers"];
  REQUIRE(servers.Size() == 1);
  CHECK(urls_of(servers[0])
        == std::vector<std::string>{"stun:stun.example.org:3478", "stun:[::1]:3478"});
  CHECK_FALSE(servers[0].HasMember("username"));
  CHECK_FALSE(servers[0].HasMember("credential"));
}

TEST_CASE("STUN and TURN: the STUN entry, then the TURN entry with REST credentials") {
  auto s = with_ice({"stun:h:3478"}, {"turn:h:3478?transport=udp", "turn:h:3478?transport=tcp"},
                    "coturn-shared-secret", 3600);
  CHECK(enabled(s));
  CHECK(refreshes(s));
  auto frame = json::parse(encode_ice_servers(s, "alice", 1700000000));
  REQUIRE(frame.is_object());
  auto payload = frame.at("payload");
  auto& p = payload.value();
  CHECK(p["ttl"].GetInt64() == 3600);
  CHECK(p["expires_at"].GetInt64() == 1700003600);
  auto& servers = p["ice_servers"];
  REQUIRE(servers.Size() == 2);
  CHECK(urls_of(servers[0]) == std::vector<std::string>{"stun:h:3478"});
  CHECK(urls_of(servers[1])
        == std::vector<std::string>{"turn:h:3478?transport=udp", "turn:h:3478?transport=tcp"});
  CHECK(std::string{servers[1]["username"].GetString()} == "1700003600:alice");
  CHECK(std::string{servers[1]["credential"].GetString()} == "igdZ8kesMome7M9yvKcGWZZbLTc=");
}

TEST_CASE("TURN only: a single entry with credentials") {
  auto s = with_ice({}, {"turns:turn.example.org:5349"}, "k", 60);
  auto frame = json::parse(encode_ice_servers(s, "bob", 100));
  auto payload = frame.at("payload");
  auto& servers = payload.value()["ice_servers"];
  REQUIRE(servers.Size() == 1);
  CHECK(std::string{servers[0]["username"].GetString()} == "160:bob");
  CHECK(std::string{servers[0]["credential"].GetString()} == hmac_sha1_base64("k", "160:bob"));
  CHECK(payload.value()["ttl"].GetInt64() == 60);
}

TEST_CASE("user ids with JSON specials are escaped in the frame") {
  auto s = with_ice({}, {"turn:h"}, "k");
  auto frame = json::parse(encode_ice_servers(s, "a\"b\\c", 0));
  REQUIRE(frame.is_object());
  auto payload = frame.at("payload");
  CHECK(std::string{payload.value()["ice_servers"][0]["username"].GetString()} == "3600:a\"b\\c");
}

TEST_CASE("fresh credentials are due at 80 % of TURN_TTL") {
  using namespace std::chrono_literals;
  CHECK(refresh_interval(with_ice({}, {"turn:h"}, "k", 3600)) == 2880s);
  CHECK(refresh_interval(with_ice({}, {"turn:h"}, "k", 2)) == 1600ms);
  CHECK(refresh_interval(with_ice({}, {"turn:h"}, "k", 1)) == 800ms);
}
