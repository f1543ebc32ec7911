//! The CLI's answers to bad input: config errors, unknown names, a daemon
//! that is not running, a second daemon, a stale socket.

use crate::harness::*;

#[test]
fn check_reports_every_error_with_its_position() {
    let ward = Ward::new(
        r#"[program.api]
command = ["{testee}"]
restrat = "always"
stop_timeout = "10 parsecs"

[program.worker]
command = ["{testee}"]
depends_on = { apj = "started" }
"#,
    );
    let out = ward.ward(&["check"]);
    assert!(!out.status.success(), "check must fail on a bad config");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ward.toml:3:1"), "unknown key position: {err}");
    assert!(
        err.contains("did you mean \"restart\""),
        "suggestion: {err}"
    );
    assert!(
        err.contains("ward.toml:4:16"),
        "bad duration position: {err}"
    );
    assert!(
        err.contains("ward.toml:8:"),
        "unknown dependency position: {err}"
    );
    assert!(
        err.contains("did you mean \"api\""),
        "dependency suggestion: {err}"
    );
    assert!(err.contains("3 errors"), "all errors at once: {err}");
    // Nothing started: no state dir, no socket.
    assert!(!ward.socket().exists());
}

#[test]
fn check_accepts_a_good_config() {
    let ward = Ward::new("[program.api]\ncommand = [\"{testee}\"]\n");
    let out = ward.ok(&["check"]);
    assert!(out.contains("ok (1 program, 1 instance)"), "{out}");
}

#[test]
fn up_with_a_bad_config_starts_nothing() {
    let ward = Ward::new("[program.api]\ncommand = 42\n");
    let out = ward.ward(&["up"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ward.toml:2:11"), "{err}");
    assert!(err.contains("nothing was started"), "{err}");
}

#[test]
fn a_daemon_that_is_not_running_is_said_plainly() {
    let ward = Ward::new("[program.api]\ncommand = [\"{testee}\"]\n");
    let out = ward.ward(&["status"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("ward: ward is not running"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn unknown_names_get_a_suggestion_and_a_non_zero_exit() {
    let ward = Ward::new("[program.api]\ncommand = [\"{testee}\"]\n").up();
    ward.wait_state("api", 0, "running");
    for verb in ["start", "stop", "restart"] {
        let out = ward.ward(&[verb, "apj"]);
        assert!(!out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            r#"ward: no program named "apj" (did you mean "api"?)"#
        );
    }
    let out = ward.ward(&["stop", "api:3"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no instance 3"));
    let out = ward.ward(&["signal", "BOGUS", "api"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown signal"));
    // The daemon is unharmed.
    ward.wait_state("api", 0, "running");
    ward.down();
}

#[test]
fn a_second_daemon_on_the_same_state_dir_is_refused() {
    let ward = Ward::new("[program.api]\ncommand = [\"{testee}\"]\n").up();
    let out = ward.ward(&["up"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running"), "{err}");
    // The first one still answers and still runs its program.
    ward.wait_state("api", 0, "running");
    ward.down();
}

#[test]
fn a_stale_socket_and_lock_from_a_killed_ward_are_recovered() {
    let mut ward = Ward::new("[program.api]\ncommand = [\"{testee}\"]\n").up();
    ward.wait_state("api", 0, "running");
    signal(ward.daemon_pid(), "KILL");
    ward.wait_daemon_exit();
    assert!(
        ward.socket().exists(),
        "a SIGKILLed ward leaves its socket file"
    );
    ward.spawn_daemon(&[]);
    ward.wait_answering();
    ward.wait_state("api", 0, "running");
    ward.down();
}

#[test]
fn the_socket_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let ward = Ward::new("[program.api]\ncommand = [\"{testee}\"]\n").up();
    let mode = std::fs::metadata(ward.socket())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    ward.down();
}

#[test]
fn up_detach_returns_once_answering_and_down_stops_it() {
    let ward = Ward::new("[program.api]\ncommand = [\"{testee}\"]\n");
    let out = ward.ok(&["up", "--detach"]);
    assert!(out.contains("ward is up"), "{out}");
    let pid: u32 = out
        .split("pid ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .expect("pid in the message");
    ward.wait_state("api", 0, "running");
    let api_pid = ward.instance("api", 0)["pid"].as_u64().unwrap() as u32;
    ward.ok(&["down"]);
    let survivors = wait_gone(&[pid, api_pid]);
    kill_all(&survivors);
    assert!(
        survivors.is_empty(),
        "still alive after down: {survivors:?}"
    );
}
