//! What the operating system asks of ward itself, as words the daemon
//! understands: on Unix, SIGINT and SIGTERM ask it to stop, SIGHUP that
//! its terminal went away (or, detached, that its config be reloaded).
//! Windows (Ctrl-C, Ctrl-Break, the console closing) fills in the same.

use tokio::signal::unix::{signal, SignalKind};

/// What a signal to ward asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// SIGINT, SIGTERM: stop (again: kill at once).
    Stop,
    /// SIGHUP: the terminal went away, or (detached, PID 1) reload.
    Hangup,
}

/// Listens for the signals ward answers, on the runtime, and hands each to
/// `each` until `each` returns false. Must be called inside the runtime.
pub fn listen(mut each: impl FnMut(Asked) -> bool + Send + 'static) -> std::io::Result<()> {
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            let asked = tokio::select! {
                Some(()) = sigint.recv() => Asked::Stop,
                Some(()) = sigterm.recv() => Asked::Stop,
                Some(()) = sighup.recv() => Asked::Hangup,
                else => return,
            };
            if !each(asked) {
                return;
            }
        }
    });
    Ok(())
}
