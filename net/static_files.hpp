/// The web client's files under WEB_ROOT: which file a URL path names,
/// whether it may be served, and its Content-Type. No sockets: http_session
/// turns the answer into a response.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace goring::static_files {

/// Files bigger than this are refused: the web client's are a few KiB.
inline constexpr std::size_t max_file_bytes = 1u << 20;

/// The Content-Security-Policy of every static answer, not only HTML (an
/// SVG opened on its own can run script too): its own scripts and styles
/// only, media from the microphone, WebSockets back to goring.
inline constexpr std::string_view csp =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
  "media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; frame-ancestors 'none'";

/// The Content-Type of a file by its extension (case-insensitive);
/// application/octet-stream for unknown ones.
std::string_view content_type_of(std::string_view file_name);

/// The file a URL path (query already cut off) names, relative to the
/// root: "/" -> "index.html", "/dir/" -> "dir/index.html", "/app.js" ->
/// "app.js". Nothing, and `why` set, for a path that may not name a file:
/// one not starting with '/', with "..", a backslash, NUL or another
/// control character (also when percent-encoded), a malformed
/// percent-escape, an empty segment ("//"), or a segment starting with '.'
/// (hidden files).
std::optional<std::string> relative_path(std::string_view url_path, std::string* why = nullptr);

/// A file to serve, or why not.
struct answer {
  bool found = false;
  std::string body;
  std::string content_type;
  /// Why nothing is served (for the log; the client sees only 404).
  std::string refusal;
  /// The path was refused as unsafe (traversal, a symlink out of the root,
  /// a file too big ...), rather than naming no file.
  bool refused = false;
};

/// Reads the file `url_path` names under `root`, read afresh on every call,
/// synchronously: http_session calls it on its IO thread, which blocks for
/// the read of at most max_file_bytes from local disk (the web client's
/// few small files; WEB_ROOT is not meant for large or slow storage).
/// The file's canonical path (symlinks resolved) must lie inside the
/// canonical root; a directory is served as its index.html; only regular
/// files of at most max_file_bytes are.
answer load(const std::string& root, std::string_view url_path);

/// `text` for a log line: printable ASCII as is, every other byte as \xNN,
/// cut at 200 bytes.
std::string escaped(std::string_view text);

} // namespace goring::static_files
