//! Reload: the diff and how each kind of change is applied.

use crate::common::*;
use ward_core::*;

#[test]
fn reload_diff_covers_every_category() {
    let mut worker = prog("worker");
    worker.instances = 2;
    let old = set(vec![
        prog("api"),
        prog("db"),
        prog("gone"),
        prog("logs"),
        worker.clone(),
        prog("same"),
    ]);
    let mut sim = Sim::new(old);
    sim.advance(secs(1));

    let mut api = prog("api");
    api.launch = std::sync::Arc::new(LaunchSpec {
        argv: vec!["./api".into(), "--v2".into()],
        ..(*api.launch).clone()
    });
    let mut logs = prog("logs");
    logs.logs = std::sync::Arc::new(LogSpec {
        keep: 9,
        ..(*logs.logs).clone()
    });
    let mut db = prog("db");
    db.stop_timeout = secs(30);
    let mut worker3 = worker.clone();
    worker3.instances = 3;
    let new = set(vec![api, db, logs, worker3, prog("same"), prog("fresh")]);

    let expected = Diff {
        added: vec!["fresh".into()],
        removed: vec!["gone".into()],
        restarted: vec!["api".into(), "logs".into()],
        updated: vec!["db".into()],
        rescaled: [("worker".to_string(), (2, 3))].into_iter().collect(),
    };
    assert_eq!(sim.sup.diff(&new), expected);

    let t = sim.request(Request::Reload {
        specs: new.clone(),
        dry_run: false,
    });
    assert_eq!(
        sim.reply(t),
        Some(Ok(Reply::Reloaded {
            diff: expected.clone(),
            dry_run: false
        }))
    );
    assert!(sim.events().iter().any(|(_, e)| e.kind
        == EventKind::Reloaded {
            diff: expected.clone()
        }));
    assert_eq!(sim.sup.specs(), &new);
    // Restarted ones are stopping, the removed one too; the rest untouched.
    assert_eq!(sim.state("api", 0), State::Stopping);
    assert_eq!(sim.state("logs", 0), State::Stopping);
    assert_eq!(sim.state("gone", 0), State::Stopping);
    assert_eq!(sim.state("db", 0), State::Running);
    assert_eq!(sim.state("same", 0), State::Running);
    sim.advance(secs(1));
    assert!(!sim.exists("gone", 0));
    assert_eq!(sim.state("api", 0), State::Running);
    assert_eq!(sim.state("fresh", 0), State::Running);
    assert_eq!(sim.state("worker", 2), State::Running);
    assert_eq!(sim.spawns_of("db", 0).len(), 1);
    assert_eq!(sim.spawns_of("same", 0).len(), 1);
    assert_eq!(sim.spawns_of("worker", 0).len(), 1);
    // The restart used the new argv.
    let argv = sim.log.iter().rev().find_map(|(_, a)| match a {
        Action::Spawn { id, launch, .. } if id.program.as_ref() == "api" => {
            Some(launch.argv.clone())
        }
        _ => None,
    });
    assert_eq!(argv, Some(vec!["./api".to_string(), "--v2".to_string()]));
    // The new stop timeout is in force (once the restarted runs' min_uptime
    // timers are past).
    sim.advance(secs(1));
    sim.request(Request::Stop(Target::Program("db".into())));
    assert_eq!(sim.sup.poll_timeout(), Some(sim.now + secs(30)));
}

#[test]
fn reload_count_change_alone_is_only_rescaled() {
    let mut web = prog("web");
    web.instances = 3;
    let mut sim = Sim::new(set(vec![web.clone()]));
    sim.advance(secs(1));
    web.instances = 1;
    let new = set(vec![web]);
    let diff = sim.sup.diff(&new);
    assert_eq!(
        diff,
        Diff {
            rescaled: [("web".to_string(), (3, 1))].into_iter().collect(),
            ..Diff::default()
        }
    );
    sim.request(Request::Reload {
        specs: new,
        dry_run: false,
    });
    assert_eq!(sim.state("web", 0), State::Running);
    assert_eq!(sim.state("web", 2), State::Stopping);
    // A retiring instance cannot be targeted any more.
    let t = sim.request(Request::Start(Target::Instance("web".into(), 2)));
    assert!(matches!(
        sim.reply(t),
        Some(Err(RequestError::NoSuchInstance { .. }))
    ));
    sim.advance(secs(1));
    assert!(sim.exists("web", 0));
    assert!(!sim.exists("web", 1));
    assert!(!sim.exists("web", 2));
}

