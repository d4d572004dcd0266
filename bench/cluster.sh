#!/usr/bin/env bash
# One Redis against a three-master Redis Cluster (issue 16), in one run:
# cross-instance relay and call cycles with 2 and with 4 goring instances,
# first on one private redis-server, then on a private six-node Cluster on
# loopback (3 masters, 3 replicas). Around every scenario it reads each
# master's CPU time (/proc/PID/stat utime+stime) and INFO commandstats, so
# the summary gives Redis CPU per 1,000 cycles, commands per cycle and the
# spread of commands over the masters (max/min), all as cluster/single
# ratios. Writes JSON, the snapshots and summary.md into
# build/bench-results/cluster-<time>/ (bench/results/ with BENCH_KEEP=1, see
# bench/lib.sh). Bounded: each scenario lasts SECONDS, the Cluster gets 30 s
# to form; every process started here is stopped by its PID.
# Usage: bench/cluster.sh [seconds per scenario, default 8]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-8}"
ulimit -n 20000 2>/dev/null || true
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# -j2 at most: the numbers are noisy enough on a shared machine.
cmake --build build -j2 --target goring goring-bench >/dev/null

. bench/lib.sh
out="$(results_dir cluster)"
bench=build/tools/bench/goring-bench
secret="bench-$(date +%s)"
tmp="$(mktemp -d)"
trap 'cleanup; rm -rf "$tmp"' EXIT

# masters=("port:pid" ...): the nodes whose load is measured.
masters=()
redis_pids=()

start_single() {
  start_redis "$out/redis-single.log"
  redis_pids=("${pids[-1]}")
  masters=("$rport:${pids[-1]}")
  redis_env=(REDIS_ADDR="127.0.0.1:$rport")
}

start_cluster() { start_six_nodes "$out" "$tmp"; }

