//! Console events: how a graceful stop reaches a Windows program.
//!
//! `GenerateConsoleCtrlEvent` reaches the processes attached to the
//! caller's console, and a process is attached to at most one console.
//! Each program has a console of its own, so ward would have to leave its
//! own to send one. Instead a copy of ward (`ward.exe` with
//! [`HELPER_ARG`], started with no console) attaches to the program's
//! console, ignores the event itself, sends it to the whole console, and
//! exits; ward waits for it (at most [`HELPER_WAIT`]).

use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use windows_sys::Win32::System::Console::{
    AttachConsole, FreeConsole, GenerateConsoleCtrlEvent, SetConsoleCtrlHandler, CTRL_BREAK_EVENT,
    CTRL_C_EVENT,
};

use super::super::Signal;

/// The first argument that makes `ward.exe` the console-event helper.
pub const HELPER_ARG: &str = "--ward-console-event";

/// How long ward waits for the helper.
const HELPER_WAIT: Duration = Duration::from_secs(5);

/// Sends `sig` (Ctrl-C or Ctrl-Break) to the console of process `pid`,
/// through `helper` (ward's executable). Blocks until the helper is done.
pub(crate) fn send(helper: &Path, pid: u32, sig: Signal) -> io::Result<()> {
    use std::os::windows::process::CommandExt;
    use windows_sys::Win32::System::Threading::DETACHED_PROCESS;
    let (event, sig) = match sig {
        Signal::CtrlC => ("ctrl-c", "Ctrl-C"),
        Signal::CtrlBreak => ("ctrl-break", "Ctrl-Break"),
        _ => return Err(io::Error::from(io::ErrorKind::Unsupported)),
    };
    // Not while a program's pipe ends are inheritable for its own spawn.
    let spawned = {
        let _one_at_a_time = super::spawn::one_at_a_time();
        Command::new(helper)
            .args([HELPER_ARG, &pid.to_string(), event])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .creation_flags(DETACHED_PROCESS)
            .spawn()
    };
    let mut child = spawned.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot start {} to send {sig}: {e}", helper.display()),
        )
    })?;
    let deadline = Instant::now() + HELPER_WAIT;
    loop {
        if let Some(status) = child.try_wait()? {
            return match status.code() {
                Some(0) => Ok(()),
                Some(code) => Err(io::Error::other(format!(
                    "cannot send {sig} to process {pid}: {}",
                    io::Error::from_raw_os_error(code)
                ))),
                None => Err(io::Error::other(format!(
                    "cannot send {sig} to process {pid}"
                ))),
            };
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!(
                "sending {sig} to process {pid} took more than {} s",
                HELPER_WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// When this process was started as the console-event helper, does the
/// helper's work and returns its exit code: 0, or the Windows error code
/// of the step that failed. `None` otherwise. Call first thing in `main`.
pub fn run_helper() -> Option<i32> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some(HELPER_ARG) {
        return None;
    }
    let (Some(pid), Some(event)) = (args.next(), args.next()) else {
        return Some(87); // ERROR_INVALID_PARAMETER
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return Some(87);
    };
    let event = match event.as_str() {
        "ctrl-c" => CTRL_C_EVENT,
        "ctrl-break" => CTRL_BREAK_EVENT,
        _ => return Some(87),
    };
    unsafe extern "system" fn ignore(_event: u32) -> windows_sys::core::BOOL {
        1
    }
    let last = || {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(1)
            .max(1)
    };
    // SAFETY: console calls with plain arguments; `ignore` is a valid
    // handler for the life of the process.
    unsafe {
        FreeConsole();
        if AttachConsole(pid) == 0 {
            return Some(last());
        }
        if SetConsoleCtrlHandler(Some(ignore), 1) == 0 {
            return Some(last());
        }
        if GenerateConsoleCtrlEvent(event, 0) == 0 {
            return Some(last());
        }
    }
    // The event is delivered on a thread of each receiving process; this
    // process is one of them and must not exit before its own copy is.
    std::thread::sleep(Duration::from_millis(50));
    Some(0)
}
