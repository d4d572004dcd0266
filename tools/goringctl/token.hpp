/// Development tokens: HS256/384/512 JWTs of the kind goring accepts,
/// minted from the shared secret without any server.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace goringctl {

/// The claims of one token.
struct token_request {
  std::string secret;
  std::string user_id;
  std::string user_claim = "hash"; ///< the claim that holds user_id (JWT_USER_CLAIM)
  std::optional<std::string> name;
  std::optional<std::string> username;
  std::chrono::seconds ttl{3600};
  std::string algorithm = "HS256";     ///< HS256, HS384 or HS512
  std::optional<std::string> issuer;   ///< the `iss` claim
  std::optional<std::string> audience; ///< the `aud` claim
};

/// A minted token and when it expires.
struct minted_token {
  std::string token;
  int64_t expires_at = 0; ///< Unix seconds, the `exp` claim
};

/// Signs the user claim, `name`, `username`, `iss`, `aud` (when given), `iat` and
/// `exp` = now + ttl with the HMAC algorithm asked for; throws a usage error
/// on any other algorithm.
minted_token mint_token(const token_request& request);

/// Reads "90", "90s", "30m", "1h", "7d" (plain numbers are seconds); throws
/// a usage error on anything else or zero.
std::chrono::seconds parse_ttl(const std::string& text);

} // namespace goringctl
