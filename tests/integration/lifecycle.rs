//! Starting in order, restarting with backoff, giving up, stopping,
//! remembering what the user stopped, and ward as PID 1.

use std::time::Duration;

use crate::harness::*;

#[test]
fn starts_in_dependency_order_and_reports_status() {
    // The dependency sorts last, so that starting in name order (as if
    // depends_on were ignored) would spawn the dependents first.
    let ward = Ward::new(
        r#"
[program.zdb]
command = ["{testee}", "--echo", "zdb up", "--forever"]
[program.app]
command = ["{testee}", "--env", "WARD_INSTANCE", "--forever"]
instances = 2
depends_on = { zdb = "started" }
"#,
    )
    .up();
    let status = ward.wait_status("everything running", |s| {
        s.len() == 3 && s.iter().all(|i| i["state"] == "running")
    });
    for key in [
        "name",
        "instance",
        "state",
        "pid",
        "run",
        "restarts",
        "uptime_ms",
        "last_exit",
    ] {
        assert!(
            status[0].get(key).is_some(),
            "status lacks {key}: {status:#?}"
        );
    }
    let events = ward.events(200);
    let spawned = |instance: &str| -> u64 {
        let found: Vec<u64> = events
            .iter()
            .filter(|e| e["event"] == "spawned" && e["instance"] == instance)
            .map(|e| e["seq"].as_u64().expect("seq"))
            .collect();
        assert_eq!(found.len(), 1, "one spawn of {instance}: {events:#?}");
        found[0]
    };
    let zdb = spawned("zdb:0");
    for dependent in ["app:0", "app:1"] {
        assert!(
            zdb < spawned(dependent),
            "{dependent} spawned before zdb:0: {events:#?}"
        );
    }
    let table = ward.ok(&["status"]);
    assert!(table.starts_with("NAME"), "{table}");
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(
        rows.iter()
            .any(|r| r.len() >= 3 && r[0] == "app" && r[1] == "1" && r[2] == "running"),
        "{table}"
    );
    ward.down();
}

#[test]
fn a_crashing_program_is_restarted_with_backoff() {
    let ward = Ward::new(
        r#"
[program.crash]
command = ["{testee}", "--sleep", "50ms", "--exit", "3"]
restart = "always"
min_uptime = "0s"
backoff = { initial = "10ms", max = "40ms", jitter = 0.0 }
start_limit = { burst = 1000, interval = "1s" }
"#,
    )
    .up();
    let status = ward.wait_status("three restarts", |s| {
        s[0]["restarts"].as_u64().unwrap_or(0) >= 3
    });
    assert_eq!(status[0]["last_exit"]["kind"], "exit");
    assert_eq!(status[0]["last_exit"]["code"], 3);
    let events = ward.ok(&["events", "-n", "200"]);
    assert!(events.contains("\"event\":\"backoff\""), "{events}");
    ward.down();
}

#[test]
fn a_crash_loop_gives_up_then_tries_again_after_the_cooldown() {
    let ward = Ward::new(
        r#"
[program.loop]
command = ["{testee}", "--exit", "1"]
restart = "on-failure"
min_uptime = "1s"
backoff = { initial = "10ms", max = "10ms", jitter = 0.0 }
start_limit = { burst = 3, interval = "60s", cooldown = "500ms" }
"#,
    )
    .up();
    ward.wait_state("loop", 0, "fatal");
    // After the cooldown it starts again (and fails again).
    ward.wait_status("a fresh try after the cooldown", |s| {
        s[0]["restarts"].as_u64().unwrap_or(0) >= 4
    });
    let events = ward.ok(&["events", "-n", "500"]);
    assert!(events.contains("\"event\":\"fatal\""), "{events}");
    ward.down();
}

#[test]
fn on_failure_does_not_restart_a_clean_exit() {
    let ward = Ward::new(
        r#"
[program.once]
command = ["{testee}", "--echo", "done", "--exit", "0"]
restart = "on-failure"
min_uptime = "0s"
"#,
    )
    .up();
    let s = ward.wait_state("once", 0, "exited");
    assert_eq!(s["restarts"], 0);
    assert_eq!(s["last_exit"]["code"], 0);
    ward.down();
}

