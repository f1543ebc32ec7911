"""The workloads. Each method runs one repetition for one supervisor (idle:
for all of them at once) and returns a dict of figures, or raises
BenchError. Every figure comes from the kernel (/proc) or from timestamps
the supervised programs write themselves, never from a supervisor's own
account.
"""

import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from harness import (
    CLK_TCK,
    MIB,
    BenchError,
    alive,
    cpu_ticks,
    open_fds,
    poll,
    smaps_kib,
    status_kib,
    threads,
)
from supervisors import Program, Ward


def cpu_sample(procs):
    """{(pid, start time): (ticks, on-cpu ns of the living threads)}."""
    out = {}
    for pid, t in procs:
        if alive(pid, t):
            ns = sum(v[1] for v in threads(pid).values())
            out[(pid, t)] = (cpu_ticks(pid), ns)
    return out


def cpu_delta_ms(a, b, include_new):
    """CPU between two samples, in ms, of the processes alive at both (and,
    with include_new, of those that started in between). Per process, the
    larger of the tick count (every thread, 10 ms grain) and the threads'
    nanoseconds (exact, but blind to threads that ended)."""
    total = 0.0
    for key, (ticks1, ns1) in b.items():
        if key in a:
            ticks0, ns0 = a[key]
        elif include_new:
            ticks0, ns0 = 0, 0
        else:
            continue
        total += max((ticks1 - ticks0) * 1000 / CLK_TCK, (ns1 - ns0) / 1e6)
    return total


def line_of(n, size=100):
    return b"%012d" % n + b"x" * (size - 13)


