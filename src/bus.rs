//! Events fan-out: every event the engine (or the shell) publishes is
//! stamped with wall-clock time and a sequence number, counted
//! ([`crate::stats`]), appended to the journal (`events.jsonl` in the state
//! dir), and sent to live subscribers (`GET /v1/events?follow=true`,
//! `ward events -f`, the restart marks of `ward logs -f`).
//!
//! Events travel typed ([`Stamped`]); they become JSON only at the edges:
//! the journal's writer thread and the API.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;
use ward_core::{Event, EventKind, RunEnd};

use crate::exits::LastExit;

use crate::files::Dir;
use crate::logs::{Kept, Rotating};

/// The journal rotates (once, to `events.jsonl.1`) past this size.
const JOURNAL_MAX: u64 = 16 * 1024 * 1024;

/// ward's own log (`ward.log`, detached mode) rotates past this size.
pub const WARD_LOG_MAX: u64 = 8 * 1024 * 1024;

/// An event on the bus: the engine's (or the shell's) event, stamped.
#[derive(Debug)]
pub struct Stamped {
    /// When ward published it (RFC 3339, UTC, milliseconds).
    pub ts: String,
    /// Its place among this ward's events, from 1.
    pub seq: u64,
    pub event: Event,
}

impl Stamped {
    /// The journal's JSON line for it (what `ward events` prints).
    pub fn line(&self) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            ts: &'a str,
            seq: u64,
            #[serde(flatten)]
            event: Edge<'a>,
        }
        let line = Line {
            ts: &self.ts,
            seq: self.seq,
            event: Edge::of(&self.event),
        };
        serde_json::to_string(&line).unwrap_or_else(|e| {
            format!(
                "{{\"event\":\"unserialisable\",\"error\":{:?}}}",
                e.to_string()
            )
        })
    }
}

/// The journal's lines are made on its writer's thread.
impl Line for Arc<Stamped> {
    fn render(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.line().as_bytes());
    }
}

/// An event as readers see it: the engine's, except that an exit has the
/// same shape as `last_exit` in the status (`{"kind": "exit", "code": 1}`,
/// `{"kind": "signal", "signal": "KILL"}`), not the engine's numbers.
#[derive(Serialize)]
#[serde(untagged)]
enum Edge<'a> {
    Exited {
        #[serde(skip_serializing_if = "Option::is_none")]
        instance: &'a Option<ward_core::InstanceId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        run: &'a Option<ward_core::RunId>,
        event: &'static str,
        status: LastExit,
        uptime_ms: u64,
        failed_start: bool,
    },
    Other(&'a Event),
}

impl<'a> Edge<'a> {
    fn of(event: &'a Event) -> Edge<'a> {
        match &event.kind {
            EventKind::Exited {
                status,
                uptime_ms,
                failed_start,
            } => Edge::Exited {
                instance: &event.instance,
                run: &event.run,
                event: "exited",
                status: LastExit::from_end(&RunEnd::Exited { status: *status }),
                uptime_ms: *uptime_ms,
                failed_start: *failed_start,
            },
            _ => Edge::Other(event),
        }
    }
}

/// How many of the latest events the feed keeps in memory, for a follower
/// that asks for the past first (`ward events -f -n 20`).
pub const RECENT: usize = 1024;

/// The live events, and the latest of them: a follower takes the ones it
/// wants from the past and subscribes in one step, so that it sees each
/// event once, with none missing between the two (the journal may lag:
/// it is written once per turn of the driver loop).
#[derive(Clone)]
pub struct Feed(Arc<std::sync::Mutex<FeedInner>>);

struct FeedInner {
    live: broadcast::Sender<Arc<Stamped>>,
    recent: std::collections::VecDeque<Arc<Stamped>>,
}

impl Feed {
    fn new() -> Feed {
        let (live, _) = broadcast::channel(1024);
        Feed(Arc::new(std::sync::Mutex::new(FeedInner {
            live,
            recent: std::collections::VecDeque::with_capacity(RECENT),
        })))
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, FeedInner> {
        // A panic while holding the lock leaves plain data behind.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, event: Arc<Stamped>) {
        let mut inner = self.inner();
        if inner.recent.len() == RECENT {
            inner.recent.pop_front();
        }
        inner.recent.push_back(Arc::clone(&event));
        // No subscriber is not an error.
        let _ = inner.live.send(event);
    }

    /// The last `n` events this ward published (up to [`RECENT`], oldest
    /// first), and every event after them.
    pub fn subscribe_with_recent(
        &self,
        n: usize,
    ) -> (Vec<Arc<Stamped>>, broadcast::Receiver<Arc<Stamped>>) {
        let inner = self.inner();
        let skip = inner.recent.len().saturating_sub(n);
        let past = inner.recent.iter().skip(skip).cloned().collect();
        (past, inner.live.subscribe())
    }
}

pub struct Bus {
    seq: u64,
    feed: Feed,
    journal: LineFile<Arc<Stamped>>,
    stats: crate::stats::Stats,
}

impl Bus {
    /// `wake` is called when the journal's writer has something to say.
    pub fn new(
        state_dir: Arc<Dir>,
        stats: crate::stats::Stats,
        wake: impl Fn() + Send + 'static,
    ) -> Bus {
        Bus {
            seq: 0,
            feed: Feed::new(),
            journal: LineFile::open(state_dir, "events.jsonl", JOURNAL_MAX, wake),
            stats,
        }
    }

