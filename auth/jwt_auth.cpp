#include "auth/jwt_auth.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <jwt/jwt.hpp>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "codec/protocol.hpp"
#include "config/config.hpp"

namespace goring::auth {

namespace {

token_check refuse(std::string why) {
  return token_check{std::nullopt, std::move(why)};
}

/// Returns the claim as text: strings as they are, integers in decimal.
std::optional<std::string> claim_text(const nlohmann::json& payload, const char* name) {
  auto it = payload.find(name);
  if (it == payload.end())
    return std::nullopt;
  if (it->is_string())
    return it->get<std::string>();
  // Unsigned first: is_number_integer() is also true for unsigned values,
  // and those above INT64_MAX would wrap to negative ids.
  if (it->is_number_unsigned())
    return std::to_string(it->get<unsigned long long>());
  if (it->is_number_integer())
    return std::to_string(it->get<long long>());
  return std::nullopt;
}

/// Why a user id cannot be let in, or "". Every connected user must be
/// callable, so the id fits where call.start's callee_id does (at most
/// protocol::max_id_length bytes), and it goes into logs, Redis keys and
/// admin tools, so it holds no control character (C0, DEL, C1). The
/// text never quotes the id.
std::string user_id_problem(std::string_view id) {
  if (id.size() > protocol::max_id_length)
    return "token 'hash' claim (the user id) is longer than "
           + std::to_string(protocol::max_id_length) + " bytes";
  for (std::size_t i = 0; i < id.size(); ++i) {
    auto c = static_cast<unsigned char>(id[i]);
    // C1 controls are U+0080..U+009F: 0xC2 0x80..0x9F in UTF-8 (the JSON
    // parser let only valid UTF-8 through).
    bool c1 = c == 0xC2 && i + 1 < id.size() && static_cast<unsigned char>(id[i + 1]) <= 0x9F;
    if (c < 0x20 || c == 0x7F || c1)
      return "token 'hash' claim (the user id) contains a control character";
  }
  return {};
}

/// "HS", "RS" or "ES": which key verifies the algorithm.
std::string_view family(std::string_view alg) {
  return alg.substr(0, 2);
}

bool is_asymmetric(std::string_view alg) {
  return family(alg) == "RS" || family(alg) == "ES";
}

/// Whether the signature part of an HS token is the HMAC of its signing
/// input (header.payload) under `secret`, compared in constant time: the
/// library's own check compares with ==, whose time tells an attacker how
/// many leading bytes of a forged signature are right. Run first, so the
/// library only ever compares signatures that match.
bool hs_signature_matches(std::string_view alg, const std::string& secret,
                          std::string_view signing_input, std::string_view signature_b64) {
  const EVP_MD* md = alg == "HS256"   ? EVP_sha256()
                     : alg == "HS384" ? EVP_sha384()
                     : alg == "HS512" ? EVP_sha512()
                                      : nullptr;
  if (md == nullptr)
    return false;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(md, secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
           &mac_len)
      == nullptr)
    return false;
  auto given = jwt::base64_uri_decode(signature_b64.data(), signature_b64.size());
  // The length is public (it follows from alg); only the bytes are secret.
  return given.size() == mac_len && CRYPTO_memcmp(given.data(), mac, mac_len) == 0;
}

/// The `aud` claim names `audience`: equal to it, or an array holding it.
bool audience_matches(const nlohmann::json& aud, const std::string& audience) {
  if (aud.is_string())
    return aud.get<std::string>() == audience;
  if (aud.is_array())
    return std::any_of(aud.begin(), aud.end(), [&](const nlohmann::json& item) {
      return item.is_string() && item.get<std::string>() == audience;
    });
  return false;
}

std::string_view trimmed(std::string_view text) {
  auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos)
    return {};
  auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

/// The curve an ES algorithm signs with, as OpenSSL names it.
const char* curve_of(std::string_view alg) {
  if (alg == "ES256")
    return "prime256v1";
  if (alg == "ES384")
    return "secp384r1";
  return "secp521r1";
}

/// Checks that `pem` is a public key every RS/ES algorithm in `algorithms`
/// can verify with; returns why not, or "".
std::string check_public_key(const std::string& pem, const std::vector<std::string>& algorithms) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio{
    BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free};
  if (!bio)
    return "out of memory reading the public key";
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{
    PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free};
  if (!key)
    return "JWT_PUBLIC_KEY_FILE holds no PEM public key (expected '-----BEGIN PUBLIC KEY-----'; "
           "from a certificate: openssl x509 -pubkey -noout)";
  for (auto& alg : algorithms) {
    if (family(alg) == "RS") {
      if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA)
        return alg + " needs an RSA public key; JWT_PUBLIC_KEY_FILE holds another kind";
      if (EVP_PKEY_get_bits(key.get()) < 2048)
        return "the RSA public key has fewer than 2048 bits";
    } else if (family(alg) == "ES") {
      char group[64] = {};
      std::size_t len = 0;
      if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC
          || EVP_PKEY_get_group_name(key.get(), group, sizeof(group), &len) != 1
          || std::string_view{group} != curve_of(alg))
        return alg + " needs an EC public key on " + curve_of(alg)
               + "; JWT_PUBLIC_KEY_FILE holds another kind";
    }
  }
  return {};
}

