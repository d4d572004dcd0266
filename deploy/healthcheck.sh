#!/usr/bin/env bash
# The container image's HEALTHCHECK: GET /health on goring's admin listener
# (it answers 200 while the process does). Plain bash (/dev/tcp), so the
# image needs no curl. Usage: goring-healthcheck [PORT]
# (default: $ADMIN_PORT, else 9090).
set -u
port="${1:-${ADMIN_PORT:-9090}}"
host=127.0.0.1
case "${ADMIN_ADDR:-127.0.0.1}" in
  0.0.0.0 | 127.0.0.1 | localhost | "") ;;
  "::" | "::1") host=::1 ;;
  *) host="$ADMIN_ADDR" ;;
esac
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET /health HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
read -r -t 3 _ status _ <&3 || exit 1
[ "$status" = 200 ]
