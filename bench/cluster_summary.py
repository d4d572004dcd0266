#!/usr/bin/env python3
"""Summary of one bench/cluster.sh run: a markdown table of the measured
figures, the cluster/single ratios and the capacity estimate derived from
them. Usage: cluster_summary.py RESULTS_DIR"""
import glob
import json
import os
import sys

out = sys.argv[1]
tick_ms = 1000.0 / os.sysconf("SC_CLK_TCK")

# The presence refresh period at the defaults (config/config.cpp):
# PRESENCE_TTL 90 s, refreshed every PRESENCE_TTL/3.
REFRESH_PERIOD_S = 30.0
# An assumption for the fleet: calls placed per connected user per hour in
# the busiest hour.
CALLS_PER_USER_HOUR = 1.0
# A master is planned to run at this share of its one core.
MASTER_BUDGET = 0.5


def snap(path):
    rows = {}
    with open(path) as f:
        for line in f:
            port, ticks, cmds, evalsha = line.split()
            rows[port] = (float(ticks), int(cmds), int(evalsha))
    return rows


def masters(name):
    """Per master: (CPU ms, commands, EVALSHA) over the scenario."""
    before, after = snap(f"{out}/{name}.before"), snap(f"{out}/{name}.after")
    return {p: ((after[p][0] - before[p][0]) * tick_ms, after[p][1] - before[p][1],
                after[p][2] - before[p][2]) for p in after}


def bench(name):
    """Summed over the goring-bench processes: (rate/s, done, failed)."""
    rate = done = failed = seconds = 0
    for path in sorted(glob.glob(f"{out}/{name}-[0-9].json")):
        try:
            j = json.load(open(path))
        except (OSError, ValueError):
            failed += 1
            continue
        if "cycles" in j:
            rate += j["cycles"]["per_s"]
            done += j["cycles"]["completed"]
            failed += j["cycles"]["failed"]
            seconds = max(seconds, j["cycles"]["seconds"])
        else:
            rate += j["messages"]["per_s"]
            done += j["messages"]["relayed"]
            failed += j["calls"]["failed"] + j["calls"]["lost_while_relaying"]
            seconds = max(seconds, j["messages"]["seconds"])
    return rate, done, failed, seconds


def spread(m):
    c = [v[1] for v in m.values()]
    return max(c) / min(c) if min(c) > 0 else float("inf")


def fmt(x, digits=0):
    return f"{x:,.{digits}f}"


rows = {}
for kind in ("relay", "setup"):
    for n in (2, 4):
        for mode in ("single", "cluster"):
            name = f"{kind}-{mode}-{n}"
            if not os.path.exists(f"{out}/{name}.after"):
                continue
            rate, done, failed, seconds = bench(name)
            m = masters(name)
            cpu = sum(v[0] for v in m.values())
            cmds = sum(v[1] for v in m.values())
            evalsha = sum(v[2] for v in m.values())
            rows[name] = dict(rate=rate, done=done, failed=failed, cpu=cpu, cmds=cmds,
                              evalsha=evalsha, seconds=seconds, masters=len(m), spread=spread(m),
                              cpu_max=max(v[0] for v in m.values()))

print("| scenario | instances | single | cluster | cluster/single |")
print("|---|---|---|---|---|")


def line(label, n, f, digits=0, kind=None):
    s, c = rows.get(f"{kind}-single-{n}"), rows.get(f"{kind}-cluster-{n}")
    if not s or not c:
        return
    a, b = f(s), f(c)
    ratio = f"{b / a:.2f}" if a else "-"
    print(f"| {label} | {n} | {fmt(a, digits)} | {fmt(b, digits)} | {ratio} |")


for n in (2, 4):
    line("relayed messages/s", n, lambda r: r["rate"], kind="relay")
    line("relay failures", n, lambda r: r["failed"], kind="relay")
    line("Redis commands per 1,000 messages", n,
         lambda r: 1000 * r["cmds"] / r["done"] if r["done"] else 0, 1, kind="relay")