/// Expiries later than this (2242) are read as this: no token lives that
/// long, and seconds beyond it overflow a system_clock time_point.
constexpr long long max_exp_seconds = 1LL << 33;

/// The library reads `exp` and `nbf` as uint64_t, before it checks the
/// signature: a fractional one that does not fit (1e300, -2.5) would be
/// undefined behaviour there, so such a token is refused before it gets
/// that far. Returns a refusal or "".
std::string time_claims_problem(const nlohmann::json& payload) {
  if (!payload.is_object())
    return "malformed token: payload is not an object";
  for (const char* name : {"exp", "nbf"}) {
    auto it = payload.find(name);
    if (it == payload.end())
      continue;
    if (!it->is_number())
      return std::string{"token '"} + name + "' is not a number";
    if (it->is_number_float()) {
      auto value = it->get<double>();
      if (!(value >= 0 && value < 0x1p63))
        return std::string{"token '"} + name + "' is out of range";
    }
    if (it->is_number_unsigned() && it->get<unsigned long long>() > 0x7fffffffffffffffULL)
      return std::string{"token '"} + name + "' is out of range";
  }
  return {};
}

/// Seconds since the epoch of a number `time_claims_problem` let through.
long long seconds_of(const nlohmann::json& value) {
  if (value.is_number_float())
    return static_cast<long long>(value.get<double>());
  return value.get<long long>();
}

} // namespace

jwt_verifier::jwt_verifier(verifier_options options) : options_(std::move(options)) {
  // `none` can never be allowed, whatever the caller passed.
  auto& algs = options_.algorithms;
  algs.erase(std::remove_if(algs.begin(), algs.end(),
                            [](const std::string& a) {
                              auto f = family(a);
                              return a.size() != 5 || (f != "HS" && f != "RS" && f != "ES");
                            }),
             algs.end());
}

jwt_verifier::jwt_verifier(std::string secret) : jwt_verifier(verifier_options{}) {
  options_.secret = std::move(secret);
}

token_check jwt_verifier::verify(std::string_view token) const {
  if (token.empty())
    return refuse("missing token");
  // Three base64url parts. Checked here before the library sees the token.
  auto first_dot = token.find('.');
  auto second_dot =
    first_dot == std::string_view::npos ? std::string_view::npos : token.find('.', first_dot + 1);
  if (second_dot == std::string_view::npos
      || token.find('.', second_dot + 1) != std::string_view::npos)
    return refuse("malformed token: not three dot-separated parts");
  // The library's base64 decoder indexes a table with a signed char, so bytes
  // above 0x7f would read outside it: only base64url characters pass. It
  // also shifts the -1 it maps '=' to, which is undefined behaviour unless
  // every '=' is trailing padding (found by fuzzing): '=' ends a part.
  bool padding = false;
  for (char c : token) {
    bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                   || c == '-' || c == '_' || c == '.' || c == '=';
    if (!allowed || (padding && c != '=' && c != '.'))
      return refuse("malformed token: not base64url");
    padding = c == '=';
  }
  try {
    auto header_text = jwt::base64_uri_decode(token.data(), first_dot);
    auto header = nlohmann::json::parse(header_text);
    if (!header.is_object() || !header.contains("alg") || !header["alg"].is_string())
      return refuse("malformed token: header without alg");
    // The allowlist decides before any key is touched: `none`, an algorithm
    // not configured, or an HS token where only RS/ES is allowed (the
    // public key used as an HMAC secret) all stop here.
    auto alg = header["alg"].get<std::string>();
    const auto& allowed = options_.algorithms;
    if (std::find(allowed.begin(), allowed.end(), alg) == allowed.end()) {
      const auto& known = known_jwt_algorithms();
      bool named = std::find(known.begin(), known.end(), alg) != known.end() || alg == "none";
      std::string list;
      for (auto& a : allowed)
        list += (list.empty() ? "" : ", ") + a;
      return refuse("token algorithm not allowed: " + (named ? "'" + alg + "'" : "unknown")
                    + " (allowed: " + list + ")");
    }
    // Each family has its own key: the PEM only ever verifies RS/ES
    // signatures, the secret only HS ones. The library is given just this
    // one algorithm.
    const auto& key = is_asymmetric(alg) ? options_.public_key_pem : options_.secret;
    if (key.empty())
      return refuse("token algorithm '" + alg + "' has no key configured");
    auto payload_text =
      jwt::base64_uri_decode(token.data() + first_dot + 1, second_dot - first_dot - 1);
    if (auto problem = time_claims_problem(nlohmann::json::parse(payload_text)); !problem.empty())
      return refuse(problem);
    if (!is_asymmetric(alg)
        && !hs_signature_matches(alg, key, token.substr(0, second_dot),
                                 token.substr(second_dot + 1)))
      return refuse("token signature invalid");
    std::error_code ec;
    auto decoded =
      jwt::decode(jwt::string_view{token.data(), token.size()}, jwt::params::algorithms({alg}), ec,
                  jwt::params::secret(key), jwt::params::verify(true),
                  jwt::params::leeway(static_cast<uint32_t>(options_.leeway.count())));
    if (ec) {
      if (ec == jwt::VerificationErrc::TokenExpired)
        return refuse("token expired");
      if (ec == jwt::VerificationErrc::InvalidSignature
          || ec == jwt::AlgorithmErrc::VerificationErr)
        return refuse("token signature invalid");
      if (ec == jwt::VerificationErrc::ImmatureSignature)
        return refuse("token not valid yet (nbf)");
      return refuse("token refused: " + ec.message());
    }
    const auto& payload = decoded.payload().create_json_obj();
    auto user = claim_text(payload, "hash");
    if (!user || user->empty())
      return refuse("token has no 'hash' claim (the user id)");
    if (auto problem = user_id_problem(*user); !problem.empty())
      return refuse(problem);
    claims out;
    out.user_id = *user;
    out.name = claim_text(payload, "name").value_or("");
    out.username = claim_text(payload, "username").value_or("");
    auto exp = payload.find("exp");
    if (exp != payload.end()) {
      // The library reads exp as unsigned, so a negative one passes its check.
      // Compared as plain seconds: a far-off exp must not overflow.
      auto seconds = seconds_of(*exp);
      auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
      out.expires_at = std::chrono::system_clock::time_point{
        std::chrono::seconds{std::clamp(seconds, 0LL, max_exp_seconds)}};
      if (*out.expires_at + options_.leeway < now)
        return refuse("token expired");
    } else if (options_.require_exp) {
      return refuse("token has no 'exp' claim (JWT_REQUIRE_EXP)");
    }
    if (!options_.issuer.empty()) {
      auto iss = payload.find("iss");
      if (iss == payload.end() || !iss->is_string() || iss->get<std::string>() != options_.issuer)
        return refuse("token issuer not accepted");
    }
    if (!options_.audience.empty()) {
      auto aud = payload.find("aud");
      if (aud == payload.end() || !audience_matches(*aud, options_.audience))
        return refuse("token audience not accepted");
    }
    return token_check{std::move(out), {}};
  } catch (const std::exception&) {
    return refuse("malformed token");
  }
}

