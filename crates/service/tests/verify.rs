//! systemd's own linter reads the units this crate writes: no warning at
//! all (it exits 0 for most problems, so its silence is the check).

#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ward_service::{systemd, KillMode, Restart, Scope, Service};

/// A scratch folder whose path has a space and a percent sign (a quote
/// systemd refuses in a program's path: `Service::validate` says so).
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ward-service verify %d {}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("my app/bin")).unwrap();
    dir
}

fn verify(unit_dir: &std::path::Path, service: &Service) -> String {
    let path = unit_dir.join(format!("{}.service", service.name));
    std::fs::write(&path, systemd::render(service)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze runs (.ci/run installs systemd)");
    // It leaves this behind on a host that systemd does not run.
    if !std::path::Path::new("/run/systemd/system").exists() {
        let _ = std::fs::remove_file("/run/systemd/systemd-units-load");
    }
    let mut said = String::from_utf8_lossy(&out.stdout).into_owned();
    said.push_str(&String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "systemd-analyze failed: {said}");
    said
}

#[test]
fn systemd_analyze_finds_nothing_to_say_about_our_units() {
    let dir = scratch();
    let program = dir.join("my app/bin/ward");
    std::fs::copy("/bin/true", &program).unwrap();
    let mut full = Service::new("ward-verify", &program, Scope::System)
        .description("ward: 100% up, \"quoted\"")
        .args([
            "service-run",
            "--config",
            "/etc/my \"ward\"/ward 100%.toml",
            "$HOME",
            "a\\b",
        ])
        .notify(true);
    full.watchdog = Some(Duration::from_secs(30));
    full.stop_timeout = Some(Duration::from_millis(12_500));
    full.kill_mode = KillMode::Mixed;
    full.restart = Restart::OnFailure;
    full.delegate = true;
    full.dirs = Some("ward/verify".into());
    full.reload = Some(vec![
        program.to_string_lossy().into_owned(),
        "reload".into(),
    ]);
    full.env = vec![("A".into(), "x y %h $B".into())];
    full.working_dir = Some(dir.join("my app"));
    full.properties = vec![(
        "Ward-Config".into(),
        "/etc/my \"ward\"/ward 100%.toml".into(),
    )];
    full.generator = "ward install".into();
    assert_eq!(verify(&dir, &full), "");

    let mut user = Service::new("ward-verify-user", &program, Scope::User);
    user.restart = Restart::Always;
    assert_eq!(verify(&dir, &user), "");

    // The linter does speak up about a bad unit: this check can fail.
    let bad = dir.join("ward-bad.service");
    std::fs::write(&bad, "[Service]\nExecStart=/bin/true\nKillMode=sometimes\n").unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
