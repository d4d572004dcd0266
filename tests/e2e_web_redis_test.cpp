/// End to end, what the web client needs of the server: the files under
/// WEB_ROOT (headers, traversal and symlinks refused, 405), development
/// tokens from POST /dev/token that connect over /ws, and ice.servers as
/// the first frame with TURN credentials that check out, sent again before
/// they expire. Against the real goring binary and a real Redis.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "actors/ice_servers.hpp"
#include "tests/support/goring_process.hpp"
#include "tests/support/one_instance.hpp"
#include "tests/support/process.hpp"
#include "tests/support/raw_client.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/token.hpp"
#include "tests/support/ws_client.hpp"

using namespace goring::test;

namespace {

namespace fs = std::filesystem;

/// A web root for one test case, removed at its end:
///   root/index.html, root/app.js, root/docs/index.html,
///   root/link-out.txt -> ../outside/secret.txt, outside/secret.txt.
struct web_root {
  fs::path base;
  fs::path root;

  web_root() {
    std::string pattern = (fs::temp_directory_path() / "goring-web-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    base = pattern;
    root = base / "root";
    fs::create_directories(root / "docs");
    fs::create_directories(base / "outside");
    write("outside/secret.txt", "top secret");
    write("root/index.html", "<!doctype html><title>goring</title>");
    write("root/app.js", "console.log('v1');");
    write("root/docs/index.html", "docs");
    write("root/logo.svg",
          "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>");
    fs::create_symlink("../outside/secret.txt", root / "link-out.txt");
  }
  ~web_root() {
    std::error_code ec;
    fs::remove_all(base, ec);
  }
  void write(const std::string& relative, const std::string& text) const {
    std::ofstream out{base / relative, std::ios::binary | std::ios::trunc};
    out << text;
  }
};

/// One HTTP exchange over a raw connection (so paths reach the server as
/// written, "../" included), read until the server closes.
struct http_answer {
  int status = 0;
  std::string head; // status line and headers
  std::string body;

