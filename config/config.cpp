#include "config/config.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>

#include <unistd.h>

#include "admission/origin_policy.hpp"

namespace goring {

std::vector<std::string> comma_list(const std::string& value) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (true) {
    auto comma = value.find(',', start);
    auto item = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    auto first = item.find_first_not_of(" \t");
    auto last = item.find_last_not_of(" \t");
    items.push_back(first == std::string::npos ? std::string{}
                                               : item.substr(first, last - first + 1));
    if (comma == std::string::npos)
      return items;
    start = comma + 1;
  }
}

namespace {

/// How one setting is read from text into `settings`.
struct setting_parser {
  setting_doc doc;
  std::function<bool(settings&, const std::string&)> apply;
};

bool parse_u64(const std::string& text, unsigned long long max, unsigned long long& out) {
  if (text.empty())
    return false;
  char* end = nullptr;
  errno = 0;
  auto value = std::strtoull(text.c_str(), &end, 10);
  if (errno != 0 || end == nullptr || *end != '\0' || value > max || text[0] == '-')
    return false;
  out = value;
  return true;
}

template <class T>
std::function<bool(settings&, const std::string&)>
number(T settings::*field, unsigned long long min, unsigned long long max) {
  return [=](settings& s, const std::string& text) {
    unsigned long long v = 0;
    if (!parse_u64(text, max, v) || v < min)
      return false;
    s.*field = static_cast<T>(v);
    return true;
  };
}

std::function<bool(settings&, const std::string&)> text(std::string settings::*field) {
  return [=](settings& s, const std::string& value) {
    s.*field = value;
    return true;
  };
}

std::function<bool(settings&, const std::string&)>
duration(std::chrono::milliseconds settings::*field, std::chrono::milliseconds min) {
  return [=](settings& s, const std::string& value) {
    auto d = parse_duration(value);
    if (!d || *d < min)
      return false;
    s.*field = *d;
    return true;
  };
}

/// "HS256,RS256": known names, no repeats, at least one; `none` never.
bool apply_jwt_algorithms(settings& s, const std::string& value) {
  std::vector<std::string> out;
  const auto& known = known_jwt_algorithms();
  for (auto& item : comma_list(value)) {
    if (std::find(known.begin(), known.end(), item) == known.end())
      return false;
    if (std::find(out.begin(), out.end(), item) == out.end())
      out.push_back(item);
  }
  if (out.empty())
    return false;
  s.jwt_algorithms = std::move(out);
  return true;
}

std::function<bool(settings&, const std::string&)> boolean(bool settings::*field) {
  return [=](settings& s, const std::string& value) {
    if (value == "true" || value == "1" || value == "yes") {
      s.*field = true;
      return true;
    }
    if (value == "false" || value == "0" || value == "no") {
      s.*field = false;
      return true;
    }
    return false;
  };
}

bool apply_redis_addr(settings& s, const std::string& value) {
  auto colon = value.rfind(':');
  if (colon == std::string::npos) {
    s.redis_host = value;
    return !value.empty();
  }
  unsigned long long port = 0;
  if (!parse_u64(value.substr(colon + 1), 65535, port) || port == 0)
    return false;
  s.redis_host = value.substr(0, colon);
  s.redis_port = static_cast<uint16_t>(port);
  return !s.redis_host.empty();
}

bool apply_sentinels(settings& s, const std::string& value) {
  auto list = parse_host_list(value, default_sentinel_port);
  if (!list)
    return false;
  s.redis_sentinels = std::move(*list);
  return true;
}

bool apply_cluster(settings& s, const std::string& value) {
  auto list = parse_host_list(value, default_redis_port);
  if (!list)
    return false;
  s.redis_cluster = std::move(*list);
  return true;
}

/// ALLOWED_ORIGINS: comma-separated origins, each normalized; "" allows any.
bool apply_origins(settings& s, const std::string& value) {
  std::vector<std::string> out;
  for (auto& item : comma_list(value)) {
    if (item.empty())
      continue;
    auto origin = normalize_origin(item);
    if (!origin)
      return false;
    out.push_back(*origin);
  }
  s.allowed_origins = std::move(out);
  return true;
}

/// STUN_URLS / TURN_URLS: comma-separated URLs of one scheme family
/// ("stun:"/"stuns:" or "turn:"/"turns:"), no empty items, no spaces or
/// control characters; "" means none.
std::function<bool(settings&, const std::string&)>
ice_urls(std::vector<std::string> settings::*field, std::string scheme) {
  return [=](settings& s, const std::string& value) {
    std::vector<std::string> out;
    for (auto& item : comma_list(value)) {
      bool plain = item.rfind(scheme + ":", 0) == 0;
      bool secure = item.rfind(scheme + "s:", 0) == 0;
      auto rest = item.substr(item.find(':') + 1);
      if ((!plain && !secure) || rest.empty())
        return false;
      for (unsigned char c : item)
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
          return false;
      out.push_back(item);
    }
    s.*field = std::move(out);
    return true;
  };
}

const std::vector<setting_parser>& parsers() {
  using namespace std::chrono_literals;
  static const std::vector<setting_parser> all = {
    {{"PORT", "--port", "8080", "public HTTP/WebSocket port"}, number(&settings::port, 0, 65535)},
    {{"BIND_ADDR", "--bind-addr", "0.0.0.0", "address the public port listens on"},
     text(&settings::bind_addr)},
    {{"JWT_SECRET", "--jwt-secret", default_jwt_secret,
      "HMAC secret of HS* tokens; the default is refused outside development mode"},
     text(&settings::jwt_secret)},
    {{"JWT_ALGORITHMS", "--jwt-algorithms", "HS256",
      "comma-separated token algorithms accepted: HS256/384/512, RS256/384/512, PS256, "
      "ES256/384/512"},
     apply_jwt_algorithms},
    {{"JWT_PUBLIC_KEY_FILE", "--jwt-public-key-file", "(empty)",
      "PEM public key (RSA or EC) that verifies RS*/ES* tokens"},
     text(&settings::jwt_public_key_file)},
    {{"JWT_REQUIRE_EXP", "--jwt-require-exp", "true",
      "refuse tokens without an exp claim (true | false)"},
     boolean(&settings::jwt_require_exp)},
    {{"JWT_ISSUER", "--jwt-issuer", "(empty)", "when set, a token's iss claim must equal it"},
     text(&settings::jwt_issuer)},
    {{"JWT_AUDIENCE", "--jwt-audience", "(empty)",
      "when set, a token's aud claim (string or array) must name it"},
     text(&settings::jwt_audience)},
    {{"JWT_LEEWAY", "--jwt-leeway", "5s",
      "clock skew allowed on exp and nbf, whole seconds; a connection closes this long after "
      "exp"},
     [](settings& s, const std::string& value) {
       // Whole seconds: exp and nbf are seconds, and a leeway cut to them
       // silently would not be what was asked for.
       auto d = parse_duration(value);
       if (!d || *d > std::chrono::minutes(5) || d->count() % 1000 != 0)
         return false;
       s.jwt_leeway = *d;
       return true;
     }},
    {{"JWT_JWKS_URL", "--jwt-jwks-url", "(empty)",
      "URL of the identity provider's JWKS (its RS/PS/ES keys): https://, or http:// to a "
      "loopback address"},
     text(&settings::jwt_jwks_url)},
    {{"JWT_JWKS_REFRESH", "--jwt-jwks-refresh", "5m",
      "how often the JWKS is fetched again (sooner when its Cache-Control max-age is shorter)"},
     [](settings& s, const std::string& value) {
       auto d = parse_duration(value);
       if (!d || *d < std::chrono::seconds(1) || *d > std::chrono::hours(24))
         return false;
       s.jwt_jwks_refresh = *d;
       return true;
     }},
    {{"JWT_USER_CLAIM", "--jwt-user-claim", "hash",
      "the token claim that holds the user id (sub for standard identity providers)"},
     [](settings& s, const std::string& value) {
       if (value.empty() || value.size() > 256)
         return false;
       for (unsigned char c : value)
         if (c < 0x20 || c == 0x7f)
           return false;
       s.jwt_user_claim = value;
       return true;
     }},
    {{"OUTBOUND_CA_FILE", "--outbound-ca-file", "(system CAs)",
      "PEM file of the CA certificates trusted for outbound HTTPS (JWT_JWKS_URL) instead of the "
      "system's"},
     text(&settings::outbound_ca_file)},
    {{"GORING_ENV", "--dev", "production",
      "development (or the flag --dev, no value) allows the default JWT_SECRET"},
     [](settings& s, const std::string& value) {
       if (value != "development" && value != "production")
         return false;
       s.dev_mode = value == "development";
       return true;
     }},
    {{"REDIS_ADDR", "--redis-addr", "localhost:6379", "Redis host:port"}, apply_redis_addr},
    {{"REDIS_PASSWORD", "--redis-password", "(empty)",
      "password of the Redis data nodes (AUTH), in either mode"},
     text(&settings::redis_password)},
    {{"REDIS_USERNAME", "--redis-username", "(empty)",
      "ACL user of the Redis data nodes (AUTH user password); empty: the default user"},
     text(&settings::redis_username)},
    {{"REDIS_SENTINELS", "--redis-sentinels", "(empty)",
      "comma-separated host[:port] of Redis Sentinels (port 26379 if left out); with "
      "REDIS_SENTINEL_MASTER selects Sentinel mode, which ignores REDIS_ADDR"},
     apply_sentinels},
    {{"REDIS_SENTINEL_MASTER", "--redis-sentinel-master", "(empty)",
      "the master name the sentinels monitor (sentinel monitor NAME ...)"},
     text(&settings::redis_sentinel_master)},
    {{"REDIS_SENTINEL_USERNAME", "--redis-sentinel-username", "(empty)",
      "ACL user of the sentinels themselves; empty: the default user"},
     text(&settings::redis_sentinel_username)},
    {{"REDIS_SENTINEL_PASSWORD", "--redis-sentinel-password", "(empty)",
      "password of the sentinels themselves (their requirepass); empty: no AUTH"},
     text(&settings::redis_sentinel_password)},
    {{"REDIS_CLUSTER", "--redis-cluster", "(empty)",
      "comma-separated host[:port] seed nodes of a Redis Cluster (port 6379 if left out); "
      "selects Cluster mode, which ignores REDIS_ADDR (docs/redis-cluster.md)"},
     apply_cluster},
    {{"SERVER_ID", "--server-id", "(hostname)", "this instance's unique id"},
     text(&settings::server_id)},
    {{"RING_TIMEOUT", "--ring-timeout", "30s",
      "how long a call rings before it ends with no_answer"},
     duration(&settings::ring_timeout, 100ms)},
    {{"SESSION_TTL", "--session-ttl", "120s", "TTL of call keys in Redis; live calls refresh them"},
     duration(&settings::session_ttl, 1000ms)},
    {{"PRESENCE_TTL", "--presence-ttl", "90s", "TTL of ws:user keys; connected users refresh them"},
     duration(&settings::presence_ttl, 1000ms)},
    {{"MAX_MESSAGE_BYTES", "--max-message-bytes", "65536",
      "largest frame a client may send; bigger closes with 1009"},
     number(&settings::max_message_bytes, 64, 16u << 20)},
    {{"MAX_QUEUED_FRAMES", "--max-queued-frames", "1024",
      "frames queued for one slow client before it is closed (1013)"},
     number(&settings::max_queued_frames, 1, 1u << 20)},
    {{"MAX_QUEUED_BYTES", "--max-queued-bytes", "1048576",
      "bytes queued for one slow client before it is closed (1013)"},
     number(&settings::max_queued_bytes, 1024, 1u << 30)},
    {{"IDLE_TIMEOUT", "--idle-timeout", "60s",
      "a silent connection is pinged at half of it and closed after it"},
     duration(&settings::idle_timeout, 1000ms)},
    {{"RECONNECT_GRACE", "--reconnect-grace", "20s",
      "how long a call waits for a participant who dropped without a close frame"},
     duration(&settings::reconnect_grace, 0ms)},
    {{"HEARTBEAT_TTL", "--heartbeat-ttl", "6s",
      "TTL of this instance's ws:server key; a crash is noticed within it"},
     duration(&settings::heartbeat_ttl, 1000ms)},
    {{"CALL_CHECK_INTERVAL", "--call-check-interval", "2s",
      "how often a call extends its keys and checks its participants"},
     duration(&settings::call_check_interval, 100ms)},
    {{"PUBSUB_PROBE_INTERVAL", "--pubsub-probe-interval", "5s",
      "how often the subscriber connection is probed"},
     duration(&settings::pubsub_probe_interval, 100ms)},
    {{"ADMIN_ADDR", "--admin-addr", "127.0.0.1",
      "address of the admin listener (/health, /ready, /metrics)"},
     text(&settings::admin_addr)},
    {{"ADMIN_PORT", "--admin-port", "9090", "admin listener port; 0 turns it off"},
     number(&settings::admin_port, 0, 65535)},
    {{"ADMIN_TOKEN", "--admin-token", "(empty)",
      "bearer token the admin API requires; required to bind it beyond loopback"},
     text(&settings::admin_token)},
    {{"LOG_LEVEL", "--log-level", "info", "debug | info | warn | error | off"},
     [](settings& s, const std::string& v) {
       if (v != "debug" && v != "info" && v != "warn" && v != "error" && v != "off")
         return false;
       s.log_level = v;
       return true;
     }},
    {{"LOG_FORMAT", "--log-format", "json", "json (one object per line) | text"},
     [](settings& s, const std::string& v) {
       if (v != "json" && v != "text")
         return false;
       s.log_format = v;
       return true;
     }},
    {{"IO_THREADS", "--io-threads", "1", "threads running sockets and Redis I/O"},
     number(&settings::io_threads, 1, 64)},
    {{"ACTOR_THREADS", "--actor-threads", "2", "threads running actors"},
     number(&settings::actor_threads, 1, 64)},
    {{"SHUTDOWN_GRACE", "--shutdown-grace", "8s",
      "how long SIGTERM waits for calls and keys to be released"},
     duration(&settings::shutdown_grace, 0ms)},
    {{"ALLOWED_ORIGINS", "--allowed-origins", "(any)",
      "comma-separated scheme://host[:port] that browsers may connect from; others get 403"},
     apply_origins},
    {{"MESSAGE_RATE", "--message-rate", "50",
      "frames a second one connection may send (over it: error rate_limited); 0: no limit"},
     number(&settings::message_rate, 0, 1'000'000)},
    {{"MESSAGE_BURST", "--message-burst", "200",
      "frames one connection may send at once before MESSAGE_RATE applies"},
     number(&settings::message_burst, 1, 1'000'000)},
    {{"UPGRADE_RATE_PER_IP", "--upgrade-rate-per-ip", "200",
      "WebSocket upgrades a second from one IP (over it: 429); 0: no limit"},
     number(&settings::upgrade_rate_per_ip, 0, 1'000'000)},
    {{"UPGRADE_BURST_PER_IP", "--upgrade-burst-per-ip", "1000",
      "upgrades one IP may make at once before UPGRADE_RATE_PER_IP applies"},
     number(&settings::upgrade_burst_per_ip, 1, 1'000'000)},
    {{"MAX_CONNECTIONS_PER_IP", "--max-connections-per-ip", "0",
      "connections open at once from one IP (over it: 429); 0: no limit"},
     number(&settings::max_connections_per_ip, 0, 10'000'000)},
    {{"MAX_CONNECTIONS", "--max-connections", "10000",
      "WebSockets this instance holds (over it: 503); 0: no limit"},
     number(&settings::max_connections, 0, 10'000'000)},
    {{"MAX_SDP_BYTES", "--max-sdp-bytes", "32768",
      "largest sdp of webrtc.offer/answer (over it: error invalid_message)"},
     number(&settings::max_sdp_bytes, 256, 16u << 20)},
    {{"MAX_CANDIDATE_BYTES", "--max-candidate-bytes", "1024",
      "largest candidate of webrtc.ice (over it: error invalid_message)"},
     number(&settings::max_candidate_bytes, 64, 1u << 20)},
    {{"HANDSHAKE_TIMEOUT", "--handshake-timeout", "10s",
      "time a client has to send its whole HTTP request and finish the upgrade"},
     duration(&settings::handshake_timeout, 100ms)},
    {{"MAX_HEADER_BYTES", "--max-header-bytes", "8192",
      "largest HTTP request line and headers (over it: 431)"},
     number(&settings::max_header_bytes, 1024, 1u << 20)},
    {{"WEB_ROOT", "--web-root", "(empty)",
      "directory of the web client served on the public port; must exist; empty: none"},
     text(&settings::web_root)},
    {{"STUN_URLS", "--stun-urls", "(empty)",
      "comma-separated stun: URLs sent to clients in ice.servers"},
     ice_urls(&settings::stun_urls, "stun")},
    {{"TURN_URLS", "--turn-urls", "(empty)",
      "comma-separated turn: URLs sent to clients in ice.servers with credentials; needs "
      "TURN_SECRET"},
     ice_urls(&settings::turn_urls, "turn")},
    {{"TURN_SECRET", "--turn-secret", "(empty)",
      "coturn static-auth-secret (use-auth-secret) the TURN credentials are made with"},
     text(&settings::turn_secret)},
    {{"TURN_TTL", "--turn-ttl", "3600",
      "seconds the TURN credentials last; fresh ones are sent at 80 % of it"},
     [](settings& s, const std::string& value) {
       unsigned long long v = 0;
       if (!parse_u64(value, 7 * 24 * 3600, v) || v < 1)
         return false;
       s.turn_ttl = std::chrono::seconds{v};
       return true;
     }},
    {{"WEBHOOK_URL", "--webhook-url", "(empty)",
      "URL every call event is POSTed to, signed (http:// or https://); needs WEBHOOK_SECRET"},
     text(&settings::webhook_url)},
    {{"WEBHOOK_SECRET", "--webhook-secret", "(empty)",
      "HMAC-SHA256 key of the Goring-Signature header, at least 32 bytes"},
     text(&settings::webhook_secret)},
    {{"OFFLINE_RING_TIMEOUT", "--offline-ring-timeout", "0",
      "how long a call to a user with no connection rings while a callee.offline webhook wakes "
      "their app; 0 answers user_offline at once. Above 0 it needs WEBHOOK_URL"},
     [](settings& s, const std::string& value) {
       auto d = parse_duration(value);
       if (!d || *d > std::chrono::minutes(10) || (d->count() != 0 && *d < 1000ms))
         return false;
       s.offline_ring_timeout = *d;
       return true;
     }},
    {{"WEBHOOK_MAX_AGE", "--webhook-max-age", "24h",
      "an event not delivered this long after it happened is dropped (logged and counted)"},
     [](settings& s, const std::string& value) {
       auto d = parse_duration(value);
       if (!d || *d < std::chrono::seconds(10) || *d > std::chrono::hours(24 * 7))
         return false;
       s.webhook_max_age = *d;
       return true;
     }},
    {{"WEBHOOK_CLAIM_TIMEOUT", "--webhook-claim-timeout", "60s",
      "an event an instance took and left untouched this long (it died) is sent by another; "
      "keep it above 35s"},
     [](settings& s, const std::string& value) {
       auto d = parse_duration(value);
       if (!d || *d < std::chrono::seconds(1) || *d > std::chrono::hours(1))
         return false;
       s.webhook_claim_timeout = *d;
       return true;
     }},
  };
  return all;
}

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0')
    return "goring";
  return buf;
}

} // namespace

