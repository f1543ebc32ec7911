#!/usr/bin/env python3
"""ward beside its peers (supervisord, PM2, runit, s6) on the same
workloads: idle cost, crash loop, log flood, start-up, and scale.

Run through bench/run, which installs the peers, builds ward and the C
helpers, and passes the paths in. Each workload runs --reps times (the flood
--flood-reps, scale --scale-reps); the table shows medians, with the range
when the repetitions disagree by more than a quarter. Every process started
here is ended here, by pid, even when a run fails or is interrupted.
"""

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
from pathlib import Path

from harness import REGISTRY, BenchError, loadavg
from supervisors import PEERS, SUPERVISORS
from workloads import Bench

WORKLOADS = ("idle", "crash", "flood", "startup", "scale")
COLUMNS = ("ward", *PEERS)
NAMES = {"ward": "ward", "supervisord": "supervisord", "pm2": "PM2", "runit": "runit", "s6": "s6"}

# Each supervisor's flood variants: (variant, row). Rows: "stamped" (every
# line timestamped by the supervisor's logger), "raw" (stored as written),
# "json".
FLOOD = {
    "ward": [("text", "stamped"), ("plain", "raw"), ("json", "json")],
    "supervisord": [("raw", "raw")],
    "pm2": [("time", "stamped"), ("plain", "raw")],
    "runit": [("svlogd", "stamped")],
    "s6": [("s6-log", "stamped")],
}

# What a peer cannot do, said once under the table.
CANNOT = {
    ("supervisord", "stamped"): "supervisord stores a program's lines as written: it has no "
    "option to timestamp them",
    ("runit", "json"): "svlogd and s6-log write text lines only (no JSON)",
    ("s6", "json"): "svlogd and s6-log write text lines only (no JSON)",
    ("supervisord", "json"): "supervisord writes text only",
    ("pm2", "json"): "PM2's log_type json writes one object per chunk read from the pipe, "
    "not per line, so lines cannot be checked one by one",
    ("s6", "status"): "s6 has no one command for the state of every service (s6-svstat reads "
    "one service directory per call)",
}
MARKS = {}


def mark(key):
    """A footnote letter for CANNOT[key]."""
    text = CANNOT[key]
    if text not in MARKS:
        MARKS[text] = "abcdefghijklmnop"[len(MARKS)]
    return f"n/a ({MARKS[text]})"


def values(reps, key):
    return [r[key] for r in reps if r.get(key) is not None]


def cell(reps, key, spec):
    """The median; with the range when the repetitions disagree."""
    vals = values(reps, key)
    if not vals:
        return "-"
    med = statistics.median(vals)
    text = spec.format(med)
    lo, hi = min(vals), max(vals)
    if len(vals) > 1 and med and (hi - lo) / abs(med) > 0.25:
        text += f" ({spec.format(lo).split()[0]}–{spec.format(hi).split()[0]})"
    return text


def median(reps, key):
    vals = values(reps, key)
    return statistics.median(vals) if vals else None


def verdict(value, limit, lower_is_better=True):
    if value is None:
        return ""
    ok = value <= limit if lower_is_better else value >= limit
    return ": met" if ok else ": MISSED"


class Report:
    def __init__(self, columns):
        self.columns = columns
        self.head = ("workload", "metric", *(NAMES[c] for c in columns), "baseline", "ward target")
        self.rows = []
        self.runs = []
        self.notes = []
        self.legend = []

    def row(self, workload, metric, cells, baseline="", target=""):
        self.rows.append(
            (workload, metric, *(cells.get(c, "-") for c in self.columns), baseline, target)
        )

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    def print(self, out, meta):
        # Markdown: a `|` inside a cell (`| cat > file`) must be escaped.
        rows = [tuple(str(c).replace("|", "\\|") for c in r) for r in (self.head, *self.rows)]
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(self.head))]

        def line(cells):
            return (
                "| "
                + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True))
                + " |"
            )

        print(line(rows[0]), file=out)
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=out)
        for r in rows[1:]:
            print(line(r), file=out)
        for text, letter in MARKS.items():
            print(f"({letter}) {text}", file=out)
        for text in self.legend:
            print(text, file=out)
        print("\nEvery repetition (in run order):", file=out)
        for r in self.runs:
            print(f"  {r}", file=out)
        print(file=out)
        for k, v in meta.items():
            print(f"{k}: {v}", file=out)
        for n in self.notes:
            print(f"note: {n}", file=out)


