/// Percent-escapes (RFC 3986) in URL paths and query strings: the one hex
/// digit table the query parser and the static file paths share.
#pragma once

namespace goring::net {

/// The value of one hexadecimal digit, or -1 when `c` is not one.
inline int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

} // namespace goring::net