const std::vector<std::string>& known_jwt_algorithms() {
  static const std::vector<std::string> names = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                                 "RS512", "PS256", "ES256", "ES384", "ES512"};
  return names;
}

const std::vector<setting_doc>& setting_docs() {
  static const std::vector<setting_doc> docs = [] {
    std::vector<setting_doc> out;
    for (auto& p : parsers())
      out.push_back(p.doc);
    return out;
  }();
  return docs;
}

std::optional<std::vector<host_port>> parse_host_list(const std::string& value,
                                                      uint16_t default_port) {
  std::vector<host_port> out;
  for (auto& item : comma_list(value)) {
    host_port where{item, default_port};
    auto colon = item.rfind(':');
    if (colon != std::string::npos) {
      unsigned long long port = 0;
      if (!parse_u64(item.substr(colon + 1), 65535, port) || port == 0)
        return std::nullopt;
      where.host = item.substr(0, colon);
      where.port = static_cast<uint16_t>(port);
    }
    if (where.host.empty() || where.host.find_first_of(" \t") != std::string::npos)
      return std::nullopt;
    out.push_back(std::move(where));
  }
  if (out.empty())
    return std::nullopt;
  return out;
}

std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
    ++digits;
  if (digits == 0 || digits > 12)
    return std::nullopt;
  auto value = std::stoull(text.substr(0, digits));
  auto unit = text.substr(digits);
  if (unit.empty() || unit == "s")
    return std::chrono::milliseconds(value * 1000);
  if (unit == "ms")
    return std::chrono::milliseconds(value);
  if (unit == "m")
    return std::chrono::milliseconds(value * 60'000);
  if (unit == "h")
    return std::chrono::milliseconds(value * 3'600'000);
  return std::nullopt;
}

