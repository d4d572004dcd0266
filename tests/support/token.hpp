/// JWTs for tests: valid HS256 tokens and every kind of bad one the server
/// must refuse.
#pragma once

#include <chrono>
#include <optional>
#include <string>

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
  std::string secret = test_jwt_secret;
  token_flaw flaw = token_flaw::none;
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

/// base64url without padding, as JWTs use it.
std::string base64url(const std::string& bytes);

} // namespace goring::test
