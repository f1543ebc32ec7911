//! Property tests: random programs, random dependencies (acyclic), random
//! policies, and random sequences of requests, process events, stale
//! inputs and time, against a simulated shell that behaves like a real one
//! would (it only reports what happened to processes it started). The
//! invariants are checked after every step.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use ward_core::*;

// ----- random specs -----

#[derive(Debug, Clone)]
struct ProgGen {
    instances: u32,
    autostart: bool,
    restart: u8,
    initial_ms: u64,
    max_ms: u64,
    factor: f64,
    jitter: f64,
    reset_after_ms: u64,
    burst: u32,
    interval_ms: u64,
    cooldown_ms: Option<u64>,
    min_uptime_ms: u64,
    stop_timeout_ms: u64,
    deps_mask: u8,
    completed_mask: u8,
    argv: u8,
    keep: u32,
    extra_success: bool,
}

prop_compose! {
    fn prog_gen()(
        (instances, autostart, restart, initial_ms, max_ms, factor) in (
            prop_oneof![1 => Just(0u32), 6 => Just(1u32), 3 => Just(2u32)],
            prop::bool::weighted(0.7),
            0u8..3,
            0u64..2_000,
            0u64..5_000,
            1.0f64..3.0,
        ),
        (jitter, reset_after_ms, burst, interval_ms, cooldown_ms, min_uptime_ms) in (
            prop_oneof![Just(0.0f64), 0.0f64..1.0],
            0u64..10_000,
            1u32..5,
            0u64..20_000,
            prop::option::of(0u64..10_000),
            0u64..3_000,
        ),
        (stop_timeout_ms, deps_mask, completed_mask, argv, keep, extra_success) in (
            0u64..3_000,
            any::<u8>(),
            prop::num::u8::ANY.prop_map(|m| m & m.rotate_left(3)),
            0u8..2,
            1u32..3,
            any::<bool>(),
        ),
    ) -> ProgGen {
        ProgGen {
            instances, autostart, restart, initial_ms, max_ms, factor, jitter,
            reset_after_ms, burst, interval_ms, cooldown_ms, min_uptime_ms,
            stop_timeout_ms, deps_mask, completed_mask, argv, keep, extra_success,
        }
    }
}

fn name(i: usize) -> String {
    format!("p{i}")
}

/// Program `i` may depend only on programs before it: no cycles.
fn build(gens: &[ProgGen]) -> SpecSet {
    let mut programs = Vec::new();
    for (i, g) in gens.iter().enumerate() {
        let mut p = common::prog(&name(i));
        p.launch = Arc::new(LaunchSpec {
            argv: vec![format!("./v{}", g.argv)],
            ..(*p.launch).clone()
        });
        p.logs = Arc::new(LogSpec {
            keep: g.keep,
            ..(*p.logs).clone()
        });
        p.instances = g.instances;
        p.autostart = g.autostart;
        p.restart = match g.restart {
            0 => RestartPolicy::Always,
            1 => RestartPolicy::OnFailure,
            _ => RestartPolicy::Never,
        };
        if g.extra_success {
            p.success_exit_codes = vec![0, 2];
        }
        p.backoff = BackoffSpec {
            initial: ms(g.initial_ms),
            max: ms(g.max_ms),
            factor: g.factor,
            jitter: g.jitter,
            reset_after: ms(g.reset_after_ms),
        };
        p.start_limit = StartLimit {
            burst: g.burst,
            interval: ms(g.interval_ms),
            cooldown: g.cooldown_ms.map(ms),
        };
        p.min_uptime = ms(g.min_uptime_ms);
        p.stop_timeout = ms(g.stop_timeout_ms);
        for j in 0..i.min(8) {
            if g.deps_mask & (1 << j) != 0 {
                let cond = if g.completed_mask & (1 << j) != 0 {
                    Condition::Completed
                } else {
                    Condition::Started
                };
                p.depends_on.insert(name(j), cond);
            }
        }
        programs.push(p);
    }
    common::set(programs)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ----- random inputs -----

#[derive(Debug, Clone)]
enum TargetGen {
    All,
    Program(usize),
    Instance(usize, u32),
}

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    AnswerSpawn(usize, bool),
    LeaderExit(usize, i32, bool),
    TreeGone(usize),
    Stale(usize, usize, u8),
    Start(TargetGen),
    Stop(TargetGen),
    Restart(TargetGen),
    Signal(TargetGen),
    Reload(usize, bool),
    Shutdown,
}

