//! The JSON documents of the control API, shared by the server and the CLI
//! (which is only a client of it), so the two cannot drift apart.

use serde::{Deserialize, Serialize};
use ward_core::{Condition, Desired, DesiredBy, InstanceView, RestartPolicy, State, Time};

/// One instance as `GET /v1/status` and `ward status --json` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub name: String,
    pub instance: u32,
    pub state: State,
    pub desired: Desired,
    /// Who set `desired`: `config` (autostart, a reload), `user` (a
    /// start/stop/restart), `remembered` (a user's choice from before ward
    /// last started), `dependency` (a program that needs it was started).
    pub desired_by: DesiredBy,
    pub pid: Option<u32>,
    pub run: Option<u64>,
    pub restarts: u32,
    /// Milliseconds since the current run was spawned; null when not running.
    pub uptime_ms: Option<u64>,
    /// Milliseconds since the instance entered its current state.
    pub state_ms: u64,
    /// Milliseconds until the current state's timer: the next try in
    /// `backoff`, the end of the cool-down in `fatal`, the kill in
    /// `stopping` (absent when there is none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_ms: Option<u64>,
    /// The program's `restart` policy: `always`, `on-failure`, `never`.
    pub restart: RestartPolicy,
    /// The program's `min_uptime`: a run that ends sooner is a failed start.
    pub min_uptime_ms: u64,
    /// `running`, and for its `min_uptime` already: an end now would not be
    /// a failed start (false in every other state).
    #[serde(default)]
    pub proven: bool,
    pub last_exit: Option<LastExit>,
    /// The last run ended with one of the program's `success_exit_codes`
    /// (what a `completed` dependency needs; how `ward start` tells a
    /// one-shot program that did its work from one that failed).
    pub last_exit_ok: bool,
    /// While `waiting`: each dependency instance that keeps it from
    /// starting (absent otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_on: Vec<WaitingOn>,
    /// Why the last run ended as it did, when ward knows more than its
    /// exit: `"daemonized itself: …"` (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub use crate::text::DAEMONIZED;

/// A dependency instance a `waiting` instance waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingOn {
    /// `migrate:0`.
    pub instance: String,
    /// What the waiting instance needs of it: `started` or `completed`.
    pub condition: Condition,
    pub state: State,
    pub last_exit: Option<LastExit>,
    /// Its last run failed and it is `exited`, `backoff` or `fatal`: it
    /// will not meet the condition unless retried or started again.
    pub failed: bool,
}

impl WaitingOn {
    fn from_blocker(b: &ward_core::Blocker) -> WaitingOn {
        WaitingOn {
            instance: b.dependency.to_string(),
            condition: b.condition,
            state: b.state,
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
        let until = match self.condition {
            Condition::Completed => format!("{program} completes"),
            Condition::Started => format!("{program} is running"),
        };
        if !self.failed {
            let goal = match self.condition {
                Condition::Completed => "complete",
                Condition::Started => "run",
            };
            return format!("for {} to {goal} (it is {})", self.instance, self.state);
        }
        let how = self
            .last_exit
            .as_ref()
            .map(|e| match e.spawn_error() {
                Some(err) => format!(" ({err})"),
                None => format!(" ({})", e.short()),
            })
            .unwrap_or_default();
        let next = match self.state {
            State::Backoff => ", and waits to be tried again",
            State::Fatal => " too often and was given up on (fatal)",
            _ => "",
        };
        format!(
            "dependency {} failed{how}{next}; it will not start until {until}",
            self.instance
        )
    }
}

pub use crate::exits::LastExit;

impl InstanceStatus {
    pub fn from_view(view: &InstanceView, now: Time) -> InstanceStatus {
        let running = view.state.is_live();
        InstanceStatus {
            name: view.id.program.to_string(),
            instance: view.id.index,
            state: view.state,
            desired: view.desired,
            desired_by: view.desired_by,
            pid: view.pid.filter(|_| running),
            run: view.run.map(|r| r.0),
            restarts: view.restarts,
            uptime_ms: view
                .started_at
                .filter(|_| running)
                .map(|t| millis(now.saturating_sub(t))),
            state_ms: millis(now.saturating_sub(view.since)),
            next_ms: view.next_at.map(|at| millis(at.saturating_sub(now))),
            restart: view.restart,
            min_uptime_ms: millis(view.min_uptime),
            proven: view.proven,
            last_exit: view.last_end.as_ref().map(LastExit::from_end),
            last_exit_ok: view.last_end_ok,
            waiting_on: view
                .waiting_on
                .iter()
                .map(WaitingOn::from_blocker)
                .collect(),
            note: view.daemonized.then(|| DAEMONIZED.to_string()),
        }
    }
}

impl InstanceStatus {
    /// On its way somewhere: `starting`, `stopping`, or running but not
    /// yet for its `min_uptime` (an end now would be a failed start).
    pub fn unsettled(&self) -> bool {
        self.state.on_its_way(self.proven)
    }

