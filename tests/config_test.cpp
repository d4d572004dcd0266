/// Settings from the environment and the command line: defaults, each
/// source, which one wins, and the errors an operator sees.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include "config/config.hpp"

namespace {

using namespace std::chrono_literals;
using goring::parse_duration;
using strings = std::vector<std::string>;

/// Runs `parse_settings` as `goring args...` with exactly `env` as environment.
goring::settings_parse parse(const strings& args, const strings& env = {}) {
  std::vector<const char*> argv{"goring"};
  for (auto& a : args)
    argv.push_back(a.c_str());
  argv.push_back(nullptr);
  std::vector<const char*> envp;
  for (auto& e : env)
    envp.push_back(e.c_str());
  envp.push_back(nullptr);
  return goring::parse_settings(static_cast<int>(argv.size() - 1), argv.data(), envp.data());
}

/// The settings of a successful parse, or a failed check that shows the error.
goring::settings parsed(const strings& args, const strings& env = {}) {
  auto result = parse(args, env);
  CAPTURE(result.error);
  REQUIRE(result.error.empty());
  return result.values;
}

/// Checks that the parse fails with an error that names `name`.
void check_error(const strings& args, const strings& env, const std::string& name) {
  auto result = parse(args, env);
  CAPTURE(result.error);
  CHECK_FALSE(result.error.empty());
  CHECK(result.error.find(name) != std::string::npos);
}

std::string this_host() {
  char buf[256] = {};
  REQUIRE(::gethostname(buf, sizeof(buf) - 1) == 0);
  return buf;
}

} // namespace

TEST_CASE("with no flags and no environment every setting has its default") {
  auto result = parse({});
  CHECK(result.error.empty());
  CHECK_FALSE(result.show_help);
  const auto& s = result.values;
  CHECK(s.port == 8080);
  CHECK(s.bind_addr == "0.0.0.0");
  CHECK(s.redis_host == "localhost");
  CHECK(s.redis_port == 6379);
  CHECK(s.redis_password.empty());
  CHECK(s.ring_timeout == 30s);
  CHECK(s.session_ttl == 120s);
  CHECK(s.presence_ttl == 90s);
  CHECK(s.max_message_bytes == 65536);
  CHECK(s.max_queued_frames == 1024);
  CHECK(s.log_level == "info");
  CHECK(s.jwt_secret == goring::default_jwt_secret);
  CHECK(s.server_id == this_host());
  CHECK(s.shutdown_grace == 8s);
}

TEST_CASE("a null environment is read as an empty one") {
  const char* argv[] = {"goring", nullptr};
  auto result = goring::parse_settings(1, argv, nullptr);
  CHECK(result.error.empty());
  CHECK(result.values.port == 8080);
}

TEST_CASE("environment variables set each setting") {
  auto s = parsed({}, {"PORT=9001", "BIND_ADDR=127.0.0.1", "JWT_SECRET=s3cret",
                       "REDIS_ADDR=redis.internal:6380", "REDIS_PASSWORD=pw", "SERVER_ID=node-7",
                       "RING_TIMEOUT=45s", "SESSION_TTL=2m", "PRESENCE_TTL=15",
                       "MAX_MESSAGE_BYTES=1024", "MAX_QUEUED_FRAMES=64", "LOG_LEVEL=debug",
                       "IO_THREADS=3", "ACTOR_THREADS=4", "SHUTDOWN_GRACE=500ms"});
  CHECK(s.port == 9001);
  CHECK(s.bind_addr == "127.0.0.1");
  CHECK(s.jwt_secret == "s3cret");
  CHECK(s.redis_host == "redis.internal");
  CHECK(s.redis_port == 6380);
  CHECK(s.redis_password == "pw");
  CHECK(s.server_id == "node-7");
  CHECK(s.ring_timeout == 45s);
  CHECK(s.session_ttl == 120s);
  CHECK(s.presence_ttl == 15s);
  CHECK(s.max_message_bytes == 1024);
  CHECK(s.max_queued_frames == 64);
  CHECK(s.log_level == "debug");
  CHECK(s.io_threads == 3);
  CHECK(s.actor_threads == 4);
  CHECK(s.shutdown_grace == 500ms);
}

