/// Development tokens: HS256 JWTs of the kind goring accepts, minted from
/// the shared secret without any server.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace goringctl {

/// The claims of one token.
struct token_request {
  std::string secret;
  std::string user_id; ///< the `hash` claim
  std::optional<std::string> name;
  std::optional<std::string> username;
  std::chrono::seconds ttl{3600};
};

/// A minted token and when it expires.
struct minted_token {
  std::string token;
  int64_t expires_at = 0; ///< Unix seconds, the `exp` claim
};

/// Signs `hash`, `name`, `username` (when given), `iat` and `exp` = now +
/// ttl with HS256.
minted_token mint_token(const token_request& request);

/// Reads "90", "90s", "30m", "1h", "7d" (plain numbers are seconds); throws
/// a usage error on anything else or zero.
std::chrono::seconds parse_ttl(const std::string& text);

} // namespace goringctl
