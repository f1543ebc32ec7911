//! After a run ends: restart policy, backoff, reset, start limit.

use crate::common::*;
use crate::done_states;
use ward_core::*;

#[test]
fn crash_backoff_grows_and_caps() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.advance(secs(2));
    for _ in 0..6 {
        assert_eq!(sim.state("api", 0), State::Running);
        sim.exit("api", 0, 1);
        assert_eq!(sim.state("api", 0), State::Backoff);
        sim.advance(secs(12));
    }
    let delays: Vec<u64> = sim.backoffs("api", 0).iter().map(|b| b.0).collect();
    assert_eq!(delays, vec![1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
    let attempts: Vec<u32> = sim.backoffs("api", 0).iter().map(|b| b.1).collect();
    assert_eq!(attempts, vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn restarts_exactly_after_the_delay() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.advance(secs(5));
    sim.exit("api", 0, 1);
    let exit_at = sim.now;
    sim.advance(secs(5));
    let spawns = sim.spawns_of("api", 0);
    assert_eq!(spawns.len(), 2);
    assert_eq!(spawns[1].0, exit_at + secs(1));
    assert_eq!(sim.view("api", 0).restarts, 1);
}

#[test]
fn reset_after_forgets_the_streak() {
    let mut api = prog("api");
    api.backoff.reset_after = secs(30);
    let mut sim = Sim::new(set(vec![api]));
    sim.advance(secs(2));
    for _ in 0..3 {
        sim.exit("api", 0, 1);
        sim.advance(secs(10));
    }
    // Now up for longer than reset_after: the next crash starts over.
    sim.advance(secs(31));
    sim.exit("api", 0, 1);
    let delays: Vec<u64> = sim.backoffs("api", 0).iter().map(|b| b.0).collect();
    assert_eq!(delays, vec![1_000, 2_000, 4_000, 1_000]);
}

#[test]
fn reset_timer_is_dropped_when_the_run_ends() {
    let mut api = prog("api");
    api.restart = RestartPolicy::Never;
    let mut sim = Sim::new(set(vec![api]));
    sim.advance(secs(2));
    assert!(
        sim.sup.poll_timeout().is_some(),
        "reset timer while running"
    );
    sim.exit("api", 0, 1);
    assert_eq!(sim.state("api", 0), State::Exited);
    assert_eq!(sim.sup.poll_timeout(), None);
}

#[test]
fn clean_exit_with_always_restarts_without_growing() {
    let mut sim = Sim::new(set(vec![prog("api")]));
    sim.advance(secs(2));
    for _ in 0..3 {
        sim.exit("api", 0, 0);
        sim.advance(secs(3));
    }
    let delays: Vec<u64> = sim.backoffs("api", 0).iter().map(|b| b.0).collect();
    assert_eq!(delays, vec![1_000, 1_000, 1_000]);
}

#[test]
fn on_failure_and_never() {
    let mut a = prog("a");
    a.restart = RestartPolicy::OnFailure;
    let mut b = prog("b");
    b.restart = RestartPolicy::Never;
    let mut sim = Sim::new(set(vec![a, b]));
    sim.advance(secs(2));
    sim.exit("a", 0, 0);
    sim.exit("b", 0, 1);
    assert_eq!(sim.state("a", 0), State::Exited);
    assert_eq!(sim.state("b", 0), State::Exited);
    assert_eq!(
        sim.view("b", 0).last_end,
        Some(RunEnd::Exited {
            status: ExitStatus::Code { code: 1 }
        })
    );
    assert_eq!(sim.sup.poll_timeout(), None);
}

#[test]
fn zero_delay_restarts_in_the_same_timeout_call() {
    let mut api = prog("api");
    api.backoff.initial = ms(0);
    api.backoff.max = ms(0);
    let mut sim = Sim::new(set(vec![api]));
    sim.advance(secs(2));
    sim.exit("api", 0, 1);
    assert_eq!(sim.state("api", 0), State::Backoff);
    assert_eq!(sim.sup.poll_timeout(), Some(sim.now));
    sim.sup.handle_timeout(sim.now);
    sim.drain();
    assert_eq!(sim.state("api", 0), State::Starting);
    assert!(sim.sup.poll_timeout().is_none_or(|t| t > sim.now));
}

#[test]
fn jitter_stays_within_band() {
    let mut api = prog("api");
    api.backoff.jitter = 0.5;
    api.backoff.initial = secs(4);
    api.backoff.factor = 1.0;
    let mut sim = Sim::new(set(vec![api]));
    sim.advance(secs(2));
    for _ in 0..20 {
        sim.exit("api", 0, 1);
        sim.advance(secs(10));
    }
    let delays: Vec<u64> = sim.backoffs("api", 0).iter().map(|b| b.0).collect();
    assert!(
        delays.iter().all(|d| (2_000..=6_000).contains(d)),
        "{delays:?}"
    );
    assert!(delays.iter().any(|d| *d != 4_000), "no jitter: {delays:?}");
}

#[test]
fn quick_exits_go_fatal_then_cooldown_gives_a_fresh_try() {
    let mut api = prog("api");
    api.start_limit = StartLimit {
        burst: 3,
        interval: secs(60),
        cooldown: Some(secs(100)),
    };
    api.min_uptime = secs(5);
    let mut sim = Sim::new(set(vec![api]));
    for _ in 0..3 {
        sim.advance(ms(500));
        assert_eq!(sim.state("api", 0), State::Running);
        sim.exit("api", 0, 0);
        if sim.state("api", 0) == State::Backoff {
            sim.advance(secs(4));
        }
    }
    assert_eq!(sim.state("api", 0), State::Fatal);
    let fatal = sim
        .event_kinds("api", 0)
        .into_iter()
        .find(|k| matches!(k, EventKind::Fatal { .. }));
    assert_eq!(
        fatal,
        Some(EventKind::Fatal {
            failed_starts: 3,
            cooldown_ms: Some(100_000)
        })
    );
    let failed: Vec<bool> = sim
        .event_kinds("api", 0)
        .into_iter()
        .filter_map(|k| match k {
            EventKind::Exited { failed_start, .. } => Some(failed_start),
            _ => None,
        })
        .collect();
    assert_eq!(failed, vec![true, true, true]);
    let fatal_at = sim.now;
    assert_eq!(sim.sup.poll_timeout(), Some(fatal_at + secs(100)));
    sim.advance(secs(100));
    assert_eq!(sim.state("api", 0), State::Starting);
    assert_eq!(
        sim.spawns_of("api", 0).last().map(|s| s.0),
        Some(fatal_at + secs(100))
    );
    // A fresh try: the next failure backs off from the start again.
    sim.advance(ms(500));
    sim.exit("api", 0, 1);
    assert_eq!(sim.state("api", 0), State::Backoff);
    assert_eq!(sim.backoffs("api", 0).last(), Some(&(1_000, 1)));
}

#[test]
fn fatal_without_cooldown_stays_until_started() {
    let mut api = prog("api");
    api.start_limit.burst = 2;
    let mut sim = Sim::new(set(vec![api]));
    sim.set_world(
        "api",
        World {
            spawn_fails: true,
            ..World::default()
        },
    );
    // The first spawn was emitted before the world was set: answer it.
    let run = sim.run("api", 0).unwrap();
    sim.input(Input::SpawnFailed {
        id: id("api", 0),
        run,
        error: "exec format error".into(),
    });
    assert_eq!(sim.state("api", 0), State::Backoff);
    sim.advance(secs(5));
    assert_eq!(sim.state("api", 0), State::Fatal);
    assert_eq!(
        sim.view("api", 0).last_end,
        Some(RunEnd::SpawnFailed {
            error: "no such file".into()
        })
    );
    assert_eq!(sim.sup.poll_timeout(), None);
    sim.advance(secs(3600));
    assert_eq!(sim.state("api", 0), State::Fatal);
    sim.set_world("api", World::default());
    let token = sim.request(Request::Start(Target::Program("api".into())));
    sim.advance(ms(1_100));
    assert_eq!(
        done_states(sim.reply(token)),
        vec![("api:0".into(), State::Running)]
    );
}

#[test]
fn spawn_failure_counts_as_failed_start() {
    let mut api = prog("api");
    api.start_limit.burst = 3;
    let mut sim = Sim::new(set(vec![api]));
    let run = sim.run("api", 0).unwrap();
    sim.input(Input::SpawnFailed {
        id: id("api", 0),
        run,
        error: "permission denied".into(),
    });
    assert!(sim.event_kinds("api", 0).contains(&EventKind::SpawnFailed {
        error: "permission denied".into()
    }));
    assert_eq!(sim.state("api", 0), State::Backoff);
    sim.set_world(
        "api",
        World {
            spawn_fails: true,
            ..World::default()
        },
    );
    sim.advance(secs(10));
    assert_eq!(sim.state("api", 0), State::Fatal);
    assert_eq!(sim.spawns_of("api", 0).len(), 3);
}
