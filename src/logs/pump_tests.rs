use super::*;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::time::timeout;
use ward_core::{LogFormat, LogSpec};

const LIMIT: Duration = Duration::from_secs(30);

fn spec(dir: &Path, format: LogFormat, timestamps: bool) -> LogSpec {
    LogSpec {
        dir: dir.to_path_buf(),
        max_size: 64 << 20,
        keep: 3,
        format,
        timestamps,
        max_line: 1024,
        access: Default::default(),
        files: true,
        journald: false,
    }
}

fn label() -> RunLabel {
    RunLabel {
        program: Arc::from("api"),
        index: 0,
        run: 7,
        pid: 1234,
    }
}

type Drops = Arc<Mutex<Vec<(u64, String)>>>;

fn sinks() -> (Sinks, Drops) {
    let drops: Drops = Arc::default();
    let seen = Arc::clone(&drops);
    let sinks = Sinks {
        console: None,
        follow: broadcast::channel(1024).0,
        on_drop: Arc::new(move |lines, reason| lock(&seen).push((lines, reason))),
        counters: Arc::default(),
        journal: None,
    };
    (sinks, drops)
}

fn open(spec: &LogSpec) -> Arc<Mutex<InstanceLog>> {
    Arc::new(Mutex::new(InstanceLog::open("api", 0, spec)))
}

fn pipes() -> (crate::proc::testing::Input, crate::proc::Output) {
    crate::proc::testing::pipe()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

/// The lines of a text log with timestamps, timestamp cut off.
fn untimed(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            assert_eq!(&l[23..25], "Z ", "{l}");
            l[25..].to_owned()
        })
        .collect()
}

async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let waited = timeout(LIMIT, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for {what}");
}

fn receiver(
    fd: impl Into<std::process::Stdio> + Into<std::os::fd::OwnedFd>,
) -> crate::proc::Output {
    crate::proc::testing::output_of(fd)
}

