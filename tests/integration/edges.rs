//! Nothing lost at the edges: a daemon that goes while another comes, a
//! ward killed together with its sentinel.

use std::path::Path;

use crate::harness::*;

/// Every line of an instance's log files, oldest first. A rotation while
/// the files are read (one renamed between listing and reading) makes it
/// read them all again.
fn all_log_lines(dir: &Path, name: &str) -> Vec<String> {
    for _ in 0..100 {
        if let Some(lines) = try_all_log_lines(dir, name) {
            return lines;
        }
    }
    panic!("the log files of {name} kept changing while read");
}

fn try_all_log_lines(dir: &Path, name: &str) -> Option<Vec<String>> {
    let mut files: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let rest = file.strip_prefix(name)?;
            let n = match rest {
                "" => 0,
                r => r.strip_prefix('.')?.parse().ok()?,
            };
            Some((n, e.path()))
        })
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut lines = Vec::new();
    for (_, path) in &files {
        match std::fs::read_to_string(path) {
            Ok(text) => lines.extend(text.lines().map(str::to_string)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
    Some(lines)
}

#[test]
fn down_then_up_at_once_loses_no_line_and_mixes_no_writers() {
    let ward = Ward::new(
        r#"
[program.flood]
command = ["{testee}", "--lines", "100000000", "--size", "100", "--pace", "20ms"]
logs = { max_size = "4MB", keep = 50 }
"#,
    );
    // About 12 MB/s (a 256 KiB block every 20 ms): the 50 files hold every
    // line of the three runs, so none is rotated away before it is read.
    let logs = ward.path().join(".ward/logs");
    let mut firsts = Vec::new();
    for round in 0..3 {
        let daemon = up_detached(&ward);
        ward.wait_state("flood", 0, "running");
        let before = all_log_lines(&logs, "flood.0.log").len();
        wait_until("the flood to write", || {
            all_log_lines(&logs, "flood.0.log").len() > before + 2000
        });
        ward.ok(&["down"]);
        // `down` returns once the daemon is gone, lock and all.
        assert!(
            !alive(daemon.0),
            "round {round}: ward down returned while the daemon (pid {}) was still running",
            daemon.0
        );
        firsts.push(daemon);
    }
    // Each run's lines are whole, in order, and none is missing: the
    // numbers count up by one from 0, and start again at 0 with the next
    // run. Only a run's very last line may be cut (the program was stopped
    // in the middle of writing it); it is marked as a piece (`stdout+`).
    let lines = all_log_lines(&logs, "flood.0.log");
    let mut runs = 0;
    let mut expect = 0u64;
    let mut cut = false;
    for (i, line) in lines.iter().enumerate() {
        // `<timestamp> stdout <text>`
        let (stream, text) = line
            .split_once(' ')
            .and_then(|(_, rest)| rest.split_once(' '))
            .unwrap_or_else(|| panic!("line {i} has no stream: {line:?}"));
        let number: u64 = text
            .get(..12)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("line {i} is not a numbered line: {line:?}"));
        if number == 0 {
            runs += 1;
            expect = 0;
            cut = false;
        }
        assert!(
            !cut,
            "line {i} follows a cut line in the same run: {line:?}"
        );
        assert_eq!(
            number, expect,
            "line {i}: a line is missing or repeated: {line:?}"
        );
        match stream {
            "stdout" => assert_eq!(text.len(), 99, "line {i} is not whole: {line:?}"),
            "stdout+" => cut = true,
            other => panic!("line {i}: unexpected stream {other:?}"),
        }
        expect += 1;
    }
    assert_eq!(runs, 3, "one run per daemon");
}

/// ward and its sentinel SIGKILLed together, moments after a run started
/// (before `state.json` could record it), with a grandchild that left the
/// process group: the next `ward up` on the state dir finds and kills it.
fn a_young_escapee_is_swept_by_the_next_start(env: &[(&str, &str)]) {
    let mut ward = Ward::new(
        r#"
[program.steady]
command = ["{testee}", "--forever"]

[program.young]
command = ["{testee}", "--pidfile", "{dir}/young.pids", "--double-fork-setsid", "--forever"]
autostart = false
"#,
    );
    ward.spawn_daemon(env);
    ward.wait_answering();
    ward.wait_state("steady", 0, "running");
    let daemon = ward.daemon_pid();
    let sentinel = children_of(daemon)
        .into_iter()
        .find(|&p| comm(p).as_deref() == Some("ward-sentinel"))
        .expect("the sentinel is a child of ward");
    // Not waiting for `start` to answer: the kill comes as soon as the
    // escapee exists.
    let starter = KillOnDrop(ward.command(&["start", "young"]).spawn().unwrap());
    let pids = wait_pids(&ward.path().join("young.pids"), 2);
    // Both at once, before the deferred write of state.json.
    signal(sentinel, "KILL");
    signal(daemon, "KILL");
    ward.wait_daemon_exit();
    drop(starter);
    let state = std::fs::read_to_string(ward.path().join(".ward/state.json")).unwrap_or_default();
    let recorded = serde_json::from_str::<serde_json::Value>(&state)
        .ok()
        .and_then(|s| s["live"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .any(|r| r["instance"] == "young:0");
    eprintln!("the young run was recorded in state.json: {recorded}");
    let escapee = pids[1];
    assert!(
        alive(escapee),
        "the escapee died with ward: nothing to test"
    );

    ward.spawn_daemon(env);
    ward.wait_answering();
    let event = ward.wait_journal("the sweep of what the dead ward left", |e| {
        e["event"] == "notice"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("left behind by a previous ward"))
    });
    let survivors = wait_gone(&[escapee]);
    kill_all(&survivors);
    assert!(
        survivors.is_empty(),
        "the escapee {escapee} outlived the sweep ({event})"
    );
    ward.down();
}

#[test]
fn a_young_escapee_of_a_ward_killed_with_its_sentinel_is_swept() {
    a_young_escapee_is_swept_by_the_next_start(&[]);
}

#[test]
fn a_young_escapee_of_a_ward_killed_with_its_sentinel_is_swept_without_cgroups() {
    a_young_escapee_is_swept_by_the_next_start(&[("WARD_NO_CGROUP", "1")]);
}
