//! Faults: a SIGKILLed ward with twenty trees, thousands of crash restarts,
//! a log flood onto a full disk, and a hundred reloads half of which are
//! invalid. Each test asserts on what must hold afterwards (no survivor, no
//! leak, no silent loss, nothing changed), never on how long it took; every
//! wait has a bound so that a broken property fails instead of hanging.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

const STATES: [&str; 8] = [
    "stopped", "waiting", "starting", "running", "backoff", "stopping", "exited", "fatal",
];

// ---------------------------------------------------------------------------
// 1. SIGKILL of ward while it supervises twenty programs

/// Twenty programs: six trees of a leader and 2 or 3 sleeping children (half
/// of them ignoring SIGTERM), thirteen single processes, and one whose
/// grandchild double-forked into a session of its own. Returns the config
/// and, per pidfile name, how many pids it will list.
fn twenty_programs() -> (String, Vec<(String, usize)>) {
    let mut toml = String::new();
    let mut pidfiles = Vec::new();
    for i in 0..6 {
        let children = 2 + i % 2;
        let ignore = if i % 2 == 0 {
            r#""--ignore-term", "#
        } else {
            ""
        };
        toml.push_str(&format!(
            "[program.tree{i}]\ncommand = [\"{{testee}}\", \"--pidfile\", \"{{dir}}/tree{i}.pids\", {ignore}\"--fork\", \"{children}\", \"--forever\"]\n"
        ));
        pidfiles.push((format!("tree{i}"), 1 + children));
    }
    for i in 0..13 {
        toml.push_str(&format!(
            "[program.single{i}]\ncommand = [\"{{testee}}\", \"--pidfile\", \"{{dir}}/single{i}.pids\"]\n"
        ));
        pidfiles.push((format!("single{i}"), 1));
    }
    toml.push_str(
        "[program.escapee]\ncommand = [\"{testee}\", \"--pidfile\", \"{dir}/escapee.pids\", \"--fork\", \"1\", \"--double-fork-setsid\", \"--forever\"]\n",
    );
    // The leader, its sleeping child, and the grandchild in its own session.
    pidfiles.push(("escapee".into(), 3));
    (toml, pidfiles)
}

fn sigkill_with_twenty_programs_leaves_nothing(env: &[(&str, &str)]) {
    let (toml, pidfiles) = twenty_programs();
    let mut ward = Ward::new(&toml);
    ward.spawn_daemon(env);
    ward.wait_answering();
    ward.wait_status("all twenty programs running", |s| {
        s.len() == 20 && s.iter().all(|i| i["state"] == "running")
    });
    let mut listed = Vec::new();
    for (name, n) in &pidfiles {
        listed.extend(wait_pids(&ward.path().join(format!("{name}.pids")), *n));
    }
    let daemon = ward.daemon_pid();
    // Everything under ward as procfs shows it: the trees (the escapee was
    // reparented to ward, its subreaper) and the sentinel, which must also
    // be gone once it has done its work.
    let under_ward = descendants(daemon);
    let missing: Vec<u32> = listed
        .iter()
        .copied()
        .filter(|p| !under_ward.contains(p))
        .collect();
    assert!(
        missing.is_empty(),
        "processes of the trees not found under ward (pid {daemon}) in /proc: {missing:?}; under ward: {under_ward:?}"
    );
    let procs: Vec<Proc> = under_ward.iter().copied().filter_map(Proc::of).collect();
    assert!(
        procs.len() > listed.len(),
        "expected the {} tree processes and the sentinel, found {procs:?}",
        listed.len()
    );

    signal(daemon, "KILL");
    ward.wait_daemon_exit();
    let survivors = wait_procs_gone(&procs, Duration::from_secs(20));
    let described: Vec<String> = survivors
        .iter()
        .map(|p| format!("{} ({})", p.pid, comm(p.pid).unwrap_or_default()))
        .collect();
    kill_procs(&survivors);
    assert!(
        survivors.is_empty(),
        "{} of {} processes outlived a SIGKILLed ward: {described:?}",
        survivors.len(),
        procs.len()
    );
}

#[test]
fn sigkill_of_ward_with_twenty_trees_leaves_no_process() {
    sigkill_with_twenty_programs_leaves_nothing(&[]);
}

