# Shared by the bench/ scripts (sourced, not run): processes started here are
# remembered in `pids` and stopped by PID when the script exits (or sooner
# with `stop`); ports come free from the kernel; one private redis-server, or
# a private six-node Cluster, per run; results go to a folder git ignores
# unless BENCH_KEEP=1.

pids=()
# Last started first: the servers go before the redis-server they use.
cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap cleanup EXIT

# forget PID...: processes already waited for; the exit trap must not
# signal their PIDs, which the kernel may have reused.
forget() {
  local p q keep=()
  for q in "${pids[@]}"; do
    for p in "$@"; do [ "$q" = "$p" ] && continue 2; done
    keep+=("$q")
  done
  pids=("${keep[@]}")
}
# stop PID...: stops processes started here before the script ends.
stop() {
  local p
  for p in "$@"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  forget "$@"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
# wait_port PORT [TENTHS]: until something listens on PORT (10 s unless told).
wait_port() { for _ in $(seq 1 "${2:-100}"); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# wait_for TENTHS CMD...: until CMD succeeds.
wait_for() {
  local tenths=$1
  shift
  for _ in $(seq 1 "$tenths"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# start_redis [LOG]: a redis-server without persistence on a free port; sets
# rport.
start_redis() {
  rport=$(free_port)
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning \
    >"${1:-/dev/null}" 2>&1 &
  pids+=($!)
  wait_port "$rport"
}

# results_dir NAME: creates and prints the folder of this run's results:
# build/bench-results/NAME-<UTC time> (ignored by git, like all of build/),
# or bench/results/NAME-<UTC time> with BENCH_KEEP=1, for a run that
# bench/RESULTS.md will cite and that is then committed. An empty NAME
# gives just the time.
results_dir() {
  local base=build/bench-results
  if [ "${BENCH_KEEP:-0}" = 1 ]; then base=bench/results; fi
  local dir="$base/${1:+$1-}$(date -u +%Y%m%dT%H%M%SZ)"
  mkdir -p "$dir"
  echo "$dir"
}

# A Cluster node also listens on PORT+10000 (the cluster bus): both free.
cluster_port() {
  local p
  while :; do
    p=$(free_port)
    if [ "$p" -lt 55000 ] && ! (echo >/dev/tcp/127.0.0.1/$((p + 10000))) 2>/dev/null; then
      echo "$p"
      return
    fi
  done
}

# start_six_nodes LOGDIR DATADIR [redis-server ARGS...]: a private Redis
# Cluster on loopback, 3 masters and 3 replicas (cluster-node-timeout 1000,
# no persistence unless ARGS say otherwise), until all six say
# cluster_state:ok (30 s at most, else the script exits). Sets
# cluster_ports (all six), masters ("port:pid" each), pid_of_<port>,
# redis_env (REDIS_CLUSTER=all six) and adds the PIDs to redis_pids. Logs,
# cluster-create.txt and cluster-nodes.txt go to LOGDIR.
start_six_nodes() {
  local logs=$1 data=$2 p i ok seeds
  shift 2
  cluster_ports=()
  for i in 1 2 3 4 5 6; do
    p=$(cluster_port)
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "nodes-$p.conf" --cluster-node-timeout 1000 \
      --save "" --appendonly no --dir "$data" --loglevel warning "$@" \
      >"$logs/redis-$p.log" 2>&1 &
    pids+=($!); redis_pids+=($!); cluster_ports+=("$p")
    declare -g "pid_of_$p=$!"
  done
  for p in "${cluster_ports[@]}"; do wait_port "$p"; done
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${cluster_ports[@]}") \
    --cluster-replicas 1 --cluster-yes >"$logs/cluster-create.txt" 2>&1
  for _ in $(seq 1 300); do
    ok=0
    for p in "${cluster_ports[@]}"; do
      redis-cli -p "$p" cluster info | grep -q '^cluster_state:ok' && ok=$((ok + 1))
    done
    [ "$ok" = 6 ] && break
    sleep 0.1
  done
  if [ "$ok" != 6 ]; then
    echo "the Cluster did not reach cluster_state:ok on all six nodes in 30 s" >&2
    exit 1
  fi
  masters=()
  for p in "${cluster_ports[@]}"; do
    if redis-cli -p "$p" role | head -1 | grep -q '^master'; then
      local v="pid_of_$p"
      masters+=("$p:${!v}")
    fi
  done
  redis-cli -p "${cluster_ports[0]}" cluster nodes >"$logs/cluster-nodes.txt"
  seeds=$(printf '127.0.0.1:%s,' "${cluster_ports[@]}")
  redis_env=(REDIS_CLUSTER="${seeds%,}")
}
