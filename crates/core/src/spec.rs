//! What to run and the policy around it: the validated form of `ward.toml`.
//!
//! `ward-config` builds these from TOML; the engine only reads them. Every
//! duration is already parsed, every path already resolved, every default
//! already applied, so the engine never has to guess.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Every program, by name. Ordered so that iteration (and so the order of
/// actions the engine emits) is deterministic.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SpecSet {
    pub programs: BTreeMap<String, ProgramSpec>,
}

impl SpecSet {
    pub fn get(&self, name: &str) -> Option<&ProgramSpec> {
        self.programs.get(name)
    }
}

/// One `[program.NAME]` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgramSpec {
    pub name: String,
    /// Settings that shape the process itself. A change here restarts the
    /// program's instances on reload.
    pub launch: Arc<LaunchSpec>,
    /// Where and how the output goes. A change here also restarts (the log
    /// pumps belong to a run).
    pub logs: Arc<LogSpec>,
    /// Everything below is policy: a change applies in place on reload.
    pub instances: u32,
    pub autostart: bool,
    pub restart: RestartPolicy,
    pub success_exit_codes: Vec<i32>,
    pub backoff: BackoffSpec,
    pub start_limit: StartLimit,
    /// A run that ends sooner than this is a failed start.
    pub min_uptime: Duration,
    pub stop_signal: Signal,
    /// Run this instead of sending `stop_signal` (an HTTP shutdown call, a
    /// program's own stop verb), with the program's working directory,
    /// environment and account; `stop_timeout` still ends the tree.
    pub stop_command: Option<Vec<String>>,
    pub stop_timeout: Duration,
    /// Who gets `stop_signal`: the whole tree, or the main process only.
    pub stop_mode: StopMode,
    /// Program name → condition it must meet before this program starts.
    pub depends_on: BTreeMap<String, Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaunchSpec {
    /// argv; never empty. With `shell`, argv is `["sh", "-c", line]` already.
    pub argv: Vec<String>,
    pub shell: bool,
    /// Absolute working directory.
    pub cwd: PathBuf,
    /// Extra environment on top of ward's own (env_file first, then `env`).
    pub env: Vec<(String, String)>,
    pub user: Option<String>,
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogSpec {
    /// Absolute directory the instance's log files live in.
    pub dir: PathBuf,
    /// Rotate when the current file would pass this many bytes.
    pub max_size: u64,
    /// How many rotated files to keep (`name.log.1` … `name.log.N`).
    pub keep: u32,
    pub format: LogFormat,
    pub timestamps: bool,
    /// Lines longer than this are split into pieces, each marked.
    pub max_line: usize,
    /// Who may read the files, and which directories ward accepts.
    pub access: LogAccess,
    /// Write the output to the log files (off: only to the journal).
    pub files: bool,
    /// Also send each line to journald (its native protocol), with the
    /// program, instance and run as fields of its own.
    pub journald: bool,
}

/// Permissions of an instance's log files and directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogAccess {
    /// Permission bits of the log files (default `0o600`: program output
    /// often holds secrets).
    pub mode: u32,
    /// A group (name or numeric id) that owns the files and a log dir ward
    /// creates: to share the logs with, e.g., a log shipper's group.
    pub group: Option<String>,
    /// Accept a log dir that its group or others may write to (anyone who
    /// can write there can replace ward's files with links).
    pub allow_writable_dir: bool,
}

impl Default for LogAccess {
    fn default() -> LogAccess {
        LogAccess {
            mode: 0o600,
            group: None,
            allow_writable_dir: false,
        }
    }
}

