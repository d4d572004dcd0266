/// End to end: how clients authenticate. RS256/ES256 with a public key,
/// the algorithm allowlist, exp/iss/aud, the three places a token may come
/// from, tokens that expire mid-connection and auth.refresh, the refusal to
/// start with the development secret, and logs that never hold a token.
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <sys/wait.h>

#include "tests/support/goring_process.hpp"
#include "tests/support/process.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/token.hpp"
#include "tests/support/ws_client.hpp"

using namespace goring::test;

namespace {

long long unix_now() {
  return static_cast<long long>(std::time(nullptr));
}

/// One goring and its own Redis.
struct one_instance {
  redis_server redis;
  goring_process goring;

  explicit one_instance(std::map<std::string, std::string> env = {})
    : goring(redis.addr(), "goring-1", std::move(env)) {
    // nop
  }
};

/// A token for `user_id` that lives `seconds` from now.
std::string token_living(const std::string& user_id, long long seconds) {
  token_spec spec;
  spec.user_id = user_id;
  spec.name = display_name_of(user_id);
  spec.expires_in = std::chrono::seconds{seconds};
  return mint_token(spec);
}

/// A token for `user_id` with `alg`, signed with `key` (a secret or a
/// private key PEM).
std::string token_signed(const std::string& user_id, const std::string& alg,
                         const std::string& key) {
  token_spec spec;
  spec.user_id = user_id;
  spec.algorithm = alg;
  spec.secret = key;
  return mint_token(spec);
}

std::string header_of(const std::string& alg) {
  return R"({"alg":")" + alg + R"(","typ":"JWT"})";
}

std::string claims_of(const std::string& user_id) {
  return R"({"hash":")" + user_id + R"(","exp":)" + std::to_string(unix_now() + 600) + "}";
}

void check_still_serves(ws_client& client) {
  INFO(client.label(), " still serves");
  client.start_call("nobody-is-here");
  client.expect_error("user_offline");
}

void send_refresh(ws_client& client, const std::string& token) {
  client.send("auth.refresh", json_fields({{"token", token}}));
}

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

} // namespace

TEST_CASE("RS256 tokens verify with JWT_PUBLIC_KEY_FILE, HS256 and the confusion attack do not") {
  auto key_file = write_temp_file("rsa-pub", rsa_key().public_pem);
  one_instance env{{{"JWT_ALGORITHMS", "RS256"}, {"JWT_PUBLIC_KEY_FILE", key_file}}};
  auto port = env.goring.port();

  ws_client alice{"alice"};
  connect_online(alice, env.goring, env.redis,
                 token_signed("alice", "RS256", rsa_key().private_pem));
  check_still_serves(alice);

  struct refused {
    const char* what;
    std::string token;
  };
  std::vector<refused> cases{
    {"HS256 with the server's JWT_SECRET", token_signed("mallory", "HS256", test_jwt_secret)},
    {"HS256 signed with the public key text (algorithm confusion)",
     token_signed("mallory", "HS256", rsa_key().public_pem)},
    {"ES256 from another key", token_signed("mallory", "ES256", ec_key().private_pem)},
    {"the RS256 signature under an RS512 header", base64url(header_of("RS512")) +
                                                    [] {
                                                      auto t = token_signed("mallory", "RS256",
                                                                            rsa_key().private_pem);
                                                      return t.substr(t.find('.'));
                                                    }()},
    {"alg none", flawed_token("mallory", token_flaw::alg_none)},
  };
  for (auto& c : cases) {
    INFO(c.what);
    ws_client mallory{"mallory"};
    auto answer = mallory.try_connect_with(port, "/ws?token=" + c.token, {});
    CHECK(answer.status == 401);
    CHECK(answer.body.find("not allowed") != std::string::npos);
  }
}

