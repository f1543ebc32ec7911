//! Starting: autostart, dependency conditions, Start requests, restore.

use crate::common::*;
use crate::done_states;
use ward_core::*;

#[test]
fn autostart_follows_dependency_order() {
    let specs = set(vec![
        needs(prog("web"), "api", Condition::Started),
        needs(prog("api"), "db", Condition::Started),
        prog("db"),
        prog("cron"),
    ]);
    let mut sim = Sim::new(specs);
    // Only what depends on nothing is spawned at once; the rest waits.
    assert_eq!(sim.spawn_order(), vec!["cron:0", "db:0"]);
    assert_eq!(sim.state("api", 0), State::Waiting);
    assert_eq!(sim.state("web", 0), State::Waiting);
    sim.advance(secs(1));
    assert_eq!(sim.spawn_order(), vec!["cron:0", "db:0", "api:0", "web:0"]);
    for name in ["web", "api", "db", "cron"] {
        assert_eq!(sim.state(name, 0), State::Running, "{name}");
    }
    // api was spawned only once db had been reported running.
    let db_running = sim.spawns_of("db", 0)[0].0 + ms(10);
    assert!(sim.spawns_of("api", 0)[0].0 >= db_running);
}

#[test]
fn autostart_brings_up_what_it_needs() {
    let mut db = prog("db");
    db.autostart = false;
    let mut sim = Sim::new(set(vec![needs(prog("api"), "db", Condition::Started), db]));
    sim.advance(secs(1));
    assert_eq!(sim.state("db", 0), State::Running);
    assert_eq!(sim.view("db", 0).desired, Desired::Up);
    assert_eq!(sim.state("api", 0), State::Running);
}

#[test]
fn completed_waits_for_a_successful_exit() {
    let mut migrate = prog("migrate");
    migrate.restart = RestartPolicy::OnFailure;
    migrate.min_uptime = ms(0);
    let mut sim = Sim::new(set(vec![
        needs(prog("api"), "migrate", Condition::Completed),
        migrate,
    ]));
    sim.advance(secs(1));
    assert_eq!(sim.state("migrate", 0), State::Running);
    assert_eq!(sim.state("api", 0), State::Waiting);
    // A failure is retried and does not release api.
    sim.exit("migrate", 0, 3);
    assert_eq!(sim.state("migrate", 0), State::Backoff);
    assert_eq!(sim.state("api", 0), State::Waiting);
    sim.advance(secs(2));
    assert_eq!(sim.state("migrate", 0), State::Running);
    sim.exit("migrate", 0, 0);
    assert_eq!(sim.state("migrate", 0), State::Exited);
    assert_eq!(sim.state("api", 0), State::Starting);
    sim.advance(secs(1));
    assert_eq!(sim.state("api", 0), State::Running);
}

#[test]
fn start_request_starts_dependencies_and_waits_for_the_target() {
    let mut db = prog("db");
    db.autostart = false;
    let mut api = needs(prog("api"), "db", Condition::Started);
    api.autostart = false;
    let mut sim = Sim::new(set(vec![api, db]));
    assert!(sim.spawn_order().is_empty());
    assert_eq!(sim.sup.poll_timeout(), None);
    let token = sim.request(Request::Start(Target::Program("api".into())));
    assert_eq!(sim.view("db", 0).desired, Desired::Up);
    assert_eq!(sim.reply(token), None);
    sim.advance(ms(15));
    // db is running, api just spawned.
    assert_eq!(sim.reply(token), None);
    sim.advance(ms(15));
    // api runs, but has not been up for its min_uptime (1 s) yet.
    assert_eq!(sim.state("api", 0), State::Running);
    assert_eq!(sim.reply(token), None);
    sim.advance(secs(1));
    assert_eq!(
        done_states(sim.reply(token)),
        vec![("api:0".into(), State::Running)]
    );
    let desired_events = sim
        .event_kinds("db", 0)
        .into_iter()
        .filter(|k| {
            matches!(
                k,
                EventKind::DesiredChanged {
                    desired: Desired::Up
                }
            )
        })
        .count();
    assert_eq!(desired_events, 1);
}

#[test]
fn start_reply_does_not_wait_on_a_dependency_that_gave_up() {
    let mut db = prog("db");
    db.autostart = false;
    db.start_limit.burst = 1;
    let mut api = needs(prog("api"), "db", Condition::Started);
    api.autostart = false;
    let mut sim = Sim::new(set(vec![api, db]));
    sim.set_world(
        "db",
        World {
            spawn_fails: true,
            ..World::default()
        },
    );
    let token = sim.request(Request::Start(Target::Program("api".into())));
    sim.advance(secs(1));
    assert_eq!(sim.state("db", 0), State::Fatal);
    assert_eq!(
        done_states(sim.reply(token)),
        vec![("api:0".into(), State::Waiting)]
    );
}

