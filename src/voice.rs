//! What ward says to people about its events: a line on the terminal in
//! the foreground (through the console, in order with the programs'
//! output), or a line in ward's own log (`ward.log`) when detached.

use std::sync::Arc;

use ward_core::{Event, EventKind};

use crate::bus::{LineFile, WARD_LOG_MAX};
use crate::files::Dir;
use crate::logs::Console;

pub enum Voice {
    Console(Console),
    Log(LineFile<String>),
}

impl Voice {
    pub fn console(console: Console) -> Voice {
        Voice::Console(console)
    }

    /// `ward.log` in the state dir (rotated once past 8 MiB); `wake` is
    /// called when its writer has something to say.
    pub fn log(state_dir: Arc<Dir>, wake: impl Fn() + Send + 'static) -> Voice {
        Voice::Log(LineFile::open(state_dir, "ward.log", WARD_LOG_MAX, wake))
    }

    /// Says the event, if it is one a person wants to read; `ts` is the
    /// time the bus stamped on it.
    pub fn event(&mut self, ts: &str, event: &Event) {
        if let Some(text) = text(event) {
            self.say(ts, &text);
        }
    }

    pub fn say(&mut self, ts: &str, text: &str) {
        match self {
            Voice::Console(console) => console.notice(text),
            Voice::Log(file) => file.append(format!("{ts} {text}")),
        }
    }

    /// Pushes what is buffered out (see [`LineFile::flush`]); a message
    /// when ward's log stopped (or resumed) being writable.
    pub fn flush(&mut self, now: bool) -> Option<String> {
        match self {
            Voice::Console(_) => None,
            Voice::Log(file) => file.flush(now),
        }
    }

    /// When ward.log's lines wait for their hand-off.
    pub fn due(&self) -> Option<std::time::Instant> {
        match self {
            Voice::Console(_) => None,
            Voice::Log(file) => file.due(),
        }
    }

    /// Hands over the last lines and waits up to `within` for them to be
    /// written (ward is ending).
    pub fn finish(&mut self, within: std::time::Duration) -> bool {
        match self {
            Voice::Console(_) => true,
            Voice::Log(file) => file.finish(within),
        }
    }

    pub fn as_console(&self) -> Option<&Console> {
        match self {
            Voice::Console(console) => Some(console),
            Voice::Log(_) => None,
        }
    }
}

/// The line ward says for an event, if any.
fn text(event: &Event) -> Option<String> {
    let who = event
        .instance
        .as_ref()
        .map(|id| format!("{id} "))
        .unwrap_or_default();
    let text = match &event.kind {
        EventKind::Spawned { pid } => format!("{who}started (pid {pid})"),
        EventKind::SpawnFailed { error } => format!("{who}failed to start: {error}"),
        EventKind::Exited { status, .. } => format!("{who}exited ({})", describe(status)),
        EventKind::Backoff { delay_ms, .. } => {
            format!("{who}restarting in {}", human_ms(*delay_ms))
        }
        EventKind::Fatal {
            failed_starts,
            cooldown_ms,
        } => match cooldown_ms {
            Some(ms) => format!(
                "{who}gave up after {failed_starts} failed starts; next try in {}",
                human_ms(*ms)
            ),
            None => format!("{who}gave up after {failed_starts} failed starts"),
        },
        EventKind::StopTimeout => format!("{who}did not stop in time; killing its process tree"),
        EventKind::Daemonized => format!("{who}{}", crate::text::DAEMONIZED),
        EventKind::StateChanged {
            to: ward_core::State::Stopped,
            ..
        } => format!("{who}stopped"),
        EventKind::Reloaded { diff } => format!(
            "reloaded: {}",
            crate::text::reload_summary(&crate::text::Changes::of(diff))
        ),
        EventKind::ReloadRejected { errors } => {
            format!(
                "reload rejected, nothing changed:\n  {}",
                errors.join("\n  ")
            )
        }
        EventKind::LogLinesDropped { lines, reason } => {
            format!("{who}{lines} log lines were dropped: {reason}")
        }
        EventKind::Notice { message } => format!("{who}{message}"),
        _ => return None,
    };
    Some(text)
}

fn describe(status: &ward_core::ExitStatus) -> String {
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