#[test]
fn reload_policy_change_applies_without_restart() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.advance(secs(1));
    let mut api = prog("api");
    api.restart = RestartPolicy::Never;
    sim.request(Request::Reload {
        specs: set(vec![api]),
        dry_run: false,
    });
    assert_eq!(sim.state("api", 0), State::Running);
    sim.exit("api", 0, 1);
    assert_eq!(sim.state("api", 0), State::Exited);
}

#[test]
fn reload_keeps_desired_down_instances_down_with_the_new_spec() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.advance(secs(1));
    sim.request(Request::Stop(Target::All));
    sim.advance(secs(1));
    let mut api = prog("api");
    api.launch = std::sync::Arc::new(LaunchSpec {
        argv: vec!["./api2".into()],
        ..(*api.launch).clone()
    });
    sim.request(Request::Reload {
        specs: set(vec![api]),
        dry_run: false,
    });
    sim.advance(secs(1));
    assert_eq!(sim.state("api", 0), State::Stopped);
    sim.request(Request::Start(Target::All));
    let argv = sim.log.iter().rev().find_map(|(_, a)| match a {
        Action::Spawn { launch, .. } => Some(launch.argv.clone()),
        _ => None,
    });
    assert_eq!(argv, Some(vec!["./api2".to_string()]));
}

#[test]
fn dry_run_changes_nothing() {
    let mut sim = Sim::new(set(vec![prog("api"), prog("db")]));
    sim.advance(secs(1));
    let before = sim.sup.snapshot();
    let specs_before = sim.sup.specs().clone();
    let timer_before = sim.sup.poll_timeout();
    let new = set(vec![prog("web")]);
    let mark = sim.log.len();
    let t = sim.request(Request::Reload {
        specs: new.clone(),
        dry_run: true,
    });
    assert_eq!(
        sim.actions_since(mark),
        vec![Action::Reply {
            token: t,
            result: Ok(Reply::Reloaded {
                diff: sim.sup.diff(&new),
                dry_run: true
            })
        }]
    );
    assert_eq!(sim.sup.snapshot(), before);
    assert_eq!(sim.sup.specs(), &specs_before);
    assert_eq!(sim.sup.poll_timeout(), timer_before);
}

#[test]
fn removed_then_readded_while_stopping_comes_back() {
    let mut sim = Sim::new(set(vec![prog("api"), prog("db")]));
    sim.advance(secs(1));
    sim.set_world(
        "api",
        World {
            exit_on_signal: Some(secs(2)),
            ..World::default()
        },
    );
    sim.request(Request::Reload {
        specs: set(vec![prog("db")]),
        dry_run: false,
    });
    assert_eq!(sim.state("api", 0), State::Stopping);
    sim.advance(ms(500));
    sim.request(Request::Reload {
        specs: set(vec![prog("api"), prog("db")]),
        dry_run: false,
    });
    assert_eq!(sim.state("api", 0), State::Stopping);
    sim.advance(secs(3));
    assert_eq!(sim.state("api", 0), State::Running);
    assert_eq!(sim.spawns_of("api", 0).len(), 2);
}

#[test]
fn rescale_up_follows_the_program_s_desired_state() {
    let mut web = prog("web");
    web.autostart = false;
    let mut sim = Sim::new(set(vec![web.clone()]));
    sim.request(Request::Start(Target::Program("web".into())));
    sim.advance(secs(1));
    web.instances = 3;
    sim.request(Request::Reload {
        specs: set(vec![web]),
        dry_run: false,
    });
    sim.advance(secs(1));
    for index in 0..3 {
        assert_eq!(sim.state("web", index), State::Running);
    }
}

#[test]
fn diff_lists_a_count_change_next_to_other_changes() {
    let sim = Sim::new(set(vec![prog("a"), prog("b"), prog("c")]));
    let mut a = prog("a");
    a.instances = 2;
    a.launch = std::sync::Arc::new(LaunchSpec {
        argv: vec!["./a2".into()],
        ..(*a.launch).clone()
    });
    let mut b = prog("b");
    b.instances = 3;
    b.min_uptime = secs(9);
    let diff = sim.sup.diff(&set(vec![a, b, prog("c")]));
    assert_eq!(
        diff,
        Diff {
            restarted: vec!["a".into()],
            updated: vec!["b".into()],
            rescaled: [("a".to_string(), (1, 2)), ("b".to_string(), (1, 3))]
                .into_iter()
                .collect(),
            ..Diff::default()
        }
    );
    assert!(sim
        .sup
        .diff(&set(vec![prog("a"), prog("b"), prog("c")]))
        .is_empty());
}
