/// The ice.servers message: STUN and TURN servers for a client's
/// RTCPeerConnection, with TURN credentials of coturn's REST API scheme
/// (`use-auth-secret`). Pure code: no sockets, no actors.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace goring {
struct settings;
} // namespace goring

namespace goring::ice {

/// Base64 of HMAC-SHA1(`key`, `message`): a TURN credential.
std::string hmac_sha1_base64(std::string_view key, std::string_view message);

/// Credentials a TURN server with `static-auth-secret=secret` accepts until
/// `expires_at` (unix seconds): username "<expires_at>:<user_id>", and the
/// HMAC of that username as the credential.
struct turn_credentials {
  std::string username;
  std::string credential;
};

turn_credentials make_turn_credentials(std::string_view secret, std::string_view user_id,
                                       long long expires_at);

/// Whether clients get ice.servers at all (STUN_URLS or TURN_URLS set).
bool enabled(const settings& config);

/// Whether the message carries TURN credentials, which expire and are sent
/// again (TURN_URLS set).
bool refreshes(const settings& config);

/// The ice.servers frame for `user_id` at unix time `now`:
/// {"type":"ice.servers","payload":{"ice_servers":[{"urls":[...]},
/// {"urls":[...],"username":"...","credential":"..."}],"ttl":N,"expires_at":T}}.
/// Entries use RTCIceServer's field names; ttl and expires_at only with TURN.
std::string encode_ice_servers(const settings& config, std::string_view user_id, long long now);

/// When the next ice.servers is due: at 80 % of TURN_TTL (at least 1 ms), so
/// fresh credentials arrive before the old ones expire.
std::chrono::milliseconds refresh_interval(const settings& config);

} // namespace goring::ice