#[test]
fn start_does_not_rerun_a_completed_dependency() {
    let mut migrate = prog("migrate");
    migrate.restart = RestartPolicy::OnFailure;
    let mut api = needs(prog("api"), "migrate", Condition::Completed);
    api.autostart = false;
    let mut sim = Sim::new(set(vec![api, migrate]));
    sim.advance(secs(2));
    sim.exit("migrate", 0, 0);
    assert_eq!(sim.state("migrate", 0), State::Exited);
    let t = sim.request(Request::Start(Target::Program("api".into())));
    sim.advance(ms(1_100));
    assert_eq!(
        done_states(sim.reply(t)),
        vec![("api:0".into(), State::Running)]
    );
    assert_eq!(sim.spawns_of("migrate", 0).len(), 1);
}

#[test]
fn start_reruns_an_exited_started_dependency() {
    let mut db = prog("db");
    db.restart = RestartPolicy::Never;
    let mut api = needs(prog("api"), "db", Condition::Started);
    api.autostart = false;
    let mut sim = Sim::new(set(vec![api, db]));
    sim.advance(secs(2));
    sim.exit("db", 0, 0);
    assert_eq!(sim.state("db", 0), State::Exited);
    let t = sim.request(Request::Start(Target::Program("api".into())));
    sim.advance(ms(1_100));
    assert_eq!(
        done_states(sim.reply(t)),
        vec![("api:0".into(), State::Running)]
    );
    assert_eq!(sim.spawns_of("db", 0).len(), 2);
}

#[test]
fn start_during_backoff_starts_now() {
    let mut api = prog("api");
    api.backoff.initial = secs(30);
    api.backoff.max = secs(30);
    let mut sim = Sim::new(set(vec![api]));
    sim.advance(secs(2));
    sim.exit("api", 0, 1);
    assert_eq!(sim.state("api", 0), State::Backoff);
    let t = sim.request(Request::Start(Target::All));
    assert_eq!(sim.state("api", 0), State::Starting);
    sim.advance(ms(1_020));
    assert_eq!(
        done_states(sim.reply(t)),
        vec![("api:0".into(), State::Running)]
    );
    // The streak was kept: the next crash waits longer.
    sim.advance(secs(2));
    sim.exit("api", 0, 1);
    assert_eq!(sim.backoffs("api", 0).last().map(|b| b.1), Some(2));
}

#[test]
fn restored_down_stays_stopped_and_run_ids_continue() {
    let restore = Restore {
        desired: [(id("api", 0), Desired::Down), (id("tool", 0), Desired::Up)]
            .into_iter()
            .collect(),
        next_run: RunId(500),
    };
    let mut tool = prog("tool");
    tool.autostart = false;
    let sim = Sim::restored(set(vec![prog("api"), tool]), restore);
    assert_eq!(sim.state("api", 0), State::Stopped);
    assert_eq!(sim.view("api", 0).desired, Desired::Down);
    assert_eq!(sim.state("tool", 0), State::Starting);
    assert_eq!(sim.run("tool", 0), Some(RunId(500)));
    assert_eq!(sim.sup.next_run(), RunId(501));
}

#[test]
fn restored_down_dependency_is_not_overridden() {
    let restore = Restore {
        desired: [(id("db", 0), Desired::Down)].into_iter().collect(),
        ..Restore::default()
    };
    let mut sim = Sim::restored(
        set(vec![
            needs(prog("api"), "db", Condition::Started),
            prog("db"),
        ]),
        restore,
    );
    sim.advance(secs(1));
    assert_eq!(sim.state("db", 0), State::Stopped);
    assert_eq!(sim.state("api", 0), State::Waiting);
}

#[test]
fn idle_engine_has_no_timer() {
    let mut api = prog("api");
    api.restart = RestartPolicy::Never;
    let mut sim = Sim::new(set(vec![api]));
    sim.advance(secs(1));
    sim.exit("api", 0, 0);
    assert_eq!(sim.sup.poll_timeout(), None);
}

#[test]
fn events_carry_instance_and_run() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.advance(secs(5));
    sim.exit("api", 0, 1);
    sim.advance(secs(2));
    for (_, event) in sim.events() {
        match event.kind {
            EventKind::StateChanged { .. }
            | EventKind::Spawned { .. }
            | EventKind::Exited { .. }
            | EventKind::Backoff { .. } => {
                assert_eq!(event.instance, Some(id("api", 0)));
                assert!(event.run.is_some(), "{event:?}");
            }
            _ => {}
        }
    }
    let kinds = sim.event_kinds("api", 0);
    assert!(matches!(
        kinds[0],
        EventKind::StateChanged {
            from: State::Stopped,
            to: State::Starting
        }
    ));
}