    pub fn subscribe(&self) -> Feed {
        self.feed.clone()
    }

    /// Stamps, counts, journals and broadcasts one event.
    pub fn publish(&mut self, event: Event) -> Arc<Stamped> {
        self.seq += 1;
        let stamped = Arc::new(Stamped {
            ts: crate::logs::rfc3339_now(),
            seq: self.seq,
            event,
        });
        self.stats.record(&stamped.event);
        self.journal.append(Arc::clone(&stamped));
        self.feed.send(Arc::clone(&stamped));
        stamped
    }

    /// Hands buffered journal lines to its writer (see [`LineFile::flush`]);
    /// called once per turn of the driver loop, so a burst of events costs
    /// one write.
    pub fn flush(&mut self, now: bool) -> Option<String> {
        self.journal.flush(now)
    }

    /// When journal lines wait for their hand-off (see [`LineFile::due`]).
    pub fn due(&self) -> Option<std::time::Instant> {
        self.journal.due()
    }

    pub fn journal_path(&self) -> &Path {
        self.journal.path()
    }

    /// Hands over the last lines and waits up to `within` for the journal
    /// to be written (ward is ending).
    pub fn finish(&mut self, within: std::time::Duration) -> bool {
        self.journal.finish(within)
    }
}

/// An append-only file of lines that rotates once (to `NAME.1`) past a
/// size: the event journal, and ward's own log when detached. The driver
/// only gathers a turn's lines; a thread of its own writes them
/// ([`crate::offload`]), so a disk that hangs never holds up supervision. A
/// write error (full disk, …) or a writer that falls behind never stops
/// ward: the lines are dropped, counted, and said once when writing works
/// again. A line cut short (by a full disk, or a ward killed mid-write) is
/// ended before the next one, so every later line stays whole JSON.
pub struct LineFile<T: Line> {
    path: PathBuf,
    /// Lines not handed to the writer yet.
    pending: Vec<T>,
    /// The last hand-off.
    handed: Option<std::time::Instant>,
    /// Lines the writer could not take (its queue was full).
    refused: u64,
    worker: crate::offload::Worker<Batch<T>>,
}

/// What a [`LineFile`] holds: something that renders as one line (without
/// its newline), on the writer's thread.
pub trait Line: Send + 'static {
    fn render(&self, out: &mut Vec<u8>);
}

impl Line for String {
    fn render(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

/// One turn's lines, handed to the writer.
struct Batch<T> {
    lines: Vec<T>,
    /// Lines refused before this batch: said when writing works again.
    refused: u64,
}

/// Batches the writer may have waiting: a few seconds of a busy ward.
const QUEUED_BATCHES: usize = 256;

/// Unless asked to hand them over now, lines go to the writer at most this
/// often (each hand-off wakes its thread): the turns of a crash loop, a few
/// thousand a second, share a batch.
pub(crate) const HAND_OFF_EVERY: std::time::Duration = std::time::Duration::from_millis(5);

/// ... and at once when this many wait.
pub(crate) const HAND_OFF_LINES: usize = 1024;

impl<T: Line> LineFile<T> {
    /// `wake` is called when the writer has something to say (see
    /// [`LineFile::flush`]).
    pub fn open(
        dir: Arc<Dir>,
        name: &str,
        max: u64,
        wake: impl Fn() + Send + 'static,
    ) -> LineFile<T> {
        let path = dir.join(name);
        let mut writer = LineWriter::open(dir, name, max);
        let mut bytes = Vec::new();
        let worker =
            crate::offload::Worker::start(name, QUEUED_BATCHES, wake, move |batch: Batch<T>| {
                bytes.clear();
                for line in &batch.lines {
                    line.render(&mut bytes);
                    bytes.push(b'\n');
                }
                writer.write(&bytes, batch.lines.len() as u64, batch.refused)
            });
        LineFile {
            path,
            pending: Vec::new(),
            handed: None,
            refused: 0,
            worker,
        }
    }

    pub fn append(&mut self, line: T) {
        self.pending.push(line);
    }

    /// Hands the waiting lines to the writer: with `now` (someone was just
    /// answered, and may look at the file), or once [`HAND_OFF_EVERY`] has
    /// passed since the last hand-off (else [`LineFile::due`] says when).
    /// Returns what the writer asks to be said (writing failed, or works
    /// again and how much was lost), one message joined.
    pub fn flush(&mut self, now: bool) -> Option<String> {
        let at = std::time::Instant::now();
        if now
            || self.pending.len() >= HAND_OFF_LINES
            || self.handed.is_none_or(|last| at >= last + HAND_OFF_EVERY)
        {
            self.hand_off(at);
        }
        let reports = self.worker.take_reports();
        (!reports.is_empty()).then(|| reports.join("; "))
    }

    fn hand_off(&mut self, at: std::time::Instant) {
        if self.pending.is_empty() {
            return;
        }
        self.handed = Some(at);
        let batch = Batch {
            lines: std::mem::take(&mut self.pending),
            refused: self.refused,
        };
        match self.worker.offer(batch) {
            Ok(()) => self.refused = 0,
            Err(batch) => self.refused = batch.refused + batch.lines.len() as u64,
        }
    }

    /// When lines wait for their hand-off: the driver's loop wakes then.
    pub fn due(&self) -> Option<std::time::Instant> {
        if self.pending.is_empty() {
            return None;
        }
        Some(
            self.handed
                .map_or_else(std::time::Instant::now, |last| last + HAND_OFF_EVERY),
        )
    }

    /// Hands over what is left and waits up to `within` for it to be
    /// written (ward is ending). False when the writer did not finish.
    pub fn finish(&mut self, within: std::time::Duration) -> bool {
        self.hand_off(std::time::Instant::now());
        self.worker.finish(within)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The writer's side of a [`LineFile`], on its own thread: the file
/// itself is a [`Rotating`] one (in the state dir, keeping one rotated
/// file); this says when writing fails and how much was lost.
struct LineWriter {
    file: Rotating<Kept>,
    failing: bool,
    /// Lines lost since writing last worked.
    lost: u64,
}

impl LineWriter {
    /// Opens the file at once (in the state dir, never through a link); a
    /// last line that was cut is ended before the first new one.
    fn open(dir: Arc<Dir>, name: &str, max: u64) -> LineWriter {
        let path = dir.join(name);
        let mut file = Rotating::at(Kept(dir), path, name, max, 1);
        let _ = file.ensure_open();
        LineWriter {
            file,
            failing: false,
            lost: 0,
        }
    }

    /// Writes one batch of `lines` whole lines; a report when writing
    /// starts or stops failing. `refused`: lines lost before it.
    fn write(&mut self, bytes: &[u8], lines: u64, refused: u64) -> Option<String> {
        self.lost += refused;
        let ok = match self.file.write_lines(bytes) {
            Ok(()) => true,
            Err(failure) => {
                // The lines that made it whole are not lost.
                let whole = memchr::memchr_iter(b'\n', &bytes[..failure.written]).count() as u64;
                self.lost += lines.saturating_sub(whole);
                false
            }
        };
        let path = self.file.path().display();
        match (ok, self.failing) {
            (false, false) => {
                self.failing = true;
                Some(format!(
                    "cannot write {path}; its lines are dropped until it can"
                ))
            }
            (true, _) if self.lost > 0 => {
                self.failing = false;
                let n = std::mem::take(&mut self.lost);
                Some(format!(
                    "{path} is written again; {n} line{} could not be written (the disk was full, \
                     failing or too slow)",
                    if n == 1 { "" } else { "s" }
                ))
            }
            (true, true) => {
                self.failing = false;
                None
            }
            _ => None,
        }
    }
}

/// The last `n` lines of the journal (for `ward events` without `-f`),
/// read from the end, across its rotation.
pub fn journal_tail(path: &Path, n: usize) -> std::io::Result<Vec<u8>> {
    match crate::logs::tail_file(path, n) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ward_core::{EventKind, InstanceId, RunId};

    #[test]
    fn events_are_stamped_journaled_and_broadcast() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path(), crate::files::DirPolicy::private()).unwrap();
        let stats = crate::stats::Stats::default();
        let mut bus = Bus::new(Arc::new(dir), stats.clone(), || {});
        let (_, mut rx) = bus.subscribe().subscribe_with_recent(0);
        let event = Event {
            instance: Some(InstanceId::new("api", 0)),
            run: Some(RunId(3)),
            kind: EventKind::Spawned { pid: 42 },
        };
        let published = bus.publish(event.clone());
        assert_eq!(published.event, event, "typed on the bus");
        assert_eq!(bus.flush(true), None);
        assert!(bus.finish(std::time::Duration::from_secs(10)));
        let live = rx.try_recv().unwrap();
        let tail = journal_tail(bus.journal_path(), 10).unwrap();
        let text = String::from_utf8(tail).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1);
        assert_eq!(live.line(), lines[0], "the edge serialises the same line");
        let doc: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(doc["event"], "spawned");
        assert_eq!(doc["pid"], 42);
        assert_eq!(doc["run"], 3);
        assert_eq!(doc["seq"], 1);
        assert_eq!(doc["instance"], "api:0");
        assert!(doc["ts"].as_str().unwrap().ends_with('Z'));
        // The bus counted it.
        let report = stats.report(&ward_core::Snapshot::default());
        assert_eq!(report.events, 1);
    }

    #[test]
    fn a_cut_record_is_ended_before_the_next() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("events.jsonl");
        // A record cut by a full disk or a SIGKILL mid-write.
        std::fs::write(&path, "{\"ts\":\"x\",\"seq\":1}\n{\"ts\":\"y\",\"se").unwrap();
        let dir = Dir::open(tmp.path(), crate::files::DirPolicy::private()).unwrap();
        let mut file = LineFile::open(Arc::new(dir), "events.jsonl", 1 << 20, || {});
        file.append("{\"seq\":3}".to_string());
        assert_eq!(file.flush(true), None);
        assert!(file.finish(std::time::Duration::from_secs(10)));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text:?}");
        assert_eq!(lines[2], "{\"seq\":3}");
        assert!(serde_json::from_str::<serde_json::Value>(lines[2]).is_ok());
    }

