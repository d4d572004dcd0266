#!/usr/bin/env bash
# Checks that the rooms of goring include each other one way only: each
# folder may include its own headers and those of the rooms listed for it
# below, nothing above it. CI runs it (ctest: layout_includes_run_one_way).
# main.cpp, tests/ and tools/ may include anything.
# Usage: tools/check-layout.sh [repository root]
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

# room: the rooms it may include besides itself, lowest floor first.
declare -A allowed=(
  [admission]=""
  [codec]=""
  [config]="admission"
  [auth]="config codec"
  [metrics]="codec"
  [redis]="config metrics"
  [outbound]="config metrics"
  [webhooks]="config metrics redis outbound"
  [net]="config admission codec auth metrics"
  [actors]="config admission codec auth metrics redis outbound net"
)

problems=0
for room in "${!allowed[@]}"; do
  [ -d "$room" ] || continue
  while IFS= read -r line; do
    file=${line%%:*}
    target=$(sed -E 's/^[^:]*:[0-9]+:#include "([^"/]+)\/.*/\1/' <<<"$line")
    [ "$target" = "$room" ] && continue
    case " ${allowed[$room]} " in
      *" $target "*) ;;
      *)
        if [ -n "${allowed[$target]+set}" ]; then
          echo "layout: $file includes $target/ (${line##*#include }), which $room/ may not include"
          problems=$((problems + 1))
        fi
        ;;
    esac
  done < <(grep -rnE '^#include "[^"/]+/' "$room" --include='*.hpp' --include='*.cpp' || true)
done

if [ "$problems" -ne 0 ]; then
  echo "layout: $problems include(s) run against the floors (see tools/check-layout.sh)"
  exit 1
fi
echo "layout: every include runs one way"
