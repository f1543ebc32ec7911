//! What Windows asks of ward itself, as words the daemon understands:
//! Ctrl-C, Ctrl-Break, the console closing, the user logging off or the
//! system shutting down all ask it to stop. Nothing asks for a reload
//! (`ward reload` does).

use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close, ctrl_shutdown};

/// What ward is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// Stop (again: kill at once).
    Stop,
    /// Never sent on Windows; the daemon's answer is shared with Unix.
    #[allow(dead_code)]
    Hangup,
}

/// Listens for the console events ward answers, on the runtime, and hands
/// each to `each` until `each` returns false. Must be called inside the
/// runtime.
pub fn listen(mut each: impl FnMut(Asked) -> bool + Send + 'static) -> std::io::Result<()> {
    let mut c = ctrl_c()?;
    let mut brk = ctrl_break()?;
    let mut close = ctrl_close()?;
    let mut shutdown = ctrl_shutdown()?;
    tokio::spawn(async move {
        loop {
            let asked = tokio::select! {
                Some(()) = c.recv() => Asked::Stop,
                Some(()) = brk.recv() => Asked::Stop,
                Some(()) = close.recv() => Asked::Stop,
                Some(()) = shutdown.recv() => Asked::Stop,
                else => return,
            };
            if !each(asked) {
                return;
            }
        }
    });
    Ok(())
}
