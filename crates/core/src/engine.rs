//! The supervisor: every restart rule, backoff, start limit, stop deadline,
//! dependency condition and reload, as a pure state machine.
//!
//! # Driving it
//!
//! The shell calls [`Supervisor::handle`] for every [`Input`],
//! [`Supervisor::handle_timeout`] when [`Supervisor::poll_timeout`] is due,
//! and after either drains [`Supervisor::poll_action`]. Nothing happens
//! between calls: the engine reads no clock and keeps no threads. An idle
//! engine (nothing starting, stopping, backing off, no reset, min_uptime or cooldown
//! timer) has no timer at all.
//!
//! # Goal and desired
//!
//! Each instance has a `desired` state (`Up`/`Down`): initially `Up` iff
//! the program is `autostart` (the restored value wins), changed by
//! Start/Stop/Restart requests (`DesiredChanged` events, which the shell
//! persists). Its *goal* is `Down` while a shutdown is under way or while
//! the instance is retiring (program removed, or scaled away), else its
//! desired state. Shutdown changes only the goal, never `desired`, so that
//! programs come back as they were after ward restarts.
//!
//! After every input and timer the engine *settles*, until nothing moves:
//! every instance whose goal is `Down` and that is in `waiting`, `backoff`,
//! `exited` or `fatal` is `stopped` at once; every live instance that must
//! stop (goal `Down`, or a restart pending) begins its stop once no
//! instance that depends on it, directly or not, is itself live and due to
//! stop (swept dependents first); every instance whose goal is `Up` and
//! that is `stopped` or `waiting` starts if its conditions are met, else
//! waits (swept dependencies first).
//!
//! # Starting
//!
//! An instance starts when every `depends_on` condition holds: `started` —
//! every instance of the dependency is `running` and not due to stop;
//! `completed` — every instance of it is `exited` and its last end was a
//! success. Dependencies on programs that do not exist (or are being
//! removed) are ignored, like [`crate::deps::find_cycle`] does. Otherwise it
//! goes `waiting`, re-checked whenever anything changes. Starting allocates
//! a RunId and emits `Spawn` (`starting`); `Spawned` makes it `running`.
//!
//! Starting an instance by request or autostart also sets `desired = Up` on
//! every instance of every program it depends on, transitively, and starts
//! them: a `stopped` one is started, a `fatal` one gets a fresh try, and an
//! `exited` one is started again unless the edge is `completed` and it
//! already exited successfully (a finished migration is not re-run). At
//! construction a dependency whose desired state was restored keeps it.
//!
//! # Ends and restarts
//!
//! `Exited{tree_alive: false}` ends a run. `Exited{tree_alive: true}` only
//! ends its leader: the instance goes `stopping`, the stop signal goes to the
//! tree, the stop deadline is armed, and the run ends at `TreeGone`. A
//! `TreeGone` before the leader's exit is ignored (the leader is part of the
//! tree). When a run ends:
//!
//! - goal `Down`: `stopped` (and a retiring instance is forgotten);
//! - the engine had stopped it for a restart (or was stopping it and the user
//!   asked for it to start again): a fresh start;
//! - else the restart decision. `success`: the exit code is one of
//!   `success_exit_codes`. `failed_start`: a spawn failure or an uptime below
//!   `min_uptime` (uptime runs from `Spawned`). `always` restarts,
//!   `on-failure` restarts unless `success`, `never` does not; no restart
//!   means `exited`. A restart after a failed start records it; when the
//!   failed starts within the last `start_limit.interval` reach `burst`, the
//!   instance is `fatal` (with a cooldown timer if one is set, which brings a
//!   fresh try). Otherwise `backoff` for `min(initial × factor^k, max)`
//!   jittered, where `k`, the streak, counts consecutive unsuccessful ends
//!   (not `success`, or a failed start); a successful end leaves it as it
//!   is. The streak resets when a run stays up for `reset_after` (a timer
//!   while running, and a check at exit). The Backoff event's `attempt` is
//!   `k + 1`. A zero delay still passes through `backoff`; its timer is due
//!   at once and fires within the same `handle_timeout`.
//!
//! A *fresh* start clears the failed-start history and the streak.
//! `restarts` counts backoff and cooldown restarts and, once per target
//! instance, Restart requests; reload restarts are not counted.
//!
//! # Stopping
//!
//! A stop emits the stop signal for the run's tree once, arms the deadline
//! (`stop_timeout`), and at the deadline publishes `StopTimeout` and emits
//! `KillTree`. The instance is stopped when the run ends. A stop that begins
//! before `Spawned` arrived holds its signal until then (the shell may not
//! know a pid yet); the deadline runs from the stop regardless.
//!
//! # Requests
//!
//! Every request gets exactly one `Reply`. Start, Stop and Restart reply
//! once every target (that still exists) is *settled*, and Start and
//! Restart once each `running` target has also been up for its
//! `min_uptime` (so a program that dies at once is answered as failed, not
//! as running). *Settled*: not `starting` or
//! `stopping`, not live and due to stop, and not `waiting` on a dependency
//! instance that fails its condition and is *progressing* (starting,
//! stopping, due to stop, or itself waiting on something progressing), or
//! that runs but has not been up for its `min_uptime` yet (a `min_uptime`
//! timer marks the moment). A `running` dependency is not progressing
//! beyond that: a `completed` dependency may run for any length of time,
//! and the caller can see that the target waits; but one that fails at once
//! (a migration that exits 1) is seen to fail before the answer.
//! Start on an instance in `backoff` starts it now (history kept); on
//! `exited` or `fatal` it is a fresh start. Restart stops live targets (in
//! dependency order) and starts them afresh; a target that is not live just
//! starts afresh. Signal goes to every live target whose process exists,
//! replied at once. Reload replies at once with the diff. Shutdown replies,
//! then emits `Exit`, once every instance is down; meanwhile Start, Restart
//! and Reload (dry runs too) are refused with `ShuttingDown`; a second
//! Shutdown kills every tree at once (`KillTree` for every run, no waiting
//! for stop order or deadlines) and is answered when the first is.
//!
//! Every view of a `waiting` instance (in replies and snapshots) lists its
//! *blockers*: each dependency instance failing its condition, with its
//! state and last end, marked `failed` when its last run failed and it is
//! `exited`, `backoff` or `fatal`. A Start answered with a target waiting on
//! a failed blocker has not brought it up: it waits until that dependency
//! is retried (backoff, cooldown) or started again, and meets its condition.
//!
//! # Reload
//!
//! [`Supervisor::diff`] puts each program present in either set in at most
//! one of `added`, `removed`, `restarted` (`launch` or `logs` differ, by
//! value) or `updated` (any other setting differs, the instance count
//! aside); a program in both sets whose count differs is in `rescaled` as
//! well, so a count change alone appears in `rescaled` only. Lists are
//! sorted.
//!
//! Removed programs are stopped and forgotten once stopped; each
//! forgotten instance is announced with `Action::Release`, once, after its
//! last run ended, so the shell lets go of what it keeps for it. Added ones are
//! created with `desired` from `autostart`. Programs whose `launch` or
//! `logs` changed restart their `starting`/`running` instances; others use
//! the new spec from their next start. Policy changes (including
//! `autostart`) apply in place. More instances: new ones take the desired
//! state of the program's first instance (else `autostart`). Fewer: the
//! highest indexes retire. Timers already armed keep their due times. An
//! instance in `fatal` whose program's settings changed (anything but the
//! count) gets a fresh start at once: the change is most likely its fix.
//!
//! The reply lists, for each instance of a program that was added,
//! removed, changed or rescaled, its state before and what the reload does
//! to it ([`ReloadOutcome`](crate::ReloadOutcome)), decided before the
//! specs are applied, so a dry run says the same.
//!
//! # Run ids
//!
//! Every input naming a run that is not the instance's current run, or an
//! instance that does not exist, changes nothing and emits nothing.