class Bench:
    """The workloads, with the paths they need. `note` takes one line for
    the report's notes."""

    def __init__(self, args, note):
        self.args = args
        self.note = note
        self.work = Path(args.work)
        bins = Path(args.bin_dir)
        self.ward = args.ward
        self.testee = args.testee
        self.sleeper = bins / "sleeper"
        self.stamp = bins / "stamp"
        self.stampexec = bins / "stampexec"
        self.respawn = bins / "respawn"
        self.checkseq = bins / "checkseq"
        self.program_exes = {
            os.path.realpath(p) for p in (self.sleeper, self.stamp, self.stampexec, self.testee)
        }
        self.tools = dict(args.tool or [])

    def peer(self, tool):
        return self.tools[tool]

    # ---- 1. idle: every supervisor at once, each with its own programs

    def idle(self, classes, rep):
        n = self.args.programs
        progs = [Program(f"s{i:03}", [self.sleeper]) for i in range(n)]
        sups = []
        try:
            for cls in classes:
                sup = cls(self, f"idle-{rep}", progs)
                sups.append(sup)
                sup.up()
            for sup in sups:
                poll(f"{n} programs under {sup.label}", lambda s=sup: s.running() == n, 120, 0.2)
            # Past ward's one-shot timers of a fresh start (min_uptime 1 s,
            # and the backoff streak's reset_after, 30 s, one per instance),
            # and supervisord's startsecs: the window sees only what recurs.
            time.sleep(self.args.settle)
            owns = {sup.label: sup.own() for sup in sups}
            a = {k: self.idle_sample(v) for k, v in owns.items()}
            time.sleep(self.args.idle_seconds)
            b = {k: self.idle_sample(v) for k, v in owns.items()}
            out = {}
            for sup in sups:
                d = self.idle_delta(a[sup.label], b[sup.label])
                procs = owns[sup.label]
                d["pss_mib"] = sum(smaps_kib(p, "Pss") for p, _ in procs) / 1024
                d["rss_mib"] = sum(smaps_kib(p, "Rss") for p, _ in procs) / 1024
                d["processes"] = len(procs)
                d["threads"] = len(b[sup.label])
                out[sup.label] = d
                if isinstance(sup, Ward):
                    for line in sup.notes():
                        self.note(line)
            return out
        finally:
            for sup in sups:
                sup.down()

    @staticmethod
    def idle_sample(procs):
        per = {}
        for pid, t in procs:
            if alive(pid, t):
                for tid, th in threads(pid).items():
                    per[(pid, tid)] = th
        return per

    @staticmethod
    def idle_delta(a, b):
        run_ns = switches = 0
        woke = {}
        for key, (name, r1, v1, i1) in b.items():
            _, r0, v0, i0 = a.get(key, (name, 0, 0, 0))
            run_ns += r1 - r0
            switches += v1 - v0 + i1 - i0
            if v1 - v0 + i1 - i0 > 0:
                woke[name] = woke.get(name, 0) + (v1 - v0 + i1 - i0)
        return {"cpu_ms": run_ns / 1e6, "wakeups": switches, "woke": woke}

    # ---- 2. crash loop

    def crash(self, cls, rep):
        stamps = self.work / f"crash-{cls.label}-{rep}.stamps"
        stamps.unlink(missing_ok=True)
        prog = Program(
            "crash", [self.stamp, stamps, "1"], kind="crash", env={"STAMP_FILE": str(stamps)}
        )
        sup = cls(self, f"crash-{rep}", [prog])
        try:
            sup.up()
            # Measure a loop that runs: from the second start on.
            poll(
                f"{cls.label}'s first restart",
                lambda: stamps.exists() and stamps.read_text().count("\n") >= 2,
                30,
                0.02,
            )
            own = sup.own()
            t0 = time.monotonic_ns()
            c0 = cpu_sample(own)
            time.sleep(self.args.crash_seconds)
            c1 = cpu_sample(own)
            t1 = time.monotonic_ns()
            if isinstance(sup, Ward):
                for line in sup.notes():
                    self.note(line)
        finally:
            sup.down()
        r = self.gaps(stamps, t0, t1)
        cpu_ms = cpu_delta_ms(c0, c1, include_new=False)
        r["cpu_per_restart_ms"] = cpu_ms / max(r["restarts"], 1)
        r["cpu_share"] = cpu_ms / 1e3 / ((t1 - t0) / 1e9)
        stamps.unlink(missing_ok=True)
        return r

    def crash_baseline(self, rep):
        stamps = self.work / f"respawn-{rep}.stamps"
        stamps.unlink(missing_ok=True)
        t0 = time.monotonic_ns()
        subprocess.run(
            [self.respawn, str(self.args.crash_seconds), self.stamp, stamps, "1"],
            check=True,
            capture_output=True,
            timeout=self.args.crash_seconds + 60,
        )
        t1 = time.monotonic_ns()
        r = self.gaps(stamps, t0, t1)
        stamps.unlink(missing_ok=True)
        return r

    @staticmethod
    def gaps(stamps, t0, t1):
        rows = []
        for line in stamps.read_text().splitlines():
            s, e = line.split()
            if t0 <= int(s) <= t1:
                rows.append((int(s), int(e)))
        rows.sort()
        gaps = sorted((rows[i + 1][0] - rows[i][1]) / 1e6 for i in range(len(rows) - 1))
        if not gaps:
            raise BenchError("the crash loop did not restart in the window")
        # A supervisor that gave up leaves the end of the window empty.
        if (t1 - rows[-1][0]) / 1e6 > max(2000.0, 3 * gaps[-1]):
            raise BenchError(
                f"the restarts stopped {(t1 - rows[-1][0]) / 1e9:.1f} s before the end"
            )
        return {
            "restarts": len(rows),
            # From the first start to the last: a supervisor that restarts
            # once a second gets few starts in the window, and the window's
            # edges would skew a count over its length.
            "per_s": (len(rows) - 1) / ((rows[-1][0] - rows[0][0]) / 1e9),
            "gap_median_ms": statistics.median(gaps),
            "gap_p99_ms": gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))],
            "gap_max_ms": gaps[-1],
        }

    # ---- 3. log flood

    def flood_argv(self, starts):
        n = self.args.flood_lines
        return [
            self.stampexec,
            starts,
            self.testee,
            "--lines",
            str(n),
            "--size",
            "100",
            "--exit",
            "0",
        ]

    def check(self, mode, files):
        out = subprocess.run(
            [self.checkseq, mode, "100", str(self.args.flood_lines), *files],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        ).stdout
        return {k: int(v) for k, v in (kv.split("=") for kv in out.split())}

    def flood_result(self, t_start, t_end, check, cpu_s=None):
        secs = (t_end - t_start) / 1e9
        r = {
            "secs": secs,
            "mb_s": self.args.flood_lines * 100 / secs / 1e6,
            "lost": check["lost"],
            "malformed": check["malformed"],
            "dup": check["dup"],
        }
        if cpu_s is not None:
            r["cpu_s"] = cpu_s
        return r

    def flood_done(self, files, quiet_since):
        """True once the last line is stored; or, if it never comes (lines
        lost), once the files have stopped growing for 15 s."""
        present = [f for f in files() if f.exists() and f.stat().st_size > 0]
        if not present:
            return False
        last = present[-1]
        with open(last, "rb") as fh:
            fh.seek(max(0, last.stat().st_size - 4096))
            tail = fh.read()
        lines = tail.split(b"\n")
        if len(lines) >= 2 and line_of(self.args.flood_lines - 1) in lines[-2]:
            return True
        size = sum(f.stat().st_size for f in present)
        now = time.monotonic()
        if quiet_since.get("size") != size:
            quiet_since.update(size=size, at=now)
        return now - quiet_since["at"] > 15

    def flood(self, cls, variant, rep):
        starts = self.work / f"flood-{cls.label}-{variant}-{rep}.start"
        starts.unlink(missing_ok=True)
        prog = Program("flood", self.flood_argv(starts), kind="flood")
        sup = cls(self, f"flood-{variant}-{rep}", [prog], variant)
        try:
            sup.up()
            own0 = sup.own()
            c0 = cpu_sample(own0)
            sup.start("flood")
            since = {}
            poll(
                f"{cls.label} to store the flood",
                lambda: self.flood_done(lambda: sup.log_files("flood"), since),
                self.args.flood_timeout,
                pause=0.05,
            )
            own1 = sup.own()
            c1 = cpu_sample(set(own0) | set(own1))
            peak = sum(status_kib(p, "VmHWM") for p, _ in own1) / 1024
            if isinstance(sup, Ward):
                for line in sup.notes():
                    self.note(line)
        finally:
            sup.down()
        files = [f for f in sup.log_files("flood") if f.exists()]
        t_start = int(starts.read_text().split()[0])
        t_end = max(f.stat().st_mtime_ns for f in files)
        cpu_s = cpu_delta_ms(c0, c1, include_new=True) / 1e3
        r = self.flood_result(t_start, t_end, self.check(sup.log_mode(), files), cpu_s)
        r["stored_mib"] = sum(f.stat().st_size for f in files) / MIB
        r["peak_rss_mib"] = peak
        shutil.rmtree(sup.dir)
        starts.unlink(missing_ok=True)
        return r

    def flood_shell(self, rep, name, redirect, verify=True):
        starts = self.work / f"flood-{name}-{rep}.start"
        out = self.work / f"flood-{name}-{rep}.out"
        starts.unlink(missing_ok=True)
        cmd = " ".join(f"'{a}'" for a in self.flood_argv(starts)) + " " + redirect.format(out=out)
        subprocess.run(["bash", "-c", cmd], check=True, timeout=self.args.flood_timeout)
        t_end = time.time_ns()
        t_start = int(starts.read_text().split()[0])
        check = self.check("raw", [out]) if verify else {"lost": 0, "malformed": 0, "dup": 0}
        out.unlink(missing_ok=True)
        starts.unlink(missing_ok=True)
        return self.flood_result(t_start, t_end, check)

    # ---- 4. start-up, and 5. scale (the same, bigger, plus status and memory)

    def sleepers(self, n, starts):
        env = {"STAMP_FILE": str(starts), "STAMP_EXEC": str(self.sleeper)}
        return [
            Program(f"s{i:04}", [self.stampexec, starts, self.sleeper], env=env) for i in range(n)
        ]

    def startup(self, cls, rep, n=None, scale=False):
        n = n or self.args.programs
        tag = f"{'scale' if scale else 'startup'}-{rep}"
        starts = self.work / f"{tag}-{cls.label}.starts"
        starts.unlink(missing_ok=True)
        sup = cls(self, tag, self.sleepers(n, starts))
        r = {}
        try:
            invoked = sup.up()
            r["returned_ms"] = (time.time_ns() - invoked) / 1e6
            poll(
                f"{n} programs started by {cls.label}",
                lambda: starts.exists() and starts.read_text().count("\n") >= n,
                self.args.startup_timeout,
                pause=0.005 if not scale else 0.05,
            )
            child_starts = sorted(int(x) for x in starts.read_text().split())
            r["to_first_ms"] = (child_starts[0] - invoked) / 1e6
            r["to_last_ms"] = (child_starts[n - 1] - invoked) / 1e6
            if scale:
                r.update(self.scale_figures(sup, n))
            if isinstance(sup, Ward):
                for line in sup.notes():
                    self.note(line)
        finally:
            sup.down()
        starts.unlink(missing_ok=True)
        return r

    def scale_figures(self, sup, n):
        poll(f"{n} programs running under {sup.label}", lambda: sup.running() == n, 120, 0.5)
        # Let one-shot work after start-up (journals, state files) finish.
        time.sleep(3)
        r = {}
        own = sup.own()
        r["pss_mib"] = sum(smaps_kib(p, "Pss") for p, _ in own) / 1024
        r["processes"] = len(own)
        r["fds"] = sum(open_fds(p) for p, _ in own)
        cmd = sup.status_cmd()
        if cmd is not None:
            walls = []
            for _ in range(self.args.status_calls):
                t = time.monotonic_ns()
                subprocess.run(
                    [str(a) for a in cmd],
                    capture_output=True,
                    check=True,
                    timeout=60,
                    env=sup.env,
                )
                walls.append((time.monotonic_ns() - t) / 1e6)
            r["status_median_ms"] = statistics.median(walls)
            r["status_max_ms"] = max(walls)
        if isinstance(sup, Ward):
            states = [s["state"] for s in sup.status()]
            if states.count("running") != n:
                raise BenchError(f"ward status: {states.count('running')} of {n} running")
        return r
