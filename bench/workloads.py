"""The workloads. Each method runs one repetition and returns a dict of
figures, or raises BenchError.
"""

import shutil
import statistics
import subprocess
import time
from pathlib import Path

from harness import (
    CLK_TCK,
    MIB,
    BenchError,
    Supervisord,
    Ward,
    children,
    cpu_ticks,
    event_ns,
    poll,
    smaps_kib,
    threads,
    toml_cmd,
)


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
        self.stamp = bins / "stamp"
        self.stampexec = bins / "stampexec"
        self.respawn = bins / "respawn"
        self.checkseq = bins / "checkseq"
        venv = Path(args.supervisord_venv) if args.supervisord_venv else None
        self.supervisord = venv / "bin" / "supervisord" if venv else None
        self.supervisorctl = venv / "bin" / "supervisorctl" if venv else None

    def fallback_notes(self, ward):
        for e in ward.events():
            msg = e.get("message", "")
            if e.get("event") == "notice" and "not cgroups" in msg:
                self.note(f"ward: {msg}")

    # ---- 1. idle

    def sleepers_config(self, n, wrap=None):
        lines = []
        for i in range(n):
            argv = [self.testee] if wrap is None else [*wrap, self.testee]
            lines += [f"[program.s{i:03}]", f"command = {toml_cmd(argv)}"]
        return "\n".join(lines) + "\n"

    def idle_sample(self, pids):
        per = {}
        for pid in pids:
            for tid, t in threads(pid).items():
                per[(pid, tid)] = t
        return {
            "ticks": sum(cpu_ticks(p) for p in pids),
            "threads": per,
        }

    @staticmethod
    def idle_delta(a, b):
        run_ns = vol = invol = 0
        woke = {}
        for key, (name, r1, v1, i1) in b["threads"].items():
            _, r0, v0, i0 = a["threads"].get(key, (name, 0, 0, 0))
            run_ns += r1 - r0
            vol += v1 - v0
            invol += i1 - i0
            if v1 - v0 + i1 - i0 > 0:
                woke[name] = woke.get(name, 0) + (v1 - v0 + i1 - i0)
        return {
            "cpu_ms": run_ns / 1e6,
            "cpu_ticks_ms": (b["ticks"] - a["ticks"]) * 1000 / CLK_TCK,
            "wakeups": vol + invol,
            "woke": woke,
        }

    def idle_window(self, pids):
        time.sleep(self.args.settle)
        a = self.idle_sample(pids)
        time.sleep(self.args.idle_seconds)
        b = self.idle_sample(pids)
        d = self.idle_delta(a, b)
        d["pss_mib"] = sum(smaps_kib(p, "Pss") for p in pids) / 1024
        d["rss_mib"] = sum(smaps_kib(p, "Rss") for p in pids) / 1024
        d["threads"] = len(b["threads"])
        return d

    def idle_ward(self, rep):
        n = self.args.programs
        ward = Ward(self, f"idle-{rep}", self.sleepers_config(n))
        try:
            ward.up()
            poll(
                f"{n} running",
                lambda: sum(s["state"] == "running" for s in ward.status()) == n,
                60,
                pause=0.1,
            )
            self.fallback_notes(ward)
            return self.idle_window(ward.pids())
        finally:
            ward.down()

    def idle_supervisord(self, rep):
        n = self.args.programs
        progs = [(f"s{i:03}", [str(self.testee)], []) for i in range(n)]
        sup = Supervisord(self, f"sv-idle-{rep}", progs)
        try:
            sup.up()
            poll(
                f"{n} children of supervisord",
                lambda: len(children(sup.proc.pid)) >= n,
                60,
                pause=0.1,
            )
            # startsecs (1 s) must pass before supervisord calls them RUNNING.
            time.sleep(1.5)
            return self.idle_window([sup.proc.pid])
        finally:
            sup.down()

    # ---- 2. crash loop

    def crash_ward(self, rep):
        stamps = self.work / f"crash-{rep}.stamps"
        stamps.unlink(missing_ok=True)
        config = "\n".join(
            [
                "[program.crash]",
                f"command = {toml_cmd([self.stamp, stamps, '1'])}",
                'restart = "always"',
                "autostart = false",
                'backoff = { initial = "0s", max = "0s" }',
                'start_limit = { burst = 1000000, interval = "1s" }',
                'min_uptime = "0s"',
                "",
            ]
        )
        ward = Ward(self, f"crash-{rep}", config)
        try:
            ward.up()
            self.fallback_notes(ward)
            t0 = time.monotonic_ns()
            c0 = ward.cpu_ticks()
            ward.cli("start", "crash", timeout=30)
            time.sleep(max(0.0, self.args.crash_seconds - (time.monotonic_ns() - t0) / 1e9))
            c1 = ward.cpu_ticks()
            t1 = time.monotonic_ns()
            state = ward.status()[0]
            ward.cli("stop", "crash", timeout=60, check=False)
        finally:
            ward.down()
        if state["state"] == "fatal":
            raise BenchError("the crash loop hit the start limit: the figures are not a loop")
        r = self.gaps(stamps, t0, t1)
        r["cpu_per_restart_ms"] = (c1 - c0) * 1000 / CLK_TCK / max(r["restarts"], 1)
        r["cpu_share"] = (c1 - c0) / CLK_TCK / ((t1 - t0) / 1e9)
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
        return self.gaps(stamps, t0, t1)

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
            raise BenchError("the crash loop did not restart at all")
        return {
            "restarts": len(rows),
            "per_s": len(rows) / ((t1 - t0) / 1e9),
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

    def flood_ward(self, rep, variant):
        """variant: text, json, or plain (text without timestamps: the same
        bytes as the program wrote, so the same work as `| cat > file`)."""
        fmt = "json" if variant == "json" else "text"
        stamps = "false" if variant == "plain" else "true"
        starts = self.work / f"flood-{variant}-{rep}.start"
        starts.unlink(missing_ok=True)
        config = "\n".join(
            [
                "[program.flood]",
                f"command = {toml_cmd(self.flood_argv(starts))}",
                'restart = "never"',
                "autostart = false",
                # One file: the check reads every line, none rotated away.
                f'logs = {{ format = "{fmt}", timestamps = {stamps}, max_size = "1TB", keep = 1 }}',
                "",
            ]
        )
        ward = Ward(self, f"flood-{variant}-{rep}", config)
        log = ward.dir / ".ward" / "logs" / "flood.0.log"
        try:
            ward.up()
            c0 = ward.cpu_ticks()
            ward.cli("start", "flood", timeout=60)
            poll(
                "the flood to end",
                lambda: any(
                    e.get("event") == "exited" and e.get("instance") == "flood:0"
                    for e in ward.events()
                ),
                self.args.flood_timeout,
                pause=0.05,
            )
            c1 = ward.cpu_ticks()
            dropped = [e for e in ward.events() if e.get("event") == "log_lines_dropped"]
        finally:
            ward.down()
        if dropped:
            self.note(f"ward {variant}: log_lines_dropped events: {dropped}")
        t_start = int(starts.read_text().split()[0])
        t_end = log.stat().st_mtime_ns
        files = sorted(log.parent.glob("flood.0.log.*"), reverse=True) + [log]
        mode = "raw" if variant == "plain" else fmt
        r = self.flood_result(t_start, t_end, self.check(mode, files), (c1 - c0) / CLK_TCK)
        r["stored_mib"] = sum(f.stat().st_size for f in files) / MIB
        shutil.rmtree(ward.dir)
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
        return self.flood_result(t_start, t_end, check)

    def flood_supervisord(self, rep):
        starts = self.work / f"flood-sv-{rep}.start"
        starts.unlink(missing_ok=True)
        argv = [str(a) for a in self.flood_argv(starts)]
        sup = Supervisord(
            self,
            f"sv-flood-{rep}",
            [("flood", argv, ["autostart=false", "autorestart=false", "startsecs=0"])],
        )
        log = sup.dir / "logs" / "flood.log"
        expected = self.args.flood_lines * 100
        try:
            sup.up()
            c0 = cpu_ticks(sup.proc.pid)
            sup.ctl("start", "flood")
            poll(
                "supervisord to store the flood",
                lambda: log.exists() and log.stat().st_size >= expected,
                self.args.flood_timeout,
                pause=0.05,
            )
            c1 = cpu_ticks(sup.proc.pid)
        finally:
            sup.down()
        t_start = int(starts.read_text().split()[0])
        r = self.flood_result(
            t_start, log.stat().st_mtime_ns, self.check("raw", [log]), (c1 - c0) / CLK_TCK
        )
        shutil.rmtree(sup.dir)
        return r

    # ---- 4. start-up

    def startup_ward(self, rep):
        n = self.args.programs
        starts = self.work / f"startup-{rep}.starts"
        starts.unlink(missing_ok=True)
        ward = Ward(self, f"startup-{rep}", self.sleepers_config(n, [self.stampexec, starts]))
        try:
            invoked, returned = ward.up()
            running_at = poll(
                f"{n} running",
                lambda: sum(s["state"] == "running" for s in ward.status()) == n and time.time_ns(),
                60,
                pause=0.005,
            )
            events = ward.events()
        finally:
            ward.down()
        spawned = sorted(event_ns(e) for e in events if e.get("event") == "spawned")
        child_starts = sorted(int(x) for x in starts.read_text().split())
        if len(spawned) != n or len(child_starts) != n:
            raise BenchError(f"start-up: {len(spawned)} spawned events, {len(child_starts)} starts")
        return {
            "to_last_spawned_ms": (spawned[-1] - invoked) / 1e6,
            "to_last_child_ms": (child_starts[-1] - invoked) / 1e6,
            "first_to_last_child_ms": (child_starts[-1] - child_starts[0]) / 1e6,
            "to_first_child_ms": (child_starts[0] - invoked) / 1e6,
            "detach_returned_ms": (returned - invoked) / 1e6,
            "status_all_running_ms": (running_at - invoked) / 1e6,
        }
