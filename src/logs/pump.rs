//! Draining one run's stdout and stderr: the hot path.
//!
//! Two stages, so that a slow disk never reaches the child:
//!
//! ```text
//!  stdout pipe ─► drain ─┐  chunks of formatted lines   ┌─► followers, console
//!  stderr pipe ─► drain ─┴─► bounded queue ─► writer ───┴─► InstanceLog (file)
//!                 (async task)          (async task; each write
//!                                        on the blocking pool)
//! ```
//!
//! A drain reads 4 KiB at a time, doubling up to 256 KiB for a program that
//! keeps its pipe full (and halving again when it calms down), cuts lines
//! with memchr, formats them into one reused buffer and hands the buffer to
//! the writer: one clock read, one format pass and one `write` per chunk, no
//! allocation per line. File writes block, so each one runs on tokio's
//! blocking pool: a quiet program costs no thread at all, and a hung disk
//! holds pool threads (bounded), never a drain. When the writer is behind, a drain
//! waits at most [`WRITER_GRACE`] for room, then drops chunks (counted) until
//! the writer takes one again; a failed write (ENOSPC, EIO) drops that
//! chunk's lines. Either way the pipes keep being read, and the next
//! successful write reports what was lost through `on_drop` (called by the
//! writer task, right after that write: it must not block).
//!
//! Needs a tokio runtime with the time driver enabled.

use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use memchr::memchr_iter;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::error::{SendTimeoutError, TrySendError};
use tokio::sync::{broadcast, mpsc};

use super::console::{Console, ConsoleLabel};
use super::format::{LineFormat, Stream, Timestamp};
use super::{lock, InstanceLog, RunLabel};

/// Bytes asked of the pipe per read at first. Small, because most programs
/// are quiet and every run holds a read buffer per stream: 100 idle
/// programs must not cost 100 × 2 × 64 KiB.
const READ_SIZE: usize = 4 * 1024;
/// A read that fills its window doubles it, up to this: a program that
/// floods its pipe (enlarged with F_SETPIPE_SZ) costs fewer reads, wakeups
/// and writes per byte. Quiet programs keep the small window. Bounded
/// because each queued chunk is about this big.
const MAX_READ_SIZE: usize = 256 * 1024;
/// The pipe size asked for once a program floods its output.
const FLOOD_PIPE_SIZE: usize = 1024 * 1024;

/// A pipe's capacity on Linux unless someone asks for another: a read that
/// returns this much found the pipe full.
const PIPE_DEFAULT_SIZE: usize = 64 * 1024;
/// Formatted chunks waiting for the writer before drains start to wait.
const QUEUE_CHUNKS: usize = 8;

/// At most this much goes to the file in one trip to the blocking pool.
const BATCH_BYTES: usize = 1024 * 1024;
/// How long a drain waits for the writer before it drops: long enough to
/// ride out a brief stall with no loss, short enough that a child writing
/// into a full pipe is never held up for long.
const WRITER_GRACE: Duration = Duration::from_millis(100);
/// After both pipes end, how long the pump waits for the writer to finish
/// the chunks it holds. A disk that hangs (a dead NFS server) must not hang
/// the pump; the writer then finishes on its own, and reports its drops
/// through `on_drop` as usual.
const WRITER_FINISH: Duration = Duration::from_secs(2);
/// Reason given to `on_drop` when lines were dropped because the writer was
/// stuck rather than failing.
const BEHIND: &str = "log writer fell behind (disk or CPU too slow)";

/// Where drained output goes besides the file.
pub struct Sinks {
    /// The foreground `ward up` terminal.
    pub console: Option<Console>,
    /// `ward logs -f` subscribers: each chunk of lines formatted exactly as
    /// for the file (whole lines), sent only while someone is subscribed,
    /// and sent even if writing the file then fails.
    pub follow: broadcast::Sender<Bytes>,
    /// Called with (lines, reason) when lines could not be written, once
    /// writing works again (or when the pump ends).
    pub on_drop: Arc<dyn Fn(u64, String) + Send + Sync>,
    /// The instance's counters of lines and bytes ([`crate::stats`]).
    pub counters: Arc<crate::stats::LogCounters>,
    /// journald, for `logs = { journald = true }`.
    pub journal: Option<super::JournalSink>,
}

/// What one pump saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PumpStats {
    pub stdout: StreamStats,
    pub stderr: StreamStats,
    /// Lines that did not reach the file (write failures, writer behind), as
    /// far as known when the pump returned: a writer stuck on a hung disk
    /// reports later drops through `on_drop` only.
    pub dropped: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Stored lines: a line split for being longer than `max_line` counts
    /// once per piece.
    pub lines: u64,
    /// Bytes read from the pipe.
    pub bytes: u64,
}

