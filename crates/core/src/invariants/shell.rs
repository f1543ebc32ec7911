//! The simulated shell that checks the invariants after every step.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{check_diff, program_name, Op, Pick, Violation};
use crate::engine::{Restore, Supervisor};
use crate::model::{
    Action, Event, EventKind, ExitStatus, Input, InstanceId, Reply, Request, RequestError, RunId,
    State, Target, Time, Token,
};
use crate::spec::{Condition, ProgramSpec, Signal, SpecSet};

const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

// ----- the simulated shell -----

type Key = (InstanceId, RunId);

/// A simulated shell that checks the invariants after every step. Build it
/// with [`CheckedShell::new`], feed it [`Op`]s with [`CheckedShell::apply`],
/// and end with [`CheckedShell::finish`].
pub struct CheckedShell {
    sup: Supervisor,
    now: Time,
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
    /// Inputs the shell owes the engine right away.
    owed: Vec<Input>,
    all_runs: Vec<Key>,
    /// Every instance's state as the StateChanged events tell it.
    states: BTreeMap<InstanceId, State>,
    /// Stop deadlines by run.
    deadlines: BTreeMap<Key, Time>,
    kill_times: BTreeMap<Key, Time>,
    replies: BTreeMap<Token, u32>,
    /// The replies not yet looked at (only reload replies are, and taken out).
    answers: BTreeMap<Token, Result<Reply, RequestError>>,
    next_token: u64,
    exits: u32,
    shutdown_requested: bool,
    /// A second Shutdown was asked for: kills come at once, not at deadlines.
    forced: bool,
    /// The shell answers spawns at once and obeys stop signals.
    cooperative: bool,
    next_pid: u32,
}

impl CheckedShell {
    /// An engine built from `specs` at time zero, its first actions
    /// carried out and checked.
    pub fn new(specs: SpecSet, restore: Restore, seed: u64) -> Result<CheckedShell, Violation> {
        let last_spec = specs.programs.clone();
        let sup = Supervisor::new(specs, restore, seed, Duration::ZERO);
        let mut shell = CheckedShell {
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
            answers: BTreeMap::new(),
            next_token: 1,
            exits: 0,
            shutdown_requested: false,
            forced: false,
            cooperative: false,
            next_pid: 100,
        };
        shell.settle_world()?;
        Ok(shell)
    }

    /// The engine, for looking (not for driving: that would bypass the
    /// checks).
    pub fn supervisor(&self) -> &Supervisor {
        &self.sup
    }

    /// Carries out one step and checks the invariants.
    pub fn apply(&mut self, op: &Op, reloads: &[SpecSet]) -> Result<(), Violation> {
        match op {
            Op::Advance(by) => return self.advance(*by),
            Op::AdvanceToDeadline => {
                if let Some(t) = self.sup.poll_timeout() {
                    self.now = self.now.max(t);
                }
            }
            Op::Wake => self.wake()?,
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
            Op::Stale(i, r, kind) => self.stale(*i, *r, *kind)?,
            Op::Start(p) => {
                self.request(Request::Start(target(p)));
            }
            Op::Stop(p) => {
                self.request(Request::Stop(target(p)));
            }
            Op::Restart(p) => {
                self.request(Request::Restart(target(p)));
            }
            Op::Signal(p) => {
                // Both scopes, without an op of their own: a whole program
                // or everything gets the tree-wide kind.
                if matches!(p, Pick::Instance(..) | Pick::Typo) {
                    self.request(Request::Signal(target(p), Signal::Hup));
                } else {
                    self.request(Request::SignalTree(target(p), Signal::Hup));
                }
            }
            Op::Reload(i, dry_run) => {
                if reloads.is_empty() {
                    return Ok(());
                }
                let specs = reloads[i % reloads.len()].clone();
                let refused = self.sup.shutting_down();
                let before = self.sup.specs().clone();
                let diff = self.sup.diff(&specs);
                check_diff(&before, &specs, &diff)?;
                if !dry_run && !refused {
                    for (name, spec) in &specs.programs {
                        self.last_spec.insert(name.clone(), spec.clone());
                    }
                }
                let token = self.request(Request::Reload {
                    specs: specs.clone(),
                    dry_run: *dry_run,
                });
                // A reload is answered at once: with the diff, or refused
                // while shutting down.
                self.drain_actions()?;
                match self.answers.remove(&token) {
                    Some(Ok(Reply::Reloaded {
                        diff: answered,
                        dry_run: answered_dry,
                        instances,
                    })) if !refused => {
                        ensure_eq!(answered, diff, "the diff of reload {token:?}");
                        ensure_eq!(answered_dry, *dry_run, "the reply to reload {token:?}");
                        // What the reply says it does to each instance is
                        // checked in the scenario tests; here, that it names
                        // only instances of programs the reload touches.
                        for i in &instances {
                            let name = &*i.id.program;
                            ensure!(
                                diff.added
                                    .iter()
                                    .chain(&diff.removed)
                                    .chain(&diff.restarted)
                                    .chain(&diff.updated)
                                    .any(|n| n == name)
                                    || diff.rescaled.contains_key(name),
                                "reload {token:?} names {} of an untouched program",
                                i.id
                            );
                        }
                    }
                    other => ensure_eq!(
                        other,
                        Some(Err(RequestError::ShuttingDown)),
                        "the reply to reload {token:?} (refused: {refused})"
                    ),
                }
                let in_force = if *dry_run || refused { &before } else { &specs };
                ensure!(
                    self.sup.specs() == in_force,
                    "after a reload (dry run: {dry_run}, refused: {refused}) the specs in force are not the expected ones"
                );
            }
            Op::Shutdown => {
                self.forced |= self.shutdown_requested;
                self.shutdown_requested = true;
                self.request(Request::Shutdown);
            }
        }
        self.settle_world()
    }

