"""What the benchmarks read and how they clean up: /proc counters, process
trees, and the bookkeeping that ends every started process by pid.
"""

import os
import signal
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


class BenchError(Exception):
    pass


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


def status_kib(pid, key):
    """A `kB` figure of /proc/PID/status (VmHWM: the peak resident size)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def exe(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def process_table():
    """{pid: (ppid, comm, start time)} of every process on the machine."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(entry)
            if st and st[1][0] != "Z":
                table[int(entry)] = (int(st[1][1]), st[0], int(st[1][19]))
    return table


def descendants(roots, table=None):
    """The roots and every process below them, as (pid, start time)."""
    table = process_table() if table is None else table
    kids = {}
    for pid, (ppid, _, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [r for r in roots if r in table]
    while todo:
        pid = todo.pop()
        out.append((pid, table[pid][2]))
        todo.extend(kids.get(pid, []))
    return out


def children(pid):
    return [(p, comm) for p, (ppid, comm, _) in process_table().items() if ppid == pid]


def loadavg():
    return Path("/proc/loadavg").read_text().split()[0]


# --------------------------------------------------------------------------
# Process bookkeeping: everything started here is ended here, by pid.


class Registry:
    """Every supervisor under test and every pid started here, so that an
    interrupted run still ends them: supervisors through their own stop,
    then whatever is left by SIGKILL, each pid checked against its start
    time."""

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
            except (OSError, BenchError, ValueError):
                pass
        kill_leftovers(self.procs.items())
        self.procs.clear()


REGISTRY = Registry()


def wait_gone(pid, t, timeout):
    deadline = time.monotonic() + timeout
    while alive(pid, t):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def wait_all_gone(procs, timeout):
    deadline = time.monotonic() + timeout
    while any(alive(p, t) for p, t in procs):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill_leftovers(procs):
    """SIGKILLs each (pid, start time) that is still that process."""
    for pid, t in list(procs):
        if t is not None and alive(pid, t):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def signal_pid(pid, t, sig):
    if t is not None and alive(pid, t):
        try:
            os.kill(pid, sig)
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
