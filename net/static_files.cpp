#include "net/static_files.hpp"

#include <array>
#include <filesystem>
#include <fstream>

#include "net/percent_encoding.hpp"

namespace goring::static_files {

namespace fs = std::filesystem;

namespace {

using net::hex_value;

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

struct type_entry {
  std::string_view extension;
  std::string_view content_type;
};

constexpr std::array<type_entry, 9> content_types = {{
  {".html", "text/html; charset=utf-8"},
  {".js", "text/javascript; charset=utf-8"},
  {".mjs", "text/javascript; charset=utf-8"},
  {".css", "text/css; charset=utf-8"},
  {".json", "application/json"},
  {".svg", "image/svg+xml"},
  {".png", "image/png"},
  {".ico", "image/x-icon"},
  {".txt", "text/plain; charset=utf-8"},
}};

answer not_found(std::string why) {
  answer out;
  out.refusal = std::move(why);
  return out;
}

answer refused(std::string why) {
  answer out;
  out.refusal = std::move(why);
  out.refused = true;
  return out;
}

/// Whether `path` (canonical) is `root` (canonical) or lies under it.
bool inside(const fs::path& root, const fs::path& path) {
  auto r = root.begin();
  auto p = path.begin();
  for (; r != root.end(); ++r, ++p)
    if (p == path.end() || *p != *r)
      return false;
  return true;
}

} // namespace

std::string_view content_type_of(std::string_view file_name) {
  auto dot = file_name.rfind('.');
  auto slash = file_name.rfind('/');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash))
    return "application/octet-stream";
  std::string extension;
  for (char c : file_name.substr(dot))
    extension.push_back(lower(c));
  for (auto& entry : content_types)
    if (entry.extension == extension)
      return entry.content_type;
  return "application/octet-stream";
}

std::optional<std::string> relative_path(std::string_view url_path, std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<std::string> {
    if (why != nullptr)
      *why = reason;
    return std::nullopt;
  };
  if (url_path.empty() || url_path[0] != '/')
    return fail("the path does not start with '/'");
  std::string decoded;
  decoded.reserve(url_path.size());
  for (std::size_t i = 0; i < url_path.size(); ++i) {
    if (url_path[i] != '%') {
      decoded.push_back(url_path[i]);
      continue;
    }
    if (i + 2 >= url_path.size() || hex_value(url_path[i + 1]) < 0
        || hex_value(url_path[i + 2]) < 0)
      return fail("malformed percent-escape");
    decoded.push_back(
      static_cast<char>(hex_value(url_path[i + 1]) * 16 + hex_value(url_path[i + 2])));
    i += 2;
  }
  if (decoded.find("..") != std::string::npos)
    return fail("the path contains '..'");
  for (unsigned char c : decoded) {
    if (c == '\\')
      return fail("the path contains a backslash");
    if (c == '\0')
      return fail("the path contains NUL");
    if (c < 0x20 || c == 0x7f)
      return fail("the path contains a control character");
  }
  std::string relative = decoded.substr(1);
  if (relative.empty() || relative.back() == '/')
    relative += "index.html";
  // Every segment names something: no "//", no "." or hidden files.
  std::size_t start = 0;
  while (start <= relative.size()) {
    auto slash = relative.find('/', start);
    auto segment = std::string_view{relative}.substr(
      start, slash == std::string::npos ? std::string::npos : slash - start);
    if (segment.empty())
      return fail("the path has an empty segment");
    if (segment[0] == '.')
      return fail("the path names a hidden file or '.'");
    if (slash == std::string::npos)
      break;
    start = slash + 1;
  }
  return relative;
}

answer load(const std::string& root, std::string_view url_path) {
  std::string why;
  auto relative = relative_path(url_path, &why);
  if (!relative)
    return refused(why);
  std::error_code ec;
  auto canonical_root = fs::canonical(root, ec);
  if (ec)
    return not_found("WEB_ROOT is gone: " + ec.message());
  auto file = fs::canonical(canonical_root / *relative, ec);
  if (ec)
    return not_found("no such file");
  // Symlinks are followed, but only to files inside the root.
  if (!inside(canonical_root, file))
    return refused("resolves outside WEB_ROOT");
  if (fs::is_directory(file, ec)) {
    file = fs::canonical(file / "index.html", ec);
    if (ec)
      return not_found("a directory without index.html");
    if (!inside(canonical_root, file))
      return refused("resolves outside WEB_ROOT");
  }
  auto status = fs::status(file, ec);
  if (ec || !fs::is_regular_file(status))
    return refused("not a regular file");
  auto size = fs::file_size(file, ec);
  if (ec)
    return not_found("unreadable: " + ec.message());
  if (size > max_file_bytes)
    return refused("over " + std::to_string(max_file_bytes) + " bytes");
  // Read on the caller's (IO) thread: bounded by max_file_bytes above.
  std::ifstream in{file, std::ios::binary};
  if (!in)
    return not_found("unreadable");
  answer out;
  // One byte more than its size: a file that grew past the limit since is
  // refused too.
  out.body.resize(static_cast<std::size_t>(size) + 1);
  in.read(out.body.data(), static_cast<std::streamsize>(out.body.size()));
  out.body.resize(static_cast<std::size_t>(in.gcount()));
  if (out.body.size() > max_file_bytes)
    return refused("over " + std::to_string(max_file_bytes) + " bytes");
  out.found = true;
  out.content_type = std::string{content_type_of(file.filename().string())};
  return out;
}

std::string escaped(std::string_view text) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : text.substr(0, 200)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 15]);
    }
  }
  if (text.size() > 200)
    out += "...";
  return out;
}

} // namespace goring::static_files
