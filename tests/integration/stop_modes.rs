//! `stop_mode`: the stop signal to the whole tree, or to the main process
//! only (which stops the rest its own way); either way the tree is killed
//! at `stop_timeout`.

use crate::harness::*;

/// A main process that ignores TERM, with a child that says when it gets
/// TERM (it inherited the trap before the main process ignored TERM).
fn stop_with(mode: &str) -> (String, Vec<serde_json::Value>) {
    let mut ward = Ward::new(&format!(
        r#"
[program.pg]
command = ["{{testee}}", "--pidfile", "{{dir}}/pids", "--trap", "TERM", "--fork", "1", "--ignore-term", "--forever"]
stop_mode = "{mode}"
stop_timeout = "1s"
"#
    ))
    .up();
    ward.wait_state("pg", 0, "running");
    let pids = wait_pids(&ward.path().join("pids"), 2);
    ward.ok(&["stop", "pg"]);
    let survivors = wait_gone(&pids);
    kill_all(&survivors);
    assert!(
        survivors.is_empty(),
        "{mode}: {survivors:?} outlived the stop"
    );
    let log = std::fs::read_to_string(ward.path().join(".ward/logs/pg.0.log")).unwrap_or_default();
    let journal = ward.journal();
    ward.ok(&["down"]);
    ward.wait_daemon_exit();
    (log, journal)
}

fn timed_out(journal: &[serde_json::Value]) -> bool {
    killed_at_deadline(journal, "pg:0")
}

fn killed_at_deadline(journal: &[serde_json::Value], instance: &str) -> bool {
    journal
        .iter()
        .any(|e| e["event"] == "stop_timeout" && e["instance"] == instance)
}

#[test]
fn stop_mode_tree_signals_every_process() {
    let (log, journal) = stop_with("tree");
    assert!(
        log.contains("trapped SIGTERM"),
        "the child got no TERM:\n{log}"
    );
    // The main process ignores TERM: the tree is killed at the deadline.
    assert!(timed_out(&journal), "{journal:#?}");
}

#[test]
fn stop_mode_main_signals_the_main_process_only() {
    let (log, journal) = stop_with("main");
    assert!(
        !log.contains("trapped SIGTERM"),
        "the child got TERM although only the main process should:\n{log}"
    );
    assert!(timed_out(&journal), "{journal:#?}");
}

#[test]
fn stop_mode_main_does_reach_the_main_process() {
    // The child ignores TERM (inherited before the trap); the main process
    // traps it, says so and exits 0. Its child is left for the deadline,
    // and a stop that ends this way is not a program daemonizing itself.
    let ward = Ward::new(
        r#"
[program.pg]
command = ["{testee}", "--pidfile", "{dir}/pids", "--ignore-term", "--fork", "1", "--trap", "TERM", "--forever"]
stop_mode = "main"
stop_timeout = "1s"
"#,
    )
    .up();
    ward.wait_state("pg", 0, "running");
    let pids = wait_pids(&ward.path().join("pids"), 2);
    ward.ok(&["stop", "pg"]);
    let survivors = wait_gone(&pids);
    kill_all(&survivors);
    assert!(survivors.is_empty(), "{survivors:?} outlived the stop");
    let log = std::fs::read_to_string(ward.path().join(".ward/logs/pg.0.log")).unwrap_or_default();
    assert_eq!(
        log.matches("trapped SIGTERM").count(),
        1,
        "the main process, and only it, traps TERM:\n{log}"
    );
    let journal = ward.journal();
    assert!(timed_out(&journal), "{journal:#?}");
    assert!(
        !journal.iter().any(|e| e["event"] == "daemonized"),
        "{journal:#?}"
    );
    let status = ward.wait_state("pg", 0, "stopped");
    assert!(status.get("note").is_none(), "{status}");
    ward.down();
}

