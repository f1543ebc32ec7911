//! The foreground console of `ward up`: every instance's output on ward's
//! stdout, one line at a time, as `name:idx | line`.
//!
//! A terminal can be slower than the programs writing to it (a scrolling
//! xterm, a paused ssh session, a pager): printing happens on a thread of its
//! own, fed through a bounded queue that senders never wait on. When the
//! queue is full, lines are dropped and counted, and a note says so once the
//! console has caught up; the log files still have every line.

use std::collections::VecDeque;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::lock;

/// Messages the console queue holds (most chunks are a few lines).
const QUEUE_CHUNKS: usize = 1024;
/// Bytes of program output the console holds before it starts dropping:
/// a fraction of a second of a fast terminal, and a bound on memory however
/// large the chunks.
const MAX_QUEUED_BYTES: usize = 4 << 20;
/// ward's own messages held aside while the queue is full.
const MAX_NOTICES: usize = 1024;

/// Colours for program names: ANSI foreground codes, avoiding red (it reads
/// as "error") and the terminal's default colours.
const PALETTE: [u8; 10] = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94];

/// The foreground console. Cheap to clone; the printing thread ends when the
/// last clone is dropped, after printing what it was given.
#[derive(Clone)]
pub struct Console {
    queue: SyncSender<Msg>,
    shared: Arc<Shared>,
}

struct Shared {
    /// Width the `name:idx` label is padded to.
    width: AtomicUsize,
    /// Lines given up since the last note.
    dropped: AtomicU64,
    /// Bytes of lines queued and not yet printed.
    queued: AtomicUsize,
    /// Notices that found the queue full.
    notices: Mutex<VecDeque<String>>,
}

enum Msg {
    /// Whole lines, each ending in `\n`, all from one instance.
    Lines {
        label: Arc<str>,
        colour: u8,
        data: Bytes,
    },
    Notice(String),
    /// Answered once everything sent before it is printed.
    Flush(mpsc::Sender<()>),
}

/// What a pump needs to send one instance's lines to the console.
pub(crate) struct ConsoleLabel {
    label: Arc<str>,
    colour: u8,
}

impl ConsoleLabel {
    pub(crate) fn new(program: &str, index: u32) -> ConsoleLabel {
        ConsoleLabel {
            label: Arc::from(format!("{program}:{index}")),
            colour: colour_of(program),
        }
    }
}

/// The same program gets the same colour in every run of ward.
fn colour_of(program: &str) -> u8 {
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let mut hash: u32 = 0x811c_9dc5;
    for &b in program.as_bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    PALETTE[hash as usize % PALETTE.len()]
}

