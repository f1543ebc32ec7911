//! Work the driver hands off so that it never waits on a disk: a thread
//! per kind of write (the event journal, ward's own log, `state.json`)
//! behind a short queue.
//!
//! The driver only offers: `offer` never blocks, and gives the job back
//! when the queue is full (the caller drops it and counts, or keeps the
//! newest to offer again). A disk that hangs therefore stalls the writes,
//! never supervision: programs are still restarted and the API answers.
//! The thread reports what it wants said (a write failing, then working
//! again) through [`Worker::take_reports`], and wakes the driver with the
//! `wake` it was given so that the report is said without waiting for the
//! next event.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A writer thread and its queue; its jobs report `R` back.
pub struct Worker<T: Send + 'static, R: Send + 'static = String> {
    tx: Option<SyncSender<T>>,
    reports: Arc<Mutex<Vec<R>>>,
    /// Closed by the thread when it has done every job and ends.
    done: Receiver<()>,
}

impl<T: Send + 'static, R: Send + 'static> Worker<T, R> {
    /// Starts the thread `name` doing `job` for each job offered, at most
    /// `queue` waiting. `wake` is called when a job has a report.
    pub fn start(
        name: &str,
        queue: usize,
        wake: impl Fn() + Send + 'static,
        mut job: impl FnMut(T) -> Option<R> + Send + 'static,
    ) -> Worker<T, R> {
        let (tx, rx) = sync_channel::<T>(queue);
        let (done_tx, done) = sync_channel::<()>(0);
        let reports: Arc<Mutex<Vec<R>>> = Arc::default();
        let said = Arc::clone(&reports);
        let stall = stalled(name);
        let spawned = std::thread::Builder::new()
            .name(format!("ward-{name}"))
            .spawn(move || {
                let _done = done_tx;
                if stall {
                    // A test build asked for a disk that never answers.
                    loop {
                        std::thread::park();
                    }
                }
                for item in rx {
                    if let Some(report) = job(item) {
                        said.lock().unwrap_or_else(|e| e.into_inner()).push(report);
                        wake();
                    }
                }
            });
        let tx = match spawned {
            Ok(_) => Some(tx),
            // No thread: every offer is refused, and counted as not written.
            Err(_) => None,
        };
        Worker { tx, reports, done }
    }

    /// Queues `item`, or gives it back when the queue is full (or the
    /// thread is gone).
    pub fn offer(&self, item: T) -> Result<(), T> {
        match &self.tx {
            Some(tx) => tx.try_send(item).map_err(|e| match e {
                TrySendError::Full(item) | TrySendError::Disconnected(item) => item,
            }),
            None => Err(item),
        }
    }

    /// What the thread reported since the last call, in order.
    pub fn take_reports(&self) -> Vec<R> {
        std::mem::take(&mut *self.reports.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// No more jobs: waits up to `within` for those queued to be done.
    /// False when the thread did not finish in time (a disk that hangs).
    pub fn finish(&mut self, within: Duration) -> bool {
        self.tx = None;
        matches!(
            self.done.recv_timeout(within),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        )
    }
}

/// Whether a test build asked this writer to stall
/// (`WARD_TEST_STALL_WRITES=events.jsonl,state.json,ward.log`): how the
/// tests show that a hung disk does not stop supervision. Release builds
/// never stall.
fn stalled(name: &str) -> bool {
    cfg!(debug_assertions)
        && std::env::var("WARD_TEST_STALL_WRITES")
            .is_ok_and(|names| names.split(',').any(|n| n.trim() == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_done_in_order_and_reports_come_back() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let wakes = Arc::clone(&woken);
        let mut worker = Worker::start(
            "unit",
            4,
            move || {
                wakes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            },
            move |n: u32| {
                record.lock().unwrap().push(n);
                (n == 2).then(|| "two".to_string())
            },
        );
        for n in 1..=3 {
            worker.offer(n).unwrap();
        }
        assert!(worker.finish(Duration::from_secs(10)));
        assert_eq!(*seen.lock().unwrap(), vec![1, 2, 3]);
        assert_eq!(worker.take_reports(), vec!["two".to_string()]);
        assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(worker.offer(4), Err(4), "finished: nothing more is taken");
    }

    #[test]
    fn a_full_queue_gives_the_job_back_at_once() {
        let (gate_tx, gate) = std::sync::mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let mut worker: Worker<u32> = Worker::start(
            "gated",
            1,
            || {},
            move |_: u32| {
                let _ = gate.lock().unwrap().recv();
                None
            },
        );
        // One job held by the thread, one in the queue; the next is refused.
        let mut refused = None;
        for n in 0..10 {
            if let Err(n) = worker.offer(n) {
                refused = Some(n);
                break;
            }
        }
        assert!(refused.is_some(), "a full queue took every job");
        drop(gate_tx);
        assert!(worker.finish(Duration::from_secs(10)));
    }
}