TEST_CASE("unrelated and malformed environment entries are ignored") {
  auto s = parsed({}, {"HOME=/root", "NOEQUALS", "=weird", "port=1"});
  CHECK(s.port == 8080);
}

TEST_CASE("an empty environment variable counts as unset") {
  auto s = parsed({}, {"PORT=", "SERVER_ID=", "LOG_LEVEL="});
  CHECK(s.port == 8080);
  CHECK(s.server_id == this_host());
  CHECK(s.log_level == "info");
}

TEST_CASE("REDIS_ADDR without a port keeps the default port") {
  auto s = parsed({}, {"REDIS_ADDR=redis.internal"});
  CHECK(s.redis_host == "redis.internal");
  CHECK(s.redis_port == 6379);
}

TEST_CASE("flags take a value as the next argument or after '='") {
  CHECK(parsed({"--port", "9000"}).port == 9000);
  CHECK(parsed({"--port=9000"}).port == 9000);
  auto s = parsed({"--redis-addr=10.0.0.5:7000", "--ring-timeout", "500ms", "--server-id=a=b",
                   "--log-level", "warn", "--max-message-bytes=4096", "--session-ttl", "3m"});
  CHECK(s.redis_host == "10.0.0.5");
  CHECK(s.redis_port == 7000);
  CHECK(s.ring_timeout == 500ms);
  CHECK(s.server_id == "a=b");
  CHECK(s.log_level == "warn");
  CHECK(s.max_message_bytes == 4096);
  CHECK(s.session_ttl == 180s);
}

TEST_CASE("a flag wins over its environment variable, and the last flag wins") {
  auto s = parsed({"--port", "9000", "--ring-timeout=10s"},
                  {"PORT=8000", "RING_TIMEOUT=20s", "SESSION_TTL=90s"});
  CHECK(s.port == 9000);
  CHECK(s.ring_timeout == 10s);
  CHECK(s.session_ttl == 90s);
  CHECK(parsed({"--port=1", "--port=2"}).port == 2);
}

TEST_CASE("an invalid environment value is an error naming the variable") {
  check_error({}, {"PORT=abc"}, "PORT");
  check_error({}, {"PORT=70000"}, "PORT");
  check_error({}, {"PORT=-1"}, "PORT");
  check_error({}, {"PORT=80x"}, "PORT");
  check_error({}, {"RING_TIMEOUT=-1"}, "RING_TIMEOUT");
  check_error({}, {"RING_TIMEOUT=10ms"}, "RING_TIMEOUT"); // below the 100 ms floor
  check_error({}, {"SESSION_TTL=1d"}, "SESSION_TTL");
  check_error({}, {"REDIS_ADDR=host:0"}, "REDIS_ADDR");
  check_error({}, {"REDIS_ADDR=host:99999"}, "REDIS_ADDR");
  check_error({}, {"REDIS_ADDR=host:"}, "REDIS_ADDR");
  check_error({}, {"REDIS_ADDR=:6379"}, "REDIS_ADDR");
  check_error({}, {"LOG_LEVEL=loud"}, "LOG_LEVEL");
  check_error({}, {"MAX_MESSAGE_BYTES=10"}, "MAX_MESSAGE_BYTES");
  check_error({}, {"IO_THREADS=0"}, "IO_THREADS");
}

TEST_CASE("the error also quotes the value that was refused") {
  auto result = parse({}, {"LOG_LEVEL=loud"});
  CHECK(result.error.find("'loud'") != std::string::npos);
}