/// Colour on stdout: it is a terminal and `NO_COLOR` is unset or empty.
pub fn stdout_colour() -> bool {
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

impl Console {
    /// Starts the printing thread. `width` is the length of the longest
    /// `name:idx` label, so that the `|` separators line up. Colour is on
    /// when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn start(width: usize) -> Console {
        Console::with_output(width, stdout_colour(), Box::new(io::stdout()))
    }

    pub(crate) fn with_output(width: usize, colour: bool, out: Box<dyn Write + Send>) -> Console {
        let (queue, rx) = mpsc::sync_channel(QUEUE_CHUNKS);
        let shared = Arc::new(Shared {
            width: AtomicUsize::new(width),
            dropped: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
            notices: Mutex::new(VecDeque::new()),
        });
        let printer = Printer {
            rx,
            shared: Arc::clone(&shared),
            out: BufWriter::with_capacity(64 * 1024, out),
            colour,
        };
        let console = Console { queue, shared };
        // If no thread can be had, the queue's receiver is gone with the
        // closure: every send then fails fast, and output still reaches the
        // log files.
        let _ = thread::Builder::new()
            .name("ward-console".into())
            .spawn(move || printer.run());
        console
    }

    /// Widens (or narrows) the label column, e.g. when a reload adds a
    /// program with a longer name.
    pub fn set_width(&self, width: usize) {
        self.shared.width.store(width, Ordering::Relaxed);
    }

    /// Prints one of ward's own messages ("api:0 exited (exit 1), restarting
    /// in 200ms"). Never waits for the terminal.
    pub fn notice(&self, text: &str) {
        let Err(TrySendError::Full(_)) = self.queue.try_send(Msg::Notice(text.to_owned())) else {
            return;
        };
        // The queue is full of program output: ward's own word goes ahead
        // of it (printed after the chunk being printed) rather than be lost.
        let mut notices = lock(&self.shared.notices);
        if notices.len() < MAX_NOTICES {
            notices.push_back(text.to_owned());
        } else {
            drop(notices);
            self.note_dropped(1);
        }
    }

    /// Waits (at most `timeout`) until everything sent so far is printed;
    /// for the end of `ward up`, so that the last lines are not lost when the
    /// process exits. Returns whether it got there in time.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (ack, done) = mpsc::channel();
        let mut msg = Msg::Flush(ack);
        loop {
            match self.queue.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    msg = back;
                    thread::sleep(Duration::from_millis(2));
                }
            }
        }
        done.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }

    /// Queues a chunk of whole lines from one instance; drops (and counts)
    /// them if the console is behind.
    pub(crate) fn lines(&self, label: &ConsoleLabel, data: Bytes, lines: u64) {
        let len = data.len();
        let queued = &self.shared.queued;
        if queued.fetch_add(len, Ordering::Relaxed) + len > MAX_QUEUED_BYTES {
            queued.fetch_sub(len, Ordering::Relaxed);
            self.note_dropped(lines);
            return;
        }
        let msg = Msg::Lines {
            label: Arc::clone(&label.label),
            colour: label.colour,
            data,
        };
        if self.queue.try_send(msg).is_err() {
            queued.fetch_sub(len, Ordering::Relaxed);
            self.note_dropped(lines);
        }
    }

    fn note_dropped(&self, lines: u64) {
        self.shared.dropped.fetch_add(lines, Ordering::Relaxed);
    }
}

struct Printer {
    rx: Receiver<Msg>,
    shared: Arc<Shared>,
    out: BufWriter<Box<dyn Write + Send>>,
    colour: bool,
}

