#!/usr/bin/env bash
# Counts the instructions goring runs per relayed message or per call cycle
# with callgrind: stable whatever else loads the machine, unlike CPU time.
# goring runs under `valgrind --tool=callgrind --instr-atstart=no`; while
# goring-bench drives it, instrumentation is on for SECONDS
# (`callgrind_control -i on/off`). Instructions (user space, all threads)
# are divided by the calls of parse_client_frame in that window: one per
# relayed message (relay), three per call cycle (setup: call.start,
# call.accept, call.end). Also counted per unit: calls to malloc.
# Usage: bench/callgrind.sh relay|relay-2|setup [seconds, default 10]
#   relay-2: two instances, the first under callgrind; its clients send
#   half the messages and it delivers the other half.
#   idle: 1,000 idle connections with IDLE_TIMEOUT=4s (keep-alive pings
#   every 2 s): instructions per ping.
# Output: build/bench-results/callgrind-WHAT-TIME/ (callgrind.out,
# annotate.txt, summary.txt); bench/results/ with BENCH_KEEP=1 (see
# bench/lib.sh). Every process started here is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-relay}"
secs="${2:-10}"
cmake --build build -j2 --target goring goring-bench >/dev/null

. bench/lib.sh
out="$(results_dir "callgrind-$what")"
bench=build/tools/bench/goring-bench
secret="callgrind-$(date +%s)"


start_redis

extra=()
if [ "$what" = idle ]; then extra=(IDLE_TIMEOUT=4s); fi
env_of() { # id port
  echo "${extra[@]}" PORT="$2" ADMIN_PORT=0 SERVER_ID="$1" REDIS_ADDR="127.0.0.1:$rport" JWT_SECRET="$secret" \
    MESSAGE_RATE=0 UPGRADE_RATE_PER_IP=0 MAX_CONNECTIONS_PER_IP=0 MAX_CONNECTIONS=0 LOG_LEVEL=warn
}
p1=$(free_port)
env $(env_of cg-1 "$p1") valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$out/callgrind.out" build/goring >"$out/goring.log" 2>&1 &
g1=$!
pids+=("$g1")
wait_port "$p1" 600
args=(--url "ws://127.0.0.1:$p1/ws")
if [ "$what" = relay-2 ]; then
  p2=$(free_port)
  env $(env_of cg-2 "$p2") build/goring >"$out/goring-2.log" 2>&1 &
  pids+=($!)
  wait_port "$p2" 600
  args+=(--url2 "ws://127.0.0.1:$p2/ws")
fi
case "$what" in
  relay | relay-2) args=(relay "${args[@]}" --calls 2) ;;
  setup) args=(setup "${args[@]}" --pairs 10) ;;
  idle) args=(idle "${args[@]}" --connections 1000 --settle 1 --hold $((secs + 6))) ;;
  *) echo "unknown scenario $what" >&2; exit 2 ;;
esac
if [ "$what" != idle ]; then args+=(--duration $((secs + 8))); fi
args+=(--secret "$secret")
echo "$bench ${args[*]}" >"$out/commands.txt"
"$bench" "${args[@]}" >"$out/bench.json" 2>"$out/bench.txt" &
bpid=$!
pids+=("$bpid")
sleep 4
callgrind_control -i on "$g1" >/dev/null
sleep "$secs"
callgrind_control -i off "$g1" >/dev/null
wait "$bpid" || true
kill -TERM "$g1"
wait "$g1" || true
(callgrind_annotate --inclusive=yes "$out/callgrind.out" 2>/dev/null || true) | head -80 >"$out/annotate.txt" || true

python3 - "$out/callgrind.out" "$what" <<'EOF' | tee "$out/summary.txt"
import re, sys
path, what = sys.argv[1], sys.argv[2]
names, calls, total = {}, {}, 0
cfn = None
def name_of(spec):
    m = re.match(r"\((\d+)\)(?: (.*))?", spec)
    if not m:
        return spec
    if m.group(2):
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), "?")
with open(path, errors="replace") as f:
    for line in f:
        if line.startswith("fn="):
            name_of(line[3:].strip())
        elif line.startswith("cfn="):
            cfn = name_of(line[4:].strip())
        elif line.startswith("calls=") and cfn is not None:
            calls[cfn] = calls.get(cfn, 0) + int(line[6:].split()[0])
        elif line.startswith("summary:") or line.startswith("totals:"):
            total = max(total, int(line.split()[1]))
def count(pattern):
    return sum(n for name, n in calls.items() if re.search(pattern, name))
frames = count(r"goring::protocol::parse_client_frame\(")
units = frames / 3 if what == "setup" else frames
unit = "call cycle" if what == "setup" else "relayed message"
if what == "idle":
    # Beast's own keep-alive (before), or goring's (its ping's
    # completion handler in websocket_session::on_keepalive).
    frames = count(r"idle_ping_op<.*>::idle_ping_op\(") + count(
        r"stable_async_base<goring::websocket_session::on_keepalive.*::before_invoke_hook\(\)")
    units, unit = frames, "keep-alive ping"
print(f"instructions: {total}")
print(f"parse_client_frame calls: {frames}")
if units:
    print(f"instructions per {unit}: {total / units:,.0f}")
    print(f"malloc calls per {unit}: {count(r'^malloc$') / units:.2f}")
    print(f"operator new calls per {unit}: {count(r'^operator new') / units:.2f}")
EOF
echo "results in $out"