def run_one(report, label, fn):
    """One repetition; a failure is noted, not fatal."""
    load = loadavg()
    try:
        r = fn()
    except (BenchError, subprocess.SubprocessError, OSError) as e:
        report.note(f"{label} failed: {e}")
        return None
    if isinstance(r, dict) and all(isinstance(v, dict) for v in r.values()):
        shown = {k: rounded(v) for k, v in r.items()}
    else:
        shown = rounded(r)
    report.runs.append(f"{label} (load {load}): {shown}")
    print(f"  {label} done", file=sys.stderr, flush=True)
    return r


def rounded(r):
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}


def idle(bench, report, cols):
    a = bench.args
    print(f"idle: {a.programs} sleeping programs each, {a.idle_seconds:g} s", file=sys.stderr)
    res = {c: [] for c in cols}
    for rep in range(a.reps):
        r = run_one(
            report, f"idle #{rep}", lambda rep=rep: bench.idle([SUPERVISORS[c] for c in cols], rep)
        )
        for c, figures in (r or {}).items():
            res[c].append(figures)
    secs = f"{a.idle_seconds:g} s"
    ward_pss = median(res.get("ward", []), "pss_mib")
    report.row(
        "1 idle",
        f"PSS of the supervisor's own processes ({a.programs} programs)",
        {c: cell(res[c], "pss_mib", "{:.2f} MiB") for c in cols},
        "",
        "≤ 8 MiB" + verdict(ward_pss, 8),
    )
    report.row(
        "",
        "its processes / threads",
        {
            c: f"{median(res[c], 'processes') or 0:.0f} / {median(res[c], 'threads') or 0:.0f}"
            for c in cols
            if res[c]
        },
    )
    cpu_limit = a.idle_seconds / 30
    report.row(
        "",
        f"CPU over {secs} idle",
        {c: cell(res[c], "cpu_ms", "{:.2f} ms") for c in cols},
        "",
        f"≤ {cpu_limit:.2g} ms" + verdict(median(res.get("ward", []), "cpu_ms"), cpu_limit),
    )
    report.row(
        "",
        f"wake-ups (context switches) over {secs}",
        {c: cell(res[c], "wakeups", "{:.0f}") for c in cols},
        "",
        "none" + verdict(median(res.get("ward", []), "wakeups"), 0),
    )
    for c in cols:
        for r in res[c]:
            if r["woke"] and c == "ward":
                report.note(f"idle ward: threads that woke: {r['woke']}")
    return res


def crash(bench, report, cols):
    a = bench.args
    print(f"crash loop: {a.crash_seconds:g} s each", file=sys.stderr)
    res = {c: [] for c in cols}
    base = []
    for rep in range(a.reps):
        for c in cols:
            r = run_one(
                report, f"crash {c} #{rep}", lambda c=c, rep=rep: bench.crash(SUPERVISORS[c], rep)
            )
            if r:
                res[c].append(r)
        r = run_one(report, f"crash respawn #{rep}", lambda rep=rep: bench.crash_baseline(rep))
        if r:
            base.append(r)
    gap = median(res.get("ward", []), "gap_median_ms")
    report.row(
        "2 crash loop",
        "restarts/s",
        {c: cell(res[c], "per_s", "{:.1f}") for c in cols},
        "bare fork/exec/wait loop " + cell(base, "per_s", "{:.0f}"),
    )
    report.row(
        "",
        "gap exit → next start, median",
        {c: cell(res[c], "gap_median_ms", "{:.2f} ms") for c in cols},
        cell(base, "gap_median_ms", "{:.2f} ms"),
        "≤ 2 ms" + verdict(gap, 2),
    )
    report.row(
        "",
        "gap, p99",
        {c: cell(res[c], "gap_p99_ms", "{:.2f} ms") for c in cols},
        cell(base, "gap_p99_ms", "{:.2f} ms"),
    )
    report.row(
        "",
        "supervisor CPU per restart",
        {c: cell(res[c], "cpu_per_restart_ms", "{:.2f} ms") for c in cols},
    )
    return {"supervisors": res, "respawn": base}


