//! Where the CLI finds its config: `--config`, `WARD_CONFIG`, else the
//! first `ward.toml` from the current folder up.

use std::process::Command;

use crate::harness::*;

/// `ward ARGS` run in `dir`, with no config or socket named.
fn ward_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(WARD);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("WARD_CONFIG")
        .env_remove("WARD_SOCKET")
        .env("NO_COLOR", "1");
    run_bounded(cmd)
}

#[test]
fn every_verb_finds_the_config_from_a_subfolder() {
    let ward = Ward::new(
        r#"
[program.web]
command = ["{testee}", "--forever"]
"#,
    )
    .up();
    ward.wait_state("web", 0, "running");
    let deep = ward.path().join("src/deep");
    std::fs::create_dir_all(&deep).unwrap();
    let out = ward_in(&deep, &["status", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status[0]["name"], "web", "{status}");
    let out = ward_in(&deep, &["check"]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&ward.config().display().to_string()),
        "{said}"
    );
    ward.down();
}

#[test]
fn with_no_config_anywhere_ward_says_where_it_looked() {
    // HOME is the boundary: the search stops there, and says so.
    let home = tempfile::Builder::new()
        .prefix("ward-it-home-")
        .tempdir()
        .unwrap();
    let deep = home.path().join("a/b");
    std::fs::create_dir_all(&deep).unwrap();
    let mut cmd = Command::new(WARD);
    cmd.arg("status")
        .current_dir(&deep)
        .env_remove("WARD_CONFIG")
        .env_remove("WARD_SOCKET")
        .env("HOME", home.path());
    let out = run_bounded(cmd);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let a = home.path().join("a");
    let expected = format!(
        "no ward.toml in {}, {}, {} (searched from the current folder up)",
        deep.display(),
        a.display(),
        home.path().display()
    );
    assert!(err.contains(&expected), "{err}");
    assert!(err.contains("ward is not running"), "{err}");
    assert!(
        err.contains(&format!("{}/.ward/ward.sock", deep.display())),
        "{err}"
    );
}

#[test]
fn logs_and_events_are_read_from_the_files_once_ward_is_down() {
    let mut ward = Ward::new(
        r#"
[program.echo]
command = ["{testee}", "--echo", "first", "--echo", "second", "--echo", "third", "--exit", "3"]
restart = "never"
[program.pair]
command = ["{testee}", "--echo", "hello", "--forever"]
instances = 2
"#,
    )
    .up();
    ward.wait_state("echo", 0, "exited");
    wait_until("pair's lines", || {
        ward.ok(&["logs", "pair", "-n", "5"]).lines().count() == 2
    });
    let live_pair = ward.ok(&["logs", "pair", "-n", "5"]);
    ward.ok(&["down"]);
    ward.wait_daemon_exit();

    let out = ward.ward(&["logs", "echo", "-n", "2"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].ends_with("stdout second"), "{text}");
    assert!(lines[1].ends_with("stdout third"), "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ward is not running; reading the files in"),
        "{err}"
    );
    // Several instances: prefixed as the daemon does.
    let offline_pair = ward.ward(&["logs", "pair", "-n", "5"]);
    assert_eq!(String::from_utf8_lossy(&offline_pair.stdout), live_pair);

    let out = ward.ward(&["events", "-n", "3"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(events.len(), 3, "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading the files"));

    // Following needs a running ward; an unknown name is still an error.
    let out = ward.ward(&["logs", "-f", "echo"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`logs -f` follows a running ward"), "{err}");
    let out = ward.ward(&["logs", "ech"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did you mean \"echo\""), "{err}");
}
