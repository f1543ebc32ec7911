#![cfg(windows)]
//! Windows scenarios: the real `ward.exe` supervising the real
//! `testee.exe`, with the same harness as the Unix integration tests. CI
//! runs them under Wine (`.ci/windows`), one at a time.
//!
//! What Wine cannot show, and these tests therefore do not ask: a
//! Ctrl-Break reaching a program (Wine delivers only Ctrl-C; a Ctrl-Break
//! stop is ended at its deadline there, which one test relies on).

#[allow(dead_code)]
#[path = "../integration/harness.rs"]
mod harness;

use harness::{alive, pid_of, signal, up_detached, wait_gone, wait_pids, wait_until, Ward};

/// A path the test binary knows (a Unix one, when cross-built) as Windows
/// sees it: Wine maps the Unix root to drive Z:.
fn windows_path(path: &str) -> String {
    if path.starts_with('/') {
        format!("Z:{}", path.replace('/', "\\"))
    } else {
        path.to_string()
    }
}

/// `ward.toml` with `{testee}` as testee.exe's Windows path.
fn config(toml: &str) -> String {
    toml.replace("{testee}", &windows_path(harness::TESTEE))
}

fn log_of(ward: &Ward, name: &str) -> String {
    std::fs::read_to_string(
        ward.path()
            .join(".ward")
            .join("logs")
            .join(format!("{name}.0.log")),
    )
    .unwrap_or_default()
}

fn wait_log(ward: &Ward, name: &str, text: &str) -> String {
    wait_until(&format!("{text:?} in the log of {name}"), || {
        log_of(ward, name).contains(text)
    });
    log_of(ward, name)
}

#[test]
fn output_reaches_the_log_file_and_the_pipe_answers_status() {
    let ward = Ward::new(&config(
        r#"
[program.talk]
command = ['{testee}', "--echo", "to stdout", "--stderr", "--echo", "to stderr"]
"#,
    ))
    .up();
    let log = wait_log(&ward, "talk", "to stderr");
    assert!(log.contains(" stdout to stdout"), "{log}");
    assert!(log.contains(" stderr to stderr"), "{log}");
    let talk = ward.instance("talk", 0);
    assert_eq!(talk["state"], "running", "{talk}");
    assert!(alive(pid_of(&talk)));
    // The table, through the named pipe.
    let table = ward.ok(&["status"]);
    assert!(
        table.contains("talk") && table.contains("running"),
        "{table}"
    );
    ward.down();
}

#[test]
fn a_crashing_program_is_restarted_with_backoff() {
    let ward = Ward::new(&config(
        r#"
[program.crash]
command = ['{testee}', "--echo", "starting", "--exit", "3", "--after", "100ms"]
min_uptime = "50ms"
"#,
    ))
    .up();
    let status = ward.wait_status("two restarts", |s| {
        s[0]["restarts"].as_u64().unwrap_or(0) >= 2
    });
    assert_eq!(status[0]["last_exit"]["code"], 3, "{status:?}");
    let backoff = ward.wait_journal("a restart with a delay", |e| e["event"] == "backoff");
    assert!(
        backoff["delay_ms"].as_u64().is_some_and(|d| d > 0),
        "{backoff}"
    );
    assert!(log_of(&ward, "crash").matches("starting").count() >= 2);
    ward.down();
}

#[test]
fn a_killed_program_is_started_again() {
    let ward = Ward::new(&config(
        r#"
[program.victim]
command = ['{testee}', "--echo", "up"]
"#,
    ))
    .up();
    let first = pid_of(&ward.wait_state("victim", 0, "running"));
    signal(first, "KILL");
    let again = ward.wait_status("a new pid", |s| {
        s[0]["state"] == "running" && s[0]["pid"].as_u64().is_some_and(|p| p != u64::from(first))
    });
    assert_eq!(again[0]["restarts"], 1, "{again:?}");
    assert!(!alive(first));
    ward.down();
}

#[test]
fn ctrl_c_stops_a_program_and_its_children_gracefully() {
    let ward = Ward::new(&config(
        r#"
[program.polite]
command = ['{testee}', "--trap-ctrl", "--pidfile", '{dir}\polite.pids', "--spawn", "2", "--echo", "ready"]
stop_signal = "ctrl-c"
stop_timeout = "20s"
"#,
    ))
    .up();
    wait_log(&ward, "polite", "ready");
    let pids = wait_pids(&ward.path().join("polite.pids"), 3);
    ward.ok(&["stop", "polite"]);
    assert!(wait_gone(&pids).is_empty(), "left running: {pids:?}");
    let log = log_of(&ward, "polite");
    assert!(log.contains("trapped CTRL_C_EVENT"), "{log}");
    let polite = ward.instance("polite", 0);
    assert_eq!(polite["state"], "stopped", "{polite}");
    assert_eq!(polite["last_exit"]["code"], 0, "{polite}");
    ward.down();
}

#[test]
fn a_tree_that_ignores_its_stop_is_ended_whole_at_the_deadline() {
    let ward = Ward::new(&config(
        r#"
[program.stubborn]
command = ['{testee}', "--ignore-ctrl", "--pidfile", '{dir}\stubborn.pids', "--spawn", "2"]
stop_timeout = "1s"
"#,
    ))
    .up();
    let pids = wait_pids(&ward.path().join("stubborn.pids"), 3);
    ward.ok(&["stop", "stubborn"]);
    assert!(wait_gone(&pids).is_empty(), "left running: {pids:?}");
    ward.wait_journal("the kill at the deadline", |e| e["event"] == "stop_timeout");
    ward.down();
}