TEST_CASE("an invalid flag value is an error naming the flag") {
  check_error({"--port", "abc"}, {}, "--port");
  check_error({"--port=70000"}, {}, "--port");
  check_error({"--port="}, {}, "--port");
  check_error({"--ring-timeout", "-1"}, {}, "--ring-timeout");
  check_error({"--redis-addr=host:0"}, {}, "--redis-addr");
  check_error({"--log-level", "loud"}, {}, "--log-level");
}

TEST_CASE("an unknown flag is an error naming it") {
  check_error({"--bogus", "1"}, {}, "--bogus");
  check_error({"--bogus=1"}, {}, "--bogus");
  check_error({"--PORT", "1"}, {}, "--PORT");
  check_error({"--port", "9000", "--bogus", "1"}, {}, "--bogus");
}

TEST_CASE("a flag without a value is an error naming it") {
  check_error({"--port"}, {}, "--port");
  check_error({"--port", "9000", "--redis-addr"}, {}, "--redis-addr");
}

TEST_CASE("--help and -h ask for help and still parse the rest") {
  auto result = parse({"--help"});
  CHECK(result.show_help);
  CHECK(result.error.empty());
  CHECK(parse({"-h"}).show_help);
  auto with_port = parse({"--port", "9000", "--help"});
  CHECK(with_port.show_help);
  CHECK(with_port.values.port == 9000);
}

TEST_CASE("the help text names every flag and variable with its default") {
  auto help = goring::help_text();
  REQUIRE_FALSE(goring::setting_docs().empty());
  for (auto& doc : goring::setting_docs()) {
    CAPTURE(doc.env);
    CHECK(help.find(doc.env) != std::string::npos);
    CHECK(help.find(doc.flag) != std::string::npos);
    CHECK(help.find("(default " + doc.default_value + ")") != std::string::npos);
    CHECK(help.find(doc.description) != std::string::npos);
  }
  for (auto name : {"PORT", "REDIS_ADDR", "RING_TIMEOUT", "SESSION_TTL", "MAX_MESSAGE_BYTES",
                    "SERVER_ID", "LOG_LEVEL", "JWT_SECRET"})
    CHECK(help.find(name) != std::string::npos);
}

TEST_CASE("REDIS_SENTINELS with REDIS_SENTINEL_MASTER selects Sentinel mode") {
  auto result = parse({}, {"REDIS_SENTINELS=10.0.0.1:26380, sentinel-b ,[::1]:26381x",
                           "REDIS_SENTINEL_MASTER=calls"});
  CHECK_FALSE(result.error.empty()); // "[::1]:26381x": not a port
  auto s =
    parsed({}, {"REDIS_SENTINELS=10.0.0.1:26380, sentinel-b ,sentinel-c:5000",
                "REDIS_SENTINEL_MASTER=calls", "REDIS_SENTINEL_PASSWORD=sp",
                "REDIS_SENTINEL_USERNAME=watcher", "REDIS_USERNAME=goring", "REDIS_PASSWORD=dp"});
  REQUIRE(s.redis_sentinels.size() == 3);
  CHECK(s.redis_sentinels[0].host == "10.0.0.1");
  CHECK(s.redis_sentinels[0].port == 26380);
  CHECK(s.redis_sentinels[1].host == "sentinel-b");
  CHECK(s.redis_sentinels[1].port == goring::default_sentinel_port);
  CHECK(s.redis_sentinels[2].to_string() == "sentinel-c:5000");
  CHECK(s.redis_sentinel_master == "calls");
  CHECK(s.redis_sentinel_username == "watcher");
  CHECK(s.redis_sentinel_password == "sp");
  CHECK(s.redis_username == "goring");
  CHECK(s.redis_password == "dp");
  auto flags = parsed({"--redis-sentinels", "a:1,b:2", "--redis-sentinel-master=m"});
  CHECK(flags.redis_sentinels.size() == 2);
  CHECK(flags.redis_sentinel_master == "m");
  CHECK(parsed({}).redis_sentinels.empty());
}