#[test]
fn a_spawn_that_fails_is_an_event_and_ward_keeps_running() {
    let ward = Ward::new(
        r#"
[program.ghost]
command = ["/nonexistent/binary", "--flag"]
backoff = { initial = "10ms", max = "10ms" }
start_limit = { burst = 2, interval = "60s", cooldown = "never" }
[program.fine]
command = ["{testee}"]
[program.badcwd]
command = ["{testee}"]
cwd = "/nonexistent/dir"
start_limit = { burst = 1, interval = "60s", cooldown = "never" }
"#,
    )
    .without_command_checks()
    .up();
    let ghost = ward.wait_state("ghost", 0, "fatal");
    assert_eq!(ghost["last_exit"]["kind"], "spawn_failed");
    let error = ghost["last_exit"]["error"].as_str().unwrap();
    assert!(error.contains("/nonexistent/binary"), "{error}");
    assert!(error.contains("No such file"), "{error}");
    let badcwd = ward.wait_state("badcwd", 0, "fatal");
    assert!(
        badcwd["last_exit"]["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/dir"),
        "{badcwd}"
    );
    ward.wait_state("fine", 0, "running");
    let events = ward.ok(&["events", "-n", "100"]);
    assert!(events.contains("spawn_failed"), "{events}");
    ward.down();
}

#[test]
fn stop_start_restart_and_signal() {
    let ward = Ward::new(
        r#"
[program.svc]
command = ["{testee}"]
stop_timeout = "5s"
"#,
    )
    .up();
    let first = ward.wait_state("svc", 0, "running");
    let out = ward.ok(&["stop", "svc"]);
    assert!(out.contains("svc:0 stopped"), "{out}");
    let old = first["pid"].as_u64().unwrap() as u32;
    assert!(!alive(old), "stop returned while the process lives");
    let out = ward.ok(&["start", "svc"]);
    assert!(out.contains("svc:0 running"), "{out}");
    let second = ward.instance("svc", 0);
    ward.ok(&["restart", "svc"]);
    let third = ward.wait_state("svc", 0, "running");
    assert_ne!(second["pid"], third["pid"]);
    assert!(third["restarts"].as_u64().unwrap() >= 1);
    // A signal that ends the program: it is restarted (restart = always).
    ward.ok(&["signal", "KILL", "svc"]);
    let fourth = ward.wait_status("a restart after SIGKILL", |s| {
        s[0]["state"] == "running" && s[0]["pid"] != third["pid"]
    });
    assert_eq!(fourth[0]["last_exit"]["signal"], "KILL");
    ward.down();
}

#[test]
fn what_the_user_stopped_stays_stopped_after_ward_restarts() {
    let mut ward = Ward::new(
        r#"
[program.a]
command = ["{testee}"]
[program.b]
command = ["{testee}"]
"#,
    )
    .up();
    ward.wait_state("a", 0, "running");
    ward.wait_state("b", 0, "running");
    ward.ok(&["stop", "a"]);
    ward.ok(&["down"]);
    ward.wait_daemon_exit();
    ward.spawn_daemon(&[]);
    ward.wait_answering();
    ward.wait_state("b", 0, "running");
    // Give a wrongly restored `a` every chance to show up before checking.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ward.instance("a", 0)["state"], "stopped");
    ward.down();
}

