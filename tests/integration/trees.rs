//! Whole process trees: a stop kills every process of the tree, a killed
//! ward leaves nothing behind.

use crate::harness::*;

/// A tree that ignores SIGTERM: two grandchildren in the leader's group,
/// and one that double-forked into its own session.
const STUBBORN: &str = r#"["{testee}", "--pidfile", "{dir}/NAME.pids", "--ignore-term", "--fork", "2", "--double-fork-setsid", "--forever"]"#;

fn stubborn(name: &str) -> String {
    format!(
        "[program.{name}]\ncommand = {}\nstop_timeout = \"300ms\"\n",
        STUBBORN.replace("NAME", name)
    )
}

#[test]
fn stop_kills_the_whole_tree_including_a_setsid_escapee() {
    let ward = Ward::new(&stubborn("tree")).up();
    ward.wait_state("tree", 0, "running");
    let pids = wait_pids(&ward.path().join("tree.pids"), 4);
    let out = ward.ok(&["stop", "tree"]);
    assert!(out.contains("tree:0 stopped"), "{out}");
    // `stop` returns when the tree is gone: check at once, no waiting.
    let survivors: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    kill_all(&survivors);
    assert!(
        survivors.is_empty(),
        "alive after stop returned: {survivors:?}"
    );
    let events = ward.ok(&["events", "-n", "100"]);
    assert!(events.contains("stop_timeout"), "{events}");
    ward.down();
}

#[test]
fn stop_kills_the_tree_without_cgroups_too() {
    let mut ward = Ward::new(&stubborn("tree"));
    ward.spawn_daemon(&[("WARD_NO_CGROUP", "1")]);
    ward.wait_answering();
    ward.wait_state("tree", 0, "running");
    let pids = wait_pids(&ward.path().join("tree.pids"), 4);
    ward.ok(&["stop", "tree"]);
    let survivors: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    kill_all(&survivors);
    assert!(
        survivors.is_empty(),
        "alive after stop returned: {survivors:?}"
    );
    ward.down();
}

#[test]
fn a_leader_that_exits_leaves_no_grandchildren_running() {
    let ward = Ward::new(
        r#"
[program.parent]
command = ["{testee}", "--pidfile", "{dir}/p.pids", "--fork", "2", "--sleep", "200ms", "--exit", "1"]
restart = "never"
stop_timeout = "300ms"
"#,
    )
    .up();
    let pids = wait_pids(&ward.path().join("p.pids"), 3);
    let s = ward.wait_state("parent", 0, "exited");
    assert_eq!(s["last_exit"]["code"], 1);
    let survivors: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    kill_all(&survivors);
    assert!(
        survivors.is_empty(),
        "grandchildren outlived the run: {survivors:?}"
    );
    ward.down();
}

fn sigkill_leaves_nothing(env: &[(&str, &str)]) {
    let mut toml = String::new();
    for i in 0..4 {
        toml.push_str(&stubborn(&format!("t{i}")));
    }
    toml.push_str("[program.plain]\ncommand = [\"{testee}\", \"--pidfile\", \"{dir}/plain.pids\"]\ninstances = 3\n");
    let mut ward = Ward::new(&toml);
    ward.spawn_daemon(env);
    ward.wait_answering();
    let mut pids = Vec::new();
    for i in 0..4 {
        pids.extend(wait_pids(&ward.path().join(format!("t{i}.pids")), 4));
    }
    pids.extend(wait_pids(&ward.path().join("plain.pids"), 3));
    signal(ward.daemon_pid(), "KILL");
    ward.wait_daemon_exit();
    let survivors = wait_gone(&pids);
    kill_all(&survivors);
    assert!(
        survivors.is_empty(),
        "processes outlived a SIGKILLed ward: {survivors:?}"
    );
}

#[test]
fn sigkill_of_ward_leaves_no_process_behind() {
    sigkill_leaves_nothing(&[]);
}

#[test]
fn sigkill_of_ward_leaves_no_process_behind_without_cgroups() {
    sigkill_leaves_nothing(&[("WARD_NO_CGROUP", "1")]);
}

#[test]
fn the_next_ward_sweeps_what_a_dead_ward_and_sentinel_left() {
    sweep_after_sentinel_and_ward_die(&[]);
}

#[test]
fn the_next_ward_sweeps_what_a_dead_ward_and_sentinel_left_without_cgroups() {
    sweep_after_sentinel_and_ward_die(&[("WARD_NO_CGROUP", "1")]);
}

