#include "auth/public_key.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

namespace goring::auth {

namespace {

template <class T, void (*Free)(T*)>
struct deleter {
  void operator()(T* p) const {
    Free(p);
  }
};

using bio_ptr = std::unique_ptr<BIO, deleter<BIO, BIO_free_all>>;
using bn_ptr = std::unique_ptr<BIGNUM, deleter<BIGNUM, BN_free>>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using pkey_ctx_ptr = std::unique_ptr<EVP_PKEY_CTX, deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using param_bld_ptr = std::unique_ptr<OSSL_PARAM_BLD, deleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using params_ptr = std::unique_ptr<OSSL_PARAM, deleter<OSSL_PARAM, OSSL_PARAM_free>>;
using ecdsa_sig_ptr = std::unique_ptr<ECDSA_SIG, deleter<ECDSA_SIG, ECDSA_SIG_free>>;

std::shared_ptr<evp_pkey_st> owned(EVP_PKEY* key) {
  return std::shared_ptr<evp_pkey_st>{key, EVP_PKEY_free};
}

/// A failed OpenSSL call leaves entries in the thread's error queue; they
/// would pile up on an I/O thread that checks forged tokens all day.
template <class T>
T cleared(T value) {
  ERR_clear_error();
  return value;
}

const EVP_MD* digest_of(std::string_view alg) {
  auto bits = alg.substr(2);
  if (bits == "256")
    return EVP_sha256();
  if (bits == "384")
    return EVP_sha384();
  if (bits == "512")
    return EVP_sha512();
  return nullptr;
}

/// The JOSE name of a curve, and its OpenSSL name and field size in bytes.
struct curve_info {
  std::string_view jose;
  const char* openssl;
  std::size_t bytes;
};

/// The curves a JWK may name. P-521 (ES512) is not among them: goring takes
/// from a key set what the identity providers it targets publish.
constexpr curve_info jwk_curves[] = {{"P-256", "prime256v1", 32}, {"P-384", "secp384r1", 48}};

/// Builds a public key from OSSL_PARAMs of `type` ("RSA" or "EC").
EVP_PKEY* key_from_params(const char* type, OSSL_PARAM* params) {
  pkey_ctx_ptr ctx{EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr)};
  EVP_PKEY* key = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1
      || EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
    return cleared<EVP_PKEY*>(nullptr);
  return key;
}

/// The JOSE r||s form of an ECDSA signature as DER, as OpenSSL checks it;
/// empty when `raw` is not exactly twice the curve's size.
std::string der_of_jose(std::string_view raw, std::size_t size) {
  if (raw.size() != 2 * size)
    return {};
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  bn_ptr r{BN_bin2bn(bytes, static_cast<int>(size), nullptr)};
  bn_ptr s{BN_bin2bn(bytes + size, static_cast<int>(size), nullptr)};
  ecdsa_sig_ptr sig{ECDSA_SIG_new()};
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1)
    return cleared(std::string{});
  r.release(); // owned by sig now
  s.release();
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0)
    return cleared(std::string{});
  std::string der(static_cast<std::size_t>(len), '\0');
  auto* out = reinterpret_cast<unsigned char*>(&der[0]);
  i2d_ECDSA_SIG(sig.get(), &out);
  return der;
}

} // namespace

std::string_view curve_of(std::string_view alg) {
  if (alg == "ES256")
    return "prime256v1";
  if (alg == "ES384")
    return "secp384r1";
  if (alg == "ES512")
    return "secp521r1";
  return {};
}

public_key::public_key(std::shared_ptr<evp_pkey_st> key) : key_(std::move(key)) {
  // nop
}

key_result public_key::from_pem(std::string_view pem) {
  bio_ptr bio{BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
  if (!bio)
    return {std::nullopt, "out of memory reading the public key"};
  auto* key = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr)
    return cleared(key_result{std::nullopt, "no PEM public key"});
  auto type = EVP_PKEY_get_base_id(key);
  if (type != EVP_PKEY_RSA && type != EVP_PKEY_EC) {
    EVP_PKEY_free(key);
    return {std::nullopt, "neither an RSA nor an EC public key"};
  }
  return {public_key{owned(key)}, {}};
}