def flood(bench, report, cols):
    a = bench.args
    gib = a.flood_lines * 100 / 2**30
    print(f"log flood: {a.flood_lines} lines ({gib:.2f} GiB)", file=sys.stderr)
    res = {(c, v): [] for c in cols for v, _ in FLOOD[c]}
    base = {"null": [], "file": [], "cat": []}
    shells = {"null": "> /dev/null", "file": "> {out}", "cat": "| cat > {out}"}
    for rep in range(a.flood_reps):
        for name, redirect in shells.items():
            r = run_one(
                report,
                f"flood `{redirect.replace('{out}', 'file')}` #{rep}",
                lambda n=name, d=redirect, rep=rep: bench.flood_shell(
                    rep, n, d, verify=n != "null"
                ),
            )
            if r:
                base[name].append(r)
        for c in cols:
            for variant, _ in FLOOD[c]:
                r = run_one(
                    report,
                    f"flood {c} {variant} #{rep}",
                    lambda c=c, v=variant, rep=rep: bench.flood(SUPERVISORS[c], v, rep),
                )
                if r:
                    res[(c, variant)].append(r)

    def by_row(row, key, spec):
        out = {}
        for c in cols:
            hits = [v for v, rw in FLOOD[c] if rw == row]
            if hits:
                out[c] = cell(res[(c, hits[0])], key, spec)
            elif (c, row) in CANNOT:
                out[c] = mark((c, row))
        return out

    cat = median(base["cat"], "mb_s")
    text = median(res.get(("ward", "text"), []), "mb_s")
    ratio = text / cat if text and cat else None
    report.row(
        "3 log flood",
        f"MB/s, {gib:.2f} GiB, every line timestamped",
        by_row("stamped", "mb_s", "{:.0f}"),
        f"`| cat > file` {cell(base['cat'], 'mb_s', '{:.0f}')}",
        "≥ 0.8 × `| cat`"
        + (f": {ratio:.2f}×" + verdict(ratio, 0.8, False).replace(": ", ", ") if ratio else ""),
    )
    report.row(
        "",
        "MB/s, lines stored as written",
        by_row("raw", "mb_s", "{:.0f}"),
        f"`> file` {cell(base['file'], 'mb_s', '{:.0f}')}, "
        f"`> /dev/null` {cell(base['null'], 'mb_s', '{:.0f}')}",
    )
    report.row("", "MB/s, JSON lines", by_row("json", "mb_s", "{:.0f}"))
    report.legend.append(
        "Flood, timestamped: ward's text format; PM2 `time: true`; runit `svlogd -tt`; "
        "s6 `s6-log T`. As written: ward `timestamps = false`; supervisord; PM2's default."
    )
    bad = {}
    for c in cols:
        runs = [r for v, _ in FLOOD[c] for r in res[(c, v)]]
        if not runs:
            continue
        sums = [sum(r[k] for r in runs) for k in ("lost", "malformed", "dup")]
        bad[c] = " / ".join(str(s) for s in sums) + f" ({len(runs)} runs)"
        if any(sums) and len(FLOOD[c]) > 1:
            # Say which variant lost them.
            parts = []
            for v, _ in FLOOD[c]:
                vs = [sum(r[k] for r in res[(c, v)]) for k in ("lost", "malformed", "dup")]
                parts.append(f"{v} " + " / ".join(str(s) for s in vs))
            bad[c] = ", ".join(parts) + f" ({len(runs)} runs)"
    report.row("", "lines lost / malformed / out of order, all runs", bad, "", "0")
    report.row(
        "",
        "supervisor CPU for the flood, timestamped / as written",
        {
            c: " / ".join(cell(res[(c, v)], "cpu_s", "{:.2f}") for v, _ in FLOOD[c] if v != "json")
            + " s"
            for c in cols
        },
    )
    report.row(
        "",
        "supervisor's peak RSS, timestamped",
        {c: cell(res[(c, FLOOD[c][0][0])], "peak_rss_mib", "{:.0f} MiB") for c in cols},
    )
    report.row(
        "",
        "stored, timestamped",
        {c: cell(res[(c, FLOOD[c][0][0])], "stored_mib", "{:.0f} MiB") for c in cols},
        f"{a.flood_lines * 100 / 2**20:.0f} MiB written",
    )
    return {"supervisors": {f"{c} {v}": r for (c, v), r in res.items()}, "shell": base}


def startup(bench, report, cols):
    n = bench.args.programs
    print(f"start-up: {n} programs", file=sys.stderr)
    res = {c: [] for c in cols}
    for rep in range(bench.args.reps):
        for c in cols:
            r = run_one(
                report,
                f"startup {c} #{rep}",
                lambda c=c, rep=rep: bench.startup(SUPERVISORS[c], rep),
            )
            if r:
                res[c].append(r)
    last = median(res.get("ward", []), "to_last_ms")
    report.row(
        "4 start-up",
        f"launch → {n}th program started",
        {c: cell(res[c], "to_last_ms", "{:.0f} ms") for c in cols},
        "",
        "≤ 100 ms" + verdict(last, 100),
    )
    report.row(
        "",
        "launch → 1st program started",
        {c: cell(res[c], "to_first_ms", "{:.0f} ms") for c in cols},
    )
    report.row(
        "",
        "launch command returned",
        {c: cell(res[c], "returned_ms", "{:.0f} ms") for c in cols if c in ("ward", "pm2")},
    )
    return res