settings_parse parse_settings(int argc, const char* const* argv, const char* const* envp) {
  settings_parse result;
  std::map<std::string, std::string> env;
  for (auto e = envp; e != nullptr && *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq != nullptr)
      env.emplace(std::string(*e, eq), std::string(eq + 1));
  }
  // Which settings were given at all, for the warnings below.
  std::vector<std::string> given;
  for (auto& p : parsers()) {
    auto it = env.find(p.doc.env);
    if (it == env.end() || it->second.empty())
      continue;
    if (!p.apply(result.values, it->second)) {
      result.error = "invalid value for " + p.doc.env + ": '" + it->second + "'";
      return result;
    }
    given.push_back(p.doc.env);
  }
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      result.show_help = true;
      continue;
    }
    // The one flag without a value.
    if (arg == "--dev") {
      result.values.dev_mode = true;
      continue;
    }
    if (arg.rfind("--dev=", 0) == 0) {
      result.error = "--dev takes no value (or set GORING_ENV=development)";
      return result;
    }
    std::string value;
    auto eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      result.error = "missing value for " + arg;
      return result;
    }
    const setting_parser* match = nullptr;
    for (auto& p : parsers())
      if (p.doc.flag == arg)
        match = &p;
    if (match == nullptr) {
      result.error = "unknown option " + arg + " (see --help)";
      return result;
    }
    if (!match->apply(result.values, value)) {
      result.error = "invalid value for " + arg + ": '" + value + "'";
      return result;
    }
    given.push_back(match->doc.env);
  }
  if (result.values.server_id.empty())
    result.values.server_id = hostname();
  result.error = settings_problem(result.values);
  auto& s = result.values;
  if (result.error.empty() && !s.redis_sentinels.empty()) {
    if (std::find(given.begin(), given.end(), "REDIS_ADDR") != given.end())
      result.warnings.push_back("REDIS_ADDR is set but not used: REDIS_SENTINELS selects Sentinel "
                                "mode, and the sentinels name the master");
    if (s.redis_sentinels.size() == 1)
      result.warnings.push_back(
        "REDIS_SENTINELS names a single sentinel: while it is down no failover is followed; "
        "name every sentinel (three or more)");
  }
  return result;
}

