/// A real Prometheus server scrapes a running goring's admin listener over loopback: the
/// target is up, and goring_connections, as Prometheus's HTTP API reports it, follows the
/// clients that connect and leave.
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include <rapidjson/document.h>
#include <sys/wait.h>

#include "tests/support/goring_process.hpp"
#include "tests/support/process.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/token.hpp"
#include "tests/support/ws_client.hpp"

using namespace goring::test;

namespace {

namespace fs = std::filesystem;

/// How long Prometheus may take to start answering, and to report a first scrape (its
/// first scrape comes about 6 s after the start).
constexpr auto prometheus_start_timeout = std::chrono::seconds(10);
constexpr auto first_scrape_timeout = std::chrono::seconds(20);
/// How long a change of goring's gauges may take to show in a query (scrapes are 1 s apart).
constexpr auto rescrape_timeout = std::chrono::seconds(10);

/// `text` percent-encoded as a URL query value; RFC 3986's unreserved characters stay.
std::string url_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    bool unreserved = (byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z')
                      || (byte >= '0' && byte <= '9') || c == '-' || c == '_' || c == '.'
                      || c == '~';
    if (unreserved) {
      out += c;
    } else {
      out += '%';
      out += hex[byte >> 4];
      out += hex[byte & 0x0F];
    }
  }
  return out;
}

/// A private temporary directory, removed with all it holds by the destructor.
class temp_dir {
public:
  temp_dir() {
    char pattern[] = "/tmp/goring_prometheus_XXXXXX";
    if (::mkdtemp(pattern) == nullptr)
      throw std::runtime_error("mkdtemp() failed");
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const fs::path& path() const {
    return path_;
  }

private:
  fs::path path_;
};

/// A Prometheus server on 127.0.0.1 that scrapes one target's /metrics every second. Its
/// configuration, data and log live in a temporary directory that goes with it.
class prometheus_server {
public:
  /// Writes the configuration, starts `prometheus` and waits until GET /-/ready answers 200;
  /// the test stops, with Prometheus's log in the message, when it does not.
  explicit prometheus_server(uint16_t target_port) : port_(free_port()) {
    {
      std::ofstream config{config_path()};
      config << "global:\n"
                "  scrape_interval: 1s\n"
                "  scrape_timeout: 1s\n"
                "  evaluation_interval: 1s\n"
                "scrape_configs:\n"
                "  - job_name: goring\n"
                "    metrics_path: /metrics\n"
                "    static_configs:\n"
                "      - targets: ['127.0.0.1:"
             << target_port << "']\n";
      REQUIRE_MESSAGE(config.good(), "cannot write ", config_path().string());
    }
    proc_ = child_process({"prometheus", "--config.file=" + config_path().string(),
                           "--storage.tsdb.path=" + (dir_.path() / "data").string(),
                           "--web.listen-address=127.0.0.1:" + std::to_string(port_)},
                          {}, log_path().string());
    bool ready = wait_until(
      [&] {
        if (!proc_.running())
          return true; // exited: stop waiting, fail below
        return http_get(port_, "/-/ready", std::chrono::milliseconds(500)).status == 200;
      },
      prometheus_start_timeout);
    REQUIRE_MESSAGE(
      (ready && proc_.running()),
      "prometheus exited, or did not answer GET /-/ready with 200 within 10 s; its log:\n", log());
  }

  ~prometheus_server() {
    stop();
    // proc_ goes (killed if it still runs) before dir_ is removed.
  }

  prometheus_server(const prometheus_server&) = delete;
  prometheus_server& operator=(const prometheus_server&) = delete;