#[test]
fn a_dead_ward_leaves_no_program_running() {
    let mut ward = Ward::new(&config(
        r#"
[program.orphan]
command = ['{testee}', "--pidfile", '{dir}\orphan.pids', "--spawn", "2"]
"#,
    ))
    .up();
    let pids = wait_pids(&ward.path().join("orphan.pids"), 3);
    signal(ward.daemon_pid(), "KILL");
    ward.wait_daemon_exit();
    // The jobs close with ward's last handle, and their processes end.
    assert!(wait_gone(&pids).is_empty(), "left running: {pids:?}");
}

#[test]
fn a_batch_file_runs_through_cmd() {
    let ward = Ward::new("");
    std::fs::write(
        ward.path().join("job.cmd"),
        "@echo off\r\necho batch says %1 %2\r\n",
    )
    .unwrap();
    ward.write_config(
        r#"
[program.job]
command = ['{dir}\job.cmd', "hello", "two words"]
restart = "never"
"#,
    );
    let ward = ward.up();
    let log = wait_log(&ward, "job", "batch says");
    assert!(log.contains("batch says hello \"two words\""), "{log}");
    ward.down();
}

#[test]
fn rotation_while_the_file_is_open_loses_no_line() {
    let ward = Ward::new(&config(
        r#"
[program.flood]
command = ['{testee}', "--pace", "10ms", "--lines", "10000", "--size", "100", "--exit", "0"]
restart = "never"
logs = { max_size = "32KB", keep = 1000, timestamps = false }
"#,
    ))
    .up();
    ward.wait_state("flood", 0, "exited");
    // The files are written by a thread of their own: read until every
    // line is there (bounded), then check that each is there once.
    let dir = ward.path().join(".ward").join("logs");
    let read_all = || {
        let mut numbers: Vec<u64> = Vec::new();
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with("flood.0.log") {
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            numbers.extend(text.lines().filter_map(|l| {
                let l = l.strip_prefix("stdout ").unwrap_or(l);
                l.get(..12).and_then(|n| n.parse::<u64>().ok())
            }));
        }
        numbers.sort_unstable();
        (files, numbers)
    };
    wait_until("10000 lines in the log files", || {
        read_all().1.len() >= 10_000
    });
    let (files, numbers) = read_all();
    assert!(files > 10, "only {files} files: no rotation happened");
    assert_eq!(numbers.len(), 10_000, "lines doubled across {files} files");
    assert!(numbers.iter().enumerate().all(|(i, n)| *n == i as u64));
    ward.down();
}

#[test]
fn check_refuses_what_windows_cannot_do_at_its_line() {
    let ward = Ward::new(&config(
        r#"
[program.unix]
command = ['{testee}']
stop_signal = "TERM"
user = "www-data"
"#,
    ));
    let out = ward.ward(&["check"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(":4:15"), "{said}");
    assert!(
        said.contains("\"stop_signal\" in [program.unix] cannot be SIGTERM"),
        "{said}"
    );
    assert!(said.contains("ctrl-break"), "{said}");
    assert!(said.contains(":5:8"), "{said}");
    assert!(said.contains("ward install --account"), "{said}");
}

#[test]
fn check_refuses_a_console_event_for_a_gui_program() {
    let windows = std::env::var("SystemRoot").unwrap_or_else(|_| r"C:\windows".into());
    let notepad = format!(r"{windows}\system32\notepad.exe");
    let ward = Ward::new(&format!(
        "[program.editor]\ncommand = ['{notepad}']\n[program.closer]\ncommand = ['{notepad}']\nstop_signal = \"KILL\"\n"
    ));
    let out = ward.ward(&["check"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("cannot be stopped with Ctrl-Break in [program.editor]"),
        "{said}"
    );
    assert!(said.contains("is a GUI program"), "{said}");
    assert!(
        !said.contains("[program.closer]"),
        "KILL reaches a GUI program: {said}"
    );
}

#[test]
fn a_stop_command_stops_a_program_its_own_way() {
    let ward = Ward::new(&config(
        r#"
[program.app]
command = ['{testee}', "--ignore-ctrl", "--echo", "up"]
stop_command = ["cmd.exe", "/c", "taskkill /f /pid %WARD_MAIN_PID%"]
stop_timeout = "30s"
"#,
    ))
    .up();
    let pid = pid_of(&ward.wait_state("app", 0, "running"));
    ward.ok(&["stop", "app"]);
    assert!(!alive(pid));
    let app = ward.instance("app", 0);
    assert_eq!(app["state"], "stopped", "{app}");
    let journal = ward.journal();
    assert!(
        !journal.iter().any(|e| e["event"] == "stop_timeout"),
        "killed at the deadline, not by the stop command: {journal:?}"
    );
    ward.down();
}

#[test]
fn a_detached_ward_stops_its_programs_with_ctrl_c_too() {
    // Detached, ward has no console; its programs still have theirs, with
    // Ctrl-C enabled (a new process group would have disabled it).
    let ward = Ward::new(&config(
        r#"
[program.polite]
command = ['{testee}', "--trap-ctrl", "--echo", "ready"]
stop_signal = "ctrl-c"
stop_timeout = "20s"
"#,
    ));
    let daemon = up_detached(&ward);
    wait_log(&ward, "polite", "ready");
    ward.ok(&["down"]);
    wait_until("the detached ward to exit", || !alive(daemon.0));
    let log = log_of(&ward, "polite");
    assert!(log.contains("trapped CTRL_C_EVENT"), "{log}");
    assert!(
        !ward.journal().iter().any(|e| e["event"] == "stop_timeout"),
        "ended at the deadline: {:?}",
        ward.journal()
    );
}
