#include "auth/dev_token.hpp"

#include <algorithm>

#include <jwt/jwt.hpp>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "codec/protocol.hpp"
#include "config/config.hpp"

namespace goring::auth {

namespace {

using writer = rapidjson::Writer<rapidjson::StringBuffer>;

void put(writer& w, const char* key, std::string_view value) {
  w.Key(key);
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

dev_token_parse fail(std::string why) {
  return dev_token_parse{std::nullopt, std::move(why)};
}

} // namespace

bool valid_dev_user_id(std::string_view user_id) {
  if (user_id.empty() || user_id.size() > protocol::max_id_length)
    return false;
  return std::all_of(user_id.begin(), user_id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.'
           || c == '_' || c == '@' || c == '-';
  });
}

dev_token_parse parse_dev_token_request(std::string_view body) {
  rapidjson::Document doc;
  // Iterative: a body of '[' cannot recurse deep; UTF-8 checked for `name`.
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(body.data(),
                                                                                    body.size());
  if (doc.HasParseError())
    return fail("the body is not JSON (or not UTF-8); send {\"user_id\":\"alice\"}");
  if (!doc.IsObject())
    return fail("the body must be a JSON object: {\"user_id\":\"alice\",\"name\":\"Alice\"}");
  auto id = doc.FindMember("user_id");
  if (id == doc.MemberEnd())
    return fail("field 'user_id' is missing");
  if (!id->value.IsString())
    return fail("field 'user_id' must be a string");
  dev_token_request out;
  out.user_id.assign(id->value.GetString(), id->value.GetStringLength());
  if (!valid_dev_user_id(out.user_id))
    return fail("field 'user_id' must be 1 to " + std::to_string(protocol::max_id_length)
                + " characters of A-Z a-z 0-9 . _ @ -");
  auto name = doc.FindMember("name");
  if (name != doc.MemberEnd() && !name->value.IsNull()) {
    if (!name->value.IsString())
      return fail("field 'name' must be a string");
    if (name->value.GetStringLength() > dev_token_max_name_bytes)
      return fail("field 'name' is longer than " + std::to_string(dev_token_max_name_bytes)
                  + " bytes");
    out.name.assign(name->value.GetString(), name->value.GetStringLength());
    if (out.name.find('\0') != std::string::npos)
      return fail("field 'name' must not contain NUL");
  }
  return dev_token_parse{std::move(out), {}};
}

std::string dev_token_unavailable(const settings& config) {
  const auto& algs = config.jwt_algorithms;
  if (std::find(algs.begin(), algs.end(), "HS256") == algs.end())
    return "development tokens are HS256, which JWT_ALGORITHMS does not allow";
  if (config.jwt_secret.empty())
    return "development tokens need JWT_SECRET";
  return {};
}

dev_token mint_dev_token(const settings& config, const dev_token_request& request, long long now) {
  dev_token out;
  out.expires_at = now + dev_token_ttl_seconds;
  jwt::jwt_object token{jwt::params::algorithm("HS256"), jwt::params::secret(config.jwt_secret)};
  // Where the server looks for the user id (JWT_USER_CLAIM, `hash` by default).
  token.add_claim(config.jwt_user_claim, request.user_id);
  if (!request.name.empty())
    token.add_claim("name", request.name);
  token.add_claim("username", request.user_id);
  token.add_claim("iat", static_cast<int64_t>(now));
  token.add_claim("exp", static_cast<int64_t>(out.expires_at));
  if (!config.jwt_issuer.empty())
    token.add_claim("iss", config.jwt_issuer);
  if (!config.jwt_audience.empty())
    token.add_claim("aud", config.jwt_audience);
  out.token = token.signature();
  return out;
}

std::string encode_dev_token(const dev_token& token, std::string_view user_id) {
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartObject();
  put(w, "token", token.token);
  put(w, "user_id", user_id);
  w.Key("expires_at");
  w.Int64(token.expires_at);
  w.EndObject();
  return std::string{buf.GetString(), buf.GetSize()};
}

std::string encode_error_body(std::string_view message) {
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartObject();
  put(w, "error", message);
  w.EndObject();
  return std::string{buf.GetString(), buf.GetSize()};
}

} // namespace goring::auth
