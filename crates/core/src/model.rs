//! The engine's vocabulary: identities, states, what goes in (inputs), what
//! comes out (actions and events), and what readers see (the snapshot).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::spec::{Condition, LaunchSpec, LogSpec, RestartPolicy, Signal};

/// Monotonic time since the shell's epoch. The engine never reads a clock;
/// every entry point is handed `now`.
pub type Time = Duration;

/// One instance of a program: `web:1` (also its serialised form).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId {
    pub program: Arc<str>,
    pub index: u32,
}

impl InstanceId {
    pub fn new(program: &str, index: u32) -> Self {
        InstanceId {
            program: Arc::from(program),
            index,
        }
    }
}

impl Serialize for InstanceId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.program, self.index)
    }
}

/// One spawn of an instance. Never reused, also not across ward restarts
/// (the shell persists the next free id). Every input about a process
/// carries the RunId it is about; an input about an older run is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RunId(pub u64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Names a request so that its reply can find the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Token(pub u64);

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Stopped,
    Waiting,
    Starting,
    Running,
    Backoff,
    Stopping,
    Exited,
    Fatal,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Waiting => "waiting",
            State::Starting => "starting",
            State::Running => "running",
            State::Backoff => "backoff",
            State::Stopping => "stopping",
            State::Exited => "exited",
            State::Fatal => "fatal",
        }
    }

    /// A state in which a process (tree) may exist.
    pub fn is_live(self) -> bool {
        matches!(self, State::Starting | State::Running | State::Stopping)
    }
}

impl State {
    /// An instance in this state is on its way somewhere: starting,
    /// stopping, or running but not `proven` yet (not for its
    /// `min_uptime`).
    pub fn on_its_way(self, proven: bool) -> bool {
        match self {
            State::Starting | State::Stopping => true,
            State::Running => !proven,
            _ => false,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the user (or the config) wants an instance to be.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    Up,
    Down,
}

/// Who set an instance's desired state last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DesiredBy {
    /// The config: `autostart` (true: up, false: down), or a reload.
    Config,
    /// A request while this ward runs (`ward start`, `stop`, `restart`).
    User,
    /// A request from before ward last started, kept in its state file.
    Remembered,
    /// Brought up because a program that depends on it was started.
    Dependency,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ExitStatus {
    /// Exited with a code.
    Code { code: i32 },
    /// Killed by a signal (platform number; the shell knows the name).
    Signal { signal: i32, core_dumped: bool },
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code { code } => write!(f, "exit {code}"),
            ExitStatus::Signal {
                signal,
                core_dumped,
            } => {
                write!(f, "signal {signal}")?;
                if *core_dumped {
                    f.write_str(" (core dumped)")?;
                }
                Ok(())
            }
        }
    }
}

/// The end of a run as the engine records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunEnd {
    /// The leader exited.
    Exited { status: ExitStatus },
    /// The process never started: the OS error, in words.
    SpawnFailed { error: String },
}

/// What the engine is asked to do for a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    All,
    Program(String),
    Instance(String, u32),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::All => f.write_str("all"),
            Target::Program(p) => f.write_str(p),
            Target::Instance(p, i) => write!(f, "{p}:{i}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Start(Target),
    Stop(Target),
    Restart(Target),
    /// `ward signal`: to each target's main process.
    Signal(Target, Signal),
    /// `ward signal --tree`: to every process of each target's tree.
    SignalTree(Target, Signal),
    /// Replace the program set. With `dry_run`, only compute the diff.
    Reload {
        specs: crate::SpecSet,
        dry_run: bool,
    },
    /// Stop everything in reverse dependency order, then `Action::Exit`.
    Shutdown,
}

/// Everything the world tells the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Request {
        token: Token,
        request: Request,
    },
    /// The spawn asked for by `Action::Spawn` produced a process.
    Spawned {
        id: InstanceId,
        run: RunId,
        pid: u32,
    },
    /// The spawn asked for by `Action::Spawn` failed before the program ran.
    SpawnFailed {
        id: InstanceId,
        run: RunId,
        error: String,
    },
    /// The run's leader exited (its output drained). `tree_alive`: other
    /// processes of the run's tree still exist; a `TreeGone` follows.
    Exited {
        id: InstanceId,
        run: RunId,
        status: ExitStatus,
        tree_alive: bool,
    },
    /// The last process of the run's tree is gone.
    TreeGone {
        id: InstanceId,
        run: RunId,
    },
}

