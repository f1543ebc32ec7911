//! The shutdown token: set once, by a signal from the service manager, by
//! Ctrl-C, or by the program itself; waited on by any thread.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Fires once; every clone sees it. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl Shutdown {
    /// A token only [`Shutdown::fire`] sets.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// A token that SIGTERM and SIGINT set (on Unix; a thread of its own
    /// watches for them). A second one ends the process at once with exit
    /// code 130: a program stuck in its shutdown can still be stopped.
    pub fn on_signals() -> Shutdown {
        let token = Shutdown::new();
        #[cfg(unix)]
        watch_signals(token.clone());
        #[cfg(windows)]
        watch_console(token.clone());
        token
    }

    /// Sets the token (again: no effect) and wakes every waiter.
    pub fn fire(&self) {
        let (set, woken) = &*self.inner;
        *set.lock().unwrap_or_else(|e| e.into_inner()) = true;
        woken.notify_all();
    }

    pub fn is_set(&self) -> bool {
        *self.inner.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until the token is set.
    pub fn wait(&self) {
        let (set, woken) = &*self.inner;
        let guard = set.lock().unwrap_or_else(|e| e.into_inner());
        let _set = woken
            .wait_while(guard, |set| !*set)
            .unwrap_or_else(|e| e.into_inner());
    }

    /// Blocks until the token is set or `timeout` passes; whether it is set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (set, woken) = &*self.inner;
        let mut guard = set.lock().unwrap_or_else(|e| e.into_inner());
        while !*guard {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = woken
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

#[cfg(unix)]
fn watch_signals(token: Shutdown) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGTERM, SIGINT]) {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!(
                "cannot watch for SIGTERM and SIGINT ({e}); only the program can stop itself"
            );
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("shutdown-signals".into())
        .spawn(move || {
            for _signal in signals.forever() {
                if token.is_set() {
                    std::process::exit(130);
                }
                token.fire();
            }
        });
    if let Err(e) = spawned {
        eprintln!("cannot watch for SIGTERM and SIGINT ({e}); only the program can stop itself");
    }
}

/// The token Ctrl-C, Ctrl-Break and closing the console fire (one per
/// process: the console handler is process-wide).
#[cfg(windows)]
static CONSOLE: std::sync::OnceLock<Shutdown> = std::sync::OnceLock::new();

#[cfg(windows)]
fn watch_console(token: Shutdown) {
    use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;
    unsafe extern "system" fn handler(_event: u32) -> windows_sys::core::BOOL {
        match CONSOLE.get() {
            // A second one: end at once, as on Unix.
            Some(token) if token.is_set() => std::process::exit(130),
            Some(token) => {
                token.fire();
                1
            }
            None => 0,
        }
    }
    if CONSOLE.set(token).is_ok() {
        // SAFETY: the handler is a plain function that lives as long as
        // the process; registering it has no other precondition.
        if unsafe { SetConsoleCtrlHandler(Some(handler), 1) } == 0 {
            eprintln!(
                "cannot watch for Ctrl-C ({}); only the program can stop itself",
                std::io::Error::last_os_error()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clone_sees_it_fire_once_and_waiters_wake() {
        let token = Shutdown::new();
        assert!(!token.wait_timeout(Duration::from_millis(10)));
        let waiter = {
            let token = token.clone();
            std::thread::spawn(move || token.wait())
        };
        token.clone().fire();
        waiter.join().unwrap();
        assert!(token.is_set());
        assert!(token.wait_timeout(Duration::ZERO));
    }

    #[cfg(unix)]
    #[test]
    fn sigterm_fires_the_token() {
        let token = Shutdown::on_signals();
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TERM)
            .unwrap();
        assert!(
            token.wait_timeout(Duration::from_secs(30)),
            "SIGTERM did not fire the token"
        );
    }
}
