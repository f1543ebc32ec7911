//! The CLI's answers to bad input: config errors, unknown names, a daemon
//! that is not running, a second daemon, a stale socket.

use std::time::{Duration, Instant};

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
    assert!(
        !ward.path().join(".ward").exists(),
        "check created the state dir"
    );
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
    let daemon = up_detached(&ward);
    let pid = daemon.0;
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

#[test]
fn status_filters_by_program_and_instance() {
    let ward = Ward::new(
        r#"
[program.web]
command = ["{testee}"]
instances = 2
[program.db]
command = ["{testee}"]
"#,
    )
    .up();
    ward.wait_status("everything running", |s| {
        s.len() == 3 && s.iter().all(|i| i["state"] == "running")
    });
    let json = |args: &[&str]| -> Vec<serde_json::Value> {
        serde_json::from_str(&ward.ok(args)).expect("a JSON array")
    };
    let web = json(&["status", "--json", "web"]);
    assert_eq!(web.len(), 2, "{web:#?}");
    assert!(web.iter().all(|i| i["name"] == "web"), "{web:#?}");
    let one = json(&["status", "--json", "web:1"]);
    assert_eq!(one.len(), 1, "{one:#?}");
    assert_eq!(one[0]["name"], "web");
    assert_eq!(one[0]["instance"], 1);
    // A name: each of its instances in detail, one block each.
    let text = ward.ok(&["status", "db"]);
    let heads: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(heads, ["db:0"], "{text}");
    let text = ward.ok(&["status", "web"]);
    let heads: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.is_empty())
        .collect();
    assert_eq!(heads, ["web:0", "web:1"], "{text}");

    let out = ward.ward(&["status", "wev"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        r#"ward: no program named "wev" (did you mean "web"?)"#
    );
    let out = ward.ward(&["status", "web:7"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("ward: ") && err.contains("no instance 7"),
        "{err}"
    );
    ward.down();
}

#[test]
fn events_follow_shows_the_last_n_first_then_every_new_one_once() {
    let ward = Ward::new("[program.x]\ncommand = [\"{testee}\"]\n").up();
    ward.wait_state("x", 0, "running");
    ward.ok(&["restart", "x"]);
    let past = ward.ok(&["events", "-n", "3"]);
    let past: Vec<&str> = past.lines().collect();
    assert_eq!(past.len(), 3, "{past:?}");
    let follower = Follower::start(&ward, &["events", "-f", "-n", "3"]);
    let deadline = Instant::now() + WAIT;
    let mut lines = Vec::new();
    while lines.len() < 3 {
        let line = follower
            .next_line(deadline)
            .unwrap_or_else(|| panic!("events -f -n 3 showed only {lines:?}"));
        lines.push(line);
    }
    assert_eq!(lines, past, "the past events, as `events -n 3` shows them");
    // Then the new ones: each once, none missing (sequence numbers count
    // up by one from the last past event).
    ward.ok(&["restart", "x"]);
    let seq = |line: &str| -> u64 {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        event["seq"]
            .as_u64()
            .unwrap_or_else(|| panic!("no seq: {line}"))
    };
    let mut last = seq(&lines[2]);
    let mut spawned = false;
    while !spawned {
        let line = follower
            .next_line(deadline)
            .unwrap_or_else(|| panic!("no new event after {lines:?}"));
        assert_eq!(seq(&line), last + 1, "{line} after {lines:?}");
        last += 1;
        spawned = line.contains("\"spawned\"");
        lines.push(line);
    }
    ward.down();
}

#[test]
fn events_follow_streams_new_events() {
    let ward = Ward::new("[program.x]\ncommand = [\"{testee}\"]\n").up();
    let first = pid_of(&ward.wait_state("x", 0, "running"));
    let follower = Follower::start(&ward, &["events", "-f", "-n", "0"]);
    // The follower may not be subscribed yet when a restart happens: restart
    // until one of the spawns it caused comes through the stream.
    let deadline = Instant::now() + WAIT;
    let mut spawned_since = Vec::new();
    let mut seen = Vec::new();
    let found = 'outer: loop {
        ward.ok(&["restart", "x"]);
        let pid = pid_of(&ward.wait_state("x", 0, "running"));
        assert_ne!(pid, first);
        spawned_since.push(pid);
        let round = Instant::now() + Duration::from_secs(1);
        while let Some(line) = follower.next_line(round.min(deadline)) {
            let event: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON event ({e}): {line:?}"));
            seen.push(line);
            if event["event"] == "spawned" {
                assert_eq!(event["instance"], "x:0", "{event}");
                let pid = event["pid"].as_u64().expect("pid") as u32;
                assert!(
                    spawned_since.contains(&pid),
                    "a spawn from before the follower started: {event}"
                );
                break 'outer true;
            }
        }
        if Instant::now() > deadline {
            break false;
        }
    };
    drop(follower);
    assert!(found, "no spawned event streamed; saw {seen:?}");
    ward.down();
}

