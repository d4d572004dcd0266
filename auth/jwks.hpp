/// Reads a JWKS document (RFC 7517, as identity providers publish it at
/// their jwks_uri) into a key set. Pure: text in, keys out. The document
/// comes from the network, so anything may be in it: a key goring cannot
/// use is left out with a reason, and a document without any usable key is
/// refused as a whole (the set in force then stays).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/key_set.hpp"

namespace goring::auth {

/// More keys than this is no provider's key set: the document is refused.
inline constexpr std::size_t max_jwks_keys = 100;

/// What a document gave.
struct jwks_parse {
  /// At least one usable key; none when the document is refused.
  std::optional<key_set> keys;
  /// Why the document is refused as a whole.
  std::string error;
  /// One line per key left out and why ("key 2 (kid 'x'): use 'enc'").
  std::vector<std::string> skipped;
};

/// A key is used when its `kty` is RSA (n, e) or EC (crv P-256 or P-384,
/// x, y), its `use` (if any) is "sig", its `key_ops` (if any) hold
/// "verify", its `alg` (if any) is RS256/384/512 or PS256 for RSA and
/// ES256/ES384 for EC on the matching curve, it holds no private part
/// (`d`), and its `kid` (if any) is a string no earlier key has. HS keys
/// (`kty` oct) are never used: a shared secret does not come from a URL.
jwks_parse parse_jwks(std::string_view document);

/// base64url (RFC 4648 §5) as JWKs and JWSs use it: no padding, though
/// trailing '=' is tolerated; nothing on any character outside the
/// alphabet or a length no encoding has.
std::optional<std::string> base64url_decode(std::string_view text);

} // namespace goring::auth
