//! Hardening of the process side: descriptors that must not leak, stopped
//! programs that must still stop gracefully, trees that cannot be read,
//! open-files limits too low for the config, and spawn errors that say what
//! is wrong.

use std::path::Path;

use serde_json::Value;

use crate::harness::*;

/// The descriptors a program listed with `testee --fds`, from its log:
/// `(fd, where it points)`.
fn listed_fds(log: &Path) -> Vec<(i32, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let rest = line.split_once(" stdout fd ")?.1;
            let (fd, target) = rest.split_once(' ')?;
            Some((fd.parse().ok()?, target.to_string()))
        })
        .collect()
}

/// Waits until the program of `log` has listed its descriptors (one write,
/// so whole once fd 2 is there) and returns them.
fn wait_fds(ward: &Ward, instance: &str) -> Vec<(i32, String)> {
    let log = ward.path().join(format!(".ward/logs/{instance}.log"));
    wait_until(&format!("the descriptors of {instance} in its log"), || {
        listed_fds(&log).iter().any(|(fd, _)| *fd == 2)
    });
    listed_fds(&log)
}

/// `fd → target` of every descriptor of a process.
fn fds_of(pid: u32) -> Vec<(i32, String)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut fds: Vec<(i32, String)> = dir
        .filter_map(|e| {
            let e = e.ok()?;
            let fd = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            Some((fd, target.display().to_string()))
        })
        .collect();
    fds.sort();
    fds
}

/// The programs of the descriptor tests: one as ward's own user, and when
/// ward is root, one that drops its privileges.
fn fds_config() -> (String, Vec<&'static str>) {
    let mut toml = String::from(
        r#"
[program.plain]
command = ["{testee}", "--fds", "--forever"]
"#,
    );
    let mut instances = vec!["plain.0"];
    if is_root() {
        toml.push_str(
            r#"
[program.dropped]
command = ["{testee}", "--fds", "--forever"]
user = "nobody"
cwd = "/"
"#,
        );
        instances.push("dropped.0");
    } else {
        eprintln!("not root: the program that drops its privileges is left out");
    }
    (toml, instances)
}

fn assert_only_stdio(ward: &Ward, instances: &[&str]) {
    for instance in instances {
        let fds = wait_fds(ward, instance);
        let numbers: Vec<i32> = fds.iter().map(|(fd, _)| *fd).collect();
        assert_eq!(
            numbers,
            [0, 1, 2],
            "{instance} has descriptors beyond stdio: {fds:#?}"
        );
        assert!(
            !fds.iter().any(|(_, t)| t.ends_with("ward.lock")),
            "{instance} holds ward's lock file: {fds:#?}"
        );
    }
}

#[test]
fn descriptors_ward_inherited_reach_neither_ward_nor_its_programs() {
    let (toml, instances) = fds_config();
    let mut ward = Ward::new(&toml);
    let inherited = ward.path().join("inherited.txt");
    std::fs::write(&inherited, "not for ward\n").unwrap();
    // The shell that starts ward has a file open on fd 7, without
    // close-on-exec, as `exec 7<file` leaves it.
    ward.spawn_daemon_under(
        &["sh", "-c", r#"exec 7<inherited.txt; exec "$0" "$@""#],
        &[],
        &[],
    );
    ward.wait_answering();
    assert_only_stdio(&ward, &instances);
    let daemon = fds_of(ward.daemon_pid());
    assert!(
        !daemon.iter().any(|(_, t)| t.ends_with("inherited.txt")),
        "ward kept the descriptor it inherited: {daemon:#?}"
    );
    ward.down();
}

#[test]
fn descriptors_handed_over_for_socket_activation_stay_but_reach_no_program() {
    let (toml, instances) = fds_config();
    let mut ward = Ward::new(&toml);
    std::fs::write(ward.path().join("activated.txt"), "for ward\n").unwrap();
    std::fs::write(ward.path().join("inherited.txt"), "not for ward\n").unwrap();
    // systemd's protocol: fds 3.. are ward's when LISTEN_PID is its pid
    // (the shell's, which exec keeps).
    ward.spawn_daemon_under(
        &[
            "sh",
            "-c",
            r#"exec 3<activated.txt 7<inherited.txt; export LISTEN_PID=$$ LISTEN_FDS=1; exec "$0" "$@""#,
        ],
        &[],
        &[],
    );
    ward.wait_answering();
    assert_only_stdio(&ward, &instances);
    let pid = ward.daemon_pid();
    let daemon = fds_of(pid);
    assert!(
        daemon
            .iter()
            .any(|(fd, t)| *fd == 3 && t.ends_with("activated.txt")),
        "ward closed the descriptor handed over to it: {daemon:#?}"
    );
    assert!(
        !daemon.iter().any(|(_, t)| t.ends_with("inherited.txt")),
        "ward kept the descriptor it inherited: {daemon:#?}"
    );
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/3")).unwrap();
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .unwrap_or_else(|| panic!("no flags in fdinfo: {info}"));
    assert_ne!(
        flags & 0o2000000,
        0,
        "the handed-over descriptor is not close-on-exec: {info}"
    );
    ward.down();
}

/// The exit events of `instance` in the journal.
fn exits_of(ward: &Ward, instance: &str) -> Vec<Value> {
    ward.journal()
        .into_iter()
        .filter(|e| e["event"] == "exited" && e["instance"] == instance)
        .collect()
}

/// One letter of `/proc/PID/stat`: `S`, `R`, `T` (stopped), ...
fn state_of(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

#[test]
fn a_stopped_program_is_continued_and_stops_gracefully() {
    // stop_timeout is long: were the program not continued, the stop would
    // end in a SIGKILL at the deadline, not in its TERM handler.
    let ward = Ward::new(
        r#"
[program.frozen]
command = ["{testee}", "--trap", "TERM", "--raise", "STOP", "--forever"]
stop_timeout = "20s"
"#,
    )
    .up();
    let pid = pid_of(&ward.wait_state("frozen", 0, "running"));
    wait_until("the program to stop itself", || state_of(pid) == Some('T'));
    ward.ok(&["stop", "frozen"]);
    let exits = exits_of(&ward, "frozen:0");
    assert_eq!(exits.len(), 1, "{exits:#?}");
    assert_eq!(
        exits[0]["status"],
        serde_json::json!({"kind": "code", "code": 0}),
        "not ended by its TERM handler: {exits:#?}"
    );
    let journal = ward.journal();
    assert!(
        !journal.iter().any(|e| e["event"] == "stop_timeout"),
        "the stop ran into its deadline: {journal:#?}"
    );
    let frozen = ward.instance("frozen", 0);
    assert_eq!(frozen["state"], "stopped", "{frozen}");
    assert_eq!(frozen["last_exit"]["code"], 0, "{frozen}");
    let log = std::fs::read_to_string(ward.path().join(".ward/logs/frozen.0.log")).unwrap();
    assert!(log.contains("trapped SIGTERM"), "{log}");
    ward.down();
}
