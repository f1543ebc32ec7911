//! Windows: every run in a Job Object of its own (created before the
//! program runs a single instruction: the process starts suspended, joins
//! the job, then resumes), its output through overlapped named pipes, its
//! graceful stop by a console event, and its hard stop by ending the job.
//!
//! - A job is made with `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`: only ward
//!   holds its handle, so when ward ends, however it ends, Windows ends
//!   every process of every run. Nothing needs a sentinel or a sweep.
//! - Every program gets a console of its own, without a window
//!   (`CREATE_NO_WINDOW`): Ctrl-C at ward's console reaches
//!   ward alone, which then stops the programs in order; and a console
//!   event sent to a program's console reaches its whole tree. Sending one
//!   means attaching to that console, which a process can do for one
//!   console at a time: a short-lived copy of ward does it
//!   ([`console::run_helper`]), so that ward keeps its own console.
//! - Handles are not inherited unless listed: each spawn hands the child
//!   exactly its three standard handles (`PROC_THREAD_ATTRIBUTE_HANDLE_LIST`).

mod check;
mod console;
mod job;
pub mod signals;
mod spawn;

use std::io;
use std::os::windows::io::{FromRawHandle, OwnedHandle};
use std::process::Command;
use std::sync::Arc;

use tokio::net::windows::named_pipe::NamedPipeServer;

use super::{InitOptions, Launch, Output, Signal};

pub(crate) use self::check::{check_command, check_stop_signal};
pub use self::console::run_helper;
pub use self::job::{start_time, Tree};

/// The `stop_signal` of a program that does not set one: what Ctrl-Break
/// at a console does, which every console program can catch, and which
/// ends one that does not.
pub(crate) const DEFAULT_STOP_SIGNAL: ward_core::Signal = ward_core::Signal::CtrlBreak;

/// Whether `sig` can reach a program here: the two console events, and
/// KILL (the whole job, at once).
pub(crate) fn check_signal(sig: ward_core::Signal) -> Result<(), String> {
    use ward_core::Signal as S;
    match sig {
        S::CtrlC | S::CtrlBreak | S::Kill => Ok(()),
        _ => Err(format!(
            "{sig} is a Unix signal; on Windows a program is stopped with \"ctrl-break\" (the \
             default), \"ctrl-c\", or \"KILL\" (its whole tree at once, no chance to clean up)"
        )),
    }
}

/// `shell = true`: the line goes to cmd.exe (`/d`: no AutoRun commands).
pub(crate) fn shell(line: &str) -> Vec<String> {
    ["cmd.exe", "/d", "/c", line].map(str::to_string).to_vec()
}

/// Programs run as ward's own account on Windows.
pub(crate) fn check_accounts() -> Result<(), String> {
    Err(
        "on Windows a program runs as ward's own account: run ward's service under the \
         account the program needs (ward install --account NAME), and leave out user and group"
            .into(),
    )
}

pub(crate) fn check_user(_user: &str) -> Result<(), String> {
    check_accounts()
}

pub(crate) fn check_group(_group: &str) -> Result<(), String> {
    check_accounts()
}

/// Log files cannot be given to a group on Windows.
pub(crate) fn group_id(group: &str) -> io::Result<u32> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "log files cannot be given to group {group:?} on Windows; leave out [ward.logs] group"
        ),
    ))
}

/// What ward inherited stays ward's: its standard handles, which came
/// inheritable from its parent, are made not inheritable, so that no
/// process ward starts (through `std::process`, which lets a child inherit
/// every inheritable handle) holds its parent's console or pipes open.
/// Its programs get only the handles they are given
/// (`PROC_THREAD_ATTRIBUTE_HANDLE_LIST`).
pub fn close_inherited_fds() -> io::Result<()> {
    use windows_sys::Win32::Foundation::{SetHandleInformation, HANDLE_FLAG_INHERIT};
    use windows_sys::Win32::System::Console::{
        GetStdHandle, STD_ERROR_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
    };
    for which in [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE] {
        // SAFETY: this process's standard handle (or null), not closed.
        unsafe {
            let handle = GetStdHandle(which);
            if !handle.is_null() && handle != windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE {
                SetHandleInformation(handle, HANDLE_FLAG_INHERIT, 0);
            }
        }
    }
    Ok(())
}