/// With the sentinel killed first, nothing cleans up after a SIGKILLed ward
/// but the next ward, from what its state file recorded.
fn sweep_after_sentinel_and_ward_die(env: &[(&str, &str)]) {
    const TREES: usize = 2;
    let mut toml = String::new();
    for i in 0..TREES {
        toml.push_str(&stubborn(&format!("t{i}")));
    }
    let mut ward = Ward::new(&toml);
    ward.spawn_daemon(env);
    ward.wait_answering();
    let dir = ward.path().to_path_buf();
    let pidfile = |i: usize| dir.join(format!("t{i}.pids"));
    let mut old = Vec::new();
    let mut leaders = Vec::new();
    for i in 0..TREES {
        let pids = wait_pids(&pidfile(i), 4);
        leaders.push(pids[0]);
        old.extend(pids);
    }
    let state = ward.path().join(".ward/state.json");
    wait_until("the state file to record every live run", || {
        std::fs::read_to_string(&state)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|doc| doc["live"].as_array().map(|live| live.len()))
            == Some(TREES)
    });

    // The old ward's cgroup root, where it has one.
    let roots: Vec<std::path::PathBuf> = std::fs::read_to_string(&state)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|doc| doc["live"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r["cgroup"].as_str())
        .filter_map(|leaf| std::path::Path::new(leaf).parent().map(|p| p.to_path_buf()))
        .collect();

    let daemon = ward.daemon_pid();
    let sentinels: Vec<u32> = children_of(daemon)
        .into_iter()
        .filter(|p| comm(*p).as_deref() == Some("ward-sentinel"))
        .collect();
    assert_eq!(
        sentinels.len(),
        1,
        "one ward-sentinel among ward's children {:?}",
        children_of(daemon)
    );
    signal(sentinels[0], "KILL");
    let stuck = wait_gone(&sentinels);
    assert!(stuck.is_empty(), "the sentinel survived SIGKILL");
    signal(daemon, "KILL");
    ward.wait_daemon_exit();

    // Without the sentinel, the grandchildren outlive ward (the leaders
    // die of their parent-death signal). Otherwise this test would check
    // nothing.
    let orphans: Vec<u32> = old
        .iter()
        .copied()
        .filter(|p| !leaders.contains(p))
        .collect();
    let dead: Vec<u32> = orphans.iter().copied().filter(|p| !alive(*p)).collect();
    if !dead.is_empty() {
        kill_all(&old);
        panic!("{dead:?} died with ward and its sentinel: nothing left to sweep");
    }

    ward.spawn_daemon(env);
    ward.wait_answering();
    let survivors = wait_gone(&old);
    kill_all(&survivors);
    assert!(
        survivors.is_empty(),
        "the next ward did not sweep {survivors:?}"
    );
    // The sweep runs while ward already answers: give it time.
    for root in &roots {
        wait_until(
            &format!("the dead ward's root {} to go", root.display()),
            || !root.exists(),
        );
    }
    for i in 0..TREES {
        let status = ward.wait_state(&format!("t{i}"), 0, "running");
        let pid = pid_of(&status);
        assert!(!old.contains(&pid), "t{i} runs an old pid {pid}");
        let pids = wait_pids(&pidfile(i), 8);
        assert_eq!(pids[4], pid, "the new leader recorded its pid");
        assert!(
            pids[4..].iter().all(|p| alive(*p)),
            "the new tree of t{i} is not whole: {pids:?}"
        );
    }
    ward.down();
}

