#include "tests/support/token.hpp"

#include <cctype>
#include <ctime>

#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

namespace goring::test {

namespace {

int temp_files = 0;

const EVP_MD* digest_of(const std::string& alg) {
  auto bits = alg.substr(2);
  if (bits == "384")
    return EVP_sha384();
  if (bits == "512")
    return EVP_sha512();
  return EVP_sha256();
}

std::string hmac(const EVP_MD* md, const std::string& secret, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md, secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  auto len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}

key_pair pem_pair(EVP_PKEY* key) {
  REQUIRE(key != nullptr);
  key_pair out;
  BIO* priv = BIO_new(BIO_s_mem());
  BIO* pub = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  REQUIRE(PEM_write_bio_PUBKEY(pub, key) == 1);
  out.private_pem = bio_text(priv);
  out.public_pem = bio_text(pub);
  BIO_free(priv);
  BIO_free(pub);
  EVP_PKEY_free(key);
  return out;
}

/// Signs with a private key PEM; ES signatures turn from DER into r||s.
std::string sign_with_key(const std::string& alg, const std::string& private_pem,
                          const std::string& data) {
  BIO* bio = BIO_new_mem_buf(private_pem.data(), static_cast<int>(private_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  REQUIRE_MESSAGE(key != nullptr, "signing ", alg, " needs a private key PEM");
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::size_t len = 0;
  EVP_PKEY_CTX* pctx = nullptr;
  REQUIRE(EVP_DigestSignInit(ctx, &pctx, digest_of(alg), nullptr, key) == 1);
  if (alg.rfind("PS", 0) == 0) {
    REQUIRE(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1);
    REQUIRE(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1);
  }
  REQUIRE(EVP_DigestSignUpdate(ctx, data.data(), data.size()) == 1);
  REQUIRE(EVP_DigestSignFinal(ctx, nullptr, &len) == 1);
  std::string sig(len, '\0');
  REQUIRE(EVP_DigestSignFinal(ctx, reinterpret_cast<unsigned char*>(&sig[0]), &len) == 1);
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  int bits = EVP_PKEY_get_bits(key);
  bool ec = EVP_PKEY_get_base_id(key) == EVP_PKEY_EC;
  EVP_PKEY_free(key);
  if (!ec)
    return sig;
  auto size = static_cast<std::size_t>((bits + 7) / 8);
  const auto* der = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* parsed = d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(sig.size()));
  REQUIRE(parsed != nullptr);
  std::string raw(2 * size, '\0');
  auto* out = reinterpret_cast<unsigned char*>(&raw[0]);
  BN_bn2binpad(ECDSA_SIG_get0_r(parsed), out, static_cast<int>(size));
  BN_bn2binpad(ECDSA_SIG_get0_s(parsed), out + size, static_cast<int>(size));
  ECDSA_SIG_free(parsed);
  return raw;
}

std::string header_json(const std::string& alg, const std::string& kid = {}) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  w.StartObject();
  w.Key("alg");
  w.String(alg.c_str());
  w.Key("typ");
  w.String("JWT");
  if (!kid.empty()) {
    w.Key("kid");
    w.String(kid.c_str());
  }
  w.EndObject();
  return out.GetString();
}

std::string claims_json(const token_spec& spec) {
  auto now = static_cast<int64_t>(std::time(nullptr));
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  w.StartObject();
  if (spec.flaw != token_flaw::no_hash) {
    w.Key(spec.user_claim.c_str());
    w.String(spec.user_id.c_str(), static_cast<rapidjson::SizeType>(spec.user_id.size()));
  }
  if (spec.preferred_username) {
    w.Key("preferred_username");
    w.String(spec.preferred_username->c_str(),
             static_cast<rapidjson::SizeType>(spec.preferred_username->size()));
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
  if (spec.with_exp || spec.flaw == token_flaw::expired) {
    w.Key("exp");
    w.Int64(exp);
  }
  if (!spec.issuer.empty()) {
    w.Key("iss");
    w.String(spec.issuer.c_str());
  }
  if (!spec.audience.empty()) {
    w.Key("aud");
    w.String(spec.audience.c_str());
  }
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
    return base64url(header_json("none", spec.kid)) + "." + base64url(claims_json(spec)) + ".";
  auto secret =
    spec.flaw == token_flaw::wrong_secret ? spec.secret + "-but-not-the-right-one" : spec.secret;
  return sign_jwt(spec.algorithm, secret, header_json(spec.algorithm, spec.kid), claims_json(spec));
}

std::string sign_jwt(const std::string& alg, const std::string& key, const std::string& header,
                     const std::string& payload) {
  auto input = base64url(header) + "." + base64url(payload);
  auto sig =
    alg.rfind("HS", 0) == 0 ? hmac(digest_of(alg), key, input) : sign_with_key(alg, key, input);
  return input + "." + base64url(sig);
}

const key_pair& rsa_key() {
  static const key_pair pair = pem_pair(EVP_RSA_gen(2048));
  return pair;
}

const key_pair& ec_key() {
  static const key_pair pair = pem_pair(EVP_EC_gen("P-256"));
  return pair;
}

key_pair new_rsa_key(int bits) {
  return pem_pair(EVP_RSA_gen(static_cast<unsigned>(bits)));
}

key_pair new_ec_key(const char* curve) {
  return pem_pair(EVP_EC_gen(curve));
}

std::string jwk_of(const key_pair& pair, const std::string& kid, const std::string& alg) {
  BIO* bio = BIO_new_mem_buf(pair.public_pem.data(), static_cast<int>(pair.public_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  REQUIRE(key != nullptr);
  auto bn_bytes = [&](const char* name, int pad) {
    BIGNUM* bn = nullptr;
    REQUIRE(EVP_PKEY_get_bn_param(key, name, &bn) == 1);
    std::string out(static_cast<std::size_t>(pad > 0 ? pad : BN_num_bytes(bn)), '\0');
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(&out[0]), static_cast<int>(out.size()));
    BN_free(bn);
    return base64url(out);
  };
  rapidjson::StringBuffer text;
  rapidjson::Writer<rapidjson::StringBuffer> w(text);
  w.StartObject();
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
    w.Key("kty");
    w.String("RSA");
    w.Key("n");
    w.String(bn_bytes(OSSL_PKEY_PARAM_RSA_N, 0).c_str());
    w.Key("e");
    w.String(bn_bytes(OSSL_PKEY_PARAM_RSA_E, 0).c_str());
  } else {
    char group[64] = {};
    std::size_t len = 0;
    REQUIRE(EVP_PKEY_get_group_name(key, group, sizeof(group), &len) == 1);
    std::string name{group, len};
    auto crv = name == "prime256v1" ? "P-256" : name == "secp384r1" ? "P-384" : "P-521";
    int size = (EVP_PKEY_get_bits(key) + 7) / 8;
    w.Key("kty");
    w.String("EC");
    w.Key("crv");
    w.String(crv);
    w.Key("x");
    w.String(bn_bytes(OSSL_PKEY_PARAM_EC_PUB_X, size).c_str());
    w.Key("y");
    w.String(bn_bytes(OSSL_PKEY_PARAM_EC_PUB_Y, size).c_str());
  }
  w.Key("use");
  w.String("sig");
  if (!kid.empty()) {
    w.Key("kid");
    w.String(kid.c_str());
  }
  if (!alg.empty()) {
    w.Key("alg");
    w.String(alg.c_str());
  }
  w.EndObject();
  EVP_PKEY_free(key);
  return text.GetString();
}

std::string jwks_of(const std::vector<std::string>& jwks) {
  std::string out = R"({"keys":[)";
  for (std::size_t i = 0; i < jwks.size(); ++i)
    out += (i == 0 ? "" : ",") + jwks[i];
  return out + "]}";
}

std::string write_temp_file(const std::string& stem, const std::string& content) {
  auto path = std::filesystem::temp_directory_path()
              / (stem + "." + std::to_string(::getpid()) + "." + std::to_string(++temp_files));
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out << content;
  REQUIRE_MESSAGE(out.good(), "could not write ", path.string());
  return path.string();
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