fn target_gen() -> impl Strategy<Value = TargetGen> {
    prop_oneof![
        1 => Just(TargetGen::All),
        3 => (0usize..6).prop_map(TargetGen::Program),
        2 => (0usize..5, 0u32..3).prop_map(|(p, i)| TargetGen::Instance(p, i)),
    ]
}

fn op_gen() -> impl Strategy<Value = Op> {
    prop_oneof![
        24 => prop_oneof![
            3 => 0u64..50,
            3 => 50u64..1_500,
            1 => 1_500u64..12_000,
        ].prop_map(Op::Advance),
        16 => (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(i, ok)| Op::AnswerSpawn(i, ok)),
        14 => (any::<usize>(), 0i32..3, prop::bool::weighted(0.3))
            .prop_map(|(i, c, t)| Op::LeaderExit(i, c, t)),
        4 => any::<usize>().prop_map(Op::TreeGone),
        6 => (any::<usize>(), any::<usize>(), 0u8..4).prop_map(|(i, r, k)| Op::Stale(i, r, k)),
        6 => target_gen().prop_map(Op::Start),
        6 => target_gen().prop_map(Op::Stop),
        4 => target_gen().prop_map(Op::Restart),
        2 => target_gen().prop_map(Op::Signal),
        4 => (0usize..2, prop::bool::weighted(0.3)).prop_map(|(i, d)| Op::Reload(i, d)),
        1 => Just(Op::Shutdown),
    ]
}

// ----- the simulated shell and the invariants -----

type Key = (InstanceId, RunId);

struct Shell {
    sup: Supervisor,
    now: Duration,
    /// The spec each program was last given (removed ones too: they still
    /// stop with it).
    last_spec: BTreeMap<String, ProgramSpec>,
    /// Runs asked for and not yet answered with Spawned/SpawnFailed.
    pending_spawns: Vec<Key>,
    /// Runs whose leader is alive.
    leaders: Vec<Key>,
    /// Runs whose leader exited and whose tree lingers.
    trees: Vec<Key>,
    /// Runs that exist in the world, by instance: spawned (or being
    /// spawned) and not ended.
    open: BTreeMap<InstanceId, RunId>,
    /// KillTree actions not yet carried out.
    kills: Vec<Key>,
    /// Inputs the shell owes the engine right away (cooperative answers).
    owed: Vec<Input>,
    all_runs: Vec<Key>,
    /// Every instance's state as the StateChanged events tell it.
    states: BTreeMap<InstanceId, State>,
    /// Stop deadlines by run.
    deadlines: BTreeMap<Key, Duration>,
    kill_times: BTreeMap<Key, Duration>,
    replies: BTreeMap<Token, u32>,
    next_token: u64,
    exits: u32,
    shutdown_requested: bool,
    /// A second Shutdown was asked for: kills come at once, not at deadlines.
    forced: bool,
    /// The shell answers spawns at once and obeys stop signals.
    cooperative: bool,
    next_pid: u32,
}

impl Shell {
    fn new(specs: SpecSet, restore: Restore, seed: u64) -> Shell {
        let last_spec = specs.programs.clone();
        let sup = Supervisor::new(specs, restore, seed, Duration::ZERO);
        let mut shell = Shell {
            sup,
            now: Duration::ZERO,
            last_spec,
            pending_spawns: Vec::new(),
            leaders: Vec::new(),
            trees: Vec::new(),
            open: BTreeMap::new(),
            kills: Vec::new(),
            owed: Vec::new(),
            all_runs: Vec::new(),
            states: BTreeMap::new(),
            deadlines: BTreeMap::new(),
            kill_times: BTreeMap::new(),
            replies: BTreeMap::new(),
            next_token: 1,
            exits: 0,
            shutdown_requested: false,
            forced: false,
            cooperative: false,
            next_pid: 100,
        };
        shell.settle_world();
        shell
    }

