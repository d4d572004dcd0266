/// Fuzz target for token parsing and verification. The first byte picks the
/// mode: even ('T' in the seeds), the rest is a token as a client would send
/// it; odd ('S'), the rest is a header and a payload (JSON, split at the first
/// newline; no newline: the payload alone under an HS256 header) that the
/// target signs with the verifier's secret, so claim checks are reached past
/// the signature.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/jwt_auth.hpp"

namespace {

constexpr std::string_view secret = "goring-fuzz-secret";

void check(bool ok) {
  if (!ok)
    std::abort();
}

std::string base64url(std::string_view bytes) {
  static constexpr char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = static_cast<uint8_t>(bytes[i]) << 16 | static_cast<uint8_t>(bytes[i + 1]) << 8
                 | static_cast<uint8_t>(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6)
      out.push_back(alphabet[(n >> shift) & 63]);
  }
  if (i + 1 == bytes.size()) {
    uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
    out.push_back(alphabet[(n >> 18) & 63]);
    out.push_back(alphabet[(n >> 12) & 63]);
  } else if (i + 2 == bytes.size()) {
    uint32_t n = static_cast<uint8_t>(bytes[i]) << 16 | static_cast<uint8_t>(bytes[i + 1]) << 8;
    out.push_back(alphabet[(n >> 18) & 63]);
    out.push_back(alphabet[(n >> 12) & 63]);
    out.push_back(alphabet[(n >> 6) & 63]);
  }
  return out;
}

/// header.payload.signature, HS256 with `secret`.
std::string signed_token(std::string_view header, std::string_view payload) {
  auto input = base64url(header) + "." + base64url(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_size);
  return input + "." + base64url({reinterpret_cast<const char*>(mac), mac_size});
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  static const goring::auth::jwt_verifier verifier{std::string{secret}};
  std::string_view rest{reinterpret_cast<const char*>(data) + 1, size - 1};
  std::string token;
  if ((data[0] & 1) == 0) {
    token = std::string{rest};
  } else {
    auto newline = rest.find('\n');
    if (newline == std::string_view::npos)
      token = signed_token(R"({"alg":"HS256","typ":"JWT"})", rest);
    else
      token = signed_token(rest.substr(0, newline), rest.substr(newline + 1));
  }
  auto result = verifier.verify(token);
  // Exactly one of claims and a reason; a reason never quotes the token
  // (unless the "token" is a piece of a reason's English, spaces and all).
  check(result.valid.has_value() == result.refusal.empty());
  if (result.valid)
    check(!result.valid->user_id.empty());
  else if (token.size() >= 16 && token.find(' ') == std::string::npos)
    check(result.refusal.find(token) == std::string::npos);
  return 0;
}
