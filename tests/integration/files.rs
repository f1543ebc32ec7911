//! ward's own files as a hostile local user and a careless operator would
//! meet them: links planted where ward writes, FIFOs where a file belongs,
//! files and directories removed under it, permissions.

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

const ECHO: &str = r#"
[program.echo]
command = ["{testee}", "--echo", "hello from echo", "--forever"]
"#;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn mkfifo(path: &Path) {
    let out = std::process::Command::new("mkfifo")
        .arg(path)
        .output()
        .expect("mkfifo");
    assert!(out.status.success(), "mkfifo {}", path.display());
}

fn notice_about(ward: &Ward, instance: &str, words: &str) -> Value {
    ward.wait_journal(&format!("a notice for {instance} saying {words:?}"), |e| {
        e["event"] == "notice"
            && e["instance"] == instance
            && e["message"].as_str().is_some_and(|m| m.contains(words))
    })
}

#[test]
fn a_link_planted_at_a_log_path_is_refused_and_its_target_untouched() {
    let ward = Ward::new(ECHO);
    let logs = ward.path().join(".ward/logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::set_permissions(ward.path().join(".ward"), PermissionsExt::from_mode(0o700)).unwrap();
    let target = ward.path().join("precious");
    std::fs::write(&target, "do not touch\n").unwrap();
    symlink(&target, logs.join("echo.0.log")).unwrap();
    let ward = ward.up();
    let event = notice_about(&ward, "echo:0", "symbolic link");
    let message = event["message"].as_str().unwrap();
    assert!(message.contains("echo.0.log"), "{message}");
    // The program runs all the same; its output is dropped, not redirected.
    ward.wait_state("echo", 0, "running");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "do not touch\n");
    assert!(std::fs::symlink_metadata(logs.join("echo.0.log"))
        .unwrap()
        .file_type()
        .is_symlink());
    ward.down();
}

#[test]
fn links_planted_in_the_state_dir_are_never_followed() {
    let ward = Ward::new(ECHO);
    let state = ward.path().join(".ward");
    std::fs::create_dir_all(&state).unwrap();
    let target = ward.path().join("precious");
    std::fs::write(&target, "do not touch\n").unwrap();
    for name in ["state.json", "events.jsonl", ".state.json.tmp"] {
        symlink(&target, state.join(name)).unwrap();
    }
    let ward = ward.up();
    ward.wait_state("echo", 0, "running");
    ward.ok(&["stop", "echo"]);
    let out = ward.ward(&["events", "-n", "100"]);
    let mut ward = ward;
    ward.ok(&["down"]);
    ward.wait_daemon_exit();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "do not touch\n");
    // state.json was replaced (the link itself, not its target): the stop
    // is remembered.
    let saved = std::fs::read_to_string(state.join("state.json")).unwrap();
    assert!(saved.contains("\"echo:0\": \"down\""), "{saved}");
    // The journal could not be written through the link, and said so.
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &ward.daemon_stdout();
    assert!(said.contains("events.jsonl"), "{said}");
}

#[test]
fn a_link_at_the_lock_file_stops_ward_with_a_clear_error() {
    let ward = Ward::new(ECHO);
    let state = ward.path().join(".ward");
    std::fs::create_dir_all(&state).unwrap();
    let target = ward.path().join("precious");
    std::fs::write(&target, "do not touch\n").unwrap();
    symlink(&target, state.join("ward.lock")).unwrap();
    let out = run_bounded(ward.command(&["up"]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ward.lock is a symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "do not touch\n");
}

#[test]
fn state_and_log_files_are_private_whatever_the_umask() {
    let ward = Ward::new(ECHO);
    // A permissive umask must not loosen anything ward creates.
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(WARD)
        .arg("--config")
        .arg(ward.config())
        .args(["up", "--detach"])
        .env_remove("WARD_SOCKET")
        .env_remove("WARD_CONFIG")
        .current_dir(ward.path());
    let out = run_bounded(cmd);
    assert!(out.status.success(), "{out:?}");
    let state = ward.path().join(".ward");
    ward.wait_state("echo", 0, "running");
    wait_until("the log file", || state.join("logs/echo.0.log").exists());
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("logs")), 0o700);
    for file in ["logs/echo.0.log", "events.jsonl", "ward.lock", "ward.log"] {
        assert_eq!(mode(&state.join(file)), 0o600, "{file}");
    }
    ward.ok(&["stop", "echo"]);
    wait_until("state.json", || state.join("state.json").exists());
    assert_eq!(mode(&state.join("state.json")), 0o600);
    ward.ok(&["down"]);
}

#[test]
fn an_existing_open_state_dir_is_made_private() {
    let ward = Ward::new(ECHO);
    let state = ward.path().join(".ward");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, PermissionsExt::from_mode(0o755)).unwrap();
    let ward = ward.up();
    assert_eq!(mode(&state), 0o700);
    ward.down();
}

