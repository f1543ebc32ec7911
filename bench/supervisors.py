"""The supervisors under test behind one interface: ward, supervisord, PM2,
runit and s6. Each runs as an ordinary process in a directory of its own
under the work dir (runit and s6 never as init, never on /etc/service), and
whatever it started is ended by pid when it goes down.
"""

import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    REGISTRY,
    BenchError,
    descendants,
    exe,
    kill_leftovers,
    poll,
    signal_pid,
    wait_all_gone,
)


@dataclass
class Program:
    """One program to supervise. kind says what policy it gets: `sleep`
    (the defaults), `crash` (restart at once, forever: the fastest each
    supervisor allows) or `flood` (run once, on demand, logs kept whole).
    With `env`, argv[0] alone (no arguments) does the same as argv, so that
    runit's and s6's ./run can be a symlink to it: no shell start-up is
    then counted against them."""

    name: str
    argv: list
    kind: str = "sleep"
    env: dict = field(default_factory=dict)


def toml_str(s):
    return json.dumps(str(s))


def toml_cmd(argv):
    return "[" + ", ".join(toml_str(a) for a in argv) + "]"


def quiet(argv, timeout, env=None, check=True):
    r = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    if check and r.returncode != 0:
        raise BenchError(
            f"{Path(str(argv[0])).name} {' '.join(map(str, argv[1:3]))}… failed: "
            f"{(r.stderr or r.stdout).strip()[-400:]}"
        )
    return r