#[test]
fn ctrl_c_stops_everything_gracefully_and_exits_zero() {
    let mut ward = Ward::new(
        r#"
[program.a]
command = ["{testee}", "--pidfile", "{dir}/a.pids", "--fork", "1"]
[program.b]
command = ["{testee}"]
depends_on = { a = "started" }
"#,
    )
    .up();
    ward.wait_state("b", 0, "running");
    let mut pids = wait_pids(&ward.path().join("a.pids"), 2);
    pids.push(ward.instance("b", 0)["pid"].as_u64().unwrap() as u32);
    signal(ward.daemon_pid(), "INT");
    let status = ward.wait_daemon_exit();
    assert!(status.success(), "exit status {status}");
    let survivors = wait_gone(&pids);
    kill_all(&survivors);
    assert!(survivors.is_empty(), "survivors: {survivors:?}");
    // b (the dependent) stopped before a.
    let out = ward.daemon_stdout();
    let b = out.find("b:0 stopped").expect("b stopped");
    let a = out.find("a:0 stopped").expect("a stopped");
    assert!(b < a, "stop order: {out}");
    assert_stopped_gracefully(&ward, &["a:0", "b:0"]);
}

#[test]
fn a_program_removed_and_added_again_forgets_its_old_stop() {
    const BOTH: &str = r#"
[program.a]
command = ["{testee}"]
[program.b]
command = ["{testee}"]
"#;
    let mut ward = Ward::new(BOTH).up();
    ward.wait_state("a", 0, "running");
    ward.ok(&["stop", "a"]);
    ward.write_config("[program.b]\ncommand = [\"{testee}\"]\n");
    restart_ward(&mut ward);
    ward.wait_state("b", 0, "running");
    ward.write_config(BOTH);
    ward.ok(&["reload"]);
    ward.wait_state("a", 0, "running");
    restart_ward(&mut ward);
    // The user's stop belonged to the program that was removed.
    ward.wait_state("a", 0, "running");
    ward.down();
}

/// `ward down`, then `ward up` again on the same folder.
fn restart_ward(ward: &mut Ward) {
    ward.ok(&["down"]);
    let status = ward.wait_daemon_exit();
    assert!(status.success(), "ward exited with {status}");
    ward.spawn_daemon(&[]);
    ward.wait_answering();
}

/// ward raises its own open-files limit (a thousand programs need a few
/// thousand descriptors) and gives its programs the limit it was started
/// with.
#[test]
fn ward_raises_its_open_files_limit_and_children_get_the_original() {
    let mut ward = Ward::new(
        r#"
[program.lim]
command = ["/bin/sh", "-c", "echo soft=$(ulimit -Sn); exec sleep 1000"]
"#,
    );
    ward.spawn_daemon_under(&["prlimit", "--nofile=256:"], &[], &[]);
    ward.wait_answering();
    ward.wait_state("lim", 0, "running");
    let log = ward.path().join(".ward/logs/lim.0.log");
    wait_until("the program's limit in its log", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("soft="))
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("stdout soft=256"), "{text}");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", ward.daemon_pid())).unwrap();
    let row = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        fields[3], fields[4],
        "ward's soft limit is its hard one: {row}"
    );
    assert_ne!(fields[3], "256", "{row}");
    ward.down();
}

