#include "auth/jwt_auth.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/jwks.hpp"
#include "auth/key_store.hpp"
#include "codec/protocol.hpp"
#include "config/config.hpp"

namespace goring::auth {

namespace {

token_check refuse(refusal_reason reason, std::string why) {
  return token_check{std::nullopt, std::move(why), reason};
}

/// Returns the claim as text: strings as they are, integers in decimal.
std::optional<std::string> claim_text(const nlohmann::json& payload, const std::string& name) {
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
std::string user_id_problem(std::string_view id, const std::string& claim) {
  if (id.size() > protocol::max_id_length)
    return "token '" + claim + "' claim (the user id) is longer than "
           + std::to_string(protocol::max_id_length) + " bytes";
  for (std::size_t i = 0; i < id.size(); ++i) {
    auto c = static_cast<unsigned char>(id[i]);
    // C1 controls are U+0080..U+009F: 0xC2 0x80..0x9F in UTF-8 (the JSON
    // parser let only valid UTF-8 through).
    bool c1 = c == 0xC2 && i + 1 < id.size() && static_cast<unsigned char>(id[i + 1]) <= 0x9F;
    if (c < 0x20 || c == 0x7F || c1)
      return "token '" + claim + "' claim (the user id) contains a control character";
  }
  return {};
}

/// "HS", "RS", "PS" or "ES": which key verifies the algorithm.
std::string_view family(std::string_view alg) {
  return alg.substr(0, 2);
}

bool is_asymmetric(std::string_view alg) {
  return family(alg) == "RS" || family(alg) == "PS" || family(alg) == "ES";
}

/// Whether the signature part of an HS token is the HMAC of its signing
/// input (header.payload) under `secret`, compared in constant time: an
/// early-exit comparison's time tells an attacker how many leading bytes
/// of a forged signature are right.
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
  auto given = base64url_decode(signature_b64);
  // The length is public (it follows from alg); only the bytes are secret.
  return given && given->size() == mac_len && CRYPTO_memcmp(given->data(), mac, mac_len) == 0;
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

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x))
                  == std::tolower(static_cast<unsigned char>(y));
         });
}

/// A header `typ`, when there is one, must say JWT: "JWT", or "at+jwt" of
/// RFC 9068 access tokens. Anything else (a DPoP proof, "dpop+jwt", say)
/// is another kind of token that happens to be signed by the same keys.
/// Returns a refusal or "".
std::string type_problem(const nlohmann::json& header) {
  auto typ = header.find("typ");
  if (typ == header.end())
    return {};
  if (!typ->is_string())
    return "malformed token: 'typ' is not a string";
  auto value = typ->get<std::string>();
  for (std::string_view ok : {"JWT", "at+jwt", "application/at+jwt"})
    if (equal_ignoring_case(value, ok))
      return {};
  return "token type is not JWT";
}