#[test]
fn ward_signal_reaches_the_main_process_or_with_tree_every_process() {
    let ward = Ward::new(
        r#"
[program.pool]
command = ["{testee}", "--pidfile", "{dir}/pids", "--trap", "HUP", "--fork", "1", "--ignore", "HUP", "--forever"]
"#,
    )
    .up();
    ward.wait_state("pool", 0, "running");
    let pids = wait_pids(&ward.path().join("pids"), 2);
    let log = ward.path().join(".ward/logs/pool.0.log");
    let trapped = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("trapped SIGHUP")
    };
    // The main process ignores HUP; only the child would say it got one.
    ward.ok(&["signal", "HUP", "pool"]);
    ward.ok(&["status"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!trapped(), "the child got HUP without --tree");
    ward.ok(&["signal", "--tree", "HUP", "pool"]);
    wait_until("the child to get HUP", trapped);
    assert!(alive(pids[0]), "the main process ignores HUP");
    ward.down();
    let survivors = wait_gone(&pids);
    kill_all(&survivors);
}

#[test]
fn a_program_that_daemonizes_itself_is_named_as_such() {
    let ward = Ward::new(
        r#"
[program.nginx]
command = ["{testee}", "--pidfile", "{dir}/pids", "--double-fork-setsid", "--exit", "0"]
restart = "never"
stop_timeout = "2s"
"#,
    )
    .up();
    let pids = wait_pids(&ward.path().join("pids"), 2);
    let event = ward.wait_journal("the daemonized event", |e| {
        e["event"] == "daemonized" && e["instance"] == "nginx:0"
    });
    assert!(event["run"].as_u64().is_some(), "{event}");
    let status = ward.wait_state("nginx", 0, "exited");
    let note = status["note"].as_str().unwrap_or_default();
    assert!(note.starts_with("daemonized itself"), "{status}");
    assert!(note.contains("foreground"), "{status}");
    let table = ward.ok(&["status"]);
    assert!(
        table.contains("exit 0, daemonized itself: run it in the foreground"),
        "{table}"
    );
    // What it left in the background is gone with the run.
    let survivors = wait_gone(&pids);
    kill_all(&survivors);
    assert!(survivors.is_empty(), "{survivors:?} outlived the run");
    ward.down();
}

/// `stop_command`: the program's own way to stop, told which process is
/// the main one; the signal is not sent.
#[test]
fn a_stop_command_stops_the_program_its_own_way() {
    let ward = Ward::new(
        r#"
[program.app]
command = ["{testee}", "--trap", "USR1", "--ignore-term", "--forever"]
stop_command = ["sh", "-c", "echo stopping $WARD_MAIN_PID for $WARD_PROGRAM; kill -USR1 $WARD_MAIN_PID"]
stop_timeout = "20s"
"#,
    )
    .up();
    let pid = pid_of(&ward.wait_state("app", 0, "running"));
    ward.ok(&["stop", "app"]);
    let app = ward.instance("app", 0);
    assert_eq!(app["state"], "stopped", "{app}");
    assert_eq!(app["last_exit"]["code"], 0, "{app}");
    let log = std::fs::read_to_string(ward.path().join(".ward/logs/app.0.log")).unwrap();
    assert!(log.contains("trapped SIGUSR1"), "{log}");
    assert!(
        !killed_at_deadline(&ward.journal(), "app:0"),
        "killed at the deadline"
    );
    assert!(!alive(pid));
    ward.down();
}

/// A stop command that fails is said, and the deadline still ends the
/// program.
#[test]
fn a_failing_stop_command_is_said_and_the_deadline_still_holds() {
    let ward = Ward::new(
        r#"
[program.app]
command = ["{testee}", "--ignore-term", "--forever"]
stop_command = ["sh", "-c", "echo no such endpoint >&2; exit 3"]
stop_timeout = "1s"
"#,
    )
    .up();
    let pid = pid_of(&ward.wait_state("app", 0, "running"));
    ward.ok(&["stop", "app"]);
    let said = ward.wait_journal("the failed stop command", |e| {
        e["event"] == "notice"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("stop command sh failed (exit 3): no such endpoint"))
    });
    assert!(
        said["message"]
            .as_str()
            .unwrap()
            .ends_with("the stop goes on to its deadline"),
        "{said}"
    );
    assert!(
        killed_at_deadline(&ward.journal(), "app:0"),
        "not killed at the deadline"
    );
    assert!(!alive(pid));
    ward.down();
}
