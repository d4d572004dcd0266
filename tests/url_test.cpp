/// The URLs goring calls out to: what parses, what is refused, and where
/// plain http:// may go.
#include <doctest/doctest.h>

#include <string>

#include "outbound/url.hpp"

using goring::outbound::is_loopback_host;
using goring::outbound::outbound_url_problem;
using goring::outbound::parse_url;

TEST_CASE("https and http URLs parse into host, port and target") {
  auto u = parse_url("https://idp.example.com/.well-known/jwks.json?realm=a");
  REQUIRE(u.value.has_value());
  CHECK(u.value->scheme == "https");
  CHECK(u.value->tls());
  CHECK(u.value->host == "idp.example.com");
  CHECK(u.value->port == 443);
  CHECK(u.value->target == "/.well-known/jwks.json?realm=a");
  CHECK(u.value->host_header() == "idp.example.com");
  CHECK(u.value->shown() == "https://idp.example.com/.well-known/jwks.json");

  u = parse_url("HTTP://LocalHost:8081");
  REQUIRE(u.value.has_value());
  CHECK(u.value->scheme == "http");
  CHECK(u.value->host == "localhost");
  CHECK(u.value->port == 8081);
  CHECK(u.value->target == "/");
  CHECK(u.value->host_header() == "localhost:8081");

  u = parse_url("http://[::1]:9000/keys");
  REQUIRE(u.value.has_value());
  CHECK(u.value->host == "::1");
  CHECK(u.value->port == 9000);
  CHECK(u.value->host_header() == "[::1]:9000");

  u = parse_url("https://10.0.0.7?x=1");
  REQUIRE(u.value.has_value());
  CHECK(u.value->target == "/?x=1");
  CHECK(parse_url("http://127.0.0.1:80/").value->host_header() == "127.0.0.1");
}

TEST_CASE("other schemes, user info, fragments, bad hosts and ports are refused with a reason") {
  struct refused {
    std::string text;
    std::string words;
  };
  for (auto& c : std::initializer_list<refused>{
         {"", "scheme://"},
         {"idp.example.com/jwks", "scheme://"},
         {"ftp://idp.example.com/jwks", "neither http nor https"},
         {"file:///etc/passwd", "neither http nor https"},
         {"https://user:pw@idp.example.com/jwks", "user info"},
         {"https://idp.example.com/jwks#keys", "fragment"},
         {"https:///jwks", "no host"},
         {"https://:443/jwks", "no host"},
         {"https://idp example.com/", "space"},
         {"https://idp.example.com/\x01", "control"},
         {"https://idp.exämple.com/", "non-ASCII"},
         {"https://idp%2eexample.com/", "not a host name"},
         {"https://idp.example.com:/", "not a number"},
         {"https://idp.example.com:0/", "out of range"},
         {"https://idp.example.com:65536/", "out of range"},
         {"https://idp.example.com:44x/", "not a number"},
         {"https://[::1/", "closing ']'"},
         {"https://[not-v6]/", "not an IPv6 address"},
         {"https://[::1]x/", "junk"},
         {"https://" + std::string(3000, 'a') + "/", "longer than"},
       }) {
    CAPTURE(c.text);
    auto u = parse_url(c.text);
    CHECK_FALSE(u.value.has_value());
    CAPTURE(u.error);
    CHECK(u.error.find(c.words) != std::string::npos);
  }
}

TEST_CASE("loopback hosts by their text: localhost, 127.0.0.0/8 and ::1") {
  for (auto host : {"localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1"})
    CHECK_MESSAGE(is_loopback_host(host), host);
  for (auto host : {"10.0.0.1", "128.0.0.1", "::2", "::ffff:10.0.0.1", "localhost.example.com",
                    "example.com", "0.0.0.0", ""})
    CHECK_MESSAGE(!is_loopback_host(host), host);
}

TEST_CASE("plain http goes to loopback only, https goes anywhere") {
  auto problem = [](const std::string& text) {
    auto u = parse_url(text);
    REQUIRE(u.value.has_value());
    return outbound_url_problem(*u.value, "JWT_JWKS_URL");
  };
  CHECK(problem("https://idp.example.com/jwks").empty());
  CHECK(problem("https://127.0.0.1/jwks").empty());
  CHECK(problem("http://127.0.0.1:8081/jwks").empty());
  CHECK(problem("http://localhost/jwks").empty());
  CHECK(problem("http://[::1]:8081/jwks").empty());
  auto refused = problem("http://idp.example.com/jwks?secret=1");
  CHECK(refused.find("JWT_JWKS_URL") != std::string::npos);
  CHECK(refused.find("https://") != std::string::npos);
  CHECK(refused.find("secret") == std::string::npos);
  CHECK_FALSE(problem("http://10.1.2.3/jwks").empty());
}
