#include "tests/support/token.hpp"

#include <cctype>
#include <ctime>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace goring::test {

namespace {

std::string hs256(const std::string& secret, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

std::string header_json(const char* alg) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  w.StartObject();
  w.Key("alg");
  w.String(alg);
  w.Key("typ");
  w.String("JWT");
  w.EndObject();
  return out.GetString();
}

std::string claims_json(const token_spec& spec) {
  auto now = static_cast<int64_t>(std::time(nullptr));
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  w.StartObject();
  if (spec.flaw != token_flaw::no_hash) {
    w.Key("hash");
    w.String(spec.user_id.c_str(), static_cast<rapidjson::SizeType>(spec.user_id.size()));
  }
  if (spec.name) {
    w.Key("name");
    w.String(spec.name->c_str(), static_cast<rapidjson::SizeType>(spec.name->size()));
  }
  if (spec.username) {
    w.Key("username");
    w.String(spec.username->c_str(), static_cast<rapidjson::SizeType>(spec.username->size()));
  }
  auto iat = spec.flaw == token_flaw::expired ? now - 7200 : now;
  auto exp = spec.flaw == token_flaw::expired ? now - 3600 : now + spec.expires_in.count();
  w.Key("iat");
  w.Int64(iat);
  w.Key("exp");
  w.Int64(exp);
  w.EndObject();
  return out.GetString();
}

} // namespace

std::string base64url(const std::string& bytes) {
  static constexpr char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  if (bytes.size() - i == 1) {
    uint32_t n = byte(i) << 16;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
  } else if (bytes.size() - i == 2) {
    uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
  }
  return out;
}

std::string mint_token(const token_spec& spec) {
  if (spec.flaw == token_flaw::not_a_jwt)
    return "this-is-not-a-jwt";
  if (spec.flaw == token_flaw::alg_none)
    return base64url(header_json("none")) + "." + base64url(claims_json(spec)) + ".";
  auto signing_input = base64url(header_json("HS256")) + "." + base64url(claims_json(spec));
  auto secret =
    spec.flaw == token_flaw::wrong_secret ? spec.secret + "-but-not-the-right-one" : spec.secret;
  return signing_input + "." + base64url(hs256(secret, signing_input));
}

std::string token_for(const std::string& user_id, const std::string& name,
                      const std::string& username) {
  token_spec spec;
  spec.user_id = user_id;
  spec.name = name;
  spec.username = username;
  return mint_token(spec);
}

std::string display_name_of(const std::string& user_id) {
  auto name = user_id;
  if (!name.empty())
    name[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
  return name;
}

std::string username_of(const std::string& user_id) {
  return user_id + ".handle";
}

std::string user_token(const std::string& user_id) {
  return token_for(user_id, display_name_of(user_id), username_of(user_id));
}

std::string flawed_token(const std::string& user_id, token_flaw flaw) {
  token_spec spec;
  spec.user_id = user_id;
  spec.name = display_name_of(user_id);
  spec.username = username_of(user_id);
  spec.flaw = flaw;
  return mint_token(spec);
}

} // namespace goring::test
