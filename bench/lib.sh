# Shared by the bench/ scripts (sourced, not run): processes started here are
# remembered in `pids` and stopped by PID when the script exits; ports come
# free from the kernel; one private redis-server per run; results go to a
# folder git ignores unless BENCH_KEEP=1.

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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
# wait_port PORT [TENTHS]: until something listens on PORT (10 s unless told).
wait_port() { for _ in $(seq 1 "${2:-100}"); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

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