#[test]
fn a_start_waiting_on_a_failed_completed_dependency_names_it() {
    let mut migrate = prog("migrate");
    migrate.restart = RestartPolicy::Never;
    let mut web = needs(prog("web"), "migrate", Condition::Completed);
    web.autostart = false;
    let mut sim = Sim::new(set(vec![web, migrate]));
    sim.advance(secs(2));
    sim.exit("migrate", 0, 1);
    assert_eq!(sim.state("migrate", 0), State::Exited);
    let t = sim.request(Request::Start(Target::Program("web".into())));
    // The failed migration is tried again; the reply waits to see how that
    // try fares: it fails before its min_uptime (1s).
    assert_eq!(sim.reply(t), None);
    sim.advance(ms(500));
    assert_eq!(sim.state("migrate", 0), State::Running);
    assert_eq!(sim.reply(t), None);
    sim.exit("migrate", 0, 1);
    let Some(Ok(Reply::Done { instances })) = sim.reply(t) else {
        panic!("no reply: {:?}", sim.reply(t));
    };
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0].state, State::Waiting);
    assert_eq!(
        instances[0].waiting_on,
        vec![Blocker {
            dependency: id("migrate", 0),
            condition: Condition::Completed,
            state: State::Exited,
            last_end: Some(RunEnd::Exited {
                status: ExitStatus::Code { code: 1 }
            }),
            failed: true,
        }]
    );
    // The snapshot says the same.
    assert_eq!(sim.view("web", 0).waiting_on, instances[0].waiting_on);
}

#[test]
fn a_dependency_still_on_its_way_is_a_blocker_that_has_not_failed() {
    let mut migrate = prog("migrate");
    migrate.restart = RestartPolicy::Never;
    let mut sim = Sim::new(set(vec![
        needs(prog("web"), "migrate", Condition::Completed),
        migrate,
    ]));
    sim.advance(secs(1));
    assert_eq!(sim.state("migrate", 0), State::Running);
    let waiting_on = sim.view("web", 0).waiting_on;
    assert_eq!(waiting_on.len(), 1, "{waiting_on:?}");
    assert_eq!(waiting_on[0].state, State::Running);
    assert!(!waiting_on[0].failed);
    // Nothing else waits, so nothing else names a blocker.
    assert!(sim.view("migrate", 0).waiting_on.is_empty());
    sim.exit("migrate", 0, 0);
    assert!(sim.view("web", 0).waiting_on.is_empty());
}

#[test]
fn a_start_is_answered_once_a_long_completed_dependency_has_proven_itself() {
    let mut migrate = prog("migrate");
    migrate.restart = RestartPolicy::Never;
    migrate.autostart = false;
    let mut web = needs(prog("web"), "migrate", Condition::Completed);
    web.autostart = false;
    let mut sim = Sim::new(set(vec![web, migrate]));
    let t = sim.request(Request::Start(Target::Program("web".into())));
    sim.advance(ms(500));
    assert_eq!(sim.state("migrate", 0), State::Running);
    assert_eq!(sim.reply(t), None);
    // Up for its min_uptime (1s from its spawn at 10ms): the answer says
    // web waits on it, and that it has not failed.
    sim.advance(ms(520));
    let Some(Ok(Reply::Done { instances })) = sim.reply(t) else {
        panic!("no reply at {:?}", sim.now);
    };
    assert_eq!(instances[0].state, State::Waiting);
    assert_eq!(instances[0].waiting_on.len(), 1);
    assert_eq!(instances[0].waiting_on[0].state, State::Running);
    assert!(!instances[0].waiting_on[0].failed);
}

#[test]
fn start_is_answered_once_the_run_outlives_min_uptime_or_fails() {
    let mut api = prog("api");
    api.autostart = false;
    let mut sim = Sim::new(set(vec![api]));
    let token = sim.request(Request::Start(Target::All));
    sim.advance(ms(500));
    // Running, but a death now would be a failed start: no answer yet.
    assert_eq!(sim.state("api", 0), State::Running);
    assert_eq!(sim.reply(token), None);
    sim.exit("api", 0, 1);
    // The answer says what became of it: not "running".
    let reply = sim.reply(token);
    assert_eq!(done_states(reply), vec![("api:0".into(), State::Backoff)]);
    // A Stop is answered as soon as it is stopped: no uptime to wait for.
    sim.advance(secs(5));
    let stop = sim.request(Request::Stop(Target::All));
    sim.advance(secs(1));
    assert_eq!(
        done_states(sim.reply(stop)),
        vec![("api:0".into(), State::Stopped)]
    );
}

#[test]
fn a_reload_that_raises_min_uptime_still_lets_a_waiting_start_be_answered() {
    let mut api = prog("api");
    api.autostart = false;
    api.min_uptime = ms(200);
    let mut sim = Sim::new(set(vec![api.clone()]));
    let token = sim.request(Request::Start(Target::All));
    sim.advance(ms(50));
    assert_eq!(sim.state("api", 0), State::Running);
    // Policy only: api keeps running, and its armed timer keeps its time.
    api.min_uptime = ms(900);
    let reload = sim.request(Request::Reload {
        specs: set(vec![api]),
        dry_run: false,
    });
    assert!(sim.reply(reload).is_some());
    assert_eq!(sim.reply(token), None);
    sim.advance(ms(300));
    assert_eq!(
        done_states(sim.reply(token)),
        vec![("api:0".into(), State::Running)]
    );
}
