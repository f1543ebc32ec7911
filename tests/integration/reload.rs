//! Reload: only what changed restarts; a bad config changes nothing.

use crate::harness::*;

const BEFORE: &str = r#"
[program.keep]
command = ["{testee}"]
[program.change]
command = ["{testee}", "--echo", "v1", "--forever"]
[program.policy]
command = ["{testee}"]
stop_timeout = "5s"
[program.gone]
command = ["{testee}"]
[program.scale]
command = ["{testee}"]
instances = 2
"#;

const AFTER: &str = r#"
[program.keep]
command = ["{testee}"]
[program.change]
command = ["{testee}", "--echo", "v2", "--forever"]
[program.policy]
command = ["{testee}"]
stop_timeout = "7s"
[program.new]
command = ["{testee}"]
[program.scale]
command = ["{testee}"]
instances = 3
"#;

fn pid(ward: &Ward, name: &str, i: u64) -> serde_json::Value {
    ward.instance(name, i)["pid"].clone()
}

#[test]
fn reload_restarts_only_what_changed() {
    let ward = Ward::new(BEFORE).up();
    ward.wait_status("all running", |s| {
        s.len() == 6 && s.iter().all(|i| i["state"] == "running")
    });
    let keep = pid(&ward, "keep", 0);
    let change = pid(&ward, "change", 0);
    let policy = pid(&ward, "policy", 0);
    let scale0 = pid(&ward, "scale", 0);
    let gone = pid(&ward, "gone", 0).as_u64().unwrap() as u32;

    ward.write_config(AFTER);
    let dry = ward.ok(&["reload", "--dry-run"]);
    assert!(dry.contains("would change"), "{dry}");
    assert!(dry.contains("added new"), "{dry}");
    assert_eq!(pid(&ward, "change", 0), change, "a dry run changes nothing");

    let out = ward.ok(&["reload"]);
    assert!(out.contains("added new"), "{out}");
    assert!(out.contains("removed gone"), "{out}");
    assert!(out.contains("restarted change"), "{out}");
    assert!(out.contains("updated in place policy"), "{out}");
    assert!(out.contains("rescaled scale 2→3"), "{out}");

    let status = ward.wait_status("the reload applied", |s| {
        s.iter()
            .any(|i| i["name"] == "new" && i["state"] == "running")
            && s.iter()
                .any(|i| i["name"] == "scale" && i["instance"] == 2 && i["state"] == "running")
            && s.iter()
                .any(|i| i["name"] == "change" && i["state"] == "running" && i["pid"] != change)
            && !s.iter().any(|i| i["name"] == "gone")
    });
    assert_eq!(status.len(), 7);
    assert_eq!(pid(&ward, "keep", 0), keep, "unchanged program restarted");
    assert_eq!(pid(&ward, "policy", 0), policy, "policy change restarted");
    assert_eq!(
        pid(&ward, "scale", 0),
        scale0,
        "rescale restarted an instance"
    );
    let survivors = wait_gone(&[gone]);
    kill_all(&survivors);
    assert!(survivors.is_empty(), "a removed program still runs");
    let log = std::fs::read_to_string(ward.path().join(".ward/logs/change.0.log")).unwrap();
    assert!(log.contains("v2"), "{log}");
    ward.down();
}

#[test]
fn a_bad_config_is_rejected_and_changes_nothing() {
    let ward = Ward::new(BEFORE).up();
    ward.wait_status("all running", |s| {
        s.len() == 6 && s.iter().all(|i| i["state"] == "running")
    });
    let before = ward.status();
    ward.write_config(&AFTER.replace(
        "stop_timeout = \"7s\"",
        "stop_timeout = \"7 weeks\"\nbogus = 1",
    ));
    for _ in 0..3 {
        let out = ward.ward(&["reload"]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("ward.toml:8:16"), "{err}");
        assert!(err.contains("ward.toml:9:1"), "{err}");
        assert!(err.contains("nothing was changed"), "{err}");
    }
    let after = ward.status();
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b["pid"], a["pid"]);
        assert_eq!(b["state"], a["state"]);
    }
    let events = ward.ok(&["events", "-n", "50"]);
    assert!(events.contains("reload_rejected"), "{events}");
    ward.down();
}

#[test]
fn reload_revives_what_it_fixed_and_says_what_happened_to_each_instance() {
    let config = r#"
[program.db]
command = ["{testee}", "--exit", "3"]
start_limit = { burst = 1, interval = "1m" }

[program.worker]
command = ["{testee}"]
env = { TOKEN = "s3cret" }
"#;
    let ward = Ward::new(config).up();
    ward.wait_state("db", 0, "fatal");
    ward.ok(&["stop", "worker"]);
    // The fix for db; a change to worker, which the user had stopped.
    ward.write_config(
        &config
            .replace(r#"["{testee}", "--exit", "3"]"#, r#"["{testee}"]"#)
            .replace("s3cret", "hunter2"),
    );
    let dry = ward.ok(&["reload", "--dry-run"]);
    let testee = TESTEE;
    assert_eq!(
        dry,
        format!(
            "would change: restarted db, worker\n\
             \x20 db: command [{testee:?}, \"--exit\", \"3\"] → [{testee:?}]\n\
             \x20 db: would start again now (it is given up on: fatal)\n\
             \x20 worker: env.TOKEN (a value) → (another value)\n\
             \x20 worker: would stay stopped (stopped by `ward stop`)\n"
        )
    );
    assert_eq!(
        ward.instance("db", 0)["state"],
        "fatal",
        "a dry run changed db"
    );
    let done = ward.ok(&["reload"]);
    assert!(
        done.contains("  db: starts again now (it had been given up on: fatal)\n"),
        "{done}"
    );
    assert!(
        done.contains("  worker: stays stopped (stopped by `ward stop`)\n"),
        "{done}"
    );
    assert!(
        !done.contains("s3cret") && !done.contains("hunter2"),
        "{done}"
    );
    // db runs now, at once (no cool-down is set: it would have stayed
    // fatal for ever); worker is still stopped.
    ward.wait_state("db", 0, "running");
    assert_eq!(ward.instance("worker", 0)["state"], "stopped");
    ward.down();
}
