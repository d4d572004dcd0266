#include "tests/support/goring_process.hpp"

#include <atomic>
#include <cctype>
#include <csignal>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/redis_backend.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/token.hpp"
#include "tests/support/ws_client.hpp"

#ifndef GORING_BINARY
#error "GORING_BINARY must name the goring binary under test"
#endif

namespace goring::test {

namespace {

/// What the failure listener knows about the test case that runs now.
struct current_test {
  std::mutex mutex;
  std::string name;
  std::atomic<int> failures{0};
};

current_test& current() {
  static current_test state;
  return state;
}

/// A doctest listener that tracks the running test case and its failed
/// assertions, so a goring_process can print its log when it matters.
struct failure_listener : doctest::IReporter {
  explicit failure_listener(const doctest::ContextOptions&) {
    // nop
  }
  void report_query(const doctest::QueryData&) override {
    // nop
  }
  void test_run_start() override {
    // nop
  }
  void test_run_end(const doctest::TestRunStats&) override {
    // nop
  }
  void test_case_start(const doctest::TestCaseData& data) override {
    std::lock_guard<std::mutex> guard{current().mutex};
    current().name = data.m_name;
    current().failures = 0;
  }
  void test_case_reenter(const doctest::TestCaseData&) override {
    // nop
  }
  void test_case_end(const doctest::CurrentTestCaseStats&) override {
    // nop
  }
  void test_case_exception(const doctest::TestCaseException&) override {
    ++current().failures;
  }
  void subcase_start(const doctest::SubcaseSignature&) override {
    // nop
  }
  void subcase_end() override {
    // nop
  }
  void log_assert(const doctest::AssertData& data) override {
    if (data.m_failed)
      ++current().failures;
  }
  void log_message(const doctest::MessageData& data) override {
    // FAIL and FAIL_CHECK arrive here as messages; MESSAGE is a warning.
    if ((data.m_severity & doctest::assertType::is_warn) == 0)
      ++current().failures;
  }
  void test_case_skipped(const doctest::TestCaseData&) override {
    // nop
  }
};

REGISTER_LISTENER("goring_process_failures", 1, failure_listener);

/// A file name made of the test case's name.
std::string slug(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else if (!out.empty() && out.back() != '-')
      out += '-';
  }
  while (!out.empty() && out.back() == '-')
    out.pop_back();
  if (out.size() > 80)
    out.resize(80);
  return out.empty() ? "test" : out;
}

/// Logs go beside the binary (the build directory) when it is writable, so
/// CI keeps them; else to the temp directory.
std::filesystem::path log_dir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto dir = fs::path(GORING_BINARY).parent_path() / "test-logs";
  fs::create_directories(dir, ec);
  if (!ec && ::access(dir.c_str(), W_OK) == 0)
    return dir;
  dir = fs::temp_directory_path() / "goring-test-logs";
  fs::create_directories(dir, ec);
  return dir;
}

int exit_code(int status) {
  if (status < 0)
    return -1;
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return -1;
}

} // namespace

goring_process::goring_process(const std::string& redis_addr, std::string server_id,
                               std::map<std::string, std::string> extra_env)
  : port_(free_port()), admin_port_(free_port()), server_id_(std::move(server_id)) {
  std::string test_name;
  {
    std::lock_guard<std::mutex> guard{current().mutex};
    test_name = current().name;
  }
  log_path_ =
    (log_dir() / (slug(test_name) + "." + server_id_ + "." + std::to_string(::getpid()) + ".log"))
      .string();
  std::ofstream{log_path_, std::ios::trunc}; // start from an empty log

  // A free port can be taken by another test between free_port() and
  // goring's bind: then goring logs "Address already in use" and exits, and
  // it is started again on fresh ports (unless the test chose the ports).
  bool own_ports = extra_env.count("PORT") == 0 && extra_env.count("ADMIN_PORT") == 0;
  bool healthy = false;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (attempt > 0) {
      port_ = free_port();
      admin_port_ = free_port();
      std::ofstream{log_path_, std::ios::trunc};
    }
    std::map<std::string, std::string> env{
      {"PORT", std::to_string(port_)}, {"BIND_ADDR", "127.0.0.1"},
      {"JWT_SECRET", test_jwt_secret}, {"SERVER_ID", server_id_},
      {"LOG_LEVEL", "debug"},          {"ADMIN_PORT", std::to_string(admin_port_)},
    };
    // Every test connects from 127.0.0.1: to per-IP limits the whole suite
    // would be one client. The tests of those limits set them.
    if (!redis_addr.empty())
      env.emplace("REDIS_ADDR", redis_addr);
    env.emplace("UPGRADE_RATE_PER_IP", "0");
    env.emplace("MAX_CONNECTIONS_PER_IP", "0");
    for (auto& [key, value] : extra_env)
      env[key] = value;
    proc_ = child_process({GORING_BINARY}, env, log_path_);

    healthy = wait_until(
      [&] {
        if (!proc_.running())
          return true; // exited: stop waiting, fail below
        return http_get(port_, "/health", std::chrono::milliseconds(500)).status == 200;
      },
      std::chrono::seconds(10));
    if (proc_.running() || !own_ports
        || log_tail(20).find("Address already in use") == std::string::npos)
      break;
  }
  bool up = healthy && proc_.running();
  if (!up) {
    std::cerr << "goring " << server_id_ << " did not become healthy; log " << log_path_ << ":\n"
              << log_tail() << std::endl;
    proc_.stop(SIGKILL, std::chrono::seconds(2));
  }
  INFO("goring ", server_id_, " on port ", port_, ", log ", log_path_);
  REQUIRE_MESSAGE(up, "goring did not answer GET /health with 200 within 10 s");
}