  /// The value of header `name` (matched case-insensitively), "" without.
  std::string header(const std::string& name) const {
    auto lower = [](std::string s) {
      for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return s;
    };
    auto text = lower(head);
    auto at = text.find("\r\n" + lower(name) + ":");
    if (at == std::string::npos)
      return {};
    auto start = at + 2 + name.size() + 1;
    auto end = head.find("\r\n", start);
    auto value = head.substr(start, end - start);
    auto first = value.find_first_not_of(' ');
    return first == std::string::npos ? std::string{} : value.substr(first);
  }
};

http_answer exchange(uint16_t port, const std::string& method, const std::string& target,
                     const std::string& body = {}, const std::string& headers = {}) {
  raw_client client;
  REQUIRE(client.connect(port));
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:"
                        + std::to_string(port) + "\r\nConnection: close\r\n" + headers;
  if (!body.empty() || method == "POST")
    request +=
      "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  request += "\r\n" + body;
  REQUIRE(client.send(request));
  http_answer out;
  out.status = client.read_status();
  client.wait_closed(std::chrono::seconds(3));
  auto& text = client.received();
  auto split = text.find("\r\n\r\n");
  out.head = text.substr(0, split);
  if (split != std::string::npos)
    out.body = text.substr(split + 4);
  return out;
}

std::string dev_token_for(uint16_t port, const std::string& body) {
  auto answer = exchange(port, "POST", "/dev/token", body);
  REQUIRE(answer.status == 200);
  auto parsed = json::parse(answer.body);
  REQUIRE(parsed.is_object());
  return parsed.str("token");
}

std::string static_metric(const char* result) {
  return std::string{"goring_static_requests_total{result=\""} + result + "\"}";
}

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  return std::string{std::istreambuf_iterator<char>{in}, {}};
}

long long now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::map<std::string, std::string> ice_env(const std::string& ttl = "3600") {
  return {{"STUN_URLS", "stun:stun.example.org:3478"},
          {"TURN_URLS", "turn:turn.example.org:3478?transport=udp,"
                        "turn:turn.example.org:3478?transport=tcp"},
          {"TURN_SECRET", "e2e-turn-secret"},
          {"TURN_TTL", ttl}};
}

/// Checks an ice.servers payload for `user_id`: the STUN entry, the TURN
/// entry whose credential is the HMAC of its username, expiry in the
/// username. Returns expires_at.
long long check_ice_servers(const json& payload, const std::string& user_id, long long ttl) {
  auto& p = payload.value();
  REQUIRE(p.IsObject());
  REQUIRE(p.HasMember("ice_servers"));
  auto& servers = p["ice_servers"];
  REQUIRE(servers.IsArray());
  REQUIRE(servers.Size() == 2);
  CHECK(std::string{servers[0]["urls"][0].GetString()} == "stun:stun.example.org:3478");
  CHECK_FALSE(servers[0].HasMember("credential"));
  auto& turn = servers[1];
  REQUIRE(turn["urls"].Size() == 2);
  CHECK(std::string{turn["urls"][0].GetString()} == "turn:turn.example.org:3478?transport=udp");
  CHECK(std::string{turn["urls"][1].GetString()} == "turn:turn.example.org:3478?transport=tcp");
  std::string username = turn["username"].GetString();
  std::string credential = turn["credential"].GetString();
  REQUIRE(p["ttl"].IsInt64());
  CHECK(p["ttl"].GetInt64() == ttl);
  auto expires_at = p["expires_at"].GetInt64();
  CHECK(username == std::to_string(expires_at) + ":" + user_id);
  CHECK(credential == goring::ice::hmac_sha1_base64("e2e-turn-secret", username));
  return expires_at;
}

/// goring with `env` on top of a working base; waits for it to exit and
/// returns its exit status and its output.
std::pair<int, std::string> run_until_exit(redis_server& redis,
                                           std::map<std::string, std::string> env) {
  env.emplace("PORT", std::to_string(free_port()));
  env.emplace("BIND_ADDR", "127.0.0.1");
  env.emplace("REDIS_ADDR", redis.addr());
  env.emplace("ADMIN_PORT", "0");
  env.emplace("JWT_SECRET", test_jwt_secret);
  auto log = write_temp_file("goring-web-refused", "");
  child_process goring{{GORING_BINARY}, env, log};
  CHECK(wait_until([&] { return !goring.running(); }, std::chrono::seconds(5)));
  auto status = goring.stop(SIGKILL, std::chrono::seconds(1));
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(log)};
}

} // namespace