TEST_CASE("ES256 tokens verify with an EC public key, an RS256 token under ES256 does not") {
  auto key_file = write_temp_file("ec-pub", ec_key().public_pem);
  one_instance env{{{"JWT_ALGORITHMS", "ES256"}, {"JWT_PUBLIC_KEY_FILE", key_file}}};
  ws_client bob{"bob"};
  connect_online(bob, env.goring, env.redis, token_signed("bob", "ES256", ec_key().private_pem));
  check_still_serves(bob);

  // An RS256 signature relabelled ES256: the right algorithm, the wrong
  // signature.
  auto rs = sign_jwt("RS256", rsa_key().private_pem, header_of("RS256"), claims_of("mallory"));
  auto relabelled = base64url(header_of("ES256")) + rs.substr(rs.find('.'));
  ws_client mallory{"mallory"};
  auto answer = mallory.try_connect_with(env.goring.port(), "/ws?token=" + relabelled, {});
  CHECK(answer.status == 401);
  CHECK(answer.body.find("signature invalid") != std::string::npos);
  CHECK(mallory.try_connect(env.goring.port(), user_token("mallory")) == 401);
}

TEST_CASE("exp is required by default, iss and aud are checked when set") {
  SUBCASE("exp required") {
    one_instance env;
    token_spec spec;
    spec.user_id = "carol";
    spec.with_exp = false;
    ws_client carol{"carol"};
    auto answer = carol.try_connect_with(env.goring.port(), "/ws?token=" + mint_token(spec), {});
    CHECK(answer.status == 401);
    CHECK(answer.body.find("exp") != std::string::npos);
  }
  SUBCASE("JWT_REQUIRE_EXP=false lets a token without exp in, for good") {
    one_instance env{{{"JWT_REQUIRE_EXP", "false"}}};
    token_spec spec;
    spec.user_id = "carol";
    spec.with_exp = false;
    ws_client carol{"carol"};
    connect_online(carol, env.goring, env.redis, mint_token(spec));
    check_still_serves(carol);
  }
  SUBCASE("issuer and audience") {
    one_instance env{{{"JWT_ISSUER", "https://auth.example"}, {"JWT_AUDIENCE", "goring"}}};
    token_spec spec;
    spec.user_id = "carol";
    spec.issuer = "https://auth.example";
    spec.audience = "goring";
    ws_client carol{"carol"};
    connect_online(carol, env.goring, env.redis, mint_token(spec));
    auto wrong_issuer = spec;
    wrong_issuer.issuer = "https://evil.example";
    auto no_audience = spec;
    no_audience.audience.clear();
    for (auto& bad : {wrong_issuer, no_audience}) {
      ws_client mallory{"carol"};
      CHECK(mallory.try_connect(env.goring.port(), mint_token(bad)) == 401);
    }
    check_still_serves(carol);
  }
}

TEST_CASE("the token may come from Authorization: Bearer or Sec-WebSocket-Protocol, once") {
  one_instance env;
  auto port = env.goring.port();

  SUBCASE("Authorization: Bearer") {
    ws_client alice{"alice"};
    auto answer =
      alice.try_connect_with(port, "/ws", {{"Authorization", "Bearer " + user_token("alice")}});
    REQUIRE(answer.status == 101);
    CHECK(answer.subprotocol.empty());
    wait_online(env.redis, "alice");
    check_still_serves(alice);
  }
  SUBCASE(
    "Sec-WebSocket-Protocol, as a browser sends it: the marker is selected, never the token") {
    auto token = user_token("alice");
    ws_client alice{"alice"};
    auto answer = alice.try_connect_with(
      port, "/ws", {{"Sec-WebSocket-Protocol", "goring, goring.bearer." + token}});
    REQUIRE(answer.status == 101);
    CHECK(answer.subprotocol == "goring");
    CHECK(answer.subprotocol.find(token) == std::string::npos);
    wait_online(env.redis, "alice");
    check_still_serves(alice);
  }
  SUBCASE("the marker alone with the token in the query is selected too") {
    ws_client alice{"alice"};
    auto answer = alice.try_connect_with(port, "/ws?token=" + user_token("alice"),
                                         {{"Sec-WebSocket-Protocol", "goring"}});
    REQUIRE(answer.status == 101);
    CHECK(answer.subprotocol == "goring");
  }
  SUBCASE("refused: two places, a token subprotocol without the marker, a bad bearer") {
    auto token = user_token("mallory");
    struct refused {
      const char* what;
      std::string target;
      header_list headers;
      const char* words;
    };
    std::vector<refused> cases{
      {"query and Authorization",
       "/ws?token=" + token,
       {{"Authorization", "Bearer " + token}},
       "more than once"},
      {"Authorization and subprotocol",
       "/ws",
       {{"Authorization", "Bearer " + token},
        {"Sec-WebSocket-Protocol", "goring, goring.bearer." + token}},
       "more than once"},
      {"a token subprotocol alone",
       "/ws",
       {{"Sec-WebSocket-Protocol", "goring.bearer." + token}},
       "'goring'"},
      {"an expired bearer",
       "/ws",
       {{"Authorization", "Bearer " + flawed_token("mallory", token_flaw::expired)}},
       "expired"},
      {"a Basic Authorization only",
       "/ws",
       {{"Authorization", "Basic bWFsbG9yeTpwdw=="}},
       "missing token"},
    };
    for (auto& c : cases) {
      INFO(c.what);
      ws_client mallory{"mallory"};
      auto answer = mallory.try_connect_with(port, c.target, c.headers);
      CHECK(answer.status == 401);
      CHECK(answer.body.find(c.words) != std::string::npos);
      CHECK(answer.body.find(token) == std::string::npos);
    }
  }
}

