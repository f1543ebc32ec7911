//! Requests: what each one changes, and when it is answered.

use std::collections::BTreeSet;

use crate::diff;
use crate::instance::Instance;
use crate::model::{
    Action, Desired, DesiredBy, EventKind, InstanceId, InstanceView, ReloadOutcome,
    ReloadedInstance, Reply, Request, RequestError, RunId, State, Target, Token,
};
use crate::spec::{Condition, Signal, SpecSet};
use crate::suggest;

use super::{Pending, Program, Supervisor};

impl Supervisor {
    pub(super) fn on_request(&mut self, token: Token, request: Request) {
        let starts_things = matches!(
            request,
            Request::Start(_) | Request::Restart(_) | Request::Reload { .. }
        );
        if starts_things && self.shutting_down() {
            self.reply(token, Err(RequestError::ShuttingDown));
            return;
        }
        match request {
            Request::Start(target) => self.targeted(token, &target, Self::start_target, true),
            Request::Stop(target) => self.targeted(token, &target, Self::stop_target, false),
            Request::Restart(target) => self.targeted(token, &target, Self::restart_target, true),
            Request::Signal(target, signal) => self.signal(token, &target, signal, false),
            Request::SignalTree(target, signal) => self.signal(token, &target, signal, true),
            Request::Reload { specs, dry_run } => self.reload(token, specs, dry_run),
            Request::Shutdown => match &mut self.shutdown {
                Some(tokens) => {
                    tokens.push(token);
                    self.kill_now();
                }
                None => self.shutdown = Some(vec![token]),
            },
        }
    }

    /// Applies `each` to every target, then waits for them to settle (and,
    /// if `proven`, for running ones to pass their `min_uptime`).
    fn targeted(
        &mut self,
        token: Token,
        target: &Target,
        each: fn(&mut Self, &InstanceId),
        proven: bool,
    ) {
        match self.resolve(target) {
            Ok(targets) => {
                for id in &targets {
                    each(self, id);
                }
                self.pending.push(Pending {
                    token,
                    targets,
                    proven,
                });
            }
            Err(error) => self.reply(token, Err(error)),
        }
    }

    pub(super) fn reply(&mut self, token: Token, result: Result<Reply, RequestError>) {
        self.actions.push_back(Action::Reply { token, result });
    }

    pub(super) fn reply_done(&mut self, token: Token, instances: Vec<InstanceView>) {
        self.reply(token, Ok(Reply::Done { instances }));
    }

    /// The current (not retiring) instances a target names.
    fn resolve(&self, target: &Target) -> Result<Vec<InstanceId>, RequestError> {
        let current = |p: &Program| -> Vec<InstanceId> {
            p.instances
                .values()
                .filter(|i| !i.retiring)
                .map(|i| i.id.clone())
                .collect()
        };
        match target {
            Target::All => Ok(self
                .programs
                .values()
                .filter(|p| !p.retired)
                .flat_map(current)
                .collect()),
            Target::Program(name) => self.program(name).map(current),
            Target::Instance(name, index) => {
                let program = self.program(name)?;
                if *index < program.spec.instances {
                    Ok(vec![InstanceId::new(name, *index)])
                } else {
                    Err(RequestError::NoSuchInstance {
                        program: name.clone(),
                        index: *index,
                        instances: program.spec.instances,
                    })
                }
            }
        }
    }

    fn program(&self, name: &str) -> Result<&Program, RequestError> {
        match self.programs.get(name).filter(|p| !p.retired) {
            Some(p) => Ok(p),
            None => Err(RequestError::NoSuchProgram {
                name: name.to_string(),
                suggestion: suggest::closest(name, self.specs.programs.keys().map(String::as_str))
                    .map(str::to_string),
            }),
        }
    }

    fn start_target(&mut self, id: &InstanceId) {
        self.set_desired(id, Desired::Up, DesiredBy::User);
        self.bring_up_dependencies(&id.program);
        match self.instance(id).map(|i| i.state) {
            Some(State::Exited | State::Fatal) => self.start_now(id, true),
            Some(State::Backoff) => self.start_now(id, false),
            // Stopped ones start as the engine settles; a stopping one
            // starts afresh when its run ends (its goal is Up now); the rest
            // are on their way up already.
            _ => {}
        }
    }

    fn stop_target(&mut self, id: &InstanceId) {
        self.set_desired(id, Desired::Down, DesiredBy::User);
        if let Some(inst) = self.instance_mut(id) {
            inst.restart_pending = false;
        }
    }

