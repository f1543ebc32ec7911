//! Stopping: signal, deadline, kill, process trees, order.

use crate::common::*;
use crate::done_states;
use ward_core::*;

#[test]
fn a_stop_command_stands_in_for_the_signal_and_the_deadline_still_holds() {
    let mut api = prog("api");
    api.stop_command = Some(vec!["api-ctl".into(), "stop".into()]);
    let mut sim = Sim::new(set(vec![api]));
    sim.ignores_stop_signal("api");
    sim.advance(secs(1));
    let run = sim.run("api", 0).unwrap();
    let main_pid = sim.view("api", 0).pid.unwrap();
    sim.request(Request::Stop(Target::Program("api".into())));
    let stop_at = sim.now;
    assert!(sim.log.iter().any(|(_, a)| *a
        == Action::StopCommand {
            id: id("api", 0),
            run,
            command: vec!["api-ctl".into(), "stop".into()],
            main_pid,
            within: secs(5),
        }));
    assert!(
        !sim.log
            .iter()
            .any(|(_, a)| matches!(a, Action::Signal { .. })),
        "the signal was sent too"
    );
    sim.advance(secs(6));
    assert_eq!(sim.kill_at(), Some(stop_at + secs(5)));
}

#[test]
fn a_tree_whose_leader_is_gone_gets_the_signal_not_the_stop_command() {
    let mut api = prog("api");
    api.stop_command = Some(vec!["api-ctl".into(), "stop".into()]);
    let mut sim = Sim::new(set(vec![api]));
    sim.advance(secs(1));
    sim.exit_leaving_tree("api", 0, 0);
    sim.request(Request::Stop(Target::Program("api".into())));
    sim.advance(secs(6));
    assert!(
        !sim.log
            .iter()
            .any(|(_, a)| matches!(a, Action::StopCommand { .. })),
        "a stop command with no main process to name"
    );
    assert!(sim
        .log
        .iter()
        .any(|(_, a)| matches!(a, Action::Signal { .. })));
}

#[test]
fn stop_signals_then_kills_at_the_deadline() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.ignores_stop_signal("api");
    sim.advance(secs(1));
    let run = sim.run("api", 0).unwrap();
    let token = sim.request(Request::Stop(Target::Program("api".into())));
    let stop_at = sim.now;
    assert_eq!(sim.state("api", 0), State::Stopping);
    assert_eq!(sim.view("api", 0).desired, Desired::Down);
    assert!(sim.log.iter().any(|(_, a)| *a
        == Action::Signal {
            id: id("api", 0),
            run,
            signal: Signal::Term,
            main_only: false,
        }));
    assert_eq!(sim.sup.poll_timeout(), Some(stop_at + secs(5)));
    sim.advance(secs(4));
    assert_eq!(sim.reply(token), None);
    sim.advance(secs(2));
    assert_eq!(sim.kill_at(), Some(stop_at + secs(5)));
    assert!(sim.event_kinds("api", 0).contains(&EventKind::StopTimeout));
    assert_eq!(
        done_states(sim.reply(token)),
        vec![("api:0".into(), State::Stopped)]
    );
    assert_eq!(sim.sup.poll_timeout(), None);
}

#[test]
fn stop_mode_main_signals_the_main_process_then_kills_the_tree() {
    let mut api = prog("api");
    api.stop_mode = StopMode::Main;
    let mut sim = Sim::new(set(vec![api]));
    sim.ignores_stop_signal("api");
    sim.advance(secs(1));
    let run = sim.run("api", 0).unwrap();
    let token = sim.request(Request::Stop(Target::Program("api".into())));
    let stop_at = sim.now;
    let signals: Vec<&Action> = sim
        .log
        .iter()
        .map(|(_, a)| a)
        .filter(|a| matches!(a, Action::Signal { .. }))
        .collect();
    assert_eq!(
        signals,
        [&Action::Signal {
            id: id("api", 0),
            run,
            signal: Signal::Term,
            main_only: true,
        }]
    );
    // The deadline is the same as in tree mode: then the whole tree goes.
    sim.advance(secs(6));
    assert_eq!(sim.kill_at(), Some(stop_at + secs(5)));
    assert_eq!(
        done_states(sim.reply(token)),
        vec![("api:0".into(), State::Stopped)]
    );
}

