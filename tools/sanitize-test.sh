#!/usr/bin/env bash
# Builds everything with AddressSanitizer and UndefinedBehaviorSanitizer in
# build-asan/ and runs the whole ctest suite there. Every process (tests,
# and the goring servers they start) writes what a sanitizer finds to
# build-asan/sanitizer-reports/; one report fails the run, even one from a
# server whose exit no test checked.
# Usage: tools/sanitize-test.sh [extra ctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGORING_SANITIZE=address,undefined \
  >/dev/null
cmake --build build-asan -j"$(nproc)"

reports=$PWD/build-asan/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports"
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:log_path=$reports/report
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$reports/report
export LSAN_OPTIONS=suppressions=$PWD/.ci/lsan-suppressions.txt:print_suppressions=0

status=0
(cd build-asan && ctest --output-on-failure -j"$(nproc)" "$@") || status=$?
if compgen -G "$reports/report*" >/dev/null; then
  for report in "$reports"/report*; do
    echo "=== $report"
    cat "$report"
  done
  echo "sanitize-test: the sanitizers reported the findings above"
  exit 1
fi
exit $status
