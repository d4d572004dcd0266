#include "net/jwt_auth.hpp"

#include <algorithm>

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
    if (header["alg"].get<std::string>() != "HS256")
      return refuse("token algorithm not allowed (only HS256)");
    auto payload_text =
      jwt::base64_uri_decode(token.data() + first_dot + 1, second_dot - first_dot - 1);
    if (auto problem = time_claims_problem(nlohmann::json::parse(payload_text)); !problem.empty())
      return refuse(problem);
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
      // The library reads exp as unsigned, so a negative one passes its check.
      // Compared as plain seconds: a far-off exp must not overflow.
      auto seconds = seconds_of(*exp);
      auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
      if (seconds < now.time_since_epoch().count() - leeway.count())
        return refuse("token expired");
      out.expires_at = std::chrono::system_clock::time_point{
        std::chrono::seconds{std::min(seconds, max_exp_seconds)}};
    }
    return token_check{std::move(out), {}};
  } catch (const std::exception&) {
    return refuse("malformed token");
  }
}

} // namespace goring::auth