class Supervisor(ABC):
    """The common part: a fresh directory, the process tree under `root`,
    and a stop that always ends in SIGKILL for whatever is left."""

    label = "?"
    # Checker mode (bench/c/checkseq.c) of each flood variant's log files.
    modes = {}

    def __init__(self, bench, tag, programs, variant=None):
        self.bench = bench
        self.dir = bench.work / f"{self.label}-{tag}"
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.programs = programs
        self.variant = variant
        self.root = None
        self.popen = None
        self.env = dict(os.environ)
        for p in programs:
            self.env.update(p.env)
        self.configure()

    @abstractmethod
    def configure(self):
        """Writes the configuration for self.programs into self.dir."""

    @abstractmethod
    def launch(self):
        """Starts the supervisor and sets self.root."""

    @abstractmethod
    def stop(self):
        """Asks the supervisor to stop its programs and exit."""

    @abstractmethod
    def start(self, name):
        """Starts a program that does not start by itself (a flood)."""

    @abstractmethod
    def log_files(self, name):
        """The program's stdout as stored, oldest file first."""

    def status_cmd(self):
        """A command that reports every program's state, or None."""
        return None

    def find_root(self):
        """The root's pid when launch() failed after starting something
        (a daemon that wrote its pid file, then a command timed out)."""
        return None

    # -- common
    def up(self):
        """Launches the supervisor; returns the wall-clock time (ns) just
        before. Does not wait for the programs."""
        invoked = time.time_ns()
        REGISTRY.running.append(self)
        self.launch()
        if self.root is not None:
            REGISTRY.add(self.root)
        return invoked

    def spawn(self, argv):
        """Starts a long-lived supervisor process in a session of its own."""
        with open(self.dir / "supervisor.err", "wb") as err:
            self.popen = subprocess.Popen(
                [str(a) for a in argv],
                cwd=self.dir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        self.root = self.popen.pid

    def tree(self, table=None):
        return descendants([self.root], table) if self.root else []

    def own(self):
        """(pid, start time) of the supervisor's own processes: everything
        under its root that is not one of the benchmark's programs (loggers
        such as svlogd and s6-log count as the supervisor's)."""
        progs = self.bench.program_exes
        return [(p, t) for p, t in self.tree() if exe(p) not in progs]

    def running(self):
        """How many of the benchmark's programs run under the supervisor."""
        progs = self.bench.program_exes
        return sum(1 for p, _ in self.tree() if exe(p) in progs)

    def log_mode(self):
        return self.modes.get(self.variant, "raw")

    def down(self):
        if self.root is None:
            try:
                self.root = self.find_root()
            except (OSError, ValueError):
                self.root = None
            if self.root is None:
                return
        procs = self.tree()
        try:
            self.stop()
        except (OSError, subprocess.SubprocessError, BenchError):
            pass
        if not wait_all_gone(procs, 20):
            kill_leftovers(procs)
            wait_all_gone(procs, 5)
        if self.popen is not None:
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.popen = None
        REGISTRY.procs.pop(self.root, None)
        if self in REGISTRY.running:
            REGISTRY.running.remove(self)
        self.root = None


# --------------------------------------------------------------------------


class Ward(Supervisor):
    label = "ward"
    modes = {"text": "text", "json": "json", "plain": "raw"}

    def configure(self):
        lines = []
        for p in self.programs:
            lines += [f"[program.{p.name}]", f"command = {toml_cmd(p.argv)}"]
            if p.kind == "crash":
                lines += [
                    'restart = "always"',
                    'backoff = { initial = "0s", max = "0s" }',
                    'start_limit = { burst = 1000000, interval = "1s" }',
                    'min_uptime = "0s"',
                ]
            elif p.kind == "flood":
                fmt = "json" if self.variant == "json" else "text"
                stamps = "false" if self.variant == "plain" else "true"
                lines += [
                    'restart = "never"',
                    "autostart = false",
                    # One file: the check reads every line, none rotated away.
                    f'logs = {{ format = "{fmt}", timestamps = {stamps}, '
                    'max_size = "1TB", keep = 1 }',
                ]
        self.config = self.dir / "ward.toml"
        self.config.write_text("\n".join(lines) + "\n")

    def cli(self, *args, timeout=60, check=True):
        return quiet([self.bench.ward, "--config", self.config, *args], timeout, check=check)

    def launch(self):
        self.cli("up", "--detach", timeout=120)
        self.root = self.find_root()

    def find_root(self):
        lock = self.dir / ".ward" / "ward.lock"
        return int(lock.read_text().strip()) if lock.exists() else None

    def stop(self):
        self.cli("down", timeout=90, check=False)

    def start(self, name):
        self.cli("start", name)

    def status_cmd(self):
        return [self.bench.ward, "--config", self.config, "status", "--json"]

    def status(self):
        return json.loads(self.cli("status", "--json", timeout=30).stdout)

    def events(self):
        path = self.dir / ".ward" / "events.jsonl"
        out = []
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def notes(self):
        """ward's own notices worth a line in the report."""
        out = []
        for e in self.events():
            msg = e.get("message", "")
            if e.get("event") == "notice" and "not cgroups" in msg:
                out.append(f"ward: {msg}")
            if e.get("event") == "log_lines_dropped":
                out.append(f"ward {self.variant}: log_lines_dropped: {e}")
        return out

    def log_files(self, name):
        log = self.dir / ".ward" / "logs" / f"{name}.0.log"
        return sorted(log.parent.glob(f"{name}.0.log.*"), reverse=True) + [log]


# --------------------------------------------------------------------------


class Supervisord(Supervisor):
    label = "supervisord"

    def configure(self):
        (self.dir / "logs").mkdir()
        conf = [
            "[unix_http_server]",
            f"file={self.dir}/supervisor.sock",
            "[supervisord]",
            f"logfile={self.dir}/supervisord.log",
            f"pidfile={self.dir}/supervisord.pid",
            "nodaemon=true",
            "user=root" if os.geteuid() == 0 else "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "[supervisorctl]",
            f"serverurl=unix://{self.dir}/supervisor.sock",
        ]
        policy = {
            "sleep": [],
            # startsecs=0: RUNNING on supervisord's next tick. An exit
            # before that tick is a failed start, retried with a back-off of
            # 1, 2, ... s up to startretries: hence a large one.
            "crash": ["autorestart=true", "startsecs=0", "startretries=1000000"],
            "flood": ["autostart=false", "autorestart=false", "startsecs=0"],
        }
        for p in self.programs:
            conf += [
                f"[program:{p.name}]",
                "command=" + " ".join(shlex.quote(str(a)) for a in p.argv),
                f"stdout_logfile={self.dir}/logs/{p.name}.log",
                "stdout_logfile_maxbytes=0",
                "redirect_stderr=true",
                *policy[p.kind],
            ]
        self.conf = self.dir / "supervisord.conf"
        self.conf.write_text("\n".join(conf) + "\n")

    def launch(self):
        self.spawn([self.bench.peer("supervisord"), "-c", self.conf])

    def ctl(self, *args, timeout=60):
        return quiet([self.bench.peer("supervisorctl"), "-c", self.conf, *args], timeout)

    def stop(self):
        signal_pid(self.root, REGISTRY.procs.get(self.root), signal.SIGTERM)

    def start(self, name):
        poll("supervisord's socket", lambda: (self.dir / "supervisor.sock").exists(), 30)
        self.ctl("start", name)

    def status_cmd(self):
        return [self.bench.peer("supervisorctl"), "-c", self.conf, "status"]

    def log_files(self, name):
        return [self.dir / "logs" / f"{name}.log"]


# --------------------------------------------------------------------------


class PM2(Supervisor):
    label = "pm2"
    modes = {"plain": "raw", "time": "stamped"}

    def configure(self):
        self.home = self.dir / "home"
        self.env["PM2_HOME"] = str(self.home)
        (self.dir / "logs").mkdir()
        apps = []
        for p in self.programs:
            app = {
                "name": p.name,
                "script": str(p.argv[0]),
                "args": [str(a) for a in p.argv[1:]],
                "interpreter": "none",
                "out_file": str(self.dir / "logs" / f"{p.name}.out.log"),
                "error_file": str(self.dir / "logs" / f"{p.name}.err.log"),
                "time": self.variant == "time",
            }
            if p.kind == "crash":
                app.update(
                    autorestart=True, restart_delay=0, min_uptime=0, max_restarts=1_000_000_000
                )
            elif p.kind == "flood":
                app.update(autorestart=False)
            apps.append(app)
        self.eco = self.dir / "ecosystem.json"
        self.eco.write_text(json.dumps({"apps": apps}, indent=1))

    def pm2(self, *args, timeout=120, check=True):
        return quiet([self.bench.peer("pm2"), *args], timeout, env=self.env, check=check)

    def launch(self):
        if all(p.kind != "flood" for p in self.programs):
            self.pm2("start", self.eco)
        else:
            # The daemon alone; `start` brings the program up later.
            self.pm2("ping")
        poll("PM2's pid file", lambda: self.find_root() is not None, 30)
        self.root = self.find_root()

    def find_root(self):
        pidfile = self.home / "pm2.pid"
        text = pidfile.read_text().strip() if pidfile.exists() else ""
        return int(text) if text else None

    def stop(self):
        self.pm2("kill", timeout=60, check=False)

    def start(self, name):
        self.pm2("start", self.eco, "--only", name)

    def status_cmd(self):
        return [self.bench.peer("pm2"), "jlist"]

    def log_files(self, name):
        return [self.dir / "logs" / f"{name}.out.log"]


# --------------------------------------------------------------------------


class ServiceDirs(Supervisor):
    """runit and s6 share the daemontools layout: one directory per service
    with an executable ./run, an optional ./down (do not start) and an
    optional log/ service whose ./run reads the service's stdout."""

    log_run = ""

    def configure(self):
        self.svdir = self.dir / "services"
        self.svdir.mkdir()
        for p in self.programs:
            d = self.svdir / p.name
            d.mkdir()
            if p.env or len(p.argv) == 1:
                (d / "run").symlink_to(p.argv[0])
            else:
                script = "#!/bin/sh\nexec " + " ".join(shlex.quote(str(a)) for a in p.argv)
                (d / "run").write_text(script + "\n")
                (d / "run").chmod(0o755)
            if p.kind == "flood":
                (d / "down").touch()
                (d / "log" / "main").mkdir(parents=True)
                (d / "log" / "run").write_text(f"#!/bin/sh\nexec {self.log_run}\n")
                (d / "log" / "run").chmod(0o755)
                self.log_config(d / "log" / "main")
        # runsvdir waits for a directory changed within the last second to
        # settle before it scans it; service directories made in advance,
        # as they are in real use, do not make it wait.
        past = time.time() - 10
        for d in [self.svdir, *self.svdir.iterdir()]:
            os.utime(d, (past, past))

    def log_config(self, logdir):
        pass

    def log_files(self, name):
        logdir = self.svdir / name / "log" / "main"
        # Rotated files are named @<timestamp>.s: the name sorts them.
        return sorted(logdir.glob("@*")) + [logdir / "current"]


class Runit(ServiceDirs):
    label = "runit"
    modes = {"svlogd": "stamped"}
    # -tt: a UTC timestamp, YYYY-MM-DD_HH:MM:SS.xxxxx, on every line.
    log_run = "svlogd -tt ./main"

    def log_config(self, logdir):
        # s0: never rotate (the default, 1 MB and 10 files, would delete
        # most of the flood before the check reads it).
        (logdir / "config").write_text("s0\n")

    def launch(self):
        self.spawn([self.bench.peer("runsvdir"), self.svdir])

    def stop(self):
        # runsvdir answers HUP by sending TERM to every runsv and exiting;
        # each runsv then stops its service (and log service) and exits.
        signal_pid(self.root, REGISTRY.procs.get(self.root), signal.SIGHUP)

    def start(self, name):
        d = self.svdir / name
        poll(f"runsv of {name}", lambda: (d / "supervise" / "ok").exists(), 30)
        quiet([self.bench.peer("sv"), "once", d], 30)

    def status_cmd(self):
        return [self.bench.peer("sv"), "status", *sorted(self.svdir.iterdir())]


class S6(ServiceDirs):
    label = "s6"
    modes = {"s6-log": "stamped"}
    # T: an ISO 8601 timestamp on every line; s: rotate at 256 MiB; n: keep
    # every rotated file, so the check sees all.
    log_run = "s6-log n1000 s268435455 T ./main"

    def launch(self):
        # -c: room for every service and its logger, whatever the built-in
        # cap is.
        n = 2 * len(self.programs) + 16
        self.spawn([self.bench.peer("s6-svscan"), "-c", str(n), self.svdir])

    def stop(self):
        # SIGTERM: s6-svscan brings every service down, then exits.
        signal_pid(self.root, REGISTRY.procs.get(self.root), signal.SIGTERM)

    def start(self, name):
        d = self.svdir / name
        poll(
            f"s6-supervise of {name}",
            lambda: quiet([self.bench.peer("s6-svok"), d], 10, check=False).returncode == 0,
            30,
            pause=0.05,
        )
        quiet([self.bench.peer("s6-svc"), "-o", d], 30)


SUPERVISORS = {"ward": Ward, "supervisord": Supervisord, "pm2": PM2, "runit": Runit, "s6": S6}
PEERS = ("supervisord", "pm2", "runit", "s6")