    /// `web:0`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.name, self.instance)
    }

    /// Why the instance is in its state, in a few words, for the status
    /// table and summaries: the last error or exit, the time until the next
    /// try, what it waits for, who stopped it. Empty when there is nothing
    /// to say (running, never failed).
    pub fn reason(&self) -> String {
        let last = self.last_exit.as_ref().map(LastExit::reason);
        let next = self
            .next_ms
            .map(|ms| crate::text::human_duration(std::time::Duration::from_millis(ms)));
        let parts: Vec<String> = match self.state {
            State::Running | State::Starting => {
                last.map(|l| format!("last: {l}")).into_iter().collect()
            }
            State::Backoff => vec![
                last.unwrap_or_else(|| "failed".into()),
                match next {
                    Some(next) => format!("next try in {next}"),
                    None => "next try soon".into(),
                },
            ],
            State::Fatal => vec![
                last.unwrap_or_else(|| "failed".into()),
                match next {
                    Some(next) => format!("gave up (start limit), tries again in {next}"),
                    None => "gave up (start limit); `ward start` tries again".into(),
                },
            ],
            State::Exited if self.note.is_some() => vec![format!(
                "{}, daemonized itself: run it in the foreground",
                last.unwrap_or_else(|| "exit 0".into())
            )],
            State::Exited => vec![
                last.unwrap_or_else(|| "ended".into()),
                format!("not restarted (restart = \"{}\")", self.restart),
            ],
            State::Stopped | State::Stopping if self.desired == Desired::Down => {
                let who = match self.desired_by {
                    DesiredBy::User => "by `ward stop`".to_string(),
                    DesiredBy::Remembered => "by `ward stop` before ward last started".to_string(),
                    _ => "autostart = false".to_string(),
                };
                let mut parts = vec![who];
                if let (Some(next), State::Stopping) = (next, self.state) {
                    parts.push(format!("killed in {next} unless it exits"));
                }
                parts
            }
            State::Stopping => match next {
                Some(next) => vec![format!("restarting; killed in {next} unless it exits")],
                None => vec!["restarting".into()],
            },
            State::Waiting => match self.waiting_on.as_slice() {
                [] => Vec::new(),
                [one] => vec![one.describe()],
                [first, rest @ ..] => {
                    vec![format!("{} (and {} more)", first.describe(), rest.len())]
                }
            },
            _ => Vec::new(),
        };
        parts.join("; ")
    }
}

/// One past end of a run, from the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastExit {
    /// When ward saw it (RFC 3339, UTC).
    pub ts: String,
    pub run: Option<u64>,
    pub exit: LastExit,
    /// How long the run had been up (absent for a failed spawn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_ms: Option<u64>,
}

