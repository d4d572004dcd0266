/// goring's settings: environment variables, each also a --flag.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace goring {

/// The value every setting starts from when neither flag nor variable is set.
inline constexpr const char* default_jwt_secret = "dev-secret-change-in-production";

/// The port of a sentinel named without one (REDIS_SENTINELS).
inline constexpr uint16_t default_sentinel_port = 26379;

/// The port of a cluster node named without one (REDIS_CLUSTER).
inline constexpr uint16_t default_redis_port = 6379;

/// One server's address.
struct host_port {
  std::string host;
  uint16_t port = 0;

  std::string to_string() const {
    return host + ":" + std::to_string(port);
  }
};

struct settings {
  std::string bind_addr = "0.0.0.0";
  uint16_t port = 8080;
  std::string jwt_secret = default_jwt_secret;
  /// Token algorithms goring accepts (JWT_ALGORITHMS); `none` never is.
  std::vector<std::string> jwt_algorithms{"HS256"};
  /// PEM public key for RS*/ES* tokens; empty: none.
  std::string jwt_public_key_file;
  /// A token without `exp` is refused.
  bool jwt_require_exp = true;
  /// When set, a token's `iss` must equal it / its `aud` must name it.
  std::string jwt_issuer;
  std::string jwt_audience;
  /// Clock skew allowed on `exp` and `nbf`; a connection is closed this
  /// long after its token's `exp`.
  std::chrono::milliseconds jwt_leeway{5'000};
  /// Where the identity provider publishes its keys (a JWKS); empty: none.
  /// https://, or http:// to a loopback address only (checked at start,
  /// outbound/url.hpp).
  std::string jwt_jwks_url;
  /// How often the JWKS is fetched again (sooner when the provider's
  /// Cache-Control: max-age says so).
  std::chrono::milliseconds jwt_jwks_refresh{300'000};
  /// The claim that holds the user id: `hash` (the reference's), `sub` for
  /// standard providers.
  std::string jwt_user_claim = "hash";
  /// PEM certificates trusted for outbound HTTPS (JWT_JWKS_URL) instead of
  /// the system's; empty: the system CAs.
  std::string outbound_ca_file;
  /// GORING_ENV=development or --dev: the default JWT secret is allowed.
  bool dev_mode = false;
  std::string redis_host = "localhost";
  uint16_t redis_port = 6379;
  /// AUTH of the data nodes (the one server, or every master Sentinel
  /// names): `AUTH password`, or `AUTH username password` with a username.
  std::string redis_username;
  std::string redis_password;
  /// Sentinel mode (REDIS_SENTINELS and REDIS_SENTINEL_MASTER): the
  /// sentinels to ask for the master named `redis_sentinel_master`;
  /// REDIS_ADDR is not used then. Empty: one server at REDIS_ADDR.
  std::vector<host_port> redis_sentinels;
  std::string redis_sentinel_master;
  /// AUTH of the sentinels themselves.
  std::string redis_sentinel_username;
  std::string redis_sentinel_password;
  /// Cluster mode (REDIS_CLUSTER): seed nodes of a Redis Cluster, any one
  /// reachable is enough; AUTH as for the data nodes above. Refused at
  /// start for now (settings_problem): the Lua scripts are not yet
  /// single-slot (issue #16).
  std::vector<host_port> redis_cluster;
  std::string server_id; // defaults to the hostname
  std::chrono::milliseconds ring_timeout{30'000};
  /// TTL of call:session and call:user keys; a live call refreshes them.
  std::chrono::milliseconds session_ttl{120'000};
  /// TTL of ws:user keys; refreshed every third of it while the user is
  /// connected. Only a safety net (an instance's crash is seen through its
  /// heartbeat at once), so it is long: idle users cost Redis one key
  /// operation per user every 30 s.
  std::chrono::milliseconds presence_ttl{90'000};
  std::size_t max_message_bytes = 65536;
  /// Frames queued for one client before it counts as a slow consumer.
  std::size_t max_queued_frames = 1024;
  /// Bytes queued for one client before it counts as a slow consumer.
  std::size_t max_queued_bytes = 1u << 20;
  /// A connection silent this long is pinged at half of it and closed at
  /// the end of it, so a half-open TCP connection does not keep a user on.
  std::chrono::milliseconds idle_timeout{60'000};
  /// A participant whose connection went without a close frame (or whose
  /// instance drained) may reconnect this long and resume the call.
  std::chrono::milliseconds reconnect_grace{20'000};
  /// TTL of this instance's ws:server heartbeat; refreshed every third.
  std::chrono::milliseconds heartbeat_ttl{6'000};
  /// How often each call actor extends its call and checks its participants.
  std::chrono::milliseconds call_check_interval{2'000};
  /// How often the subscriber connection is probed with a message to itself.
  std::chrono::milliseconds pubsub_probe_interval{5'000};
  /// Admin listener (/health, /ready, /metrics); port 0: none.
  std::string admin_addr = "127.0.0.1";
  uint16_t admin_port = 9090;
  /// Bearer token the admin API (/admin/...) requires; empty: none.
  std::string admin_token;
  std::string log_level = "info";
  std::string log_format = "json";
  unsigned io_threads = 1;
  unsigned actor_threads = 2;
  /// How long a shutdown waits for calls and keys to be released.
  std::chrono::milliseconds shutdown_grace{8'000};

  // -- Limits (docs/security.md, Limits). 0 turns a count or rate off. --
  /// Browser origins that may upgrade, normalized (see admission/origin_policy);
  /// empty: any origin.
  std::vector<std::string> allowed_origins;
  /// Frames a second one connection may send, and how many at once.
  unsigned message_rate = 50;
  unsigned message_burst = 200;
  /// Upgrade requests a second from one IP, and how many at once: room for
  /// the reconnect wave of a carrier-grade NAT, where thousands of phones
  /// share one IPv4 address.
  unsigned upgrade_rate_per_ip = 200;
  unsigned upgrade_burst_per_ip = 1000;
  /// TCP connections open at once from one IP on the public port; off by
  /// default for the same reason (MAX_CONNECTIONS guards the instance).
  unsigned max_connections_per_ip = 0;
  /// WebSockets this instance holds at once.
  unsigned max_connections = 10'000;
  /// Largest `sdp` of webrtc.offer/answer and `candidate` of webrtc.ice.
  std::size_t max_sdp_bytes = 32'768;
  std::size_t max_candidate_bytes = 1024;
  /// Time to send the whole HTTP request (upgrade included) on the public
  /// port, and for the WebSocket handshake.
  std::chrono::milliseconds handshake_timeout{10'000};
  /// Largest HTTP request line and headers.
  std::size_t max_header_bytes = 8192;

  // -- Web client and ICE servers (docs/client-guide.md). --
  /// Directory whose files the public port serves (GET/HEAD of any path
  /// but /ws, /health, /dev/token); empty: none.
  std::string web_root;
  /// STUN and TURN URLs sent to every client in ice.servers; both empty:
  /// no ice.servers message at all.
  std::vector<std::string> stun_urls;
  std::vector<std::string> turn_urls;
  /// The shared secret of coturn's `use-auth-secret` (REST API) scheme;
  /// required with TURN_URLS.
  std::string turn_secret;
  /// Lifetime of the TURN credentials; fresh ones are sent at 80 % of it.
  std::chrono::seconds turn_ttl{3600};

  // -- Webhooks and the offline ring (docs/webhooks.md). --
  /// Where every call event is POSTed, signed; empty: no webhooks. http://
  /// or https:// (checked at start, outbound/url.hpp).
  std::string webhook_url;
  /// The HMAC-SHA256 key of Goring-Signature; at least 32 bytes with a URL.
  std::string webhook_secret;
  /// How long a call to a user with no connection rings while their app is
  /// woken by a push; 0: such a call.start answers user_offline at once.
  std::chrono::milliseconds offline_ring_timeout{0};
  /// An event not delivered within this long after it happened is dropped.
  std::chrono::milliseconds webhook_max_age{std::chrono::hours(24)};
  /// An event another instance took and left untouched this long (it died)
  /// is claimed and sent from here. Above 35 s (the longest retry wait and
  /// a request) a live instance's events are never claimed from it.
  std::chrono::milliseconds webhook_claim_timeout{60'000};
};

/// The shortest WEBHOOK_SECRET goring takes.
inline constexpr std::size_t min_webhook_secret_bytes = 32;

/// One documented setting, for --help and docs/configuration.md.
struct setting_doc {
  std::string env;
  std::string flag;
  std::string default_value;
  std::string description;
};

const std::vector<setting_doc>& setting_docs();

/// The outcome of reading the command line and environment.
struct settings_parse {
  settings values;
  bool show_help = false;
  std::string error; // empty on success
  /// Settings that work but are likely not what was meant (REDIS_ADDR
  /// beside REDIS_SENTINELS, a single sentinel); main logs them at warn.
  std::vector<std::string> warnings;
};

/// Reads the environment (through `getenv`) and then `argv`, flags winning.
settings_parse parse_settings(int argc, const char* const* argv, const char* const* envp);

/// What makes settings unusable together (TURN_URLS without TURN_SECRET or
/// the reverse, a WEB_ROOT that is no directory, REDIS_SENTINELS without
/// REDIS_SENTINEL_MASTER or the reverse), or "". parse_settings returns it
/// as its error.
std::string settings_problem(const settings& s);

/// The text of `goring --help`.
std::string help_text();

/// The algorithms JWT_ALGORITHMS may name.
const std::vector<std::string>& known_jwt_algorithms();

/// The items of a comma-separated list, spaces and tabs trimmed; empty
/// items kept, so each setting decides whether "a,,b" is an error.
std::vector<std::string> comma_list(const std::string& value);

/// Reads "host:port,host:port,..." (a missing port is `default_port`): no
/// empty item, no port 0; nothing when the list is malformed.
std::optional<std::vector<host_port>> parse_host_list(const std::string& value,
                                                      uint16_t default_port);

/// Parses durations as "30", "30s", "500ms", "2m", "24h" (plain numbers are seconds).
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text);

} // namespace goring
