//! What signals to ward do: SIGINT/SIGTERM stop everything gracefully and a
//! second one kills at once; SIGHUP stops a foreground ward (its terminal
//! went away) and reloads a detached one.

use std::time::Duration;

use crate::harness::*;

#[test]
fn a_second_sigint_kills_every_tree_at_once() {
    second_stop_signal_kills_at_once("INT");
}

#[test]
fn a_second_sigterm_kills_every_tree_at_once() {
    second_stop_signal_kills_at_once("TERM");
}

/// A tree that ignores SIGTERM with a stop deadline far beyond `WAIT`: only
/// the second signal can end it before the wait runs out.
fn second_stop_signal_kills_at_once(sig: &str) {
    let mut ward = Ward::new(
        r#"
[program.stubborn]
command = ["{testee}", "--pidfile", "{dir}/s.pids", "--ignore-term", "--fork", "1", "--forever"]
stop_timeout = "60s"
"#,
    )
    .up();
    ward.wait_state("stubborn", 0, "running");
    let pids = wait_pids(&ward.path().join("s.pids"), 2);
    assert!(WAIT < Duration::from_secs(60));
    signal(ward.daemon_pid(), sig);
    // Two signals delivered before ward looks may count as one: wait until
    // the first one is being acted on.
    ward.wait_journal("stubborn:0 stopping", |e| {
        e["event"] == "state_changed" && e["instance"] == "stubborn:0" && e["to"] == "stopping"
    });
    signal(ward.daemon_pid(), sig);
    let status = ward.wait_daemon_exit();
    let survivors = wait_gone(&pids);
    kill_all(&survivors);
    assert!(status.success(), "exit status {status}");
    assert!(survivors.is_empty(), "survivors: {survivors:?}");
    let journal = ward.journal();
    assert!(
        journal.iter().any(|e| e["event"] == "exited"
            && e["instance"] == "stubborn:0"
            && e["status"]["signal"] == "KILL"),
        "stubborn:0 did not end by SIGKILL: {journal:#?}"
    );
}

#[test]
fn sighup_stops_a_foreground_ward_gracefully() {
    let mut ward = Ward::new(
        r#"
[program.a]
command = ["{testee}", "--pidfile", "{dir}/a.pids", "--fork", "1"]
[program.b]
command = ["{testee}", "--pidfile", "{dir}/b.pids"]
"#,
    )
    .up();
    ward.wait_state("a", 0, "running");
    ward.wait_state("b", 0, "running");
    let mut pids = wait_pids(&ward.path().join("a.pids"), 2);
    pids.extend(wait_pids(&ward.path().join("b.pids"), 1));
    // Were SIGHUP a reload, the unchanged config would leave ward running
    // and the wait below would time out.
    signal(ward.daemon_pid(), "HUP");
    let status = ward.wait_daemon_exit();
    let survivors = wait_gone(&pids);
    kill_all(&survivors);
    assert!(status.success(), "exit status {status}");
    assert!(survivors.is_empty(), "survivors: {survivors:?}");
    assert_stopped_gracefully(&ward, &["a:0", "b:0"]);
}

#[test]
fn sighup_reloads_a_detached_ward() {
    let ward = Ward::new("[program.a]\ncommand = [\"{testee}\"]\n");
    let daemon = up_detached(&ward);
    let a = ward.wait_state("a", 0, "running");
    ward.write_config(
        "[program.a]\ncommand = [\"{testee}\"]\n[program.b]\ncommand = [\"{testee}\"]\n",
    );
    signal(daemon.0, "HUP");
    let b = ward.wait_state("b", 0, "running");
    assert!(alive(daemon.0), "the detached ward went away on SIGHUP");
    assert_eq!(ward.instance("a", 0)["pid"], a["pid"], "a was restarted");
    let events = ward.events(200);
    assert!(
        events.iter().any(|e| e["event"] == "reloaded"),
        "{events:#?}"
    );
    ward.ok(&["down"]);
    let survivors = wait_gone(&[daemon.0, pid_of(&a), pid_of(&b)]);
    kill_all(&survivors);
    assert!(survivors.is_empty(), "alive after down: {survivors:?}");
}

#[test]
fn ward_signal_reaches_the_main_process_only() {
    // Main process and child both print on SIGHUP and exit; the child was
    // forked after the trap was set, so it has the same handler.
    let mut ward = Ward::new(
        r#"
[program.tree]
command = ["{testee}", "--pidfile", "{dir}/t.pids", "--trap", "HUP", "--fork", "1", "--forever"]
restart = "never"
"#,
    )
    .up();
    ward.wait_state("tree", 0, "running");
    let pids = wait_pids(&ward.path().join("t.pids"), 2);
    ward.ok(&["signal", "HUP", "tree"]);
    let tree = ward.wait_state("tree", 0, "exited");
    assert_eq!(tree["last_exit"]["code"], 0, "the main process trapped it");
    ward.ok(&["down"]);
    let status = ward.wait_daemon_exit();
    assert!(status.success(), "{status}");
    let survivors = wait_gone(&pids);
    kill_all(&survivors);
    assert!(survivors.is_empty(), "survivors: {survivors:?}");
    // Every line is in the file once ward has exited.
    let log = std::fs::read_to_string(ward.path().join(".ward/logs/tree.0.log")).unwrap();
    let trapped = log
        .lines()
        .filter(|l| l.ends_with("trapped SIGHUP"))
        .count();
    assert_eq!(trapped, 1, "only the main process gets the signal:\n{log}");
}