/// Everything the engine asks the shell to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start a process for `id` as run `run`. The shell answers with
    /// `Spawned` or `SpawnFailed`, and later `Exited` (and `TreeGone`).
    Spawn {
        id: InstanceId,
        run: RunId,
        launch: Arc<LaunchSpec>,
        logs: Arc<LogSpec>,
    },
    /// Send a stop's `signal` to every process of the run's tree, or, with
    /// `main_only` (`stop_mode = "main"`), to its main process only; the
    /// shell follows it with SIGCONT, so a stopped process acts on it.
    Signal {
        id: InstanceId,
        run: RunId,
        signal: Signal,
        main_only: bool,
    },
    /// A stop by the program's `stop_command` instead of its signal (the
    /// spec has one, and the main process is alive to be told): the shell
    /// runs `command` with the run's launch settings and `main_pid` (as
    /// `WARD_MAIN_PID`) for at most `within` (the stop timeout); the stop
    /// deadline holds as for a signal.
    StopCommand {
        id: InstanceId,
        run: RunId,
        command: Vec<String>,
        main_pid: u32,
        within: Duration,
    },
    /// Send `signal` to the run's main process only (a user's `ward
    /// signal`: a reload or log-reopen signal is meant for the program, not
    /// for every worker it forked). Never emitted once the leader exited.
    SignalMain {
        id: InstanceId,
        run: RunId,
        signal: Signal,
    },
    /// Send `signal` to every process of the run's tree (a user's `ward
    /// signal --tree`), with no SIGCONT after it.
    SignalTree {
        id: InstanceId,
        run: RunId,
        signal: Signal,
    },
    /// SIGKILL every process of the run's tree.
    KillTree {
        id: InstanceId,
        run: RunId,
    },
    /// Answer a request.
    Reply {
        token: Token,
        result: Result<Reply, RequestError>,
    },
    Publish(Event),
    /// `id` is gone for good (its program was removed, or its index is past
    /// the new count) and nothing of it runs: the shell lets go of what it
    /// keeps for it (its log file, its followers). Emitted once, after its
    /// last run ended.
    Release {
        id: InstanceId,
    },
    /// The snapshot changed with no event to publish (a run has now been
    /// up for its `min_uptime`: its view is `proven`): whoever reads the
    /// snapshot should get the new one.
    Refresh,
    /// A shutdown finished: every instance is down. The shell exits.
    Exit,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    /// The request was carried out; these instances were affected, and this
    /// is where they ended up.
    Done { instances: Vec<InstanceView> },
    /// A reload (or its dry run) with the changes it made (would make),
    /// and what it does to each instance of a changed program.
    Reloaded {
        diff: Diff,
        dry_run: bool,
        instances: Vec<ReloadedInstance>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RequestError {
    /// No program by that name; `suggestion` is the closest existing name.
    NoSuchProgram {
        name: String,
        suggestion: Option<String>,
    },
    /// The program exists but has no such instance.
    NoSuchInstance {
        program: String,
        index: u32,
        instances: u32,
    },
    /// ward is shutting down and takes no more requests that start things.
    ShuttingDown,
}

impl std::error::Error for RequestError {}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::NoSuchProgram { name, suggestion } => {
                write!(f, "no program named {name:?}")?;
                if let Some(s) = suggestion {
                    write!(f, " (did you mean {s:?}?)")?;
                }
                Ok(())
            }
            RequestError::NoSuchInstance {
                program,
                index,
                instances,
            } => match instances {
                0 => write!(f, "{program} has no instance {index}: it has no instances"),
                1 => write!(
                    f,
                    "{program} has no instance {index}: it has one instance, {program}:0"
                ),
                n => write!(
                    f,
                    "{program} has no instance {index}: it has {n} instances, {program}:0 to {program}:{}",
                    n - 1
                ),
            },
            RequestError::ShuttingDown => f.write_str("ward is shutting down"),
        }
    }
}

/// What a reload changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// New programs: started (if autostart).
    pub added: Vec<String>,
    /// Programs gone from the config: stopped and forgotten.
    pub removed: Vec<String>,
    /// Launch or log settings changed: instances restart.
    pub restarted: Vec<String>,
    /// Only policy changed: applied in place, nothing restarts.
    pub updated: Vec<String>,
    /// Instance count changed: `program → (old, new)`.
    pub rescaled: BTreeMap<String, (u32, u32)>,
    /// `program → every setting that differs`, for programs in both sets.
    pub fields: BTreeMap<String, Vec<FieldChange>>,
}

/// One setting a reload changes: its config key (`command`,
/// `backoff.initial`, `env.PORT`) and its old and new values as a config
/// would write them (environment values are not shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub key: String,
    pub old: String,
    pub new: String,
}

/// What a reload does (or, dry, would do) to one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// Running (or on its way): restarts with the new launch or log settings.
    Restarts,
    /// Running: keeps running; the new policy applies at once.
    KeepsRunning,
    /// Given up on (`fatal`): the give-up is cleared and it starts now.
    Revived,
    /// Meant to be down: stays stopped (`desired_by` says who stopped it).
    StaysStopped,
    /// Not running now (`backoff`, `waiting`, `exited`): the new settings
    /// apply from its next start.
    NextStart,
    /// New (an added program, or an instance past the old count): starts.
    Starts,
    /// Gone from the config (or past the new count): stops and is forgotten.
    Stops,
}

/// One instance a reload touches, as it was, and what the reload does to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadedInstance {
    pub id: InstanceId,
    /// Its state before the reload (`stopped` for a new one).
    pub state: State,
    pub desired_by: DesiredBy,
    pub outcome: ReloadOutcome,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.restarted.is_empty()
            && self.updated.is_empty()
            && self.rescaled.is_empty()
    }
}