/// No limit on open handles worth checking against.
pub fn open_files_limit() -> Option<u64> {
    None
}

/// Makes `cmd` start the daemon away from the console it was started
/// from, for `ward up --detach`: without a console, so that Ctrl-C or
/// closing the console does not reach it. (Not in a new process group:
/// that disables Ctrl-C for the process and everything it starts, and the
/// programs would then ignore a `"ctrl-c"` stop.)
pub fn detach(cmd: &mut Command) {
    use std::os::windows::process::CommandExt;
    use windows_sys::Win32::System::Threading::DETACHED_PROCESS;
    // The daemon must not hold this process's console or pipes open (whoever
    // reads `ward up --detach`'s output waits for their end).
    let _ = close_inherited_fds();
    cmd.creation_flags(DETACHED_PROCESS);
}

/// Nothing to sweep: a job ends with ward (`KILL_ON_JOB_CLOSE`).
pub fn sweep_starts(_starts: &[super::Start], _own_root: Option<&std::path::Path>) -> usize {
    0
}

/// Nothing is adopted on Windows: a process whose parent ends stays in
/// its job, and so in its run.
pub fn end_adopted(_keep: Option<u32>, _grace: std::time::Duration) -> usize {
    0
}

/// Ends what a previous ward left running. Its jobs ended with it, so
/// normally nothing: this is the safety net for a recorded leader that
/// is somehow still alive (its creation time must still match: a
/// recycled pid belongs to someone else). Returns how many were ended.
pub fn sweep(records: &[super::TreeRecord]) -> usize {
    records
        .iter()
        .filter(|r| r.start_time != 0 && start_time(r.pid) == Some(r.start_time))
        .filter(|r| job::terminate_pid(r.pid))
        .count()
}

/// The process is gone (or has exited).
pub(crate) fn has_exited(pid: u32) -> bool {
    job::has_exited(pid)
}

/// ward's supervision of its children, set up by [`init`].
pub struct Supervision {
    ctx: Arc<spawn::Context>,
}

/// Sets up supervision: the marker prefix of this start. Jobs need no
/// set-up of their own.
pub fn init(opts: InitOptions) -> io::Result<Supervision> {
    init_without_sentinel(opts)
}

/// [`init`]: there is no sentinel on Windows (jobs end with ward).
pub fn init_without_sentinel(_opts: InitOptions) -> io::Result<Supervision> {
    let pid = std::process::id();
    let prefix = format!("{pid}.{}", start_time(pid).unwrap_or(0));
    Ok(Supervision {
        ctx: Arc::new(spawn::Context {
            prefix,
            helper: std::env::current_exe().ok(),
        }),
    })
}

impl Supervision {
    /// No cgroups on Windows.
    pub fn cgroups(&self) -> Option<&std::path::Path> {
        None
    }

    /// Jobs see the whole tree: nothing to say.
    pub fn fallback_reason(&self) -> Option<&str> {
        None
    }

    pub fn start_record(&self) -> super::Start {
        super::Start {
            cgroup_root: None,
            marker_prefix: self.ctx.prefix.clone(),
        }
    }

    #[allow(dead_code)] // for tests and diagnostics
    pub fn marker_prefix(&self) -> &str {
        &self.ctx.prefix
    }

    pub fn sentinel_pid(&self) -> Option<u32> {
        None
    }

    pub fn start(&self) -> io::Result<Spawner> {
        Ok(Spawner {
            ctx: self.ctx.clone(),
        })
    }

