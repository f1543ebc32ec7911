//! Exit codes scripts can trust: `start`/`restart` answer only once each
//! instance is up (running past its `min_uptime`, or a one-shot that
//! completed) and fail naming each one that is not; `up --detach` says
//! what is not running; the codes of docs/usage.md's table.

use crate::harness::*;

fn run(ward: &Ward, args: &[&str]) -> (Option<i32>, String, String) {
    let out = ward.ward(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn start_fails_for_a_program_that_dies_before_min_uptime() {
    let ward = Ward::new(
        r#"
[program.crashy]
command = ["{testee}", "--stderr", "--echo", "Address already in use", "--exit", "1", "--after", "300ms"]
autostart = false

[program.steady]
command = ["{testee}"]
autostart = false

[program.once]
command = ["{testee}", "--exit", "0", "--after", "100ms"]
restart = "never"
autostart = false
"#,
    )
    .up();
    // Running at first, dead 300 ms later: not "running (pid …)", exit 1.
    let (code, stdout, stderr) = run(&ward, &["start", "crashy"]);
    assert_eq!(code, Some(1), "stdout: {stdout}\nstderr: {stderr}");
    assert!(!stdout.contains("running"), "{stdout}");
    assert!(
        stderr.contains("crashy:0 backoff: exit 1; next try in"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("ward: 1 instance did not start: crashy:0\n"),
        "{stderr}"
    );
    // The same for restart.
    let (code, _, stderr) = run(&ward, &["restart", "crashy"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("ward: 1 instance did not restart: crashy:0"),
        "{stderr}"
    );
    ward.ok(&["stop", "crashy"]);

    // One that stays up: exit 0, answered after its min_uptime (1 s).
    let (code, stdout, stderr) = run(&ward, &["start", "steady"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("steady:0 running (pid "), "{stdout}");
    let steady = ward.instance("steady", 0);
    assert!(
        steady["uptime_ms"].as_u64().unwrap() >= 1000,
        "answered before min_uptime: {steady}"
    );

    // A one-shot that exits 0 did what it was started for.
    let (code, stdout, stderr) = run(&ward, &["start", "once"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "once:0 exited: completed (exit 0)\n");

    // Several targets: each is named, the good one on stdout.
    let (code, stdout, stderr) = run(&ward, &["start", "steady", "crashy"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.contains("steady:0 running"), "{stdout}");
    assert!(stderr.contains("crashy:0 backoff"), "{stderr}");
    ward.down();
}

#[test]
fn start_fails_with_the_error_of_a_command_that_cannot_run() {
    let ward = Ward::new(
        r#"
[program.typo]
command = ["pyhton3", "job.py"]
autostart = false
"#,
    )
    .without_command_checks()
    .up();
    let (code, stdout, stderr) = run(&ward, &["start", "typo"]);
    assert_eq!(code, Some(1), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains("typo:0 backoff: cannot run pyhton3: not found in PATH"),
        "{stderr}"
    );
    ward.down();
}

#[test]
fn start_waits_for_a_dependency_on_its_way_up_to_the_timeout() {
    let ward = Ward::new(
        r#"
[program.migrate]
command = ["{testee}", "--exit", "0", "--after", "2500ms"]
restart = "on-failure"
autostart = false

[program.web]
command = ["{testee}"]
depends_on = { migrate = "completed" }
autostart = false
"#,
    )
    .up();
    // Too short a wait for the migration: exit 1, saying what it waits on.
    let (code, stdout, stderr) = run(&ward, &["start", "web", "--timeout", "0s"]);
    assert_eq!(code, Some(1), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains("web:0 waiting: for migrate:0 to complete (it is running)"),
        "{stderr}"
    );
    assert!(stderr.contains("wait longer with --timeout"), "{stderr}");
    // Waiting long enough: web runs once migrate has completed.
    let (code, stdout, stderr) = run(&ward, &["start", "web"]);
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.starts_with("web:0 running (pid "), "{stdout}");
    assert_eq!(ward.instance("migrate", 0)["state"], "exited");
    ward.down();
}

#[test]
fn exit_codes_tell_failure_usage_and_not_running_apart() {
    let ward = Ward::new("[program.api]\ncommand = [\"{testee}\"]\n");
    // No daemon: 3, for every verb that needs one.
    for args in [
        &["status"][..],
        &["start", "api"],
        &["stop", "api"],
        &["restart", "api"],
        &["reload"],
        &["down"],
        &["signal", "HUP", "api"],
        &["logs", "-f", "api"],
        &["events", "-f"],
    ] {
        let (code, _, stderr) = run(&ward, args);
        assert_eq!(code, Some(3), "ward {args:?}: {stderr}");
        assert!(stderr.contains("ward is not running"), "{args:?}: {stderr}");
    }
    // Bad arguments: 2, daemon or not.
    for args in [
        &["start"][..],
        &["frobnicate"],
        &["start", "api", "--timeout", "soon"],
    ] {
        let (code, _, stderr) = run(&ward, args);
        assert_eq!(code, Some(2), "ward {args:?}: {stderr}");
    }
    let ward = ward.up();
    ward.wait_state("api", 0, "running");
    // A program that does not exist is the caller's mistake: 2.
    let (code, _, stderr) = run(&ward, &["start", "apj"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("did you mean"), "{stderr}");
    let (code, _, stderr) = run(&ward, &["stop", "api:3"]);
    assert_eq!(code, Some(2), "{stderr}");
    // And what works is 0.
    let (code, _, stderr) = run(&ward, &["status"]);
    assert_eq!(code, Some(0), "{stderr}");
    ward.down();
}

#[test]
fn up_detach_says_what_is_not_running_and_fails_on_a_program_given_up_on() {
    let ward = Ward::new(
        r#"
[program.steady]
command = ["{testee}"]

[program.crashy]
command = ["{testee}", "--exit", "3", "--after", "100ms"]
backoff = { initial = "10s" }

[program.hopeless]
command = ["{testee}", "--exit", "1"]
start_limit = { burst = 1, interval = "1m" }
"#,
    );
    let out = ward.ward(&["up", "--detach"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Whatever happens, the daemon is ended by its pid.
    let pid = said_pid(&stdout).unwrap_or_else(|| panic!("no pid in {stdout:?} / {stderr}"));
    let _daemon = DetachedDaemon(pid);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.contains("ward is up"), "{stdout}");
    assert!(
        stdout.contains("crashy:0 backoff: exit 3; next try in"),
        "{stdout}"
    );
    assert!(stdout.contains("hopeless:0 fatal: exit 1"), "{stdout}");
    assert!(
        !stdout.contains("steady:0"),
        "a running program is listed: {stdout}"
    );
    assert!(
        stderr.contains("ward is up, but gave up on hopeless:0 (fatal)"),
        "{stderr}"
    );
    // It is up all the same: the running program was left running.
    assert_eq!(ward.instance("steady", 0)["state"], "running");
    ward.ok(&["down"]);
}
