#include "tools/goringctl/token.hpp"

#include <ctime>

#include <jwt/jwt.hpp>

#include "tools/goringctl/error.hpp"

namespace goringctl {

minted_token mint_token(const token_request& request) {
  auto now = static_cast<int64_t>(std::time(nullptr));
  minted_token out;
  out.expires_at = now + request.ttl.count();
  const auto& alg = request.algorithm;
  if (alg != "HS256" && alg != "HS384" && alg != "HS512")
    throw usage_error("invalid --alg '" + alg + "': goringctl signs HS256, HS384 or HS512");
  jwt::jwt_object token{jwt::params::algorithm(alg), jwt::params::secret(request.secret)};
  token.add_claim(request.user_claim, request.user_id);
  if (request.name)
    token.add_claim("name", *request.name);
  if (request.username)
    token.add_claim("username", *request.username);
  if (request.issuer)
    token.add_claim("iss", *request.issuer);
  if (request.audience)
    token.add_claim("aud", *request.audience);
  token.add_claim("iat", now);
  token.add_claim("exp", out.expires_at);
  out.token = token.signature();
  return out;
}

std::chrono::seconds parse_ttl(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
    ++digits;
  auto unit = text.substr(digits);
  // Nine digits of days is already past any sane token lifetime.
  if (digits == 0 || digits > 9 || unit.size() > 1)
    throw usage_error("invalid --ttl '" + text + "': use e.g. 90s, 30m, 1h, 7d");
  int64_t value = std::stoll(text.substr(0, digits));
  int64_t scale = 1;
  if (unit == "m")
    scale = 60;
  else if (unit == "h")
    scale = 3600;
  else if (unit == "d")
    scale = 86400;
  else if (!unit.empty() && unit != "s")
    throw usage_error("invalid --ttl '" + text + "': use e.g. 90s, 30m, 1h, 7d");
  if (value == 0)
    throw usage_error("invalid --ttl '" + text + "': a token must live longer than 0 s");
  return std::chrono::seconds{value * scale};
}

} // namespace goringctl
