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
        serde_json::json!({"kind": "exit", "code": 0}),
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

/// How many descriptors a process has open.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Waits until `pid`'s descriptor count has stayed the same for a few
/// polls, and returns it.
fn settled_fd_count(pid: u32) -> usize {
    let mut last = (fd_count(pid), 0);
    wait_until("ward's descriptor count to settle", || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let now = fd_count(pid);
        last = if now == last.0 {
            (now, last.1 + 1)
        } else {
            (now, 0)
        };
        last.1 >= 5
    });
    last.0
}

/// ward out of descriptors while a stop is under way: the read of the
/// tree fails, and must not pass for "empty". The program's leader ends on
/// TERM, its child ignores TERM (and the deadline is far off, so only the
/// test ends it); idle control connections take every descriptor ward has
/// but the one `ward stop`'s own connection takes (the control API's
/// limits are raised so that they stay open).
#[test]
fn a_tree_ward_cannot_read_is_not_taken_for_stopped() {
    const LIMIT: usize = 128;
    let mut ward = Ward::new(
        r#"
[ward.api]
header_timeout = "1h"
idle_timeout = "1h"
max_connections_per_user = 1000

[program.stuck]
command = ["{testee}", "--pidfile", "{dir}/pids", "--ignore-term", "--fork", "1", "--trap", "TERM", "--forever"]
stop_timeout = "10m"
"#,
    );
    let limit = format!("--nofile={LIMIT}:{LIMIT}");
    ward.spawn_daemon_under(&["prlimit", &limit], &[], &[]);
    ward.wait_answering();
    ward.wait_state("stuck", 0, "running");
    let pids = wait_pids(&ward.path().join("pids"), 2);
    let procs: Vec<Proc> = pids.iter().filter_map(|p| Proc::of(*p)).collect();
    assert_eq!(procs.len(), 2, "{pids:?}");
    let child = procs[1];
    let pid = ward.daemon_pid();

    let used = settled_fd_count(pid);
    assert!(used < LIMIT - 1, "ward already uses {used} descriptors");
    let idle: Vec<std::os::unix::net::UnixStream> = (0..LIMIT - 1 - used)
        .map(|_| std::os::unix::net::UnixStream::connect(ward.socket()).expect("connect"))
        .collect();
    wait_until("ward to accept every idle connection", || {
        fd_count(pid) == LIMIT - 1
    });

    // Its connection takes ward's last descriptor.
    let mut stop = ward.command(&["stop", "stuck"]);
    stop.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut stop = KillOnDrop(stop.spawn().expect("spawn ward stop"));
    let said = |e: &Value, what: &str| {
        e["event"] == "notice" && e["message"].as_str().is_some_and(|m| m.contains(what))
    };
    let returned = |stop: &mut KillOnDrop| stop.0.try_wait().expect("try_wait");
    let fail_if_returned = |stop: &mut KillOnDrop, when: &str| {
        if let Some(status) = returned(stop) {
            let alive: Vec<Proc> = procs.iter().copied().filter(Proc::alive).collect();
            kill_procs(&alive);
            panic!(
                "ward stop returned ({status}) {when}; still alive: {alive:?}\n{:#?}",
                ward.journal()
            );
        }
    };
    wait_until("ward stop to return, or ward to say it cannot tell", || {
        returned(&mut stop).is_some()
            || ward
                .journal()
                .iter()
                .any(|e| said(e, "cannot tell whether"))
    });
    fail_if_returned(&mut stop, "while ward could not read the tree");

    // Descriptors come back: ward reads the tree again, and sees the child.
    drop(idle);
    ward.wait_journal("ward to say it can read the tree again", |e| {
        said(e, "can be seen again")
    });
    fail_if_returned(&mut stop, "while a process of the tree was alive");
    // The child ends: now the stop finishes.
    kill_procs(&[child]);
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = returned(&mut stop) {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ward stop did not return once the tree was empty"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "ward stop failed: {status}");
    let journal = ward.journal();
    assert_eq!(
        journal
            .iter()
            .filter(|e| said(e, "cannot tell whether"))
            .count(),
        1,
        "said more than once: {journal:#?}"
    );
    assert_eq!(ward.instance("stuck", 0)["state"], "stopped");
    ward.down();
}

/// `check` under `prlimit --nofile=N:N`.
fn check_under_limit(ward: &Ward, limit: u32) -> std::process::Output {
    let mut cmd = std::process::Command::new("prlimit");
    cmd.arg(format!("--nofile={limit}:{limit}"))
        .arg(WARD)
        .arg("--config")
        .arg(ward.config())
        .arg("check")
        .env("NO_COLOR", "1");
    run_bounded(cmd)
}

fn assert_names_the_limit(stderr: &str) {
    for what in [
        "needs about 664 open files",
        "each of its 200 instances",
        "the open-files limit is 128",
        "ulimit -n 1024",
        "LimitNOFILE=1024",
    ] {
        assert!(stderr.contains(what), "{what:?} not in: {stderr}");
    }
}

/// 200 programs need more descriptors than a hard limit of 128 allows:
/// without a word, 12 would start and the rest end `fatal`.
#[test]
fn up_and_check_refuse_a_config_the_open_files_limit_cannot_cover() {
    let toml: String = (0..200)
        .map(|i| format!("[program.p{i}]\ncommand = [\"{{testee}}\"]\n"))
        .collect();
    let mut ward = Ward::new(&toml);

    let out = check_under_limit(&ward, 128);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "check passed: {stderr}");
    assert_names_the_limit(&stderr);
    let out = check_under_limit(&ward, 1024);
    assert!(
        out.status.success(),
        "check failed under a limit that covers the config: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    ward.spawn_daemon_under(&["prlimit", "--nofile=128:128"], &[], &[]);
    let status = ward.wait_daemon_exit();
    let stderr = ward.daemon_stderr();
    assert!(!status.success(), "ward up started: {stderr}");
    assert_names_the_limit(&stderr);
    assert!(stderr.contains("nothing was started"), "{stderr}");
    assert!(
        !ward.path().join(".ward/logs").exists(),
        "a program was started"
    );
}

/// The error of an instance that could not be spawned, once it is `fatal`.
fn spawn_error(ward: &Ward, name: &str) -> String {
    let instance = ward.wait_state(name, 0, "fatal");
    assert_eq!(instance["last_exit"]["kind"], "spawn_failed", "{instance}");
    instance["last_exit"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn spawn_errors_name_the_file_and_say_what_is_wrong() {
    use std::os::unix::fs::PermissionsExt;
    let ward = Ward::new(
        r#"
[program.script]
command = ["./job.sh"]
start_limit = { burst = 1, interval = "60s", cooldown = "never" }
[program.dir]
command = ["./bin"]
start_limit = { burst = 1, interval = "60s", cooldown = "never" }
"#,
    );
    let script = ward.path().join("job.sh");
    std::fs::write(&script, "#!/usr/bin/pythonx\nprint('hello')\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(ward.path().join("bin")).unwrap();
    let ward = ward.without_command_checks().up();
    assert_eq!(
        spawn_error(&ward, "script"),
        "cannot run ./job.sh: its interpreter /usr/bin/pythonx (from its #! line) does not exist"
    );
    assert_eq!(
        spawn_error(&ward, "dir"),
        "cannot run ./bin: is a directory"
    );
    ward.down();
}
