#!/usr/bin/env bash
# Builds everything with AddressSanitizer and UndefinedBehaviorSanitizer in
# build-asan/ and runs the whole ctest suite there. A finding fails the run,
# even one in a goring server whose exit no test checked: ASan and LSan
# write theirs to build-asan/sanitizer-reports/, and UBSan's (gcc's libubsan
# ignores log_path) is looked for in the servers' logs, build-asan/test-logs/.
# Usage: tools/sanitize-test.sh [extra ctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGORING_SANITIZE=address,undefined \
  >/dev/null
cmake --build build-asan -j"$(nproc)"

reports=$PWD/build-asan/sanitizer-reports
server_logs=$PWD/build-asan/test-logs
rm -rf "$reports" "$server_logs"
mkdir -p "$reports"
# quarantine_size_mb: ASan keeps freed memory aside to catch use after free;
# at its default 256 MB that shows as RSS growth the soak test takes for a
# leak. 16 MB still catches a use soon after the free.
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:quarantine_size_mb=16:log_path=$reports/report
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=suppressions=$PWD/.ci/lsan-suppressions.txt:print_suppressions=0

status=0
(cd build-asan && ctest --output-on-failure -j"$(nproc)" "$@") || status=$?
found=0
if compgen -G "$reports/report*" >/dev/null; then
  for report in "$reports"/report*; do
    echo "=== $report"
    cat "$report"
  done
  found=1
fi
if [ -d "$server_logs" ] \
  && grep -l -r -E 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$server_logs" >/dev/null; then
  for log in $(grep -l -r -E 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$server_logs"); do
    echo "=== $log"
    grep -A 30 -E 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$log"
  done
  found=1
fi
if [ $found -ne 0 ]; then
  echo "sanitize-test: the sanitizers reported the findings above"
  exit 1
fi
exit $status
