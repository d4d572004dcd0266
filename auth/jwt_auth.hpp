/// Checks the JWT a client presents on the WebSocket upgrade (and in
/// auth.refresh): an allowlist of algorithms, an HMAC secret, or public
/// keys (one PEM key, or a JWKS fetched from the identity provider), and
/// the exp/nbf/iss/aud claims.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace goring {
struct settings;
} // namespace goring

namespace goring::auth {

class key_store;

/// What goring takes from a valid token.
struct claims {
  std::string user_id;  // the JWT_USER_CLAIM claim (`hash` by default)
  std::string name;     // optional
  std::string username; // optional: `username`, else `preferred_username`
  /// The `exp` claim; none when the token has none (JWT_REQUIRE_EXP=false).
  std::optional<std::chrono::system_clock::time_point> expires_at;
};

/// Why a token was refused, as goring_tokens_refused_total counts it.
enum class refusal_reason {
  none,
  missing,     ///< no token at all
  malformed,   ///< not a JWT: parts, base64url, JSON, header
  algorithm,   ///< `alg` not allowed, or not the algorithm of its key
  unknown_kid, ///< a `kid` the key set does not hold: fetching it again may help
  no_kid,      ///< no `kid`, and the key set holds more than one key
  signature,   ///< the signature does not verify
  expired,     ///< past `exp` + leeway
  claim,       ///< the user claim, exp, nbf, iss or aud is missing or wrong
  no_keys,     ///< no key for the algorithm (the key set not fetched yet)
};

/// The label value of a reason: "missing", "malformed", "algorithm", ...
const char* reason_name(refusal_reason reason);

/// Why a token was refused. The text never contains the token.
struct token_check {
  std::optional<claims> valid;
  std::string refusal;
  refusal_reason reason = refusal_reason::none;
};

/// How tokens are checked.
struct verifier_options {
  /// Accepted `alg` values; HS* verify with `secret`, RS*/PS256/ES* with
  /// the public keys. Never `none`.
  std::vector<std::string> algorithms{"HS256"};
  std::string secret;
  /// The PEM text (not a file name) of an RSA or EC public key.
  std::string public_key_pem;
  /// Keys from a JWKS, replaced while tokens are checked; when set,
  /// `public_key_pem` is not used.
  std::shared_ptr<key_store> jwks;
  bool require_exp = true;
  std::string issuer;   // empty: not checked
  std::string audience; // empty: not checked
  std::chrono::seconds leeway{5};
  /// The claim that holds the user id.
  std::string user_claim = "hash";
};

class jwt_verifier {
public:
  explicit jwt_verifier(verifier_options options);
  /// HS256 with `secret`, exp required, 5 s leeway.
  explicit jwt_verifier(std::string secret);

  /// Accepts a token only when its header's `alg` is in the allowlist, its
  /// signature verifies with the key of that algorithm's family (for a
  /// JWKS: the key its `kid` names, whose own `alg` and type must be the
  /// token's), it has the user claim (string or integer), and exp
  /// (required unless require_exp is off), nbf, iss and aud pass. `alg:
  /// none` is never in the allowlist; a public key is never used as an HMAC
  /// secret. Never blocks: the key set in force is read, not fetched.
  token_check verify(std::string_view token) const;

  /// False while RS/PS/ES tokens have no key to check with: a JWKS that
  /// has not arrived yet. HS and PEM keys are always ready.
  bool keys_ready() const;

  /// After a refusal for an unknown kid: asks for the JWKS again (at most
  /// once every 10 s, see outbound/jwks_fetcher). `done` runs, on any
  /// thread and maybe at once, when that fetch ended or was not made.
  void refresh_keys(std::function<void()> done) const;

  std::chrono::seconds leeway() const {
    return options_.leeway;
  }

private:
  verifier_options options_;
  /// The RS/PS/ES keys: options_.jwks, or one set of the PEM key.
  std::shared_ptr<key_store> keys_;
};

/// A verifier built from the settings, or why there is none (goring then
/// refuses to start). Reads JWT_PUBLIC_KEY_FILE, checks that the key suits
/// every RS/ES algorithm allowed, and refuses the default development secret
/// with an HS algorithm outside development mode. With JWT_JWKS_URL the
/// verifier starts without keys: the caller fetches them into `jwks`.
struct verifier_setup {
  std::shared_ptr<const jwt_verifier> verifier;
  /// Where fetched key sets go (JWT_JWKS_URL); null without one.
  std::shared_ptr<key_store> jwks;
  std::string error;
  /// Worth a warning at start-up (the development secret in dev mode).
  std::string warning;
};

verifier_setup make_verifier(const settings& config);

} // namespace goring::auth