/// A ward as root whose config dir, state dir and socket (with `mode`) any
/// user can reach, so that only ward's own peer check decides.
fn shared_ward(mode: &str) -> Ward {
    use std::os::unix::fs::PermissionsExt;
    let ward = Ward::new(&format!(
        "[ward]\nsocket_mode = \"{mode}\"\n[program.api]\ncommand = [\"{{testee}}\"]\n"
    ));
    let open = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(ward.path(), open.clone()).unwrap();
    let ward = ward.up();
    std::fs::set_permissions(ward.path().join(".ward"), open).unwrap();
    ward.wait_state("api", 0, "running");
    ward
}

/// `ward status` as nobody (uid and gid 65534), with `extra` setpriv options.
fn status_as_nobody(ward: &Ward, extra: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534"])
        .args(extra)
        .arg(WARD)
        .arg("--config")
        .arg(ward.config())
        .args(["status", "--json"])
        .current_dir("/")
        .env_remove("WARD_SOCKET")
        .env_remove("WARD_CONFIG");
    run_bounded(cmd)
}

/// Lets nobody past the file modes (as if the socket were world-writable)
/// without making it root: only ward's peer check stands in the way.
const PAST_FILE_MODES: [&str; 3] = [
    "--clear-groups",
    "--inh-caps=+dac_override",
    "--ambient-caps=+dac_override",
];

fn assert_refused(out: &std::process::Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "another user was served: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("ward: "), "{err}");
    assert!(err.contains("not allowed"), "{err}");
}

fn assert_served(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "another user was refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("status --json");
    assert_eq!(list.len(), 1);
}

#[test]
fn another_user_is_refused_when_the_socket_mode_does_not_admit_them() {
    if !is_root() {
        eprintln!("skipped: needs root to run the CLI as another user");
        return;
    }
    let ward = shared_ward("0600");
    assert_refused(&status_as_nobody(&ward, &PAST_FILE_MODES));
    // The daemon still serves its own user.
    ward.wait_state("api", 0, "running");
    ward.down();
}

#[test]
fn the_socket_mode_admits_its_group_or_everyone() {
    use std::os::unix::fs::MetadataExt;
    if !is_root() {
        eprintln!("skipped: needs root to run the CLI as another user");
        return;
    }
    let ward = shared_ward("0660");
    let group = std::fs::metadata(ward.socket()).unwrap().gid();
    assert_served(&status_as_nobody(&ward, &[&format!("--groups={group}")]));
    assert_refused(&status_as_nobody(&ward, &PAST_FILE_MODES));
    ward.down();

    let ward = shared_ward("0666");
    assert_served(&status_as_nobody(&ward, &["--clear-groups"]));
    ward.down();
}

#[test]
fn messages_speak_plainly_about_instances_and_missing_files() {
    let ward = Ward::new(
        r#"
[program.web]
command = ["{testee}", "--forever"]
[program.pool]
command = ["{testee}", "--forever"]
instances = 3
"#,
    )
    .up();
    ward.wait_state("web", 0, "running");
    for (target, said) in [
        ("web:5", "web has no instance 5: it has one instance, web:0"),
        (
            "pool:7",
            "pool has no instance 7: it has 3 instances, pool:0 to pool:2",
        ),
    ] {
        let out = ward.ward(&["restart", target]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(said), "{target}: {err}");
        assert!(!err.contains("..="), "{target}: {err}");
    }
    // A config that is not there has no line and column to point at.
    let missing = ward.path().join("elsewhere.toml");
    let out = run_bounded({
        let mut cmd = std::process::Command::new(WARD);
        cmd.arg("--config").arg(&missing).arg("check");
        cmd
    });
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("error: {}: cannot read", missing.display())),
        "{err}"
    );
    assert!(!err.contains(":1:1"), "{err}");
    ward.down();
}

