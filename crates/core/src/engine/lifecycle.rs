//! One run's life: spawn, readiness, stop, end, and what comes after.

use std::time::Duration;

use crate::backoff;
use crate::instance::{LeaderExit, Run};
use crate::limit;
use crate::model::{
    Action, Desired, EventKind, ExitStatus, InstanceId, RunEnd, RunId, State, Time,
};
use crate::spec::{RestartPolicy, StopMode};
use crate::timers::{Timer, TimerKey, TimerKind};

use super::Supervisor;

/// How a run ended, for the restart decision.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    success: bool,
    failed_start: bool,
}

fn after(now: Time, delay: Duration) -> Time {
    now.checked_add(delay).unwrap_or(Duration::MAX)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Supervisor {
    /// Starts `id` if its conditions hold, else makes it wait. A fresh
    /// start forgets past failures.
    pub(super) fn start_now(&mut self, id: &InstanceId, fresh: bool) {
        let Some(inst) = self.instance_mut(id) else {
            return;
        };
        if fresh {
            inst.failed_starts.clear();
            inst.streak = 0;
        }
        inst.restart_pending = false;
        if self.conditions_met(id) {
            self.spawn(id);
        } else {
            self.transition(id, State::Waiting);
        }
    }

    /// A new run: allocate its id, go `starting`, ask the shell to spawn.
    pub(super) fn spawn(&mut self, id: &InstanceId) {
        let run = RunId(self.next_run);
        self.touch(&id.program);
        let Some(program) = self.programs.get_mut(&*id.program) else {
            return;
        };
        let launch = program.spec.launch.clone();
        let logs = program.spec.logs.clone();
        let Some(inst) = program.instances.get_mut(&id.index) else {
            return;
        };
        self.next_run = self.next_run.saturating_add(1);
        inst.run = Some(Run::new(run));
        inst.last_run = Some(run);
        inst.restart_pending = false;
        inst.daemonized = false;
        self.transition(id, State::Starting);
        self.actions.push_back(Action::Spawn {
            id: id.clone(),
            run,
            launch,
            logs,
        });
    }

    /// The engine stops the live run of `id`: signal (once the process
    /// exists), deadline.
    pub(super) fn begin_stop(&mut self, id: &InstanceId) {
        let Some(spec) = self.spec_of(id) else {
            return;
        };
        let (timeout, signal) = (spec.stop_timeout, spec.stop_signal);
        let main_only = spec.stop_mode == StopMode::Main;
        let Some(run) = self.instance_mut(id).and_then(|i| i.run.as_mut()) else {
            return;
        };
        run.stop_requested = true;
        let run_id = run.id;
        let signal_now = run.spawned() && !run.signal_sent;
        if signal_now {
            run.signal_sent = true;
        }
        self.transition(id, State::Stopping);
        self.arm_state_timer(
            id,
            after(self.now, timeout),
            TimerKind::StopDeadline(run_id),
        );
        if signal_now {
            let stop = self.stop_action(id, run_id, signal, main_only);
            self.actions.push_back(stop);
        }
    }

    /// How a stop reaches a live run: its `stop_command` when the spec has
    /// one and the main process is alive to be named to it, else its stop
    /// signal (a tree whose leader is gone gets the signal).
    fn stop_action(
        &self,
        id: &InstanceId,
        run: RunId,
        signal: crate::Signal,
        main_only: bool,
    ) -> Action {
        let main_pid = self
            .instance(id)
            .and_then(|i| i.run.as_ref())
            .filter(|r| r.id == run)
            .and_then(|r| r.pid);
        if let (Some(spec), Some(main_pid)) = (self.spec_of(id), main_pid) {
            if let Some(command) = &spec.stop_command {
                return Action::StopCommand {
                    id: id.clone(),
                    run,
                    command: command.clone(),
                    main_pid,
                    within: spec.stop_timeout,
                };
            }
        }
        Action::Signal {
            id: id.clone(),
            run,
            signal,
            main_only,
        }
    }

    /// The current run of `id`, if `run` names it.
    fn current_run(&mut self, id: &InstanceId, run: RunId) -> Option<&mut Run> {
        self.instance_mut(id)
            .and_then(|i| i.run.as_mut())
            .filter(|r| r.id == run)
    }

    pub(super) fn on_spawned(&mut self, id: &InstanceId, run: RunId, pid: u32) {
        let now = self.now;
        let Some(current) = self.current_run(id, run) else {
            return;
        };
        if current.spawned() {
            return;
        }
        current.pid = Some(pid);
        current.started_at = Some(now);
        let send_held_signal = current.stop_requested && !current.signal_sent;
        if send_held_signal {
            current.signal_sent = true;
        }
        self.publish(Some(id.clone()), Some(run), EventKind::Spawned { pid });
        let Some(spec) = self.spec_of(id) else {
            return;
        };
        let (reset_after, min_uptime, signal) =
            (spec.backoff.reset_after, spec.min_uptime, spec.stop_signal);
        let main_only = spec.stop_mode == StopMode::Main;
        let state = self.instance(id).map(|i| i.state);
        if state == Some(State::Starting) {
            self.transition(id, State::Running);
            let key = self.timers.arm(
                after(now, reset_after),
                Timer {
                    id: id.clone(),
                    kind: TimerKind::Reset(run),
                },
            );
            let uptime_key = (!min_uptime.is_zero()).then(|| {
                self.timers.arm(
                    after(now, min_uptime),
                    Timer {
                        id: id.clone(),
                        kind: TimerKind::MinUptime(run),
                    },
                )
            });
            if let Some(inst) = self.instance_mut(id) {
                inst.reset_timer = Some(key);
                inst.uptime_timer = uptime_key;
            }
        }
        if send_held_signal {
            let stop = self.stop_action(id, run, signal, main_only);
            self.actions.push_back(stop);
        }
    }

    pub(super) fn on_spawn_failed(&mut self, id: &InstanceId, run: RunId, error: String) {
        let Some(current) = self.current_run(id, run) else {
            return;
        };
        if current.spawned() {
            return;
        }
        if let Some(inst) = self.instance_mut(id) {
            inst.last_end = Some(RunEnd::SpawnFailed {
                error: error.clone(),
            });
        }
        self.publish(
            Some(id.clone()),
            Some(run),
            EventKind::SpawnFailed { error },
        );
        self.run_over(
            id,
            Outcome {
                success: false,
                failed_start: true,
            },
        );
    }

    pub(super) fn on_exited(
        &mut self,
        id: &InstanceId,
        run: RunId,
        status: ExitStatus,
        tree_alive: bool,
    ) {
        let now = self.now;
        let Some(spec) = self.spec_of(id) else {
            return;
        };
        let (min_uptime, reset_after) = (spec.min_uptime, spec.backoff.reset_after);
        let success = spec
            .success_exit_codes
            .iter()
            .any(|c| matches!(status, ExitStatus::Code { code } if code == *c));
        let signal = spec.stop_signal;
        let Some(current) = self.current_run(id, run) else {
            return;
        };
        if current.leader.is_some() {
            return;
        }
        let uptime = current
            .started_at
            .map(|t| now.saturating_sub(t))
            .unwrap_or_default();
        let failed_start = !current.stop_requested && uptime < min_uptime;
        let stayed_up = current.started_at.is_some() && uptime >= reset_after;
        current.pid = None;
        current.leader = Some(LeaderExit {
            status,
            failed_start,
        });
        let send_signal = tree_alive && !current.signal_sent;
        if send_signal {
            current.signal_sent = true;
        }
        if let Some(inst) = self.instance_mut(id) {
            inst.last_end = Some(RunEnd::Exited { status });
            if stayed_up {
                inst.streak = 0;
            }
        }
        self.publish(
            Some(id.clone()),
            Some(run),
            EventKind::Exited {
                status,
                uptime_ms: millis(uptime),
                failed_start,
            },
        );
        if !tree_alive {
            self.run_over(
                id,
                Outcome {
                    success,
                    failed_start,
                },
            );
            return;
        }
        let state = self.instance(id).map(|i| i.state);
        if matches!(state, Some(State::Starting | State::Running)) {
            if success {
                // A clean exit that leaves processes behind is a program
                // putting itself in the background: say so, it is the
                // usual reason for a restart loop of a server that works.
                if let Some(inst) = self.instance_mut(id) {
                    inst.daemonized = true;
                }
                self.publish(Some(id.clone()), Some(run), EventKind::Daemonized);
            }
            // The leader went on its own and left processes behind: clean
            // the tree up like a stop, then decide at TreeGone.
            self.transition(id, State::Stopping);
            let timeout = self.spec_of(id).map(|s| s.stop_timeout).unwrap_or_default();
            self.arm_state_timer(id, after(now, timeout), TimerKind::StopDeadline(run));
        }
        if send_signal {
            // The main process is gone: what is left gets the signal,
            // whatever the stop mode.
            self.actions.push_back(Action::Signal {
                id: id.clone(),
                run,
                signal,
                main_only: false,
            });
        }
    }

    pub(super) fn on_tree_gone(&mut self, id: &InstanceId, run: RunId) {
        let Some(spec) = self.spec_of(id) else {
            return;
        };
        let codes = spec.success_exit_codes.clone();
        let Some(current) = self.current_run(id, run) else {
            return;
        };
        let Some(leader) = current.leader else {
            return;
        };
        let success = matches!(leader.status, ExitStatus::Code { code } if codes.contains(&code));
        self.run_over(
            id,
            Outcome {
                success,
                failed_start: leader.failed_start,
            },
        );
    }

    /// The current run of `id` is over (nothing of its tree is left).
    fn run_over(&mut self, id: &InstanceId, outcome: Outcome) {
        let Some(inst) = self.instance_mut(id) else {
            return;
        };
        let Some(run) = inst.run.take() else {
            return;
        };
        let restart_pending = inst.restart_pending;
        let goal = self.instance(id).map_or(Desired::Down, |i| self.goal(i));
        if goal == Desired::Down {
            self.transition(id, State::Stopped);
        } else if restart_pending || run.stop_requested {
            self.start_now(id, true);
        } else {
            self.restart_decision(id, outcome);
        }
    }

    fn restart_decision(&mut self, id: &InstanceId, outcome: Outcome) {
        let now = self.now;
        let Some(spec) = self.spec_of(id) else {
            return;
        };
        let (policy, limit, backoff_spec) = (spec.restart, spec.start_limit, spec.backoff);
        let restart = match policy {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !outcome.success,
            RestartPolicy::Never => false,
        };
        if !restart {
            self.transition(id, State::Exited);
            return;
        }
        let Some(inst) = self.instance_mut(id) else {
            return;
        };
        if outcome.failed_start {
            let failed = inst.failed_starts.record(now, limit.interval);
            if limit::reached(&limit, failed) {
                self.transition(id, State::Fatal);
                let run = self.instance(id).and_then(|i| i.event_run());
                self.publish(
                    Some(id.clone()),
                    run,
                    EventKind::Fatal {
                        failed_starts: failed,
                        cooldown_ms: limit.cooldown.map(millis),
                    },
                );
                if let Some(cooldown) = limit.cooldown {
                    self.arm_state_timer(id, after(now, cooldown), TimerKind::Cooldown);
                }
                return;
            }
        }
        let Some(inst) = self.instance_mut(id) else {
            return;
        };
        let k = inst.streak;
        if !outcome.success || outcome.failed_start {
            inst.streak = inst.streak.saturating_add(1);
        }
        let delay = backoff::delay(&backoff_spec, k, &mut self.rng);
        self.transition(id, State::Backoff);
        let run = self.instance(id).and_then(|i| i.event_run());
        self.publish(
            Some(id.clone()),
            run,
            EventKind::Backoff {
                delay_ms: millis(delay),
                attempt: k.saturating_add(1),
            },
        );
        self.arm_state_timer(id, after(now, delay), TimerKind::Backoff);
    }

    /// A timer is due. Timers are cancelled when their state is left, so
    /// the state checks below only guard against a bookkeeping slip.
    pub(super) fn fire(&mut self, key: TimerKey, timer: Timer) {
        let Some(inst) = self.instance_mut(&timer.id) else {
            return;
        };
        if inst.timer == Some(key) {
            inst.timer = None;
        }
        if inst.reset_timer == Some(key) {
            inst.reset_timer = None;
        }
        if inst.uptime_timer == Some(key) {
            inst.uptime_timer = None;
        }
        let state = inst.state;
        let current = inst.run.as_ref().map(|r| r.id);
        let id = &timer.id;
        match timer.kind {
            TimerKind::Backoff if state == State::Backoff => {
                inst.restarts = inst.restarts.saturating_add(1);
                self.start_now(id, false);
            }
            TimerKind::Cooldown if state == State::Fatal => {
                inst.restarts = inst.restarts.saturating_add(1);
                self.start_now(id, true);
            }
            TimerKind::StopDeadline(run) if state == State::Stopping && current == Some(run) => {
                self.publish(Some(id.clone()), Some(run), EventKind::StopTimeout);
                self.actions.push_back(Action::KillTree {
                    id: id.clone(),
                    run,
                });
            }
            TimerKind::Reset(run) if state == State::Running && current == Some(run) => {
                inst.streak = 0;
            }
            // The run proved itself. No event says so, but the snapshot
            // does (`proven`); `instance_mut` marked the program, so the
            // settle that follows answers what waited on this run.
            TimerKind::MinUptime(run) if state == State::Running && current == Some(run) => {
                self.actions.push_back(Action::Refresh);
            }
            _ => {}
        }
    }
}
