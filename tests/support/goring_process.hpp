/// The real goring binary as a child process of a test, with its own port,
/// log file and settings.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "tests/support/process.hpp"
#include "tests/support/ws_client.hpp"

namespace goring::test {

class redis_backend;
class redis_server;

/// A running goring server on 127.0.0.1. Its output goes to a log file whose
/// tail is printed when the test case it runs in has failed.
class goring_process {
public:
  /// Starts GORING_BINARY with PORT (a free port), BIND_ADDR=127.0.0.1,
  /// REDIS_ADDR (unless `redis_addr` is empty: Sentinel mode sets
  /// REDIS_SENTINELS in `extra_env` instead), JWT_SECRET=test_jwt_secret, SERVER_ID,
  /// LOG_LEVEL=debug, UPGRADE_RATE_PER_IP=0 and MAX_CONNECTIONS_PER_IP=0 (every test client shares
  /// 127.0.0.1) and `extra_env` (e.g. RING_TIMEOUT=1s), which wins; then waits until GET /health
  /// answers 200; the test stops (REQUIRE) when it does not within 10 s.
  goring_process(const std::string& redis_addr, std::string server_id = "goring-1",
                 std::map<std::string, std::string> extra_env = {});
  /// The same with `redis`'s settings (REDIS_ADDR or REDIS_CLUSTER) under
  /// `extra_env`.
  goring_process(const redis_backend& redis, std::string server_id = "goring-1",
                 std::map<std::string, std::string> extra_env = {});
  ~goring_process();

  goring_process(const goring_process&) = delete;
  goring_process& operator=(const goring_process&) = delete;

  uint16_t port() const {
    return port_;
  }
  /// The admin listener's port (/health, /ready, /metrics).
  uint16_t admin_port() const {
    return admin_port_;
  }
  const std::string& server_id() const {
    return server_id_;
  }
  const std::string& log_path() const {
    return log_path_;
  }
  bool running() {
    return proc_.running();
  }
  /// The server's PID (for /proc/PID/status), -1 once it has exited.
  pid_t pid() const {
    return proc_.pid();
  }

  /// SIGTERM, then waits up to `timeout`. Returns the exit code, 128 + the
  /// signal when a signal ended it, or -1 when it still ran (it is then
  /// killed).
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// SIGKILL.
  void kill();

  /// The last `lines` lines of the log.
  std::string log_tail(std::size_t lines = 60) const;

private:
  uint16_t port_ = 0;
  uint16_t admin_port_ = 0;
  std::string server_id_;
  std::string log_path_;
  child_process proc_;
};

/// Waits (up to 5 s) until Redis holds the user's presence key
/// (`ws:user:{user_id}`, in a cluster `ws:user:{T(user_id)}`), that is until
/// the server has registered the user's connection; with `previous_owner`,
/// until it holds another owner than that. Fails the check when it does not.
void wait_online(redis_backend& redis, const std::string& user_id,
                 const std::string& previous_owner = {});
void wait_online(redis_server& redis, const std::string& user_id,
                 const std::string& previous_owner = {});

/// Connects `client`, whose label is the user id, to `server` with `token`,
/// then wait_online. The test stops when the upgrade fails.
void connect_online(ws_client& client, const goring_process& server, redis_backend& redis,
                    const std::string& token, const std::string& previous_owner = {});
void connect_online(ws_client& client, const goring_process& server, redis_server& redis,
                    const std::string& token, const std::string& previous_owner = {});

/// The value of the user's presence key, "" when there is none.
std::string presence_owner(redis_backend& redis, const std::string& user_id);
std::string presence_owner(redis_server& redis, const std::string& user_id);

/// Whether Redis holds `key` (in a cluster: on the master of its slot).
bool key_exists(redis_backend& redis, const std::string& key);
bool key_exists(redis_server& redis, const std::string& key);

/// Waits (up to 5 s) until `call:session:{session_id}` and the user call
/// keys of both participants are gone; returns whether they went.
bool call_released(redis_backend& redis, const std::string& session_id,
                   const std::string& caller_id, const std::string& callee_id);
bool call_released(redis_server& redis, const std::string& session_id, const std::string& caller_id,
                   const std::string& callee_id);

/// Starts goring on loopback with `env` over a base (no Redis reachable, no
/// admin port, JWT_SECRET and GORING_ENV cleared) and checks that it refuses
/// to start: it exits by itself with status 2, and its log holds `words`.
void expect_refused_at_start(const std::map<std::string, std::string>& env,
                             const std::string& words);

} // namespace goring::test
