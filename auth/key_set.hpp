/// The public keys RS/PS/ES tokens verify with, as one immutable set: the
/// usable keys of a JWKS document, or the one key of JWT_PUBLIC_KEY_FILE.
/// Which key checks a token (its `kid`, its `alg`) is decided here.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/public_key.hpp"

namespace goring::auth {

/// One key of a set.
struct verification_key {
  /// The JWK's `kid`; empty for the PEM key or a JWK without one.
  std::string kid;
  /// The JWK's `alg`; empty: any algorithm the key suits.
  std::string alg;
  public_key key;

  /// Whether a token of `alg` may be checked with this key: the key's own
  /// `alg` when it has one, else any its type suits.
  bool accepts(std::string_view token_alg) const;
};

/// What a token's header picked, or why nothing.
struct key_choice {
  enum class problem {
    none,
    unknown_kid, ///< a `kid` the set does not hold: worth fetching the set again
    no_kid,      ///< no `kid`, and the set holds more than one key
    algorithm,   ///< the key's `alg` (or type) is not the token's
  };
  const verification_key* key = nullptr;
  problem why = problem::none;
  /// For the client and the log; never contains the token.
  std::string refusal;
};

class key_set {
public:
  /// A set from a JWKS: a token's `kid` picks its key.
  static key_set from_jwks(std::vector<verification_key> keys);
  /// The PEM key: every token is checked with it, whatever its `kid`.
  static key_set single(public_key key);

  /// The key for a token of `alg` with `kid` (none: the header has none).
  key_choice choose(std::string_view alg, const std::optional<std::string>& kid) const;

  const std::vector<verification_key>& keys() const {
    return keys_;
  }
  bool by_kid() const {
    return by_kid_;
  }

private:
  std::vector<verification_key> keys_;
  bool by_kid_ = false;
};

} // namespace goring::auth
