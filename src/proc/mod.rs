//! Processes and process trees: spawning (credentials, process groups,
//! cgroup leaves, parent-death signal), reaping, signalling and killing whole
//! trees, the sentinel that cleans up after a dead ward, and the sweep of a
//! previous ward's leftovers; and in `fs`, the platform side of ward's own
//! files (`src/files` is their door). With the Windows side of
//! `src/transport`, the only code of ward with `unsafe`; every block says
//! why it is sound.
//!
//! How the daemon uses it:
//! 0. [`close_inherited_fds`] first thing in `ward up`, while single-threaded;
//! 1. [`init`] first thing in `main`, before any thread exists (it forks the
//!    sentinel and makes ward a child subreaper);
//! 2. [`Supervision::start`] gives the [`Spawner`];
//! 3. every process ward starts goes through the [`Spawner`]: ward reaps
//!    with `waitpid(-1)`, so a child started with `std::process` or
//!    `tokio::process` would have its exit status taken by the reaper;
//! 4. per run: [`Tree::signal`] to stop, [`Tree::kill`] at the deadline,
//!    [`Tree::gone`] then [`Tree::cleanup`];
//! 5. at a clean exit, once every tree is gone, [`Supervision::cleanup`].
//!
//! Test programs whose threads exist before they could call [`init`] use
//! [`init_without_sentinel`]. They too must start every process through a
//! [`Spawner`], and so belong in a test binary of their own.
//!
//! Unix in `unix.rs` and the modules beside it; Windows (Job Objects,
//! console events, named-pipe output) in `windows/`, with the same public
//! names. Nothing outside `src/proc` knows which one it uses.

use std::path::PathBuf;

#[cfg(target_os = "linux")]
mod cgroup;
#[cfg(unix)]
mod child;
#[cfg(unix)]
mod creds;
#[cfg(unix)]
mod exec_check;
mod exit_wait;
#[cfg(unix)]
mod fds;
pub mod fs;
#[cfg(target_os = "linux")]
mod procfs;
#[cfg(unix)]
mod reaper;
#[cfg(unix)]
mod sentinel;
#[cfg(unix)]
pub mod signals;
#[cfg(unix)]
mod spawn;
#[cfg(unix)]
mod sweep;
#[cfg(unix)]
mod tree;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

/// A group's id, by name or number (for the group of shared log files).
#[cfg(unix)]
pub(crate) use self::creds::group_id;
// The daemon names only some of these; the rest serve tests and tools.
pub use self::exit_wait::wait_daemon_exit;
#[cfg(unix)]
pub use self::fds::close_inherited as close_inherited_fds;
#[cfg(unix)]
pub use self::sweep::{end_adopted, sweep_starts};
#[cfg(unix)]
pub use self::tree::{start_time, sweep, Tree};
#[cfg(all(test, unix))]
pub use self::unix::testing;
#[cfg(unix)]
#[allow(unused_imports)]
pub use self::unix::{
    detach, init, init_without_sentinel, open_files_limit, run_helper, signal_name, signal_number,
    Spawner, Supervision,
};
#[cfg(windows)]
pub(crate) use self::windows::{
    check_accounts, check_command, check_group, check_signal, check_stop_signal, check_user,
    group_id, shell, DEFAULT_STOP_SIGNAL,
};
#[cfg(windows)]
#[allow(unused_imports)]
pub use self::windows::{
    close_inherited_fds, detach, end_adopted, init, init_without_sentinel, open_files_limit,
    run_helper, signal_name, signal_number, signals, start_time, sweep, sweep_starts, Spawner,
    Supervision, Tree,
};

/// Whether a user or group (a name, or a numeric id) exists here: what a
/// spawn would find, asked before anything runs (`ward check`).
#[cfg(unix)]
pub(crate) use self::creds::{check_group, check_user};
/// Whether a command can be run here, asked before anything runs.
#[cfg(unix)]
pub(crate) use self::exec_check::check_command;

/// The read end of a pipe a child writes its output to, before it is
/// registered with the runtime as an [`Output`].
#[cfg(unix)]
pub(crate) type PipeEnd = std::os::fd::OwnedFd;
#[cfg(windows)]
pub(crate) type PipeEnd = std::os::windows::io::OwnedHandle;

/// The read end of a program's stdout or stderr, registered with the
/// runtime: an [`AsyncRead`](tokio::io::AsyncRead), plus what the log pump
/// needs beyond reading (waiting for data before it allocates a buffer, and
/// a bigger pipe for a program that floods: `enlarge`). Each system makes
/// it (`new`) from its kind of pipe.
#[derive(Debug)]
pub struct Output(OutputPipe);

#[cfg(unix)]
use self::unix::OutputPipe;
#[cfg(windows)]
use self::windows::OutputPipe;

impl Output {
    /// Waits until a read would not wait: data, end of file or an error.
    pub async fn readable(&self) -> std::io::Result<()> {
        self.0.readable().await
    }
}