key_result public_key::from_rsa(std::string_view n, std::string_view e) {
  // Leading zero bytes do not count towards the size.
  while (!n.empty() && n.front() == '\0')
    n.remove_prefix(1);
  while (!e.empty() && e.front() == '\0')
    e.remove_prefix(1);
  std::size_t bits = 0;
  if (!n.empty()) {
    bits = (n.size() - 1) * 8;
    for (auto top = static_cast<unsigned char>(n.front()); top != 0; top >>= 1)
      ++bits;
  }
  if (bits < static_cast<std::size_t>(min_rsa_bits))
    return {std::nullopt, "RSA modulus under " + std::to_string(min_rsa_bits) + " bits"};
  if (bits > static_cast<std::size_t>(max_rsa_bits))
    return {std::nullopt, "RSA modulus over " + std::to_string(max_rsa_bits) + " bits"};
  if (e.empty() || e.size() > 8 || (e.back() & 1) == 0 || (e.size() == 1 && e[0] == 1))
    return {std::nullopt, "RSA exponent is not an odd number above 1 of at most 64 bits"};
  bn_ptr n_bn{BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()),
                        static_cast<int>(n.size()), nullptr)};
  bn_ptr e_bn{BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()),
                        static_cast<int>(e.size()), nullptr)};
  param_bld_ptr bld{OSSL_PARAM_BLD_new()};
  if (!n_bn || !e_bn || !bld
      || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n_bn.get()) != 1
      || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e_bn.get()) != 1)
    return cleared(key_result{std::nullopt, "out of memory building the RSA key"});
  params_ptr params{OSSL_PARAM_BLD_to_param(bld.get())};
  auto* key = params ? key_from_params("RSA", params.get()) : nullptr;
  if (key == nullptr)
    return cleared(key_result{std::nullopt, "OpenSSL refused the RSA key"});
  return {public_key{owned(key)}, {}};
}

key_result public_key::from_ec(std::string_view crv, std::string_view x, std::string_view y) {
  const curve_info* curve = nullptr;
  for (auto& c : jwk_curves)
    if (c.jose == crv)
      curve = &c;
  if (curve == nullptr)
    return {std::nullopt,
            "curve '" + std::string{crv.substr(0, 16)} + "' is not supported (P-256, P-384 are)"};
  if (x.size() != curve->bytes || y.size() != curve->bytes)
    return {std::nullopt, "EC coordinates are not " + std::to_string(curve->bytes)
                            + " bytes each, as " + std::string{crv} + " wants"};
  // The uncompressed point: 0x04 || x || y.
  std::string point;
  point.reserve(1 + 2 * curve->bytes);
  point.push_back('\x04');
  point.append(x);
  point.append(y);
  param_bld_ptr bld{OSSL_PARAM_BLD_new()};
  if (!bld
      || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, curve->openssl, 0)
           != 1
      || OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                          point.size())
           != 1)
    return cleared(key_result{std::nullopt, "out of memory building the EC key"});
  params_ptr params{OSSL_PARAM_BLD_to_param(bld.get())};
  auto* key = params ? key_from_params("EC", params.get()) : nullptr;
  if (key == nullptr)
    return cleared(key_result{std::nullopt, "the EC point is not on " + std::string{crv}});
  auto shared = owned(key);
  // fromdata takes any bytes of the right size; a point off the curve is
  // what invalid-curve attacks are made of.
  pkey_ctx_ptr check{EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr)};
  if (!check || EVP_PKEY_public_check(check.get()) != 1)
    return cleared(key_result{std::nullopt, "the EC point is not on " + std::string{crv}});
  return {public_key{std::move(shared)}, {}};
}

public_key::type public_key::kind() const {
  return EVP_PKEY_get_base_id(key_.get()) == EVP_PKEY_RSA ? type::rsa : type::ec;
}

int public_key::bits() const {
  return EVP_PKEY_get_bits(key_.get());
}

std::string public_key::curve() const {
  if (kind() != type::ec)
    return {};
  char group[64] = {};
  std::size_t len = 0;
  if (EVP_PKEY_get_group_name(key_.get(), group, sizeof(group), &len) != 1)
    return cleared(std::string{});
  return std::string{group, len};
}

bool public_key::suits(std::string_view alg) const {
  auto family = alg.substr(0, 2);
  if (family == "RS")
    return kind() == type::rsa && digest_of(alg) != nullptr && alg.size() == 5;
  if (alg == "PS256")
    return kind() == type::rsa;
  if (family == "ES")
    return kind() == type::ec && !curve_of(alg).empty() && curve() == curve_of(alg);
  return false;
}

bool public_key::verify(std::string_view alg, std::string_view input,
                        std::string_view signature) const {
  if (!suits(alg))
    return false;
  std::string der;
  if (kind() == type::ec) {
    der = der_of_jose(signature, static_cast<std::size_t>((bits() + 7) / 8));
    if (der.empty())
      return false;
    signature = der;
  }
  md_ctx_ptr ctx{EVP_MD_CTX_new()};
  EVP_PKEY_CTX* pctx = nullptr; // owned by ctx
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, digest_of(alg), nullptr, key_.get()) != 1)
    return cleared(false);
  if (alg.substr(0, 2) == "PS") {
    // RFC 7518 3.5: PSS with MGF1 on the same hash, salt as long as the hash.
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1
        || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)
      return cleared(false);
  }
  int ok = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(), reinterpret_cast<const unsigned char*>(input.data()),
                            input.size());
  return ok == 1 ? true : cleared(false);
}

std::string public_key::pem() const {
  bio_ptr bio{BIO_new(BIO_s_mem())};
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1)
    return cleared(std::string{});
  char* data = nullptr;
  auto len = BIO_get_mem_data(bio.get(), &data);
  return std::string{data, static_cast<std::size_t>(len)};
}

} // namespace goring::auth
