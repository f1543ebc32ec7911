//! The JSON documents of the control API, shared by the server and the CLI
//! (which is only a client of it), so the two cannot drift apart.

use serde::{Deserialize, Serialize};
use ward_core::{InstanceView, RunEnd, Time};

/// One instance as `GET /v1/status` and `ward status --json` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub name: String,
    pub instance: u32,
    pub state: String,
    pub desired: String,
    pub pid: Option<u32>,
    pub run: Option<u64>,
    pub restarts: u32,
    /// Milliseconds since the current run was spawned; null when not running.
    pub uptime_ms: Option<u64>,
    /// Milliseconds since the instance entered its current state.
    pub state_ms: u64,
    pub last_exit: Option<LastExit>,
    /// While `waiting`: each dependency instance that keeps it from
    /// starting (absent otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_on: Vec<WaitingOn>,
    /// Why the last run ended as it did, when ward knows more than its
    /// exit: `"daemonized itself: …"` (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What ward says of a program that put itself in the background.
pub const DAEMONIZED: &str = "daemonized itself: its main process exited 0 while \
     its other processes ran on, so ward stopped them and treats the run as \
     ended; run it in the foreground (e.g. nginx -g 'daemon off;', \
     redis-server --daemonize no)";

/// A dependency instance a `waiting` instance waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingOn {
    /// `migrate:0`.
    pub instance: String,
    /// What the waiting instance needs of it: `started` or `completed`.
    pub condition: String,
    pub state: String,
    pub last_exit: Option<LastExit>,
    /// Its last run failed and it is `exited`, `backoff` or `fatal`: it
    /// will not meet the condition unless retried or started again.
    pub failed: bool,
}

impl WaitingOn {
    fn from_blocker(b: &ward_core::Blocker) -> WaitingOn {
        WaitingOn {
            instance: b.dependency.to_string(),
            condition: match b.condition {
                ward_core::Condition::Started => "started".into(),
                ward_core::Condition::Completed => "completed".into(),
            },
            state: b.state.name().to_string(),
            last_exit: b.last_end.as_ref().map(LastExit::from_end),
            failed: b.failed,
        }
    }

    /// `dependency migrate:0 failed (exit 1); it will not start until
    /// migrate completes`, or `for migrate:0 to complete (it is running)`.
    pub fn describe(&self) -> String {
        let program = self
            .instance
            .rsplit_once(':')
            .map_or(self.instance.as_str(), |(p, _)| p);
        let until = match self.condition.as_str() {
            "completed" => format!("{program} completes"),
            _ => format!("{program} is running"),
        };
        if !self.failed {
            let goal = match self.condition.as_str() {
                "completed" => "complete",
                _ => "run",
            };
            return format!("for {} to {goal} (it is {})", self.instance, self.state);
        }
        let how = self
            .last_exit
            .as_ref()
            .map(|e| match &e.error {
                Some(err) => format!(" ({err})"),
                None => format!(" ({})", e.short()),
            })
            .unwrap_or_default();
        let next = match self.state.as_str() {
            "backoff" => ", and waits to be tried again",
            "fatal" => " too often and was given up on (fatal)",
            _ => "",
        };
        format!(
            "dependency {} failed{how}{next}; it will not start until {until}",
            self.instance
        )
    }
}

/// How the previous run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExit {
    /// `exit`, `signal` or `spawn_failed`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<i32>,
    /// Signal name without `SIG` (`"KILL"`), or its number when unnamed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub signal: Option<String>,
    /// The OS error of a failed spawn.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

impl LastExit {
    pub fn from_end(end: &RunEnd) -> LastExit {
        match end {
            RunEnd::Exited {
                status: ward_core::ExitStatus::Code { code },
            } => LastExit {
                kind: "exit".into(),
                code: Some(*code),
                signal: None,
                error: None,
            },
            RunEnd::Exited {
                status: ward_core::ExitStatus::Signal { signal, .. },
            } => LastExit {
                kind: "signal".into(),
                code: None,
                signal: Some(
                    crate::proc::signal_name(*signal)
                        .map(str::to_string)
                        .unwrap_or_else(|| signal.to_string()),
                ),
                error: None,
            },
            RunEnd::SpawnFailed { error } => LastExit {
                kind: "spawn_failed".into(),
                code: None,
                signal: None,
                error: Some(error.clone()),
            },
        }
    }

    /// Short words for the status table: `exit 1`, `SIGKILL`, `spawn failed`.
    pub fn short(&self) -> String {
        match (self.kind.as_str(), self.code, &self.signal) {
            ("exit", Some(code), _) => format!("exit {code}"),
            ("signal", _, Some(sig)) => format!("SIG{sig}"),
            _ => "spawn failed".into(),
        }
    }
}

impl InstanceStatus {
    pub fn from_view(view: &InstanceView, now: Time) -> InstanceStatus {
        let running = view.state.is_live();
        InstanceStatus {
            name: view.id.program.to_string(),
            instance: view.id.index,
            state: view.state.name().to_string(),
            desired: match view.desired {
                ward_core::Desired::Up => "up".into(),
                ward_core::Desired::Down => "down".into(),
            },
            pid: view.pid.filter(|_| running),
            run: view.run.map(|r| r.0),
            restarts: view.restarts,
            uptime_ms: view
                .started_at
                .filter(|_| running)
                .map(|t| millis(now.saturating_sub(t))),
            state_ms: millis(now.saturating_sub(view.since)),
            last_exit: view.last_end.as_ref().map(LastExit::from_end),
            waiting_on: view
                .waiting_on
                .iter()
                .map(WaitingOn::from_blocker)
                .collect(),
            note: view.daemonized.then(|| DAEMONIZED.to_string()),
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Every error body: `{"error": "..."}`, plus the config errors of a
/// rejected reload, one rendered diagnostic each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// The answer to start/stop/restart/signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionResult {
    pub instances: Vec<InstanceStatus>,
}

/// The answer to a reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadResult {
    pub dry_run: bool,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub restarted: Vec<String>,
    pub updated: Vec<String>,
    /// `[name, old count, new count]`.
    pub rescaled: Vec<(String, u32, u32)>,
}

impl ReloadResult {
    pub fn from_diff(diff: &ward_core::Diff, dry_run: bool) -> ReloadResult {
        ReloadResult {
            dry_run,
            added: diff.added.clone(),
            removed: diff.removed.clone(),
            restarted: diff.restarted.clone(),
            updated: diff.updated.clone(),
            rescaled: diff
                .rescaled
                .iter()
                .map(|(name, (old, new))| (name.clone(), *old, *new))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.restarted.is_empty()
            && self.updated.is_empty()
            && self.rescaled.is_empty()
    }
}
