// The main of every doctest binary. ctest runs each test case on its own
// (`--test-case=<name>`, from doctest_discover_tests); a name the filter
// cannot match runs nothing, and doctest still exits 0. CMake splits the
// discovered names at ';', so a ';' in a test name did exactly that: the
// entry "passed" having run no test. Here a filtered run that matched no
// test case fails and says why.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstring>
#include <iostream>

namespace {

int cases_matched = -1;

/// Notes how many test cases passed the filters; reports nothing.
struct match_counter : doctest::IReporter {
  explicit match_counter(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats& stats) override {
    cases_matched = static_cast<int>(stats.numTestCasesPassingFilters);
  }
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

REGISTER_LISTENER("match_counter", 1, match_counter);

bool names_test_cases(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    for (const char* flag : {"--test-case=", "-tc=", "--dt-test-case=", "--dt-tc="})
      if (std::strncmp(argv[i], flag, std::strlen(flag)) == 0)
        return true;
  return false;
}

} // namespace

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  int status = context.run();
  if (context.shouldExit())
    return status;
  if (status == 0 && cases_matched == 0 && names_test_cases(argc, argv)) {
    std::cerr << "test_main: no test case matched --test-case (a name with ';' cannot be "
                 "matched: CMake splits discovered names there)\n";
    return 1;
  }
  return status;
}
