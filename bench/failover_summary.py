"""summary.md of a failover bench (bench/failover.sh, bench/cluster-failover.sh)
from its runs.jsonl, the goring logs and, for a Cluster, each run's
leftovers.txt and victim.txt.
Usage: python3 bench/failover_summary.py OUT sentinel|cluster"""
import json
import statistics
import sys
from datetime import datetime

out, mode = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(f"{out}/runs.jsonl") if l.strip()]


def ts(line):
    return datetime.strptime(line["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def goring_share(run, marker):
    """From the caller's instance's log: the first line holding `marker` (goring
    learns of the new master) to the first call that rang after it, in ms."""
    seen = None
    for raw in open(f"{out}/run-{run}/goring-east.log"):
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if seen is None and marker in line.get("msg", ""):
            seen = ts(line)
        elif seen is not None and line.get("component") == "call_actor" and " rings " in line.get("msg", ""):
            return round((ts(line) - seen) * 1000)
    return None


def leftovers(run):
    """What bench/cluster-failover.sh found once every client had gone: left
    behind are every call:user key, every session not over and every presence
    key of the bench's users (no call is live then); sessions that are over
    wait for their TTL and are only counted."""
    left, over = [], {}
    for raw in open(f"{out}/run-{run}/leftovers.txt"):
        f = raw.split()
        if f[0] == "session" and f[2] in ("ended", "rejected"):
            over[f[2]] = over.get(f[2], 0) + 1
        else:
            left.append(" ".join(f))
    return left, over


def col(k):
    v = [r[k] for r in rows if r.get(k) is not None]
    return f"{min(v)} / {statistics.median(v):g} / {max(v)}" if v else "n/a"


def tally(d):
    return ", ".join(f"{n} {k}" for k, n in sorted(d.items())) or "none"


if mode == "sentinel":
    measures = [("kill_to_promotion_ms", "kill -9 to the replica answering ROLE master (ms)"),
                ("kill_to_first_call_ms", "kill -9 to the first call that rang (ms)"),
                ("promotion_to_first_call_ms", "promotion to the first call that rang (ms)"),
                ("share_ms", "goring's share: +switch-master heard to the first call placed (ms)"),
                ("failed_calls", "calls that failed in between")]
    marker, closed_label = "+switch-master", "connections closed by goring"
else:
    measures = [("kill_to_cluster_fail_ms", "kill -9 to a surviving node saying cluster_state:fail (ms)"),
                ("kill_to_promotion_ms", "kill -9 to the replica answering ROLE master (ms)"),
                ("kill_to_cluster_ok_ms", "kill -9 to cluster_state:ok on every surviving node (ms)"),
                ("kill_to_first_call_ms", "kill -9 to the first call that rang (ms)"),
                ("cluster_ok_to_first_call_ms", "cluster_state:ok to the first call that rang (ms)"),
                ("share_ms", "goring's share: slot map without the dead master to the first call placed (ms)"),
                ("ok_to_both_ready_ms", "cluster_state:ok to both instances' /ready answering 200 again (ms)"),
                ("failed_calls", "calls that failed in between")]
    marker, closed_label = "serves no slots now", "connections closed by goring (the looping pair)"
for r in rows:
    r["share_ms"] = goring_share(r["run"], marker)
    if mode == "cluster":
        # Both instances ready: the later of the two (None if one never was).
        ready = r.get("cluster_ok_to_ready_ms") or [None]
        r["ok_to_both_ready_ms"] = None if None in ready else max(ready)

with open(f"{out}/summary.md", "w") as f:
    f.write(f"{len(rows)} runs, min / median / max\n\n| measure | value |\n|---|---|\n")
    for k, label in measures:
        f.write(f"| {label} | {col(k)} |\n")
    f.write(f"| {closed_label} | {sum(bool(r['connections_closed']) for r in rows)} of {len(rows)} runs |\n")
    if mode == "cluster":
        f.write("\n| run | first seed killed | in sync | fail / promoted / ok / rang (ms after kill) | ok to rang "
                "| /ready again after ok (east, west) | failed calls | calls in progress (keys on the dead master: outcome) | left behind "
                "| sessions over (TTL) |\n|---|---|---|---|---|---|---|---|---|---|\n")
        notes = []
        for r in rows:
            victim, first_seed, _ = open(f"{out}/run-{r['run']}/victim.txt").read().split()
            left, over = leftovers(r["run"])
            calls = {}
            for c in r["in_progress"]:
                key = f"{c['on']}: {c['outcome']}"
                calls[key] = calls.get(key, 0) + 1
                if c["outcome"] != "went on" or c.get("hang_up") != "ended_by_user" or c["errors"]:
                    notes.append(f"run {r['run']}, a call with {c['on']} on the dead master: {json.dumps(c)}")
            notes += [f"run {r['run']}, left behind: {l}" for l in left]
            f.write(f"| {r['run']} | {'yes' if victim == first_seed else 'no'} "
                    f"| {'yes' if r['replica_in_sync_at_kill'] else 'NO'} "
                    f"| {r['kill_to_cluster_fail_ms']} / {r['kill_to_promotion_ms']} / {r['kill_to_cluster_ok_ms']}"
                    f" / {r['kill_to_first_call_ms']} | {r['cluster_ok_to_first_call_ms']} "
                    f"| {', '.join(str(v) for v in r.get('cluster_ok_to_ready_ms', []))} "
                    f"| {r['failed_calls']} ({tally(r['failed_with'])}) | {tally(calls)} | {len(left)} "
                    f"| {tally(over)} |\n")
        f.write("".join(f"\n{n}\n" for n in notes))
print(open(f"{out}/summary.md").read())
