//! The reaper: collects the exit status of every child of ward, its own runs
//! and the orphans it inherits as subreaper (or as PID 1), and hands each
//! run's status to whoever holds that run's receiver.
//!
//! One OS thread per process, started once and shared by every `Spawner`,
//! because `waitpid(-1)` is process-wide. It blocks in `waitid(P_ALL,
//! WNOWAIT)` (which waits without reaping), then reaps everything waitable
//! under the table lock. The spawner holds that same lock from fork until the
//! pid is registered, so a child that exits at once can never be reaped
//! before its pid is in the table; std's own `waitpid` on a child whose exec
//! failed likewise runs under the lock and so always finds its child.
//!
//! A thread rather than a task on SIGCHLD: no tokio worker ever blocks on the
//! lock while a fork is under way, no signal can be coalesced away, and the
//! reaper does not die with whichever runtime happened to start it.

use std::collections::HashMap;
use std::io;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::sync::oneshot;
use ward_core::ExitStatus;

#[derive(Default)]
pub(crate) struct Table {
    waiting: HashMap<libc::pid_t, oneshot::Sender<ExitStatus>>,
    /// Bumped on every registration, so the reaper, idle because ward had
    /// no child, knows when to look again (no lost wake-up).
    spawns: u64,
}

impl Table {
    /// Call with the lock held since before the fork of `pid`.
    pub fn register(&mut self, pid: u32) -> oneshot::Receiver<ExitStatus> {
        let (tx, rx) = oneshot::channel();
        self.waiting.insert(pid as libc::pid_t, tx);
        self.spawns += 1;
        reaper().idle.notify_all();
        rx
    }

    /// Reaps every waitable child; statuses of unregistered pids (orphans,
    /// the sentinel, anything not started through a `Spawner`) are dropped.
    fn reap_all(&mut self) -> usize {
        let mut reaped = 0;
        loop {
            let mut status = 0;
            // SAFETY: status is a valid int for waitpid to fill.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid > 0 {
                reaped += 1;
                if let Some(tx) = self.waiting.remove(&pid) {
                    let _ = tx.send(decode(status));
                }
            } else if pid == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            } else {
                return reaped;
            }
        }
    }
}

struct Reaper {
    table: Mutex<Table>,
    idle: Condvar,
}

fn reaper() -> &'static Reaper {
    static REAPER: OnceLock<Reaper> = OnceLock::new();
    REAPER.get_or_init(|| Reaper {
        table: Mutex::new(Table::default()),
        idle: Condvar::new(),
    })
}

/// The table, locked. Spawns hold this across fork + register.
pub(crate) fn lock() -> MutexGuard<'static, Table> {
    // A panic while holding the lock leaves the table consistent (every
    // operation on it is a single insert or remove), so poison is ignored.
    reaper().table.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the reaper thread once per process; later calls do nothing.
pub(crate) fn start() -> io::Result<()> {
    static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            std::thread::Builder::new()
                .name("ward-reaper".into())
                .spawn(run)
                .map(drop)
                .map_err(|e| format!("cannot start the reaper thread: {e}"))
        })
        .clone()
        .map_err(io::Error::other)
}

fn run() {
    loop {
        let seen = lock().spawns;
        // SAFETY: siginfo_t is a plain C struct; zeroed is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: info is valid for waitid to fill; WNOWAIT leaves the child
        // waitable, so the status is only consumed below, under the lock.
        let rc = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if rc == -1 {
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::ECHILD) => {
                    // No child at all: sleep until a spawn registers one.
                    // (An orphan can only be handed to ward while one of its
                    // ancestors, a child of ward, exists.)
                    let r = reaper();
                    let table = lock();
                    let _idle = r
                        .idle
                        .wait_while(table, |t| t.spawns == seen)
                        .unwrap_or_else(|e| e.into_inner());
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
            continue;
        }
        if lock().reap_all() == 0 {
            // Waitable but not reapable by waitpid(-1): someone else reaped it
            // first. Pause so such a case cannot turn into a busy loop.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

pub(crate) fn decode(status: libc::c_int) -> ExitStatus {
    if libc::WIFSIGNALED(status) {
        ExitStatus::Signal {
            signal: libc::WTERMSIG(status),
            core_dumped: libc::WCOREDUMP(status),
        }
    } else {
        ExitStatus::Code {
            code: libc::WEXITSTATUS(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_wait_statuses() {
        assert_eq!(decode(0), ExitStatus::Code { code: 0 });
        assert_eq!(decode(3 << 8), ExitStatus::Code { code: 3 });
        assert_eq!(
            decode(libc::SIGTERM),
            ExitStatus::Signal {
                signal: libc::SIGTERM,
                core_dumped: false
            }
        );
        assert_eq!(
            decode(libc::SIGSEGV | 0x80),
            ExitStatus::Signal {
                signal: libc::SIGSEGV,
                core_dumped: true
            }
        );
    }
}