    #[test]
    fn a_failing_disk_is_said_once_and_what_it_lost_when_it_works_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Arc::new(Dir::open(tmp.path(), crate::files::DirPolicy::private()).unwrap());
        let mut writer = LineWriter::open(Arc::clone(&dir), "events.jsonl", 1 << 20);
        assert_eq!(writer.write(b"one\n", 1, 0), None);
        // The disk fills up in the middle of the second of three lines.
        let path = tmp.path().join("events.jsonl");
        let inner = crate::files::append_existing(&path).unwrap();
        writer
            .file
            .replace_writer(Box::new(crate::logs::Flaky { inner, budget: 6 }));
        let said = writer.write(b"two\nthree\nfour\n", 3, 0).unwrap();
        assert!(said.starts_with("cannot write "), "{said}");
        assert_eq!(writer.write(b"five\n", 1, 0), None, "said once");
        // Space again (a fresh file: the writer reopens it): the count is
        // of the lines that did not make it whole (three, four, five) and
        // two that the queue refused.
        let file = crate::files::append_existing(&path).unwrap();
        writer.file.replace_writer(Box::new(file));
        let said = writer.write(b"six\n", 1, 2).unwrap();
        assert!(
            said.contains("is written again; 5 lines could not be written"),
            "{said}"
        );
        assert_eq!(writer.write(b"seven\n", 1, 0), None);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "one\ntwo\nth\nsix\nseven\n", "the cut line is ended");
    }
}