    /// Invariant 7: with a shell that answers spawns and obeys stop
    /// signals, every request is replied to, and a shutdown ends in Exit
    /// with every instance stopped.
    pub fn finish(&mut self) -> Result<(), Violation> {
        self.cooperative = true;
        for key in std::mem::take(&mut self.pending_spawns) {
            self.answer_spawn(key, true);
        }
        // Leaders that were signalled before the shell turned cooperative
        // obey now.
        self.settle_world()?;
        for _ in 0..1_000 {
            if self.replies.values().all(|n| *n == 1) && self.sup.poll_timeout().is_none() {
                break;
            }
            match self.sup.poll_timeout() {
                Some(t) => {
                    self.now = self.now.max(t);
                    self.settle_world()?;
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
        ensure!(
            unanswered.is_empty(),
            "never answered: {unanswered:?}\n{:#?}",
            self.sup.snapshot()
        );
        if self.shutdown_requested {
            ensure_eq!(self.exits, 1, "shutdown never finished");
            let snapshot = self.sup.snapshot();
            ensure!(
                snapshot.instances.iter().all(|v| v.state == State::Stopped),
                "shut down, yet not everything is stopped: {snapshot:#?}"
            );
            ensure!(
                self.open.is_empty(),
                "shut down with runs alive: {:?}",
                self.open
            );
        }
        Ok(())
    }

    /// Drains actions, carries out what the world does at once (kills,
    /// owed answers), fires timers that are due (a real shell's loop does),
    /// and checks the invariants.
    fn settle_world(&mut self) -> Result<(), Violation> {
        loop {
            self.drain_actions()?;
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
                ensure!(
                    next.is_none_or(|t| t > self.now),
                    "timer {next:?} due at {:?} after handle_timeout",
                    self.now
                );
                continue;
            }
            break;
        }
        // Invariant 9.
        let mut probe = self.sup.clone();
        probe.settle_everything();
        if let Some(action) = probe.poll_action() {
            return Err(Violation(format!(
                "a full settle still does {action:?}: the last one missed it"
            )));
        }
        self.check_consistency()
    }

    fn drain_actions(&mut self) -> Result<(), Violation> {
        while let Some(action) = self.sup.poll_action() {
            self.on_action(action)?;
        }
        Ok(())
    }

    fn on_action(&mut self, action: Action) -> Result<(), Violation> {
        match action {
            Action::Spawn { id, run, .. } => {
                // Invariants 1 and 2: the previous run of this instance has
                // reached its end before the next one is spawned.
                ensure!(
                    !self.open.contains_key(&id),
                    "{id} spawned as {run} while {:?} is not over",
                    self.open.get(&id)
                );
                ensure_eq!(self.states.get(&id), Some(&State::Starting), "{id} spawned");
                self.check_started_dependencies(&id)?;
                self.open.insert(id.clone(), run);
                self.all_runs.push((id.clone(), run));
                if self.cooperative {
                    self.answer_spawn((id, run), true);
                } else {
                    self.pending_spawns.push((id, run));
                }
            }
            Action::SignalMain { id, run, .. } | Action::SignalTree { id, run, .. } => {
                ensure_eq!(
                    self.open.get(&id),
                    Some(&run),
                    "signal for a run that is over"
                );
            }
            // A stop command ends a cooperative program as its signal would.
            Action::Signal { id, run, .. } | Action::StopCommand { id, run, .. } => {
                ensure_eq!(
                    self.open.get(&id),
                    Some(&run),
                    "signal for a run that is over"
                );
                let key = (id, run);
                if self.cooperative {
                    if let Some(pos) = self.leaders.iter().position(|k| *k == key) {
                        self.leaders.remove(pos);
                        self.end_leader(key, SIGTERM, false);
                    }
                }
            }
            Action::KillTree { id, run } => {
                ensure_eq!(
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
                    ensure_eq!(
                        self.deadlines.get(&key),
                        Some(&self.now),
                        "kill of {key:?} off its deadline"
                    );
                    ensure!(
                        self.kill_times.insert(key.clone(), self.now).is_none(),
                        "second kill of {key:?}"
                    );
                }
                self.kills.push(key);
            }
            Action::Reply { token, result } => {
                let n = self.replies.entry(token).or_insert(0);
                *n += 1;
                ensure_eq!(*n, 1, "replies to {token:?}");
                self.answers.insert(token, result);
            }
            Action::Publish(event) => self.on_event(event)?,
            Action::Release { id } => {
                ensure!(
                    !self.sup.snapshot().instances.iter().any(|v| v.id == id),
                    "{id} released while the engine still shows it"
                );
                ensure!(
                    !self.leaders.iter().any(|(i, _)| *i == id),
                    "{id} released while a run of it lives"
                );
            }
            Action::Refresh => {
                ensure!(
                    self.sup.snapshot().instances.iter().any(|v| v.proven),
                    "a refresh with no instance newly proven"
                );
            }
            Action::Exit => {
                self.exits += 1;
                ensure_eq!(self.exits, 1, "Exit count");
                ensure!(self.shutdown_requested, "Exit without shutdown");
            }
        }
        Ok(())
    }

    fn on_event(&mut self, event: Event) -> Result<(), Violation> {
        match event.kind {
            EventKind::StateChanged { from, to } => {
                let Some(id) = event.instance else {
                    return Err(Violation(format!(
                        "state change {from} → {to} names no instance"
                    )));
                };
                let known = self.states.get(&id).copied().unwrap_or(State::Stopped);
                ensure_eq!(known, from, "{id}: event says from {from}, we saw {known}");
                ensure!(from != to, "{id}: state change from {from} to itself");
                self.states.insert(id.clone(), to);
                if to == State::Stopping {
                    let Some(run) = event.run else {
                        return Err(Violation(format!("{id}: stopping names no run")));
                    };
                    let timeout = self.spec_of(&id)?.stop_timeout;
                    self.deadlines
                        .insert((id, run), self.now.saturating_add(timeout));
                }
            }
            EventKind::Backoff { delay_ms, .. } => {
                // Invariant 4 (a u64 cannot be negative).
                let Some(id) = event.instance else {
                    return Err(Violation("backoff names no instance".into()));
                };
                let max = self.spec_of(&id)?.backoff.max;
                ensure!(
                    u128::from(delay_ms) <= max.as_millis(),
                    "{id}: backoff {delay_ms}ms above max {max:?}"
                );
                let due = self.sup.poll_timeout();
                ensure!(
                    due.is_some_and(|t| t <= self.now.saturating_add(max)),
                    "{id}: backoff timer {due:?} past now {:?} + max {max:?}",
                    self.now
                );
            }
            EventKind::Spawned { .. }
            | EventKind::Exited { .. }
            | EventKind::SpawnFailed { .. } => {
                ensure!(
                    event.instance.is_some() && event.run.is_some(),
                    "{:?} without its instance and run",
                    event.kind
                );
            }
            _ => {}
        }
        Ok(())
    }

    fn spec_of(&self, id: &InstanceId) -> Result<&ProgramSpec, Violation> {
        self.last_spec
            .get(&*id.program)
            .ok_or_else(|| Violation(format!("{id}: of a program never configured")))
    }

    /// Invariant 5: at the moment of a Spawn, every instance of every
    /// `started` dependency is running.
    fn check_started_dependencies(&self, id: &InstanceId) -> Result<(), Violation> {
        let spec = self.spec_of(id)?;
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
                ensure_eq!(
                    state,
                    State::Running,
                    "{id} spawned while {dep_id} is {state}"
                );
            }
        }
        Ok(())
    }