TEST_CASE("a malformed sentinel list or a missing master name stops goring with a clear error") {
  for (std::string list : {",a:1", "a:1,", "a:0", "a:99999", ":26379", "a:", "a b:1", " , "}) {
    CAPTURE(list);
    check_error({}, {"REDIS_SENTINELS=" + list, "REDIS_SENTINEL_MASTER=m"}, "REDIS_SENTINELS");
  }
  check_error({}, {"REDIS_SENTINELS=a:1,b:2,c:3"}, "REDIS_SENTINEL_MASTER");
  check_error({}, {"REDIS_SENTINEL_MASTER=m"}, "REDIS_SENTINELS");
}

TEST_CASE("Sentinel mode warns about an unused REDIS_ADDR and a single sentinel") {
  auto three = parse({}, {"REDIS_SENTINELS=a,b,c", "REDIS_SENTINEL_MASTER=m"});
  CHECK(three.error.empty());
  CHECK(three.warnings.empty());
  auto both =
    parse({"--redis-addr", "redis:6379"}, {"REDIS_SENTINELS=a,b,c", "REDIS_SENTINEL_MASTER=m"});
  REQUIRE(both.warnings.size() == 1);
  CHECK(both.warnings[0].find("REDIS_ADDR") != std::string::npos);
  auto one = parse({}, {"REDIS_SENTINELS=a", "REDIS_SENTINEL_MASTER=m", "REDIS_ADDR=r:1"});
  CHECK(one.error.empty());
  CHECK(one.warnings.size() == 2);
  CHECK(parse({}, {"REDIS_ADDR=r:1"}).warnings.empty());
}

TEST_CASE("REDIS_CLUSTER is parsed and checked, and refuses webhooks for now") {
  for (std::string list : {",a:1", "a:1,", "a:0", "a:99999", ":6379", "a:", "a b:1", " , "}) {
    CAPTURE(list);
    check_error({}, {"REDIS_CLUSTER=" + list}, "REDIS_CLUSTER");
  }
  check_error({}, {"REDIS_CLUSTER=a:7000,b", "REDIS_SENTINELS=s", "REDIS_SENTINEL_MASTER=m"},
              "pick one mode");
  auto cluster = parse({"--redis-cluster", "10.0.0.1:7000, node-b ,node-c:7002"});
  CHECK(cluster.error.empty());
  REQUIRE(cluster.values.redis_cluster.size() == 3);
  CHECK(cluster.values.redis_cluster[1].to_string() == "node-b:6379");
  auto flags = parse({}, {"REDIS_CLUSTER=node-a"});
  CHECK(flags.error.empty());
  CHECK(flags.values.redis_cluster.size() == 1);
  CHECK(flags.values.redis_cluster[0].to_string() == "node-a:6379");
  CHECK(parsed({}).redis_cluster.empty());
  // Webhooks run in Cluster mode too: one event stream per session partition.
  auto hooks = parse({}, {"REDIS_CLUSTER=node-a", "WEBHOOK_URL=http://127.0.0.1:9/hook",
                          "WEBHOOK_SECRET=" + std::string(32, 'x')});
  CHECK(hooks.error.empty());
}

TEST_CASE("durations take seconds, milliseconds or minutes") {
  CHECK(parse_duration("30") == 30s);
  CHECK(parse_duration("30s") == 30s);
  CHECK(parse_duration("500ms") == 500ms);
  CHECK(parse_duration("2m") == 2min);
  CHECK(parse_duration("24h") == std::chrono::hours(24));
  CHECK(parse_duration("0") == 0ms);
  CHECK(parse_duration("007s") == 7s);
  CHECK(parse_duration("999999999999m") == std::chrono::milliseconds{999'999'999'999LL * 60'000});
}

TEST_CASE("durations without digits, with other units, signs or fractions are refused") {
  for (std::string text : {"", "s", "ms", "h", "1d", "-5", "+5", "1.5s", "5 s", " 5", "5S", "5sec",
                           "1e3", "9999999999999"}) {
    CAPTURE(text);
    CHECK_FALSE(parse_duration(text).has_value());
  }
}