impl Printer {
    fn run(mut self) {
        // Errors writing to the terminal (closed, EPIPE) are not the
        // programs' problem: keep draining so senders never see a backlog.
        while let Ok(msg) = self.rx.recv() {
            self.handle(msg);
            loop {
                match self.rx.try_recv() {
                    Ok(msg) => self.handle(msg),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.caught_up();
                        return;
                    }
                }
            }
            self.caught_up();
        }
        self.caught_up();
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Lines {
                label,
                colour,
                data,
            } => {
                for line in data.split_inclusive(|&b| b == b'\n') {
                    let _ = self.print(&label, colour, line);
                }
                self.shared.queued.fetch_sub(data.len(), Ordering::Relaxed);
            }
            Msg::Notice(text) => {
                let _ = self.print_notice(&text);
            }
            Msg::Flush(ack) => {
                self.caught_up();
                let _ = ack.send(());
            }
        }
        self.print_notices();
    }

    fn print_notices(&mut self) {
        loop {
            let Some(text) = lock(&self.shared.notices).pop_front() else {
                return;
            };
            let _ = self.print_notice(&text);
        }
    }

    /// The queue is empty: say what was dropped, and show what was printed.
    fn caught_up(&mut self) {
        self.print_notices();
        let dropped = self.shared.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let _ = self.print_notice(&format!(
                "{dropped} lines not shown: the terminal was too slow (they are in the log files)"
            ));
        }
        let _ = self.out.flush();
    }

    fn print(&mut self, label: &str, colour: u8, line: &[u8]) -> io::Result<()> {
        let width = self.shared.width.load(Ordering::Relaxed);
        let pad = width.saturating_sub(label.chars().count());
        if self.colour {
            write!(self.out, "\x1b[{colour}m{label}\x1b[0m")?;
        } else {
            self.out.write_all(label.as_bytes())?;
        }
        write!(self.out, "{:pad$} | ", "")?;
        self.out.write_all(line)?;
        if line.last() != Some(&b'\n') {
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    fn print_notice(&mut self, text: &str) -> io::Result<()> {
        let width = self.shared.width.load(Ordering::Relaxed);
        if self.colour {
            write!(
                self.out,
                "\x1b[1mward\x1b[0m{:pad$} | ",
                "",
                pad = width.saturating_sub(4)
            )?;
        } else {
            write!(self.out, "{:width$} | ", "ward")?;
        }
        writeln!(self.out, "{text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects output; `gate` lets a test hold the printer still.
    #[derive(Clone, Default)]
    struct Capture {
        out: Arc<Mutex<Vec<u8>>>,
        gate: Arc<Mutex<()>>,
    }

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _held = lock(&self.gate);
            lock(&self.out).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Capture {
        fn text(&self) -> String {
            String::from_utf8(lock(&self.out).clone()).unwrap()
        }
    }

    #[test]
    fn prefixes_and_pads_lines() {
        let cap = Capture::default();
        let console = Console::with_output(8, false, Box::new(cap.clone()));
        let api = ConsoleLabel::new("api", 0);
        console.lines(&api, Bytes::from_static(b"hello\nworld\n"), 2);
        console.notice("api:0 exited (exit 1)");
        // The width applies to what is printed after the change.
        assert!(console.flush(Duration::from_secs(10)));
        console.set_width(10);
        console.lines(
            &ConsoleLabel::new("worker", 12),
            Bytes::from_static(b"x\n"),
            1,
        );
        assert!(console.flush(Duration::from_secs(10)));
        assert_eq!(
            cap.text(),
            "api:0    | hello\napi:0    | world\nward     | api:0 exited (exit 1)\nworker:12  | x\n"
        );
    }

    #[test]
    fn colours_names_when_asked() {
        let cap = Capture::default();
        let console = Console::with_output(5, true, Box::new(cap.clone()));
        console.lines(&ConsoleLabel::new("db", 1), Bytes::from_static(b"up\n"), 1);
        console.notice("hi");
        assert!(console.flush(Duration::from_secs(10)));
        let c = colour_of("db");
        assert_eq!(
            cap.text(),
            format!("\x1b[{c}mdb:1\x1b[0m  | up\n\x1b[1mward\x1b[0m  | hi\n")
        );
    }

    #[test]
    fn colours_are_stable_per_program() {
        assert_eq!(colour_of("api"), colour_of("api"));
        let distinct: std::collections::BTreeSet<u8> = ["api", "db", "web", "worker", "cache"]
            .iter()
            .map(|p| colour_of(p))
            .collect();
        assert!(distinct.len() > 1);
    }

    #[test]
    fn a_stuck_terminal_drops_lines_and_says_so() {
        let cap = Capture::default();
        let console = Console::with_output(5, false, Box::new(cap.clone()));
        let label = ConsoleLabel::new("api", 0);
        let chunk = Bytes::from(vec![b'x'; 70 * 1024]);
        let total = (MAX_QUEUED_BYTES / chunk.len()) as u64 + 50;
        {
            // The printer blocks on its first flush of a full buffer while
            // the gate is held; everything past the queue is dropped.
            let _stuck = lock(&cap.gate);
            for _ in 0..total {
                let mut data = chunk.to_vec();
                data.push(b'\n');
                console.lines(&label, Bytes::from(data), 1);
            }
            console.notice("api:0 exited");
        }
        assert!(console.flush(Duration::from_secs(30)));
        let text = cap.text();
        let shown = text.lines().filter(|l| l.starts_with("api:0 | x")).count() as u64;
        let note = text
            .lines()
            .find(|l| l.contains("lines not shown"))
            .expect("a note about dropped lines");
        let dropped: u64 = note
            .trim_start_matches("ward  | ")
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(dropped > 0);
        assert_eq!(shown + dropped, total);
        assert!(
            text.contains("ward  | api:0 exited\n"),
            "a notice is never dropped for lines"
        );
    }
}
