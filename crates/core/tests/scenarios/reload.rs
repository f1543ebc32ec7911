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
        fields: [
            ("api", "command", r#"["./api"]"#, r#"["./api", "--v2"]"#),
            ("db", "stop_timeout", r#""5s""#, r#""30s""#),
            ("logs", "logs.keep", "3", "9"),
            ("worker", "instances", "2", "3"),
        ]
        .into_iter()
        .map(|(program, key, old, new)| {
            (
                program.to_string(),
                vec![FieldChange {
                    key: key.into(),
                    old: old.into(),
                    new: new.into(),
                }],
            )
        })
        .collect(),
    };
    assert_eq!(sim.sup.diff(&new), expected);

    let t = sim.request(Request::Reload {
        specs: new.clone(),
        dry_run: false,
    });
    let outcome = |name: &str, index: u32, state: State, outcome: ReloadOutcome| ReloadedInstance {
        id: id(name, index),
        state,
        desired_by: DesiredBy::Config,
        outcome,
    };
    assert_eq!(
        sim.reply(t),
        Some(Ok(Reply::Reloaded {
            diff: expected.clone(),
            dry_run: false,
            instances: vec![
                outcome("api", 0, State::Running, ReloadOutcome::Restarts),
                outcome("db", 0, State::Running, ReloadOutcome::KeepsRunning),
                outcome("fresh", 0, State::Stopped, ReloadOutcome::Starts),
                outcome("gone", 0, State::Running, ReloadOutcome::Stops),
                outcome("logs", 0, State::Running, ReloadOutcome::Restarts),
                outcome("worker", 2, State::Stopped, ReloadOutcome::Starts),
            ],
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
            fields: [(
                "web".to_string(),
                vec![FieldChange {
                    key: "instances".into(),
                    old: "3".into(),
                    new: "1".into()
                }]
            )]
            .into_iter()
            .collect(),
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
                dry_run: true,
                instances: vec![
                    ReloadedInstance {
                        id: id("api", 0),
                        state: State::Running,
                        desired_by: DesiredBy::Config,
                        outcome: ReloadOutcome::Stops,
                    },
                    ReloadedInstance {
                        id: id("db", 0),
                        state: State::Running,
                        desired_by: DesiredBy::Config,
                        outcome: ReloadOutcome::Stops,
                    },
                    ReloadedInstance {
                        id: id("web", 0),
                        state: State::Stopped,
                        desired_by: DesiredBy::Config,
                        outcome: ReloadOutcome::Starts,
                    },
                ],
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
            fields: diff.fields.clone(),
            ..Diff::default()
        }
    );
    // Every changed setting, by its config key, old → new.
    let keys = |p: &str| -> Vec<(String, String, String)> {
        diff.fields[p]
            .iter()
            .map(|f| (f.key.clone(), f.old.clone(), f.new.clone()))
            .collect()
    };
    let row = |k: &str, o: &str, n: &str| (k.to_string(), o.to_string(), n.to_string());
    assert_eq!(
        keys("a"),
        vec![
            row("command", r#"["./a"]"#, r#"["./a2"]"#),
            row("instances", "1", "2")
        ]
    );
    assert_eq!(
        keys("b"),
        vec![
            row("instances", "1", "3"),
            row("min_uptime", r#""1s""#, r#""9s""#)
        ]
    );
    assert!(!diff.fields.contains_key("c"));
    assert!(sim
        .sup
        .diff(&set(vec![prog("a"), prog("b"), prog("c")]))
        .is_empty());
}

#[test]
fn a_reload_that_changes_a_program_given_up_on_starts_it_now() {
    let mut db = prog("db");
    db.start_limit.burst = 1;
    db.start_limit.cooldown = None;
    let mut sim = Sim::new(set(vec![db.clone(), prog("worker")]));
    sim.advance(ms(100));
    sim.exit("db", 0, 3);
    assert_eq!(sim.state("db", 0), State::Fatal);
    // The user stops worker, then fixes both in the config.
    let stop = sim.request(Request::Stop(Target::Program("worker".into())));
    sim.advance(secs(1));
    assert!(sim.reply(stop).is_some());
    let fix = |mut p: ProgramSpec| {
        p.launch = std::sync::Arc::new(LaunchSpec {
            argv: vec!["./fixed".into()],
            ..(*p.launch).clone()
        });
        p
    };
    let new = set(vec![fix(db.clone()), fix(prog("worker"))]);
    // A dry run says so, and does nothing.
    let dry = sim.request(Request::Reload {
        specs: new.clone(),
        dry_run: true,
    });
    let outcomes = |reply| match reply {
        Some(Ok(Reply::Reloaded { instances, .. })) => instances
            .into_iter()
            .map(|i: ReloadedInstance| (i.id.to_string(), i.outcome, i.desired_by))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    let expected = vec![
        (
            "db:0".to_string(),
            ReloadOutcome::Revived,
            DesiredBy::Config,
        ),
        (
            "worker:0".to_string(),
            ReloadOutcome::StaysStopped,
            DesiredBy::User,
        ),
    ];
    assert_eq!(outcomes(sim.reply(dry)), expected);
    assert_eq!(sim.state("db", 0), State::Fatal);
    let t = sim.request(Request::Reload {
        specs: new,
        dry_run: false,
    });
    assert_eq!(outcomes(sim.reply(t)), expected);
    // db starts at once with the new command, afresh; worker stays down.
    assert_eq!(sim.state("db", 0), State::Starting);
    sim.advance(secs(2));
    assert_eq!(sim.state("db", 0), State::Running);
    assert_eq!(sim.state("worker", 0), State::Stopped);
    let argv = sim.log.iter().rev().find_map(|(_, a)| match a {
        Action::Spawn { id, launch, .. } if id.program.as_ref() == "db" => {
            Some(launch.argv.clone())
        }
        _ => None,
    });
    assert_eq!(argv, Some(vec!["./fixed".to_string()]));
}

#[test]
fn a_removed_instance_is_released_once_its_run_is_over() {
    let mut sim = Sim::new(set(vec![prog("api"), prog("db")]));
    sim.advance(secs(1));
    sim.set_world(
        "db",
        World {
            exit_on_signal: Some(secs(2)),
            ..World::default()
        },
    );
    let released = |sim: &Sim| -> Vec<String> {
        sim.log
            .iter()
            .filter_map(|(_, a)| match a {
                Action::Release { id } => Some(id.to_string()),
                _ => None,
            })
            .collect()
    };
    let t = sim.request(Request::Reload {
        specs: set(vec![prog("api")]),
        dry_run: false,
    });
    assert!(sim.reply(t).is_some());
    // db is stopping: not released yet.
    sim.advance(secs(1));
    assert_eq!(sim.state("db", 0), State::Stopping);
    assert!(released(&sim).is_empty());
    sim.advance(secs(2));
    assert!(!sim.exists("db", 0));
    assert_eq!(released(&sim), vec!["db:0".to_string()]);
    // Nothing else is.
    sim.advance(secs(10));
    assert_eq!(released(&sim), vec!["db:0".to_string()]);
}

#[test]
fn the_smallest_policy_change_is_an_update_and_names_its_setting() {
    let sim = Sim::new(set(vec![prog("api")]));
    let mut api = prog("api");
    api.stop_timeout += std::time::Duration::from_nanos(1);
    let diff = sim.sup.diff(&set(vec![api]));
    assert_eq!(diff.updated, vec!["api".to_string()]);
    assert_eq!(
        diff.fields["api"],
        vec![FieldChange {
            key: "stop_timeout".into(),
            old: r#""5s""#.into(),
            new: r#""5.000000001s""#.into(),
        }]
    );
}

#[test]
fn a_run_is_proven_by_its_own_timer_and_the_snapshot_says_so_when_it_fires() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.advance(ms(100));
    assert_eq!(sim.state("api", 0), State::Running);
    assert!(!sim.view("api", 0).proven);
    // A reload lowers min_uptime: the run started under 1s keeps that one.
    let mut api = prog("api");
    api.min_uptime = ms(200);
    sim.request(Request::Reload {
        specs: set(vec![api]),
        dry_run: false,
    });
    assert_eq!(sim.view("api", 0).min_uptime, ms(200));
    sim.advance(ms(500));
    assert!(
        !sim.view("api", 0).proven,
        "proven before its own min_uptime"
    );
    // When its min_uptime passes, no event is published, but the shell is
    // told to show the new snapshot.
    let mark = sim.log.len();
    sim.advance(ms(500));
    assert!(sim.view("api", 0).proven);
    let actions = sim.actions_since(mark);
    assert!(actions.contains(&Action::Refresh), "{actions:?}");
    assert!(!actions.iter().any(|a| matches!(a, Action::Publish(_))));
    // A run that ends is not proven any more.
    sim.exit("api", 0, 1);
    assert!(!sim.view("api", 0).proven);
}