TEST_CASE("token settings have safe defaults") {
  auto s = parsed({});
  CHECK(s.jwt_algorithms == strings{"HS256"});
  CHECK(s.jwt_public_key_file.empty());
  CHECK(s.jwt_require_exp);
  CHECK(s.jwt_issuer.empty());
  CHECK(s.jwt_audience.empty());
  CHECK(s.jwt_leeway == 5s);
  CHECK_FALSE(s.dev_mode);
}

TEST_CASE("JWT_ALGORITHMS is a comma-separated list of known algorithms, never none") {
  CHECK(parsed({}, {"JWT_ALGORITHMS=RS256"}).jwt_algorithms == strings{"RS256"});
  CHECK(parsed({}, {"JWT_ALGORITHMS=HS256, ES256 ,RS512"}).jwt_algorithms
        == strings{"HS256", "ES256", "RS512"});
  CHECK(parsed({"--jwt-algorithms", "ES256,ES256"}).jwt_algorithms == strings{"ES256"});
  check_error({}, {"JWT_ALGORITHMS=none"}, "JWT_ALGORITHMS");
  check_error({}, {"JWT_ALGORITHMS=HS256,none"}, "JWT_ALGORITHMS");
  check_error({}, {"JWT_ALGORITHMS=hs256"}, "JWT_ALGORITHMS");
  CHECK(parsed({}, {"JWT_ALGORITHMS=PS256,RS256"}).jwt_algorithms == strings{"PS256", "RS256"});
  check_error({}, {"JWT_ALGORITHMS=PS384"}, "JWT_ALGORITHMS");
  check_error({}, {"JWT_ALGORITHMS=HS256,"}, "JWT_ALGORITHMS");
  check_error({"--jwt-algorithms=,"}, {}, "--jwt-algorithms");
}

TEST_CASE("the other token settings parse and check their values") {
  auto s = parsed({}, {"JWT_PUBLIC_KEY_FILE=/etc/goring/jwt.pem", "JWT_REQUIRE_EXP=false",
                       "JWT_ISSUER=https://auth.example", "JWT_AUDIENCE=goring", "JWT_LEEWAY=0s"});
  CHECK(s.jwt_public_key_file == "/etc/goring/jwt.pem");
  CHECK_FALSE(s.jwt_require_exp);
  CHECK(s.jwt_issuer == "https://auth.example");
  CHECK(s.jwt_audience == "goring");
  CHECK(s.jwt_leeway == 0s);
  CHECK(parsed({"--jwt-require-exp", "true"}, {"JWT_REQUIRE_EXP=0"}).jwt_require_exp);
  CHECK(parsed({"--jwt-leeway=2m"}).jwt_leeway == 2min);
  check_error({}, {"JWT_REQUIRE_EXP=maybe"}, "JWT_REQUIRE_EXP");
  check_error({}, {"JWT_LEEWAY=10m"}, "JWT_LEEWAY");
  check_error({}, {"JWT_LEEWAY=-1"}, "JWT_LEEWAY");
  // exp and nbf are whole seconds: a sub-second leeway is refused, not cut.
  check_error({}, {"JWT_LEEWAY=1500ms"}, "JWT_LEEWAY");
}