#[test]
fn stop_mode_main_after_the_main_process_is_gone_signals_the_tree() {
    let mut api = prog("api");
    api.stop_mode = StopMode::Main;
    let mut sim = Sim::new(set(vec![api]));
    sim.advance(secs(5));
    let run = sim.run("api", 0).unwrap();
    sim.exit_leaving_tree("api", 0, 2);
    // Nobody is left to pass the signal on: the rest of the tree gets it.
    assert!(sim.log.iter().any(|(_, a)| *a
        == Action::Signal {
            id: id("api", 0),
            run,
            signal: Signal::Term,
            main_only: false,
        }));
}

#[test]
fn a_changed_stop_mode_needs_no_restart() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.advance(secs(1));
    let before = sim.run("api", 0).unwrap();
    let mut api = prog("api");
    api.stop_mode = StopMode::Main;
    sim.request(Request::Reload {
        specs: set(vec![api]),
        dry_run: false,
    });
    sim.advance(secs(1));
    assert_eq!(
        sim.run("api", 0),
        Some(before),
        "a policy change restarts nothing"
    );
    sim.request(Request::Stop(Target::All));
    assert!(sim.log.iter().any(|(_, a)| matches!(
        a,
        Action::Signal {
            main_only: true,
            ..
        }
    )));
}

#[test]
fn graceful_stop_needs_no_kill() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.advance(secs(1));
    let token = sim.request(Request::Stop(Target::All));
    sim.advance(secs(10));
    assert_eq!(
        done_states(sim.reply(token)),
        vec![("api:0".into(), State::Stopped)]
    );
    assert!(!sim
        .log
        .iter()
        .any(|(_, a)| matches!(a, Action::KillTree { .. })));
    let signals = sim
        .log
        .iter()
        .filter(|(_, a)| matches!(a, Action::Signal { .. }))
        .count();
    assert_eq!(signals, 1);
}

#[test]
fn leader_exit_with_tree_alive_cleans_up_then_restarts() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.advance(secs(5));
    let run = sim.run("api", 0).unwrap();
    sim.exit_leaving_tree("api", 0, 2);
    assert_eq!(sim.state("api", 0), State::Stopping);
    assert!(sim.event_kinds("api", 0).iter().any(|k| matches!(
        k,
        EventKind::Exited {
            status: ExitStatus::Code { code: 2 },
            failed_start: false,
            ..
        }
    )));
    assert!(sim.log.iter().any(|(_, a)| *a
        == Action::Signal {
            id: id("api", 0),
            run,
            signal: Signal::Term,
            main_only: false,
        }));
    sim.tree_gone("api", 0);
    assert_eq!(sim.state("api", 0), State::Backoff);
    sim.advance(secs(2));
    assert_eq!(sim.state("api", 0), State::Running);
}

#[test]
fn lingering_tree_is_killed_at_the_deadline() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.advance(secs(5));
    sim.exit_leaving_tree("api", 0, 1);
    let at = sim.now;
    sim.advance(secs(6));
    assert_eq!(sim.kill_at(), Some(at + secs(5)));
    // The world answered the kill with TreeGone: the restart decision ran.
    assert!(matches!(
        sim.state("api", 0),
        State::Backoff | State::Starting | State::Running
    ));
}

#[test]
fn stop_while_leader_gone_and_tree_alive_stays_stopping() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.advance(secs(5));
    sim.exit_leaving_tree("api", 0, 1);
    let token = sim.request(Request::Stop(Target::Program("api".into())));
    assert_eq!(sim.state("api", 0), State::Stopping);
    // One stop signal only, from the cleanup.
    let signals = sim
        .log
        .iter()
        .filter(|(_, a)| matches!(a, Action::Signal { .. }))
        .count();
    assert_eq!(signals, 1);
    assert_eq!(sim.reply(token), None);
    sim.tree_gone("api", 0);
    assert_eq!(
        done_states(sim.reply(token)),
        vec![("api:0".into(), State::Stopped)]
    );
}

#[test]
fn stop_before_spawned_holds_the_signal_until_the_process_exists() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.set_world(
        "api",
        World {
            spawn_after: None,
            ..World::default()
        },
    );
    // The autostart Spawn went out before the world was set; nothing answers.
    let run = sim.run("api", 0).unwrap();
    sim.request(Request::Stop(Target::All));
    assert_eq!(sim.state("api", 0), State::Stopping);
    assert!(!sim
        .log
        .iter()
        .any(|(_, a)| matches!(a, Action::Signal { .. })));
    sim.input(Input::Spawned {
        id: id("api", 0),
        run,
        pid: 42,
    });
    assert_eq!(sim.state("api", 0), State::Stopping);
    let signals = sim
        .log
        .iter()
        .filter(|(_, a)| matches!(a, Action::Signal { .. }))
        .count();
    assert_eq!(signals, 1);
}