#[tokio::test]
async fn drains_both_pipes_of_a_real_child_to_eof() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(&spec(tmp.path(), LogFormat::Text, true));
    let path = lock(&log).path().to_path_buf();
    let mut child = Command::new("sh")
        .args(["-c", "echo a; echo b >&2; printf 'no newline'"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = receiver(child.stdout.take().unwrap());
    let err = receiver(child.stderr.take().unwrap());
    let (sinks, drops) = sinks();
    let stats = timeout(LIMIT, pump(log, label(), out, err, sinks))
        .await
        .unwrap();
    assert!(child.wait().unwrap().success());

    let mut lines = untimed(&read(&path));
    lines.sort();
    assert_eq!(lines, ["stderr b", "stdout a", "stdout no newline"]);
    assert_eq!(
        stats.stdout,
        StreamStats {
            lines: 2,
            bytes: 12
        }
    );
    assert_eq!(stats.stderr, StreamStats { lines: 1, bytes: 2 });
    assert_eq!(stats.dropped, 0);
    assert!(lock(&drops).is_empty());
}

#[tokio::test]
async fn waits_for_every_holder_of_the_pipes() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(&spec(tmp.path(), LogFormat::Text, false));
    let path = lock(&log).path().to_path_buf();
    // The shell exits at once; its background child keeps the pipes open
    // and writes later.
    let mut child = Command::new("sh")
        .args([
            "-c",
            "echo early; (sleep 0.3; echo late; echo late-err >&2) &",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = receiver(child.stdout.take().unwrap());
    let err = receiver(child.stderr.take().unwrap());
    let (sinks, _) = sinks();
    let stats = timeout(LIMIT, pump(log, label(), out, err, sinks))
        .await
        .unwrap();
    assert!(child.wait().unwrap().success());
    let text = read(&path);
    assert!(text.starts_with("early\n"), "{text}");
    assert!(
        text.contains("late\n") && text.contains("late-err\n"),
        "{text}"
    );
    assert_eq!(stats.stdout.lines + stats.stderr.lines, 3);
}

#[tokio::test]
async fn splits_long_lines_and_marks_the_pieces() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(&spec(tmp.path(), LogFormat::Text, true));
    let path = lock(&log).path().to_path_buf();
    let (mut tx, out) = pipes();
    let (tx_err, err) = pipes();
    drop(tx_err);
    let (sinks, _) = sinks();
    let counters = Arc::clone(&sinks.counters);
    let pumping = tokio::spawn(pump(log, label(), out, err, sinks));

    let data = format!("{}\nshort\n{}", "A".repeat(2500), "B".repeat(1500));
    // Odd-sized writes, so that lines straddle reads.
    for piece in data.as_bytes().chunks(333) {
        tx.write_all(piece).await.unwrap();
        tokio::task::yield_now().await;
    }
    drop(tx);
    let stats = timeout(LIMIT, pumping).await.unwrap().unwrap();

    let expected = [
        format!("stdout+ {}", "A".repeat(1024)),
        format!("stdout+ {}", "A".repeat(1024)),
        format!("stdout {}", "A".repeat(452)),
        "stdout short".to_owned(),
        format!("stdout+ {}", "B".repeat(1024)),
        format!("stdout {}", "B".repeat(476)),
    ];
    assert_eq!(untimed(&read(&path)), expected);
    assert_eq!(stats.stdout.lines, 6);
    assert_eq!(stats.stdout.bytes, data.len() as u64);
    // The instance's shared counters (what `GET /v1/stats` shows) agree.
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(counters.lines.load(Relaxed), 6);
    assert_eq!(counters.bytes.load(Relaxed), data.len() as u64);
}

#[tokio::test]
async fn pieces_do_not_cut_characters() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(&spec(tmp.path(), LogFormat::Json, false));
    let path = lock(&log).path().to_path_buf();
    let (mut tx, out) = pipes();
    let (tx_err, err) = pipes();
    drop(tx_err);
    let (sinks, _) = sinks();
    let pumping = tokio::spawn(pump(log, label(), out, err, sinks));
    let line = format!("x{}", "é".repeat(600));
    tx.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    drop(tx);
    timeout(LIMIT, pumping).await.unwrap().unwrap();

    let docs: Vec<serde_json::Value> = read(&path)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["partial"], true);
    assert!(docs[1].get("partial").is_none());
    let first = docs[0]["line"].as_str().unwrap();
    let second = docs[1]["line"].as_str().unwrap();
    assert_eq!(first.len(), 1023);
    assert_eq!(format!("{first}{second}"), line);
}

#[test]
fn piece_boundaries() {
    assert_eq!(piece_len(b"abcdef", 4), 4);
    let s = "aé€😀".as_bytes(); // 1 + 2 + 3 + 4 bytes
    assert_eq!(piece_len(s, 2), 1);
    assert_eq!(piece_len(s, 3), 3);
    assert_eq!(piece_len(s, 4), 3);
    assert_eq!(piece_len(s, 5), 3);
    assert_eq!(piece_len(s, 7), 6);
    assert_eq!(piece_len(s, 9), 6);
    // No boundary within reach: cut where the limit says.
    assert_eq!(piece_len(&[0x80; 10], 5), 5);
    assert_eq!(piece_len("😀😀".as_bytes(), 1), 1);
}

#[tokio::test]
async fn json_lines_name_the_run_and_embed_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(&spec(tmp.path(), LogFormat::Json, true));
    let path = lock(&log).path().to_path_buf();
    let (mut tx, out) = pipes();
    let (mut tx_err, err) = pipes();
    let (sinks, _) = sinks();
    let pumping = tokio::spawn(pump(log, label(), out, err, sinks));
    tx.write_all(b"{\"level\":\"info\",\"msg\":\"up\"}\nplain \"quoted\"\n")
        .await
        .unwrap();
    tx_err.write_all(b"tail without newline").await.unwrap();
    drop((tx, tx_err));
    timeout(LIMIT, pumping).await.unwrap().unwrap();

    let docs: Vec<serde_json::Value> = read(&path)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 3);
    for doc in &docs {
        assert_eq!(doc["program"], "api");
        assert_eq!(doc["instance"], 0);
        assert_eq!(doc["run"], 7);
        assert_eq!(doc["pid"], 1234);
        assert_eq!(doc["ts"].as_str().unwrap().len(), 24);
    }
    let out: Vec<_> = docs.iter().filter(|d| d["stream"] == "stdout").collect();
    assert_eq!(out[0]["line"]["msg"], "up");
    assert_eq!(out[1]["line"], "plain \"quoted\"");
    let err: Vec<_> = docs.iter().filter(|d| d["stream"] == "stderr").collect();
    assert_eq!(err[0]["line"], "tail without newline");
}