/// A fact. The shell stamps wall-clock time when it publishes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunId>,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    StateChanged {
        from: State,
        to: State,
    },
    DesiredChanged {
        desired: Desired,
    },
    Spawned {
        pid: u32,
    },
    SpawnFailed {
        error: String,
    },
    Exited {
        status: ExitStatus,
        uptime_ms: u64,
        /// The run counted as a failed start (shorter than `min_uptime`).
        failed_start: bool,
    },
    /// Restart scheduled after `delay_ms`.
    Backoff {
        delay_ms: u64,
        attempt: u32,
    },
    /// Start limit reached; `cooldown_ms` until a fresh try, if any.
    Fatal {
        failed_starts: u32,
        cooldown_ms: Option<u64>,
    },
    /// The stop deadline passed: the tree is being killed.
    StopTimeout,
    /// The main process exited successfully while other processes of its
    /// tree ran on: the program put itself in the background (nginx
    /// without `daemon off`, a double-forking script). ward stops what it
    /// left and treats the run as ended; it must run in the foreground.
    Daemonized,
    /// A reload was applied.
    Reloaded {
        diff: Diff,
    },
    /// A reload was refused: the new config has errors. Nothing changed.
    ReloadRejected {
        errors: Vec<String>,
    },
    /// The log pump dropped lines (disk full or too slow) and resumed.
    LogLinesDropped {
        lines: u64,
        reason: String,
    },
    /// Anything the shell wants on the record in words (e.g. a fallback).
    Notice {
        message: String,
    },
}

/// One instance as readers see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceView {
    pub id: InstanceId,
    pub state: State,
    pub desired: Desired,
    /// Who set `desired`.
    pub desired_by: DesiredBy,
    pub run: Option<RunId>,
    pub pid: Option<u32>,
    /// When the current run was spawned (for uptime), if one is live.
    pub started_at: Option<Time>,
    /// When the instance entered its current state.
    pub since: Time,
    /// When the current state's timer is due: the next try in `backoff`,
    /// the end of the cool-down in `fatal`, the kill in `stopping`.
    pub next_at: Option<Time>,
    pub restarts: u32,
    pub last_end: Option<RunEnd>,
    /// While `waiting`: every dependency instance that does not meet its
    /// condition (empty in every other state).
    pub waiting_on: Vec<Blocker>,
    /// The last run put itself in the background (see
    /// [`EventKind::Daemonized`]); cleared by the next spawn.
    pub daemonized: bool,
    /// The program's restart policy.
    pub restart: RestartPolicy,
    /// The program's `min_uptime`: a run that ends sooner is a failed start.
    pub min_uptime: Duration,
    /// `running`, and for the `min_uptime` in force when this run started:
    /// an end now would not be a failed start.
    pub proven: bool,
    /// The last run ended with one of the program's `success_exit_codes`.
    pub last_end_ok: bool,
}

/// A dependency instance that keeps a `waiting` instance from starting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Blocker {
    pub dependency: InstanceId,
    /// What the waiting instance needs of it.
    pub condition: Condition,
    pub state: State,
    pub last_end: Option<RunEnd>,
    /// Its last run failed (an exit that is not a success, a signal, a
    /// failed spawn) and it is `exited`, `backoff` or `fatal`: it is not on
    /// its way to meeting the condition, unless a retry (backoff, cooldown)
    /// or a person starts it again.
    pub failed: bool,
}

/// Every instance, ordered by program name then index.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    pub instances: Vec<InstanceView>,
}

impl InstanceView {
    /// On its way somewhere: starting, stopping (a restart, a reload's),
    /// or running but not yet for its `min_uptime` (an end now would be a
    /// failed start).
    pub fn on_its_way(&self) -> bool {
        self.state.on_its_way(self.proven)
    }
}

impl Snapshot {
    /// Nothing is on its way ([`InstanceView::on_its_way`]): every program
    /// that starts is up past its `min_uptime`, or failed, or waits. What
    /// a service manager is told as "ready".
    pub fn settled(&self) -> bool {
        !self.instances.iter().any(InstanceView::on_its_way)
    }

    /// The instances a target names, or the same error the engine gives a
    /// request with that target (with its did-you-mean).
    pub fn select(&self, target: &Target) -> Result<Vec<&InstanceView>, RequestError> {
        let (name, index) = match target {
            Target::All => return Ok(self.instances.iter().collect()),
            Target::Program(p) => (p, None),
            Target::Instance(p, i) => (p, Some(*i)),
        };
        let of_program: Vec<&InstanceView> = self
            .instances
            .iter()
            .filter(|v| &*v.id.program == name)
            .collect();
        if of_program.is_empty() {
            let names = self.instances.iter().map(|v| &*v.id.program);
            return Err(RequestError::NoSuchProgram {
                name: name.clone(),
                suggestion: crate::suggest::closest(name, names).map(str::to_string),
            });
        }
        match index {
            None => Ok(of_program),
            Some(i) => match of_program.iter().find(|v| v.id.index == i) {
                Some(view) => Ok(vec![view]),
                None => Err(RequestError::NoSuchInstance {
                    program: name.clone(),
                    index: i,
                    instances: of_program.len() as u32,
                }),
            },
        }
    }
}
