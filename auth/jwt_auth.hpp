/// Checks the JWT a client presents on the WebSocket upgrade (and in
/// auth.refresh): an allowlist of algorithms, an HMAC secret or a PEM public
/// key, and the exp/nbf/iss/aud claims.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace goring {
struct settings;
} // namespace goring

namespace goring::auth {

/// What goring takes from a valid token.
struct claims {
  std::string user_id;  // the `hash` claim
  std::string name;     // optional
  std::string username; // optional
  /// The `exp` claim; none when the token has none (JWT_REQUIRE_EXP=false).
  std::optional<std::chrono::system_clock::time_point> expires_at;
};

/// Why a token was refused. The text never contains the token.
struct token_check {
  std::optional<claims> valid;
  std::string refusal;
};

/// How tokens are checked.
struct verifier_options {
  /// Accepted `alg` values; HS* verify with `secret`, RS*/ES* with
  /// `public_key_pem`. Never `none`.
  std::vector<std::string> algorithms{"HS256"};
  std::string secret;
  /// The PEM text (not a file name) of an RSA or EC public key.
  std::string public_key_pem;
  bool require_exp = true;
  std::string issuer;   // empty: not checked
  std::string audience; // empty: not checked
  std::chrono::seconds leeway{5};
};

class jwt_verifier {
public:
  explicit jwt_verifier(verifier_options options);
  /// HS256 with `secret`, exp required, 5 s leeway.
  explicit jwt_verifier(std::string secret);

  /// Accepts a token only when its header's `alg` is in the allowlist, its
  /// signature verifies with the key of that algorithm's family, it has a
  /// `hash` claim (string or integer), and exp (required unless
  /// require_exp is off), nbf, iss and aud pass. `alg: none` is never in
  /// the allowlist; an RS/ES public key is never used as an HMAC secret.
  token_check verify(std::string_view token) const;

  std::chrono::seconds leeway() const {
    return options_.leeway;
  }

private:
  verifier_options options_;
};

/// A verifier built from the settings, or why there is none (goring then
/// refuses to start). Reads JWT_PUBLIC_KEY_FILE, checks that the key suits
/// every RS/ES algorithm allowed, and refuses the default development secret
/// with an HS algorithm outside development mode.
struct verifier_setup {
  std::shared_ptr<const jwt_verifier> verifier;
  std::string error;
  /// Worth a warning at start-up (the development secret in dev mode).
  std::string warning;
};

verifier_setup make_verifier(const settings& config);

} // namespace goring::auth
