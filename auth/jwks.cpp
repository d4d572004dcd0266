#include "auth/jwks.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace goring::auth {

namespace {

int sextet(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

/// Provider text for a reason line: short, printable ASCII only.
std::string shown(const std::string& text) {
  std::string out;
  for (char c : text.substr(0, 40))
    out.push_back(c >= 0x20 && c < 0x7f && c != '\'' && c != '\\' ? c : '?');
  return text.size() > 40 ? out + "..." : out;
}

/// The string member `name`, nothing when absent; `bad` is set when it is
/// there but not a string.
std::optional<std::string> string_member(const nlohmann::json& object, const char* name,
                                         bool& bad) {
  auto it = object.find(name);
  if (it == object.end())
    return std::nullopt;
  if (!it->is_string()) {
    bad = true;
    return std::nullopt;
  }
  return it->get<std::string>();
}

/// The algorithms a JWK of each type may name.
bool rsa_alg(const std::string& alg) {
  return alg == "RS256" || alg == "RS384" || alg == "RS512" || alg == "PS256";
}

/// One JWK as a key, or why not.
struct jwk_result {
  std::optional<verification_key> key;
  std::string why;
};

jwk_result read_jwk(const nlohmann::json& jwk) {
  if (!jwk.is_object())
    return {std::nullopt, "not an object"};
  bool bad = false;
  auto kid = string_member(jwk, "kid", bad);
  auto kty = string_member(jwk, "kty", bad);
  auto use = string_member(jwk, "use", bad);
  auto alg = string_member(jwk, "alg", bad);
  if (bad)
    return {std::nullopt, "kid, kty, use or alg is not a string"};
  if (!kty)
    return {std::nullopt, "no kty"};
  if (use && *use != "sig")
    return {std::nullopt, "use '" + shown(*use) + "', not 'sig'"};
  if (auto ops = jwk.find("key_ops"); ops != jwk.end()) {
    if (!ops->is_array() || std::find(ops->begin(), ops->end(), "verify") == ops->end())
      return {std::nullopt, "key_ops without 'verify'"};
  }
  if (jwk.contains("d"))
    return {std::nullopt, "it holds a private key ('d'); a published private key is no key"};
  auto bytes_of = [&](const char* name) -> std::optional<std::string> {
    bool not_string = false;
    auto text = string_member(jwk, name, not_string);
    if (!text)
      return std::nullopt;
    return base64url_decode(*text);
  };
  key_result made;
  if (*kty == "RSA") {
    if (alg && !rsa_alg(*alg))
      return {std::nullopt, "alg '" + shown(*alg) + "' is not RS256/384/512 or PS256"};
    auto n = bytes_of("n");
    auto e = bytes_of("e");
    if (!n || !e)
      return {std::nullopt, "n or e missing or not base64url"};
    made = public_key::from_rsa(*n, *e);
  } else if (*kty == "EC") {
    bool not_string = false;
    auto crv = string_member(jwk, "crv", not_string);
    if (!crv)
      return {std::nullopt, "no crv"};
    if (alg && !((*alg == "ES256" && *crv == "P-256") || (*alg == "ES384" && *crv == "P-384")))
      return {std::nullopt, "alg '" + shown(*alg) + "' does not fit curve '" + shown(*crv)
                              + "' (ES256 P-256, "
                                "ES384 P-384)"};
    auto x = bytes_of("x");
    auto y = bytes_of("y");
    if (!x || !y)
      return {std::nullopt, "x or y missing or not base64url"};
    made = public_key::from_ec(*crv, *x, *y);
  } else {
    return {std::nullopt, "kty '" + shown(*kty) + "' is not used (RSA and EC are)"};
  }
  if (!made.key)
    return {std::nullopt, made.error};
  return {verification_key{kid.value_or(""), alg.value_or(""), std::move(*made.key)}, {}};
}

} // namespace

std::optional<std::string> base64url_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=')
    text.remove_suffix(1);
  if (text.size() % 4 == 1)
    return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    int v = sextet(c);
    if (v < 0)
      return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  return out;
}

jwks_parse parse_jwks(std::string_view document) {
  jwks_parse out;
  auto doc = nlohmann::json::parse(document.begin(), document.end(), nullptr, false);
  if (doc.is_discarded()) {
    out.error = "the key set is not JSON";
    return out;
  }
  auto keys = doc.is_object() ? doc.find("keys") : doc.end();
  if (!doc.is_object() || keys == doc.end() || !keys->is_array()) {
    out.error = "the key set is no JWKS (an object with a 'keys' array)";
    return out;
  }
  if (keys->size() > max_jwks_keys) {
    out.error = "the key set holds " + std::to_string(keys->size()) + " keys, over "
                + std::to_string(max_jwks_keys);
    return out;
  }
  std::vector<verification_key> usable;
  std::size_t index = 0;
  for (auto& jwk : *keys) {
    ++index;
    auto read = read_jwk(jwk);
    auto label = [&] {
      std::string name = "key " + std::to_string(index);
      if (jwk.is_object() && jwk.contains("kid") && jwk["kid"].is_string())
        name += " (kid '" + shown(jwk["kid"].get<std::string>()) + "')";
      return name;
    };
    if (!read.key) {
      out.skipped.push_back(label() + ": " + read.why);
      continue;
    }
    auto& kid = read.key->kid;
    if (!kid.empty() && std::any_of(usable.begin(), usable.end(), [&](const verification_key& k) {
          return k.kid == kid;
        })) {
      out.skipped.push_back(label() + ": the kid of an earlier key");
      continue;
    }
    usable.push_back(std::move(*read.key));
  }
  if (usable.empty()) {
    out.error = "the key set holds no usable key";
    // The first few reasons: enough to see what the provider sends.
    for (std::size_t i = 0; i < out.skipped.size() && i < 3; ++i)
      out.error += (i == 0 ? ": " : "; ") + out.skipped[i];
    if (out.skipped.size() > 3)
      out.error += "; ...";
    return out;
  }
  out.keys = key_set::from_jwks(std::move(usable));
  return out;
}

} // namespace goring::auth
