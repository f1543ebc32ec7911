//! The harness: the real `ward` binary in a temporary folder, supervising
//! the real `testee` program. Every wait is bounded; every process a test
//! starts is ended by its pid.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const WARD: &str = env!("CARGO_BIN_EXE_ward");
pub const TESTEE: &str = env!("CARGO_BIN_EXE_testee");

/// Generous: CI machines are slow and shared. Tests assert on outcomes,
/// never on how long they took.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct Ward {
    pub dir: tempfile::TempDir,
    pub daemon: Option<Child>,
    /// Extra arguments of `ward up`.
    pub up_args: Vec<&'static str>,
}

impl Ward {
    /// Writes `ward.toml` (with `{testee}` and `{dir}` replaced) in a fresh
    /// folder. Does not start anything.
    pub fn new(toml: &str) -> Ward {
        let dir = tempfile::Builder::new()
            .prefix("ward-it-")
            .tempdir()
            .expect("tempdir");
        let ward = Ward {
            dir,
            daemon: None,
            up_args: Vec::new(),
        };
        ward.write_config(toml);
        ward
    }

    pub fn write_config(&self, toml: &str) {
        let text = toml
            .replace("{testee}", TESTEE)
            .replace("{dir}", &self.path().display().to_string());
        std::fs::write(self.config(), text).expect("write ward.toml");
    }

    /// `ward up --no-verify-commands`: for a test of what happens when a
    /// command cannot be run.
    pub fn without_command_checks(mut self) -> Ward {
        self.up_args.push("--no-verify-commands");
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("ward.toml")
    }

    pub fn socket(&self) -> PathBuf {
        self.path().join(".ward").join("ward.sock")
    }

    /// Starts `ward up` in the foreground (its output to files in the
    /// folder) and waits until its API answers.
    pub fn up(mut self) -> Ward {
        self.spawn_daemon(&[]);
        self.wait_answering();
        self
    }

    pub fn spawn_daemon(&mut self, env: &[(&str, &str)]) {
        self.spawn_daemon_with(env, &[]);
    }

    /// As `spawn_daemon`, and also removes `unset` from the daemon's
    /// environment (e.g. `NO_COLOR`, which the harness sets by default).
    pub fn spawn_daemon_with(&mut self, env: &[(&str, &str)], unset: &[&str]) {
        self.spawn_daemon_under(&[], env, unset);
    }

