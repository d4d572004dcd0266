#include "admission/origin_policy.hpp"

#include <algorithm>
#include <cctype>

namespace goring {

namespace {

std::string lower(std::string_view text) {
  std::string out{text};
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isdigit(c) != 0;
  });
}

} // namespace

std::optional<std::string> normalize_origin(std::string_view text) {
  if (text == "*" || text == "null")
    return std::string{text};
  auto sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0)
    return std::nullopt;
  auto scheme = lower(text.substr(0, sep));
  for (char c : scheme)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.')
      return std::nullopt;
  auto authority = text.substr(sep + 3);
  // An origin is scheme, host and port: no path, query, fragment or user.
  if (authority.empty() || authority.find_first_of("/?#@ \t") != std::string_view::npos)
    return std::nullopt;
  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') { // an IPv6 literal
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return std::nullopt;
    host = authority.substr(0, close + 1);
    auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return std::nullopt;
      port = rest.substr(1);
      if (!all_digits(port))
        return std::nullopt;
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (!all_digits(port) || host.find(':') != std::string_view::npos)
      return std::nullopt;
  }
  if (host.empty() || host.size() > 255 || port.size() > 5)
    return std::nullopt;
  if ((scheme == "http" && port == "80") || (scheme == "https" && port == "443"))
    port = {};
  auto out = scheme + "://" + lower(host);
  if (!port.empty())
    out.append(":").append(port);
  return out;
}

bool origin_allowed(const std::vector<std::string>& allowed, std::string_view origin) {
  if (allowed.empty())
    return true;
  auto normal = normalize_origin(origin);
  for (auto& entry : allowed)
    if (entry == "*" || (normal && *normal == entry))
      return true;
  return false;
}

} // namespace goring