TEST_CASE("identity provider settings: JWKS URL, refresh, user claim and outbound CA file") {
  auto defaults = parsed({});
  CHECK(defaults.jwt_jwks_url.empty());
  CHECK(defaults.jwt_jwks_refresh == 5min);
  CHECK(defaults.jwt_user_claim == "hash");
  CHECK(defaults.outbound_ca_file.empty());
  auto ca = std::filesystem::temp_directory_path()
            / ("goring-config-ca." + std::to_string(::getpid()) + ".pem");
  std::ofstream{ca} << "-----BEGIN CERTIFICATE-----\n";
  auto s =
    parsed({}, {"JWT_JWKS_URL=https://idp.example/.well-known/jwks.json", "JWT_JWKS_REFRESH=90s",
                "JWT_USER_CLAIM=sub", "OUTBOUND_CA_FILE=" + ca.string()});
  CHECK(s.jwt_jwks_url == "https://idp.example/.well-known/jwks.json");
  CHECK(s.jwt_jwks_refresh == 90s);
  CHECK(s.jwt_user_claim == "sub");
  CHECK(s.outbound_ca_file == ca.string());
  CHECK(parsed({"--jwt-jwks-refresh=1s"}).jwt_jwks_refresh == 1s);
  CHECK(parsed({"--jwt-user-claim", "https://app.example/uid"}).jwt_user_claim
        == "https://app.example/uid");
  check_error({}, {"JWT_JWKS_REFRESH=500ms"}, "JWT_JWKS_REFRESH");
  check_error({}, {"JWT_JWKS_REFRESH=2000m"}, "JWT_JWKS_REFRESH");
  check_error({}, {"JWT_JWKS_REFRESH=soon"}, "JWT_JWKS_REFRESH");
  check_error({}, {"JWT_USER_CLAIM=a\tb"}, "JWT_USER_CLAIM");
  check_error({}, {"JWT_USER_CLAIM=" + std::string(300, 'c')}, "JWT_USER_CLAIM");
  check_error({}, {"OUTBOUND_CA_FILE=/nonexistent/ca.pem"}, "OUTBOUND_CA_FILE");
  std::filesystem::remove(ca);
}

TEST_CASE("development mode is GORING_ENV=development or the flag --dev without a value") {
  CHECK(parsed({}, {"GORING_ENV=development"}).dev_mode);
  CHECK_FALSE(parsed({}, {"GORING_ENV=production"}).dev_mode);
  CHECK(parsed({"--dev"}).dev_mode);
  // --dev takes no value: what follows is the next flag.
  auto s = parsed({"--dev", "--port", "9000"});
  CHECK(s.dev_mode);
  CHECK(s.port == 9000);
  check_error({}, {"GORING_ENV=dev"}, "GORING_ENV");
  check_error({"--dev=yes"}, {}, "--dev");
}

TEST_CASE("the limits have their documented defaults") {
  auto s = parsed({});
  CHECK(s.allowed_origins.empty());
  CHECK(s.message_rate == 50);
  CHECK(s.message_burst == 200);
  // Users behind one carrier-grade NAT share an IPv4 address.
  CHECK(s.upgrade_rate_per_ip == 200);
  CHECK(s.upgrade_burst_per_ip == 1000);
  CHECK(s.max_connections_per_ip == 0);
  CHECK(s.max_connections == 10000);
  CHECK(s.max_sdp_bytes == 32768);
  CHECK(s.max_candidate_bytes == 1024);
  CHECK(s.handshake_timeout == 10s);
  CHECK(s.max_header_bytes == 8192);
}

TEST_CASE("the limits are set by variable or flag, and 0 turns a rate or count off") {
  auto s = parsed({"--message-rate", "0", "--max-connections=0"},
                  {"MESSAGE_BURST=5", "UPGRADE_RATE_PER_IP=0", "UPGRADE_BURST_PER_IP=7",
                   "MAX_CONNECTIONS_PER_IP=0", "MAX_SDP_BYTES=4096", "MAX_CANDIDATE_BYTES=256",
                   "HANDSHAKE_TIMEOUT=500ms", "MAX_HEADER_BYTES=16384"});
  CHECK(s.message_rate == 0);
  CHECK(s.message_burst == 5);
  CHECK(s.upgrade_rate_per_ip == 0);
  CHECK(s.upgrade_burst_per_ip == 7);
  CHECK(s.max_connections_per_ip == 0);
  CHECK(s.max_connections == 0);
  CHECK(s.max_sdp_bytes == 4096);
  CHECK(s.max_candidate_bytes == 256);
  CHECK(s.handshake_timeout == 500ms);
  CHECK(s.max_header_bytes == 16384);
}