TEST_CASE("a token that expires mid-connection closes it with 4001 token expired") {
  one_instance env{{{"JWT_LEEWAY", "0s"}}};
  ws_client alice{"alice"};
  connect_online(alice, env.goring, env.redis, token_living("alice", 4));
  auto close = alice.expect_close(std::chrono::seconds(8));
  REQUIRE(close);
  CHECK(close->code == 4001);
  CHECK(close->reason == "token expired");
  // The user is gone: presence released.
  CHECK(wait_until([&] { return presence_owner(env.redis, "alice").empty(); },
                   std::chrono::seconds(3)));
}

TEST_CASE("auth.refresh with a new token of the same user keeps the connection past the old exp") {
  one_instance env{{{"JWT_LEEWAY", "0s"}}};
  ws_client alice{"alice"};
  // Lifetimes here leave a loaded machine seconds for the steps before exp.
  auto first_exp = unix_now() + 5;
  connect_online(alice, env.goring, env.redis, token_living("alice", 5));
  auto later = token_living("alice", 3600);
  send_refresh(alice, later);
  auto refreshed = alice.expect("auth.refreshed");
  REQUIRE(refreshed.value().HasMember("expires_at"));
  REQUIRE(refreshed.value()["expires_at"].IsInt64());
  CHECK(refreshed.value()["expires_at"].GetInt64() >= unix_now() + 3500);
  // Well past the first token's exp, nothing closed the connection.
  alice.expect_nothing(
    std::chrono::milliseconds(std::max<long long>(0, (first_exp + 2 - unix_now()) * 1000)));
  CHECK(unix_now() > first_exp + 1);
  check_still_serves(alice);
  CHECK(alice.is_open());
}

TEST_CASE("a refresh for another user or with a bad token is unauthorized and the old exp "
          "still applies") {
  one_instance env{{{"JWT_LEEWAY", "0s"}}};
  ws_client alice{"alice"};
  connect_online(alice, env.goring, env.redis, token_living("alice", 6));
  send_refresh(alice, user_token("bob"));
  auto refused = alice.expect_error("unauthorized");
  CHECK(refused.str("message").find("another user") != std::string::npos);
  send_refresh(alice, flawed_token("alice", token_flaw::wrong_secret));
  alice.expect_error("unauthorized");
  send_refresh(alice, flawed_token("alice", token_flaw::expired));
  alice.expect_error("unauthorized");
  send_refresh(alice, "not-a-token");
  alice.expect_error("unauthorized");
  alice.send("auth.refresh", "{}");
  alice.expect_error("invalid_message");
  // Still connected until its own token runs out.
  check_still_serves(alice);
  auto close = alice.expect_close(std::chrono::seconds(10));
  REQUIRE(close);
  CHECK(close->code == 4001);
}

TEST_CASE("a call in progress when a token expires ends for the peer with peer_disconnected") {
  one_instance env{{{"JWT_LEEWAY", "0s"}}};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  connect_online(alice, env.goring, env.redis, token_living("alice", 6));
  connect_online(bob, env.goring, env.redis, user_token("bob"));
  auto session = connect_call(alice, bob);
  check_relay(alice, bob, session);
  auto close = alice.expect_close(std::chrono::seconds(10));
  REQUIRE(close);
  CHECK(close->code == 4001);
  expect_ended(bob, session, "peer_disconnected", "alice", std::chrono::seconds(5));
  CHECK(call_released(env.redis, session, "alice", "bob"));
  check_still_serves(bob);
}

