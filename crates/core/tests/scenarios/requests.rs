//! Restart, Signal, names, run ids.

use crate::common::*;
use crate::done_states;
use ward_core::*;

#[test]
fn restart_stops_then_starts_and_counts() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.advance(secs(1));
    let first = sim.run("api", 0).unwrap();
    let token = sim.request(Request::Restart(Target::Program("api".into())));
    assert_eq!(sim.state("api", 0), State::Stopping);
    sim.advance(secs(2));
    assert_eq!(
        done_states(sim.reply(token)),
        vec![("api:0".into(), State::Running)]
    );
    let second = sim.run("api", 0).unwrap();
    assert!(second > first);
    assert_eq!(sim.view("api", 0).restarts, 1);
    // A crash and its automatic restart count too.
    sim.advance(secs(5));
    sim.exit("api", 0, 1);
    sim.advance(secs(2));
    assert_eq!(sim.view("api", 0).restarts, 2);
    // No backoff was involved in the requested restart.
    assert_eq!(sim.backoffs("api", 0).len(), 1);
}

#[test]
fn restart_of_a_stopped_instance_just_starts_it() {
    let mut api = prog("api");
    api.autostart = false;
    let mut sim = Sim::new(set(vec![api]));
    let token = sim.request(Request::Restart(Target::Instance("api".into(), 0)));
    // Answered once the new run has been up for its min_uptime (1 s).
    sim.advance(secs(1));
    assert_eq!(sim.reply(token), None);
    sim.advance(ms(100));
    assert_eq!(
        done_states(sim.reply(token)),
        vec![("api:0".into(), State::Running)]
    );
    assert!(!sim
        .log
        .iter()
        .any(|(_, a)| matches!(a, Action::Signal { .. })));
}

#[test]
fn restart_all_stops_dependents_first_and_starts_dependencies_first() {
    let mut sim = Sim::new(set(vec![
        needs(prog("api"), "db", Condition::Started),
        prog("db"),
    ]));
    sim.advance(secs(1));
    let token = sim.request(Request::Restart(Target::All));
    sim.advance(secs(2));
    assert_eq!(sim.signal_order(), vec!["api:0", "db:0"]);
    assert_eq!(sim.spawn_order(), vec!["db:0", "api:0", "db:0", "api:0"]);
    assert_eq!(
        done_states(sim.reply(token)),
        vec![
            ("api:0".into(), State::Running),
            ("db:0".into(), State::Running)
        ]
    );
}

