/// Checks the JWT a client presents on the WebSocket upgrade.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace goring::auth {

/// What goring takes from a valid token.
struct claims {
  std::string user_id;  // the `hash` claim
  std::string name;     // optional
  std::string username; // optional
  std::optional<std::chrono::system_clock::time_point> expires_at;
};

/// Why a token was refused. The text never contains the token.
struct token_check {
  std::optional<claims> valid;
  std::string refusal;
};

/// Verifies HS256 tokens signed with one secret.
class jwt_verifier {
public:
  explicit jwt_verifier(std::string secret);

  /// Accepts only `alg: HS256` with a correct signature, a `hash` claim
  /// (string or integer) and, when present, an `exp` not in the past
  /// (5 s leeway). `alg: none` and every other algorithm are refused.
  token_check verify(std::string_view token) const;

private:
  std::string secret_;
};

} // namespace goring::auth