def scale(bench, report, cols):
    a = bench.args
    n = a.scale_programs
    cols = [c for c in cols if c == "ward" or c in a.scale_peers.split(",")]
    print(f"scale: {n} programs ({', '.join(cols)})", file=sys.stderr)
    res = {c: [] for c in cols}
    for rep in range(a.scale_reps):
        for c in cols:
            r = run_one(
                report,
                f"scale {c} #{rep}",
                lambda c=c, rep=rep: bench.startup(SUPERVISORS[c], rep, n=n, scale=True),
            )
            if r:
                res[c].append(r)
    ward = res.get("ward", [])
    report.row(
        "5 scale",
        f"launch → {n}th program started",
        {c: cell(res[c], "to_last_ms", "{:.0f} ms") for c in cols},
        "",
        "≤ 1 s" + verdict(median(ward, "to_last_ms"), 1000),
    )
    status = {c: cell(res[c], "status_median_ms", "{:.0f} ms") for c in cols}
    if "s6" in cols:
        status["s6"] = mark(("s6", "status"))
    report.row(
        "",
        f"status of all {n}, median of {a.status_calls} calls",
        status,
        "",
        "≤ 50 ms" + verdict(median(ward, "status_median_ms"), 50),
    )
    report.row(
        "",
        f"PSS of the supervisor's own processes ({n} programs)",
        {c: cell(res[c], "pss_mib", "{:.1f} MiB") for c in cols},
        "",
        "≤ 30 MiB" + verdict(median(ward, "pss_mib"), 30),
    )
    report.row(
        "",
        "its open file descriptors",
        {c: cell(res[c], "fds", "{:.0f}") for c in cols},
        f"`ulimit -n` {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}",
    )
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--work", required=True, help="a scratch directory")
    p.add_argument("--bin-dir", required=True, help="where the C helpers are")
    p.add_argument("--ward", required=True)
    p.add_argument("--testee", required=True)
    p.add_argument(
        "--tool",
        action="append",
        type=lambda s: tuple(s.split("=", 1)),
        help="NAME=PATH of a peer's program (supervisord, pm2, runsvdir, s6-svscan, ...)",
    )
    p.add_argument("--peers", default=",".join(PEERS), help="comma-separated peers to run")
    p.add_argument("--peer-versions", default="", help="what was installed, for the report")
    p.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    p.add_argument("--reps", type=int, default=3, help="repetitions of idle, crash, start-up")
    p.add_argument("--flood-reps", type=int, default=3)
    # Each repetition starts 1000 programs under every supervisor (PM2 and
    # supervisord take 10 s or more): two keep a full run near 25 minutes.
    p.add_argument("--scale-reps", type=int, default=2)
    p.add_argument("--programs", type=int, default=100)
    p.add_argument("--idle-seconds", type=float, default=30)
    # Past ward's one-shot timers of a fresh start (min_uptime 1 s, and the
    # backoff streak's reset_after, 30 s, one per instance).
    p.add_argument("--settle", type=float, default=35, help="wait before the idle window")
    p.add_argument("--crash-seconds", type=float, default=10)
    p.add_argument("--flood-lines", type=int, default=10737418)
    p.add_argument("--flood-timeout", type=float, default=600)
    p.add_argument("--startup-timeout", type=float, default=120)
    p.add_argument("--scale-programs", type=int, default=1000)
    p.add_argument("--scale-peers", default=",".join(PEERS), help="peers run at scale")
    p.add_argument("--status-calls", type=int, default=20)
    p.add_argument("--json", help="also write every figure to this file")
    p.add_argument("--revision", default="unknown", help="what was built (git describe)")
    args = p.parse_args()
    only = args.only.split(",")
    unknown = set(only) - set(WORKLOADS)
    if unknown:
        p.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    peers = [x for x in args.peers.split(",") if x]
    unknown = set(peers) - set(PEERS)
    if unknown:
        p.error(f"unknown peer(s): {', '.join(sorted(unknown))} (known: {', '.join(PEERS)})")
    cols = ["ward", *(c for c in PEERS if c in peers)]

    report = Report(cols)
    bench = Bench(args, report.note)
    meta = {
        "machine": f"{os.cpu_count()} CPUs, "
        f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB, "
        f"Linux {os.uname().release}",
        "ward": args.revision,
        "peers": args.peer_versions,
        "load average at start": loadavg(),
        "repetitions": f"{args.reps} (flood {args.flood_reps}, scale {args.scale_reps})",
    }
    results = {}

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        for name in WORKLOADS:
            if name in only:
                results[name] = globals()[name](bench, report, cols)
    except KeyboardInterrupt:
        report.note("interrupted: the table is partial")
    finally:
        REGISTRY.end_all()
    meta["load average at end"] = loadavg()
    report.print(sys.stdout, meta)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"meta": meta, "results": results}, indent=1, default=str)
        )


if __name__ == "__main__":
    main()
