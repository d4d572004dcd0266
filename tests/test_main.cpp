// The main of every doctest binary. ctest runs each test case on its own
// (`--test-case=<name>`, from doctest_discover_tests); a name the filter
// cannot match runs nothing, and doctest still exits 0. CMake splits the
// discovered names at ';', so a ';' in a test name did exactly that: the
// entry "passed" having run no test. Here a filtered run that matched no
// test case fails and says why, unless the case it names is skipped by its
// doctest::skip decorator (single_redis_only() in the Cluster variant):
// then it says so, in the words ctest's SKIP_REGULAR_EXPRESSION looks for.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstring>
#include <iostream>
#include <set>
#include <string>
#include <vector>

namespace {

int cases_matched = -1;
/// The test cases a skip decorator holds back in this run.
std::set<std::string> skipped_by_decorator;

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
  void test_case_skipped(const doctest::TestCaseData& data) override {
    if (data.m_skip)
      skipped_by_decorator.insert(data.m_name);
  }
};

REGISTER_LISTENER("match_counter", 1, match_counter);

/// The names given to --test-case (and its other spellings), with the "\,"
/// of discovered names (a comma in a name) back to ",".
std::vector<std::string> named_test_cases(int argc, char** argv) {
  std::vector<std::string> names;
  for (int i = 1; i < argc; ++i)
    for (const char* flag : {"--test-case=", "-tc=", "--dt-test-case=", "--dt-tc="})
      if (std::strncmp(argv[i], flag, std::strlen(flag)) == 0) {
        std::string name;
        for (const char* c = argv[i] + std::strlen(flag); *c != 0; ++c)
          if (!(c[0] == '\\' && c[1] == ','))
            name += *c;
        names.push_back(name);
      }
  return names;
}

} // namespace

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  int status = context.run();
  if (context.shouldExit())
    return status;
  auto names = named_test_cases(argc, argv);
  if (status == 0 && cases_matched == 0 && !names.empty()) {
    for (auto& name : names)
      if (skipped_by_decorator.count(name) != 0) {
        std::cout << "test_main: skipped by its decorator in this run: " << name << "\n";
        return 0;
      }
    std::cerr << "test_main: no test case matched --test-case (a name with ';' cannot be "
                 "matched: CMake splits discovered names there)\n";
    return 1;
  }
  return status;
}