mod conditions;
mod lifecycle;
mod requests;
mod settle;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::deps;
use crate::diff;
use crate::instance::Instance;
use crate::model::{
    Action, Desired, DesiredBy, Diff, Event, EventKind, Input, InstanceId, RunId, Snapshot, State,
    Time, Token,
};
use crate::rng::Rng;
use crate::spec::{ProgramSpec, SpecSet};
use crate::timers::{Timer, TimerKind, Timers};

/// What the shell recovered from its state file.
#[derive(Debug, Clone, PartialEq)]
pub struct Restore {
    /// The user's explicit start/stop; overrides `autostart`.
    pub desired: BTreeMap<InstanceId, Desired>,
    /// The first RunId to hand out.
    pub next_run: RunId,
}

impl Default for Restore {
    fn default() -> Restore {
        Restore {
            desired: BTreeMap::new(),
            next_run: RunId(1),
        }
    }
}

/// One program as the engine tracks it: its spec in force and its
/// instances, including retiring ones.
#[derive(Debug, Clone)]
struct Program {
    spec: ProgramSpec,
    /// Gone from the config; kept until its last instance is stopped.
    retired: bool,
    instances: BTreeMap<u32, Instance>,
}

/// A request waiting for its targets to settle.
#[derive(Debug, Clone)]
struct Pending {
    token: Token,
    targets: Vec<InstanceId>,
    /// A Start or Restart: its running targets must also be past their
    /// `min_uptime` before the answer.
    proven: bool,
}

