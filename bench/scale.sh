#!/usr/bin/env bash
# Scale run: INSTANCES goring instances sharing one private redis-server,
# PER idle WebSockets on each (one goring-bench idle process per instance,
# as one process may open at most 20,000 files here), and, while all of
# them are held, full call cycles between users of the first two instances.
# Writes JSON and summary.md into build/bench-results/scale-<time>/
# (bench/results/ with BENCH_KEEP=1, see bench/lib.sh). Bounded:
# every client holds at most HOLD seconds, the script waits at most 180 s
# for the connections; every process started here is stopped by its PID.
# Usage: bench/scale.sh [instances, default 6] [per instance, default 17000]
#                       [hold seconds, default 100]
set -euo pipefail
cd "$(dirname "$0")/.."
instances="${1:-6}"
per="${2:-17000}"
hold="${3:-100}"
ulimit -n 20000

./deploy/install-build-deps.sh >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target goring goring-bench >/dev/null

. bench/lib.sh
out="$(results_dir scale)"
bench=build/tools/bench/goring-bench
secret="bench-$(date +%s)"


start_redis "$out/redis.log"

ports=(); gorings=()
for i in $(seq 1 "$instances"); do
  p=$(free_port)
  # Every client comes from 127.0.0.1: the per-IP and instance limits off.
  PORT="$p" ADMIN_PORT=0 SERVER_ID="scale-$i" REDIS_ADDR="127.0.0.1:$rport" JWT_SECRET="$secret" \
    MESSAGE_RATE=0 UPGRADE_RATE_PER_IP=0 MAX_CONNECTIONS_PER_IP=0 MAX_CONNECTIONS=0 \
    LOG_LEVEL=warn build/goring >"$out/goring-$i.log" 2>&1 &
  gorings+=($!); pids+=($!); ports+=("$p")
done
for p in "${ports[@]}"; do wait_port "$p"; done

started=$(date +%s)
idlers=()
for i in $(seq 0 $((instances - 1))); do
  "$bench" idle --url "ws://127.0.0.1:${ports[$i]}/ws" --secret "$secret" --threads 1 \
    --connections "$per" --concurrency 100 --hold "$hold" --settle 1 \
    --server-pid "${gorings[$i]}" >"$out/idle-$((i + 1)).json" 2>"$out/idle-$((i + 1)).txt" &
  idlers+=($!); pids+=($!)
done

# Every connected user owns one ws:user key; besides them Redis holds one
# heartbeat key per instance and nothing else while no call runs.
want=$((instances * per))
users=0
for _ in $(seq 1 180); do
  users=$(($(redis-cli -p "$rport" dbsize) - instances))
  [ "$users" -ge "$want" ] && break
  sleep 1
done
connected_after=$(($(date +%s) - started))
echo "users online: $users of $want after ${connected_after} s" | tee "$out/online.txt"

rss_kib=0
for g in "${gorings[@]}"; do rss_kib=$((rss_kib + $(awk '/VmRSS/ {print $2}' /proc/"$g"/status))); done
redis_mem=$(redis-cli -p "$rport" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')
echo "goring RSS: $((rss_kib / 1024)) MiB over $instances instances; Redis used_memory: $((redis_mem / 1048576)) MiB" | tee -a "$out/online.txt"

# Calls while everyone is connected: callers on instance 1, callees on 2.
"$bench" setup --url "ws://127.0.0.1:${ports[0]}/ws" --url2 "ws://127.0.0.1:${ports[1]}/ws" \
  --secret "$secret" --threads 1 --pairs 10 --duration 10 \
  --server-pid "${gorings[0]}" --server-pid "${gorings[1]}" >"$out/setup.json" 2>"$out/setup.txt" || true
cat "$out/setup.txt"

for p in "${idlers[@]}"; do wait "$p" || true; done
{
  echo "| part | summary |"
  echo "|---|---|"
  echo "| online | $(tr '\n' ' ' <"$out/online.txt") |"
  for i in $(seq 1 "$instances"); do echo "| idle-$i | $(tail -1 "$out/idle-$i.txt" | tr '|' '/') |"; done
  echo "| setup across 1 and 2 | $(tail -1 "$out/setup.txt" | tr '|' '/') |"
} >"$out/summary.md"
cat "$out/summary.md"
echo "results in $out"
