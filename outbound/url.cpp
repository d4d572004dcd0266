#include "outbound/url.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace goring::outbound {

namespace {

std::string lower(std::string_view text) {
  std::string out{text};
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

/// Host names as DNS spells them (letters, digits, '-', '.'), plus '_'
/// which some internal names carry.
bool valid_name(std::string_view host) {
  return !host.empty() && host.size() <= 253 && host.front() != '.' && host.front() != '-'
         && std::all_of(host.begin(), host.end(), [](unsigned char c) {
              return std::isalnum(c) || c == '-' || c == '.' || c == '_';
            });
}

} // namespace

std::string url::host_header() const {
  auto name = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  bool default_port = (tls() && port == 443) || (!tls() && port == 80);
  return default_port ? name : name + ":" + std::to_string(port);
}

std::string url::shown() const {
  auto path = target.substr(0, target.find('?'));
  return scheme + "://" + host_header() + path;
}

url_parse parse_url(std::string_view text) {
  auto fail = [](std::string why) { return url_parse{std::nullopt, std::move(why)}; };
  if (text.size() > max_url_bytes)
    return fail("longer than " + std::to_string(max_url_bytes) + " bytes");
  for (unsigned char c : text)
    if (c <= 0x20 || c >= 0x7f)
      return fail("holds a space, a control character or a non-ASCII byte");
  auto sep = text.find("://");
  if (sep == std::string_view::npos)
    return fail("not scheme://host/...");
  url out;
  out.scheme = lower(text.substr(0, sep));
  if (out.scheme != "http" && out.scheme != "https")
    return fail("scheme '" + out.scheme + "' is neither http nor https");
  auto rest = text.substr(sep + 3);
  if (rest.find('#') != std::string_view::npos)
    return fail("has a fragment (#...)");
  auto authority_end = rest.find_first_of("/?");
  auto authority = rest.substr(0, authority_end);
  auto target =
    authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos)
    return fail("has user info (user@host); credentials do not belong in a URL");
  std::optional<std::string_view> port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return fail("an IPv6 address without its closing ']'");
    out.host = std::string{authority.substr(1, close - 1)};
    auto after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':')
      return fail("junk after the IPv6 address");
    if (!after.empty())
      port_text = after.substr(1);
    in6_addr v6{};
    if (inet_pton(AF_INET6, out.host.c_str(), &v6) != 1)
      return fail("'" + out.host + "' is not an IPv6 address");
  } else {
    auto colon = authority.find(':');
    out.host = lower(authority.substr(0, colon));
    if (colon != std::string_view::npos)
      port_text = authority.substr(colon + 1);
    if (!valid_name(out.host))
      return fail(out.host.empty() ? "no host" : "'" + out.host + "' is not a host name");
  }
  if (port_text) {
    if (port_text->empty() || port_text->size() > 5
        || !std::all_of(port_text->begin(), port_text->end(),
                        [](unsigned char c) { return std::isdigit(c); }))
      return fail("port '" + std::string{*port_text} + "' is not a number");
    auto port = std::stoul(std::string{*port_text});
    if (port == 0 || port > 65535)
      return fail("port " + std::string{*port_text} + " is out of range");
    out.port = static_cast<uint16_t>(port);
  } else {
    out.port = out.tls() ? 443 : 80;
  }
  out.target = target.empty() ? "/" : std::string{target};
  if (out.target.front() == '?')
    out.target = "/" + out.target;
  return {std::move(out), {}};
}

bool is_loopback_host(std::string_view host) {
  auto name = lower(host);
  if (name == "localhost" || name == "localhost.")
    return true;
  in_addr v4{};
  if (inet_pton(AF_INET, name.c_str(), &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, name.c_str(), &v6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

std::string outbound_url_problem(const url& where, std::string_view setting) {
  if (where.tls() || is_loopback_host(where.host))
    return {};
  return std::string{setting} + " " + where.shown()
         + " is plain http:// to a host that is not loopback: anyone on the way could change "
           "what comes back. Use https:// (http:// is only for 127.0.0.1, ::1 or localhost)";
}

} // namespace goring::outbound