TEST_CASE("limits out of their range are refused by name") {
  check_error({}, {"MESSAGE_BURST=0"}, "MESSAGE_BURST");
  check_error({}, {"UPGRADE_BURST_PER_IP=0"}, "UPGRADE_BURST_PER_IP");
  check_error({}, {"MESSAGE_RATE=-1"}, "MESSAGE_RATE");
  check_error({}, {"MAX_HEADER_BYTES=100"}, "MAX_HEADER_BYTES");
  check_error({}, {"MAX_SDP_BYTES=10"}, "MAX_SDP_BYTES");
  check_error({}, {"MAX_CANDIDATE_BYTES=abc"}, "MAX_CANDIDATE_BYTES");
  check_error({}, {"HANDSHAKE_TIMEOUT=50ms"}, "HANDSHAKE_TIMEOUT");
  check_error({"--max-connections", "lots"}, {}, "--max-connections");
}

TEST_CASE("ALLOWED_ORIGINS is a comma-separated list, normalized, a malformed entry is an "
          "error") {
  auto s = parsed({}, {"ALLOWED_ORIGINS=https://App.Example.com, http://localhost:3000 ,"
                       "https://secure.example.com:443,"});
  CHECK(s.allowed_origins
        == std::vector<std::string>{"https://app.example.com", "http://localhost:3000",
                                    "https://secure.example.com"});
  CHECK(parsed({"--allowed-origins", "*"}).allowed_origins == std::vector<std::string>{"*"});
  check_error({}, {"ALLOWED_ORIGINS=https://ok.example.com,example.com"}, "ALLOWED_ORIGINS");
  check_error({}, {"ALLOWED_ORIGINS=https://example.com/app"}, "ALLOWED_ORIGINS");
  check_error({"--allowed-origins=ftp//x"}, {}, "--allowed-origins");
}

TEST_CASE("web client and ICE settings default to off, TURN_TTL to an hour") {
  auto s = parsed({});
  CHECK(s.web_root.empty());
  CHECK(s.stun_urls.empty());
  CHECK(s.turn_urls.empty());
  CHECK(s.turn_secret.empty());
  CHECK(s.turn_ttl == 3600s);
}

TEST_CASE("STUN_URLS and TURN_URLS are comma-separated URLs of their scheme") {
  auto s = parsed({}, {"STUN_URLS=stun:a:3478, stuns:b:5349",
                       "TURN_URLS=turn:h:3478?transport=udp,turn:h:3478?transport=tcp",
                       "TURN_SECRET=shh", "TURN_TTL=2"});
  CHECK(s.stun_urls == strings{"stun:a:3478", "stuns:b:5349"});
  CHECK(s.turn_urls == strings{"turn:h:3478?transport=udp", "turn:h:3478?transport=tcp"});
  CHECK(s.turn_secret == "shh");
  CHECK(s.turn_ttl == 2s);
  auto f = parsed({"--turn-urls", "turns:t:5349", "--turn-secret=k", "--turn-ttl", "60"});
  CHECK(f.turn_urls == strings{"turns:t:5349"});
  check_error({}, {"STUN_URLS=turn:h:3478"}, "STUN_URLS");
  check_error({}, {"STUN_URLS=stun:a,,stun:b"}, "STUN_URLS");
  check_error({}, {"STUN_URLS=stun:"}, "STUN_URLS");
  check_error({}, {"STUN_URLS=http://x"}, "STUN_URLS");
  check_error({}, {"TURN_URLS=stun:h", "TURN_SECRET=k"}, "TURN_URLS");
  check_error({}, {"TURN_URLS=turn:h\"x", "TURN_SECRET=k"}, "TURN_URLS");
  check_error({}, {"TURN_URLS=turn:h x", "TURN_SECRET=k"}, "TURN_URLS");
}

