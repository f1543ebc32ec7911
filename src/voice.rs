//! What ward says to people about its events: a line on the terminal in
//! the foreground (through the console, in order with the programs'
//! output), a line in ward's own log (`ward.log`) when detached, or a line
//! on stderr under a service manager (with a priority the journal keeps,
//! `<3>` for an error, when stderr is the journal).

use std::sync::Arc;

use ward_core::{Event, EventKind};
use ward_service::journal::Priority;

use crate::bus::{LineFile, HAND_OFF_EVERY, HAND_OFF_LINES, WARD_LOG_MAX};
use crate::files::Dir;
use crate::logs::Console;
use crate::offload::Worker;

pub enum Voice {
    Console(Console),
    Log(LineFile<String>),
    Stderr(Stderr),
}

/// ward's lines on stderr, written by a thread of their own: a journal (or
/// a pipe) that is slow never holds up the driver.
pub struct Stderr {
    /// stderr is the journal: it stamps the time, and keeps a priority.
    journal: bool,
    /// Lines not handed to the writer yet.
    pending: Vec<(Priority, String)>,
    /// Lines the writer could not take (its queue was full).
    refused: u64,
    /// The last hand-off: lines go at most every [`HAND_OFF_EVERY`], as
    /// the journal's do.
    handed: Option<std::time::Instant>,
    worker: Worker<(Vec<(Priority, String)>, u64)>,
}

/// Batches the stderr writer may have waiting.
const STDERR_BATCHES: usize = 256;

impl Stderr {
    fn new() -> Stderr {
        let journal = ward_service::journal::stderr_is_journal();
        let mut bytes = Vec::new();
        let worker = Worker::start(
            "stderr",
            STDERR_BATCHES,
            || {},
            move |(lines, refused): (Vec<(Priority, String)>, u64)| {
                use std::io::Write;
                bytes.clear();
                if refused > 0 {
                    if journal {
                        bytes.extend_from_slice(Priority::Warning.prefix().as_bytes());
                    }
                    bytes.extend_from_slice(
                        format!("{refused} of ward's lines could not be written (stderr was too slow)\n")
                            .as_bytes(),
                    );
                }
                for (priority, line) in &lines {
                    // The journal takes each line as a record of its own.
                    for part in line.lines() {
                        if journal {
                            bytes.extend_from_slice(priority.prefix().as_bytes());
                        }
                        bytes.extend_from_slice(part.as_bytes());
                        bytes.push(b'\n');
                    }
                }
                let _ = std::io::stderr().lock().write_all(&bytes);
                None
            },
        );
        Stderr {
            journal,
            pending: Vec::new(),
            refused: 0,
            handed: None,
            worker,
        }
    }

    /// Hands the waiting lines to the writer: with `now`, or once
    /// [`HAND_OFF_EVERY`] has passed since the last hand-off.
    fn flush(&mut self, now: bool) {
        if self.pending.is_empty() {
            return;
        }
        let at = std::time::Instant::now();
        let due = now
            || self.pending.len() >= HAND_OFF_LINES
            || self.handed.is_none_or(|last| at >= last + HAND_OFF_EVERY);
        if !due {
            return;
        }
        self.handed = Some(at);
        let batch = (std::mem::take(&mut self.pending), self.refused);
        match self.worker.offer(batch) {
            Ok(()) => self.refused = 0,
            Err((lines, refused)) => self.refused = refused + lines.len() as u64,
        }
    }
}

impl Voice {
    pub fn console(console: Console) -> Voice {
        Voice::Console(console)
    }

    /// Lines on stderr, for a service manager to keep (the journal).
    pub fn stderr() -> Voice {
        Voice::Stderr(Stderr::new())
    }

    /// `ward.log` in the state dir (rotated once past 8 MiB); `wake` is
    /// called when its writer has something to say.
    pub fn log(state_dir: Arc<Dir>, wake: impl Fn() + Send + 'static) -> Voice {
        Voice::Log(LineFile::open(state_dir, "ward.log", WARD_LOG_MAX, wake))
    }

    /// Says the event, if it is one a person wants to read; `ts` is the
    /// time the bus stamped on it.
    pub fn event(&mut self, ts: &str, event: &Event) {
        if let Some((priority, text)) = text(event) {
            self.say(ts, priority, &text);
        }
    }

    /// Says `text`, of `priority` (kept only where a journal reads it).
    pub fn say(&mut self, ts: &str, priority: Priority, text: &str) {
        match self {
            Voice::Console(console) => console.notice(text),
            Voice::Log(file) => file.append(format!("{ts} {text}")),
            Voice::Stderr(stderr) => {
                let line = if stderr.journal {
                    text.to_string()
                } else {
                    format!("{ts} {text}")
                };
                stderr.pending.push((priority, line));
            }
        }
    }