verifier_setup make_verifier(const settings& config) {
  verifier_setup out;
  verifier_options options;
  options.algorithms = config.jwt_algorithms;
  options.secret = config.jwt_secret;
  options.require_exp = config.jwt_require_exp;
  options.issuer = config.jwt_issuer;
  options.audience = config.jwt_audience;
  options.leeway = std::chrono::duration_cast<std::chrono::seconds>(config.jwt_leeway);
  const auto& algs = config.jwt_algorithms;
  bool hmac =
    std::any_of(algs.begin(), algs.end(), [](const std::string& a) { return family(a) == "HS"; });
  bool asymmetric =
    std::any_of(algs.begin(), algs.end(), [](const std::string& a) { return is_asymmetric(a); });
  if (asymmetric && config.jwt_public_key_file.empty()) {
    out.error = "JWT_ALGORITHMS allows RS/ES tokens but JWT_PUBLIC_KEY_FILE is not set";
    return out;
  }
  if (!asymmetric && !config.jwt_public_key_file.empty()) {
    out.error = "JWT_PUBLIC_KEY_FILE is set but JWT_ALGORITHMS allows no RS/ES algorithm";
    return out;
  }
  if (asymmetric) {
    std::ifstream in{config.jwt_public_key_file, std::ios::binary};
    if (!in) {
      out.error = "cannot read JWT_PUBLIC_KEY_FILE " + config.jwt_public_key_file;
      return out;
    }
    std::ostringstream text;
    text << in.rdbuf();
    options.public_key_pem = text.str();
    if (auto why = check_public_key(options.public_key_pem, algs); !why.empty()) {
      out.error = why;
      return out;
    }
  }
  if (hmac) {
    if (config.jwt_secret.empty()) {
      out.error = "JWT_ALGORITHMS allows HS tokens but JWT_SECRET is empty";
      return out;
    }
    // The public key is public: as an HMAC secret anyone could sign with it.
    if (config.jwt_secret.find("-----BEGIN") != std::string::npos
        || (asymmetric && trimmed(options.public_key_pem) == trimmed(config.jwt_secret))) {
      out.error = "JWT_SECRET must not be a PEM key: HS tokens would be signed with public text";
      return out;
    }
    if (config.jwt_secret == default_jwt_secret) {
      if (!config.dev_mode) {
        out.error = "JWT_SECRET is the default development secret: anyone could mint tokens. "
                    "Set JWT_SECRET, or run in development mode (GORING_ENV=development or --dev)";
        return out;
      }
      out.warning = "development mode: JWT_SECRET is the default development secret, anyone can "
                    "mint tokens. Never expose this server.";
    }
  }
  out.verifier = std::make_shared<const jwt_verifier>(std::move(options));
  return out;
}

} // namespace goring::auth
