#include "auth/token_source.hpp"

#include <cctype>

namespace goring::auth {

namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  return text;
}

} // namespace

std::optional<std::string_view> bearer_credentials(std::string_view value) {
  value = trim(value);
  constexpr std::string_view scheme = "bearer";
  if (value.size() <= scheme.size()
      || (value[scheme.size()] != ' ' && value[scheme.size()] != '\t'))
    return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(value[i])) != scheme[i])
      return std::nullopt;
  return trim(value.substr(scheme.size()));
}

token_source find_token(const std::optional<std::string>& query_token,
                        const std::vector<std::string_view>& authorization,
                        const std::vector<std::string_view>& protocols) {
  token_source out;
  std::vector<std::pair<const char*, std::string>> found;
  if (query_token && !query_token->empty())
    found.emplace_back("query", *query_token);
  for (auto value : authorization)
    if (auto credentials = bearer_credentials(value); credentials && !credentials->empty())
      found.emplace_back("authorization", std::string{*credentials});
  bool marker = false;
  bool token_protocol = false;
  for (auto value : protocols) {
    while (!value.empty()) {
      auto comma = value.find(',');
      auto item = trim(value.substr(0, comma));
      if (item == subprotocol_marker) {
        marker = true;
      } else if (item.substr(0, subprotocol_bearer_prefix.size()) == subprotocol_bearer_prefix) {
        token_protocol = true;
        auto token = item.substr(subprotocol_bearer_prefix.size());
        if (!token.empty())
          found.emplace_back("subprotocol", std::string{token});
      }
      if (comma == std::string_view::npos)
        break;
      value.remove_prefix(comma + 1);
    }
  }
  if (marker)
    out.subprotocol = std::string{subprotocol_marker};
  if (token_protocol && !marker) {
    // Selecting the token's own subprotocol would echo the token back.
    out.refusal = "a token subprotocol needs the '" + std::string{subprotocol_marker}
                  + "' subprotocol offered beside it";
    return out;
  }
  if (found.size() > 1) {
    std::string places;
    for (auto& [where, token] : found)
      places += (places.empty() ? "" : ", ") + std::string{where};
    out.refusal = "token given more than once (" + places + "); send exactly one";
    return out;
  }
  if (found.size() == 1) {
    out.where = found.front().first;
    out.token = std::move(found.front().second);
  }
  return out;
}

} // namespace goring::auth
