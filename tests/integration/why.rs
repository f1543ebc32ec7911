//! Saying why, where people look: the status table's reason column,
//! `ward status NAME` in detail, `ward logs` of a program with no output,
//! who stopped what across restarts of ward, and one shape for an exit in
//! the status and in the events.

use crate::harness::*;

const STACK: &str = r#"
[program.typo]
command = ["pyhton3-not-a-real-command", "app.py"]
backoff = { initial = "30s" }

[program.crash]
command = ["{testee}", "--stderr", "--echo", "Address already in use", "--exit", "3"]
backoff = { initial = "10ms", max = "10ms" }
start_limit = { burst = 2, interval = "1m", cooldown = "never" }

[program.once]
command = ["{testee}", "--exit", "0"]
restart = "on-failure"

[program.idle]
command = ["{testee}", "--forever"]
autostart = false

[program.web]
command = ["{testee}", "--forever"]
"#;

fn row<'a>(table: &'a str, name: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no row for {name}:\n{table}"))
}

#[test]
fn the_status_table_says_why_each_instance_is_in_its_state() {
    let ward = Ward::new(STACK).without_command_checks().up();
    ward.wait_state("crash", 0, "fatal");
    ward.wait_state("once", 0, "exited");
    ward.wait_state("web", 0, "running");
    ward.wait_state("typo", 0, "backoff");
    ward.ok(&["stop", "web"]);

    let table = ward.ok(&["status"]);
    assert!(table.lines().next().unwrap().ends_with("REASON"), "{table}");
    let typo = row(&table, "typo");
    assert!(
        typo.contains("cannot run pyhton3-not-a-real-command: not found in PATH; next try in"),
        "{table}"
    );
    assert!(!typo.contains("os error"), "{table}");
    assert!(
        row(&table, "crash").contains("exit 3; gave up (start limit); `ward start` tries again"),
        "{table}"
    );
    assert!(
        row(&table, "once").contains(r#"exit 0; not restarted (restart = "on-failure")"#),
        "{table}"
    );
    assert!(
        row(&table, "idle").ends_with("autostart = false"),
        "{table}"
    );
    assert!(row(&table, "web").ends_with("by `ward stop`"), "{table}");

    // The same facts for tools.
    let status = ward.status();
    let typo = status.iter().find(|s| s["name"] == "typo").unwrap();
    assert!(typo["next_ms"].as_u64().is_some(), "{typo}");
    let web = status.iter().find(|s| s["name"] == "web").unwrap();
    assert_eq!(web["desired_by"], "user", "{web}");
    assert_eq!(web["restart"], "always", "{web}");
    ward.down();
}

#[test]
fn status_of_a_name_shows_the_instance_in_detail() {
    let ward = Ward::new(STACK).without_command_checks().up();
    ward.wait_state("crash", 0, "fatal");
    let text = ward.ok(&["status", "crash"]);
    assert!(text.starts_with("crash:0\n"), "{text}");
    assert!(
        text.contains(&format!(
            "  command    {TESTEE} --stderr --echo 'Address already in use' --exit 3\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("  cwd        {}\n", ward.path().display())),
        "{text}"
    );
    assert!(text.contains("  state      fatal for "), "{text}");
    assert!(
        text.contains("  why        exit 3; gave up (start limit)"),
        "{text}"
    );
    assert!(text.contains("  desired    up (autostart)"), "{text}");
    assert!(text.contains("  restarts   "), "{text}");
    // Both failed runs, newest first, each with its time and run.
    let exits: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("  exits"))
        .take_while(|l| l.starts_with("  exits") || l.starts_with("             "))
        .collect();
    assert_eq!(exits.len(), 2, "{text}");
    assert!(
        exits
            .iter()
            .all(|l| l.contains("exit 3 after") && l.contains(", run ")),
        "{text}"
    );
    assert!(
        text.contains("  stderr     Address already in use  (2 times)\n"),
        "{text}"
    );

    // --json: the same, for tools (a superset of the status fields).
    let json: serde_json::Value =
        serde_json::from_str(&ward.ok(&["status", "--json", "crash:0"])).unwrap();
    let one = &json[0];
    assert_eq!(one["name"], "crash");
    assert_eq!(one["state"], "fatal");
    assert_eq!(one["exits"].as_array().map(Vec::len), Some(2), "{one}");
    assert_eq!(
        one["exits"][1]["exit"],
        serde_json::json!({"kind": "exit", "code": 3})
    );
    assert_eq!(one["stderr"][0], "Address already in use");
    assert_eq!(one["stderr_marked"], true);

    // A program that never ran says so.
    let text = ward.ok(&["status", "typo"]);
    assert!(
        text.contains("  why        cannot run pyhton3-not-a-real-command"),
        "{text}"
    );
    assert!(text.contains("  stderr     none in "), "{text}");
    assert!(
        text.contains("  error      cannot run pyhton3-not-a-real-command: not found in PATH (/"),
        "{text}"
    );
    ward.down();
}

#[test]
fn logs_of_a_program_without_output_say_why() {
    let ward = Ward::new(STACK).without_command_checks().up();
    ward.wait_state("typo", 0, "backoff");
    ward.wait_state("web", 0, "running");
    let out = ward.ward(&["logs", "typo"]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        "ward: no output from typo:0: it never started: cannot run pyhton3-not-a-real-command: not found in PATH"
    );
    let out = ward.ward(&["logs", "idle"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no output from idle:0: it has not run yet (stopped: autostart = false)"),
        "{err}"
    );
    let out = ward.ward(&["logs", "web"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no output from web:0: it has written nothing"),
        "{err}"
    );
    ward.down();
}

#[test]
fn a_stop_kept_across_restarts_of_ward_is_shown_as_such() {
    let config = r#"
[program.web]
command = ["{testee}", "--forever"]
[program.api]
command = ["{testee}", "--forever"]
"#;
    let mut ward = Ward::new(config).up();
    ward.wait_state("api", 0, "running");
    ward.ok(&["stop", "web"]);
    // `down`, then `up` again on the same folder.
    ward.ok(&["down"]);
    assert!(ward.wait_daemon_exit().success());
    ward.spawn_daemon(&[]);
    ward.wait_answering();
    ward.wait_state("api", 0, "running");
    let table = ward.ok(&["status"]);
    assert!(
        row(&table, "web").ends_with("by `ward stop` before ward last started"),
        "{table}"
    );
    assert!(row(&table, "api").ends_with(" -"), "{table}");
    let web = ward
        .status()
        .into_iter()
        .find(|s| s["name"] == "web")
        .unwrap();
    assert_eq!(web["desired_by"], "remembered");
    ward.down();
}

#[test]
fn an_exit_has_one_shape_in_the_status_and_in_the_events() {
    let ward = Ward::new(
        r#"
[program.crash]
command = ["{testee}", "--exit", "3"]
start_limit = { burst = 1, interval = "1m", cooldown = "never" }
[program.killed]
command = ["{testee}", "--raise", "KILL"]
start_limit = { burst = 1, interval = "1m", cooldown = "never" }
"#,
    )
    .up();
    for name in ["crash", "killed"] {
        let status = ward.wait_state(name, 0, "fatal");
        let event = ward.wait_journal(&format!("{name} exited"), |e| {
            e["event"] == "exited" && e["instance"] == format!("{name}:0")
        });
        assert_eq!(event["status"], status["last_exit"], "{event} vs {status}");
    }
    let killed = ward.wait_state("killed", 0, "fatal");
    assert_eq!(
        killed["last_exit"],
        serde_json::json!({"kind": "signal", "signal": "KILL"})
    );
    ward.down();
}

#[test]
fn logs_of_a_program_that_writes_only_to_the_journal_say_where_to_look() {
    let ward = Ward::new(
        r#"
[program.quiet]
command = ["{testee}", "--echo", "hello", "--forever"]
logs = { journald = true, files = false }
"#,
    )
    .up();
    ward.wait_state("quiet", 0, "running");
    let out = ward.ward(&["logs", "quiet"]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "no file was written");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "no output from quiet:0: its output goes to the journal only (logs.files = false): \
             journalctl WARD_PROGRAM=quiet WARD_INSTANCE=0"
        ),
        "{err}"
    );
    let detail = ward.ok(&["status", "quiet", "--json"]);
    let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(detail[0]["log_files"], false);
    assert_eq!(detail[0]["journald"], true);
    assert!(!ward.path().join(".ward/logs/quiet.0.log").exists());
    ward.down();
}
