"""What the benchmarks run and read: /proc counters, the bookkeeping that
ends every started process by pid, and drivers for ward and supervisord.
"""

import datetime
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


# --------------------------------------------------------------------------
# /proc readers


def proc_stat(pid):
    """(comm, fields after comm) of /proc/PID/stat, or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    close = text.rfind(")")
    return text[text.find("(") + 1 : close], text[close + 2 :].split()


def alive(pid, start_time):
    """pid still runs, and is the process recorded (not a recycled pid)."""
    st = proc_stat(pid)
    return st is not None and st[1][0] != "Z" and int(st[1][19]) == start_time


def start_time(pid):
    st = proc_stat(pid)
    return int(st[1][19]) if st else None


def cpu_ticks(pid):
    """utime + stime of the whole process (every thread, living or ended)."""
    st = proc_stat(pid)
    return int(st[1][11]) + int(st[1][12]) if st else 0


def threads(pid):
    """{tid: (name, on-cpu ns, voluntary switches, involuntary switches)}."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        try:
            name = Path(f"{base}/comm").read_text().strip()
            run_ns = int(Path(f"{base}/schedstat").read_text().split()[0])
            vol = invol = 0
            for line in Path(f"{base}/status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    vol = int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches:"):
                    invol = int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out[int(tid)] = (name, run_ns, vol, invol)
    return out


def smaps_kib(pid, key):
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(entry)
            if st and int(st[1][1]) == pid:
                kids.append((int(entry), st[0]))
    return kids


def loadavg():
    return Path("/proc/loadavg").read_text().split()[0]


# --------------------------------------------------------------------------
# Process bookkeeping: everything started here is ended here, by pid.


class Registry:
    """Every supervisor under test and every pid started here, so that an
    interrupted run still ends them: supervisors through their own stop
    (ward's sentinel and stop path take their programs along), then
    whatever is left by SIGKILL, each pid checked against its start time."""

    def __init__(self):
        self.procs = {}
        self.running = []

    def add(self, pid):
        t = start_time(pid)
        if t is not None:
            self.procs[pid] = t

    def end_all(self):
        for supervisor in list(self.running):
            try:
                supervisor.down()
            except (OSError, subprocess.SubprocessError, ValueError):
                pass
        for pid, t in list(self.procs.items()):
            if alive(pid, t):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self.procs.clear()


REGISTRY = Registry()


def wait_gone(pid, t, timeout):
    deadline = time.monotonic() + timeout
    while alive(pid, t):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def end_process(pid, timeout=10.0):
    """SIGTERM, then SIGKILL if it outlives `timeout`."""
    t = start_time(pid)
    if t is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    if not wait_gone(pid, t, timeout):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        wait_gone(pid, t, 5.0)


def kill_leftovers(procs):
    """SIGKILLs each (pid, start time) that is still that process."""
    for pid, t in procs:
        if t is not None and alive(pid, t):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def poll(what, check, timeout, pause=0.01):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(pause)


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------
# ward under test


def toml_str(s):
    return json.dumps(str(s))


def toml_cmd(argv):
    return "[" + ", ".join(toml_str(a) for a in argv) + "]"


class Ward:
    """One ward daemon in a directory of its own."""

    def __init__(self, bench, name, config):
        self.bench = bench
        self.dir = bench.work / name
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.config = self.dir / "ward.toml"
        self.config.write_text(config)
        self.pid = None
        self.sentinel = None

    def cli(self, *args, timeout=60, check=True):
        cmd = [self.bench.ward, "--config", self.config, *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise BenchError(f"ward {' '.join(args)} failed: {r.stderr.strip()}")
        return r.stdout

    def up(self):
        started = time.time_ns()
        self.cli("up", "--detach", timeout=60)
        returned = time.time_ns()
        self.attach()
        return started, returned

    def attach(self):
        self.pid = int((self.dir / ".ward" / "ward.lock").read_text().strip())
        REGISTRY.add(self.pid)
        if self not in REGISTRY.running:
            REGISTRY.running.append(self)
        sentinels = [p for p, comm in children(self.pid) if comm == "ward-sentinel"]
        self.sentinel = sentinels[0] if sentinels else None
        if self.sentinel:
            REGISTRY.add(self.sentinel)

    def pids(self):
        return [p for p in (self.pid, self.sentinel) if p]

    def status(self):
        return json.loads(self.cli("status", "--json", timeout=30))

    def events(self):
        path = self.dir / ".ward" / "events.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def cpu_ticks(self):
        return sum(cpu_ticks(p) for p in self.pids())

    def down(self):
        if self.pid is None:
            # `up` may have started a daemon and then failed (timed out).
            if not (self.dir / ".ward" / "ward.lock").exists():
                return
            try:
                self.attach()
            except (OSError, ValueError):
                return
        kids = [(p, start_time(p)) for p, _ in children(self.pid)]
        try:
            self.cli("down", timeout=90, check=False)
        except subprocess.TimeoutExpired:
            pass
        t = REGISTRY.procs.get(self.pid)
        if t is not None and not wait_gone(self.pid, t, 15):
            end_process(self.pid)
        if self.sentinel and self.sentinel in REGISTRY.procs:
            if not wait_gone(self.sentinel, REGISTRY.procs[self.sentinel], 10):
                end_process(self.sentinel, timeout=2)
        kill_leftovers(kids)
        REGISTRY.procs.pop(self.pid, None)
        REGISTRY.procs.pop(self.sentinel, None)
        if self in REGISTRY.running:
            REGISTRY.running.remove(self)
        self.pid = None


def event_ns(event):
    ts = datetime.datetime.strptime(event["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
    ts = ts.replace(tzinfo=datetime.timezone.utc)
    return int(ts.timestamp() * 1000) * 1_000_000


# --------------------------------------------------------------------------
# supervisord, for a side-by-side figure


class Supervisord:
    def __init__(self, bench, name, programs):
        self.bench = bench
        self.dir = bench.work / name
        if self.dir.exists():
            shutil.rmtree(self.dir)
        (self.dir / "logs").mkdir(parents=True)
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
        for name, argv, extra in programs:
            conf += [
                f"[program:{name}]",
                "command=" + " ".join(argv),
                f"stdout_logfile={self.dir}/logs/{name}.log",
                "stdout_logfile_maxbytes=0",
                "redirect_stderr=true",
                *extra,
            ]
        self.conf = self.dir / "supervisord.conf"
        self.conf.write_text("\n".join(conf) + "\n")
        self.proc = None

    def up(self):
        self.proc = subprocess.Popen(
            [self.bench.supervisord, "-c", self.conf],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        REGISTRY.add(self.proc.pid)
        REGISTRY.running.append(self)
        poll("supervisord's socket", lambda: (self.dir / "supervisor.sock").exists(), 30)

    def ctl(self, *args, timeout=60):
        return subprocess.run(
            [self.bench.supervisorctl, "-c", self.conf, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def down(self):
        if self.proc is None:
            return
        kids = [(p, start_time(p)) for p, _ in children(self.proc.pid)]
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        kill_leftovers(kids)
        REGISTRY.procs.pop(self.proc.pid, None)
        if self in REGISTRY.running:
            REGISTRY.running.remove(self)
        self.proc = None