TEST_CASE("goring refuses to start with the default secret unless in development mode") {
  redis_server redis;
  auto run = [&](std::vector<std::string> args, std::map<std::string, std::string> extra,
                 const std::string& log) {
    std::map<std::string, std::string> env{{"PORT", std::to_string(free_port())},
                                           {"BIND_ADDR", "127.0.0.1"},
                                           {"REDIS_ADDR", redis.addr()},
                                           {"ADMIN_PORT", "0"},
                                           {"JWT_SECRET", ""},
                                           {"GORING_ENV", ""}};
    for (auto& [k, v] : extra)
      env[k] = v;
    args.insert(args.begin(), GORING_BINARY);
    return std::make_pair(child_process{args, env, log}, std::stoi(env["PORT"]));
  };
  auto log = write_temp_file("goring-no-secret", "");
  {
    auto started = run({}, {}, log);
    auto& goring = started.first;
    CHECK(wait_until([&] { return !goring.running(); }, std::chrono::seconds(5)));
    auto status = goring.stop(SIGKILL, std::chrono::seconds(1));
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 2);
    auto text = read_file(log);
    CHECK(text.find("default development secret") != std::string::npos);
    CHECK(text.find("GORING_ENV=development") != std::string::npos);
  }
  for (auto& [how, args, extra] : std::vector<
         std::tuple<std::string, std::vector<std::string>, std::map<std::string, std::string>>>{
         {"--dev", {"--dev"}, {}},
         {"GORING_ENV=development", {}, {{"GORING_ENV", "development"}}}}) {
    INFO("started with ", how);
    auto dev_log = write_temp_file("goring-dev", "");
    auto started = run(args, extra, dev_log);
    auto& goring = started.first;
    auto port = static_cast<uint16_t>(started.second);
    CHECK(wait_until(
      [&] { return http_get(port, "/health", std::chrono::milliseconds(500)).status == 200; },
      std::chrono::seconds(10)));
    CHECK(goring.running());
    // The development secret works, loudly.
    ws_client dev{"dev"};
    token_spec spec;
    spec.user_id = "dev";
    spec.secret = "dev-secret-change-in-production";
    CHECK(dev.try_connect(port, mint_token(spec)) == 101);
    dev.close();
    auto status = goring.stop(SIGTERM, std::chrono::seconds(10));
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(read_file(dev_log).find("development mode") != std::string::npos);
  }
}

TEST_CASE("no token ever reaches the log, refused or accepted, on upgrade or refresh") {
  one_instance env; // LOG_LEVEL=debug
  auto port = env.goring.port();
  std::vector<std::string> tokens;
  auto remember = [&](std::string token) {
    tokens.push_back(token);
    return token;
  };
  // Refused upgrades, from each place.
  {
    ws_client mallory{"mallory"};
    CHECK(mallory.try_connect(port, remember(flawed_token("mallory", token_flaw::expired))) == 401);
    CHECK(mallory.try_connect(port, remember(flawed_token("mallory", token_flaw::wrong_secret)))
          == 401);
    CHECK(
      mallory
        .try_connect_with(
          port, "/ws",
          {{"Authorization", "Bearer " + remember(flawed_token("mallory", token_flaw::no_hash))}})
        .status
      == 401);
    CHECK(mallory
            .try_connect_with(
              port, "/ws",
              {{"Sec-WebSocket-Protocol", "goring.bearer." + remember(user_token("mallory"))}})
            .status
          == 401);
    auto twice = remember(user_token("mallory"));
    CHECK(
      mallory.try_connect_with(port, "/ws?token=" + twice, {{"Authorization", "Bearer " + twice}})
        .status
      == 401);
  }
  // Accepted upgrades, from each place, and refreshes good and bad.
  ws_client alice{"alice"};
  connect_online(alice, env.goring, env.redis, remember(user_token("alice")));
  ws_client bob{"bob"};
  REQUIRE(bob
            .try_connect_with(port, "/ws",
                              {{"Authorization", "Bearer " + remember(token_living("bob", 900))}})
            .status
          == 101);
  ws_client carol{"carol"};
  REQUIRE(bob.is_open());
  REQUIRE(carol
            .try_connect_with(port, "/ws",
                              {{"Sec-WebSocket-Protocol",
                                "goring,goring.bearer." + remember(token_living("carol", 901))}})
            .status
          == 101);
  wait_online(env.redis, "bob");
  wait_online(env.redis, "carol");
  send_refresh(alice, remember(token_living("alice", 1800)));
  alice.expect("auth.refreshed");
  send_refresh(alice, remember(user_token("bob")));
  alice.expect_error("unauthorized");
  send_refresh(alice, remember(flawed_token("alice", token_flaw::wrong_secret)));
  alice.expect_error("unauthorized");
  alice.close();
  bob.close();
  carol.close();
  CHECK(env.goring.stop() == 0);

  auto log = read_file(env.goring.log_path());
  CHECK(log.find("upgrade refused") != std::string::npos);
  CHECK(log.find("refreshed its token") != std::string::npos);
  for (auto& token : tokens) {
    INFO("token ", token.substr(0, 24), "...");
    CHECK(log.find(token) == std::string::npos);
    // Nor any part of it: header, claims or signature.
    std::size_t start = 0;
    while (start < token.size()) {
      auto dot = token.find('.', start);
      auto part = token.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (part.size() >= 16)
        CHECK(log.find(part) == std::string::npos);
      if (dot == std::string::npos)
        break;
      start = dot + 1;
    }
  }
}