/// The supervision engine. Its rules are in the [`crate::engine`] module
/// documentation.
#[derive(Debug, Clone)]
pub struct Supervisor {
    specs: SpecSet,
    programs: BTreeMap<String, Program>,
    /// Every tracked program name (retired ones too), dependencies first.
    order: Vec<String>,
    /// Program → every program that depends on it, directly or not.
    dependents: BTreeMap<String, BTreeSet<String>>,
    /// Program → every program it depends on, directly or not.
    dependencies: BTreeMap<String, BTreeSet<String>>,
    /// Program → its place in `order`.
    rank: BTreeMap<String, usize>,
    /// Programs touched since the last settle pass: only they and the
    /// programs related to them by dependencies can have something to do,
    /// so settling costs what changed, not the size of the config.
    dirty: BTreeSet<String>,
    /// Everything may have changed (a start, a request, a reload).
    all_dirty: bool,
    timers: Timers,
    actions: VecDeque<Action>,
    next_run: u64,
    rng: Rng,
    pending: Vec<Pending>,
    /// Some while shutting down: the Shutdown requests still to answer.
    shutdown: Option<Vec<Token>>,
    exit_sent: bool,
    now: Time,
}

impl Supervisor {
    /// Builds the engine and queues the start of every autostart (or
    /// restored-Up) instance, in dependency order.
    pub fn new(specs: SpecSet, restore: Restore, seed: u64, now: Time) -> Supervisor {
        let mut programs = BTreeMap::new();
        for (name, spec) in &specs.programs {
            let default = if spec.autostart {
                Desired::Up
            } else {
                Desired::Down
            };
            let instances = (0..spec.instances)
                .map(|index| {
                    let id = InstanceId::new(name, index);
                    let (desired, by) = match restore.desired.get(&id) {
                        Some(desired) => (*desired, DesiredBy::Remembered),
                        None => (default, DesiredBy::Config),
                    };
                    (index, Instance::new(id, desired, by, now))
                })
                .collect();
            programs.insert(
                name.clone(),
                Program {
                    spec: spec.clone(),
                    retired: false,
                    instances,
                },
            );
        }
        let mut sup = Supervisor {
            specs,
            programs,
            order: Vec::new(),
            dependents: BTreeMap::new(),
            dependencies: BTreeMap::new(),
            rank: BTreeMap::new(),
            dirty: BTreeSet::new(),
            all_dirty: true,
            timers: Timers::default(),
            actions: VecDeque::new(),
            next_run: restore.next_run.0,
            rng: Rng::new(seed),
            pending: Vec::new(),
            shutdown: None,
            exit_sent: false,
            now,
        };
        sup.rebuild_graph();
        sup.propagate_initial_desired(&restore);
        sup.settle();
        sup
    }

    /// Takes in one input that happened at `now`.
    pub fn handle(&mut self, now: Time, input: Input) {
        self.now = self.now.max(now);
        match input {
            Input::Request { token, request } => {
                self.all_dirty = true;
                self.on_request(token, request)
            }
            Input::Spawned { id, run, pid } => self.on_spawned(&id, run, pid),
            Input::SpawnFailed { id, run, error } => self.on_spawn_failed(&id, run, error),
            Input::Exited {
                id,
                run,
                status,
                tree_alive,
            } => self.on_exited(&id, run, status, tree_alive),
            Input::TreeGone { id, run } => self.on_tree_gone(&id, run),
        }
        self.settle();
    }

