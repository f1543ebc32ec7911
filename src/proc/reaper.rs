//! The reaper: collects the exit status of every child of ward, its own runs
//! and the orphans it inherits as subreaper (or as PID 1), and hands each
//! run's status to whoever holds that run's receiver.
//!
//! One OS thread per process, started once and shared by every `Spawner`,
//! because `waitpid(-1)` is process-wide. It blocks in `waitid(P_ALL,
//! WNOWAIT)`, which names a waitable child without reaping it, then decides
//! under the table lock. A registered pid is reaped and its status sent. An
//! unregistered one may be a run whose spawner has not registered it yet
//! (the child can exec and exit before `clone` even returns): while any
//! spawn that was under way when the exit was seen is still under way, the
//! reaper waits for it, so no run's status is ever taken for an orphan's.
//! Spawns themselves never hold the lock, so several run at once.
//!
//! A thread rather than a task on SIGCHLD: no tokio worker ever blocks on the
//! lock, no signal can be coalesced away, and the reaper does not die with
//! whichever runtime happened to start it.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::Exit;
use tokio::sync::oneshot;

#[derive(Default)]
pub(crate) struct Table {
    waiting: HashMap<libc::pid_t, oneshot::Sender<Exit>>,
    /// Spawns between their start and their registration, by ticket.
    in_flight: BTreeSet<u64>,
    next_ticket: u64,
    /// Bumped on every registration, so the reaper, idle because ward had
    /// no child, knows when to look again (no lost wake-up).
    spawns: u64,
}

/// A spawn under way; hand it back to [`Table::register`] or
/// [`Table::abandon`].
#[must_use]
pub(crate) struct Ticket(u64);

impl Table {
    /// Call before creating the child.
    pub fn begin(&mut self) -> Ticket {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.in_flight.insert(ticket);
        Ticket(ticket)
    }

    /// The spawn of `ticket` made `pid`.
    pub fn register(&mut self, ticket: Ticket, pid: u32) -> oneshot::Receiver<Exit> {
        let (tx, rx) = oneshot::channel();
        self.waiting.insert(pid as libc::pid_t, tx);
        self.spawns += 1;
        self.end(ticket);
        rx
    }

    /// The spawn of `ticket` made no process.
    pub fn abandon(&mut self, ticket: Ticket) {
        self.end(ticket);
    }

    fn end(&mut self, ticket: Ticket) {
        self.in_flight.remove(&ticket.0);
        reaper().changed.notify_all();
    }

    /// Reaps `pid` (known to be waitable) and sends its status to its
    /// run's receiver, if it has one.
    fn reap(&mut self, pid: libc::pid_t) {
        use rustix::process::{waitpid, Pid, WaitOptions};
        let Some(child) = Pid::from_raw(pid) else {
            return;
        };
        loop {
            match waitpid(Some(child), WaitOptions::NOHANG) {
                Err(rustix::io::Errno::INTR) => continue,
                Ok(Some((done, status))) if done == child => {
                    if let Some(tx) = self.waiting.remove(&pid) {
                        let _ = tx.send(decode(status.as_raw()));
                    }
                }
                _ => {}
            }
            return;
        }
    }
}

struct Reaper {
    table: Mutex<Table>,
    /// A registration, or a spawn's end.
    changed: Condvar,
}

fn reaper() -> &'static Reaper {
    static REAPER: OnceLock<Reaper> = OnceLock::new();
    REAPER.get_or_init(|| Reaper {
        table: Mutex::new(Table::default()),
        changed: Condvar::new(),
    })
}

/// The table, locked; never held across a spawn.
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
    let r = reaper();
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
                    let table = lock();
                    let _idle = r
                        .changed
                        .wait_while(table, |t| t.spawns == seen)
                        .unwrap_or_else(|e| e.into_inner());
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
            continue;
        }
        // SAFETY: waitid filled info for a child that exited.
        let pid = unsafe { info.si_pid() };
        if pid <= 0 {
            // Waitable but gone by now (someone else reaped it): pause so
            // such a case cannot turn into a busy loop.
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let table = lock();
        // The spawns that may have made `pid` are those under way now.
        let horizon = table.in_flight.last().copied();
        let mut table = r
            .changed
            .wait_while(table, |t| {
                !t.waiting.contains_key(&pid)
                    && horizon.is_some_and(|h| t.in_flight.first().is_some_and(|&f| f <= h))
            })
            .unwrap_or_else(|e| e.into_inner());
        table.reap(pid);
    }
}

pub(crate) fn decode(status: libc::c_int) -> Exit {
    if libc::WIFSIGNALED(status) {
        Exit::Signal {
            number: libc::WTERMSIG(status),
            core_dumped: libc::WCOREDUMP(status),
        }
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_wait_statuses() {
        assert_eq!(decode(0), Exit::Code(0));
        assert_eq!(decode(3 << 8), Exit::Code(3));
        assert_eq!(
            decode(libc::SIGTERM),
            Exit::Signal {
                number: libc::SIGTERM,
                core_dumped: false
            }
        );
        assert_eq!(
            decode(libc::SIGSEGV | 0x80),
            Exit::Signal {
                number: libc::SIGSEGV,
                core_dumped: true
            }
        );
    }
}
