/// POST /dev/token in development mode: mints a short-lived HS256 token for
/// any user, so the web client can try calls without an identity provider.
/// Pure code: parsing the request, minting, encoding the answer.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace goring {
struct settings;
} // namespace goring

namespace goring::auth {

/// How long a development token lives.
inline constexpr long long dev_token_ttl_seconds = 3600;
/// The longest `name` a development token takes, in bytes.
inline constexpr std::size_t dev_token_max_name_bytes = 64;

/// What a client asks for: {"user_id":"alice","name":"Alice"}.
struct dev_token_request {
  std::string user_id;
  std::string name; // empty: no name claim
};

/// The request, or why it is refused (a 400 with that text).
struct dev_token_parse {
  std::optional<dev_token_request> request;
  std::string error;
};

/// A user id a development token may carry: 1 to protocol::max_id_length
/// bytes of [A-Za-z0-9._@-].
bool valid_dev_user_id(std::string_view user_id);

/// Reads the JSON body: an object with a string `user_id` (valid_dev_user_id)
/// and an optional string `name` (valid UTF-8, at most 64 bytes); other
/// members are ignored.
dev_token_parse parse_dev_token_request(std::string_view body);

/// Why goring cannot mint tokens its own verifier accepts (HS256 is not
/// in JWT_ALGORITHMS), or "".
std::string dev_token_unavailable(const settings& config);

struct dev_token {
  std::string token;
  long long expires_at = 0;
};

/// An HS256 token signed with JWT_SECRET: `hash` and `username` = user_id,
/// `name` when given, `iat` = now, `exp` = now + 1 h, and `iss`/`aud` when
/// JWT_ISSUER/JWT_AUDIENCE are set.
dev_token mint_dev_token(const settings& config, const dev_token_request& request, long long now);

/// {"token":"...","user_id":"...","expires_at":N}
std::string encode_dev_token(const dev_token& token, std::string_view user_id);

/// {"error":"..."}
std::string encode_error_body(std::string_view message);

} // namespace goring::auth