    /// Drains actions, carries out what the world does at once (kills,
    /// cooperative answers), fires timers that are due (a real shell's
    /// loop does), and checks the invariants.
    fn settle_world(&mut self) {
        loop {
            while let Some(action) = self.sup.poll_action() {
                self.on_action(action);
            }
            self.carry_out_kills();
            if !self.owed.is_empty() {
                // One at a time: the engine's answer to each comes before
                // the next, as it would from a real shell.
                let input = self.owed.remove(0);
                self.deliver(input);
                continue;
            }
            if self.sup.poll_timeout().is_some_and(|t| t <= self.now) {
                self.sup.handle_timeout(self.now);
                // Invariant 8: nothing left due at or before now.
                let next = self.sup.poll_timeout();
                assert!(
                    next.is_none_or(|t| t > self.now),
                    "timer {next:?} due at {:?}",
                    self.now
                );
                continue;
            }
            break;
        }
        self.check_consistency();
    }

    fn on_action(&mut self, action: Action) {
        match action {
            Action::Spawn { id, run, .. } => {
                // Invariants 1 and 2: the previous run of this instance has
                // reached its end before the next one is spawned.
                assert!(
                    !self.open.contains_key(&id),
                    "{id} spawned as {run} while {:?} is not over",
                    self.open.get(&id)
                );
                assert_eq!(self.states.get(&id), Some(&State::Starting), "{id} spawned");
                self.check_started_dependencies(&id);
                self.open.insert(id.clone(), run);
                self.all_runs.push((id.clone(), run));
                if self.cooperative {
                    self.answer_spawn((id, run), true);
                } else {
                    self.pending_spawns.push((id, run));
                }
            }
            Action::SignalMain { id, run, .. } => {
                assert_eq!(
                    self.open.get(&id),
                    Some(&run),
                    "signal for a run that is over"
                );
            }
            Action::Signal { id, run, .. } => {
                assert_eq!(
                    self.open.get(&id),
                    Some(&run),
                    "signal for a run that is over"
                );
                let key = (id, run);
                if self.cooperative {
                    if let Some(pos) = self.leaders.iter().position(|k| *k == key) {
                        self.leaders.remove(pos);
                        self.end_leader(key, common::SIGTERM, false);
                    }
                }
            }
            Action::KillTree { id, run } => {
                assert_eq!(
                    self.open.get(&id),
                    Some(&run),
                    "kill for a run that is over"
                );
                let key = (id, run);
                if self.forced {
                    // A second Shutdown kills at once; the deadline may
                    // still fire later (a kill of a dead tree does nothing).
                    self.kill_times.entry(key.clone()).or_insert(self.now);
                } else {
                    // Invariant 3: the kill comes exactly at the deadline.
                    assert_eq!(
                        self.deadlines.get(&key),
                        Some(&self.now),
                        "kill of {key:?} off its deadline"
                    );
                    assert!(
                        self.kill_times.insert(key.clone(), self.now).is_none(),
                        "second kill"
                    );
                }
                self.kills.push(key);
            }
            Action::Reply { token, .. } => {
                let n = self.replies.entry(token).or_insert(0);
                *n += 1;
                assert_eq!(*n, 1, "second reply to {token:?}");
            }
            Action::Publish(event) => self.on_event(event),
            Action::Exit => {
                self.exits += 1;
                assert_eq!(self.exits, 1, "Exit twice");
                assert!(self.shutdown_requested, "Exit without shutdown");
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event.kind {
            EventKind::StateChanged { from, to } => {
                let id = event.instance.expect("state changes name their instance");
                let known = self.states.get(&id).copied().unwrap_or(State::Stopped);
                assert_eq!(known, from, "{id}: event says from {from}, we saw {known}");
                assert_ne!(from, to);
                self.states.insert(id.clone(), to);
                if to == State::Stopping {
                    let run = event.run.expect("stopping names its run");
                    let timeout = self.last_spec[&*id.program].stop_timeout;
                    self.deadlines.insert((id, run), self.now + timeout);
                }
            }
            EventKind::Backoff { delay_ms, .. } => {
                // Invariant 4 (a u64 cannot be negative).
                let id = event.instance.expect("backoff names its instance");
                let max = self.last_spec[&*id.program].backoff.max;
                assert!(
                    u128::from(delay_ms) <= max.as_millis(),
                    "{id}: backoff {delay_ms}ms above max {max:?}"
                );
                let due = self.sup.poll_timeout();
                assert!(
                    due.is_some_and(|t| t <= self.now + max),
                    "backoff timer past max"
                );
            }
            EventKind::Spawned { .. }
            | EventKind::Exited { .. }
            | EventKind::SpawnFailed { .. } => {
                assert!(event.instance.is_some() && event.run.is_some());
            }
            _ => {}
        }
    }

    /// Invariant 5: at the moment of a Spawn, every instance of every
    /// `started` dependency is running.
    fn check_started_dependencies(&self, id: &InstanceId) {
        let spec = &self.last_spec[&*id.program];
        for (dep, cond) in &spec.depends_on {
            if *cond != Condition::Started {
                continue;
            }
            let Some(dep_spec) = self.sup.specs().get(dep) else {
                continue;
            };
            for index in 0..dep_spec.instances {
                let dep_id = InstanceId::new(dep, index);
                let state = self.states.get(&dep_id).copied().unwrap_or(State::Stopped);
                assert_eq!(
                    state,
                    State::Running,
                    "{id} spawned while {dep_id} is {state}"
                );
            }
        }
    }

    /// The engine's snapshot agrees with its events and with the world.
    fn check_consistency(&mut self) {
        let snapshot = self.sup.snapshot();
        let mut present = BTreeMap::new();
        for view in &snapshot.instances {
            let from_events = self.states.get(&view.id).copied().unwrap_or(State::Stopped);
            assert_eq!(view.state, from_events, "{}: snapshot vs events", view.id);
            let open = self.open.get(&view.id);
            assert_eq!(
                view.state.is_live(),
                open.is_some(),
                "{}: {} but the world has {open:?}",
                view.id,
                view.state
            );
            if let Some(run) = open {
                assert_eq!(view.run, Some(*run));
            }
            present.insert(view.id.clone(), ());
        }
        for id in self.open.keys() {
            assert!(
                present.contains_key(id),
                "{id} forgotten while its run lives"
            );
        }
        // Forgotten instances may come back later, fresh.
        self.states.retain(|id, _| present.contains_key(id));
        // Invariant 3, the other half: no deadline passed without a kill.
        for (key, deadline) in &self.deadlines {
            if self.open.get(&key.0) == Some(&key.1) && *deadline <= self.now {
                let killed = self.kill_times.get(key);
                if self.forced {
                    assert!(
                        killed.is_some_and(|t| t <= deadline),
                        "{key:?}: deadline passed, no kill"
                    );
                } else {
                    assert_eq!(killed, Some(deadline), "{key:?}: deadline passed, no kill");
                }
            }
        }
    }

    /// Hands the engine an input; a run is over for the invariants once
    /// the engine has been told so.
    fn deliver(&mut self, input: Input) {
        let ended = match &input {
            Input::SpawnFailed { id, run, .. }
            | Input::TreeGone { id, run }
            | Input::Exited {
                id,
                run,
                tree_alive: false,
                ..
            } => Some((id.clone(), *run)),
            _ => None,
        };
        self.sup.handle(self.now, input);
        if let Some(key) = ended {
            self.end_run(&key);
        }
    }

    fn end_run(&mut self, key: &Key) {
        if self.open.get(&key.0) == Some(&key.1) {
            self.open.remove(&key.0);
        }
    }

    fn answer_spawn(&mut self, key: Key, ok: bool) {
        let (id, run) = key.clone();
        if ok {
            self.next_pid += 1;
            self.leaders.push(key);
            self.owed.push(Input::Spawned {
                id,
                run,
                pid: self.next_pid,
            });
        } else {
            self.owed.push(Input::SpawnFailed {
                id,
                run,
                error: "ENOENT".into(),
            });
        }
    }

    fn end_leader(&mut self, key: Key, signal: i32, tree_alive: bool) {
        let (id, run) = key.clone();
        if tree_alive {
            self.trees.push(key);
        }
        self.owed.push(Input::Exited {
            id,
            run,
            status: ExitStatus::Signal {
                signal,
                core_dumped: false,
            },
            tree_alive,
        });
    }

    fn carry_out_kills(&mut self) {
        for key in std::mem::take(&mut self.kills) {
            if let Some(pos) = self.pending_spawns.iter().position(|k| *k == key) {
                // Killed while being spawned: it starts, then dies.
                self.pending_spawns.remove(pos);
                self.answer_spawn(key.clone(), true);
            }
            if let Some(pos) = self.leaders.iter().position(|k| *k == key) {
                self.leaders.remove(pos);
                self.end_leader(key, common::SIGKILL, false);
            } else if let Some(pos) = self.trees.iter().position(|k| *k == key) {
                self.trees.remove(pos);
                self.owed.push(Input::TreeGone {
                    id: key.0,
                    run: key.1,
                });
            }
        }
    }

    fn request(&mut self, request: Request) {
        let token = Token(self.next_token);
        self.next_token += 1;
        self.replies.insert(token, 0);
        self.deliver(Input::Request { token, request });
    }

    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(t) = self.sup.poll_timeout().filter(|t| *t <= target) {
            self.now = self.now.max(t);
            self.settle_world();
        }
        self.now = target;
        self.settle_world();
    }

    fn target(&self, t: &TargetGen) -> Target {
        match t {
            TargetGen::All => Target::All,
            TargetGen::Program(p) => Target::Program(if *p == 5 { "p1x".into() } else { name(*p) }),
            TargetGen::Instance(p, i) => Target::Instance(name(*p), *i),
        }
    }

    fn apply(&mut self, op: &Op, reloads: &[SpecSet]) {
        match op {
            Op::Advance(n) => self.advance(ms(*n)),
            Op::AnswerSpawn(i, ok) => {
                if !self.pending_spawns.is_empty() {
                    let key = self.pending_spawns.remove(i % self.pending_spawns.len());
                    self.answer_spawn(key, *ok);
                }
            }
            Op::LeaderExit(i, code, tree_alive) => {
                if !self.leaders.is_empty() {
                    let key = self.leaders.remove(i % self.leaders.len());
                    let (id, run) = key.clone();
                    if *tree_alive {
                        self.trees.push(key);
                    }
                    self.owed.push(Input::Exited {
                        id,
                        run,
                        status: ExitStatus::Code { code: *code },
                        tree_alive: *tree_alive,
                    });
                }
            }
            Op::TreeGone(i) => {
                if !self.trees.is_empty() {
                    let key = self.trees.remove(i % self.trees.len());
                    self.owed.push(Input::TreeGone {
                        id: key.0,
                        run: key.1,
                    });
                }
            }
            Op::Stale(i, r, kind) => self.stale(*i, *r, *kind),
            Op::Start(t) => self.request(Request::Start(self.target(t))),
            Op::Stop(t) => self.request(Request::Stop(self.target(t))),
            Op::Restart(t) => self.request(Request::Restart(self.target(t))),
            Op::Signal(t) => self.request(Request::Signal(self.target(t), Signal::Hup)),
            Op::Reload(i, dry_run) => {
                let specs = reloads[i % reloads.len()].clone();
                if !dry_run && !self.sup.shutting_down() {
                    for (name, spec) in &specs.programs {
                        self.last_spec.insert(name.clone(), spec.clone());
                    }
                }
                self.request(Request::Reload {
                    specs,
                    dry_run: *dry_run,
                });
            }
            Op::Shutdown => {
                self.forced |= self.shutdown_requested;
                self.shutdown_requested = true;
                self.request(Request::Shutdown);
            }
        }
        self.settle_world();
    }

    /// Invariant 6: an input about a run that is not the instance's
    /// current one changes nothing and emits nothing.
    fn stale(&mut self, i: usize, r: usize, kind: u8) {
        let mut ids: Vec<InstanceId> = self
            .sup
            .snapshot()
            .instances
            .into_iter()
            .map(|v| v.id)
            .collect();
        ids.push(InstanceId::new("nope", 0));
        let id = ids[i % ids.len()].clone();
        let mut runs: Vec<RunId> = self.all_runs.iter().map(|(_, run)| *run).collect();
        runs.push(self.sup.next_run());
        runs.push(RunId(self.sup.next_run().0 + 7));
        let run = runs[r % runs.len()];
        if self.open.get(&id) == Some(&run) {
            return;
        }
        let input = match kind {
            0 => Input::Spawned { id, run, pid: 1 },
            1 => Input::SpawnFailed {
                id,
                run,
                error: "stale".into(),
            },
            2 => Input::Exited {
                id,
                run,
                status: ExitStatus::Code { code: 1 },
                tree_alive: r.is_multiple_of(2),
            },
            _ => Input::TreeGone { id, run },
        };
        let before = self.sup.snapshot();
        let timeout = self.sup.poll_timeout();
        self.sup.handle(self.now, input.clone());
        assert_eq!(
            self.sup.poll_action(),
            None,
            "stale {input:?} produced an action"
        );
        assert_eq!(
            self.sup.snapshot(),
            before,
            "stale {input:?} changed the snapshot"
        );
        assert_eq!(self.sup.poll_timeout(), timeout);
    }

    /// Invariant 7: with a shell that answers, every request is replied
    /// to, and a shutdown ends in Exit.
    fn finish(&mut self) {
        self.cooperative = true;
        for key in std::mem::take(&mut self.pending_spawns) {
            self.answer_spawn(key, true);
        }
        // Leaders that were signalled before the shell turned cooperative
        // obey now.
        self.settle_world();
        for _ in 0..1_000 {
            if self.replies.values().all(|n| *n == 1) && self.sup.poll_timeout().is_none() {
                break;
            }
            match self.sup.poll_timeout() {
                Some(t) => {
                    self.now = self.now.max(t);
                    self.settle_world();
                }
                None => break,
            }
        }
        let unanswered: Vec<&Token> = self
            .replies
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(t, _)| t)
            .collect();
        assert!(
            unanswered.is_empty(),
            "never answered: {unanswered:?}\n{:#?}",
            self.sup.snapshot()
        );
        if self.shutdown_requested {
            assert_eq!(self.exits, 1, "shutdown never finished");
            assert!(self
                .sup
                .snapshot()
                .instances
                .iter()
                .all(|v| v.state == State::Stopped));
            assert!(self.open.is_empty());
        }
    }
}

