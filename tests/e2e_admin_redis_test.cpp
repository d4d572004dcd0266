/// The admin listener against the real binary: liveness, readiness, the
/// drain endpoint and its bearer token, and the refusal to expose an
/// unprotected admin API beyond loopback.
#include <doctest/doctest.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <string>

#include "tests/support/goring_process.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/token.hpp"
#include "tests/support/ws_client.hpp"

using namespace goring::test;

namespace {

/// POSTs to the admin port with curl and returns the HTTP status (0 when
/// curl got no answer); `Authorization: <scheme> <bearer>` when given.
int admin_post(uint16_t port, const std::string& path, const std::string& bearer = {},
               const std::string& scheme = "Bearer") {
  std::string cmd = "curl -s -o /dev/null -m 5 -w '%{http_code}' -X POST";
  if (!bearer.empty())
    cmd += " -H 'Authorization: " + scheme + " " + bearer + "'";
  cmd += " http://127.0.0.1:" + std::to_string(port) + path;
  std::array<char, 64> buf{};
  std::string out;
  if (auto* pipe = ::popen(cmd.c_str(), "r")) {
    while (std::fgets(buf.data(), buf.size(), pipe) != nullptr)
      out += buf.data();
    ::pclose(pipe);
  }
  return out.empty() ? 0 : std::atoi(out.c_str());
}

bool becomes_ready(const goring_process& server) {
  return wait_until([&] { return http_get(server.admin_port(), "/ready").status == 200; },
                    std::chrono::seconds(5));
}

} // namespace

TEST_CASE("the admin listener answers liveness and, once Redis and pub/sub work, readiness") {
  redis_server redis;
  goring_process goring{redis.addr()};
  auto health = http_get(goring.admin_port(), "/health");
  CHECK(health.status == 200);
  CHECK(health.body == "OK");
  CHECK(becomes_ready(goring));
  CHECK(http_get(goring.admin_port(), "/nothing").status == 404);
  // The public port serves no admin routes.
  CHECK(http_get(goring.port(), "/metrics").status == 404);
  CHECK(http_get(goring.port(), "/ready").status == 404);
}

TEST_CASE("an admin drain needs the token, then turns readiness off and moves clients away") {
  redis_server redis;
  goring_process goring{redis.addr(), "goring-1", {{"ADMIN_TOKEN", "s3cret-admin"}}};
  REQUIRE(becomes_ready(goring));
  ws_client alice{"alice"};
  connect_online(alice, goring, redis, user_token("alice"));

  CHECK(admin_post(goring.admin_port(), "/admin/drain") == 401);
  CHECK(admin_post(goring.admin_port(), "/admin/drain", "wrong-token") == 401);
  CHECK(admin_post(goring.admin_port(), "/admin/drain", "s3cret-admin-longer") == 401);
  CHECK(admin_post(goring.admin_port(), "/admin/drain", "s3cret-admin", "Basic") == 401);
  CHECK(http_get(goring.admin_port(), "/ready").status == 200);

  CHECK(admin_post(goring.admin_port(), "/admin/drain", "s3cret-admin") == 202);
  auto closed = alice.expect_close();
  REQUIRE(closed);
  CHECK(closed->code == 1012);
  CHECK(closed->reason == "service restart");
  auto ready = http_get(goring.admin_port(), "/ready");
  CHECK(ready.status == 503);
  CHECK(ready.body == "draining");
  // Liveness stays: the process is fine, it just takes no new traffic.
  CHECK(http_get(goring.admin_port(), "/health").status == 200);
  ws_client late{"bob"};
  CHECK(late.try_connect(goring.port(), user_token("bob")) == 503);
  CHECK(goring.running());
  CHECK(goring.stop() == 0);
}

TEST_CASE("goring refuses an admin listener beyond loopback without a token") {
  redis_server redis;
  child_process goring{{GORING_BINARY},
                       {{"PORT", std::to_string(free_port())},
                        {"BIND_ADDR", "127.0.0.1"},
                        {"REDIS_ADDR", redis.addr()},
                        {"JWT_SECRET", "test"},
                        {"ADMIN_ADDR", "0.0.0.0"},
                        {"ADMIN_PORT", std::to_string(free_port())}},
                       "/dev/null"};
  int status = -1;
  CHECK(wait_until([&] { return !goring.running(); }, std::chrono::seconds(5)));
  status = goring.stop(SIGKILL, std::chrono::seconds(1));
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 2);
}