    fn restart_target(&mut self, id: &InstanceId) {
        self.set_desired(id, Desired::Up, DesiredBy::User);
        self.bring_up_dependencies(&id.program);
        let Some(inst) = self.instance_mut(id) else {
            return;
        };
        inst.restarts = inst.restarts.saturating_add(1);
        match inst.state {
            State::Starting | State::Running | State::Stopping => inst.restart_pending = true,
            State::Exited | State::Fatal | State::Backoff => self.start_now(id, true),
            State::Stopped | State::Waiting => {}
        }
    }

    /// Sets desired Up on everything `program` depends on, transitively,
    /// and starts what would otherwise never come up (see the `engine` module docs).
    fn bring_up_dependencies(&mut self, program: &str) {
        let mut seen = BTreeSet::new();
        let mut todo = vec![program.to_string()];
        while let Some(name) = todo.pop() {
            let Some(spec) = self.programs.get(&name).map(|p| p.spec.clone()) else {
                continue;
            };
            for (dep, cond) in &spec.depends_on {
                if !seen.insert(dep.clone()) {
                    continue;
                }
                let Some(dep_program) = self.programs.get(dep).filter(|p| !p.retired) else {
                    continue;
                };
                let instances: Vec<(InstanceId, State, bool)> = dep_program
                    .instances
                    .values()
                    .filter(|i| !i.retiring)
                    .map(|i| {
                        (
                            i.id.clone(),
                            i.state,
                            i.last_end_succeeded(&dep_program.spec),
                        )
                    })
                    .collect();
                for (id, state, succeeded) in instances {
                    self.set_desired(&id, Desired::Up, DesiredBy::Dependency);
                    let start_again = match state {
                        State::Fatal => true,
                        State::Exited => *cond == Condition::Started || !succeeded,
                        _ => false,
                    };
                    if start_again {
                        self.start_now(&id, true);
                    }
                }
                todo.push(dep.clone());
            }
        }
    }

    /// A second Shutdown: whoever asked will not wait for graceful stops.
    /// Every run's tree is killed at once; the stops complete as the trees
    /// vanish, in whatever order.
    fn kill_now(&mut self) {
        let runs: Vec<(InstanceId, RunId)> = self
            .programs
            .values()
            .flat_map(|p| p.instances.values())
            .filter_map(|inst| inst.run.as_ref().map(|run| (inst.id.clone(), run.id)))
            .collect();
        for (id, run) in runs {
            self.publish(
                Some(id.clone()),
                Some(run),
                EventKind::Notice {
                    message: "killed at once: asked to stop a second time".into(),
                },
            );
            self.actions.push_back(Action::KillTree { id, run });
        }
    }

    /// To each target's main process, or (`tree`) to its whole tree.
    fn signal(&mut self, token: Token, target: &Target, signal: Signal, tree: bool) {
        let targets = match self.resolve(target) {
            Ok(targets) => targets,
            Err(error) => return self.reply(token, Err(error)),
        };
        let mut views = Vec::with_capacity(targets.len());
        for id in &targets {
            let (Some(inst), Some(spec)) = (self.instance(id), self.spec_of(id)) else {
                continue;
            };
            views.push(self.view(spec, inst));
            if tree {
                // Every process the run still has, leader gone or not.
                if let Some(run) = inst.run.as_ref().filter(|r| r.started_at.is_some()) {
                    self.actions.push_back(Action::SignalTree {
                        id: id.clone(),
                        run: run.id,
                        signal,
                    });
                }
                continue;
            }
            // The main process only, and only while it lives: after the
            // leader's exit its pid may name another process.
            let main_alive =
                |r: &&crate::instance::Run| r.started_at.is_some() && r.leader.is_none();
            if let Some(run) = inst.run.as_ref().filter(main_alive) {
                let run = run.id;
                self.actions.push_back(Action::SignalMain {
                    id: id.clone(),
                    run,
                    signal,
                });
            }
        }
        self.reply_done(token, views);
    }

    fn reload(&mut self, token: Token, specs: SpecSet, dry_run: bool) {
        let diff = self.diff(&specs);
        let instances = self.reload_outcomes(&specs, &diff);
        if !dry_run {
            self.apply(specs);
            // A program given up on whose settings were just changed (its
            // fix, most likely) gets a fresh start now rather than at the
            // end of a cool-down that may never come.
            // (Unless applying started it already: a dependency of a
            // program the reload brought up.)
            for revived in &instances {
                let still_fatal = self
                    .instance(&revived.id)
                    .is_some_and(|i| i.state == State::Fatal);
                if revived.outcome == ReloadOutcome::Revived && still_fatal {
                    self.start_now(&revived.id, true);
                }
            }
            self.publish(None, None, EventKind::Reloaded { diff: diff.clone() });
        }
        self.reply(
            token,
            Ok(Reply::Reloaded {
                diff,
                dry_run,
                instances,
            }),
        );
    }