/// A run of formatted lines from one stream, on its way to the file.
struct Chunk {
    stream: Stream,
    data: Vec<u8>,
    lines: u64,
}

/// Drains both pipes of one run until EOF on both (so, until the last
/// process holding them is gone), writing formatted lines to the file, the
/// console and followers.
pub async fn pump(
    log: Arc<Mutex<InstanceLog>>,
    label: RunLabel,
    stdout: crate::proc::Output,
    stderr: crate::proc::Output,
    sinks: Sinks,
) -> PumpStats {
    let spec = lock(&log).spec().clone();
    let files = spec.files;
    let (queue, queue_rx) = mpsc::channel(QUEUE_CHUNKS);
    let (out_free, out_free_rx) = std_mpsc::channel();
    let (err_free, err_free_rx) = std_mpsc::channel();
    let behind = Arc::new(AtomicU64::new(0));
    let writer = Writer {
        log,
        files,
        queue: queue_rx,
        free: [out_free, err_free],
        behind: Arc::clone(&behind),
        on_drop: Arc::clone(&sinks.on_drop),
    };
    let written = tokio::spawn(writer.run());

    let console_label = ConsoleLabel::new(&label.program, label.index);
    let console = sinks.console.as_ref().map(|c| (c, &console_label));
    let drain = |stream, free| Drain {
        stream,
        format: LineFormat::new(&spec, &label, stream),
        max_line: spec.max_line.max(1),
        queue: queue.clone(),
        free,
        spare: None,
        stalled: false,
        behind: &behind,
        follow: &sinks.follow,
        console,
        console_buf: Vec::new(),
        chunk_lines: 0,
        stats: StreamStats::default(),
        counters: &sinks.counters,
        journal: sinks.journal.as_ref(),
        journal_buf: Vec::new(),
        journal_refused: 0,
        on_drop: &sinks.on_drop,
    };
    let out = drain(Stream::Stdout, out_free_rx).run(stdout);
    let err = drain(Stream::Stderr, err_free_rx).run(stderr);
    // The drains hold the only senders left: the writer ends when both do.
    drop(queue);
    let (stdout, stderr) = tokio::join!(out, err);

    let dropped = match tokio::time::timeout(WRITER_FINISH, written).await {
        Ok(Ok(reported)) => reported,
        // The writer died (a panic in `on_drop`): what it had not reported
        // is lost to `on_drop` too, but still counted here.
        Ok(Err(_)) => behind.swap(0, Ordering::Relaxed),
        // Still writing: it will report what it drops itself.
        Err(_) => 0,
    };
    PumpStats {
        stdout,
        stderr,
        dropped,
    }
}

struct Writer {
    log: Arc<Mutex<InstanceLog>>,
    /// `logs.files`: off, the chunks only go back to their drains (the
    /// followers and the console had them already).
    files: bool,
    queue: mpsc::Receiver<Chunk>,
    /// Buffers go back to the drain they came from, by stream.
    free: [std_mpsc::Sender<Vec<u8>>; 2],
    /// Lines the drains dropped because the queue stayed full.
    behind: Arc<AtomicU64>,
    on_drop: Arc<dyn Fn(u64, String) + Send + Sync>,
}

impl Writer {
    /// Writes chunks until both drains are done; returns the lines dropped.
    async fn run(mut self) -> u64 {
        let mut failed = 0;
        let mut reason = String::new();
        let mut dropped = 0;
        while let Some(first) = self.queue.recv().await {
            // Whatever else is queued goes in the same trip to the blocking
            // pool: under a flood that halves the hand-offs per byte.
            let mut batch = vec![first];
            let mut bytes = batch[0].data.len();
            while bytes < BATCH_BYTES {
                match self.queue.try_recv() {
                    Ok(chunk) => {
                        bytes += chunk.data.len();
                        batch.push(chunk);
                    }
                    Err(_) => break,
                }
            }
            if !self.files {
                for chunk in batch {
                    let _ = self.free[stream_index(chunk.stream)].send(chunk.data);
                }
                continue;
            }
            let lines: u64 = batch.iter().map(|c| c.lines).sum();
            let log = Arc::clone(&self.log);
            let written = tokio::task::spawn_blocking(move || {
                let mut log = lock(&log);
                let results: Vec<_> = batch.iter().map(|c| log.write_lines(&c.data)).collect();
                (results, batch)
            })
            .await;
            let Ok((results, batch)) = written else {
                // The write panicked: its lines are lost, and said so.
                failed += lines;
                reason = "log write failed".into();
                continue;
            };
            let mut all_written = true;
            for (result, chunk) in results.into_iter().zip(batch) {
                if let Err(failure) = result {
                    all_written = false;
                    failed += count_lines(&chunk.data[failure.written..]);
                    reason = failure.error.to_string();
                }
                let _ = self.free[stream_index(chunk.stream)].send(chunk.data);
            }
            if all_written {
                dropped += self.report(&mut failed, &mut reason);
            }
        }
        dropped + self.report(&mut failed, &mut reason)
    }