/// Writes to a real file, or to /dev/full (a real ENOSPC) while `full` is set.
struct Switch {
    file: File,
    dev_full: File,
    full: Arc<AtomicBool>,
    attempts: Arc<AtomicUsize>,
}

impl Write for Switch {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let result = if self.full.load(Ordering::SeqCst) {
            self.dev_full.write(buf)
        } else {
            self.file.write(buf)
        };
        // Counted once done, so that a test seeing the count sees the result.
        self.attempts.fetch_add(1, Ordering::SeqCst);
        result
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn switch(log: &Arc<Mutex<InstanceLog>>, full: bool) -> (Arc<AtomicBool>, Arc<AtomicUsize>) {
    let mut log = lock(log);
    let file = OpenOptions::new().append(true).open(log.path()).unwrap();
    let dev_full = OpenOptions::new().write(true).open("/dev/full").unwrap();
    let full = Arc::new(AtomicBool::new(full));
    let attempts = Arc::new(AtomicUsize::new(0));
    log.replace_writer(Box::new(Switch {
        file,
        dev_full,
        full: Arc::clone(&full),
        attempts: Arc::clone(&attempts),
    }));
    (full, attempts)
}

#[tokio::test]
async fn a_full_disk_drops_lines_and_reports_them_when_writes_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(&spec(tmp.path(), LogFormat::Text, false));
    let path = lock(&log).path().to_path_buf();
    let (full, attempts) = switch(&log, true);
    let (mut tx, out) = pipes();
    let (tx_err, err) = pipes();
    let (sinks, drops) = sinks();
    let pumping = tokio::spawn(pump(Arc::clone(&log), label(), out, err, sinks));

    tx.write_all(b"lost 1\nlost 2\n").await.unwrap();
    wait_for("the failed write", || attempts.load(Ordering::SeqCst) > 0).await;
    assert!(lock(&drops).is_empty(), "reported before writes resume");
    full.store(false, Ordering::SeqCst);
    tx.write_all(b"kept\n").await.unwrap();
    wait_for("the drop report", || !lock(&drops).is_empty()).await;
    assert_eq!(
        *lock(&drops),
        [(2, "No space left on device (os error 28)".to_owned())]
    );
    drop((tx, tx_err));
    let stats = timeout(LIMIT, pumping).await.unwrap().unwrap();
    assert_eq!(read(&path), "kept\n");
    assert_eq!(stats.stdout.lines, 3);
    assert_eq!(stats.dropped, 2);
    assert_eq!(lock(&drops).len(), 1);
}

#[tokio::test]
async fn drops_still_pending_at_the_end_are_reported_before_returning() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(&spec(tmp.path(), LogFormat::Json, true));
    switch(&log, true);
    let (mut tx, out) = pipes();
    let (mut tx_err, err) = pipes();
    let (sinks, drops) = sinks();
    let pumping = tokio::spawn(pump(log, label(), out, err, sinks));
    tx.write_all(b"1\n2\n").await.unwrap();
    tx_err.write_all(b"3\n").await.unwrap();
    drop((tx, tx_err));
    let stats = timeout(LIMIT, pumping).await.unwrap().unwrap();
    assert_eq!(stats.dropped, 3);
    let drops = lock(&drops).clone();
    assert_eq!(drops.iter().map(|d| d.0).sum::<u64>(), 3);
    assert!(
        drops.iter().all(|d| d.1.contains("os error 28")),
        "{drops:?}"
    );
}