for n in (2, 4):
    line("call cycles/s", n, lambda r: r["rate"], kind="setup")
    line("failed cycles", n, lambda r: r["failed"], kind="setup")
    line("Redis CPU ms per 1,000 cycles, all masters", n,
         lambda r: 1000 * r["cpu"] / r["done"] if r["done"] else 0, 1, kind="setup")
    line("Redis CPU ms per 1,000 cycles, busiest master", n,
         lambda r: 1000 * r["cpu_max"] / r["done"] if r["done"] else 0, 1, kind="setup")
    line("Redis commands per cycle (scripts' inner ones included)", n,
         lambda r: r["cmds"] / r["done"] if r["done"] else 0, 2, kind="setup")
    line("EVALSHA per cycle", n, lambda r: r["evalsha"] / r["done"] if r["done"] else 0, 2,
         kind="setup")
    line("Redis commands/s, all masters", n,
         lambda r: r["cmds"] / r["seconds"] if r["seconds"] else 0, kind="setup")
    line("commands max/min over the masters (target <= 1.3)", n, lambda r: r["spread"], 2,
         kind="setup")
for n in (2, 4):
    line("relay: commands max/min over the masters", n, lambda r: r["spread"], 2, kind="relay")

# The presence refresh, measured with PRESENCE_TTL=3s (one refresh a second).
idle = {}
for mode in ("single", "cluster"):
    if not os.path.exists(f"{out}/idle-{mode}.after"):
        continue
    users, seconds, period = (float(x) for x in open(f"{out}/idle-{mode}.info").read().split())
    m = masters(f"idle-{mode}")
    refreshes = users * seconds / period
    idle[mode] = dict(cpu_us=1000 * sum(v[0] for v in m.values()) / refreshes,
                      cmds=sum(v[1] for v in m.values()) / refreshes,
                      evalsha=sum(v[2] for v in m.values()) / refreshes, spread=spread(m))
if len(idle) == 2:
    s, c = idle["single"], idle["cluster"]
    for label, key, d in (("Redis CPU µs per user refresh, all masters", "cpu_us", 2),
                          ("commands per user refresh", "cmds", 3),
                          ("EVALSHA per user refresh", "evalsha", 3),
                          ("idle: commands max/min over the masters", "spread", 2)):
        ratio = f"{c[key] / s[key]:.2f}" if s[key] else "-"
        print(f"| {label} | 2 | {fmt(s[key], d)} | {fmt(c[key], d)} | {ratio} |")

# Capacity of one master, from the CPU each operation cost here.
print()
print("Capacity (one master = one Redis core, planned at "
      f"{int(MASTER_BUDGET * 100)} % of it; refresh every {int(REFRESH_PERIOD_S)} s; "
      f"{CALLS_PER_USER_HOUR:g} call per user in the busiest hour):")
print()
print("| layout | Redis CPU µs per user-second | per call cycle (µs) | users per master, "
      "idle | calls/s per master | masters for 1 M / 10 M / 100 M users |")
print("|---|---|---|---|---|---|")
for mode in ("single", "cluster"):
    cyc = rows.get(f"setup-{mode}-4") or rows.get(f"setup-{mode}-2")
    if mode not in idle or not cyc or not cyc["done"]:
        continue
    user_s = idle[mode]["cpu_us"] / REFRESH_PERIOD_S
    cycle_us = 1000 * cyc["cpu"] / cyc["done"]
    budget_us = MASTER_BUDGET * 1e6
    per_user = user_s + CALLS_PER_USER_HOUR / 3600.0 * cycle_us
    need = []
    for users in (1e6, 1e7, 1e8):
        n = users * per_user / budget_us
        # A Cluster has three masters at least.
        need.append(max(3 if mode == "cluster" else 1, int(-(-n // 1))))
    print(f"| {mode} | {user_s:.3f} | {cycle_us:.0f} | {fmt(budget_us / user_s)} | "
          f"{fmt(budget_us / cycle_us)} | {' / '.join(str(x) for x in need)} |")
