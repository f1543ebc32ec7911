#!/usr/bin/env python3
"""ward's benchmarks: idle cost, crash loop, log flood, start-up.

Run through bench/run, which builds ward and the C helpers and passes the
paths in. Every figure comes from the kernel (/proc) or from timestamps the
supervised programs write themselves, never from ward's own account. Each
workload runs --reps times; the table shows medians. Every process started
here is ended here, by pid, even when a run fails or is interrupted.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

from harness import REGISTRY, BenchError, loadavg
from workloads import Bench

WORKLOADS = ("idle", "crash", "flood", "startup")


def median_of(reps, key):
    vals = [r[key] for r in reps if key in r]
    return statistics.median(vals) if vals else None


def fmt(v, spec):
    return "-" if v is None else spec.format(v)


def verdict(value, limit, lower_is_better=True):
    if value is None:
        return "-"
    ok = value <= limit if lower_is_better else value >= limit
    return "met" if ok else "MISSED"


class Report:
    HEAD = ("workload", "metric", "ward (median)", "baseline / supervisord", "target", "")

    def __init__(self):
        self.rows = []
        self.runs = []
        self.notes = []

    def row(self, workload, metric, ward, other="", target="", judged=""):
        self.rows.append((workload, metric, ward, other, target, judged))

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    def print(self, out, meta):
        rows = [self.HEAD, *self.rows]
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(self.HEAD))]

        def line(cells):
            return (
                "| "
                + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True))
                + " |"
            )

        print(line(self.HEAD), file=out)
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=out)
        for r in self.rows:
            print(line(r), file=out)
        print("\nEvery repetition (in run order):", file=out)
        for r in self.runs:
            print(f"  {r}", file=out)
        print(file=out)
        for k, v in meta.items():
            print(f"{k}: {v}", file=out)
        for n in self.notes:
            print(f"note: {n}", file=out)


def run_reps(bench, report, label, fn):
    """Runs `fn(rep)` --reps times; a failed repetition is noted, not fatal."""
    out = []
    for rep in range(bench.args.reps):
        load = loadavg()
        try:
            r = fn(rep)
        except (BenchError, subprocess.SubprocessError, OSError) as e:
            report.note(f"{label} #{rep} failed: {e}")
            continue
        shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}
        report.runs.append(f"{label} #{rep} (load {load}): {shown}")
        out.append(r)
        print(f"  {label} #{rep} done", file=sys.stderr, flush=True)
    return out


def other(with_sv, reps, key, spec):
    return "supervisord " + fmt(median_of(reps, key), spec) if with_sv else "-"


def idle(bench, report, sv):
    a = bench.args
    print(f"idle: {a.programs} sleeping programs, {a.idle_seconds:g} s", file=sys.stderr)
    w = run_reps(bench, report, "idle ward", bench.idle_ward)
    s = run_reps(bench, report, "idle supervisord", bench.idle_supervisord) if sv else []
    pss, cpu, wk = median_of(w, "pss_mib"), median_of(w, "cpu_ms"), median_of(w, "wakeups")
    secs = f"{a.idle_seconds:g} s"
    report.row(
        "1 idle",
        f"PSS, daemon + sentinel ({a.programs} programs)",
        fmt(pss, "{:.2f} MiB"),
        other(sv, s, "pss_mib", "{:.2f} MiB"),
        "≤ 8 MiB",
        verdict(pss, 8),
    )
    report.row(
        "",
        f"CPU over {secs} idle",
        fmt(cpu, "{:.2f} ms"),
        other(sv, s, "cpu_ms", "{:.1f} ms"),
        f"≤ {a.idle_seconds / 30:.2g} ms",
        verdict(cpu, a.idle_seconds / 30),
    )
    report.row(
        "",
        f"wake-ups (context switches) over {secs}",
        fmt(wk, "{:.0f}"),
        other(sv, s, "wakeups", "{:.0f}"),
        "none",
        verdict(wk, 0),
    )
    report.row("", "threads (daemon + sentinel)", fmt(median_of(w, "threads"), "{:.0f}"))
    for r in w:
        if r["woke"]:
            report.note(f"idle ward: threads that woke: {r['woke']}")
    return {"ward": w, "supervisord": s}


def crash(bench, report, sv):
    print(f"crash loop: {bench.args.crash_seconds:g} s", file=sys.stderr)
    w = run_reps(bench, report, "crash ward", bench.crash_ward)
    b = run_reps(bench, report, "crash respawn", bench.crash_baseline)
    gap = median_of(w, "gap_median_ms")
    report.row(
        "2 crash loop",
        "restarts/s",
        fmt(median_of(w, "per_s"), "{:.0f}"),
        "bare fork/exec/wait loop " + fmt(median_of(b, "per_s"), "{:.0f}"),
    )
    report.row(
        "",
        "gap exit → next start, median",
        fmt(gap, "{:.2f} ms"),
        fmt(median_of(b, "gap_median_ms"), "{:.2f} ms"),
        "≤ 2 ms",
        verdict(gap, 2),
    )
    report.row(
        "",
        "gap, p99",
        fmt(median_of(w, "gap_p99_ms"), "{:.2f} ms"),
        fmt(median_of(b, "gap_p99_ms"), "{:.2f} ms"),
    )
    report.row(
        "",
        "ward CPU per restart",
        fmt(median_of(w, "cpu_per_restart_ms"), "{:.2f} ms"),
        "",
        "small",
    )
    report.row("", "ward CPU, share of one core", fmt(median_of(w, "cpu_share"), "{:.0%}"))
    return {"ward": w, "respawn": b}


def flood(bench, report, sv):
    a = bench.args
    gib = a.flood_lines * 100 / 2**30
    print(f"log flood: {a.flood_lines} lines ({gib:.2f} GiB)", file=sys.stderr)
    runs = {
        "null": run_reps(
            bench,
            report,
            "flood >/dev/null",
            lambda r: bench.flood_shell(r, "null", "> /dev/null", verify=False),
        ),
        "file": run_reps(
            bench, report, "flood >file", lambda r: bench.flood_shell(r, "file", "> {out}")
        ),
        "cat": run_reps(
            bench, report, "flood |cat>file", lambda r: bench.flood_shell(r, "cat", "| cat > {out}")
        ),
    }
    for variant in ("text", "json", "plain"):
        runs[variant] = run_reps(
            bench, report, f"flood ward {variant}", lambda r, v=variant: bench.flood_ward(r, v)
        )
    runs["supervisord"] = (
        run_reps(bench, report, "flood supervisord", bench.flood_supervisord) if sv else []
    )
    mb = {k: median_of(v, "mb_s") for k, v in runs.items()}
    cat = mb["cat"]

    def ratio(x):
        return x / cat if x and cat else None

    report.row(
        "3 log flood",
        f"MB/s, {gib:.2f} GiB, text with timestamps (default)",
        fmt(mb["text"], "{:.0f}"),
        f"|cat>file {fmt(cat, '{:.0f}')}, >file {fmt(mb['file'], '{:.0f}')}, "
        f">/dev/null {fmt(mb['null'], '{:.0f}')}",
        "≥ 0.8 × |cat",
        f"{fmt(ratio(mb['text']), '{:.2f}×')} {verdict(ratio(mb['text']), 0.8, False)}",
    )
    report.row(
        "",
        "MB/s, json",
        fmt(mb["json"], "{:.0f}"),
        "supervisord (raw lines) " + fmt(mb["supervisord"], "{:.0f}") if sv else "-",
        "",
        fmt(ratio(mb["json"]), "{:.2f}×"),
    )
    report.row(
        "",
        "MB/s, text without timestamps",
        fmt(mb["plain"], "{:.0f}"),
        "",
        "",
        fmt(ratio(mb["plain"]), "{:.2f}×"),
    )
    ward_runs = runs["text"] + runs["json"] + runs["plain"]
    bad = {k: sum(r[k] for r in ward_runs) for k in ("lost", "malformed", "dup")}
    report.row(
        "",
        "lines lost / malformed / out of order, all runs",
        f"{bad['lost']} / {bad['malformed']} / {bad['dup']}",
        "supervisord "
        + str(sum(r["lost"] + r["malformed"] + r["dup"] for r in runs["supervisord"]))
        if sv
        else "-",
        "0",
        verdict(sum(bad.values()), 0) if ward_runs else "-",
    )
    cpu = " / ".join(fmt(median_of(runs[v], "cpu_s"), "{:.2f}") for v in ("text", "json", "plain"))
    report.row(
        "",
        "ward CPU, text / json / plain",
        f"{cpu} s",
        other(sv, runs["supervisord"], "cpu_s", "{:.2f} s"),
    )
    stored = " / ".join(fmt(median_of(runs[v], "stored_mib"), "{:.0f}") for v in ("text", "json"))
    report.row("", "stored, text / json", f"{stored} MiB")
    return runs


def startup(bench, report, sv):
    n = bench.args.programs
    print(f"start-up: {n} programs", file=sys.stderr)
    w = run_reps(bench, report, "startup ward", bench.startup_ward)
    last = median_of(w, "to_last_child_ms")
    report.row(
        "4 start-up",
        f"`up --detach` → {n}th program started",
        fmt(last, "{:.0f} ms"),
        "",
        "≤ 100 ms",
        verdict(last, 100),
    )
    for key, metric in [
        ("to_last_spawned_ms", f"`up --detach` → {n}th `spawned` event"),
        ("to_first_child_ms", "`up --detach` → 1st program started"),
        ("first_to_last_child_ms", f"1st → {n}th program started"),
        ("detach_returned_ms", "`up --detach` returned"),
        ("status_all_running_ms", "`status --json` first shows all running"),
    ]:
        report.row("", metric, fmt(median_of(w, key), "{:.0f} ms"))
    return {"ward": w}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--work", required=True, help="a scratch directory")
    p.add_argument("--bin-dir", required=True, help="where the C helpers are")
    p.add_argument("--ward", required=True)
    p.add_argument("--testee", required=True)
    p.add_argument("--supervisord-venv", help="a venv with supervisor installed")
    p.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--programs", type=int, default=100)
    p.add_argument("--idle-seconds", type=float, default=30)
    # Past ward's one-shot timers of a fresh start (min_uptime 1 s, and the
    # backoff streak's reset_after, 30 s, one per instance): the window then
    # sees only what recurs.
    p.add_argument("--settle", type=float, default=35, help="wait before the idle window")
    p.add_argument("--crash-seconds", type=float, default=10)
    p.add_argument("--flood-lines", type=int, default=10737418)
    p.add_argument("--flood-timeout", type=float, default=600)
    p.add_argument("--json", help="also write every figure to this file")
    p.add_argument("--revision", default="unknown", help="what was built (git describe)")
    args = p.parse_args()
    only = args.only.split(",")
    unknown = set(only) - set(WORKLOADS)
    if unknown:
        p.error(f"unknown workload(s): {', '.join(sorted(unknown))}")

    report = Report()
    bench = Bench(args, report.note)
    sv = bench.supervisord is not None
    meta = {
        "machine": f"{os.cpu_count()} CPUs, "
        f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB, "
        f"Linux {os.uname().release}",
        "ward": args.revision,
        "load average at start": loadavg(),
        "repetitions": args.reps,
    }
    results = {}

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        for name in WORKLOADS:
            if name in only:
                results[name] = globals()[name](bench, report, sv)
    except KeyboardInterrupt:
        report.note("interrupted: the table is partial")
    finally:
        REGISTRY.end_all()
    meta["load average at end"] = loadavg()
    report.print(sys.stdout, meta)
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=1))


if __name__ == "__main__":
    main()
