#include "auth/key_set.hpp"

namespace goring::auth {

namespace {

/// A kid for a refusal: the client's own text, so cut short and kept to
/// printable ASCII (it goes into the log and the 401 body).
std::string shown(std::string_view kid) {
  std::string out;
  for (char c : kid.substr(0, 64))
    out.push_back(c >= 0x20 && c < 0x7f && c != '\'' && c != '\\' ? c : '?');
  return kid.size() > 64 ? out + "..." : out;
}

} // namespace

bool verification_key::accepts(std::string_view token_alg) const {
  if (!alg.empty() && alg != token_alg)
    return false;
  return key.suits(token_alg);
}

key_set key_set::from_jwks(std::vector<verification_key> keys) {
  key_set out;
  out.keys_ = std::move(keys);
  out.by_kid_ = true;
  return out;
}

key_set key_set::single(public_key key) {
  key_set out;
  out.keys_.push_back(verification_key{{}, {}, std::move(key)});
  return out;
}

key_choice key_set::choose(std::string_view alg, const std::optional<std::string>& kid) const {
  using problem = key_choice::problem;
  const verification_key* found = nullptr;
  if (!by_kid_ || (!kid && keys_.size() == 1)) {
    // The PEM key takes every token; a JWKS of one key takes those
    // without kid (providers that publish one key often leave kid out).
    if (!keys_.empty())
      found = &keys_.front();
  } else if (!kid) {
    return {nullptr, problem::no_kid,
            "token has no 'kid' and the key set holds " + std::to_string(keys_.size()) + " keys"};
  } else {
    for (auto& k : keys_)
      if (k.kid == *kid)
        found = &k;
    if (found == nullptr)
      return {nullptr, problem::unknown_kid,
              "token key id '" + shown(*kid) + "' is not in the key set"};
  }
  if (found == nullptr)
    return {nullptr, problem::unknown_kid, "the key set holds no key"};
  if (!found->accepts(alg))
    return {nullptr, problem::algorithm,
            "token algorithm '" + std::string{alg} + "' does not match its key ("
              + (found->alg.empty() ? std::string{found->key.kind() == public_key::type::rsa
                                                    ? "an RSA key"
                                                    : "an EC key on " + found->key.curve()}
                                    : found->alg)
              + ")"};
  return {found, problem::none, {}};
}

} // namespace goring::auth