#[test]
fn logs_are_shared_with_a_group_only_when_asked() {
    if !is_root() {
        eprintln!("skipped: needs root to give files to another group");
        return;
    }
    // gid 1 exists on every Linux system (daemon or bin).
    let ward = Ward::new(
        r#"
[ward.logs]
mode = "0640"
group = "1"
[program.echo]
command = ["{testee}", "--echo", "hello from echo", "--forever"]
"#,
    )
    .up();
    let state = ward.path().join(".ward");
    wait_until("the log file", || state.join("logs/echo.0.log").exists());
    let log = state.join("logs/echo.0.log");
    assert_eq!(mode(&log), 0o640);
    assert_eq!(std::fs::metadata(&log).unwrap().gid(), 1);
    let dir = state.join("logs");
    assert_eq!(mode(&dir), 0o750);
    assert_eq!(std::fs::metadata(&dir).unwrap().gid(), 1);
    // The group may pass through the state dir to reach them, no more.
    assert_eq!(mode(&state), 0o710);
    assert_eq!(mode(&state.join("events.jsonl")), 0o600);
    ward.down();
}

#[test]
fn a_log_dir_another_user_owns_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root to run a program as nobody");
        return;
    }
    // The program runs as nobody and owns its log dir: it could swap the
    // log file for a link to /etc/shadow between two rotations. ward
    // refuses the directory instead of writing there as root.
    let ward = Ward::new(
        r#"
[program.echo]
command = ["{testee}", "--echo", "hello from echo", "--forever"]
user = "nobody"
logs = { dir = "{dir}/userlogs" }
"#,
    );
    let dir = ward.path().join("userlogs");
    std::fs::create_dir(&dir).unwrap();
    let chown = std::process::Command::new("chown")
        .args(["nobody"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(chown.status.success());
    // The test's own tempdir is 0700: let nobody reach its directory.
    std::fs::set_permissions(ward.path(), PermissionsExt::from_mode(0o711)).unwrap();
    let ward = ward.up();
    let event = notice_about(&ward, "echo:0", "belongs to uid");
    assert!(
        event["message"].as_str().unwrap().contains("userlogs"),
        "{event}"
    );
    ward.wait_state("echo", 0, "running");
    assert!(!dir.join("echo.0.log").exists());
    ward.down();
}

#[test]
fn a_fifo_at_a_log_path_is_an_error_and_ward_keeps_answering() {
    let ward = Ward::new(ECHO);
    let logs = ward.path().join(".ward/logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::set_permissions(ward.path().join(".ward"), PermissionsExt::from_mode(0o700)).unwrap();
    mkfifo(&logs.join("echo.0.log"));
    let ward = ward.up();
    notice_about(&ward, "echo:0", "FIFO");
    ward.wait_state("echo", 0, "running");
    // Every verb still answers, and down completes.
    ward.ok(&["restart", "echo"]);
    ward.ok(&["status"]);
    ward.down();
}

#[test]
fn a_removed_log_file_or_log_dir_is_made_again() {
    let ward = Ward::new(
        r#"
[program.talk]
command = ["{testee}", "--lines", "100000000", "--size", "20", "--pace", "20ms"]
"#,
    )
    .up();
    let logs = ward.path().join(".ward/logs");
    let log = logs.join("talk.0.log");
    wait_until("the log file", || log.exists());
    std::fs::remove_file(&log).unwrap();
    wait_until("the removed log file to be made again", || {
        std::fs::metadata(&log).is_ok_and(|m| m.len() > 0)
    });
    std::fs::remove_dir_all(&logs).unwrap();
    wait_until("the removed log dir to be made again", || {
        std::fs::metadata(&log).is_ok_and(|m| m.len() > 0)
    });
    assert_eq!(mode(&logs), 0o700);
    ward.down();
}

#[test]
fn a_journal_line_cut_by_a_crash_does_not_spoil_the_next_ones() {
    let ward = Ward::new(ECHO);
    let state = ward.path().join(".ward");
    std::fs::create_dir_all(&state).unwrap();
    // What a ward killed in the middle of a write leaves behind.
    std::fs::write(
        state.join("events.jsonl"),
        "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"seq\":1,\"event\":\"spaw",
    )
    .unwrap();
    let mut ward = ward.up();
    ward.wait_state("echo", 0, "running");
    ward.ok(&["down"]);
    ward.wait_daemon_exit();
    let text = std::fs::read_to_string(state.join("events.jsonl")).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().ends_with("\"spaw"), "{text}");
    let rest: Vec<&str> = lines.collect();
    assert!(rest.len() > 2, "{text}");
    for line in rest {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
}

#[test]
fn an_env_file_that_is_a_fifo_is_refused_on_reload_and_supervision_goes_on() {
    let ward = Ward::new(
        r#"
[program.echo]
command = ["{testee}", "--env", "GREETING", "--forever"]
env_file = "{dir}/app.env"
"#,
    );
    std::fs::write(ward.path().join("app.env"), "GREETING=hello\n").unwrap();
    let ward = ward.up();
    ward.wait_state("echo", 0, "running");
    // A FIFO nobody writes to: reading it would block for ever.
    std::fs::remove_file(ward.path().join("app.env")).unwrap();
    mkfifo(&ward.path().join("app.env"));
    let out = run_bounded(ward.command(&["reload"]));
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("app.env"), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    // Supervision never stopped: every verb answers, programs restart.
    let before = pid_of(&ward.instance("echo", 0));
    ward.ok(&["restart", "echo"]);
    let after = pid_of(&ward.wait_state("echo", 0, "running"));
    assert_ne!(before, after);
    // An endless device is refused the same way, without reading it.
    std::fs::remove_file(ward.path().join("app.env")).unwrap();
    symlink("/dev/zero", ward.path().join("app.env")).unwrap();
    let out = run_bounded(ward.command(&["reload"]));
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a regular file"), "{err}");
    ward.down();
}