/// Writes to a file, but blocks while `hold` is set: a disk that stalls.
struct Stall {
    file: File,
    hold: Arc<AtomicBool>,
}

impl Write for Stall {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        while self.hold.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_stalled_disk_never_stops_the_pipes_from_draining() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(&spec(tmp.path(), LogFormat::Text, false));
    let path = lock(&log).path().to_path_buf();
    let hold = Arc::new(AtomicBool::new(true));
    {
        let mut log = lock(&log);
        let file = OpenOptions::new().append(true).open(log.path()).unwrap();
        log.replace_writer(Box::new(Stall {
            file,
            hold: Arc::clone(&hold),
        }));
    }
    let (mut tx, out) = pipes();
    let (tx_err, err) = pipes();
    let (sinks, drops) = sinks();
    let pumping = tokio::spawn(pump(log, label(), out, err, sinks));

    // 8 MiB through a 64 KiB pipe: this only completes if the pump keeps
    // reading while its writer is stuck.
    let total = 80_000u64;
    let data: String = (0..total).map(|i| format!("{i:0>104}\n")).collect();
    timeout(LIMIT, tx.write_all(data.as_bytes()))
        .await
        .expect("the child side was blocked by a stalled disk")
        .unwrap();
    hold.store(false, Ordering::SeqCst);
    drop((tx, tx_err));
    let stats = timeout(LIMIT, pumping).await.unwrap().unwrap();

    let text = read(&path);
    let kept = text.lines().count() as u64;
    assert!(stats.dropped > 0);
    assert_eq!(kept + stats.dropped, total);
    assert_eq!(stats.stdout.lines, total);
    let drops = lock(&drops).clone();
    assert_eq!(drops.iter().map(|d| d.0).sum::<u64>(), stats.dropped);
    assert!(drops.iter().all(|d| d.1 == BEHIND), "{drops:?}");
    // What was kept is whole lines, in order.
    let mut last = None;
    for line in text.lines() {
        assert_eq!(line.len(), 104);
        let n: u64 = line.parse().unwrap();
        assert!(last < Some(n));
        last = Some(n);
    }
}

#[tokio::test]
async fn a_hung_disk_does_not_hang_the_pump() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(&spec(tmp.path(), LogFormat::Text, false));
    let path = lock(&log).path().to_path_buf();
    let hold = Arc::new(AtomicBool::new(true));
    {
        let mut log = lock(&log);
        let file = OpenOptions::new().append(true).open(log.path()).unwrap();
        log.replace_writer(Box::new(Stall {
            file,
            hold: Arc::clone(&hold),
        }));
    }
    let (mut tx, out) = pipes();
    let (tx_err, err) = pipes();
    let (sinks, drops) = sinks();
    let pumping = tokio::spawn(pump(log, label(), out, err, sinks));
    tx.write_all(b"queued\n").await.unwrap();
    drop((tx, tx_err));
    let stats = timeout(LIMIT, pumping)
        .await
        .expect("the pump waited for a hung writer")
        .unwrap();
    assert_eq!(stats.stdout.lines, 1);
    assert_eq!(read(&path), "");
    // The writer finishes on its own once the disk answers.
    hold.store(false, Ordering::SeqCst);
    wait_for("the late write", || read(&path) == "queued\n").await;
    assert!(lock(&drops).is_empty());
}

