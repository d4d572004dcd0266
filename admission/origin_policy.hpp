/// Which browser origins may open a WebSocket (ALLOWED_ORIGINS). Pure code.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace goring {

/// `scheme://host[:port]` in the one spelling comparisons use: scheme and
/// host in lower case, the scheme's default port (80, 443) left out. "*" and
/// "null" stay as they are. Nothing when `text` is no such origin (a path,
/// no scheme, an empty host, a bad port).
std::optional<std::string> normalize_origin(std::string_view text);

/// Whether a request with the Origin header `origin` may upgrade, given the
/// normalized entries of ALLOWED_ORIGINS. An empty list or "*" allows any.
bool origin_allowed(const std::vector<std::string>& allowed, std::string_view origin);

} // namespace goring