namespace {

std::map<std::string, std::string> with_backend(const redis_backend& redis,
                                                std::map<std::string, std::string> extra_env) {
  auto env = redis.goring_env();
  for (auto& [key, value] : extra_env)
    env[key] = value;
  return env;
}

} // namespace

goring_process::goring_process(const redis_backend& redis, std::string server_id,
                               std::map<std::string, std::string> extra_env)
  : goring_process(std::string{}, std::move(server_id), with_backend(redis, std::move(extra_env))) {
  // nop
}

goring_process::~goring_process() {
  if (current().failures > 0)
    std::cerr << "---- tail of " << log_path_ << " (goring " << server_id_ << ", port " << port_
              << ") ----\n"
              << log_tail() << "---- end of " << server_id_ << " log ----" << std::endl;
  // child_process kills the server if it still runs.
}

int goring_process::stop(std::chrono::milliseconds timeout) {
  auto status = proc_.stop(SIGTERM, timeout);
  if (status == -1) {
    proc_.stop(SIGKILL, std::chrono::seconds(2));
    return -1;
  }
  return exit_code(status);
}

void goring_process::kill() {
  proc_.stop(SIGKILL, std::chrono::seconds(2));
}

std::string goring_process::log_tail(std::size_t lines) const {
  std::ifstream in{log_path_};
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    tail.push_back(std::move(line));
    if (tail.size() > lines)
      tail.pop_front();
  }
  std::string out;
  for (auto& l : tail)
    out.append(l).append("\n");
  return out;
}

void connect_online(ws_client& client, const goring_process& server, redis_backend& redis,
                    const std::string& token, const std::string& previous_owner) {
  client.connect(server.port(), token);
  wait_online(redis, client.label(), previous_owner);
}

void connect_online(ws_client& client, const goring_process& server, redis_server& redis,
                    const std::string& token, const std::string& previous_owner) {
  redis_backend view{redis};
  connect_online(client, server, view, token, previous_owner);
}

std::string presence_owner(redis_backend& redis, const std::string& user_id) {
  return redis.get(redis.user_key(user_id));
}

std::string presence_owner(redis_server& redis, const std::string& user_id) {
  redis_backend view{redis};
  return presence_owner(view, user_id);
}

void wait_online(redis_backend& redis, const std::string& user_id,
                 const std::string& previous_owner) {
  bool online = wait_until(
    [&] {
      auto owner = presence_owner(redis, user_id);
      return !owner.empty() && owner != previous_owner;
    },
    std::chrono::seconds(5));
  CHECK_MESSAGE(online, redis.user_key(user_id), " was not set (to a new owner) in 5 s");
}

void wait_online(redis_server& redis, const std::string& user_id,
                 const std::string& previous_owner) {
  redis_backend view{redis};
  wait_online(view, user_id, previous_owner);
}

bool key_exists(redis_backend& redis, const std::string& key) {
  auto r = redis.run({"EXISTS", key});
  return r.type == redis::reply::kind::integer && r.integer == 1;
}

bool key_exists(redis_server& redis, const std::string& key) {
  redis_backend view{redis};
  return key_exists(view, key);
}

bool call_released(redis_backend& redis, const std::string& session_id,
                   const std::string& caller_id, const std::string& callee_id) {
  auto session = redis.session_key(session_id);
  return wait_until(
    [&] {
      // The session record may linger, over, with a short TTL (so a late
      // accept hears invalid_state); the users' call keys must be gone.
      auto state = redis.run({"HGET", session, "state"});
      auto ttl = redis.run({"PTTL", session});
      bool session_over = state.is_nil()
                          || ((state.str == "ended" || state.str == "rejected") && ttl.integer > 0
                              && ttl.integer <= 60'000);
      return session_over && !key_exists(redis, redis.user_call_key(caller_id))
             && !key_exists(redis, redis.user_call_key(callee_id));
    },
    std::chrono::seconds(5));
}

bool call_released(redis_server& redis, const std::string& session_id, const std::string& caller_id,
                   const std::string& callee_id) {
  redis_backend view{redis};
  return call_released(view, session_id, caller_id, callee_id);
}

void expect_refused_at_start(const std::map<std::string, std::string>& env,
                             const std::string& words) {
  INFO(words);
  std::map<std::string, std::string> all{{"PORT", std::to_string(free_port())},
                                         {"BIND_ADDR", "127.0.0.1"},
                                         {"REDIS_ADDR", "127.0.0.1:1"},
                                         {"ADMIN_PORT", "0"},
                                         {"JWT_SECRET", ""},
                                         {"GORING_ENV", ""}};
  for (auto& [k, v] : env)
    all[k] = v;
  auto log = write_temp_file("goring-refused", "");
  child_process goring{{GORING_BINARY}, all, log};
  CHECK(wait_until([&] { return !goring.running(); }, std::chrono::seconds(10)));
  auto status = goring.stop(SIGKILL, std::chrono::seconds(1));
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 2);
  std::ifstream in(log);
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  CAPTURE(text);
  CHECK(text.find(words) != std::string::npos);
}

} // namespace goring::test