    /// The engine's snapshot agrees with its events and with the world.
    fn check_consistency(&mut self) -> Result<(), Violation> {
        let snapshot = self.sup.snapshot();
        let mut present = BTreeMap::new();
        for view in &snapshot.instances {
            let from_events = self.states.get(&view.id).copied().unwrap_or(State::Stopped);
            ensure_eq!(view.state, from_events, "{}: snapshot vs events", view.id);
            let open = self.open.get(&view.id);
            ensure_eq!(
                view.state.is_live(),
                open.is_some(),
                "{}: {} but the world has {open:?}",
                view.id,
                view.state
            );
            if let Some(run) = open {
                ensure_eq!(view.run, Some(*run), "{}: snapshot's run", view.id);
            }
            // A settled engine starts what may start, so whatever waits
            // can name what it waits for, and only what waits names any.
            ensure_eq!(
                view.state == State::Waiting,
                !view.waiting_on.is_empty(),
                "{}: {} waiting on {:?}",
                view.id,
                view.state,
                view.waiting_on
            );
            present.insert(view.id.clone(), ());
        }
        for id in self.open.keys() {
            ensure!(
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
                    ensure!(
                        killed.is_some_and(|t| t <= deadline),
                        "{key:?}: deadline {deadline:?} passed, killed at {killed:?}"
                    );
                } else {
                    ensure_eq!(killed, Some(deadline), "{key:?}: deadline passed, no kill");
                }
            }
        }
        Ok(())
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
        if let Some((id, run)) = ended {
            if self.open.get(&id) == Some(&run) {
                self.open.remove(&id);
            }
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
                self.end_leader(key, SIGKILL, false);
            } else if let Some(pos) = self.trees.iter().position(|k| *k == key) {
                self.trees.remove(pos);
                self.owed.push(Input::TreeGone {
                    id: key.0,
                    run: key.1,
                });
            }
        }
    }

    fn request(&mut self, request: Request) -> Token {
        let token = Token(self.next_token);
        self.next_token += 1;
        self.replies.insert(token, 0);
        self.deliver(Input::Request { token, request });
        token
    }

    fn advance(&mut self, by: Duration) -> Result<(), Violation> {
        let target = self.now.saturating_add(by);
        while let Some(t) = self.sup.poll_timeout().filter(|t| *t <= target) {
            self.now = self.now.max(t);
            self.settle_world()?;
        }
        self.now = target;
        self.settle_world()
    }

    /// Invariant 8, the other half: `handle_timeout` with nothing due does
    /// nothing.
    fn wake(&mut self) -> Result<(), Violation> {
        // Settle first so that whatever is due now has fired.
        self.settle_world()?;
        let before = self.sup.snapshot();
        let timeout = self.sup.poll_timeout();
        self.sup.handle_timeout(self.now);
        let action = self.sup.poll_action();
        ensure!(
            action.is_none(),
            "a wake-up at {:?} with nothing due produced {action:?}",
            self.now
        );
        ensure!(
            self.sup.snapshot() == before,
            "a wake-up with nothing due changed the snapshot"
        );
        ensure_eq!(
            self.sup.poll_timeout(),
            timeout,
            "a wake-up with nothing due moved the next timer"
        );
        Ok(())
    }

    /// Invariant 6: an input about a run that is not the instance's
    /// current one changes nothing and emits nothing.
    fn stale(&mut self, i: usize, r: usize, kind: u8) -> Result<(), Violation> {
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
        runs.push(RunId(self.sup.next_run().0.saturating_add(7)));
        let run = runs[r % runs.len()];
        if self.open.get(&id) == Some(&run) {
            return Ok(());
        }
        let input = match kind % 4 {
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
        let action = self.sup.poll_action();
        ensure!(action.is_none(), "stale {input:?} produced {action:?}");
        ensure!(
            self.sup.snapshot() == before,
            "stale {input:?} changed the snapshot"
        );
        ensure_eq!(
            self.sup.poll_timeout(),
            timeout,
            "stale {input:?} moved the next timer"
        );
        Ok(())
    }
}

fn target(pick: &Pick) -> Target {
    match pick {
        Pick::All => Target::All,
        Pick::Program(p) => Target::Program(program_name(*p)),
        Pick::Typo => Target::Program("p1x".into()),
        Pick::Instance(p, i) => Target::Instance(program_name(*p), *i),
    }
}
