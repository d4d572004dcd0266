#!/usr/bin/env bash
# Failover inside a Redis Cluster (issue 16), RUNS times (default 5): each run
# starts a six-node Cluster on loopback (3 masters, 3 replicas,
# cluster-node-timeout 1000, cluster-replica-validity-factor 0, no
# persistence), waits for cluster_state:ok and every replica in sync, starts
# two goring instances in Cluster mode, sets up calls in progress whose keys
# live on one master and places calls whose caller's keys live there, kills
# that master with SIGKILL (masters in turn from run to run), and measures
# (bench/failover.mjs) the replica's promotion, cluster_state:ok on every
# surviving node, the first call that rings again, both instances' /ready,
# the calls that failed meanwhile and what became of the calls in progress. Once every client is
# gone it scans the surviving masters for what is left behind (leftovers.txt).
# Writes runs.jsonl and summary.md to build/bench-results/cluster-failover-<time>/
# (bench/results/ with BENCH_KEEP=1). Every process started here is stopped by
# its PID; nothing leaves loopback.
# Usage: bench/cluster-failover.sh [runs, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
goring="${GORING_BINARY:-build/goring}"
[ -x "$goring" ] || { echo "cluster-failover.sh: build goring first (or set GORING_BINARY)" >&2; exit 2; }
. bench/lib.sh
out="$(results_dir cluster-failover)"
secret="bench-$(date +%s)"

# in_sync: every replica's link up and its offset its master's.
in_sync() {
  local p info mport
  for p in "${cluster_ports[@]}"; do
    info=$(redis-cli -p "$p" info replication | tr -d '\r')
    grep -q '^role:slave' <<<"$info" || continue
    grep -q '^master_link_status:up' <<<"$info" || return 1
    mport=$(sed -n 's/^master_port://p' <<<"$info")
    [ "$(sed -n 's/^slave_repl_offset://p' <<<"$info")" = \
      "$(redis-cli -p "$mport" info replication | tr -d '\r' | sed -n 's/^master_repl_offset://p')" ] || return 1
  done
}

# leftovers PORT...: one line per key of a call or of this bench's users on
# the masters among PORTs: "call_user KEY SESSION STATE TTL",
# "session KEY STATE TTL", "presence KEY TTL".
leftovers() {
  local p key sid state
  for p in "$@"; do
    redis-cli -p "$p" role | head -1 | grep -q '^master' || continue
    for key in $(redis-cli -p "$p" --scan --pattern 'call:user:*'); do
      sid=$(redis-cli -p "$p" get "$key")
      state=$(redis-cli -c -p "$p" hget "call:session:$sid" state)
      echo "call_user $key ${sid:-none} ${state:-missing} $(redis-cli -p "$p" pttl "$key")"
    done
    for key in $(redis-cli -p "$p" --scan --pattern 'call:session:*'); do
      state=$(redis-cli -p "$p" hget "$key" state)
      echo "session $key ${state:-none} $(redis-cli -p "$p" pttl "$key")"
    done
    for key in $(redis-cli -p "$p" --scan --pattern 'ws:user:{fo-*'); do
      echo "presence $key $(redis-cli -p "$p" pttl "$key")"
    done
  done
}

for run in $(seq 1 "$runs"); do
  dir="$out/run-$run"
  mkdir -p "$dir/data"
  first=${#pids[@]}
  redis_pids=()
  start_six_nodes "$dir" "$dir/data" --cluster-replica-validity-factor 0 \
    --repl-diskless-sync yes --repl-diskless-sync-delay 0
  wait_for 100 in_sync || { echo "run $run: replicas not in sync" >&2; exit 1; }
  # The masters in turn: run 1 kills the first seed, which holds each
  # instance's control connection.
  victim=${masters[$(((run - 1) % ${#masters[@]}))]}
  vport=${victim%%:*}
  vpid=${victim##*:}
  survivors=()
  for p in "${cluster_ports[@]}"; do
    [ "$p" = "$vport" ] && continue
    survivors+=("$p")
    [ "$(redis-cli -p "$p" role | sed -n 3p)" = "$vport" ] && replica=$p
  done
  # victim.txt: the killed master's port, the first seed's, the replica's.
  echo "$vport ${cluster_ports[0]} $replica" >"$dir/victim.txt"
  gports=()
  aports=()
  for name in east west; do
    p=$(free_port)
    a=$(free_port)
    gports+=("$p")
    aports+=("$a")
    env PORT="$p" ADMIN_PORT="$a" BIND_ADDR=127.0.0.1 SERVER_ID="cfailover-$name" JWT_SECRET="$secret" \
      "${redis_env[@]}" MESSAGE_RATE=0 UPGRADE_RATE_PER_IP=0 MAX_CONNECTIONS_PER_IP=0 LOG_LEVEL="${GORING_LOG_LEVEL:-info}" \
      "$goring" >"$dir/goring-$name.log" 2>&1 &
    pids+=($!)
    wait_port "$p"
  done
  timeout 150 node --experimental-websocket --no-warnings bench/failover.mjs \
    --east "${gports[0]}" --west "${gports[1]}" --secret "$secret" --run "$run" \
    --master-pid "$vpid" --replica-port "$replica" --victim-port "$vport" \
    --cluster-ports "$(IFS=,; echo "${survivors[*]}")" --admin-ports "${aports[0]},${aports[1]}" | tee -a "$out/runs.jsonl" ||
    echo "run $run: failover.mjs exited with $?" | tee -a "$out/failures.txt"
  # The clients are gone; calls they ended are over by the next call check.
  sleep 3
  leftovers "${survivors[@]}" >"$dir/leftovers.txt"
  redis-cli -p "${survivors[0]}" cluster nodes >"$dir/cluster-nodes-after.txt"
  # This run's processes, newest first (the killed master only reaped).
  for ((i = ${#pids[@]} - 1; i >= first; i--)); do stop "${pids[i]}"; done
  # The nodes' files are not results; the logs are.
  rm -rf "$dir/data"
done

python3 bench/failover_summary.py "$out" cluster
echo "cluster-failover.sh: results in $out"
