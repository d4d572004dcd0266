#!/usr/bin/env bash
# Failover window with Redis Sentinel, RUNS times (default 5): each run starts
# a master, a replica and three sentinels (down-after-milliseconds 1000,
# failover-timeout 3000) and two goring instances in Sentinel mode, places
# calls from one to the other, kills the master with SIGKILL, and measures
# (bench/failover.mjs) the time to the replica's promotion, to the first call
# that rings again, and the calls that failed meanwhile.
# Writes runs.jsonl and summary.md to build/bench-results/failover-<time>/
# (bench/results/ with BENCH_KEEP=1). Every process started here is stopped
# by its PID.
# Usage: bench/failover.sh [runs, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
goring="${GORING_BINARY:-build/goring}"
[ -x "$goring" ] || { echo "failover.sh: build goring first (or set GORING_BINARY)" >&2; exit 2; }
. bench/lib.sh
out="$(results_dir failover)"
secret="bench-$(date +%s)"

sentinels_ready() {
  local p
  for p in "$@"; do
    redis-cli -p "$p" sentinel master goring-master | paste - - |
      awk '$1=="num-slaves"{s=$2} $1=="num-other-sentinels"{o=$2} END{exit !(s==1 && o==2)}' || return 1
  done
}

for run in $(seq 1 "$runs"); do
  dir="$out/run-$run"
  mkdir -p "$dir"
  first=${#pids[@]}
  mport=$(free_port)
  rport=$(free_port)
  for role in master replica; do
    port=$mport
    extra=()
    if [ "$role" = replica ]; then port=$rport; extra=(--replicaof 127.0.0.1 "$mport"); fi
    mkdir -p "$dir/$role"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir/$role" \
      --repl-diskless-sync yes --repl-diskless-sync-delay 0 --loglevel warning "${extra[@]}" \
      >"$dir/$role.log" 2>&1 &
    pids+=($!)
    [ "$role" = master ] && master_pid=$!
    wait_port "$port"
  done
  wait_for 100 sh -c "redis-cli -p $rport info replication | grep -q master_link_status:up"
  sports=()
  for i in 1 2 3; do
    p=$(free_port)
    sports+=("$p")
    mkdir -p "$dir/sentinel-$i"
    printf 'port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor goring-master 127.0.0.1 %s 2\nsentinel down-after-milliseconds goring-master 1000\nsentinel failover-timeout goring-master 3000\n' \
      "$p" "$PWD/$dir/sentinel-$i" "$mport" >"$dir/sentinel-$i/sentinel.conf"
    redis-server "$dir/sentinel-$i/sentinel.conf" --sentinel >"$dir/sentinel-$i.log" 2>&1 &
    pids+=($!)
    wait_port "$p"
  done
  wait_for 200 sentinels_ready "${sports[@]}" || { echo "run $run: sentinels not ready" >&2; exit 1; }
  list="127.0.0.1:${sports[0]},127.0.0.1:${sports[1]},127.0.0.1:${sports[2]}"
  gports=()
  for name in east west; do
    p=$(free_port)
    gports+=("$p")
    PORT="$p" ADMIN_PORT=0 BIND_ADDR=127.0.0.1 SERVER_ID="failover-$name" JWT_SECRET="$secret" \
      REDIS_SENTINELS="$list" REDIS_SENTINEL_MASTER=goring-master UPGRADE_RATE_PER_IP=0 \
      MAX_CONNECTIONS_PER_IP=0 LOG_LEVEL=info "$goring" >"$dir/goring-$name.log" 2>&1 &
    pids+=($!)
    wait_port "$p"
  done
  node --experimental-websocket --no-warnings bench/failover.mjs --east "${gports[0]}" --west "${gports[1]}" \
    --secret "$secret" --master-pid "$master_pid" --replica-port "$rport" --run "$run" | tee -a "$out/runs.jsonl"
  # This run's processes, newest first.
  for ((i = ${#pids[@]} - 1; i >= first; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  pids=("${pids[@]:0:first}")
  # The data and configuration directories are not results; the logs are.
  rm -rf "$dir/master" "$dir/replica" "$dir"/sentinel-[123]/
done

python3 bench/failover_summary.py "$out" sentinel
echo "failover.sh: results in $out"
