#!/usr/bin/env bash
# Runs goring's standard benchmark suite on this machine and writes JSON
# plus a markdown table into build/bench-results/<time>/ (bench/results/
# with BENCH_KEEP=1, see bench/lib.sh): goring on one instance, on two
# instances, and the bare relay (the near-physical limit of a WebSocket
# relay here). Every run is bounded; every process started here is stopped
# by its PID.
# Usage: bench/run.sh [seconds per scenario, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
# 15,000 connections need as many files in goring and in goring-bench.
ulimit -n 20000 2>/dev/null || true
./deploy/install-build-deps.sh >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target goring goring-bench bare-relay >/dev/null

. bench/lib.sh
out="$(results_dir "")"
bench=build/tools/bench/goring-bench
secret="bench-$(date +%s)"


start_redis

start_goring() { # id port -> pid
  # Every benchmark client comes from 127.0.0.1, thousands of them, each
  # far faster than a person: the limits (docs/security.md, Limits) off.
  PORT="$2" ADMIN_PORT=0 SERVER_ID="$1" REDIS_ADDR="127.0.0.1:$rport" JWT_SECRET="$secret" \
    MESSAGE_RATE=0 UPGRADE_RATE_PER_IP=0 MAX_CONNECTIONS_PER_IP=0 MAX_CONNECTIONS=0 \
    LOG_LEVEL=warn build/goring >"$out/$1.log" 2>&1 &
  echo $!
}
p1=$(free_port); g1=$(start_goring bench-1 "$p1"); pids+=("$g1")
p2=$(free_port); g2=$(start_goring bench-2 "$p2"); pids+=("$g2")
bp=$(free_port)
build/tools/bench/bare-relay --port "$bp" --threads 1 >"$out/bare.log" 2>&1 &
bare=$!; pids+=("$bare")
wait_port "$p1"; wait_port "$p2"; wait_port "$bp"

common=(--secret "$secret" --redis "127.0.0.1:$rport")
run() { # name args...
  local name=$1; shift
  echo "== $name: $bench $*" | tee -a "$out/commands.txt"
  "$bench" "$@" >"$out/$name.json" 2>"$out/$name.txt" || true
  cat "$out/$name.txt"
}
run connect connect --url "ws://127.0.0.1:$p1/ws" --connections 5000 --concurrency 200 --server-pid "$g1" "${common[@]}"
run setup-1 setup --url "ws://127.0.0.1:$p1/ws" --pairs 100 --duration "$secs" --server-pid "$g1" "${common[@]}"
# Open loop at the reference's maximum rate: latency with 100 pairs calling
# when the server is not saturated.
run setup-1-open setup --url "ws://127.0.0.1:$p1/ws" --pairs 100 --rate 1000 --duration "$secs" --server-pid "$g1" "${common[@]}"
run setup-2 setup --url "ws://127.0.0.1:$p1/ws" --url2 "ws://127.0.0.1:$p2/ws" --pairs 100 --duration "$secs" --server-pid "$g1" --server-pid "$g2" "${common[@]}"
run relay-1 relay --url "ws://127.0.0.1:$p1/ws" --calls 10 --duration "$secs" --server-pid "$g1" "${common[@]}"
# Round-trip latency at half the rate relay-1 reached.
half=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["messages"]["per_s"] / 2))' "$out/relay-1.json" 2>/dev/null || echo 0)
if [ "$half" -gt 0 ]; then
  run relay-1-half relay --url "ws://127.0.0.1:$p1/ws" --calls 10 --duration "$secs" --rate "$half" --server-pid "$g1" "${common[@]}"
fi
run relay-2 relay --url "ws://127.0.0.1:$p1/ws" --url2 "ws://127.0.0.1:$p2/ws" --calls 10 --duration "$secs" --server-pid "$g1" --server-pid "$g2" "${common[@]}"
run relay-bare relay --bare --url "ws://127.0.0.1:$bp/" --calls 10 --duration "$secs" --server-pid "$bare"
run idle idle --url "ws://127.0.0.1:$p1/ws" --connections 5000 --hold "$secs" --server-pid "$g1" "${common[@]}"
# 15,000 idle connections on a fresh instance, held long enough to include
# a round of keep-alive pings (IDLE_TIMEOUT/2 = 30 s after connecting).
p3=$(free_port); g3=$(start_goring bench-3 "$p3"); pids+=("$g3"); wait_port "$p3"
run idle-15k idle --url "ws://127.0.0.1:$p3/ws" --connections 15000 --settle 5 --hold 35 --server-pid "$g3" "${common[@]}"

{
  echo "| scenario | summary |"
  echo "|---|---|"
  for f in connect setup-1 setup-1-open setup-2 relay-1 relay-1-half relay-2 relay-bare idle idle-15k; do
    if [ -f "$out/$f.txt" ]; then echo "| $f | $(tr '|' '/' <"$out/$f.txt" | tail -1) |"; fi
  done
} >"$out/summary.md"
echo "results in $out"