    /// What applying `new` does to each instance of a program it adds,
    /// removes, changes or rescales, decided before it is applied (so a
    /// dry run says the same).
    fn reload_outcomes(&self, new: &SpecSet, diff: &crate::model::Diff) -> Vec<ReloadedInstance> {
        let mut out = Vec::new();
        for (name, program) in self.programs.iter().filter(|(_, p)| !p.retired) {
            let spec = new.programs.get(name);
            let relaunch = diff.restarted.contains(name);
            let changed = relaunch || diff.updated.contains(name);
            for inst in program.instances.values().filter(|i| !i.retiring) {
                let outcome = match spec {
                    Some(spec) if inst.id.index < spec.instances => {
                        if !changed {
                            continue;
                        }
                        match inst.state {
                            _ if inst.desired == Desired::Down => ReloadOutcome::StaysStopped,
                            State::Fatal => ReloadOutcome::Revived,
                            State::Starting | State::Running | State::Stopping if relaunch => {
                                ReloadOutcome::Restarts
                            }
                            State::Starting | State::Running | State::Stopping => {
                                ReloadOutcome::KeepsRunning
                            }
                            _ => ReloadOutcome::NextStart,
                        }
                    }
                    _ => ReloadOutcome::Stops,
                };
                out.push(ReloadedInstance {
                    id: inst.id.clone(),
                    state: inst.state,
                    desired_by: inst.desired_by,
                    outcome,
                });
            }
        }
        for (name, spec) in &new.programs {
            let program = self.programs.get(name).filter(|p| !p.retired);
            // New instances take the desired state of the program's first
            // (as `apply` does), else autostart.
            let (desired, desired_by) = program
                .and_then(|p| p.instances.values().find(|i| !i.retiring))
                .map(|i| (i.desired, i.desired_by))
                .unwrap_or((
                    if spec.autostart {
                        Desired::Up
                    } else {
                        Desired::Down
                    },
                    DesiredBy::Config,
                ));
            for index in 0..spec.instances {
                let exists = program
                    .and_then(|p| p.instances.get(&index))
                    .is_some_and(|i| !i.retiring);
                if exists {
                    continue;
                }
                out.push(ReloadedInstance {
                    id: InstanceId::new(name, index),
                    state: State::Stopped,
                    desired_by,
                    outcome: match desired {
                        Desired::Up => ReloadOutcome::Starts,
                        Desired::Down => ReloadOutcome::StaysStopped,
                    },
                });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Replaces the specs in force; settling then does the stopping and
    /// starting.
    fn apply(&mut self, new: SpecSet) {
        let now = self.now;
        for (name, program) in &mut self.programs {
            if !new.programs.contains_key(name) && !program.retired {
                program.retired = true;
                for inst in program.instances.values_mut() {
                    inst.retiring = true;
                    inst.restart_pending = false;
                }
            }
        }
        let mut brought_up = Vec::new();
        for (name, spec) in &new.programs {
            let program = self
                .programs
                .entry(name.clone())
                .or_insert_with(|| Program {
                    spec: spec.clone(),
                    retired: false,
                    instances: Default::default(),
                });
            let was_retired = program.retired;
            let restart = diff::needs_restart(&program.spec, spec);
            let default = if spec.autostart {
                Desired::Up
            } else {
                Desired::Down
            };
            // A new instance of a program the user has started comes up
            // too; a program new to the engine follows autostart.
            let (template, template_by) = if was_retired {
                (default, DesiredBy::Config)
            } else {
                program
                    .instances
                    .values()
                    .find(|i| !i.retiring)
                    .map(|i| (i.desired, i.desired_by))
                    .unwrap_or((default, DesiredBy::Config))
            };
            program.spec = spec.clone();
            program.retired = false;
            let mut joined = false;
            for (index, inst) in program.instances.iter_mut() {
                let keep = *index < spec.instances;
                if keep && inst.retiring {
                    // Back before it was gone: it belongs to the program
                    // again and its running stop turns into a restart.
                    inst.retiring = false;
                    inst.desired = template;
                    inst.desired_by = template_by;
                    joined = true;
                } else if !keep {
                    inst.retiring = true;
                    inst.restart_pending = false;
                }
                if keep && restart && matches!(inst.state, State::Starting | State::Running) {
                    inst.restart_pending = true;
                }
            }
            for index in 0..spec.instances {
                program.instances.entry(index).or_insert_with(|| {
                    joined = true;
                    Instance::new(InstanceId::new(name, index), template, template_by, now)
                });
            }
            if joined && template == Desired::Up {
                brought_up.push(name.clone());
            }
        }
        self.specs = new;
        self.rebuild_graph();
        for name in brought_up {
            self.bring_up_dependencies(&name);
        }
    }
}
