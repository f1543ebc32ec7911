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