TEST_CASE("a user id nobody could call, too long or with control characters, is refused at the "
          "upgrade and in auth.refresh, with the reason") {
  one_instance env;
  auto port = env.goring.port();
  struct bad_id {
    const char* what;
    std::string user_id;
    const char* reason;
  };
  std::vector<bad_id> cases{
    {"5000 characters", std::string(5000, 'u'), "longer than 256 bytes"},
    {"one byte over the callee_id limit", std::string(257, 'u'), "longer than 256 bytes"},
    {"a NUL", std::string("ali\0ce", 6), "control character"},
    {"a CR LF", "alice\r\nX-Forged: 1", "control character"},
    {"an LF", "alice\nbob", "control character"},
    {"an escape", "alice\x1b[2J", "control character"},
  };
  for (auto& c : cases) {
    INFO(c.what);
    token_spec spec;
    spec.user_id = c.user_id;
    ws_client mallory{"mallory"};
    auto answer =
      mallory.try_connect_with(port, "/ws", {{"Authorization", "Bearer " + mint_token(spec)}});
    CHECK(answer.status == 401);
    CHECK(answer.body.find("unauthorized") != std::string::npos);
    CHECK(answer.body.find(c.reason) != std::string::npos);
    CHECK(answer.body.find(c.user_id) == std::string::npos);
  }
  // The longest id that fits is let in and can be called.
  std::string longest(256, 'l');
  ws_client longest_user{longest};
  connect_online(longest_user, env.goring, env.redis, user_token(longest));
  ws_client alice{"alice"};
  connect_online(alice, env.goring, env.redis, user_token("alice"));
  alice.start_call(longest);
  alice.expect("call.ringing");
  longest_user.expect("call.ring");

  // A refresh to such an id is refused like any bad token; the connection stays.
  ws_client bob{"bob"};
  connect_online(bob, env.goring, env.redis, user_token("bob"));
  for (auto& c : cases) {
    INFO(c.what);
    token_spec spec;
    spec.user_id = c.user_id;
    send_refresh(bob, mint_token(spec));
    auto refused = bob.expect_error("unauthorized");
    CHECK(refused.str("message").find(c.reason) != std::string::npos);
  }
  check_still_serves(bob);
  alice.close();
  bob.close();
  longest_user.close();
  CHECK(env.goring.stop() == 0);

  auto log = read_file(env.goring.log_path());
  CHECK(log.find("upgrade refused") != std::string::npos);
  CHECK(log.find("longer than 256 bytes") != std::string::npos);
  CHECK(log.find("contains a control character") != std::string::npos);
  CHECK(log.find(std::string(5000, 'u')) == std::string::npos);
  CHECK(log.find("X-Forged") == std::string::npos);
}