    /// Pushes what is buffered out (see [`LineFile::flush`]); a message
    /// when ward's log stopped (or resumed) being writable.
    pub fn flush(&mut self, now: bool) -> Option<String> {
        match self {
            Voice::Console(_) => None,
            Voice::Log(file) => file.flush(now),
            Voice::Stderr(stderr) => {
                stderr.flush(now);
                None
            }
        }
    }

    /// When ward.log's lines wait for their hand-off.
    pub fn due(&self) -> Option<std::time::Instant> {
        match self {
            Voice::Console(_) => None,
            Voice::Log(file) => file.due(),
            Voice::Stderr(stderr) => (!stderr.pending.is_empty()).then(|| {
                stderr
                    .handed
                    .map_or_else(std::time::Instant::now, |last| last + HAND_OFF_EVERY)
            }),
        }
    }

    /// Hands over the last lines and waits up to `within` for them to be
    /// written (ward is ending).
    pub fn finish(&mut self, within: std::time::Duration) -> bool {
        match self {
            Voice::Console(_) => true,
            Voice::Log(file) => file.finish(within),
            Voice::Stderr(stderr) => {
                stderr.flush(true);
                stderr.worker.finish(within)
            }
        }
    }

    pub fn as_console(&self) -> Option<&Console> {
        match self {
            Voice::Console(console) => Some(console),
            Voice::Log(_) | Voice::Stderr(_) => None,
        }
    }
}

/// The line ward says for an event, if any, and how much it matters.
pub(crate) fn text(event: &Event) -> Option<(Priority, String)> {
    let who = event
        .instance
        .as_ref()
        .map(|id| format!("{id} "))
        .unwrap_or_default();
    use Priority::{Error, Info, Notice, Warning};
    let said = match &event.kind {
        EventKind::Spawned { pid } => (Info, format!("{who}started (pid {pid})")),
        EventKind::SpawnFailed { error } => (Warning, format!("{who}failed to start: {error}")),
        EventKind::Exited { status, .. } => (
            match status {
                ward_core::ExitStatus::Code { code: 0 } => Info,
                _ => Warning,
            },
            format!("{who}exited ({})", describe(status)),
        ),
        EventKind::Backoff { delay_ms, .. } => {
            (Info, format!("{who}restarting in {}", human_ms(*delay_ms)))
        }
        EventKind::Fatal {
            failed_starts,
            cooldown_ms,
        } => (
            Error,
            match cooldown_ms {
                Some(ms) => format!(
                    "{who}gave up after {failed_starts} failed starts; next try in {}",
                    human_ms(*ms)
                ),
                None => format!("{who}gave up after {failed_starts} failed starts"),
            },
        ),
        EventKind::StopTimeout => (
            Warning,
            format!("{who}did not stop in time; killing its process tree"),
        ),
        EventKind::Daemonized => (Warning, format!("{who}{}", crate::text::DAEMONIZED)),
        EventKind::StateChanged {
            to: ward_core::State::Stopped,
            ..
        } => (Info, format!("{who}stopped")),
        EventKind::Reloaded { diff } => (
            Notice,
            format!(
                "reloaded: {}",
                crate::text::reload_summary(&crate::text::Changes::of(diff))
            ),
        ),
        EventKind::ReloadRejected { errors } => (
            Warning,
            format!(
                "reload rejected, nothing changed:\n  {}",
                errors.join("\n  ")
            ),
        ),
        EventKind::LogLinesDropped { lines, reason } => (
            Warning,
            format!("{who}{lines} log lines were dropped: {reason}"),
        ),
        EventKind::Notice { message } => (Notice, format!("{who}{message}")),
        _ => return None,
    };
    Some(said)
}

pub(crate) fn describe(status: &ward_core::ExitStatus) -> String {
    match status {
        ward_core::ExitStatus::Code { code } => format!("exit {code}"),
        ward_core::ExitStatus::Signal {
            signal,
            core_dumped,
        } => {
            let name = crate::proc::signal_name(*signal)
                .map(|n| format!("SIG{n}"))
                .unwrap_or_else(|| format!("signal {signal}"));
            if *core_dumped {
                format!("{name}, core dumped")
            } else {
                name
            }
        }
    }
}

fn human_ms(ms: u64) -> String {
    crate::text::human_duration(std::time::Duration::from_millis(ms))
}