/// A state file as the shell might have kept it: some instances with an
/// explicit desired state (some of them no longer in the config).
fn restore(mask: u16, next_run: u64) -> Restore {
    let desired = (0..6)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| {
            let desired = if mask & (1 << (i + 8)) != 0 {
                Desired::Up
            } else {
                Desired::Down
            };
            (InstanceId::new(&name(i), 0), desired)
        })
        .collect();
    Restore {
        desired,
        next_run: RunId(next_run),
    }
}

fn run_case(
    programs: &[ProgGen],
    restore_mask: u16,
    reloads: &[Vec<ProgGen>],
    ops: &[Op],
    seed: u64,
) {
    let reloads: Vec<SpecSet> = reloads.iter().map(|g| build(g)).collect();
    let mut shell = Shell::new(build(programs), restore(restore_mask, seed % 1_000), seed);
    for op in ops {
        shell.apply(op, &reloads);
    }
    shell.finish();
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_invariants_hold(
        programs in prop::collection::vec(prog_gen(), 2..=5),
        restore_mask in prop_oneof![Just(0u16), any::<u16>()],
        reloads in prop::collection::vec(prop::collection::vec(prog_gen(), 1..=5), 2),
        ops in prop::collection::vec(op_gen(), 1..80),
        seed in any::<u64>(),
    ) {
        run_case(&programs, restore_mask, &reloads, &ops, seed);
    }
}