    /// Nothing to remove: each job goes with its last handle.
    pub fn cleanup(&self) {}
}

/// Starts processes; cheap to clone. Each spawn runs on the blocking pool.
#[derive(Clone)]
pub struct Spawner {
    ctx: Arc<spawn::Context>,
}

impl Spawner {
    /// Starts `launch` in a new job: stdin from NUL, stdout and stderr to
    /// pipes, a console of its own without a window, `WARD_TREE=<marker>` in its
    /// environment. Errors say what failed ("cannot run server.exe: ...").
    pub async fn spawn(&self, launch: Launch) -> io::Result<super::Child> {
        let ctx = self.ctx.clone();
        tokio::task::spawn_blocking(move || spawn::spawn_now(&ctx, launch))
            .await
            .map_err(|_| io::Error::other("spawning panicked"))?
    }
}

/// Signal numbers, for names only: a Windows process ends with an exit
/// code, never by a signal; ward names its signals with the numbers Linux
/// gives them.
const NUMBERS: [(Signal, i32, &str); 15] = [
    (Signal::Hup, 1, "HUP"),
    (Signal::Int, 2, "INT"),
    (Signal::Quit, 3, "QUIT"),
    (Signal::Abrt, 6, "ABRT"),
    (Signal::Kill, 9, "KILL"),
    (Signal::Usr1, 10, "USR1"),
    (Signal::Usr2, 12, "USR2"),
    (Signal::Alrm, 14, "ALRM"),
    (Signal::Term, 15, "TERM"),
    (Signal::Cont, 18, "CONT"),
    (Signal::Stop, 19, "STOP"),
    (Signal::Tstp, 20, "TSTP"),
    (Signal::Winch, 28, "WINCH"),
    (Signal::CtrlC, 1000, "CTRL_C"),
    (Signal::CtrlBreak, 1001, "CTRL_BREAK"),
];

pub fn signal_number(sig: Signal) -> i32 {
    NUMBERS
        .iter()
        .find(|(s, _, _)| *s == sig)
        .map_or(0, |(_, n, _)| *n)
}

pub fn signal_name(num: i32) -> Option<&'static str> {
    NUMBERS
        .iter()
        .find(|(_, n, _)| *n == num)
        .map(|(_, _, name)| *name)
}

/// Windows' side of [`Output`]: an overlapped named pipe's
/// server end.
pub(crate) type OutputPipe = NamedPipeServer;

impl Output {
    /// Registers the server end of a pipe made by the spawn: call on the
    /// runtime.
    pub(crate) fn new(handle: OwnedHandle) -> io::Result<Output> {
        use std::os::windows::io::IntoRawHandle;
        // SAFETY: an open named-pipe server handle opened for overlapped
        // reads, handed over: tokio owns it from here, and closes it if it
        // cannot register it.
        unsafe { NamedPipeServer::from_raw_handle(handle.into_raw_handle()) }.map(Output)
    }

    /// A pipe's buffer is set when it is made (64 KiB here).
    pub fn enlarge(&self, _bytes: usize) -> io::Result<()> {
        Ok(())
    }
}

/// A handle from a raw one a Windows call returned, or that call's error.
pub(crate) fn owned(raw: windows_sys::Win32::Foundation::HANDLE) -> io::Result<OwnedHandle> {
    use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
    if raw.is_null() || raw == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a handle just returned by a successful call, owned by no one
    // else.
    Ok(unsafe { OwnedHandle::from_raw_handle(raw) })
}

/// A Windows call's `BOOL`, as a result.
pub(crate) fn ok(done: windows_sys::core::BOOL) -> io::Result<()> {
    if done == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `s` as a NUL-terminated UTF-16 string.
pub(crate) fn wide(s: impl AsRef<std::ffi::OsStr>) -> Vec<u16> {
    use std::os::windows::ffi::OsStrExt;
    s.as_ref().encode_wide().chain(Some(0)).collect()
}