#[tokio::test]
async fn followers_get_exactly_what_the_file_gets() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(&spec(tmp.path(), LogFormat::Json, true));
    let path = lock(&log).path().to_path_buf();
    let (mut tx, out) = pipes();
    let (mut tx_err, err) = pipes();
    let (sinks, _) = sinks();
    let mut follower = sinks.follow.subscribe();
    let pumping = tokio::spawn(pump(log, label(), out, err, sinks));
    for i in 0..200 {
        tx.write_all(format!("out {i}\n").as_bytes()).await.unwrap();
        tx_err
            .write_all(format!("err {i}\n").as_bytes())
            .await
            .unwrap();
    }
    drop((tx, tx_err));
    timeout(LIMIT, pumping).await.unwrap().unwrap();
    let mut followed = Vec::new();
    while let Ok(chunk) = follower.try_recv() {
        followed.extend_from_slice(&chunk);
    }
    assert_eq!(String::from_utf8(followed).unwrap(), read(&path));
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_console_shows_raw_lines_with_the_instance_name() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(&spec(tmp.path(), LogFormat::Json, true));
    let capture = Capture::default();
    let console = Console::with_output(7, false, Box::new(capture.clone()));
    let (mut sinks, _) = sinks();
    sinks.console = Some(console.clone());
    let (mut tx, out) = pipes();
    let (tx_err, err) = pipes();
    let pumping = tokio::spawn(pump(log, label(), out, err, sinks));
    tx.write_all(b"hello\n{\"a\":1}\nbye").await.unwrap();
    drop((tx, tx_err));
    timeout(LIMIT, pumping).await.unwrap().unwrap();
    assert!(console.flush(LIMIT));
    assert_eq!(
        String::from_utf8(lock(&capture.0).clone()).unwrap(),
        "api:0   | hello\napi:0   | {\"a\":1}\napi:0   | bye\n"
    );
}

#[tokio::test]
async fn rotates_while_pumping_without_losing_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = spec(tmp.path(), LogFormat::Text, true);
    s.max_size = 64 * 1024;
    s.keep = 100;
    let log = open(&s);
    let path = lock(&log).path().to_path_buf();
    let (mut tx, out) = pipes();
    let (tx_err, err) = pipes();
    let (sinks, _) = sinks();
    let pumping = tokio::spawn(pump(log, label(), out, err, sinks));
    let total = 20_000;
    let data: String = (0..total).map(|i| format!("{i:012} payload\n")).collect();
    tx.write_all(data.as_bytes()).await.unwrap();
    drop((tx, tx_err));
    timeout(LIMIT, pumping).await.unwrap().unwrap();

    let mut files = vec![path.clone()];
    files.extend(
        (1..=100)
            .map(|n| super::super::rotate::rotated_path(&path, n))
            .take_while(|p| p.exists()),
    );
    assert!(files.len() > 5, "{} files", files.len());
    let mut numbers = Vec::new();
    for file in files.iter().rev() {
        let text = read(file);
        assert!(text.len() as u64 <= s.max_size);
        assert!(text.ends_with('\n'));
        for line in untimed(&text) {
            let n: u64 = line["stdout ".len().."stdout ".len() + 12].parse().unwrap();
            numbers.push(n);
        }
    }
    assert_eq!(numbers, (0..total).collect::<Vec<u64>>());
}

/// A program that floods its output gets a larger pipe (once a read finds
/// the default pipe full), so that reads, and what they cost, grow too.
#[tokio::test]
async fn a_flooding_program_gets_a_larger_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(&spec(tmp.path(), LogFormat::Text, true));
    let (mut tx, out) = pipes();
    let (tx_err, err) = pipes();
    let (sinks, _) = sinks();
    let pumping = tokio::spawn(pump(log, label(), out, err, sinks));
    let size = |end: &crate::proc::testing::Input| crate::proc::testing::pipe_size(end);
    assert_eq!(size(&tx), PIPE_DEFAULT_SIZE);
    let block: String = (0..1000).map(|i| format!("{i:099}\n")).collect();
    let mut written = 0;
    while size(&tx) < FLOOD_PIPE_SIZE && written < 256 << 20 {
        timeout(LIMIT, tx.write_all(block.as_bytes()))
            .await
            .unwrap()
            .unwrap();
        written += block.len();
    }
    assert_eq!(
        size(&tx),
        FLOOD_PIPE_SIZE,
        "still the default pipe after {written} bytes"
    );
    drop((tx, tx_err));
    timeout(LIMIT, pumping).await.unwrap().unwrap();
}