TEST_CASE("TURN_TTL is whole seconds, at least 1") {
  check_error({}, {"TURN_TTL=0"}, "TURN_TTL");
  check_error({}, {"TURN_TTL=1.5"}, "TURN_TTL");
  check_error({}, {"TURN_TTL=-1"}, "TURN_TTL");
  check_error({}, {"TURN_TTL=1h"}, "TURN_TTL");
  CHECK(parsed({}, {"TURN_TTL=1"}).turn_ttl == 1s);
}

TEST_CASE("TURN_URLS and TURN_SECRET go together") {
  check_error({}, {"TURN_URLS=turn:h:3478"}, "TURN_SECRET is not");
  check_error({}, {"TURN_SECRET=shh"}, "TURN_URLS is not");
  check_error({"--turn-urls", "turn:h"}, {}, "TURN_SECRET");
  // STUN alone needs no secret.
  CHECK(parsed({}, {"STUN_URLS=stun:h"}).stun_urls == strings{"stun:h"});
}

TEST_CASE("WEB_ROOT must be an existing directory") {
  auto dir = std::filesystem::temp_directory_path().string();
  CHECK(parsed({}, {"WEB_ROOT=" + dir}).web_root == dir);
  CHECK(parsed({"--web-root", dir}).web_root == dir);
  check_error({}, {"WEB_ROOT=/nonexistent/goring/web"}, "does not exist");
  auto file = dir + "/goring-config-test-file";
  { std::ofstream{file} << "x"; }
  check_error({}, {"WEB_ROOT=" + file}, "not a directory");
  std::filesystem::remove(file);
}

TEST_CASE("webhook settings: off by default, the offline ring keeps user_offline") {
  auto s = parsed({});
  CHECK(s.webhook_url.empty());
  CHECK(s.webhook_secret.empty());
  CHECK(s.offline_ring_timeout == std::chrono::milliseconds{0});
  CHECK(s.webhook_max_age == std::chrono::hours(24));
}

TEST_CASE("webhook settings are read with a secret of 32 bytes or more") {
  auto s = parsed({"--offline-ring-timeout", "45s"},
                  {"WEBHOOK_URL=https://backend.example/goring",
                   "WEBHOOK_SECRET=0123456789abcdef0123456789abcdef", "WEBHOOK_MAX_AGE=2h"});
  CHECK(s.webhook_url == "https://backend.example/goring");
  CHECK(s.offline_ring_timeout == std::chrono::seconds(45));
  CHECK(s.webhook_max_age == std::chrono::hours(2));
}

TEST_CASE("bad webhook settings are refused, each naming what is wrong") {
  const std::string url = "WEBHOOK_URL=http://127.0.0.1:1/hook";
  const std::string secret = "WEBHOOK_SECRET=0123456789abcdef0123456789abcdef";
  check_error({}, {url}, "WEBHOOK_SECRET is not");
  check_error({}, {url, "WEBHOOK_SECRET=short"}, "WEBHOOK_SECRET is too short");
  check_error({}, {url, "WEBHOOK_SECRET=0123456789abcdef0123456789abcde"}, "32 bytes");
  check_error({}, {secret}, "WEBHOOK_URL is not");
  check_error({}, {"OFFLINE_RING_TIMEOUT=30s"}, "OFFLINE_RING_TIMEOUT");
  check_error({}, {url, secret, "OFFLINE_RING_TIMEOUT=11m"}, "OFFLINE_RING_TIMEOUT");
  check_error({}, {url, secret, "OFFLINE_RING_TIMEOUT=500ms"}, "OFFLINE_RING_TIMEOUT");
  check_error({}, {url, secret, "WEBHOOK_MAX_AGE=5s"}, "WEBHOOK_MAX_AGE");
  check_error({}, {url, secret, "WEBHOOK_MAX_AGE=soon"}, "WEBHOOK_MAX_AGE");
}