    /// Tells `on_drop` about lines lost since the last report, if any.
    fn report(&self, failed: &mut u64, reason: &mut String) -> u64 {
        let lines = mem::take(failed) + self.behind.swap(0, Ordering::Relaxed);
        if lines > 0 {
            let why = if reason.is_empty() {
                BEHIND.to_owned()
            } else {
                mem::take(reason)
            };
            (self.on_drop)(lines, why);
        }
        lines
    }
}

fn stream_index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

fn count_lines(data: &[u8]) -> u64 {
    memchr_iter(b'\n', data).count() as u64
}

/// One stream's side of a pump.
struct Drain<'a> {
    stream: Stream,
    format: LineFormat,
    max_line: usize,
    queue: mpsc::Sender<Chunk>,
    free: std_mpsc::Receiver<Vec<u8>>,
    /// A buffer that did not go to the writer (empty chunk, or dropped).
    spare: Option<Vec<u8>>,
    /// The last send gave up waiting: until the writer takes a chunk again,
    /// do not wait for it.
    stalled: bool,
    behind: &'a AtomicU64,
    follow: &'a broadcast::Sender<Bytes>,
    console: Option<(&'a Console, &'a ConsoleLabel)>,
    /// The raw lines of the current chunk, for the console.
    console_buf: Vec<u8>,
    chunk_lines: u64,
    stats: StreamStats,
    /// The instance's counters, shared with `ward`'s stats.
    counters: &'a crate::stats::LogCounters,
    journal: Option<&'a super::JournalSink>,
    /// The journal record being sent, reused.
    journal_buf: Vec<u8>,
    /// Lines journald did not take since the last report.
    journal_refused: u64,
    on_drop: &'a Arc<dyn Fn(u64, String) + Send + Sync>,
}

