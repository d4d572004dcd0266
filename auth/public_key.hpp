/// A public key that verifies JWS signatures (RS256/384/512, PS256,
/// ES256/384/512): read from PEM text or built from a JWK's members. Pure:
/// OpenSSL's crypto, no I/O. Copies share one immutable key, so any number
/// of threads may verify with it at once.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct evp_pkey_st; // OpenSSL's EVP_PKEY, kept out of this header

namespace goring::auth {

/// The smallest and largest RSA modulus goring verifies with, in bits:
/// under 2048 is forgeable in practice; over 8192 only makes each check
/// slow (a key set from the network must not be a way to burn CPU).
inline constexpr int min_rsa_bits = 2048;
inline constexpr int max_rsa_bits = 8192;

struct key_result;

class public_key {
public:
  enum class type { rsa, ec };

  /// From `-----BEGIN PUBLIC KEY-----` text (SubjectPublicKeyInfo).
  static key_result from_pem(std::string_view pem);
  /// From an RSA JWK's `n` and `e`, as big-endian bytes (base64url-decoded):
  /// min_rsa_bits..max_rsa_bits, an odd exponent of at most 64 bits, > 1.
  static key_result from_rsa(std::string_view n, std::string_view e);
  /// From an EC JWK: `crv` as JOSE names it ("P-256", "P-384"), `x` and `y`
  /// as big-endian bytes of the curve's size; the point must be on the curve.
  static key_result from_ec(std::string_view crv, std::string_view x, std::string_view y);

  type kind() const;
  int bits() const;
  /// The curve as OpenSSL names it ("prime256v1", "secp384r1", "secp521r1");
  /// "" for RSA.
  std::string curve() const;

  /// Whether the key can check `alg` at all: RS* and PS256 need RSA, ES256
  /// P-256, ES384 P-384, ES512 P-521; HS* and anything else never.
  bool suits(std::string_view alg) const;

  /// Whether `signature` (raw bytes; ES* in JOSE's r||s form) signs `input`
  /// under `alg` with this key. False for an algorithm the key does not suit.
  bool verify(std::string_view alg, std::string_view input, std::string_view signature) const;

  /// The key as `-----BEGIN PUBLIC KEY-----` text.
  std::string pem() const;

private:
  explicit public_key(std::shared_ptr<evp_pkey_st> key);

  std::shared_ptr<evp_pkey_st> key_;
};

/// A key, or why none could be made (never the key material itself).
struct key_result {
  std::optional<public_key> key;
  std::string error;
};

/// The curve an ES algorithm signs with, as OpenSSL names it ("" for others).
std::string_view curve_of(std::string_view alg);

} // namespace goring::auth
