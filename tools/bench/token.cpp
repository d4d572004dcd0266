#include "tools/bench/token.hpp"

#include <cstdint>
#include <ctime>

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace goring::bench {

std::string base64url(const std::string& bytes) {
  static constexpr char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  auto byte = [&](std::size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(bytes[k])); };
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  auto rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t n = byte(i) << 16;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
  } else if (rest == 2) {
    uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
  }
  return out;
}

std::string mint_token(const std::string& secret, const std::string& user_id,
                       std::chrono::seconds lifetime) {
  auto now = static_cast<int64_t>(std::time(nullptr));
  std::string header = R"({"alg":"HS256","typ":"JWT"})";
  std::string claims = R"({"hash":")" + user_id + R"(","name":"Bench )" + user_id
                       + R"(","username":")" + user_id + R"(","iat":)" + std::to_string(now)
                       + R"(,"exp":)" + std::to_string(now + lifetime.count()) + "}";
  auto signing_input = base64url(header) + "." + base64url(claims);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
       &mac_len);
  return signing_input + "." + base64url(std::string(reinterpret_cast<char*>(mac), mac_len));
}

} // namespace goring::bench
