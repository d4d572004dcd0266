#include "net/jwt_auth.hpp"

#include <jwt/jwt.hpp>

namespace goring::auth {

namespace {

constexpr std::chrono::seconds leeway{5};

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

} // namespace

jwt_verifier::jwt_verifier(std::string secret) : secret_(std::move(secret)) {
  // nop
}

token_check jwt_verifier::verify(std::string_view token) const {
  if (token.empty())
    return refuse("missing token");
  // Three base64url parts; the header must name HS256 exactly. Checked here
  // before the library sees the token, so `none` can never slip through.
  auto first_dot = token.find('.');
  auto second_dot =
    first_dot == std::string_view::npos ? std::string_view::npos : token.find('.', first_dot + 1);
  if (second_dot == std::string_view::npos
      || token.find('.', second_dot + 1) != std::string_view::npos)
    return refuse("malformed token: not three dot-separated parts");
  // The library's base64 decoder indexes a table with a signed char, so bytes
  // above 0x7f would read outside it: only base64url characters pass.
  for (char c : token) {
    bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                   || c == '-' || c == '_' || c == '.' || c == '=';
    if (!allowed)
      return refuse("malformed token: not base64url");
  }
  try {
    auto header_text = jwt::base64_uri_decode(token.data(), first_dot);
    auto header = nlohmann::json::parse(header_text);
    if (!header.is_object() || !header.contains("alg") || !header["alg"].is_string())
      return refuse("malformed token: header without alg");
    if (header["alg"].get<std::string>() != "HS256")
      return refuse("token algorithm not allowed (only HS256)");
    std::error_code ec;
    auto decoded = jwt::decode(jwt::string_view{token.data(), token.size()},
                               jwt::params::algorithms({"HS256"}), ec, jwt::params::secret(secret_),
                               jwt::params::verify(true), jwt::params::leeway(leeway.count()));
    if (ec) {
      if (ec == jwt::VerificationErrc::TokenExpired)
        return refuse("token expired");
      if (ec == jwt::VerificationErrc::InvalidSignature)
        return refuse("token signature invalid");
      return refuse("token refused: " + ec.message());
    }
    const auto& payload = decoded.payload().create_json_obj();
    auto user = claim_text(payload, "hash");
    if (!user || user->empty())
      return refuse("token has no 'hash' claim (the user id)");
    claims out;
    out.user_id = *user;
    out.name = claim_text(payload, "name").value_or("");
    out.username = claim_text(payload, "username").value_or("");
    auto exp = payload.find("exp");
    if (exp != payload.end()) {
      if (!exp->is_number())
        return refuse("token 'exp' is not a number");
      out.expires_at =
        std::chrono::system_clock::time_point{std::chrono::seconds{exp->get<long long>()}};
      // The library reads exp as unsigned, so a negative one passes its check.
      auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
      if (*out.expires_at + leeway < now)
        return refuse("token expired");
    }
    return token_check{std::move(out), {}};
  } catch (const std::exception&) {
    return refuse("malformed token");
  }
}

} // namespace goring::auth
