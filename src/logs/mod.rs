//! Log capture: every run's stdout and stderr ([`crate::proc::Output`]),
//! drained by a pump into the instance's rotating log file (text or JSON
//! lines), the foreground console and `ward logs -f` followers; and reading
//! the files back for `ward logs`. The rotating file ([`Rotating`]) also
//! holds ward's event journal and its own log.
//!
//! This is the one hot path that bypasses the core. A pump never stalls the
//! child it drains for long: a slow disk or a slow terminal costs dropped
//! lines (counted and reported), not a blocked pipe. See docs/logs.md.

mod console;
mod format;
mod journal;
mod json;
mod pump;
mod rotate;
mod tail;

use std::sync::{Arc, Mutex, MutexGuard};

pub use console::{stdout_colour, Console};
pub use format::rfc3339_now;
pub use journal::JournalSink;
pub use pump::{pump, PumpStats, Sinks};
pub use rotate::log_path;
/// A writer that fails like a full disk, for tests of what writes files.
#[cfg(test)]
pub(crate) use rotate::tests::Flaky;
pub use rotate::{InstanceLog, Kept, Rotating};
pub use tail::{tail, tail_file};

/// What a pump knows about the run it drains (for JSON lines and the
/// console prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLabel {
    pub program: Arc<str>,
    pub index: u32,
    pub run: u64,
    pub pid: u32,
}

/// A panic while a log was locked leaves it as usable as before (at worst
/// with a cut line, which the next write ends): keep logging.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
