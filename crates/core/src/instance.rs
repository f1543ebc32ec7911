//! One instance's bookkeeping inside the engine.

use crate::limit::FailedStarts;
use crate::model::{
    Desired, DesiredBy, ExitStatus, InstanceId, InstanceView, RunEnd, RunId, State, Time,
};
use crate::spec::ProgramSpec;
use crate::timers::TimerKey;

#[derive(Debug, Clone)]
pub struct Instance {
    pub id: InstanceId,
    pub state: State,
    /// When `state` was entered.
    pub since: Time,
    /// What the user (or autostart) asked for; persisted by the shell.
    pub desired: Desired,
    /// Who set `desired` last.
    pub desired_by: DesiredBy,
    /// Going away: the program was removed or scaled down. Forgotten once
    /// stopped.
    pub retiring: bool,
    /// Stop the live run, then start afresh (Restart request, or a reload
    /// that changed how the program is launched).
    pub restart_pending: bool,
    /// The current run, while one exists (starting, running, stopping).
    pub run: Option<Run>,
    /// The most recent run, live or ended.
    pub last_run: Option<RunId>,
    pub last_end: Option<RunEnd>,
    pub restarts: u32,
    pub failed_starts: FailedStarts,
    /// Consecutive unsuccessful ends: the backoff exponent.
    pub streak: u32,
    /// The timer that belongs to the current state (backoff, cooldown or
    /// stop deadline).
    pub timer: Option<TimerKey>,
    /// The `reset_after` timer while running.
    pub reset_timer: Option<TimerKey>,
    /// The `min_uptime` timer while running.
    pub uptime_timer: Option<TimerKey>,
    /// The last run's main process exited successfully and left its tree
    /// running: the program daemonized itself.
    pub daemonized: bool,
}

/// A run the engine has asked the shell to spawn and that has not ended.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: RunId,
    /// Known once `Spawned` arrives; cleared when the leader exits.
    pub pid: Option<u32>,
    /// When `Spawned` arrived.
    pub started_at: Option<Time>,
    /// The engine is stopping this run (rather than cleaning up after a
    /// leader that exited on its own and left its tree behind).
    pub stop_requested: bool,
    /// The stop signal went out for this run; it goes out once.
    pub signal_sent: bool,
    /// The leader exited; the run ends when its tree is gone.
    pub leader: Option<LeaderExit>,
}

#[derive(Debug, Clone, Copy)]
pub struct LeaderExit {
    pub status: ExitStatus,
    pub failed_start: bool,
}

impl Run {
    pub fn new(id: RunId) -> Run {
        Run {
            id,
            pid: None,
            started_at: None,
            stop_requested: false,
            signal_sent: false,
            leader: None,
        }
    }

    /// A process exists (or existed) for this run, so it can be signalled.
    pub fn spawned(&self) -> bool {
        self.started_at.is_some() || self.leader.is_some()
    }
}

impl Instance {
    pub fn new(id: InstanceId, desired: Desired, desired_by: DesiredBy, now: Time) -> Instance {
        Instance {
            id,
            state: State::Stopped,
            since: now,
            desired,
            desired_by,
            retiring: false,
            restart_pending: false,
            run: None,
            last_run: None,
            last_end: None,
            restarts: 0,
            failed_starts: FailedStarts::default(),
            streak: 0,
            timer: None,
            reset_timer: None,
            uptime_timer: None,
            daemonized: false,
        }
    }

    /// The run id events about this instance carry.
    pub fn event_run(&self) -> Option<RunId> {
        self.run.as_ref().map(|r| r.id).or(self.last_run)
    }

    /// The last run ended with an exit code the program counts as success.
    pub fn last_end_succeeded(&self, spec: &ProgramSpec) -> bool {
        match &self.last_end {
            Some(RunEnd::Exited {
                status: ExitStatus::Code { code },
            }) => spec.success_exit_codes.contains(code),
            _ => false,
        }
    }

    /// What readers see, without `waiting_on` (the engine fills it in: it
    /// knows the dependencies).
    pub fn view(&self, spec: &ProgramSpec) -> InstanceView {
        InstanceView {
            id: self.id.clone(),
            state: self.state,
            desired: self.desired,
            desired_by: self.desired_by,
            run: self.event_run(),
            pid: self.run.as_ref().and_then(|r| r.pid),
            started_at: self.run.as_ref().and_then(|r| r.started_at),
            since: self.since,
            next_at: self.timer.map(|t| t.at()),
            restarts: self.restarts,
            last_end: self.last_end.clone(),
            waiting_on: Vec::new(),
            daemonized: self.daemonized,
            restart: spec.restart,
            min_uptime: spec.min_uptime,
            proven: self.state == State::Running && self.uptime_timer.is_none(),
            last_end_ok: self.last_end_succeeded(spec),
        }
    }
}