    /// As `spawn_daemon_with`, with ward started by `launcher` (a command
    /// that execs its arguments, such as `prlimit --nofile=256:`), so the
    /// daemon keeps the launcher's pid.
    pub fn spawn_daemon_under(&mut self, launcher: &[&str], env: &[(&str, &str)], unset: &[&str]) {
        let out = std::fs::File::create(self.path().join("ward.out")).expect("out file");
        let err = std::fs::File::create(self.path().join("ward.err")).expect("err file");
        let mut cmd = match launcher.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(WARD);
                cmd
            }
            None => Command::new(WARD),
        };
        cmd.arg("--config")
            .arg(self.config())
            .arg("up")
            .args(&self.up_args)
            .current_dir(self.path())
            .env_remove("WARD_SOCKET")
            .env_remove("WARD_CONFIG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in env {
            cmd.env(k, v);
        }
        for k in unset {
            cmd.env_remove(k);
        }
        self.daemon = Some(cmd.spawn().expect("spawn ward"));
    }

    pub fn daemon_pid(&self) -> u32 {
        self.daemon.as_ref().expect("daemon started").id()
    }

    pub fn wait_answering(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(child) = self.daemon.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "ward exited early ({status}); stderr:\n{}",
                        self.daemon_stderr()
                    );
                }
            }
            let out = self.ward(&["status", "--json"]);
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "ward did not answer within {WAIT:?}; stderr:\n{}",
                self.daemon_stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn daemon_stderr(&self) -> String {
        std::fs::read_to_string(self.path().join("ward.err")).unwrap_or_default()
    }

    pub fn daemon_stdout(&self) -> String {
        std::fs::read_to_string(self.path().join("ward.out")).unwrap_or_default()
    }

    /// A CLI verb against this folder's config, not started yet.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(WARD);
        cmd.arg("--config")
            .arg(self.config())
            .args(args)
            .current_dir(self.path())
            .env_remove("WARD_SOCKET")
            .env_remove("WARD_CONFIG")
            .env("NO_COLOR", "1");
        cmd
    }

    /// Runs a CLI verb against this folder's config, bounded by `WAIT`.
    pub fn ward(&self, args: &[&str]) -> Output {
        run_bounded(self.command(args))
    }

    /// The last `n` events, through `ward events -n N`.
    pub fn events(&self, n: usize) -> Vec<Value> {
        self.ok(&["events", "-n", &n.to_string()])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Every event in the journal file, read directly (works after ward
    /// has exited).
    pub fn journal(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path().join(".ward/events.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Waits until the journal file holds an event matching `pred`.
    pub fn wait_journal(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(event) = self.journal().into_iter().find(&pred) {
                return event;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} in the journal:\n{:#?}\ndaemon stderr:\n{}",
                self.journal(),
                self.daemon_stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `ward ARGS` that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.ward(args);
        assert!(
            out.status.success(),
            "ward {args:?} failed ({}):\nstdout: {}\nstderr: {}\ndaemon stderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.daemon_stderr()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn status(&self) -> Vec<Value> {
        let text = self.ok(&["status", "--json"]);
        serde_json::from_str(&text).expect("status --json is a JSON array")
    }

    pub fn instance(&self, name: &str, index: u64) -> Value {
        self.status()
            .into_iter()
            .find(|s| s["name"] == name && s["instance"] == index)
            .unwrap_or_else(|| panic!("no instance {name}:{index} in status"))
    }

    /// Polls the status until `pred` holds (bounded by `WAIT`).
    pub fn wait_status(&self, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let status = self.status();
            if pred(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last status: {status:#?}\ndaemon stderr:\n{}",
                self.daemon_stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_state(&self, name: &str, index: u64, state: &str) -> Value {
        let status = self.wait_status(&format!("{name}:{index} to be {state}"), |s| {
            s.iter()
                .any(|i| i["name"] == name && i["instance"] == index && i["state"] == state)
        });
        status
            .into_iter()
            .find(|i| i["name"] == name && i["instance"] == index)
            .expect("instance present")
    }

    /// `ward down`, then the daemon must exit 0.
    pub fn down(mut self) {
        self.ok(&["down"]);
        let status = self.wait_daemon_exit();
        assert!(
            status.success(),
            "ward exited with {status}; stderr:\n{}",
            self.daemon_stderr()
        );
    }

    pub fn wait_daemon_exit(&mut self) -> std::process::ExitStatus {
        let child = self.daemon.as_mut().expect("daemon started");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.daemon = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ward did not exit within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Ward {
    fn drop(&mut self) {
        // A failed test must not leave a daemon (or its programs) behind:
        // SIGTERM first so the daemon stops its trees, then SIGKILL (its
        // sentinel then kills whatever is left).
        if let Some(mut child) = self.daemon.take() {
            signal(child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a command with piped output, killing it (by pid) past `WAIT`. The
/// pipes are drained while it runs, so a large output cannot stall it.
pub fn run_bounded(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    // Read on threads; a process that outlives the command and holds a
    // pipe open must not hang the test, so the results arrive on channels.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            let _ = tx.send(bytes);
        });
        rx
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + WAIT;
    let collect = |rx: std::sync::mpsc::Receiver<Vec<u8>>, what: &str| {
        let left = deadline.saturating_duration_since(Instant::now());
        rx.recv_timeout(left.max(Duration::from_secs(1)))
            .unwrap_or_else(|_| panic!("the {what} of {cmd:?} was held open past its exit"))
    };
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Output {
                status,
                stdout: collect(stdout, "stdout"),
                stderr: collect(stderr, "stderr"),
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr
                .recv_timeout(Duration::from_secs(1))
                .unwrap_or_default();
            panic!(
                "command {cmd:?} did not finish within {WAIT:?}; stderr: {}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `sig` (`"TERM"`, `"KILL"`, ...) to one process, by pid.
#[cfg(unix)]
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Windows has no signals a test can send to another console's process:
/// any of them ends the process (its job goes with it when it is ward).
#[cfg(windows)]
pub fn signal(pid: u32, _sig: &str) {
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::System::Threading::{OpenProcess, TerminateProcess, PROCESS_TERMINATE};
    // SAFETY: plain arguments; the handle is closed once used.
    unsafe {
        let process = OpenProcess(PROCESS_TERMINATE, 0, pid);
        if !process.is_null() {
            TerminateProcess(process, 1);
            CloseHandle(process);
        }
    }
}

/// The process exists and has not exited.
#[cfg(windows)]
pub fn alive(pid: u32) -> bool {
    use windows_sys::Win32::Foundation::{CloseHandle, WAIT_TIMEOUT};
    use windows_sys::Win32::System::Threading::{
        OpenProcess, WaitForSingleObject, PROCESS_SYNCHRONIZE,
    };
    // SAFETY: plain arguments; the handle is closed once used.
    unsafe {
        let process = OpenProcess(PROCESS_SYNCHRONIZE, 0, pid);
        if process.is_null() {
            return false;
        }
        let running = WaitForSingleObject(process, 0) == WAIT_TIMEOUT;
        CloseHandle(process);
        running
    }
}

/// Alive and not a zombie.
#[cfg(unix)]
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

/// Pids listed one per line in a testee `--pidfile`.
pub fn read_pids(path: &Path) -> Vec<u32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Waits until `path` lists at least `n` pids.
pub fn wait_pids(path: &Path, n: usize) -> Vec<u32> {
    let deadline = Instant::now() + WAIT;
    loop {
        let pids = read_pids(path);
        if pids.len() >= n {
            return pids;
        }
        assert!(
            Instant::now() < deadline,
            "{} lists {} pids, expected {n}",
            path.display(),
            pids.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until none of `pids` is alive; returns the survivors on timeout.
pub fn wait_gone(pids: &[u32]) -> Vec<u32> {
    let deadline = Instant::now() + WAIT;
    loop {
        let survivors: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if survivors.is_empty() || Instant::now() > deadline {
            return survivors;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills leftovers by pid after a failed assertion, so that one failing
/// test does not leave sleeping processes on the machine.
pub fn kill_all(pids: &[u32]) {
    for pid in pids {
        if alive(*pid) {
            signal(*pid, "KILL");
        }
    }
}

#[cfg(unix)]
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

pub fn wait_until(what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Live pid of an instance object from `status --json`.
pub fn pid_of(instance: &Value) -> u32 {
    let pid = instance["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("no pid: {instance}"));
    u32::try_from(pid).expect("pid fits u32")
}

/// Direct children of `pid` (every thread's), from procfs.
#[cfg(unix)]
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut children = Vec::new();
    for task in tasks.flatten() {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        children.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    children.sort_unstable();
    children.dedup();
    children
}

/// The command name of a process (`/proc/PID/comm`), if it exists.
#[cfg(unix)]
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim_end().to_string())
}

/// A long-running CLI command (`logs -f`, `events -f`) whose stdout is read
/// line by line on a thread of its own. Dropping it kills it by pid.
pub struct Follower {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Follower {
    pub fn start(ward: &Ward, args: &[&str]) -> Follower {
        Follower::spawn(ward.command(args))
    }

    /// Any command, followed the same way.
    pub fn spawn(mut cmd: Command) -> Follower {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn the follower");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Follower { child, lines }
    }

    /// The next line, or `None` once `deadline` passes or the output ends.
    pub fn next_line(&self, deadline: Instant) -> Option<String> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.lines.recv_timeout(left).ok()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A daemon the test did not start as its own child (`ward up --detach`):
/// on drop, if it still runs (a failed test), SIGTERM then SIGKILL, by pid.
pub struct DetachedDaemon(pub u32);

impl Drop for DetachedDaemon {
    fn drop(&mut self) {
        if !alive(self.0) {
            return;
        }
        signal(self.0, "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(self.0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if alive(self.0) {
            signal(self.0, "KILL");
        }
    }
}

/// The daemon's pid as `up --detach` says it: `ward is up (pid N); …` or
/// `the daemon (pid N) did not answer …`.
pub fn said_pid(text: &str) -> Option<u32> {
    text.split("pid ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
}

/// `ward up --detach`, which must succeed. The daemon's pid is taken from
/// the answer (`ward is up (pid N); ...`) or, when it failed, from its error
/// (`the daemon (pid N) did not answer ...`), so that it is ended either way.
pub fn up_detached(ward: &Ward) -> DetachedDaemon {
    let out = ward.ward(&["up", "--detach"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let pid = [&stdout, &stderr]
        .into_iter()
        .find_map(|text| said_pid(text));
    let daemon = pid.map(DetachedDaemon);
    assert!(
        out.status.success(),
        "ward up --detach failed ({}): {stderr}",
        out.status
    );
    assert!(stdout.contains("ward is up"), "{stdout}");
    daemon.unwrap_or_else(|| panic!("no pid in {stdout:?}"))
}

/// A child process (not a ward daemon) killed by pid when the test ends,
/// passed or failed.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The journal of a ward that has exited shows every instance in `expect`
/// ended by SIGTERM (its stop signal), and no stop ran into its deadline.
pub fn assert_stopped_gracefully(ward: &Ward, expect: &[&str]) {
    let journal = ward.journal();
    let exited: Vec<&Value> = journal.iter().filter(|e| e["event"] == "exited").collect();
    for instance in expect {
        assert!(
            exited.iter().any(|e| e["instance"] == *instance),
            "no exit of {instance} in the journal: {journal:#?}"
        );
    }
    for e in &exited {
        assert_eq!(e["status"]["kind"], "signal", "not ended by a signal: {e}");
        assert_eq!(e["status"]["signal"], "TERM", "not ended by SIGTERM: {e}");
    }
    assert!(
        !journal.iter().any(|e| e["event"] == "stop_timeout"),
        "a stop ran into its deadline: {journal:#?}"
    );
}

/// A process told apart from a later one that reuses its pid: the pid and
/// its start time (field 22 of `/proc/PID/stat`, clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Proc {
    pub pid: u32,
    pub start: u64,
}

impl Proc {
    /// The process now running as `pid`, if any.
    pub fn of(pid: u32) -> Option<Proc> {
        start_time(pid).map(|start| Proc { pid, start })
    }

    /// Still this very process (same start time), and not a zombie.
    pub fn alive(&self) -> bool {
        alive(self.pid) && start_time(self.pid) == Some(self.start)
    }
}

/// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks
/// since boot. The fields after the command name (which may hold spaces or
/// parentheses) are counted from its closing parenthesis.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    // `rest` starts at field 3 (state), so field 22 is its 20th.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Every descendant of `pid` (its children, theirs, ...), from procfs.
#[cfg(unix)]
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for child in children_of(p) {
            if !found.contains(&child) {
                found.push(child);
                todo.push(child);
            }
        }
    }
    found.sort_unstable();
    found
}

/// Waits up to `within` until none of `procs` is alive; returns those that
/// still are.
pub fn wait_procs_gone(procs: &[Proc], within: Duration) -> Vec<Proc> {
    let deadline = Instant::now() + within;
    loop {
        let survivors: Vec<Proc> = procs.iter().copied().filter(Proc::alive).collect();
        if survivors.is_empty() || Instant::now() > deadline {
            return survivors;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills each of `procs` that is still that very process, by pid.
pub fn kill_procs(procs: &[Proc]) {
    for p in procs {
        if p.alive() {
            signal(p.pid, "KILL");
        }
    }
}

/// Every live process on the machine whose environment holds `entry`
/// (`NAME=value`) as a whole entry.
pub fn processes_with_env(entry: &str) -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found: Vec<Proc> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|e| e == entry.as_bytes()))
        })
        .filter_map(Proc::of)
        .filter(Proc::alive)
        .collect();
    found.sort_unstable();
    found
}

/// Resident memory of a process (`VmRSS` in `/proc/PID/status`), in KiB.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl Ward {
    /// Every event in the journal, its rotated file (`events.jsonl.1`)
    /// first. A last line still being written (no newline yet) is left out,
    /// so this may be called while ward runs.
    pub fn journal_all(&self) -> Vec<Value> {
        let dir = self.path().join(".ward");
        ["events.jsonl.1", "events.jsonl"]
            .iter()
            .flat_map(|name| {
                std::fs::read_to_string(dir.join(name))
                    .unwrap_or_default()
                    .split_inclusive('\n')
                    .filter_map(|l| l.strip_suffix('\n'))
                    .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                    .collect::<Vec<Value>>()
            })
            .collect()
    }
}