#[test]
fn signal_goes_to_live_targets_and_replies_at_once() {
    let mut api = prog("api");
    api.instances = 2;
    let mut sim = Sim::new(set(vec![api, prog("idle")]));
    sim.advance(secs(1));
    sim.request(Request::Stop(Target::Program("idle".into())));
    sim.advance(secs(1));
    let mark = sim.log.len();
    let token = sim.request(Request::Signal(Target::All, Signal::Hup));
    let signals: Vec<String> = sim
        .actions_since(mark)
        .into_iter()
        .filter_map(|a| match a {
            Action::SignalMain {
                id,
                signal: Signal::Hup,
                ..
            } => Some(id.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(signals, vec!["api:0", "api:1"]);
    assert_eq!(done_states(sim.reply(token)).len(), 3);
    assert_eq!(sim.state("api", 0), State::Running);
}

#[test]
fn unknown_names_get_suggestions() {
    let mut sim = Sim::new(set(vec![prog("api"), prog("worker")]));
    let t = sim.request(Request::Start(Target::Program("wroker".into())));
    assert_eq!(
        sim.reply(t),
        Some(Err(RequestError::NoSuchProgram {
            name: "wroker".into(),
            suggestion: Some("worker".into())
        }))
    );
    let t = sim.request(Request::Stop(Target::Program("API".into())));
    assert!(matches!(
        sim.reply(t),
        Some(Err(RequestError::NoSuchProgram { suggestion: Some(s), .. })) if s == "api"
    ));
    let t = sim.request(Request::Stop(Target::Program("database".into())));
    assert!(matches!(
        sim.reply(t),
        Some(Err(RequestError::NoSuchProgram {
            suggestion: None,
            ..
        }))
    ));
    let t = sim.request(Request::Restart(Target::Instance("api".into(), 3)));
    assert_eq!(
        sim.reply(t),
        Some(Err(RequestError::NoSuchInstance {
            program: "api".into(),
            index: 3,
            instances: 1
        }))
    );
}

#[test]
fn stale_run_inputs_change_nothing() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.advance(secs(5));
    let old = sim.run("api", 0).unwrap();
    sim.exit("api", 0, 1);
    sim.advance(secs(2));
    let current = sim.run("api", 0).unwrap();
    assert_ne!(old, current);
    let before = sim.sup.snapshot();
    let mark = sim.log.len();
    let stale = [
        Input::Spawned {
            id: id("api", 0),
            run: old,
            pid: 1,
        },
        Input::SpawnFailed {
            id: id("api", 0),
            run: old,
            error: "x".into(),
        },
        Input::Exited {
            id: id("api", 0),
            run: old,
            status: ExitStatus::Code { code: 1 },
            tree_alive: false,
        },
        Input::TreeGone {
            id: id("api", 0),
            run: old,
        },
        Input::Exited {
            id: id("nope", 0),
            run: current,
            status: ExitStatus::Code { code: 1 },
            tree_alive: false,
        },
        Input::Exited {
            id: id("api", 7),
            run: current,
            status: ExitStatus::Code { code: 1 },
            tree_alive: false,
        },
        Input::Spawned {
            id: id("api", 0),
            run: RunId(current.0 + 1),
            pid: 1,
        },
        // Already spawned: a duplicate answer is stale too.
        Input::Spawned {
            id: id("api", 0),
            run: current,
            pid: 99,
        },
        // A tree cannot be gone while its leader lives.
        Input::TreeGone {
            id: id("api", 0),
            run: current,
        },
    ];
    for input in stale {
        sim.input(input);
    }
    assert_eq!(sim.sup.snapshot(), before);
    assert!(sim.actions_since(mark).is_empty());
}

#[test]
fn restart_counter_counts_requests_and_automatic_restarts_only() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.advance(secs(2));
    sim.request(Request::Restart(Target::All));
    sim.advance(secs(2));
    sim.request(Request::Restart(Target::Instance("api".into(), 0)));
    sim.advance(secs(2));
    assert_eq!(sim.view("api", 0).restarts, 2);
    sim.exit("api", 0, 1);
    sim.advance(secs(2));
    assert_eq!(sim.view("api", 0).restarts, 3);
    // A reload that restarts it, and a stop and start, do not count.
    let mut api = prog("api");
    api.launch = std::sync::Arc::new(LaunchSpec {
        argv: vec!["./api".into(), "-v".into()],
        ..(*api.launch).clone()
    });
    sim.request(Request::Reload {
        specs: set(vec![api]),
        dry_run: false,
    });
    sim.advance(secs(2));
    sim.request(Request::Stop(Target::All));
    sim.advance(secs(2));
    sim.request(Request::Start(Target::All));
    sim.advance(secs(2));
    assert_eq!(sim.state("api", 0), State::Running);
    assert_eq!(sim.view("api", 0).restarts, 3);
}

#[test]
fn the_snapshot_selects_targets_as_requests_do() {
    let mut web = prog("web");
    web.instances = 2;
    let sim = Sim::new(set(vec![web, prog("db")]));
    let snap = sim.sup.snapshot();
    let names = |t: Target| -> Vec<String> {
        snap.select(&t)
            .unwrap()
            .iter()
            .map(|v| v.id.to_string())
            .collect()
    };
    assert_eq!(names(Target::All), vec!["db:0", "web:0", "web:1"]);
    assert_eq!(names(Target::Program("web".into())), vec!["web:0", "web:1"]);
    assert_eq!(names(Target::Instance("web".into(), 1)), vec!["web:1"]);
    assert_eq!(
        snap.select(&Target::Program("wbe".into())),
        Err(RequestError::NoSuchProgram {
            name: "wbe".into(),
            suggestion: Some("web".into())
        })
    );
    assert_eq!(
        snap.select(&Target::Instance("web".into(), 2)),
        Err(RequestError::NoSuchInstance {
            program: "web".into(),
            index: 2,
            instances: 2
        })
    );
}

#[test]
fn signal_tree_reaches_every_process_even_after_the_leader_left() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.advance(secs(1));
    let run = sim.run("api", 0).unwrap();
    sim.request(Request::SignalTree(Target::All, Signal::Hup));
    assert!(sim.log.iter().any(|(_, a)| *a
        == Action::SignalTree {
            id: id("api", 0),
            run,
            signal: Signal::Hup,
        }));
    assert!(!sim
        .log
        .iter()
        .any(|(_, a)| matches!(a, Action::SignalMain { .. })));
}

#[test]
fn views_say_who_set_the_desired_state_and_when_the_next_try_is() {
    let mut web = needs(prog("web"), "db", Condition::Started);
    web.autostart = false;
    let mut db = prog("db");
    db.autostart = false;
    let restore = Restore {
        desired: [(id("cache", 0), Desired::Down)].into_iter().collect(),
        ..Restore::default()
    };
    let mut sim = Sim::restored(set(vec![web, db, prog("cache"), prog("api")]), restore);
    sim.advance(secs(1));
    assert_eq!(sim.view("api", 0).desired_by, DesiredBy::Config);
    assert_eq!(sim.view("web", 0).desired_by, DesiredBy::Config);
    assert_eq!(sim.view("cache", 0).desired_by, DesiredBy::Remembered);
    assert_eq!(sim.view("cache", 0).desired, Desired::Down);

    sim.request(Request::Start(Target::Program("web".into())));
    sim.advance(secs(1));
    assert_eq!(sim.view("web", 0).desired_by, DesiredBy::User);
    assert_eq!(sim.view("db", 0).desired_by, DesiredBy::Dependency);
    // Asking for what it already has makes the choice the user's.
    sim.request(Request::Start(Target::Program("db".into())));
    assert_eq!(sim.view("db", 0).desired_by, DesiredBy::User);

    sim.request(Request::Stop(Target::Program("api".into())));
    sim.advance(secs(1));
    assert_eq!(sim.view("api", 0).desired_by, DesiredBy::User);
    assert_eq!(sim.view("api", 0).next_at, None);

    // A crash: backoff, with the time of the next try.
    sim.advance(secs(5));
    sim.exit("web", 0, 1);
    let view = sim.view("web", 0);
    assert_eq!(view.state, State::Backoff);
    let next = view.next_at.expect("a backoff has a next try");
    assert!(next > view.since, "{view:?}");
}