#[tokio::test]
async fn lines_go_to_the_journal_with_fields_of_their_own_and_no_file_when_files_are_off() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("journal.sock");
    let journald = crate::transport::testing::Datagrams::bind(&socket);
    let mut spec = spec(tmp.path(), LogFormat::Text, true);
    spec.files = false;
    spec.journald = true;
    let log = Arc::new(Mutex::new(InstanceLog::new("api", 0, &spec)));
    let path = lock(&log).path().to_path_buf();
    let (mut sinks, drops) = sinks();
    let journal = ward_service::journal::Journal::connect_to(&socket).unwrap();
    sinks.journal = Some(super::super::JournalSink::new(Arc::new(journal), &label()));
    let mut follow = sinks.follow.subscribe();
    let (mut out_tx, out) = pipes();
    let (mut err_tx, err) = pipes();
    out_tx.write_all(b"one\ntwo\n").await.unwrap();
    err_tx.write_all(b"bad\n").await.unwrap();
    drop((out_tx, err_tx));
    let stats = timeout(LIMIT, pump(log, label(), out, err, sinks))
        .await
        .unwrap();
    assert_eq!(stats.stdout.lines + stats.stderr.lines, 3);

    let records: Vec<String> = journald
        .drain()
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .collect();
    let of = |message: &str| {
        records
            .iter()
            .find(|r| r.starts_with(&format!("MESSAGE={message}\n")))
            .unwrap_or_else(|| panic!("no record of {message:?} in {records:?}"))
            .clone()
    };
    let one = of("one");
    for field in [
        "PRIORITY=6\n",
        "SYSLOG_IDENTIFIER=api\n",
        "SYSLOG_PID=1234\n",
        "WARD_PROGRAM=api\n",
        "WARD_INSTANCE=0\n",
        "WARD_RUN=7\n",
    ] {
        assert!(one.contains(field), "{field:?} not in {one:?}");
    }
    assert!(of("bad").contains("PRIORITY=4\n"), "stderr is a warning");
    of("two");
    assert_eq!(records.len(), 3);
    // No file at all, but followers still see the lines.
    assert!(!path.exists());
    let mut followed = Vec::new();
    while let Ok(chunk) = follow.try_recv() {
        followed.extend_from_slice(&chunk);
    }
    let followed = String::from_utf8_lossy(&followed);
    assert!(
        followed.contains("one") && followed.contains("bad"),
        "{followed}"
    );
    assert!(lock(&drops).is_empty());
}

#[tokio::test]
async fn a_journal_that_does_not_take_lines_costs_those_lines_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("journal.sock");
    // Nobody reads: once the socket's buffer is full, records are refused.
    let _journald = crate::transport::testing::Datagrams::bind(&socket);
    let mut spec = spec(tmp.path(), LogFormat::Text, true);
    spec.journald = true;
    let log = open(&spec);
    let path = lock(&log).path().to_path_buf();
    let (mut sinks, drops) = sinks();
    let journal = ward_service::journal::Journal::connect_to(&socket).unwrap();
    sinks.journal = Some(super::super::JournalSink::new(Arc::new(journal), &label()));
    let (mut out_tx, out) = pipes();
    let (err_tx, err) = pipes();
    drop(err_tx);
    let pumping = tokio::spawn(pump(log, label(), out, err, sinks));
    let line = format!("{}\n", "x".repeat(1000));
    for _ in 0..5000 {
        out_tx.write_all(line.as_bytes()).await.unwrap();
    }
    drop(out_tx);
    timeout(LIMIT, pumping).await.unwrap().unwrap();
    // The file has every line; the journal's losses are said.
    assert_eq!(read(&path).lines().count(), 5000);
    let dropped: u64 = lock(&drops)
        .iter()
        .filter(|(_, why)| why.contains("journald did not take them"))
        .map(|(n, _)| n)
        .sum();
    assert!(
        dropped > 0 && dropped < 5000,
        "{dropped} lines said dropped"
    );
    let reports = lock(&drops)
        .iter()
        .filter(|(_, why)| why.contains("journald"))
        .count();
    assert_eq!(reports, 1, "one outage, one report");
}