    /// Fires every timer due at or before `now`, including any that firing
    /// them arms for `now` itself.
    pub fn handle_timeout(&mut self, now: Time) {
        self.now = self.now.max(now);
        loop {
            let mut fired = false;
            while let Some((key, timer)) = self.timers.pop_due(self.now) {
                self.fire(key, timer);
                fired = true;
            }
            self.settle();
            if !fired {
                break;
            }
        }
    }

    /// The earliest pending timer; `None` if there is none.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.timers.next()
    }

    /// The next thing for the shell to do, oldest first.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Every instance, ordered by program name then index.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            instances: self
                .programs
                .values()
                .flat_map(|p| p.instances.values().map(|i| self.view(&p.spec, i)))
                .collect(),
        }
    }

    /// What replacing the specs with `new` would change.
    pub fn diff(&self, new: &SpecSet) -> Diff {
        diff::diff(&self.specs, new)
    }

    /// The next RunId that would be handed out.
    pub fn next_run(&self) -> RunId {
        RunId(self.next_run)
    }

    /// The specs in force.
    pub fn specs(&self) -> &SpecSet {
        &self.specs
    }

    /// True once a Shutdown request is being carried out.
    pub fn shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    // ----- bookkeeping shared by the submodules -----

    fn instance(&self, id: &InstanceId) -> Option<&Instance> {
        self.programs
            .get(&*id.program)
            .and_then(|p| p.instances.get(&id.index))
    }

    /// Every change to an instance goes through here (or `transition`,
    /// `spawn`), which marks its program for the next settle pass.
    fn instance_mut(&mut self, id: &InstanceId) -> Option<&mut Instance> {
        self.touch(&id.program);
        self.programs
            .get_mut(&*id.program)
            .and_then(|p| p.instances.get_mut(&id.index))
    }

    fn spec_of(&self, id: &InstanceId) -> Option<&ProgramSpec> {
        self.programs.get(&*id.program).map(|p| &p.spec)
    }

    /// Up unless shutting down, retiring, or desired Down.
    fn goal(&self, inst: &Instance) -> Desired {
        if self.shutdown.is_some() || inst.retiring {
            Desired::Down
        } else {
            inst.desired
        }
    }

    /// Live, and either its goal is Down or a restart is pending.
    fn due_to_stop(&self, inst: &Instance) -> bool {
        inst.state.is_live() && (self.goal(inst) == Desired::Down || inst.restart_pending)
    }

    fn publish(&mut self, instance: Option<InstanceId>, run: Option<RunId>, kind: EventKind) {
        self.actions.push_back(Action::Publish(Event {
            instance,
            run,
            kind,
        }));
    }

    /// Moves an instance to `to`: cancels the timers of the state it leaves
    /// and publishes the change. No-op if it is already there.
    fn transition(&mut self, id: &InstanceId, to: State) {
        let now = self.now;
        self.touch(&id.program);
        let Some(inst) = self
            .programs
            .get_mut(&*id.program)
            .and_then(|p| p.instances.get_mut(&id.index))
        else {
            return;
        };
        if inst.state == to {
            return;
        }
        for key in [
            inst.timer.take(),
            inst.reset_timer.take(),
            inst.uptime_timer.take(),
        ]
        .into_iter()
        .flatten()
        {
            self.timers.cancel(key);
        }
        let from = inst.state;
        inst.state = to;
        inst.since = now;
        let run = inst.event_run();
        self.publish(Some(id.clone()), run, EventKind::StateChanged { from, to });
    }

    /// Arms the instance's state timer (replacing any).
    fn arm_state_timer(&mut self, id: &InstanceId, at: Time, kind: TimerKind) {
        let key = self.timers.arm(
            at,
            Timer {
                id: id.clone(),
                kind,
            },
        );
        match self.instance_mut(id) {
            Some(inst) => {
                if let Some(old) = inst.timer.replace(key) {
                    self.timers.cancel(old);
                }
            }
            None => self.timers.cancel(key),
        }
    }

    fn set_desired(&mut self, id: &InstanceId, desired: Desired, by: DesiredBy) {
        let Some(inst) = self.instance_mut(id) else {
            return;
        };
        if inst.desired == desired {
            // A person asking again makes the choice theirs; being pulled
            // up by a dependent does not take it from them.
            if by == DesiredBy::User {
                inst.desired_by = by;
            }
            return;
        }
        inst.desired = desired;
        inst.desired_by = by;
        self.publish(
            Some(id.clone()),
            None,
            EventKind::DesiredChanged { desired },
        );
    }

    /// Every instance id, programs in dependency order, then by index.
    fn ids_in_order(&self) -> Vec<InstanceId> {
        self.order
            .iter()
            .filter_map(|name| self.programs.get(name))
            .flat_map(|p| p.instances.values().map(|i| i.id.clone()))
            .collect()
    }

    fn touch(&mut self, program: &str) {
        if !self.all_dirty && !self.dirty.contains(program) {
            self.dirty.insert(program.to_string());
        }
    }

    /// The instances the next settle pass looks at, in dependency order,
    /// and clears the marks: the touched programs with everything that
    /// depends on them and everything they depend on (a start waits on its
    /// dependencies, a stop on its dependents).
    fn take_dirty(&mut self) -> Vec<InstanceId> {
        if std::mem::take(&mut self.all_dirty) {
            self.dirty.clear();
            return self.ids_in_order();
        }
        let dirty = std::mem::take(&mut self.dirty);
        let mut scope = BTreeSet::new();
        for name in &dirty {
            scope.insert(name.as_str());
            for related in [self.dependents.get(name), self.dependencies.get(name)]
                .into_iter()
                .flatten()
            {
                scope.extend(related.iter().map(String::as_str));
            }
        }
        let mut ranked: Vec<(usize, &str)> = scope
            .into_iter()
            .map(|name| (self.rank.get(name).copied().unwrap_or(usize::MAX), name))
            .collect();
        ranked.sort_unstable();
        ranked
            .into_iter()
            .filter_map(|(_, name)| self.programs.get(name))
            .flat_map(|p| p.instances.values().map(|i| i.id.clone()))
            .collect()
    }

    fn rebuild_graph(&mut self) {
        let graph: BTreeMap<String, BTreeSet<String>> = self
            .programs
            .iter()
            .map(|(name, p)| (name.clone(), p.spec.depends_on.keys().cloned().collect()))
            .collect();
        self.order = deps::dependency_order(&graph);
        self.rank = self
            .order
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), i))
            .collect();
        self.dependents = graph
            .keys()
            .map(|name| {
                let dependents = deps::transitive_dependents(&graph, name)
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                (name.clone(), dependents)
            })
            .collect();
        let mut dependencies: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (name, dependents) in &self.dependents {
            for dependent in dependents {
                dependencies
                    .entry(dependent.clone())
                    .or_default()
                    .insert(name.clone());
            }
        }
        self.dependencies = dependencies;
        self.all_dirty = true;
    }

    /// At start, what an Up instance depends on comes up with it, unless
    /// the user explicitly set that dependency's desired state before.
    fn propagate_initial_desired(&mut self, restore: &Restore) {
        let up_programs: Vec<String> = self
            .programs
            .iter()
            .filter(|(_, p)| p.instances.values().any(|i| i.desired == Desired::Up))
            .map(|(name, _)| name.clone())
            .collect();
        for name in up_programs {
            for dep in self.transitive_deps_of(&name) {
                if let Some(p) = self.programs.get_mut(&dep) {
                    for inst in p.instances.values_mut() {
                        if !restore.desired.contains_key(&inst.id) && inst.desired != Desired::Up {
                            inst.desired = Desired::Up;
                            inst.desired_by = DesiredBy::Dependency;
                        }
                    }
                }
            }
        }
    }

    fn transitive_deps_of(&self, name: &str) -> Vec<String> {
        self.dependencies
            .get(name)
            .map(|deps| deps.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_engine_is_idle() {
        let mut sup = Supervisor::new(SpecSet::default(), Restore::default(), 1, Time::ZERO);
        assert_eq!(sup.poll_timeout(), None);
        assert_eq!(sup.poll_action(), None);
        assert_eq!(sup.next_run(), RunId(1));
        assert!(sup.snapshot().instances.is_empty());
        assert!(!sup.shutting_down());
    }
}