impl tokio::io::AsyncRead for Output {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

/// A started process.
#[derive(Debug)]
pub struct Child {
    pub pid: u32,
    /// Read ends of the child's stdout and stderr, until [`Child::output`]
    /// takes them.
    pub(crate) pipes: Option<(PipeEnd, PipeEnd)>,
    pub tree: Tree,
    /// The leader's exit status.
    pub exit: tokio::sync::oneshot::Receiver<Exit>,
    /// Set when this run could not be tracked as well as it should (on
    /// Linux: not placed in its cgroup leaf, so it runs on process group +
    /// marker alone); say it once.
    pub warning: Option<String>,
}

impl Child {
    /// The child's stdout and stderr, registered with the runtime (call on
    /// it). They are handed out once: a second call is an error.
    pub fn output(&mut self) -> std::io::Result<(Output, Output)> {
        let (stdout, stderr) = self
            .pipes
            .take()
            .ok_or_else(|| std::io::Error::other("the output of this child was taken already"))?;
        Ok((Output::new(stdout)?, Output::new(stderr)?))
    }
}

/// Resolves when `is_empty` says the tree is empty. Polls, 5 ms doubling
/// to 100 ms: this runs only while a stop or an exit is under way. While
/// the tree cannot be read it keeps trying, backing off to 1 s, and does
/// not resolve: `read` hears the outcome of every attempt (the error, or
/// `None` when the tree could be read), to say when reading starts to fail
/// and when it works again.
pub(crate) async fn until_empty(
    mut is_empty: impl FnMut() -> std::io::Result<bool>,
    mut read: impl FnMut(Option<&std::io::Error>),
) {
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        let cap = match is_empty() {
            Ok(true) => {
                read(None);
                return;
            }
            Ok(false) => {
                read(None);
                std::time::Duration::from_millis(100)
            }
            Err(e) => {
                read(Some(&e));
                std::time::Duration::from_secs(1)
            }
        };
        pause = (pause * 2).min(cap);
        tokio::time::sleep(pause).await;
    }
}

/// Whether `sig` can reach a program on this system, or what to use
/// instead: Unix signals here, not Windows' console events.
#[cfg(unix)]
pub(crate) fn check_signal(sig: ward_core::Signal) -> Result<(), String> {
    if sig.is_console_event() {
        return Err(format!(
            "{sig} is a Windows console event; on Unix use a signal: \"TERM\" (the default), \
             or \"INT\", which is what Ctrl-C sends in a terminal"
        ));
    }
    Ok(())
}

/// The `stop_signal` of a program that does not set one.
#[cfg(unix)]
pub(crate) const DEFAULT_STOP_SIGNAL: ward_core::Signal = ward_core::Signal::Term;

/// Whether `signal` can reach `program`: any signal reaches any Unix
/// process.
#[cfg(unix)]
pub(crate) fn check_stop_signal(
    _program: &str,
    _cwd: &std::path::Path,
    _path: Option<&str>,
    _signal: ward_core::Signal,
) -> Result<(), String> {
    Ok(())
}

/// The command that runs `line` in the system's shell (`shell = true`).
#[cfg(unix)]
pub(crate) fn shell(line: &str) -> Vec<String> {
    vec!["sh".to_string(), "-c".to_string(), line.to_string()]
}

/// Whether a program can run as another user or group here.
#[cfg(unix)]
pub(crate) fn check_accounts() -> Result<(), String> {
    Ok(())
}

/// The environment variable every process of a run inherits:
/// `WARD_TREE=<prefix>/<tree name>`, where the prefix names one start of one
/// ward daemon (its pid and start time), so that a sweep or a sentinel never
/// touches another ward's processes.
pub const MARKER_VAR: &str = "WARD_TREE";

#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// Names ward's cgroup directory, e.g. `ward-<pid>`. One path component.
    #[cfg_attr(windows, allow(dead_code))]
    pub name: String,
    /// Do not use cgroups even where possible (process groups and the
    /// environment marker only). For tests of the fallback, and for users
    /// who want ward out of the cgroup tree.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub no_cgroup: bool,
}

/// One process to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Program and arguments; the program is looked up in the child's PATH
    /// when it has no `/`, and relative to `cwd` when it has one.
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    /// Added to ward's own environment (overriding the same names).
    pub env: Vec<(String, String)>,
    /// Run as this user (name or numeric uid): primary group, supplementary
    /// groups, HOME, USER and LOGNAME follow it. Needs ward to be root
    /// unless it is ward's own user.
    pub user: Option<String>,
    /// Primary group (name or gid), overriding the user's.
    pub group: Option<String>,
    /// Names the cgroup leaf and ends the marker, e.g. `api.0.r17`. One path
    /// component, unique among the live runs of this ward.
    pub tree_name: String,
}

/// A signal ward sends to a program (the names its config and CLI use;
/// the shell maps the engine's to these). On Unix each is the signal of
/// that name ([`signal_number`], and [`signal_name`] back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Windows' console events (on Unix, what a terminal's keys send:
    /// SIGINT and SIGQUIT; but [`check_signal`] refuses them there).
    CtrlC,
    CtrlBreak,
}

/// How a process ended, as the system said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with a code.
    Code(i32),
    /// A signal (its number) ended it, dumping core or not.
    Signal { number: i32, core_dumped: bool },
}

/// One live run's process tree, as the state file keeps it: enough for a
/// later start of ward to find what this one left running without
/// mistaking a recycled pid for it ([`sweep`]). Made by [`Tree::record`];
/// what is in it is this module's business (on Unix: the leader's pid and
/// start time, the process group, the cgroup leaf, the environment
/// marker; a Job Object's name on Windows).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TreeRecord {
    pub(crate) pid: u32,
    /// [`start_time`] of `pid` when it was spawned.
    pub(crate) start_time: u64,
    pub(crate) pgid: i32,
    /// The run's cgroup leaf, if it had one.
    pub(crate) cgroup: Option<PathBuf>,
    /// The run's `WARD_TREE` marker.
    pub(crate) marker: String,
}

/// One start of ward, recorded (in the state file) before its first spawn:
/// enough for the next start on the same state dir to find whatever this
/// one left running if it dies together with its sentinel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// ward's cgroup root, if it had one.
    pub cgroup_root: Option<PathBuf>,
    /// `<pid>.<start time>`: every marker of this start begins with it.
    pub marker_prefix: String,
}