  /// SIGTERM, then waits up to 10 s (SIGKILL after that). Returns whether Prometheus shut
  /// down cleanly (exit status 0).
  bool stop() {
    auto status = proc_.stop(SIGTERM, std::chrono::seconds(10));
    if (status == -1) {
      proc_.stop(SIGKILL, std::chrono::seconds(2));
      return false;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }

  /// Everything Prometheus has written to its log so far.
  std::string log() const {
    std::ifstream in{log_path()};
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

  /// The health ("up", "down", "unknown") of the one active target as /api/v1/targets
  /// reports it, and its last scrape error; health is "" when there is no such answer.
  struct target_state {
    std::string health;
    std::string last_error;
  };
  target_state target() const {
    auto res = http_get(port_, "/api/v1/targets?state=active");
    rapidjson::Document doc;
    if (res.status != 200 || doc.Parse(res.body.c_str()).HasParseError() || !doc.IsObject())
      return {};
    auto data = doc.FindMember("data");
    if (data == doc.MemberEnd() || !data->value.IsObject())
      return {};
    auto targets = data->value.FindMember("activeTargets");
    if (targets == data->value.MemberEnd() || !targets->value.IsArray()
        || targets->value.Size() != 1 || !targets->value[0].IsObject())
      return {};
    const auto& only = targets->value[0];
    target_state state;
    if (auto health = only.FindMember("health");
        health != only.MemberEnd() && health->value.IsString())
      state.health = health->value.GetString();
    if (auto error = only.FindMember("lastError");
        error != only.MemberEnd() && error->value.IsString())
      state.last_error = error->value.GetString();
    return state;
  }

  /// The value of the instant query `promql` when its result is exactly one sample;
  /// nothing otherwise (no answer, an error, no sample yet, or several).
  std::optional<double> query_one(const std::string& promql) const {
    auto res = http_get(port_, "/api/v1/query?query=" + url_encode(promql));
    rapidjson::Document doc;
    if (res.status != 200 || doc.Parse(res.body.c_str()).HasParseError() || !doc.IsObject())
      return std::nullopt;
    auto status = doc.FindMember("status");
    auto data = doc.FindMember("data");
    if (status == doc.MemberEnd() || !status->value.IsString()
        || std::string_view{status->value.GetString()} != "success" || data == doc.MemberEnd()
        || !data->value.IsObject())
      return std::nullopt;
    auto result = data->value.FindMember("result");
    if (result == data->value.MemberEnd() || !result->value.IsArray() || result->value.Size() != 1
        || !result->value[0].IsObject())
      return std::nullopt;
    // A sample is [unix_time, "value"]; the value is a string so NaN and ±Inf survive JSON.
    auto value = result->value[0].FindMember("value");
    if (value == result->value[0].MemberEnd() || !value->value.IsArray() || value->value.Size() != 2
        || !value->value[1].IsString())
      return std::nullopt;
    return std::strtod(value->value[1].GetString(), nullptr);
  }

private:
  fs::path config_path() const {
    return dir_.path() / "prometheus.yml";
  }
  fs::path log_path() const {
    return dir_.path() / "prometheus.log";
  }

  temp_dir dir_;
  uint16_t port_ = 0;
  child_process proc_;
};

/// Polls `query_one(promql)` until it gives `expected` or `timeout` passes; returns the last
/// value seen.
std::optional<double> poll_value(const prometheus_server& prometheus, const std::string& promql,
                                 double expected, std::chrono::milliseconds timeout) {
  std::optional<double> last;
  wait_until(
    [&] {
      last = prometheus.query_one(promql);
      return last == expected;
    },
    timeout);
  return last;
}

} // namespace

TEST_CASE("Prometheus scrapes goring and sees goring_connections follow the clients") {
  redis_server redis;
  goring_process goring{redis.addr()};
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  ws_client carol{"carol"};
  for (auto* client : {&alice, &bob, &carol})
    connect_online(*client, goring, redis, user_token(client->label()));

  prometheus_server prometheus{goring.admin_port()};

  // The first scrape comes a few seconds after the start; then the target is up and every
  // series of the scrape is queryable.
  prometheus_server::target_state target;
  std::optional<double> connections;
  bool scraped = wait_until(
    [&] {
      target = prometheus.target();
      if (target.health != "up")
        return false;
      connections = prometheus.query_one("goring_connections");
      return connections.has_value();
    },
    first_scrape_timeout);
  INFO("target health \"", target.health, "\", last scrape error \"", target.last_error, "\"");
  REQUIRE_MESSAGE(scraped,
                  "Prometheus reported no successful scrape of goring within 20 s; its log:\n",
                  prometheus.log());
  CHECK(target.health == "up");
  CHECK(target.last_error.empty());
  // -1 stands for "no single sample" in the checks below.
  CHECK(connections.value_or(-1) == 3.0);
  CHECK(prometheus.query_one("goring_build_info").value_or(-1) == 1.0);
  CHECK(prometheus.query_one("up{job=\"goring\"}").value_or(-1) == 1.0);

  // One client leaves; the next scrapes say so.
  carol.close();
  auto after_close = poll_value(prometheus, "goring_connections", 2.0, rescrape_timeout);
  CHECK_MESSAGE(after_close.value_or(-1) == 2.0, "goring_connections did not become 2 within 10 s");

  CHECK_MESSAGE(prometheus.stop(), "prometheus did not shut down cleanly; its log:\n",
                prometheus.log());
}
