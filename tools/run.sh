#!/usr/bin/env bash
# Installs what goring needs (Debian 12), builds it, and runs the server.
# Without REDIS_ADDR it starts a private redis-server on 127.0.0.1:6380 for
# this run and stops it when goring exits. Any argument goes to goring
# (see: tools/run.sh --help).
set -euo pipefail
cd "$(dirname "$0")/.."

./deploy/install-build-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)" --target goring

redis_pid=""
cleanup() {
  if [ -n "$redis_pid" ]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

if [ -z "${REDIS_ADDR:-}" ]; then
  port="${GORING_REDIS_PORT:-6380}"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --loglevel warning &
  redis_pid=$!
  for _ in $(seq 1 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  export REDIS_ADDR="127.0.0.1:$port"
  echo "run.sh: started a private redis-server at $REDIS_ADDR (pid $redis_pid)"
fi

# goring refuses the default development secret outside development mode.
# A first run without JWT_SECRET is a development run: say so.
dev_args=()
if [ -z "${JWT_SECRET:-}" ] && [ -z "${GORING_ENV:-}" ]; then
  case " $* " in
    *" --jwt-secret"*) ;;
    *)
      dev_args=(--dev)
      echo "run.sh: JWT_SECRET is not set: running in development mode (--dev) with the" \
        "development secret; anyone can mint tokens. Set JWT_SECRET for anything else."
      ;;
  esac
fi

# The web client (web/) is served from this checkout unless WEB_ROOT (or
# --web-root) says otherwise.
if [ -z "${WEB_ROOT:-}" ] && [ -d web ]; then
  web_port="${PORT:-8080}"
  custom_root=""
  args=("$@")
  for i in "${!args[@]}"; do
    case "${args[$i]}" in
      --port=*) web_port="${args[$i]#--port=}" ;;
      --port) web_port="${args[$((i + 1))]:-$web_port}" ;;
      --web-root | --web-root=*) custom_root=1 ;;
    esac
  done
  if [ -z "$custom_root" ]; then
    export WEB_ROOT="$PWD/web"
    echo "run.sh: serving the web client from $WEB_ROOT: open http://localhost:$web_port/"
  fi
fi

# In the foreground and not exec'd, so the EXIT trap stops the private Redis
# after goring has drained (Ctrl-C reaches goring as SIGINT).
./build/goring ${dev_args[@]+"${dev_args[@]}"} "$@"