#[test]
fn sigkill_of_ward_with_twenty_trees_leaves_no_process_without_cgroups() {
    sigkill_with_twenty_programs_leaves_nothing(&[("WARD_NO_CGROUP", "1")]);
}

// ---------------------------------------------------------------------------
// 2. Thousands of crash restarts; the start limit and its cooldown

/// `churn` restarts as fast as ward allows: no backoff, and every run is a
/// failed start (it ends before `min_uptime`, 1 s by default), so the start
/// limit's window is exercised too, with a burst it never reaches.
/// `limited` gives up after 5 failed starts and tries again after 1 s.
const CRASH_LOOPS: &str = r#"
[program.churn]
command = ["{testee}", "--exit", "1"]
restart = "always"
backoff = { initial = "0ms", max = "0ms", jitter = 0.0 }
start_limit = { burst = 1000000, interval = "1s", cooldown = "never" }

[program.limited]
command = ["{testee}", "--exit", "1"]
restart = "on-failure"
backoff = { initial = "10ms", max = "10ms", jitter = 0.0 }
start_limit = { burst = 5, interval = "10s", cooldown = "1s" }
"#;

const FIRST_SAMPLE: u64 = 1000;
const LAST_SAMPLE: u64 = 5000;
const CRASH_LOOP_LIMIT: Duration = Duration::from_secs(180);

/// How much ward's resident memory may grow from the 1000th restart to the
/// 5000th. By the 1000th, every pool, buffer and allocator arena a restart
/// touches has reached its working size, so later growth is a leak: 4000
/// restarts × 256 bytes is 1000 KiB, so a leak of a quarter KiB per restart
/// fails, while the slack still absorbs allocator noise (a few pages of
/// fragmentation, a new blocking-pool thread's stack being touched).
const RSS_GROWTH_BOUND_KIB: u64 = 1000;

