/// The URLs goring calls out to (JWT_JWKS_URL, and WEBHOOK_URL to come):
/// http:// and https:// only, parsed strictly. Pure: no sockets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace goring::outbound {

/// The longest URL goring takes.
inline constexpr std::size_t max_url_bytes = 2048;

struct url {
  std::string scheme; ///< "http" or "https", lower case
  std::string host;   ///< a name, an IPv4 address, or an IPv6 address without brackets
  uint16_t port = 0;  ///< the URL's, else 80 or 443
  std::string target; ///< path and query, "/" when the URL has none

  bool tls() const {
    return scheme == "https";
  }
  /// The Host header: host, in brackets for IPv6, and the port unless it is
  /// the scheme's default.
  std::string host_header() const;
  /// scheme://host[:port]/path, the query left out: for logs (a query may
  /// carry a key).
  std::string shown() const;
};

/// A URL, or why `text` is none.
struct url_parse {
  std::optional<url> value;
  std::string error;
};

/// Parses `scheme://host[:port][/path][?query]`. Refused: other schemes,
/// user info (`user:pass@`, which would end up in logs), a fragment, an
/// empty host or port 0, spaces and control characters, and more than
/// max_url_bytes.
url_parse parse_url(std::string_view text);

/// Whether `host` is loopback by its text alone: `localhost`, 127.0.0.0/8
/// or ::1. (A name that resolves to loopback is not: the resolved
/// addresses are checked again before connecting.)
bool is_loopback_host(std::string_view host);

/// Why `where` may not be called, or "": https:// anywhere, http:// only to
/// a loopback host (tests, a local sidecar), since over plain HTTP anyone
/// on the path could hand goring their own keys. `setting` names it in the
/// reason ("JWT_JWKS_URL").
std::string outbound_url_problem(const url& where, std::string_view setting);

} // namespace goring::outbound