/// Who a stop's signal goes to. Either way, every process still running at
/// `stop_timeout` is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StopMode {
    /// Every process of the run's tree (systemd's `KillMode=control-group`).
    #[default]
    Tree,
    /// The main process only, which stops the rest its own way (a
    /// PostgreSQL postmaster, a gunicorn master): systemd's `KillMode=mixed`.
    Main,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl std::fmt::Display for RestartPolicy {
    /// As a config writes it: `always`, `on-failure`, `never`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Never => "never",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BackoffSpec {
    /// Delay before the first restart after a failure.
    pub initial: Duration,
    /// The delay never exceeds this.
    pub max: Duration,
    /// Each consecutive failure multiplies the delay by this (≥ 1).
    pub factor: f64,
    /// Fraction (0..=1) of the delay that is randomised, ±.
    pub jitter: f64,
    /// A run that stays up this long resets the delay to `initial`.
    pub reset_after: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StartLimit {
    /// This many failed starts within `interval` make the instance `fatal`.
    pub burst: u32,
    pub interval: Duration,
    /// After this long in `fatal`, the instance gets a fresh try.
    /// `None`: stay fatal until someone starts it.
    pub cooldown: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    /// Every instance of the dependency is `running`.
    Started,
    /// Every instance of the dependency has exited successfully.
    Completed,
}

/// A signal by name, so that the pure crates stay portable; the shell maps it
/// to the platform's number. The last two are Windows console events
/// (`GenerateConsoleCtrlEvent`), the only "signals" a Windows console
/// program can catch; which of them a host can send is the host's to say
/// (`ward_config::Host::check_signal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Signal {
    Hup,
    Int,
    Quit,
    Abrt,
    Kill,
    Usr1,
    Usr2,
    Alrm,
    Term,
    Cont,
    Stop,
    Tstp,
    Winch,
    /// `CTRL_C_EVENT`, to every process attached to the program's console.
    CtrlC,
    /// `CTRL_BREAK_EVENT`, to every process attached to the program's
    /// console.
    CtrlBreak,
}

impl Signal {
    pub const ALL: [Signal; 15] = [
        Signal::Hup,
        Signal::Int,
        Signal::Quit,
        Signal::Abrt,
        Signal::Kill,
        Signal::Usr1,
        Signal::Usr2,
        Signal::Alrm,
        Signal::Term,
        Signal::Cont,
        Signal::Stop,
        Signal::Tstp,
        Signal::Winch,
        Signal::CtrlC,
        Signal::CtrlBreak,
    ];

    /// The name without the `SIG` prefix, upper case (`"TERM"`).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Hup => "HUP",
            Signal::Int => "INT",
            Signal::Quit => "QUIT",
            Signal::Abrt => "ABRT",
            Signal::Kill => "KILL",
            Signal::Usr1 => "USR1",
            Signal::Usr2 => "USR2",
            Signal::Alrm => "ALRM",
            Signal::Term => "TERM",
            Signal::Cont => "CONT",
            Signal::Stop => "STOP",
            Signal::Tstp => "TSTP",
            Signal::Winch => "WINCH",
            Signal::CtrlC => "CTRL_C",
            Signal::CtrlBreak => "CTRL_BREAK",
        }
    }

    /// Accepts `TERM`, `SIGTERM`, `term`, `sigterm`; and `ctrl-break`,
    /// `CTRL_BREAK`, `CTRL_BREAK_EVENT` (the same for `ctrl-c`).
    pub fn from_name(s: &str) -> Option<Signal> {
        let upper = s.trim().to_ascii_uppercase().replace('-', "_");
        let bare = match upper.strip_prefix("CTRL_") {
            Some(_) => upper.strip_suffix("_EVENT").unwrap_or(&upper),
            None => upper.strip_prefix("SIG").unwrap_or(&upper),
        };
        Signal::ALL.into_iter().find(|sig| sig.name() == bare)
    }

    /// A Windows console event rather than a signal.
    pub fn is_console_event(self) -> bool {
        matches!(self, Signal::CtrlC | Signal::CtrlBreak)
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signal::CtrlC => f.write_str("Ctrl-C"),
            Signal::CtrlBreak => f.write_str("Ctrl-Break"),
            _ => write!(f, "SIG{}", self.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_round_trip() {
        for sig in Signal::ALL {
            assert_eq!(Signal::from_name(sig.name()), Some(sig));
            assert_eq!(Signal::from_name(&format!("sig{}", sig.name())), Some(sig));
        }
        assert_eq!(Signal::from_name("ctrl-break"), Some(Signal::CtrlBreak));
        assert_eq!(Signal::from_name("CTRL_C_EVENT"), Some(Signal::CtrlC));
        assert_eq!(Signal::CtrlBreak.to_string(), "Ctrl-Break");
        assert_eq!(Signal::Term.to_string(), "SIGTERM");
        assert_eq!(Signal::from_name("TERMINATE"), None);
        assert_eq!(Signal::from_name(""), None);
    }
}
