/// JWTs for tests: valid HS256 tokens and every kind of bad one the server
/// must refuse.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace goring::test {

/// The JWT_SECRET every test server runs with.
inline constexpr const char* test_jwt_secret = "goring-e2e-test-secret";

/// What is wrong with a minted token, on purpose.
enum class token_flaw {
  none,         ///< a valid token
  expired,      ///< `exp` one hour in the past
  wrong_secret, ///< signed with a secret the server does not know
  alg_none,     ///< header {"alg":"none"} and an empty signature
  no_hash,      ///< no `hash` claim, so no user id
  not_a_jwt,    ///< a string that is no JWT at all
};

/// The claims and the signing of one test token.
struct token_spec {
  /// The `hash` claim: the user id.
  std::string user_id;
  /// `name` and `username` claims; left out of the token when unset.
  std::optional<std::string> name;
  std::optional<std::string> username;
  /// `exp` is now plus this (ignored for `token_flaw::expired`).
  std::chrono::seconds expires_in{3600};
  /// Without it the token has no `exp` at all.
  bool with_exp = true;
  /// The header's `alg`; HS* sign with `secret`, RS*/ES* with the private
  /// key PEM in `secret`.
  std::string algorithm = "HS256";
  std::string secret = test_jwt_secret;
  /// `iss` and `aud` claims; left out when empty.
  std::string issuer;
  std::string audience;
  token_flaw flaw = token_flaw::none;
  /// The header's `kid`; left out when empty.
  std::string kid;
  /// The claim that holds `user_id` (`hash`; `sub` as standard providers
  /// put it).
  std::string user_claim = "hash";
  /// A `preferred_username` claim (OpenID Connect's); left out when unset.
  std::optional<std::string> preferred_username;
};

/// Mints a token as `spec` says.
std::string mint_token(const token_spec& spec);

/// A valid token for `user_id` with `name` and `username` claims.
std::string token_for(const std::string& user_id, const std::string& name,
                      const std::string& username);

/// The claims e2e tests give each user: "alice" is named "Alice" with the
/// username "alice.handle".
std::string display_name_of(const std::string& user_id);
std::string username_of(const std::string& user_id);

/// A valid token for `user_id` with the claims above.
std::string user_token(const std::string& user_id);

/// A token for `user_id` that has the flaw `flaw`.
std::string flawed_token(const std::string& user_id, token_flaw flaw);

/// A key pair made at test time, as PEM texts.
struct key_pair {
  std::string private_pem;
  std::string public_pem;
};

/// A 2048-bit RSA key pair (one per test process, made on first use).
const key_pair& rsa_key();
/// A P-256 EC key pair (one per test process, made on first use).
const key_pair& ec_key();
/// A fresh key pair each call: RSA of `bits`, or EC on `curve` ("P-256",
/// "P-384", "P-521").
key_pair new_rsa_key(int bits = 2048);
key_pair new_ec_key(const char* curve = "P-256");

/// The public JWK of `key` (RSA: n, e; EC: crv, x, y) as JSON text, with
/// `kid` and `alg` unless empty and `use: sig`; made with OpenSSL here, not
/// with goring's own code.
std::string jwk_of(const key_pair& key, const std::string& kid, const std::string& alg);
/// {"keys":[...]} of JWK texts.
std::string jwks_of(const std::vector<std::string>& jwks);

/// `base64url(header).base64url(payload).signature` with `alg`: HS* use
/// `key` as the HMAC secret, RS*/ES* as a private key PEM (ES signatures in
/// the JOSE r||s form).
std::string sign_jwt(const std::string& alg, const std::string& key, const std::string& header_json,
                     const std::string& payload_json);

/// Writes `content` to a new file in the temp directory; returns its path.
std::string write_temp_file(const std::string& stem, const std::string& content);

/// base64url without padding, as JWTs use it.
std::string base64url(const std::string& bytes);

} // namespace goring::test
