//! Shutdown: reverse order, refusals, Exit.

use crate::common::*;
use crate::done_states;
use ward_core::*;

#[test]
fn shutdown_stops_in_reverse_order_then_exits() {
    let mut sim = Sim::new(set(vec![
        needs(prog("api"), "db", Condition::Started),
        prog("db"),
        prog("cron"),
    ]));
    sim.advance(secs(1));
    let t = sim.request(Request::Shutdown);
    assert!(sim.sup.shutting_down());
    assert_eq!(sim.signal_order(), vec!["api:0", "cron:0"]);
    // Refused while shutting down; Stop and Signal still answered.
    let start = sim.request(Request::Start(Target::All));
    assert_eq!(sim.reply(start), Some(Err(RequestError::ShuttingDown)));
    let reload = sim.request(Request::Reload {
        specs: set(vec![]),
        dry_run: true,
    });
    assert_eq!(sim.reply(reload), Some(Err(RequestError::ShuttingDown)));
    let sig = sim.request(Request::Signal(Target::All, Signal::Usr1));
    assert!(matches!(sim.reply(sig), Some(Ok(_))));
    assert!(!sim.log.iter().any(|(_, a)| *a == Action::Exit));
    sim.advance(secs(2));
    assert_eq!(sim.signal_order().last().map(String::as_str), Some("db:0"));
    let states = done_states(sim.reply(t));
    assert!(
        states.iter().all(|(_, s)| *s == State::Stopped),
        "{states:?}"
    );
    let exits: Vec<usize> = sim
        .log
        .iter()
        .enumerate()
        .filter(|(_, (_, a))| *a == Action::Exit)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(exits.len(), 1);
    // Exit comes after the reply.
    let reply_at = sim
        .log
        .iter()
        .position(|(_, a)| matches!(a, Action::Reply { token, .. } if *token == t));
    assert!(reply_at < Some(exits[0]));
    // Shutdown is not the user's choice: desired is untouched.
    assert_eq!(sim.view("api", 0).desired, Desired::Up);
    assert!(!sim
        .events()
        .iter()
        .any(|(_, e)| matches!(e.kind, EventKind::DesiredChanged { .. })));
    assert_eq!(sim.sup.poll_timeout(), None);
}

#[test]
fn shutdown_with_nothing_running_exits_at_once() {
    let mut api = prog("api");
    api.autostart = false;
    let mut sim = Sim::new(set(vec![api]));
    let t = sim.request(Request::Shutdown);
    assert!(sim.reply(t).is_some());
    assert_eq!(sim.log.last().map(|(_, a)| a.clone()), Some(Action::Exit));
}

#[test]
fn a_second_shutdown_kills_every_tree_at_once() {
    let mut sim = Sim::new(set(vec![
        needs(prog("api"), "db", Condition::Started),
        prog("db"),
    ]));
    // Nothing here stops on its own: only a kill ends these runs.
    for name in ["api", "db"] {
        sim.ignores_stop_signal(name);
    }
    sim.advance(secs(1));
    let first = sim.request(Request::Shutdown);
    // api is being stopped gracefully, db waits for it.
    assert_eq!(sim.signal_order(), vec!["api:0"]);
    let mark = sim.log.len();
    let second = sim.request(Request::Shutdown);
    let mut killed: Vec<String> = sim
        .actions_since(mark)
        .into_iter()
        .filter_map(|a| match a {
            Action::KillTree { id, .. } => Some(id.to_string()),
            _ => None,
        })
        .collect();
    killed.sort();
    assert_eq!(killed, vec!["api:0", "db:0"]);
    sim.advance(secs(1));
    assert!(matches!(sim.reply(first), Some(Ok(_))));
    assert!(matches!(sim.reply(second), Some(Ok(_))));
    assert!(sim.log.iter().any(|(_, a)| *a == Action::Exit));
}