#[test]
fn thousands_of_crash_restarts_keep_memory_flat_and_status_consistent() {
    let ward = Ward::new(CRASH_LOOPS).up();
    let daemon = ward.daemon_pid();
    let started = Instant::now();
    let mut seen: HashMap<String, (u64, u64)> = HashMap::new();
    let mut samples: Vec<(u64, u64)> = Vec::new();
    let mut answers = 0u64;
    let mut saw_fatal = false;
    loop {
        let status = ward.status();
        answers += 1;
        check_consistent(&status, &mut seen);
        saw_fatal |= find(&status, "limited")["state"] == "fatal";
        let churn = find(&status, "churn");
        assert!(
            matches!(
                churn["state"].as_str(),
                Some("starting" | "running" | "backoff")
            ),
            "churn left its crash loop (its start limit is far away): {churn}"
        );
        let restarts = churn["restarts"].as_u64().unwrap_or(0);
        let due = if samples.is_empty() {
            FIRST_SAMPLE
        } else {
            LAST_SAMPLE
        };
        if restarts >= due {
            let rss = vm_rss_kib(daemon).expect("ward's VmRSS");
            samples.push((restarts, rss));
            if restarts >= LAST_SAMPLE {
                break;
            }
        }
        assert!(
            started.elapsed() < CRASH_LOOP_LIMIT,
            "only {restarts} restarts of churn within {CRASH_LOOP_LIMIT:?} (expected {LAST_SAMPLE}); daemon stderr:\n{}",
            ward.daemon_stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    ward.ok(&["stop", "churn"]);
    assert!(
        saw_fatal,
        "limited:0 was never seen fatal in {answers} status answers"
    );
    let (first, last) = (samples[0], samples[1]);
    eprintln!(
        "ward VmRSS: {} KiB after {} restarts, {} KiB after {} ({answers} status answers)",
        first.1, first.0, last.1, last.0
    );
    assert!(
        last.1 <= first.1 + RSS_GROWTH_BOUND_KIB,
        "ward's RSS grew by {} KiB from restart {} to {} ({} → {} KiB): a leak of about {} bytes per restart",
        last.1.saturating_sub(first.1),
        first.0,
        last.0,
        first.1,
        last.1,
        (last.1.saturating_sub(first.1) * 1024) / (last.0 - first.0).max(1)
    );

    // The journal agrees with the counter: one spawn per start, one end per
    // spawn, nothing lost over thousands of runs.
    let churn = ward.instance("churn", 0);
    assert_eq!(churn["state"], "stopped", "{churn}");
    let restarts = churn["restarts"].as_u64().expect("restarts");
    let journal = ward.journal_all();
    let count = |event: &str| {
        journal
            .iter()
            .filter(|e| e["instance"] == "churn:0" && e["event"] == event)
            .count() as u64
    };
    let spawns = count("spawned") + count("spawn_failed");
    assert_eq!(
        spawns,
        restarts + 1,
        "{spawns} spawns of churn:0 in the journal for {restarts} restarts"
    );
    assert_eq!(
        count("exited"),
        count("spawned"),
        "every spawn of churn:0 ends exactly once"
    );

    check_start_limit_cycles(&ward);
    ward.down();
}

/// Every answer lists valid states, and no instance's restart counter or
/// run number ever goes backwards.
fn check_consistent(status: &[Value], seen: &mut HashMap<String, (u64, u64)>) {
    for i in status {
        let name = format!("{}:{}", i["name"].as_str().unwrap_or("?"), i["instance"]);
        let state = i["state"].as_str().unwrap_or("");
        assert!(STATES.contains(&state), "invalid state in {i}");
        let restarts = i["restarts"]
            .as_u64()
            .unwrap_or_else(|| panic!("no restart counter in {i}"));
        let (last_restarts, last_run) = seen.get(&name).copied().unwrap_or((0, 0));
        assert!(
            restarts >= last_restarts,
            "{name}: restarts went back from {last_restarts} to {restarts}"
        );
        // No run (null) says nothing about the order of runs.
        let run = i["run"].as_u64().unwrap_or(last_run);
        assert!(
            run >= last_run,
            "{name}: run went back from {last_run} to {run}"
        );
        seen.insert(name, (restarts, run));
    }
}

fn find<'a>(status: &'a [Value], name: &str) -> &'a Value {
    status
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {status:#?}"))
}

/// `limited` ran its own cycles meanwhile: each is exactly `burst` (5)
/// spawns, then `fatal`, then nothing until the cooldown (1 s) brings a
/// fresh try.
fn check_start_limit_cycles(ward: &Ward) {
    let deadline = Instant::now() + WAIT;
    let events = loop {
        let events: Vec<Value> = ward
            .journal_all()
            .into_iter()
            .filter(|e| {
                e["instance"] == "limited:0" && (e["event"] == "spawned" || e["event"] == "fatal")
            })
            .collect();
        if events.iter().filter(|e| e["event"] == "fatal").count() >= 2 {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "limited:0 did not reach fatal twice: {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let fatals: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e["event"] == "fatal")
        .map(|(i, _)| i)
        .collect();
    let mut cycle_start = 0;
    for &f in &fatals {
        let fatal = &events[f];
        assert_eq!(
            f - cycle_start,
            5,
            "a cycle of limited:0 with {} spawns before fatal (burst 5): {:#?}",
            f - cycle_start,
            &events[cycle_start..=f]
        );
        assert_eq!(fatal["failed_starts"], 5, "{fatal}");
        assert_eq!(fatal["cooldown_ms"], 1000, "{fatal}");
        if let Some(next) = events.get(f + 1) {
            // ward's own timestamps (ms): the fresh try waits out the
            // cooldown. The fatal event is stamped a little after the engine
            // decided, hence the slack below the full second.
            let gap = millis(&next["ts"]) - millis(&fatal["ts"]);
            assert!(
                gap >= 900,
                "limited:0 spawned {gap} ms after fatal, within its 1 s cooldown: {fatal} then {next}"
            );
        }
        cycle_start = f + 1;
    }
    let status = ward.instance("limited", 0);
    assert!(
        matches!(
            status["state"].as_str(),
            Some("fatal" | "backoff" | "starting" | "running")
        ),
        "{status}"
    );
}

/// Milliseconds since the epoch of an RFC 3339 UTC timestamp as ward writes
/// them (`2026-11-21T15:44:13.123Z`).
fn millis(ts: &Value) -> i64 {
    let ts = ts.as_str().unwrap_or_else(|| panic!("no timestamp: {ts}"));
    let num = |range: std::ops::Range<usize>| -> i64 {
        ts.get(range)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad timestamp {ts}"))
    };
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + num(11..13) * 3600 + num(14..16) * 60 + num(17..19);
    secs * 1000 + num(20..23)
}

// ---------------------------------------------------------------------------
// 3. A log flood onto a small filesystem that fills up

/// A tmpfs mounted on a fresh directory, unmounted on drop (lazily if ward
/// still holds a file there).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::Builder::new()
            .prefix("ward-it-tmpfs-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let mut cmd = Command::new("mount");
        // A tmpfs root is world-writable (1777) unless told otherwise, and
        // ward refuses such a log dir.
        cmd.args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
        ])
        .arg(dir.path());
        let out = run_tool(cmd)?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn resize(&self, size: &str) {
        let mut cmd = Command::new("mount");
        cmd.args(["-o", &format!("remount,size={size}")])
            .arg(self.path());
        let out = run_tool(cmd).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.status.success(),
            "remount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Free blocks left to an unprivileged writer.
    fn available_blocks(&self) -> u64 {
        let mut cmd = Command::new("stat");
        cmd.args(["-f", "-c", "%a"]).arg(self.path());
        let out = run_tool(cmd).unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("stat -f: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// Runs a system tool (`mount`, `stat`) with a few lines of output, killed
/// by pid past `WAIT`. Unlike `run_bounded`, a missing tool is an error to
/// return (the test is then skipped), not a panic.
fn run_tool(mut cmd: Command) -> Result<std::process::Output, String> {
    use std::process::Stdio;
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    let deadline = Instant::now() + WAIT;
    loop {
        // The output is a few lines, far below a pipe's capacity, so the
        // tool cannot block on it before it exits.
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().map_err(|e| format!("{what}: {e}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{what} did not finish within {WAIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let mut umount = Command::new("umount");
        umount.arg(self.path());
        let unmounted = run_tool(umount).is_ok_and(|out| out.status.success());
        if !unmounted {
            // ward (or a stray child) still holds a file there: detach the
            // mount now; the kernel frees it once the last file is closed.
            let mut lazy = Command::new("umount");
            lazy.arg("-l").arg(self.path());
            let _ = run_tool(lazy);
        }
    }
}

/// Lines of exactly 100 bytes (`%012d`, `x` filler, newline), stored raw,
/// in blocks of 256 KiB at most every 10 ms, with a heartbeat outside the
/// small disk after each block. The count is out of reach: it floods until
/// stopped.
const FLOOD: &str = r#"
[program.flood]
command = ["{testee}", "--heartbeat", "{dir}/beat", "--pace", "10ms", "--lines", "999999999999", "--size", "100"]
restart = "never"
logs = { dir = "{logs}", timestamps = false, max_size = "1GB", keep = 1 }
"#;
const LINE: usize = 100;
/// Lines per block testee writes (`--lines` flushes at 256 KiB).
const LINES_PER_BLOCK: u64 = (256 * 1024 / LINE as u64) + 1;
/// Lines the child must write while the disk is full: ten times what the
/// pipe (1 MiB) and ward's queue (8 chunks of 256 KiB) can hold, so that it
/// could not get there if ward had stopped draining.
const WHILE_FULL: u64 = 10 * (3 * 1024 * 1024 / LINE as u64);

#[test]
fn a_log_flood_onto_a_full_disk_drops_counted_lines_and_never_blocks_the_child() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs");
        return;
    }
    // Declared before the ward, so dropped after it: ward has let go of its
    // log file before the unmount.
    let disk = match Tmpfs::mount("4m") {
        Ok(disk) => disk,
        Err(e) => {
            eprintln!("skipped: cannot mount a tmpfs: {e}");
            return;
        }
    };
    let ward = Ward::new(&FLOOD.replace("{logs}", &disk.path().display().to_string())).up();
    let pid = pid_of(&ward.wait_state("flood", 0, "running"));
    let beat = ward.path().join("beat");
    let log = disk.path().join("flood.0.log");

    wait_until("the small disk to fill up", || disk.available_blocks() == 0);
    let full_at = heartbeat(&beat);
    let deadline = Instant::now() + WAIT;
    loop {
        // ward keeps answering, and the child keeps running and writing.
        let flood = ward.instance("flood", 0);
        assert_eq!(flood["state"], "running", "{flood}");
        assert_eq!(pid_of(&flood), pid, "the flood was restarted: {flood}");
        if heartbeat(&beat) >= full_at + WHILE_FULL {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the child wrote only {} lines in {WAIT:?} while the disk was full: it is blocked on its output",
            heartbeat(&beat) - full_at
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        disk.available_blocks(),
        0,
        "the disk did not stay full while the child wrote"
    );
    let written_while_full = heartbeat(&beat);
    let size_while_full = file_size(&log);

    // Space returns: writing resumes, and the loss is reported.
    disk.resize("64m");
    let event = ward.wait_journal("a log_lines_dropped event for flood:0", |e| {
        e["event"] == "log_lines_dropped" && e["instance"] == "flood:0"
    });
    let reason = event["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("No space left on device"),
        "reason of {event}"
    );
    assert!(event["lines"].as_u64().unwrap_or(0) > 0, "{event}");
    wait_until("lines written after space returned", || {
        file_size(&log) > size_while_full
            && last_complete_line(&log).is_some_and(|n| n > written_while_full)
    });

    // Every line that did not reach the file was counted: after the stop
    // the pump has reported all it dropped.
    ward.ok(&["stop", "flood"]);
    ward.wait_journal("flood:0 to exit", |e| {
        e["event"] == "exited" && e["instance"] == "flood:0"
    });
    let written = heartbeat(&beat);
    let dropped: u64 = ward
        .journal()
        .iter()
        .filter(|e| e["event"] == "log_lines_dropped" && e["instance"] == "flood:0")
        .map(|e| e["lines"].as_u64().expect("lines"))
        .sum();
    let stored = complete_lines(&log);
    let last = *stored.last().expect("lines in the log");
    assert!(
        stored.windows(2).all(|w| w[0] < w[1]),
        "stored lines out of order or repeated"
    );
    // Lines up to the last stored one that are not in the file (including
    // the one a failed write cut short) must all be in the dropped count;
    // beyond it, only what the child wrote after the last stored line.
    let missing = last + 1 - stored.len() as u64;
    let after_last = (written + 2 * LINES_PER_BLOCK).saturating_sub(last + 1);
    eprintln!(
        "flood: disk full at line {full_at}, {written_while_full} written by then; \
         {written} written in all, {} stored, {missing} missing, {dropped} reported dropped",
        stored.len()
    );
    assert!(
        dropped >= missing,
        "{missing} lines missing from the log, only {dropped} reported dropped"
    );
    assert!(
        dropped <= missing + after_last,
        "{dropped} lines reported dropped, but only {missing} are missing (and at most {after_last} were written after the last stored line)"
    );
    ward.down();
}

/// The child's count of lines written (0 before its first block).
fn heartbeat(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The numbers of the whole lines (exactly as testee wrote them) in a log
/// file, in file order. Lines cut short by a failed write are left out.
fn complete_lines(path: &Path) -> Vec<u64> {
    let bytes = std::fs::read(path).unwrap_or_default();
    bytes
        .split_inclusive(|b| *b == b'\n')
        .filter_map(line_number)
        .collect()
}

fn line_number(line: &[u8]) -> Option<u64> {
    let whole = line.len() == LINE
        && line[..12].iter().all(u8::is_ascii_digit)
        && line[12..LINE - 1].iter().all(|b| *b == b'x')
        && line[LINE - 1] == b'\n';
    if !whole {
        return None;
    }
    std::str::from_utf8(&line[..12]).ok()?.parse().ok()
}

/// The number of the last whole line in the last 64 KiB of a log file.
fn last_complete_line(path: &Path) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))
        .ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    tail.split_inclusive(|b| *b == b'\n')
        .filter_map(line_number)
        .next_back()
}

// ---------------------------------------------------------------------------
// 4. A hundred reloads, alternating valid and invalid configs

const RELOADS: usize = 100;
const RELOAD_LIMIT: Duration = Duration::from_secs(150);

/// Valid config number `k`: `keep` (a tree of three, never restarted),
/// `flip` (its command changes each time: restarted), and `extra` (a tree of
/// two) present when `k` is odd. Every process carries `mark` in its
/// environment, so that a leaked one is found wherever it went.
fn valid_config(k: usize, mark: &str) -> String {
    let mut toml = format!(
        r#"[program.keep]
command = ["{{testee}}", "--pidfile", "{{dir}}/keep.pids", "--fork", "2", "--forever"]
env = {{ FAULTS_MARK = "{mark}" }}

[program.flip]
command = ["{{testee}}", "--echo", "v{k}", "--forever"]
env = {{ FAULTS_MARK = "{mark}" }}
stop_timeout = "5s"
"#
    );
    if k % 2 == 1 {
        toml.push_str(&format!(
            r#"
[program.extra]
command = ["{{testee}}", "--fork", "1", "--forever"]
env = {{ FAULTS_MARK = "{mark}" }}
"#
        ));
    }
    toml
}

/// The valid config `valid` made invalid in one of three ways; returns the
/// text and the `ward.toml:LINE:COL` the error must name.
fn invalid_config(valid: &str, variant: usize) -> (String, String) {
    let lines: Vec<&str> = valid.lines().collect();
    let line_of = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {valid}"))
            + 1
    };
    match variant % 3 {
        // An unknown key, right under [program.keep].
        0 => {
            let at = line_of("[program.keep]") + 1;
            let mut out: Vec<&str> = lines.clone();
            out.insert(at - 1, "restrat = \"always\"");
            (out.join("\n") + "\n", format!("ward.toml:{at}:1:"))
        }
        // A bad duration: the error points at the value.
        1 => {
            let at = line_of("stop_timeout");
            let text = valid.replace("stop_timeout = \"5s\"", "stop_timeout = \"5 parsecs\"");
            (text, format!("ward.toml:{at}:16:"))
        }
        // A dependency on a program that does not exist: the error points
        // at its name.
        _ => {
            let at = line_of("[program.flip]") + 1;
            let mut out: Vec<&str> = lines.clone();
            out.insert(at - 1, "depends_on = { kep = \"started\" }");
            (out.join("\n") + "\n", format!("ward.toml:{at}:16:"))
        }
    }
}

/// What identifies the running state: each instance's pid and run.
fn pids_and_runs(ward: &Ward) -> Vec<(String, Value, Value)> {
    ward.status()
        .into_iter()
        .map(|i| {
            (
                format!("{}:{}", i["name"].as_str().unwrap_or("?"), i["instance"]),
                i["pid"].clone(),
                i["run"].clone(),
            )
        })
        .collect()
}

/// Processes that belong to this test's ward: its descendants, and anything
/// carrying the mark (in case one escaped the tree), each with its command
/// line as it was when found.
fn processes_of(ward: &Ward, mark: &str) -> BTreeMap<Proc, String> {
    let mut all: BTreeSet<Proc> = processes_with_env(&format!("FAULTS_MARK={mark}"))
        .into_iter()
        .collect();
    all.extend(
        descendants(ward.daemon_pid())
            .into_iter()
            .filter_map(Proc::of),
    );
    all.into_iter()
        .map(|p| {
            let what = format!(
                "{} {} ({})",
                p.pid,
                cmdline(p.pid),
                comm(p.pid).unwrap_or_default()
            );
            (p, what)
        })
        .collect()
}

/// Waits until the instances of config `k` all run, `flip` with a pid other
/// than `old_flip`.
fn wait_settled(ward: &Ward, k: usize, old_flip: &Value) -> Vec<Value> {
    let expected = if k % 2 == 1 { 3 } else { 2 };
    ward.wait_status(&format!("config {k} running"), |s| {
        s.len() == expected
            && s.iter().all(|i| i["state"] == "running")
            && s.iter()
                .any(|i| i["name"] == "flip" && &i["pid"] != old_flip)
    })
}

#[test]
fn a_hundred_reloads_alternating_valid_and_invalid_change_only_what_the_valid_ones_say() {
    let mark = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let ward = Ward::new(&valid_config(0, &mark)).up();
    let settled = wait_settled(&ward, 0, &Value::Null);
    let keep = find(&settled, "keep")["pid"].clone();
    let keep_tree = wait_pids(&ward.path().join("keep.pids"), 3);
    let before = processes_of(&ward, &mark);
    let started = Instant::now();

    let mut last_valid = valid_config(0, &mark);
    let mut k = 0;
    for step in 1..=RELOADS {
        assert!(
            started.elapsed() < RELOAD_LIMIT,
            "only {step} of {RELOADS} reloads within {RELOAD_LIMIT:?}"
        );
        if step % 2 == 0 {
            k += 1;
            let old_flip = ward.instance("flip", 0)["pid"].clone();
            last_valid = valid_config(k, &mark);
            ward.write_config(&last_valid);
            let out = ward.ok(&["reload"]);
            assert!(out.contains("restarted flip"), "reload {step}: {out}");
            let extra = if k % 2 == 1 {
                "added extra"
            } else {
                "removed extra"
            };
            assert!(out.contains(extra), "reload {step}: {out}");
            let status = wait_settled(&ward, k, &old_flip);
            assert_eq!(find(&status, "keep")["pid"], keep, "keep was restarted");
        } else {
            let before_reload = pids_and_runs(&ward);
            let (text, position) = invalid_config(&last_valid, step / 2);
            ward.write_config(&text);
            let out = ward.ward(&["reload"]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "reload {step} of an invalid config succeeded: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            assert!(
                err.contains(&position),
                "reload {step}: {position} in {err}"
            );
            assert!(err.contains("nothing was changed"), "reload {step}: {err}");
            assert_eq!(
                pids_and_runs(&ward),
                before_reload,
                "reload {step}: an invalid config changed what runs"
            );
            // The running spec is still the last valid one.
            ward.write_config(&last_valid);
            let dry = ward.ok(&["reload", "--dry-run"]);
            assert_eq!(
                dry.trim(),
                "would change: no changes",
                "after reload {step}"
            );
        }
    }

    let journal = ward.journal_all();
    let count = |event: &str| journal.iter().filter(|e| e["event"] == event).count();
    assert_eq!(count("reloaded"), RELOADS / 2, "valid reloads applied");
    assert_eq!(count("reload_rejected"), RELOADS / 2, "invalid reloads");

    // The last valid config has the shape of the first: the same number of
    // processes, keep's tree the very same ones.
    assert_eq!(k % 2, 0);
    let deadline = Instant::now() + WAIT;
    let after = loop {
        let after = processes_of(&ward, &mark);
        if after.len() == before.len() || Instant::now() > deadline {
            break after;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        after.len(),
        before.len(),
        "processes before the reloads: {:#?}\nafter: {:#?}",
        before.values().collect::<Vec<_>>(),
        after.values().collect::<Vec<_>>()
    );
    for pid in keep_tree {
        assert!(
            after.keys().any(|p| p.pid == pid),
            "keep's process {pid} is gone"
        );
    }
    ward.down();
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// A disk that hangs under the state dir

/// The event journal, ward's own log and state.json written by threads that
/// never get to write (a test build's stand-in for a hung disk): the driver
/// never waits on them, so a crashing program is still restarted, a stop
/// is still carried out, and the API still answers. ward still ends,
/// saying what it could not write.
#[test]
fn a_hung_disk_under_the_state_dir_stops_no_supervision() {
    let mut ward = Ward::new(
        r#"
[program.crashy]
command = ["{testee}", "--exit", "1"]
backoff = { initial = "5ms", max = "5ms" }
start_limit = { burst = 1000000 }
min_uptime = "0s"

[program.steady]
command = ["{testee}"]
"#,
    );
    ward.spawn_daemon(&[("WARD_TEST_STALL_WRITES", "events.jsonl,state.json,ward.log")]);
    ward.wait_answering();
    // Far more events than the journal writer's queue holds.
    wait_until("crashy to be restarted 300 times", || {
        ward.instance("crashy", 0)["restarts"].as_u64().unwrap_or(0) >= 300
    });
    ward.ok(&["stop", "steady"]);
    assert_eq!(ward.instance("steady", 0)["state"], "stopped");
    ward.ok(&["start", "steady"]);
    // Nothing reached the files.
    let journal = ward.path().join(".ward/events.jsonl");
    assert_eq!(
        std::fs::metadata(&journal).map(|m| m.len()).unwrap_or(0),
        0,
        "the stalled journal writer wrote"
    );
    ward.ok(&["down"]);
    ward.wait_daemon_exit();
    let err = ward.daemon_stderr();
    assert!(
        err.contains("events.jsonl was not fully written within 5s; ending anyway"),
        "{err}"
    );
}