std::string settings_problem(const settings& s) {
  if (!s.redis_cluster.empty() && !s.redis_sentinels.empty())
    return "REDIS_CLUSTER and REDIS_SENTINELS are both set: a Redis Cluster fails over by "
           "itself; pick one mode";
  if (!s.redis_sentinels.empty() && s.redis_sentinel_master.empty())
    return "REDIS_SENTINELS is set but REDIS_SENTINEL_MASTER is not: name the master the "
           "sentinels monitor";
  if (s.redis_sentinels.empty() && !s.redis_sentinel_master.empty())
    return "REDIS_SENTINEL_MASTER is set but REDIS_SENTINELS is not: list the sentinels to ask";
  if (!s.turn_urls.empty() && s.turn_secret.empty())
    return "TURN_URLS is set but TURN_SECRET is not: TURN servers need the shared secret their "
           "credentials are made with";
  if (s.turn_urls.empty() && !s.turn_secret.empty())
    return "TURN_SECRET is set but TURN_URLS is not: set both, or neither";
  if (!s.outbound_ca_file.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(s.outbound_ca_file, ec))
      return "OUTBOUND_CA_FILE " + s.outbound_ca_file + " is not a readable file";
  }
  if (!s.webhook_url.empty() && s.webhook_secret.size() < min_webhook_secret_bytes)
    return "WEBHOOK_URL is set but WEBHOOK_SECRET "
           + std::string{s.webhook_secret.empty() ? "is not" : "is too short"}
           + ": receivers check every event's signature with it; it must be at least "
           + std::to_string(min_webhook_secret_bytes) + " bytes (e.g. openssl rand -hex 32)";
  if (s.webhook_url.empty() && !s.webhook_secret.empty())
    return "WEBHOOK_SECRET is set but WEBHOOK_URL is not: set both, or neither";
  if (s.offline_ring_timeout.count() > 0 && s.webhook_url.empty())
    return "OFFLINE_RING_TIMEOUT is above 0 but WEBHOOK_URL is not set: nobody would be told to "
           "wake the callee's phone (callee.offline)";
  if (!s.web_root.empty()) {
    std::error_code ec;
    auto status = std::filesystem::status(s.web_root, ec);
    if (ec || !std::filesystem::exists(status))
      return "WEB_ROOT " + s.web_root + " does not exist";
    if (!std::filesystem::is_directory(status))
      return "WEB_ROOT " + s.web_root + " is not a directory";
  }
  return {};
}

std::string help_text() {
  std::ostringstream out;
  out << "goring: WebSocket signaling server for one-to-one voice calls\n\n"
      << "usage: goring [--flag value]...\n\n"
      << "Each setting is an environment variable or a flag (the flag wins).\n"
      << "Durations take s, ms, m or h (a plain number is seconds).\n\n";
  for (auto& d : setting_docs()) {
    out << "  " << d.flag << " / " << d.env << "\n      " << d.description << " (default "
        << d.default_value << ")\n";
  }
  return out.str();
}

} // namespace goring