/// One instance in detail: `GET /v1/instances/{target}`, `ward status NAME`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceDetail {
    #[serde(flatten)]
    pub status: InstanceStatus,
    /// The command as ward runs it (argv; `["sh", "-c", …]` for a shell line).
    pub command: Vec<String>,
    pub cwd: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The last ends of runs (up to five, oldest first), from the journal.
    pub exits: Vec<PastExit>,
    /// The last lines the program wrote to stderr (up to five), from its
    /// log file; when the log format does not mark streams
    /// (`timestamps = false`), its last lines of output instead, and
    /// `stderr_marked` is false.
    pub stderr: Vec<String>,
    pub stderr_marked: bool,
    /// The log file.
    pub log: String,
    /// `logs.files`: false when the output goes to the journal only.
    #[serde(default = "yes")]
    pub log_files: bool,
    /// `logs.journald`: the output goes to journald too.
    #[serde(default)]
    pub journald: bool,
}

fn yes() -> bool {
    true
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
    /// Each program the reload adds, removes, changes or rescales: what
    /// changed in it, and what happens to each of its instances.
    #[serde(default)]
    pub programs: Vec<ProgramReload>,
}

/// One program in a reload's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramReload {
    pub name: String,
    pub change: ProgramChange,
    /// Every setting that differs, by config key (absent for added and
    /// removed programs).
    pub fields: Vec<FieldChange>,
    pub instances: Vec<InstanceReload>,
}

/// What a reload does to a program as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgramChange {
    Added,
    Removed,
    /// Launch or log settings changed: its running instances restart.
    Restarted,
    /// Policy settings only: they apply without a restart.
    Updated,
    /// The count only.
    Rescaled,
}

/// One setting a reload changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The config key: `command`, `backoff.initial`, `env.PORT`.
    pub key: String,
    /// The values as a config writes them; environment values are not
    /// shown (`(a value)`, `(another value)`, `(unset)`).
    pub old: String,
    pub new: String,
}

/// What a reload does to one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceReload {
    /// `web:0`.
    pub instance: String,
    /// Its state before the reload (`stopped` for a new one).
    pub state: State,
    /// Who set its desired state (see the instance object).
    pub desired_by: DesiredBy,
    /// `restarts`, `keeps_running`, `revived` (it was `fatal`: started
    /// afresh now), `stays_stopped`, `next_start` (not running now: the new
    /// settings apply from its next start), `starts`, `stops`.
    pub outcome: ward_core::ReloadOutcome,
}

impl ReloadResult {
    pub fn from_reply(
        diff: &ward_core::Diff,
        dry_run: bool,
        instances: &[ward_core::ReloadedInstance],
    ) -> ReloadResult {
        let mut programs: Vec<ProgramReload> = Vec::new();
        let categories = [
            (ProgramChange::Added, &diff.added),
            (ProgramChange::Removed, &diff.removed),
            (ProgramChange::Restarted, &diff.restarted),
            (ProgramChange::Updated, &diff.updated),
        ];
        let rescaled_only: Vec<String> = diff
            .rescaled
            .keys()
            .filter(|name| !diff.restarted.contains(name) && !diff.updated.contains(name))
            .cloned()
            .collect();
        for (change, names) in categories
            .into_iter()
            .chain([(ProgramChange::Rescaled, &rescaled_only)])
        {
            for name in names.iter() {
                programs.push(ProgramReload {
                    name: name.clone(),
                    change,
                    fields: diff
                        .fields
                        .get(name)
                        .into_iter()
                        .flatten()
                        .map(|f| FieldChange {
                            key: f.key.clone(),
                            old: f.old.clone(),
                            new: f.new.clone(),
                        })
                        .collect(),
                    instances: instances
                        .iter()
                        .filter(|i| *i.id.program == **name)
                        .map(|i| InstanceReload {
                            instance: i.id.to_string(),
                            state: i.state,
                            desired_by: i.desired_by,
                            outcome: i.outcome,
                        })
                        .collect(),
                });
            }
        }
        programs.sort_by(|a, b| a.name.cmp(&b.name));
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
            programs,
        }
    }
}