# snapshot FILE: one line per master: port, CPU ticks, commands (INFO
# commandstats calls, scripts' inner commands included, INFO left out),
# EVALSHA calls.
snapshot() {
  local m port pid
  : >"$1"
  for m in "${masters[@]}"; do
    port=${m%%:*}; pid=${m##*:}
    # Fields 14 and 15 of /proc/PID/stat; counted after the ")" closing comm.
    local ticks
    ticks=$(sed 's/.*) //' /proc/"$pid"/stat | awk '{print $12 + $13}')
    redis-cli -p "$port" info commandstats | tr -d '\r' | awk -F'[:=,]' -v port="$port" -v ticks="$ticks" '
      /^cmdstat_/ && $1 != "cmdstat_info" { all += $3 }
      $1 == "cmdstat_evalsha" { evalsha = $3 }
      END { print port, ticks, all + 0, evalsha + 0 }' >>"$1"
  done
}

gorings=(); gports=(); extra_env=()
start_gorings() { # mode count
  local i p
  gorings=(); gports=()
  for i in $(seq 1 "$2"); do
    p=$(free_port)
    # Every benchmark client comes from 127.0.0.1: the limits off.
    env PORT="$p" ADMIN_PORT=0 SERVER_ID="$1-$2-$i" "${redis_env[@]}" "${extra_env[@]}" JWT_SECRET="$secret" \
      MESSAGE_RATE=0 UPGRADE_RATE_PER_IP=0 MAX_CONNECTIONS_PER_IP=0 MAX_CONNECTIONS=0 \
      LOG_LEVEL=warn build/goring >"$out/goring-$1-$2-$i.log" 2>&1 &
    gorings+=($!); pids+=($!); gports+=("$p")
  done
  for p in "${gports[@]}"; do wait_port "$p"; done
}

# scenario NAME ARGS...: one goring-bench per pair of instances (1->2,
# 3->4), all at once, one client thread each; the masters' snapshots
# around them.
scenario() {
  local name=$1; shift
  local i j runners=() k=0
  snapshot "$out/$name.before"
  for ((i = 0; i < ${#gorings[@]}; i += 2)); do
    j=$((i + 1)); k=$((k + 1))
    echo "== $name-$k: $bench $* --url ws://127.0.0.1:${gports[i]}/ws --url2 ws://127.0.0.1:${gports[j]}/ws" \
      >>"$out/commands.txt"
    "$bench" "$@" --secret "$secret" --threads 1 \
      --url "ws://127.0.0.1:${gports[i]}/ws" --url2 "ws://127.0.0.1:${gports[j]}/ws" \
      --server-pid "${gorings[i]}" --server-pid "${gorings[j]}" \
      >"$out/$name-$k.json" 2>"$out/$name-$k.txt" &
    runners+=($!); pids+=($!)
  done
  for i in "${runners[@]}"; do wait "$i" || echo "$name: a goring-bench exited with $?" | tee -a "$out/failures.txt"; done
  forget "${runners[@]}"
  snapshot "$out/$name.after"
  for ((i = 1; i <= k; i++)); do echo "$name-$i: $(tail -1 "$out/$name-$i.txt")"; done
}

# online PATTERN: the ws:user keys matching PATTERN on the masters together.
online() {
  local m t=0
  for m in "${masters[@]}"; do
    t=$((t + $(redis-cli -p "${m%%:*}" --scan --pattern "$1" | wc -l)))
  done
  echo "$t"
}

# idle MODE: the presence refresh alone. 4,000 idle users on two instances
# with PRESENCE_TTL=3s (a refresh every second instead of every 30 s), the
# masters' snapshots SECONDS apart once all are online, so the cost of one
# user's refresh comes out without the claims of connecting.
idle() {
  local users=4000 runner online t0 t1
  extra_env=(PRESENCE_TTL=3s)
  start_gorings "$1" 2
  extra_env=()
  echo "== idle-$1: $bench idle --connections $users (PRESENCE_TTL=3s)" >>"$out/commands.txt"
  "$bench" idle --secret "$secret" --threads 1 --run "idle-$1" --connections "$users" --concurrency 100 \
    --settle 1 --hold $((secs + 5)) \
    --url "ws://127.0.0.1:${gports[0]}/ws" --url2 "ws://127.0.0.1:${gports[1]}/ws" \
    --server-pid "${gorings[0]}" --server-pid "${gorings[1]}" \
    >"$out/idle-$1.json" 2>"$out/idle-$1.txt" &
  runner=$!; pids+=("$runner")
  # One ws:user key per user: ws:user:bench-idle-MODE-N, the user id in
  # braces in a Cluster.
  online=0
  for _ in $(seq 1 300); do
    online=$(online "ws:user:*bench-idle-$1-*")
    [ "$online" -ge "$users" ] && break
    sleep 0.2
  done
  sleep 1
  snapshot "$out/idle-$1.before"; t0=$(date +%s.%N)
  sleep "$secs"
  snapshot "$out/idle-$1.after"; t1=$(date +%s.%N)
  echo "$online $(python3 -c "print($t1 - $t0)") 1" >"$out/idle-$1.info" # users seconds refresh-period-s
  wait "$runner" || echo "idle-$1: goring-bench exited with $?" | tee -a "$out/failures.txt"
  forget "$runner"
  echo "idle-$1: $online users online; $(tail -1 "$out/idle-$1.txt")"
  stop "${gorings[@]}"
}

for mode in single cluster; do
  redis_pids=()
  "start_$mode"
  for n in 2 4; do
    start_gorings "$mode" "$n"
    # 30 accepted calls per pair of instances, ping-ponging webrtc.ice (30
    # rather than run.sh's 10, so that their channels spread over three
    # masters).
    scenario "relay-$mode-$n" relay --calls 30 --duration "$secs"
    # Closed loop: 50 caller/callee pairs per pair of instances.
    scenario "setup-$mode-$n" setup --pairs 50 --duration "$secs"
    stop "${gorings[@]}"
  done
  idle "$mode"
  stop "${redis_pids[@]}"
done

python3 bench/cluster_summary.py "$out" | tee "$out/summary.md"
# Every goring warns once that ALLOWED_ORIGINS is unset; anything else counts.
grep -h -E '"level":"(warn|error)"' "$out"/goring-*.log | grep -v '"msg":"ALLOWED_ORIGINS is not set' \
  >"$out/goring-warnings.txt" || true
echo "goring log lines at warn or above: $(wc -l <"$out/goring-warnings.txt") (goring-warnings.txt)"
echo "results in $out"