#[test]
fn signal_arguments_the_wrong_way_round_are_told_their_order() {
    let ward = Ward::new("[program.web]\ncommand = [\"{testee}\"]\n");
    let out = ward.ward(&["signal", "web", "HUP"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the signal comes first: `ward signal HUP web`"),
        "{err}"
    );
    assert!(!err.contains("not running"), "asked the daemon: {err}");
}

#[test]
fn events_read_as_sentences_on_a_terminal_and_as_json_otherwise() {
    let mut ward = Ward::new(
        r#"
[program.crash]
command = ["{testee}", "--exit", "3"]
restart = "never"
"#,
    )
    .up();
    ward.wait_state("crash", 0, "exited");
    // Not a terminal: JSON lines, for tools.
    let json = ward.ok(&["events", "-n", "50"]);
    for line in json.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    // A terminal (script(1) gives the command one): sentences.
    let command = format!("{} --config {} events -n 50", WARD, ward.config().display());
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &command, "/dev/null"]);
    let out = run_bounded(cmd);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("crash:0  exited (exit 3)"), "{text}");
    assert!(text.contains("crash:0  started (pid "), "{text}");
    assert!(!text.contains("{\"ts\""), "{text}");
    // --json on a terminal too.
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &format!("{command} --json"), "/dev/null"]);
    let out = run_bounded(cmd);
    assert!(String::from_utf8_lossy(&out.stdout).contains("{\"ts\""));
    // And from the files once ward is down, the same sentences.
    ward.ok(&["down"]);
    ward.wait_daemon_exit();
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &command, "/dev/null"]);
    let out = run_bounded(cmd);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("crash:0  exited (exit 3)"),
        "{out:?}"
    );
}

#[test]
fn socket_is_offered_only_where_a_daemon_is_talked_to() {
    let ward = Ward::new("[program.api]\ncommand = [\"{testee}\"]\n");
    let help = ward.ok(&["check", "--help"]);
    assert!(!help.contains("--socket"), "{help}");
    for args in [
        &["check", "--socket", "/x"][..],
        &["--socket", "/x", "check"],
    ] {
        let out = ward.ward(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    }
    // In the environment (set for a whole shell) it does not stop `check`.
    let out = run_bounded({
        let mut cmd = ward.command(&["check"]);
        cmd.env("WARD_SOCKET", "/x");
        cmd
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Where it means something, it is used.
    let out = ward.ward(&["--socket", "/nonexistent/ward.sock", "status"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("/nonexistent/ward.sock"), "{err}");
}

#[test]
fn init_writes_a_starter_that_checks_and_runs_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let ward = |args: &[&str]| {
        let mut cmd = std::process::Command::new(WARD);
        cmd.args(args)
            .current_dir(dir.path())
            .env_remove("WARD_CONFIG")
            .env_remove("WARD_SOCKET");
        run_bounded(cmd)
    };
    let out = ward(&["init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = dir.path().join("ward.toml");
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains("[program.hello]"), "{written}");
    // It passes check as it is, commands verified.
    let out = ward(&["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A second init leaves the file alone, and says so.
    std::fs::write(&config, "# mine\n").unwrap();
    let out = ward(&["init"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\n");
    // Nor does it write through a link left under that name.
    std::fs::remove_file(&config).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::os::unix::fs::symlink(&elsewhere, &config).unwrap();
    let out = ward(&["init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!elsewhere.exists(), "init wrote through a symlink");
    // The starter runs: its program says hello.
    std::fs::remove_file(&config).unwrap();
    let other = dir.path().join("other.toml");
    let out = ward(&["--config", other.to_str().unwrap(), "init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ward = Ward::new(&std::fs::read_to_string(&other).unwrap()).up();
    ward.wait_state("hello", 0, "running");
    wait_until("hello to say hello", || {
        ward.ok(&["logs", "hello"]).contains("hello from hello:0")
    });
    ward.down();
}

#[test]
fn completions_and_manual_pages_cover_every_verb() {
    let ward = Ward::new("[program.api]\ncommand = [\"{testee}\"]\n");
    let verbs = [
        "up", "check", "init", "status", "start", "stop", "restart", "signal", "logs", "reload",
        "events", "down",
    ];
    let bash = ward.ok(&["completions", "bash"]);
    for verb in verbs {
        assert!(bash.contains(verb), "bash completions miss {verb}");
    }
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let text = ward.ok(&["completions", shell]);
        assert!(text.contains("reload"), "{shell}: {text}");
    }
    let out = ward.ward(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));

    let page = ward.ok(&["man"]);
    assert!(page.contains(".TH ward 1"), "{page}");
    let dir = ward.path().join("man1");
    std::fs::create_dir(&dir).unwrap();
    // A link under a page's name is replaced, not written through.
    let target = ward.path().join("not-a-page");
    std::os::unix::fs::symlink(&target, dir.join("ward-up.1")).unwrap();
    for _ in 0..2 {
        let said = ward.ok(&["man", "--dir", dir.to_str().unwrap()]);
        assert!(said.starts_with("wrote "), "{said}");
    }
    assert!(!target.exists(), "man wrote through a symlink");
    for verb in verbs {
        let page = std::fs::read_to_string(dir.join(format!("ward-{verb}.1")))
            .unwrap_or_else(|e| panic!("ward-{verb}.1: {e}"));
        assert!(page.contains(&format!(".TH ward-{verb} 1")), "{page}");
    }
    assert!(!dir.join("ward-help.1").exists());
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.ends_with(".1") && !n.starts_with('.')),
        "{names:?}"
    );
}
