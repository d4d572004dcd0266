/// Percent-escapes (RFC 3986) in URL paths and query strings: the one hex
/// digit table the query parser and the static file paths share.
#pragma once

#include <string>
#include <string_view>

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

/// `text` with its percent-escapes undone; a '%' without two hex digits
/// after it stays as it is. `plus_is_space`: a '+' is a space, as in a
/// query string; elsewhere it stays a '+'.
inline std::string percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0
        && hex_value(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
      i += 2;
    } else if (plus_is_space && text[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

/// One URL path segment with its percent-escapes undone, as goringctl
/// escapes a user or session id into /admin/users/ID.
inline std::string decode_path_segment(std::string_view text) {
  return percent_decode(text, false);
}

} // namespace goring::net