TEST_CASE("WEB_ROOT: files are served with their type and security headers, read afresh") {
  web_root web;
  one_instance env{{{"WEB_ROOT", web.root.string()}}};
  auto port = env.goring.port();

  auto index = exchange(port, "GET", "/");
  CHECK(index.status == 200);
  CHECK(index.body == "<!doctype html><title>goring</title>");
  CHECK(index.header("Content-Type") == "text/html; charset=utf-8");
  CHECK(index.header("Cache-Control") == "no-cache");
  CHECK(index.header("X-Content-Type-Options") == "nosniff");
  CHECK(index.header("Referrer-Policy") == "no-referrer");
  const std::string csp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; frame-ancestors 'none'";
  CHECK(index.header("Content-Security-Policy") == csp);
  CHECK(exchange(port, "GET", "/index.html?v=2").body == index.body);

  auto app = exchange(port, "GET", "/app.js");
  CHECK(app.status == 200);
  CHECK(app.body == "console.log('v1');");
  CHECK(app.header("Content-Type") == "text/javascript; charset=utf-8");
  CHECK(app.header("X-Content-Type-Options") == "nosniff");
  // Every answer carries the CSP, not only HTML: an SVG opened on its own
  // would run its script without it.
  CHECK(app.header("Content-Security-Policy") == csp);
  auto svg = exchange(port, "GET", "/logo.svg");
  CHECK(svg.status == 200);
  CHECK(svg.header("Content-Type") == "image/svg+xml");
  CHECK(svg.header("Content-Security-Policy") == csp);

  // HEAD: the GET's headers and length, no body.
  auto head = exchange(port, "HEAD", "/app.js");
  CHECK(head.status == 200);
  CHECK(head.header("Content-Length") == std::to_string(app.body.size()));
  CHECK(head.header("Content-Type") == "text/javascript; charset=utf-8");
  CHECK(head.body.empty());

  CHECK(exchange(port, "GET", "/docs/").body == "docs");

  // HEAD answers carry no body, so a kept-alive connection reads the next
  // answer cleanly: HEAD of a file, HEAD of a missing one, then a GET.
  raw_client keep;
  REQUIRE(keep.connect(port));
  std::string host = "Host: 127.0.0.1\r\n\r\n";
  REQUIRE(keep.send("HEAD /app.js HTTP/1.1\r\n" + host + "HEAD /missing.js HTTP/1.1\r\n" + host
                    + "GET /docs/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
  keep.wait_closed(std::chrono::seconds(3));
  auto& all = keep.received();
  auto first = all.find("HTTP/1.1 200 OK");
  auto second = all.find("HTTP/1.1 404 Not Found", first);
  auto third = all.find("HTTP/1.1 200 OK", second);
  CHECK(first == 0);
  CHECK(second != std::string::npos);
  CHECK(third != std::string::npos);
  CHECK(all.substr(all.size() - 4) == "docs");
  CHECK(all.find("console.log") == std::string::npos);
  CHECK(all.find("not found") == std::string::npos);

  // An edit shows on the next request.
  web.write("root/app.js", "console.log('v2');");
  CHECK(exchange(port, "GET", "/app.js").body == "console.log('v2');");

  auto missing = exchange(port, "GET", "/missing.js");
  CHECK(missing.status == 404);
  CHECK(env.metric(static_metric("served")) == 9);
  CHECK(env.metric(static_metric("not_found")) == 2);

  // /health and /ws keep their meaning.
  auto health = exchange(port, "GET", "/health");
  CHECK(health.status == 200);
  CHECK(health.body == "OK");
  CHECK(exchange(port, "GET", "/ws").status == 426);
  CHECK(exchange(port, "POST", "/health").status == 404);
}

TEST_CASE("WEB_ROOT: traversal, encoded traversal and symlinks out of the root get 404") {
  web_root web;
  one_instance env{{{"WEB_ROOT", web.root.string()}}};
  auto port = env.goring.port();
  std::vector<std::string> attacks = {"/../outside/secret.txt",
                                      "/docs/../../outside/secret.txt",
                                      "/%2e%2e/outside/secret.txt",
                                      "/%2E%2E%2Foutside%2Fsecret.txt",
                                      "/..%5coutside%5csecret.txt",
                                      "/link-out.txt",
                                      "/app.js%00.html",
                                      "/.%2e/outside/secret.txt"};
  for (auto& target : attacks) {
    INFO("GET ", target);
    auto answer = exchange(port, "GET", target);
    CHECK(answer.status == 404);
    CHECK(answer.body.find("top secret") == std::string::npos);
  }
  CHECK(env.metric(static_metric("refused")) == static_cast<double>(attacks.size()));
  CHECK(env.metric(static_metric("served")) == 0);
  auto log = env.log();
  CHECK(log.find("static path refused") != std::string::npos);
  CHECK(log.find("'/link-out.txt': resolves outside WEB_ROOT") != std::string::npos);
  // The NUL is logged escaped.
  CHECK(log.find("%00") != std::string::npos);
  // Still serving.
  CHECK(exchange(port, "GET", "/").status == 200);
}

TEST_CASE("WEB_ROOT: methods other than GET and HEAD get 405 with Allow") {
  web_root web;
  one_instance env{{{"WEB_ROOT", web.root.string()}}};
  auto port = env.goring.port();
  for (std::string method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
    INFO(method, " /index.html");
    auto answer = exchange(port, method, "/index.html", method == "OPTIONS" ? "" : "{}");
    CHECK(answer.status == 405);
    CHECK(answer.header("Allow") == "GET, HEAD");
  }
}

TEST_CASE("without WEB_ROOT no file is served") {
  one_instance env;
  auto port = env.goring.port();
  CHECK(exchange(port, "GET", "/").status == 404);
  CHECK(exchange(port, "GET", "/index.html").status == 404);
  CHECK(exchange(port, "POST", "/index.html", "{}").status == 404);
}

TEST_CASE("POST /dev/token in development mode mints a token that connects over /ws") {
  one_instance env{{{"GORING_ENV", "development"}}};
  auto port = env.goring.port();
  auto before = now_seconds();
  auto answer = exchange(port, "POST", "/dev/token", R"({"user_id":"alice","name":"Alice"})");
  REQUIRE(answer.status == 200);
  CHECK(answer.header("Content-Type") == "application/json");
  auto body = json::parse(answer.body);
  REQUIRE(body.is_object());
  CHECK(body.str("user_id") == "alice");
  auto token = body.str("token");
  CHECK_FALSE(token.empty());
  auto expires_at = body.value()["expires_at"].GetInt64();
  CHECK(expires_at >= before + 3600);
  CHECK(expires_at <= now_seconds() + 3600);

  // The token is alice's: she calls bob, and he sees her name.
  ws_client alice{"alice"};
  connect_online(alice, env.goring, env.redis, token);
  ws_client bob{"bob"};
  connect_online(bob, env.goring, env.redis, dev_token_for(port, R"({"user_id":"bob"})"));
  alice.start_call("bob");
  alice.expect("call.ringing");
  auto ring = bob.expect("call.ring");
  CHECK(ring.str("caller_id") == "alice");
  auto info = ring.at("caller_info");
  CHECK(info.str("name") == "Alice");
  CHECK(info.str("username") == "alice");

  auto log = env.log();
  CHECK(log.find("dev token minted for user alice") != std::string::npos);
  CHECK(log.find("dev token minted for user bob") != std::string::npos);
  CHECK(log.find(token) == std::string::npos);
}

TEST_CASE("POST /dev/token: bad bodies get 400 with a JSON error, GET gets 405") {
  one_instance env{{{"GORING_ENV", "development"}}};
  auto port = env.goring.port();
  for (std::string body : std::vector<std::string>{
         "", "not json", "[]", "{}", R"({"user_id":""})", R"({"user_id":"a b"})",
         R"({"user_id":42})", R"({"user_id":"alice","name":7})",
         "{\"user_id\":\"alice\",\"name\":\"" + std::string(65, 'x') + "\"}",
         "{\"user_id\":\"alice\",\"name\":\"\xc3\x28\"}",
         "{\"user_id\":\"" + std::string(300, 'a') + "\"}"}) {
    INFO("body: ", body);
    auto answer = exchange(port, "POST", "/dev/token", body);
    CHECK(answer.status == 400);
    CHECK(answer.header("Content-Type") == "application/json");
    auto error = json::parse(answer.body);
    REQUIRE(error.is_object());
    CHECK_FALSE(error.str("error").empty());
  }
  auto get = exchange(port, "GET", "/dev/token");
  CHECK(get.status == 405);
  CHECK(get.header("Allow") == "POST");
  // A body over the 4 KiB every route takes.
  CHECK(exchange(port, "POST", "/dev/token", std::string(5000, ' ')).status == 413);
  // Still minting.
  CHECK_FALSE(dev_token_for(port, R"({"user_id":"carol"})").empty());
}

TEST_CASE("/dev/token outside development mode is 404, as an unknown path") {
  web_root web;
  for (auto& extra :
       std::vector<std::map<std::string, std::string>>{{}, {{"WEB_ROOT", web.root.string()}}}) {
    INFO("WEB_ROOT: ", extra.count("WEB_ROOT") ? "set" : "unset");
    one_instance env{extra};
    auto port = env.goring.port();
    auto post = exchange(port, "POST", "/dev/token", R"({"user_id":"alice"})");
    CHECK(post.status == 404);
    CHECK(post.body == "not found\n");
    CHECK(exchange(port, "GET", "/dev/token").status == 404);
    CHECK(env.log().find("dev token") == std::string::npos);
  }
}

TEST_CASE("/dev/token: a page of another origin gets 403, without HS256 it is 501") {
  {
    one_instance env{{{"GORING_ENV", "development"}, {"ALLOWED_ORIGINS", "http://localhost:8080"}}};
    auto port = env.goring.port();
    auto foreign = exchange(port, "POST", "/dev/token", R"({"user_id":"mallory"})",
                            "Origin: https://evil.example.net\r\n");
    CHECK(foreign.status == 403);
    CHECK(json::parse(foreign.body).str("error").find("origin") != std::string::npos);
    auto listed = exchange(port, "POST", "/dev/token", R"({"user_id":"alice"})",
                           "Origin: http://localhost:8080\r\n");
    CHECK(listed.status == 200);
  }
  {
    auto key_file = write_temp_file("goring-web-rsa", rsa_key().public_pem);
    one_instance env{{{"GORING_ENV", "development"},
                      {"JWT_ALGORITHMS", "RS256"},
                      {"JWT_PUBLIC_KEY_FILE", key_file}}};
    auto answer = exchange(env.goring.port(), "POST", "/dev/token", R"({"user_id":"alice"})");
    CHECK(answer.status == 501);
    CHECK(answer.header("Content-Type") == "application/json");
    CHECK(json::parse(answer.body).str("error").find("HS256") != std::string::npos);
  }
}

TEST_CASE("ice.servers is the first frame, its TURN credential the HMAC of its username") {
  one_instance env{ice_env()};
  auto before = now_seconds();
  ws_client alice{"alice"};
  env.join(alice);
  auto expires_at = check_ice_servers(alice.expect("ice.servers"), "alice", 3600);
  CHECK(expires_at >= before + 3600);
  CHECK(expires_at <= now_seconds() + 3600);

  // Before call.resumed too: bob drops mid-call and comes back.
  ws_client bob{"bob"};
  env.join(bob);
  bob.expect("ice.servers");
  auto session = connect_call(alice, bob);
  bob.drop();
  ws_client bob_again{"bob"};
  auto previous = presence_owner(env.redis, "bob");
  connect_online(bob_again, env.goring, env.redis, user_token("bob"), previous);
  check_ice_servers(bob_again.expect("ice.servers"), "bob", 3600);
  expect_resumed(bob_again, session, "alice", "accepted", "callee");
  CHECK(env.metric("goring_messages_sent_total{type=\"ice.servers\"}") == 3);
}

TEST_CASE("with TURN_TTL=2 fresh credentials arrive before the old ones expire") {
  one_instance env{ice_env("2")};
  ws_client alice{"alice"};
  env.join(alice);
  auto first = check_ice_servers(alice.expect("ice.servers"), "alice", 2);
  auto second = check_ice_servers(alice.expect("ice.servers", std::chrono::seconds(5)), "alice", 2);
  CHECK(second >= first);
}

TEST_CASE("STUN only: ice.servers has one entry and no credentials, none without either") {
  {
    one_instance env{{{"STUN_URLS", "stun:a.example:3478,stun:b.example:3478"}}};
    ws_client alice{"alice"};
    env.join(alice);
    auto payload = alice.expect("ice.servers");
    auto& servers = payload.value()["ice_servers"];
    REQUIRE(servers.Size() == 1);
    CHECK(servers[0]["urls"].Size() == 2);
    CHECK_FALSE(servers[0].HasMember("username"));
    CHECK_FALSE(payload.has("ttl"));
    CHECK_FALSE(payload.has("expires_at"));
  }
  {
    one_instance env;
    ws_client alice{"alice"};
    env.join(alice);
    alice.start_call("nobody");
    alice.expect_error("user_offline");
    CHECK(env.metric("goring_messages_sent_total{type=\"ice.servers\"}") == 0);
  }
}

TEST_CASE("goring refuses to start with a WEB_ROOT that is no directory, or half a TURN setup") {
  redis_server redis;
  web_root web;
  auto [missing_status, missing_log] = run_until_exit(redis, {{"WEB_ROOT", "/nonexistent/web"}});
  CHECK(missing_status == 2);
  CHECK(missing_log.find("WEB_ROOT /nonexistent/web does not exist") != std::string::npos);
  auto file = (web.root / "index.html").string();
  auto [file_status, file_log] = run_until_exit(redis, {{"WEB_ROOT", file}});
  CHECK(file_status == 2);
  CHECK(file_log.find("is not a directory") != std::string::npos);
  auto [turn_status, turn_log] = run_until_exit(redis, {{"TURN_URLS", "turn:h:3478"}});
  CHECK(turn_status == 2);
  CHECK(turn_log.find("TURN_SECRET") != std::string::npos);
  auto [secret_status, secret_log] = run_until_exit(redis, {{"TURN_SECRET", "k"}});
  CHECK(secret_status == 2);
  CHECK(secret_log.find("TURN_URLS") != std::string::npos);
}
