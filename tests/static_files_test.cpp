/// The web client's files under WEB_ROOT: which URL paths name a file, the
/// refusal of traversal (plain, encoded, through symlinks), and content types.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>

#include "net/static_files.hpp"

namespace {

namespace fs = std::filesystem;
using namespace goring::static_files;

/// A fresh directory tree for one test case, removed at its end:
///   outside/secret.txt, outside/index.html
///   root/index.html, root/app.js, root/style.CSS, root/data.bin,
///   root/docs/index.html, root/empty/, root/.env,
///   root/link-in.js -> app.js, root/link-out.txt -> ../outside/secret.txt,
///   root/dir-out -> ../outside
struct web_tree {
  fs::path base;
  fs::path root;

  web_tree() {
    std::string pattern = (fs::temp_directory_path() / "goring-static-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    base = pattern;
    root = base / "root";
    fs::create_directories(root / "docs");
    fs::create_directories(root / "empty");
    fs::create_directories(base / "outside");
    write(base / "outside" / "secret.txt", "secret");
    write(base / "outside" / "index.html", "outside");
    write(root / "index.html", "<!doctype html><title>goring</title>");
    write(root / "app.js", "console.log('goring');");
    write(root / "style.CSS", "body{}");
    write(root / "data.bin", "\x01\x02");
    write(root / "docs" / "index.html", "docs");
    write(root / ".env", "JWT_SECRET=x");
    fs::create_symlink("app.js", root / "link-in.js");
    fs::create_symlink("../outside/secret.txt", root / "link-out.txt");
    fs::create_symlink("../outside", root / "dir-out");
  }
  ~web_tree() {
    std::error_code ec;
    fs::remove_all(base, ec);
  }

  static void write(const fs::path& path, const std::string& text) {
    std::ofstream out{path, std::ios::binary};
    out << text;
  }

  answer get(std::string_view url_path) const {
    return load(root.string(), url_path);
  }
};

/// Checks that `url_path` is refused as unsafe, and nothing of it served.
void check_refused(const web_tree& tree, std::string_view url_path) {
  auto a = tree.get(url_path);
  CAPTURE(url_path);
  CAPTURE(a.refusal);
  CHECK_FALSE(a.found);
  CHECK(a.refused);
  CHECK(a.body.empty());
  CHECK_FALSE(a.refusal.empty());
}

} // namespace

TEST_CASE("URL paths map to files relative to the root, a trailing slash means index.html") {
  CHECK(relative_path("/") == "index.html");
  CHECK(relative_path("/app.js") == "app.js");
  CHECK(relative_path("/docs/") == "docs/index.html");
  CHECK(relative_path("/docs/guide.html") == "docs/guide.html");
  CHECK(relative_path("/a%20b.txt") == "a b.txt");
  CHECK(relative_path("/a+b.txt") == "a+b.txt");
}

TEST_CASE("paths with '..', backslashes, NUL or control bytes are refused, encoded or not") {
  for (auto path : {"/..",
                    "/../etc/passwd",
                    "/docs/../../x",
                    "/%2e%2e/x",
                    "/%2E%2E%2Fetc%2Fpasswd",
                    "/docs%2f..%2f..%2fx",
                    "/a\\b",
                    "/a%5cb",
                    "/..%5c..%5cx",
                    "/a%00.html",
                    "/a%0d%0aSet-Cookie:x",
                    "/file..js",
                    "app.js",
                    "",
                    "/a//b",
                    "/./app.js",
                    "/.env",
                    "/%2eenv",
                    "/docs/.hidden/",
                    "/%",
                    "/%2",
                    "/%zz",
                    "/%2g"}) {
    std::string why;
    CAPTURE(path);
    CHECK_FALSE(relative_path(path, &why));
    CHECK_FALSE(why.empty());
  }
}

TEST_CASE("a file under the root is served with its content type") {
  web_tree tree;
  auto index = tree.get("/");
  REQUIRE(index.found);
  CHECK(index.body == "<!doctype html><title>goring</title>");
  CHECK(index.content_type == "text/html; charset=utf-8");
  auto app = tree.get("/app.js");
  REQUIRE(app.found);
  CHECK(app.body == "console.log('goring');");
  CHECK(app.content_type == "text/javascript; charset=utf-8");
  auto docs = tree.get("/docs/");
  REQUIRE(docs.found);
  CHECK(docs.body == "docs");
  // A directory named without its slash is served as its index.html too.
  CHECK(tree.get("/docs").body == "docs");
  CHECK(tree.get("/style.CSS").content_type == "text/css; charset=utf-8");
  CHECK(tree.get("/data.bin").content_type == "application/octet-stream");
}

TEST_CASE("a symlink inside the root to a file inside the root is served") {
  web_tree tree;
  auto a = tree.get("/link-in.js");
  REQUIRE(a.found);
  CHECK(a.body == "console.log('goring');");
}

TEST_CASE("symlinks out of the root are refused, to a file or through a directory") {
  web_tree tree;
  check_refused(tree, "/link-out.txt");
  check_refused(tree, "/dir-out/secret.txt");
  check_refused(tree, "/dir-out/");
}

TEST_CASE("traversal and hidden files are refused against a real tree") {
  web_tree tree;
  check_refused(tree, "/../outside/secret.txt");
  check_refused(tree, "/%2e%2e/outside/secret.txt");
  check_refused(tree, "/docs/..%2f..%2foutside%2fsecret.txt");
  check_refused(tree, "/..%5coutside%5csecret.txt");
  check_refused(tree, "/.env");
  check_refused(tree, "/app.js%00.html");
}

TEST_CASE("missing files and directories without index.html are not found") {
  web_tree tree;
  for (auto path : {"/missing.js", "/empty/", "/empty", "/docs/missing.html"}) {
    auto a = tree.get(path);
    CAPTURE(path);
    CHECK_FALSE(a.found);
    CHECK_FALSE(a.refused);
  }
}

TEST_CASE("a file over 1 MiB is refused, one of exactly 1 MiB is served") {
  web_tree tree;
  web_tree::write(tree.root / "big.js", std::string(max_file_bytes + 1, 'x'));
  web_tree::write(tree.root / "limit.js", std::string(max_file_bytes, 'x'));
  check_refused(tree, "/big.js");
  auto limit = tree.get("/limit.js");
  REQUIRE(limit.found);
  CHECK(limit.body.size() == max_file_bytes);
}

TEST_CASE("files that are not regular files are refused") {
  web_tree tree;
  auto fifo = tree.root / "pipe.txt";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  check_refused(tree, "/pipe.txt");
}

TEST_CASE("a root that is gone serves nothing") {
  auto a = load("/nonexistent-goring-web-root", "/index.html");
  CHECK_FALSE(a.found);
}

TEST_CASE("content types follow the extension, case-insensitively") {
  CHECK(content_type_of("index.html") == "text/html; charset=utf-8");
  CHECK(content_type_of("INDEX.HTML") == "text/html; charset=utf-8");
  CHECK(content_type_of("app.js") == "text/javascript; charset=utf-8");
  CHECK(content_type_of("mod.mjs") == "text/javascript; charset=utf-8");
  CHECK(content_type_of("style.css") == "text/css; charset=utf-8");
  CHECK(content_type_of("manifest.json") == "application/json");
  CHECK(content_type_of("logo.svg") == "image/svg+xml");
  CHECK(content_type_of("logo.png") == "image/png");
  CHECK(content_type_of("favicon.ico") == "image/x-icon");
  CHECK(content_type_of("robots.txt") == "text/plain; charset=utf-8");
  CHECK(content_type_of("archive.tar.gz") == "application/octet-stream");
  CHECK(content_type_of("README") == "application/octet-stream");
  CHECK(content_type_of("dir.js/file") == "application/octet-stream");
}

TEST_CASE("paths in log lines are escaped and cut short") {
  CHECK(escaped("/app.js") == "/app.js");
  CHECK(escaped(std::string_view{"/a\0b\n\\", 6}) == "/a\\x00b\\x0a\\x5c");
  CHECK(escaped("/\xff") == "/\\xff");
  CHECK(escaped(std::string(300, 'a')).size() == 203);
}