#[test]
fn stop_all_goes_dependents_first() {
    let specs = set(vec![
        needs(prog("web"), "api", Condition::Started),
        needs(prog("api"), "db", Condition::Started),
        prog("db"),
    ]);
    let mut sim = Sim::new(specs);
    sim.advance(secs(1));
    let token = sim.request(Request::Stop(Target::All));
    assert_eq!(sim.signal_order(), vec!["web:0"]);
    assert_eq!(sim.state("api", 0), State::Running);
    sim.advance(ms(150));
    assert_eq!(sim.signal_order(), vec!["web:0", "api:0"]);
    sim.advance(secs(1));
    assert_eq!(sim.signal_order(), vec!["web:0", "api:0", "db:0"]);
    assert_eq!(
        done_states(sim.reply(token)),
        vec![
            ("api:0".into(), State::Stopped),
            ("db:0".into(), State::Stopped),
            ("web:0".into(), State::Stopped)
        ]
    );
}

#[test]
fn stopping_a_dependency_alone_does_not_wait_for_dependents() {
    let mut sim = Sim::new(set(vec![
        needs(prog("api"), "db", Condition::Started),
        prog("db"),
    ]));
    sim.advance(secs(1));
    sim.request(Request::Stop(Target::Program("db".into())));
    assert_eq!(sim.state("db", 0), State::Stopping);
    assert_eq!(sim.state("api", 0), State::Running);
}

#[test]
fn stop_of_backoff_and_exited_is_immediate() {
    let mut b = prog("b");
    b.restart = RestartPolicy::Never;
    let mut sim = Sim::new(set(vec![prog("a"), b]));
    sim.advance(secs(2));
    sim.exit("a", 0, 1);
    sim.exit("b", 0, 1);
    assert_eq!(sim.state("a", 0), State::Backoff);
    assert_eq!(sim.state("b", 0), State::Exited);
    let token = sim.request(Request::Stop(Target::All));
    assert_eq!(
        done_states(sim.reply(token)),
        vec![
            ("a:0".into(), State::Stopped),
            ("b:0".into(), State::Stopped)
        ]
    );
    assert_eq!(sim.sup.poll_timeout(), None);
}

#[test]
fn start_while_stopping_starts_afresh_once_stopped() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.set_world(
        "api",
        World {
            exit_on_signal: Some(secs(1)),
            ..World::default()
        },
    );
    sim.advance(secs(1));
    let stop = sim.request(Request::Stop(Target::All));
    assert_eq!(sim.state("api", 0), State::Stopping);
    let start = sim.request(Request::Start(Target::All));
    assert_eq!(sim.view("api", 0).desired, Desired::Up);
    sim.advance(ms(1_005));
    // Straight from stopping to starting: no backoff, no restart decision.
    assert_eq!(sim.state("api", 0), State::Starting);
    assert!(sim.backoffs("api", 0).is_empty());
    sim.advance(ms(1_100));
    assert_eq!(
        done_states(sim.reply(start)),
        vec![("api:0".into(), State::Running)]
    );
    assert!(sim.reply(stop).is_some());
}

#[test]
fn a_clean_exit_that_leaves_processes_is_daemonizing_and_a_crash_is_not() {
    let mut sim = Sim::new(set(vec![prog("nginx"), prog("crash")]));
    sim.advance(secs(5));
    sim.exit_leaving_tree("nginx", 0, 0);
    sim.exit_leaving_tree("crash", 0, 1);
    assert!(sim.event_kinds("nginx", 0).contains(&EventKind::Daemonized));
    assert!(sim.view("nginx", 0).daemonized);
    assert!(!sim.event_kinds("crash", 0).contains(&EventKind::Daemonized));
    assert!(!sim.view("crash", 0).daemonized);
    // `restart = "always"`: the next run starts with a clean slate.
    let first = sim.run("nginx", 0);
    sim.tree_gone("nginx", 0);
    sim.advance(secs(5));
    assert_eq!(sim.state("nginx", 0), State::Running);
    assert_ne!(sim.run("nginx", 0), first);
    assert!(!sim.view("nginx", 0).daemonized);
}
