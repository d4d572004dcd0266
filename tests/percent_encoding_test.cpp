/// Percent-escapes in URL path segments, as the admin API reads the ids
/// goringctl escapes into /admin/users/ID and /admin/calls/ID.
#include <doctest/doctest.h>

#include "net/percent_encoding.hpp"

using goring::net::decode_path_segment;

TEST_CASE("an escaped id comes back as it was, braces and percent signs too") {
  CHECK(decode_path_segment("alice") == "alice");
  CHECK(decode_path_segment("a%7Db%7Bc") == "a}b{c");
  CHECK(decode_path_segment("a%7db%7bc") == "a}b{c");
  CHECK(decode_path_segment("100%25") == "100%");
  CHECK(decode_path_segment("%E2%82%AC") == "\xE2\x82\xAC");
}

TEST_CASE("a plus stays a plus and a broken escape stays as it is") {
  CHECK(decode_path_segment("a+b") == "a+b");
  CHECK(decode_path_segment("%") == "%");
  CHECK(decode_path_segment("50%") == "50%");
  CHECK(decode_path_segment("%4") == "%4");
  CHECK(decode_path_segment("%zz") == "%zz");
  CHECK(decode_path_segment("%%41") == "%A");
}
