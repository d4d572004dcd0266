#!/usr/bin/env bash
set -euo pipefail
cd /work/main
. bench/lib.sh
ulimit -n 20000
start_redis
secret=paced-$$
for bin in /work/wt/base/build/goring /work/main/build/goring /work/wt/base/build/goring /work/main/build/goring; do
  p=$(free_port)
  PORT=$p ADMIN_PORT=0 SERVER_ID=paced REDIS_ADDR=127.0.0.1:$rport JWT_SECRET=$secret MESSAGE_RATE=0 UPGRADE_RATE_PER_IP=0 MAX_CONNECTIONS_PER_IP=0 LOG_LEVEL=warn "$bin" >/dev/null 2>&1 &
  g=$!; pids+=($g); wait_port $p
  echo "$bin: $(build/tools/bench/goring-bench relay --url ws://127.0.0.1:$p/ws --calls 10 --duration 5 --rate 8000 --secret $secret --server-pid $g | grep -E '^relay' | cut -c1-170)"
  kill $g; wait $g 2>/dev/null || true
done
