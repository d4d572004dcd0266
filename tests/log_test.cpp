#include <doctest/doctest.h>

#include <string>

#include "config/log.hpp"

namespace {

std::string escaped(std::string_view text) {
  std::string out;
  goring::log::append_escaped(out, text);
  return out;
}

} // namespace

TEST_CASE("log fields escape quotes, backslashes and control characters") {
  CHECK(escaped("say \"hi\"\\") == "say \\\"hi\\\"\\\\");
  CHECK(escaped("a\nb\tc\rd") == "a\\nb\\tc\\rd");
  CHECK(escaped(std::string_view{"\x01\x1f", 2}) == "\\u0001\\u001f");
}

TEST_CASE("log fields keep valid UTF-8 as it is") {
  CHECK(escaped("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(escaped("\xe2\x82\xac 5") == "\xe2\x82\xac 5");
  CHECK(escaped("\xf0\x9d\x84\x9e") == "\xf0\x9d\x84\x9e");
}

TEST_CASE("bytes a client sent that are not UTF-8 become U+FFFD, so the line stays JSON") {
  CHECK(escaped("https://evil\xff.example") == "https://evil\\ufffd.example");
  CHECK(escaped("cut \xc3") == "cut \\ufffd");
  CHECK(escaped("\xc0\xaf") == "\\ufffd\\ufffd");                       // overlong '/'
  CHECK(escaped("\xed\xa0\x80") == "\\ufffd\\ufffd\\ufffd");            // a surrogate
  CHECK(escaped("\xf4\x90\x80\x80") == "\\ufffd\\ufffd\\ufffd\\ufffd"); // beyond U+10FFFF
  CHECK(escaped("\x80x") == "\\ufffdx");                                // a stray continuation byte
}