/// A ward killed together with its sentinel, with no state file left to
/// name it, leaves an empty `ward-<pid>` cgroup root; the next ward start
/// removes it, and leaves alone the root of a pid that is alive.
#[test]
fn ward_removes_empty_cgroup_roots_of_dead_wards_at_start() {
    let mut ward = Ward::new("[program.p]\ncommand = [\"{testee}\", \"--forever\"]\n").up();
    ward.wait_state("p", 0, "running");
    let state = ward.path().join(".ward/state.json");
    let mut leaf = None;
    wait_until("the state file to record the run", || {
        leaf = std::fs::read_to_string(&state)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|doc| doc["live"].get(0).cloned());
        leaf.is_some()
    });
    let Some(leaf) = leaf.and_then(|r| r["cgroup"].as_str().map(std::path::PathBuf::from)) else {
        println!("skipped: this ward runs without cgroups");
        ward.down();
        return;
    };
    // <base>/ward-<pid>/<leaf>: the roots of every ward live in <base>.
    let base = leaf
        .parent()
        .and_then(|r| r.parent())
        .unwrap()
        .to_path_buf();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let dead = base.join(format!("ward-{dead_pid}"));
    let live = base.join(format!("ward-{}", std::process::id()));
    struct Remove(Vec<std::path::PathBuf>);
    impl Drop for Remove {
        fn drop(&mut self) {
            for dir in &self.0 {
                let _ = std::fs::remove_dir(dir.join("x.0.r1"));
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
    let _cleanup = Remove(vec![dead.clone(), live.clone()]);
    for root in [&dead, &live] {
        std::fs::create_dir(root).unwrap();
        std::fs::create_dir(root.join("x.0.r1")).unwrap();
    }

    ward.ok(&["down"]);
    assert!(ward.wait_daemon_exit().success());
    ward.spawn_daemon(&[]);
    ward.wait_answering();
    assert!(!dead.exists(), "{} is left behind", dead.display());
    assert!(
        live.exists(),
        "{} was removed though its pid lives",
        live.display()
    );
    ward.down();
}

/// The process is in its own session and has no `WARD_TREE` in its
/// environment: invisible to a process-group-and-marker search.
fn assert_hidden(pid: u32) {
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    assert!(
        !env.split(|b| *b == 0).any(|e| e.starts_with(b"WARD_TREE=")),
        "{pid} still carries the marker"
    );
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    assert_eq!(
        fields.get(3),
        Some(&pid.to_string().as_str()),
        "{pid} is not a session leader: {stat}"
    );
}

/// A descendant that left the process group *and* cleared its environment
/// is found through its parent while that lives: `ward stop` ends it, with
/// cgroups (its cgroup) and without (the parent chain).
fn hidden_descendant_stopped(env: &[(&str, &str)]) {
    let mut ward = Ward::new(
        r#"
[program.hider]
command = ["{testee}", "--pidfile", "{dir}/pids", "--hide", "--forever"]
"#,
    );
    ward.spawn_daemon(env);
    ward.wait_answering();
    ward.wait_state("hider", 0, "running");
    let pids = wait_pids(&ward.path().join("pids"), 2);
    assert_hidden(pids[1]);
    ward.ok(&["stop", "hider"]);
    let survivors: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    kill_all(&survivors);
    assert!(
        survivors.is_empty(),
        "alive after stop returned: {survivors:?}"
    );
    ward.down();
}

#[test]
fn a_hidden_descendant_is_stopped_with_its_tree() {
    hidden_descendant_stopped(&[]);
}

#[test]
fn a_hidden_descendant_is_stopped_with_its_tree_without_cgroups() {
    hidden_descendant_stopped(&[("WARD_NO_CGROUP", "1")]);
}

/// Without cgroups, a descendant that left the group, cleared its
/// environment *and* lost its parent belongs to no tree ward can see: it
/// outlives `ward stop` of its program (documented), but it is re-parented
/// to ward (the subreaper), and `ward down` ends it and says so.
#[test]
fn without_cgroups_ward_down_ends_what_ward_adopted() {
    let mut ward = Ward::new(
        r#"
[program.hider]
command = ["{testee}", "--pidfile", "{dir}/pids", "--hide-orphan", "--forever"]
"#,
    );
    ward.spawn_daemon(&[("WARD_NO_CGROUP", "1")]);
    ward.wait_answering();
    ward.wait_state("hider", 0, "running");
    let pids = wait_pids(&ward.path().join("pids"), 2);
    let hidden = pids[1];
    assert_hidden(hidden);
    let stat = std::fs::read_to_string(format!("/proc/{hidden}/stat")).unwrap_or_default();
    let ppid = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(1)
        .map(str::to_string);
    assert_eq!(
        ppid,
        Some(ward.daemon_pid().to_string()),
        "not adopted by ward: {stat}"
    );
    ward.ok(&["stop", "hider"]);
    let stopped_alive = alive(hidden);
    ward.ok(&["down"]);
    let status = ward.wait_daemon_exit();
    let survivors = wait_gone(&[hidden]);
    kill_all(&survivors);
    assert!(status.success());
    assert!(survivors.is_empty(), "{hidden} outlived ward");
    assert!(
        stopped_alive,
        "the limit of this mode is documented: it should have escaped the stop"
    );
    let journal = ward.journal();
    assert!(
        journal.iter().any(|e| e["event"] == "notice"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("1 process that had left its program's tree"))),
        "{journal:#?}"
    );
}

/// Which mode is in effect is said at start and under `ward status`, with
/// why; in the cgroup mode the status table has no such line.
#[test]
fn the_tracking_mode_is_named_where_people_look() {
    let config = "[program.web]\ncommand = [\"{testee}\", \"--forever\"]\n";
    let mut ward = Ward::new(config);
    ward.spawn_daemon(&[("WARD_NO_CGROUP", "1")]);
    ward.wait_answering();
    ward.wait_state("web", 0, "running");
    let table = ward.ok(&["status"]);
    assert!(
        table.lines().last().unwrap().starts_with(
            "process trees: tracked by process group and environment marker, not cgroups (WARD_NO_CGROUP is set in ward's environment)"
        ),
        "{table}"
    );
    let journal = ward.journal();
    assert!(
        journal.iter().any(|e| e["event"] == "notice"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("process trees are tracked by process group"))),
        "{journal:#?}"
    );
    ward.down();

    let ward = Ward::new(config).up();
    ward.wait_state("web", 0, "running");
    let table = ward.ok(&["status"]);
    let cgroups = !ward.journal().iter().any(|e| {
        e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("process trees are tracked by process group"))
    });
    assert_eq!(!table.contains("process trees:"), cgroups, "{table}");
    ward.down();
}