/// Checks that `pem` is a public key every RS/PS/ES algorithm in
/// `algorithms` can verify with; returns why not, or "".
std::string check_public_key(const std::string& pem, const std::vector<std::string>& algorithms) {
  auto read = public_key::from_pem(pem);
  if (!read.key)
    return "JWT_PUBLIC_KEY_FILE holds no PEM public key (expected '-----BEGIN PUBLIC KEY-----'; "
           "from a certificate: openssl x509 -pubkey -noout)";
  auto& key = *read.key;
  for (auto& alg : algorithms) {
    if (family(alg) == "RS" || family(alg) == "PS") {
      if (key.kind() != public_key::type::rsa)
        return alg + " needs an RSA public key; JWT_PUBLIC_KEY_FILE holds another kind";
      if (key.bits() < min_rsa_bits)
        return "the RSA public key has fewer than 2048 bits";
    } else if (family(alg) == "ES") {
      if (!key.suits(alg))
        return alg + " needs an EC public key on " + std::string{curve_of(alg)}
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

const char* reason_name(refusal_reason reason) {
  switch (reason) {
    case refusal_reason::none:
      return "none";
    case refusal_reason::missing:
      return "missing";
    case refusal_reason::malformed:
      return "malformed";
    case refusal_reason::algorithm:
      return "algorithm";
    case refusal_reason::unknown_kid:
      return "unknown_kid";
    case refusal_reason::no_kid:
      return "no_kid";
    case refusal_reason::signature:
      return "signature";
    case refusal_reason::expired:
      return "expired";
    case refusal_reason::claim:
      return "claim";
    case refusal_reason::no_keys:
      return "no_keys";
  }
  return "none";
}

jwt_verifier::jwt_verifier(verifier_options options) : options_(std::move(options)) {
  // `none` can never be allowed, whatever the caller passed.
  auto& algs = options_.algorithms;
  algs.erase(std::remove_if(algs.begin(), algs.end(),
                            [](const std::string& a) {
                              const auto& known = known_jwt_algorithms();
                              return std::find(known.begin(), known.end(), a) == known.end();
                            }),
             algs.end());
  if (options_.jwks) {
    keys_ = options_.jwks;
  } else if (!options_.public_key_pem.empty()) {
    // A PEM that is no key leaves RS/PS/ES without one: refused as such.
    if (auto pem = public_key::from_pem(options_.public_key_pem); pem.key)
      keys_ = std::make_shared<key_store>(key_set::single(std::move(*pem.key)));
  }
}

jwt_verifier::jwt_verifier(std::string secret) : jwt_verifier(verifier_options{}) {
  options_.secret = std::move(secret);
}

bool jwt_verifier::keys_ready() const {
  return !options_.jwks || options_.jwks->current() != nullptr;
}

void jwt_verifier::refresh_keys(std::function<void()> done) const {
  if (options_.jwks)
    options_.jwks->request_refresh(std::move(done));
  else if (done)
    done();
}

token_check jwt_verifier::verify(std::string_view token) const {
  using why = refusal_reason;
  if (token.empty())
    return refuse(why::missing, "missing token");
  // Three base64url parts. Checked here before anything decodes them.
  auto first_dot = token.find('.');
  auto second_dot =
    first_dot == std::string_view::npos ? std::string_view::npos : token.find('.', first_dot + 1);
  if (second_dot == std::string_view::npos
      || token.find('.', second_dot + 1) != std::string_view::npos)
    return refuse(why::malformed, "malformed token: not three dot-separated parts");
  // Only base64url characters, and '=' only as padding at the end of a part
  // (the JWT library this check grew up with read bytes above 0x7f outside
  // its table, and shifted a misplaced '=' into undefined behaviour).
  bool padding = false;
  for (char c : token) {
    bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                   || c == '-' || c == '_' || c == '.' || c == '=';
    if (!allowed || (padding && c != '=' && c != '.'))
      return refuse(why::malformed, "malformed token: not base64url");
    padding = c == '=';
  }
  try {
    auto header_text = base64url_decode(token.substr(0, first_dot));
    if (!header_text)
      return refuse(why::malformed, "malformed token: not base64url");
    auto header = nlohmann::json::parse(*header_text);
    if (!header.is_object() || !header.contains("alg") || !header["alg"].is_string())
      return refuse(why::malformed, "malformed token: header without alg");
    // The allowlist decides before any key is touched: `none`, an algorithm
    // not configured, or an HS token where only RS/PS/ES is allowed (the
    // public key used as an HMAC secret) all stop here.
    auto alg = header["alg"].get<std::string>();
    const auto& allowed = options_.algorithms;
    if (std::find(allowed.begin(), allowed.end(), alg) == allowed.end()) {
      const auto& known = known_jwt_algorithms();
      bool named = std::find(known.begin(), known.end(), alg) != known.end() || alg == "none";
      std::string list;
      for (auto& a : allowed)
        list += (list.empty() ? "" : ", ") + a;
      return refuse(why::algorithm,
                    "token algorithm not allowed: " + (named ? "'" + alg + "'" : "unknown")
                      + " (allowed: " + list + ")");
    }
    if (auto problem = type_problem(header); !problem.empty())
      return refuse(why::malformed, problem);
    std::optional<std::string> kid;
    if (auto it = header.find("kid"); it != header.end()) {
      if (!it->is_string())
        return refuse(why::malformed, "malformed token: 'kid' is not a string");
      kid = it->get<std::string>();
    }
    // Each family has its own key: the public keys only ever verify
    // RS/PS/ES signatures, the secret only HS ones.
    const verification_key* public_one = nullptr;
    std::shared_ptr<const key_set> keys; // keeps public_one alive
    if (is_asymmetric(alg)) {
      keys = keys_ ? keys_->current() : nullptr;
      if (!keys)
        return refuse(why::no_keys,
                      "token algorithm '" + alg + "' has no key "
                        + (options_.jwks ? "yet (the key set is not fetched yet)" : "configured"));
      auto choice = keys->choose(alg, kid);
      switch (choice.why) {
        case key_choice::problem::none:
          break;
        case key_choice::problem::unknown_kid:
          return refuse(why::unknown_kid, choice.refusal);
        case key_choice::problem::no_kid:
          return refuse(why::no_kid, choice.refusal);
        case key_choice::problem::algorithm:
          return refuse(why::algorithm, choice.refusal);
      }
      public_one = choice.key;
    } else if (options_.secret.empty()) {
      return refuse(why::no_keys, "token algorithm '" + alg + "' has no key configured");
    }
    auto payload_text = base64url_decode(token.substr(first_dot + 1, second_dot - first_dot - 1));
    if (!payload_text)
      return refuse(why::malformed, "malformed token: not base64url");
    auto payload = nlohmann::json::parse(*payload_text);
    if (auto problem = time_claims_problem(payload); !problem.empty())
      return refuse(why::malformed, problem);
    auto signing_input = token.substr(0, second_dot);
    auto signature_b64 = token.substr(second_dot + 1);
    bool signed_ok = false;
    if (public_one != nullptr) {
      auto signature = base64url_decode(signature_b64);
      signed_ok = signature && public_one->key.verify(alg, signing_input, *signature);
    } else {
      signed_ok = hs_signature_matches(alg, options_.secret, signing_input, signature_b64);
    }
    if (!signed_ok)
      return refuse(why::signature, "token signature invalid");
    // Signed: from here on the claims are the issuer's word.
    auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    claims out;
    auto exp = payload.find("exp");
    if (exp != payload.end()) {
      // Compared as plain seconds: a far-off exp must not overflow, and a
      // negative one is long past.
      auto seconds = seconds_of(*exp);
      out.expires_at = std::chrono::system_clock::time_point{
        std::chrono::seconds{std::clamp(seconds, 0LL, max_exp_seconds)}};
      if (*out.expires_at + options_.leeway < now)
        return refuse(why::expired, "token expired");
    }
    if (auto nbf = payload.find("nbf"); nbf != payload.end()) {
      auto seconds = std::clamp(seconds_of(*nbf), 0LL, max_exp_seconds);
      if (std::chrono::system_clock::time_point{std::chrono::seconds{seconds}} - options_.leeway
          > now)
        return refuse(why::claim, "token not valid yet (nbf)");
    }
    auto user = claim_text(payload, options_.user_claim);
    if (!user || user->empty())
      return refuse(why::claim, "token has no '" + options_.user_claim + "' claim (the user id)");
    if (auto problem = user_id_problem(*user, options_.user_claim); !problem.empty())
      return refuse(why::claim, problem);
    out.user_id = *user;
    out.name = claim_text(payload, "name").value_or("");
    out.username = claim_text(payload, "username").value_or("");
    if (out.username.empty())
      out.username = claim_text(payload, "preferred_username").value_or("");
    if (exp == payload.end() && options_.require_exp)
      return refuse(why::claim, "token has no 'exp' claim (JWT_REQUIRE_EXP)");
    if (!options_.issuer.empty()) {
      auto iss = payload.find("iss");
      if (iss == payload.end() || !iss->is_string() || iss->get<std::string>() != options_.issuer)
        return refuse(why::claim, "token issuer not accepted");
    }
    if (!options_.audience.empty()) {
      auto aud = payload.find("aud");
      if (aud == payload.end() || !audience_matches(*aud, options_.audience))
        return refuse(why::claim, "token audience not accepted");
    }
    return token_check{std::move(out), {}, why::none};
  } catch (const std::exception&) {
    return refuse(why::malformed, "malformed token");
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
  options.user_claim = config.jwt_user_claim;
  const auto& algs = config.jwt_algorithms;
  bool hmac =
    std::any_of(algs.begin(), algs.end(), [](const std::string& a) { return family(a) == "HS"; });
  bool asymmetric =
    std::any_of(algs.begin(), algs.end(), [](const std::string& a) { return is_asymmetric(a); });
  bool jwks = !config.jwt_jwks_url.empty();
  if (jwks && !config.jwt_public_key_file.empty()) {
    out.error = "JWT_JWKS_URL and JWT_PUBLIC_KEY_FILE are both set: the public keys come from "
                "one of them";
    return out;
  }
  if (asymmetric && !jwks && config.jwt_public_key_file.empty()) {
    out.error = "JWT_ALGORITHMS allows RS/PS/ES tokens but JWT_PUBLIC_KEY_FILE is not set (nor "
                "JWT_JWKS_URL)";
    return out;
  }
  if (!asymmetric && !config.jwt_public_key_file.empty()) {
    out.error = "JWT_PUBLIC_KEY_FILE is set but JWT_ALGORITHMS allows no RS/ES algorithm";
    return out;
  }
  if (!asymmetric && jwks) {
    out.error = "JWT_JWKS_URL is set but JWT_ALGORITHMS allows no RS/PS/ES algorithm: set "
                "JWT_ALGORITHMS to what the provider signs with, e.g. RS256";
    return out;
  }
  if (jwks) {
    // Empty until the first fetch; the caller fetches into it.
    out.jwks = std::make_shared<key_store>();
    options.jwks = out.jwks;
  } else if (asymmetric) {
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
