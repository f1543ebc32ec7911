//! The system a configuration is for, as far as the file alone cannot
//! tell: whether the users and groups it names exist there.
//!
//! ward-config does no user-database lookups of its own: the caller passes
//! a [`Host`] that answers (ward asks its own system, through the same
//! code that resolves credentials before a spawn). Checks of this kind
//! (is this command on PATH?) belong here, one method each, so that
//! `ward check` catches what would fail only when a program starts.

use std::path::{Path, PathBuf};

use ward_core::Signal;

/// Answers about the system a configuration will run on. Each answer is
/// `Ok`, or `Err` with the reason for a person (`unknown user "www"`),
/// which is reported at the value that asked, with `file:line:col`.
pub trait Host {
    /// Whether `name`, a `user` of some program, exists. Not asked for a
    /// numeric id: those are always accepted.
    fn check_user(&self, name: &str) -> Result<(), String>;
    /// Whether `name`, a `group` of some program, exists. Not asked for a
    /// numeric id.
    fn check_group(&self, name: &str) -> Result<(), String>;
    /// Whether `program`, a command's first word, can be run as a spawn
    /// would run it: relative to `cwd` when it holds a `/`, else looked up
    /// in `path` (the PATH the program's own environment sets, if any; the
    /// host's otherwise). The reason says what is wrong (`not found in
    /// PATH (…); did you mean "python3"?`). Accepts everything by default.
    fn check_command(
        &self,
        _program: &str,
        _cwd: &std::path::Path,
        _path: Option<&str>,
    ) -> Result<(), String> {
        Ok(())
    }
    /// Where ward keeps its files when the config does not say: beside
    /// the config (`.ward/`) by default; an installed service's own
    /// directories (`/var/lib/ward/NAME`, …) for a host that runs one.
    fn places(&self, config_dir: &Path) -> Places {
        Places::beside(config_dir)
    }
    /// Whether a program can run as another user or group here at all
    /// (`user`, `group`). The reason says what to do instead (on Windows:
    /// run ward's service under that account).
    fn check_accounts(&self) -> Result<(), String> {
        Ok(())
    }
    /// Whether `stop_signal` (or a signal the API is asked to send) can
    /// reach a program here: Unix signals on Unix, console events and
    /// `KILL` on Windows. The reason names what to use instead.
    fn check_signal(&self, _signal: Signal) -> Result<(), String> {
        Ok(())
    }
    /// The `stop_signal` of a program that does not set one.
    fn default_stop_signal(&self) -> Signal {
        Signal::Term
    }
    /// Whether `signal`, a program's stop signal, can reach `program` (a
    /// command's first word, found as [`Host::check_command`] finds it):
    /// on Windows a console event cannot reach a program without a console
    /// (a GUI program). Accepts everything by default.
    fn check_stop_signal(
        &self,
        _program: &str,
        _cwd: &Path,
        _path: Option<&str>,
        _signal: Signal,
    ) -> Result<(), String> {
        Ok(())
    }
    /// The command that runs `line` in the system's shell (`shell = true`):
    /// `sh -c LINE`; on Windows `cmd.exe /d /c LINE`.
    fn shell(&self, line: &str) -> Vec<String> {
        vec!["sh".to_string(), "-c".to_string(), line.to_string()]
    }
}

/// The defaults of `[ward] state_dir`, `[ward] socket` and `[ward.logs]
/// dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Places {
    pub state_dir: PathBuf,
    /// `None`: `ward.sock` in the state dir.
    pub socket: Option<PathBuf>,
    /// `None`: `logs/` in the state dir.
    pub logs_dir: Option<PathBuf>,
}

impl Places {
    /// `.ward/` beside the config, with the socket and the logs in it.
    pub fn beside(config_dir: &Path) -> Places {
        Places {
            state_dir: config_dir.join(".ward"),
            socket: None,
            logs_dir: None,
        }
    }
}

/// A host that accepts every name: the file alone decides. What [`load`]
/// and [`parse`] use, for tools and tests that read a configuration meant
/// for another system.
///
/// [`load`]: crate::load
/// [`parse`]: crate::parse
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyHost;

impl Host for AnyHost {
    fn check_user(&self, _name: &str) -> Result<(), String> {
        Ok(())
    }

    fn check_group(&self, _name: &str) -> Result<(), String> {
        Ok(())
    }
}

/// A numeric user or group id, which needs no entry in the user database
/// (ward runs the program with that id as is).
pub(crate) fn is_numeric_id(name: &str) -> bool {
    name.parse::<u32>().is_ok()
}
