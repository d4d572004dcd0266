#!/usr/bin/env bash
# A/B of two goring binaries on one scenario, alternating A, B, A, B... so
# both see the same machine load; prints goring-bench's summary per run and
# keeps the lines in build/bench-results/ab-<time>/<scenario>.txt
# (bench/results/ with BENCH_KEEP=1, see bench/lib.sh).
# Usage: bench/ab.sh BINARY_A BINARY_B relay|relay-2|setup|idle-15k [rounds, default 3] [seconds, default 5]
#   idle-15k: 15,000 idle connections on a fresh process, held SECONDS
#   (35 includes one round of keep-alive pings): RSS and CPU while idle.
# Every process started here is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
bin_a="$1"
bin_b="$2"
what="$3"
rounds="${4:-3}"
secs="${5:-5}"
ulimit -n 20000 2>/dev/null || true
bench=build/tools/bench/goring-bench
secret="ab-$(date +%s)"
. bench/lib.sh
out="$(results_dir ab)"
# Everything printed from here on also goes to the results folder; the loop
# stays in this shell, so the cleanup trap knows every PID it starts.
exec > >(tee "$out/$what.txt")

start_redis

start() { # binary id port -> pid
  PORT="$3" ADMIN_PORT=0 SERVER_ID="$2" REDIS_ADDR="127.0.0.1:$rport" JWT_SECRET="$secret" \
    MESSAGE_RATE=0 UPGRADE_RATE_PER_IP=0 MAX_CONNECTIONS_PER_IP=0 MAX_CONNECTIONS=0 \
    LOG_LEVEL=warn "$1" >/dev/null 2>&1 &
  echo $!
}
run_one() { # label binary
  local p1 g1 p2 g2 args
  p1=$(free_port); g1=$(start "$2" "$1-1" "$p1"); pids+=("$g1"); wait_port "$p1"
  args=(--url "ws://127.0.0.1:$p1/ws" --server-pid "$g1")
  if [ "$what" = relay-2 ]; then
    p2=$(free_port); g2=$(start "$2" "$1-2" "$p2"); pids+=("$g2"); wait_port "$p2"
    args+=(--url2 "ws://127.0.0.1:$p2/ws" --server-pid "$g2")
  fi
  case "$what" in
    relay | relay-2) args=(relay "${args[@]}" --calls 10) ;;
    setup) args=(setup "${args[@]}" --pairs 100) ;;
    idle-15k) args=(idle "${args[@]}" --connections 15000 --settle 5 --hold "$secs") ;;
  esac
  echo -n "$1: "
  if [ "$what" != idle-15k ]; then args+=(--duration "$secs"); fi
  "$bench" "${args[@]}" --secret "$secret" --redis "127.0.0.1:$rport" 2>&1 >/dev/null | tail -1
  kill "$g1"; wait "$g1" 2>/dev/null || true
  if [ "$what" = relay-2 ]; then kill "$g2"; wait "$g2" 2>/dev/null || true; fi
}
for _ in $(seq 1 "$rounds"); do
  run_one A "$bin_a"
  run_one B "$bin_b"
done
echo "results in $out" >&2