impl Drain<'_> {
    async fn run(mut self, mut pipe: crate::proc::Output) -> StreamStats {
        // buf[..filled] is the start of a line whose end has not come yet.
        let mut window = READ_SIZE;
        // Allocated only while there is something to read: a quiet program
        // (most of a thousand) costs no buffer at all.
        let mut buf = Vec::new();
        let mut filled = 0;
        let mut enlarged = false;
        let mut ts = Timestamp::new();
        let text = self.format.is_text();
        loop {
            if buf.is_empty() && pipe.readable().await.is_err() {
                break;
            }
            if buf.len() < filled + window {
                // A larger window, or a long line accumulating (bounded by
                // max_line).
                buf.resize(filled + window, 0);
            }
            let n = match pipe.read(&mut buf[filled..filled + window]).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // Nothing more can come out of this pipe.
                Err(_) => break,
            };
            ts.set(SystemTime::now());
            self.format.stamp(&ts);
            self.stats.bytes += n as u64;
            self.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
            if n == window && window < MAX_READ_SIZE {
                window *= 2;
                if n >= PIPE_DEFAULT_SIZE && !enlarged {
                    // A read emptied a full pipe: a flood. A bigger pipe
                    // lets the program write on while a chunk is formatted,
                    // and lets the reads grow past the default capacity (a
                    // quiet program keeps the small default; pipe pages
                    // count against a per-user limit).
                    enlarged = true;
                    let _ = pipe.enlarge(FLOOD_PIPE_SIZE);
                }
            } else if n * 8 < window && window > READ_SIZE && filled == 0 {
                // The burst is over: give the memory back.
                window /= 2;
                buf.truncate(window);
                buf.shrink_to_fit();
            }
            let mut out = self.take_buffer();
            let end = filled + n;
            let mut start = 0;
            for nl in memchr_iter(b'\n', &buf[filled..end]) {
                let line_end = filled + nl;
                if text && line_end - start <= self.max_line {
                    let line = &buf[start..=line_end];
                    self.format.push_text(&mut out, line);
                    self.chunk_lines += 1;
                    if self.console.is_some() {
                        self.console_buf.extend_from_slice(line);
                    }
                    self.send_to_journal(&buf[start..line_end]);
                } else {
                    self.push_line(&mut out, &buf[start..line_end]);
                }
                start = line_end + 1;
            }
            // An unfinished line already longer than max_line: its full
            // pieces go now, so a line never holds more than that in memory.
            while end - start > self.max_line {
                let cut = piece_len(&buf[start..end], self.max_line);
                self.push_piece(&mut out, &buf[start..start + cut], true);
                start += cut;
            }
            buf.copy_within(start..end, 0);
            filled = end - start;
            self.send(out).await;
            if filled == 0 && window == READ_SIZE && n < READ_SIZE / 2 {
                self.release_buffers();
                buf = Vec::new();
            }
        }
        if filled > 0 {
            let mut out = self.take_buffer();
            self.push_line(&mut out, &buf[..filled]);
            self.send(out).await;
        }
        self.report_journal_losses();
        self.stats
    }

    /// A quiet moment: the chunk buffers go back to the allocator.
    fn release_buffers(&mut self) {
        self.spare = None;
        while self.free.try_recv().is_ok() {}
    }

    fn take_buffer(&mut self) -> Vec<u8> {
        let mut buf = self
            .spare
            .take()
            .or_else(|| self.free.try_recv().ok())
            .unwrap_or_else(|| Vec::with_capacity(2 * READ_SIZE));
        buf.clear();
        buf
    }

    /// A whole line (without its newline), split if longer than max_line.
    fn push_line(&mut self, out: &mut Vec<u8>, mut line: &[u8]) {
        while line.len() > self.max_line {
            let cut = piece_len(line, self.max_line);
            self.push_piece(out, &line[..cut], true);
            line = &line[cut..];
        }
        self.push_piece(out, line, false);
    }

    #[inline]
    fn push_piece(&mut self, out: &mut Vec<u8>, piece: &[u8], partial: bool) {
        self.format.push(out, piece, partial);
        self.chunk_lines += 1;
        self.send_to_journal(piece);
        if self.console.is_some() {
            self.console_buf.extend_from_slice(piece);
            self.console_buf.push(b'\n');
        }
    }

    /// One line (or piece of one) to journald, if the program's output
    /// goes there.
    #[inline]
    fn send_to_journal(&mut self, line: &[u8]) {
        if let Some(journal) = self.journal {
            if !journal.line(&mut self.journal_buf, self.stream, line) {
                self.journal_refused += 1;
            } else if self.journal_refused > 0 {
                // Said once journald takes lines again (or at the end), not
                // at every read: an outage is one report, not a flood.
                self.report_journal_losses();
            }
        }
    }

    fn report_journal_losses(&mut self) {
        let refused = mem::take(&mut self.journal_refused);
        if refused > 0 {
            (self.on_drop)(
                refused,
                "journald did not take them (too slow, or not running)".into(),
            );
        }
    }

    async fn send(&mut self, out: Vec<u8>) {
        let lines = mem::take(&mut self.chunk_lines);
        if lines == 0 {
            self.spare = Some(out);
            return;
        }
        self.stats.lines += lines;
        self.counters.lines.fetch_add(lines, Ordering::Relaxed);
        if self.follow.receiver_count() > 0 {
            let _ = self.follow.send(Bytes::copy_from_slice(&out));
        }
        if let Some((console, label)) = self.console {
            console.lines(label, Bytes::copy_from_slice(&self.console_buf), lines);
            self.console_buf.clear();
        }
        let chunk = Chunk {
            stream: self.stream,
            data: out,
            lines,
        };
        let refused = if self.stalled {
            self.queue.try_send(chunk).err().map(|e| match e {
                TrySendError::Full(c) | TrySendError::Closed(c) => c,
            })
        } else {
            let sent = self.queue.send_timeout(chunk, WRITER_GRACE).await;
            sent.err().map(|e| match e {
                SendTimeoutError::Timeout(c) | SendTimeoutError::Closed(c) => c,
            })
        };
        match refused {
            None => self.stalled = false,
            Some(chunk) => {
                self.stalled = true;
                self.behind.fetch_add(chunk.lines, Ordering::Relaxed);
                self.spare = Some(chunk.data);
            }
        }
    }
}

/// Where to cut a piece off the front of `s` (longer than `max`): at most
/// `max` bytes, backed off to a character boundary so that a multi-byte
/// UTF-8 character is not cut in two (and so not turned into two U+FFFD in
/// JSON). Bytes that are not UTF-8 are cut at `max`.
fn piece_len(s: &[u8], max: usize) -> usize {
    let is_continuation = |b: u8| b & 0xc0 == 0x80;
    let mut cut = max;
    while cut > 0 && max - cut < 3 && is_continuation(s[cut]) {
        cut -= 1;
    }
    if cut == 0 || is_continuation(s[cut]) {
        max
    } else {
        cut
    }
}

// Real pipes and child processes of Unix; the Windows side is covered by
// the Windows integration tests (tests/windows).
#[cfg(all(test, unix))]
#[path = "pump_tests.rs"]
mod tests;