#[test]
fn an_unknown_user_is_refused_before_anything_starts() {
    // Once a spawn failure at the first start: the config now asks the
    // system about its users when it is loaded (`ward check` and `ward
    // reload` too: see config_errors.rs).
    let ward = Ward::new(
        r#"
[program.who]
command = ["{testee}"]
user = "nosuchuser"
start_limit = { burst = 1, interval = "60s", cooldown = "never" }
"#,
    );
    let out = ward.ward(&["up"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("ward.toml:4:8: unknown user \"nosuchuser\" for \"user\" in [program.who]"),
        "{err}"
    );
    assert!(err.contains("nothing was started"), "{err}");
    assert!(!ward.socket().exists());
}

#[test]
fn as_pid_1_ward_reaps_orphans_and_stops_on_sigterm() {
    if !is_root() {
        eprintln!("skipped: needs root for unshare --pid");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ward.toml");
    std::fs::write(
        &config,
        format!(
            "[program.orphans]\ncommand = [\"{TESTEE}\", \"--pidfile\", \"{}\", \"--orphans\", \"3\", \"--forever\"]\n",
            dir.path().join("pids").display()
        ),
    )
    .unwrap();
    // Ended by pid whatever happens: with --kill-child, ward (and through
    // its sentinel, its programs) go with it.
    let mut child = KillOnDrop(
        std::process::Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
            .arg(WARD)
            .arg("--config")
            .arg(&config)
            .arg("up")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ward = |args: &[&str]| {
        let mut cmd = std::process::Command::new(WARD);
        cmd.arg("--config").arg(&config).args(args);
        run_bounded(cmd)
    };
    wait_until("ward as pid 1 answering", || {
        ward(&["status", "--json"]).status.success()
    });
    // The leader and its three orphans (their parents exit at once, so
    // they are reparented to ward, PID 1 here) wrote their pids; the
    // orphans then exit. Unless ward reaps them they stay as zombies,
    // which still count as processes of the namespace.
    wait_pids(&dir.path().join("pids"), 4);
    let ns_pid = child.0.id();
    wait_until(
        "the orphans reaped: only ward, its sentinel and the leader left",
        || processes_in_namespace_of(ns_pid) == 3,
    );
    // SIGTERM to ward (pid 1 inside): graceful stop, exit 0.
    let ward_pid = find_child_pid(ns_pid).expect("ward inside unshare");
    signal(ward_pid, "TERM");
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ward as pid 1 did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

/// The one child of the unshare process (ward, PID 1 in its namespace).
fn find_child_pid(parent: u32) -> Option<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// Processes (zombies included) in the pid namespace of ward, PID 1 there.
fn processes_in_namespace_of(unshare_pid: u32) -> usize {
    let Some(ward) = find_child_pid(unshare_pid) else {
        return 0;
    };
    let Ok(ns) = std::fs::read_link(format!("/proc/{ward}/ns/pid")) else {
        return 0;
    };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/pid"))
                .ok()
                .as_ref()
                == Some(&ns)
        })
        .count()
}

#[test]
fn up_says_which_programs_it_leaves_stopped_from_before() {
    let mut ward = Ward::new(
        r#"
[program.api]
command = ["{testee}", "--forever"]
[program.worker]
command = ["{testee}", "--forever"]
instances = 2
"#,
    )
    .up();
    ward.wait_state("worker", 1, "running");
    ward.ok(&["stop", "worker:1"]);
    ward.ok(&["down"]);
    ward.wait_daemon_exit();
    ward.spawn_daemon(&[]);
    ward.wait_answering();
    let event = ward.wait_journal("the notice of what stays stopped", |e| {
        e["event"] == "notice"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("left stopped"))
    });
    let message = event["message"].as_str().unwrap();
    assert!(message.contains("worker:1"), "{message}");
    assert!(!message.contains("api:0"), "{message}");
    // In the foreground, it is on the terminal too.
    wait_until("the notice on the terminal", || {
        ward.daemon_stdout()
            .contains("left stopped, as `ward stop` asked")
    });
    assert_eq!(ward.instance("worker", 1)["state"], "stopped");
    ward.down();
}

/// What the daemon tells whatever runs it (a service manager, later):
/// ready once nothing is starting, a status line as it changes, reloading
/// then ready again around a reload, stopping at the end. A test build
/// records the calls (`WARD_TEST_HOOKS`).
#[test]
fn the_daemon_tells_its_hooks_ready_status_reloading_and_stopping() {
    let config = r#"
[program.steady]
command = ["{testee}"]
"#;
    let mut ward = Ward::new(config);
    let lines = up_recording_hooks(&mut ward);
    wait_until("ready", || lines().iter().any(|l| l == "ready"));
    let at_start = lines();
    let ready = at_start.iter().position(|l| l == "ready").unwrap();
    // Ready comes once steady has left `starting`, after a status naming it.
    assert!(
        at_start[..ready]
            .iter()
            .any(|l| l == "status 0/1 running; steady:0 starting"),
        "{at_start:?}"
    );
    assert!(
        at_start.contains(&"status 1/1 running".to_string()),
        "{at_start:?}"
    );
    ward.write_config(&config.replace("[\"{testee}\"]", "[\"{testee}\", \"--echo\", \"v2\"]"));
    ward.ok(&["reload"]);
    wait_until("ready after the reload", || {
        let now = lines();
        let reloading = now.iter().position(|l| l == "reloading");
        reloading.is_some_and(|r| now[r..].iter().any(|l| l == "ready"))
    });
    // Ready again only once the restart the reload caused is over.
    let now = lines();
    let reloading = now.iter().position(|l| l == "reloading").unwrap();
    let again = reloading + now[reloading..].iter().position(|l| l == "ready").unwrap();
    assert!(
        now[reloading..again].contains(&"status 1/1 running".to_string()),
        "ready before steady ran again: {now:?}"
    );
    // `ward down` (not only a signal) says stopping, once, before the end.
    ward.ok(&["down"]);
    ward.wait_daemon_exit();
    let all = lines();
    assert_eq!(
        all.iter().filter(|l| *l == "stopping").count(),
        1,
        "{all:?}"
    );
    assert_eq!(all.iter().filter(|l| *l == "ready").count(), 2, "{all:?}");
    let stopping = all.iter().position(|l| l == "stopping").unwrap();
    assert!(stopping > again, "{all:?}");
    assert_eq!(
        all.last().map(String::as_str),
        Some("status 0/1 running; steady:0 stopped"),
        "{all:?}"
    );
}

/// Ready means up past `min_uptime`: a program that dies in its first
/// moments is not taken for started (the ready comes once it has failed,
/// not while it still seems to run).
#[test]
fn ready_waits_for_min_uptime_so_a_program_that_dies_at_once_is_not_ready() {
    let mut ward = Ward::new(
        r#"
[program.brittle]
command = ["{testee}", "--exit", "1", "--after", "300ms"]
restart = "on-failure"
min_uptime = "30s"
backoff = { initial = "30s" }
"#,
    );
    let lines = up_recording_hooks(&mut ward);
    wait_until("ready", || lines().iter().any(|l| l == "ready"));
    let all = lines();
    let ready = all.iter().position(|l| l == "ready").unwrap();
    let running = all.iter().position(|l| l == "status 1/1 running");
    let backoff = all.iter().position(|l| l.contains("brittle:0 backoff"));
    assert!(running.is_some_and(|r| r < ready), "{all:?}");
    assert!(
        backoff.is_some_and(|b| b < ready),
        "ready while brittle ran for less than its min_uptime: {all:?}"
    );
    ward.down();
}

/// A program that gives up is an alert for whatever runs ward (the Windows
/// event log); a program that merely restarts is not.
#[test]
fn a_program_that_gives_up_is_an_alert_and_one_that_restarts_is_not() {
    let mut ward = Ward::new(
        r#"
[program.doomed]
command = ["{testee}", "--exit", "3"]
start_limit = { burst = 2, interval = "60s", cooldown = "never" }
backoff = { initial = "10ms", max = "10ms" }
[program.flaky]
command = ["{testee}", "--exit", "1", "--after", "300ms"]
min_uptime = "100ms"
"#,
    );
    let lines = up_recording_hooks(&mut ward);
    ward.wait_state("doomed", 0, "fatal");
    ward.wait_status("flaky to restart", |s| {
        s.iter()
            .any(|i| i["name"] == "flaky" && i["restarts"].as_u64().unwrap_or(0) >= 1)
    });
    wait_until("the alert", || {
        lines().iter().any(|l| l.starts_with("alert "))
    });
    let alerts: Vec<String> = lines()
        .into_iter()
        .filter(|l| l.starts_with("alert "))
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].starts_with("alert doomed:0 gave up after 2 failed starts"),
        "{alerts:?}"
    );
    ward.down();
}

/// Starts the daemon of a test build that records its hook calls; what it
/// recorded so far, a line a call, is what the returned function reads.
fn up_recording_hooks(ward: &mut Ward) -> impl Fn() -> Vec<String> {
    let record = ward.path().join("hooks.txt");
    std::fs::write(&record, "").unwrap();
    ward.spawn_daemon(&[("WARD_TEST_HOOKS", record.to_str().unwrap())]);
    ward.wait_answering();
    move || {
        std::fs::read_to_string(&record)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}
