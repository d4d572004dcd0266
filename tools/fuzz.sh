#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14; .ci/install-ci-deps.sh installs it)
# in build-fuzz/ and runs each for a bounded time, starting from its seed
# corpus in tests/fuzz/corpus/<target>/. A crash stops with its input's path:
# fix the bug, then keep the input in tests/fuzz/regressions/<target>/ so the
# replay tests of every build run it.
# Usage: tools/fuzz.sh [seconds per target, default 60] [target...]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(codec token jwks)

cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
  -DGORING_FUZZ=ON -DGORING_SANITIZE=address,undefined >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/fuzz_}"

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
work=build-fuzz/runs
for target in "${targets[@]}"; do
  # New inputs go to a scratch corpus; the checked-in seeds stay as they are.
  mkdir -p "$work/$target/corpus" "$work/$target/crashes"
  echo "fuzz: $target for ${seconds} s"
  if ! build-fuzz/tests/fuzz/fuzz_"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$work/$target/crashes/" \
    "$work/$target/corpus" "tests/fuzz/corpus/$target" >"$work/$target/log" 2>&1; then
    tail -n 60 "$work/$target/log"
    echo "fuzz: $target FAILED; the input that crashed it:"
    ls -1 "$PWD/$work/$target/crashes/"*
    exit 1
  fi
  grep -E '^stat::number_of_executed_units|^Done' "$work/$target/log" || true
done
echo "fuzz: no crash in ${targets[*]}"
