//! The control API and its CLI under stress and at the edges: connections
//! that never finish or never leave, usage errors, a start that cannot
//! succeed, follow streams when ward stops, a second `up --detach`.

use std::os::unix::net::UnixStream;

use crate::harness::*;

#[test]
fn start_fails_naming_a_completed_dependency_that_failed() {
    let ward = Ward::new(
        r#"
[program.migrate]
command = ["{testee}", "--exit", "1"]
restart = "never"

[program.web]
command = ["{testee}"]
depends_on = { migrate = "completed" }
"#,
    )
    .up();
    ward.wait_state("migrate", 0, "exited");
    ward.wait_state("web", 0, "waiting");
    let out = ward.ward(&["start", "web"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "start succeeded: {stdout}{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "web:0 waiting: dependency migrate:0 failed (exit 1); \
         it will not start until migrate completes\n\
         ward: 1 instance did not start: web:0",
        "stdout: {stdout}"
    );
    // The same through the API: the waiting instance names its blocker.
    let web = ward.instance("web", 0);
    assert_eq!(web["state"], "waiting");
    assert_eq!(web["waiting_on"][0]["instance"], "migrate:0", "{web}");
    assert_eq!(web["waiting_on"][0]["condition"], "completed", "{web}");
    assert_eq!(web["waiting_on"][0]["failed"], true, "{web}");
    ward.down();
}

/// Sends `request` (a whole HTTP/1.1 request, which should ask to close
/// the connection) on the control socket and returns everything ward
/// answers until it closes, bounded by `WAIT`.
fn raw_request(ward: &Ward, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = UnixStream::connect(ward.socket()).expect("connect to the socket");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The JSON body of a raw HTTP answer.
fn json_body(answer: &str) -> serde_json::Value {
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or_else(|| panic!("no body in {answer:?}"));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer:?}"))
}

const SIGNAL_NAMES: [&str; 13] = [
    "HUP", "INT", "QUIT", "ABRT", "KILL", "USR1", "USR2", "ALRM", "TERM", "CONT", "STOP", "TSTP",
    "WINCH",
];

fn assert_lists_signal_names(text: &str) {
    for name in SIGNAL_NAMES {
        assert!(text.contains(name), "{name} is not listed: {text}");
    }
}

#[test]
fn an_empty_or_unknown_signal_is_a_usage_error_before_the_daemon_is_asked() {
    // No daemon runs: the CLI must not even try to reach it.
    let ward = Ward::new("[program.api]\ncommand = [\"{testee}\"]\n");
    for bad in ["", "BOGUS", "SIGTERMINATE"] {
        let out = ward.ward(&["signal", bad, "api"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "signal {bad:?}: {err}");
        assert!(!err.contains("not running"), "asked the daemon: {err}");
        assert!(err.contains("signal"), "{err}");
        assert_lists_signal_names(&err);
    }
    // Names still work in every spelling (the CLI shows they are valid by
    // getting as far as "not running", exit 3).
    for good in ["hup", "SIGUSR1", "Term"] {
        let out = ward.ward(&["signal", good, "api"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "signal {good:?}: {err}");
        assert!(err.contains("not running"), "{err}");
    }
}

#[test]
fn the_api_answers_an_empty_or_unknown_signal_with_a_json_400() {
    let ward = Ward::new("[program.api]\ncommand = [\"{testee}\"]\n").up();
    ward.wait_state("api", 0, "running");
    for path in [
        "/v1/programs/api/signal/",
        "/v1/programs/api/signal",
        "/v1/programs/api/signal/BOGUS",
    ] {
        let answer = raw_request(
            &ward,
            &format!("POST {path} HTTP/1.1\r\nHost: ward\r\nConnection: close\r\n\r\n"),
        );
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer:?}");
        let body = json_body(&answer);
        let message = body["error"].as_str().unwrap_or_else(|| panic!("{body}"));
        assert!(message.contains("signal"), "{message}");
        assert_lists_signal_names(message);
    }
    // Nothing was signalled.
    assert_eq!(ward.instance("api", 0)["state"], "running");
    ward.down();
}

/// A program that says `started`, then on SIGUSR1 says `trapped SIGUSR1`
/// and exits 0 (and is restarted): output on demand.
const ON_DEMAND: &str = r#"
[program.x]
command = ["{testee}", "--echo", "started", "--trap", "USR1"]
"#;

/// Short limits, so that the tests see them act.
fn short_limits(header: &str, idle: &str, max: u32) -> String {
    format!(
        "[ward.api]\nheader_timeout = \"{header}\"\nidle_timeout = \"{idle}\"\n\
         max_connections_per_user = {max}\n"
    )
}

/// Waits (bounded by `WAIT`) for ward to close `stream`: true if it did,
/// false if the wait ran out. Whatever ward sent first is returned too.
fn closed_by_ward(stream: &mut UnixStream) -> (bool, Vec<u8>) {
    use std::io::Read;
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (true, got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (true, got),
            Err(_) => return (false, got),
        }
    }
}

/// Whether ward has closed `stream` already (without waiting).
fn already_closed(stream: &UnixStream) -> bool {
    use std::io::Read;
    stream.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 1];
    let closed = matches!((&*stream).read(&mut buf), Ok(0));
    stream.set_nonblocking(false).expect("blocking");
    closed
}

/// Reads one whole answer with a `content-length` from a kept-alive
/// connection; returns its head and body.
fn read_answer(stream: &mut UnixStream) -> (String, String) {
    use std::io::Read;
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or_else(|| panic!("no content-length: {head}"));
            if body.len() >= length {
                return (head.to_string(), body.to_string());
            }
        }
        let n = stream.read(&mut buf).expect("an answer");
        assert!(n > 0, "closed before the answer was whole: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn a_half_sent_head_and_an_idle_connection_are_closed_by_their_timeouts() {
    use std::io::Write;
    let ward = Ward::new(&format!("{}{ON_DEMAND}", short_limits("1s", "1s", 64))).up();
    ward.wait_state("x", 0, "running");

    // Half a request head, then nothing.
    let mut half = UnixStream::connect(ward.socket()).expect("connect");
    half.write_all(b"GET /v1/status HTTP/1.1\r\nHo")
        .expect("send");
    let (closed, got) = closed_by_ward(&mut half);
    assert!(closed, "a half-sent head was kept past {WAIT:?}");
    assert!(got.is_empty(), "ward answered half a head: {got:?}");

    // A connection that never says anything.
    let mut silent = UnixStream::connect(ward.socket()).expect("connect");
    let (closed, _) = closed_by_ward(&mut silent);
    assert!(closed, "a silent connection was kept past {WAIT:?}");

    // A kept-alive connection: answered, then closed once idle.
    let mut kept = UnixStream::connect(ward.socket()).expect("connect");
    kept.write_all(b"GET /v1/ping HTTP/1.1\r\nHost: ward\r\n\r\n")
        .expect("send");
    let (head, body) = read_answer(&mut kept);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.contains("\"pid\""), "{body}");
    let (closed, got) = closed_by_ward(&mut kept);
    assert!(
        closed,
        "an idle kept-alive connection was kept past {WAIT:?}"
    );
    assert!(got.is_empty(), "{got:?}");

    // ward itself is unharmed.
    ward.wait_state("x", 0, "running");
    ward.down();
}

#[test]
fn past_the_connection_limit_a_client_is_refused_clearly_until_idle_ones_go() {
    const MAX: usize = 4;
    let ward = Ward::new(&format!(
        "{}{ON_DEMAND}",
        short_limits("2s", "2s", MAX as u32)
    ))
    .up();
    ward.wait_state("x", 0, "running");
    // Hold the limit with connections that say nothing. They go after the
    // header timeout: should that pass before the CLI gets its answer (a
    // slow machine), hold them again.
    let deadline = std::time::Instant::now() + WAIT;
    let (holders, refusal) = loop {
        let holders: Vec<UnixStream> = (0..MAX)
            .map(|_| UnixStream::connect(ward.socket()).expect("connect"))
            .collect();
        let out = ward.ward(&["status"]);
        if !out.status.success() {
            break (holders, out);
        }
        assert!(
            holders.iter().any(already_closed),
            "served past the limit while {MAX} connections were open"
        );
        assert!(std::time::Instant::now() < deadline, "never refused");
    };
    let err = String::from_utf8_lossy(&refusal.stderr);
    assert_eq!(refusal.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("ward: too many connections"), "{err}");
    assert!(err.contains("max_connections_per_user"), "{err}");
    // The refusal is an HTTP answer a script can read too.
    let answer = raw_request(
        &ward,
        "GET /v1/status HTTP/1.1\r\nHost: ward\r\nConnection: close\r\n\r\n",
    );
    if !holders.iter().any(already_closed) {
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
        assert!(
            json_body(&answer)["error"]
                .as_str()
                .is_some_and(|e| e.contains("too many connections")),
            "{answer:?}"
        );
    }
    // Once the idle ones are gone, ward answers again.
    for mut holder in holders {
        let (closed, _) = closed_by_ward(&mut holder);
        assert!(closed, "an idle connection was kept past {WAIT:?}");
    }
    wait_until("ward status to work again", || {
        ward.ward(&["status"]).status.success()
    });
    ward.down();
}

/// A CLI command that runs on (`logs -f`, `events -f`): its stdout read
/// line by line on a thread, its stderr whole on another, its exit status
/// waited for. Dropping it kills it by pid.
struct Streamer {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Streamer {
    fn start(ward: &Ward, args: &[&str]) -> Streamer {
        Streamer::spawn(ward.command(args))
    }

    fn spawn(mut cmd: std::process::Command) -> Streamer {
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        let mut err = child.stderr.take().expect("piped stderr");
        let (err_tx, stderr) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            let _ = err_tx.send(text);
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Streamer {
            child,
            lines,
            stderr,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded by `within`) for a line containing `text`.
    fn wait_line(&mut self, text: &str, within: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.seen.push(line);
                    if found {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Waits (bounded by `WAIT`) for it to exit; its status and stderr.
    fn wait_exit(&mut self) -> (std::process::ExitStatus, String) {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // The rest of its output.
                while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_secs(1)) {
                    self.seen.push(line);
                }
                let err = self
                    .stderr
                    .recv_timeout(std::time::Duration::from_secs(1))
                    .unwrap_or_default();
                return (status, err);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{:?} did not end within {WAIT:?}; stdout so far: {:?}",
                self.child,
                self.seen
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Streamer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes `x` (the ON_DEMAND program) print a line, by SIGUSR1.
fn make_x_print(ward: &Ward) {
    ward.ok(&["signal", "USR1", "x"]);
}

/// Waits until events -f is surely subscribed: restarts `x` until a
/// `spawned` event comes through it.
fn wait_subscribed(ward: &Ward, events: &mut Streamer) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        ward.ok(&["restart", "x"]);
        if events.wait_line("\"spawned\"", std::time::Duration::from_secs(1)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "events -f showed no spawn; saw {:?}",
            events.seen
        );
    }
}

#[test]
fn follow_streams_outlive_the_idle_and_header_timeouts() {
    use std::io::Write;
    let ward = Ward::new(&format!("{}{ON_DEMAND}", short_limits("1s", "1s", 64))).up();
    ward.wait_state("x", 0, "running");
    let mut logs = Streamer::start(&ward, &["logs", "-f", "x"]);
    assert!(
        logs.wait_line("started", WAIT),
        "no output: {:?}",
        logs.seen
    );
    let mut events = Streamer::start(&ward, &["events", "-f"]);
    wait_subscribed(&ward, &mut events);
    // Proof that both timeouts have passed since the streams last moved:
    // a connection opened after them, answered and then left idle, and
    // one that never sent a byte, are both closed by ward.
    let mut kept = UnixStream::connect(ward.socket()).expect("connect");
    kept.write_all(b"GET /v1/ping HTTP/1.1\r\nHost: ward\r\n\r\n")
        .expect("send");
    read_answer(&mut kept);
    let mut silent = UnixStream::connect(ward.socket()).expect("connect");
    assert!(closed_by_ward(&mut kept).0, "idle connection kept");
    assert!(closed_by_ward(&mut silent).0, "silent connection kept");
    // The streams still stream.
    make_x_print(&ward);
    assert!(
        logs.wait_line("trapped SIGUSR1", WAIT),
        "logs -f stopped streaming: {:?}",
        logs.seen
    );
    assert!(
        events.wait_line("\"exited\"", WAIT),
        "events -f stopped streaming: {:?}",
        events.seen
    );
    ward.down();
}

#[test]
fn follow_streams_end_quietly_when_ward_goes_down() {
    let ward = Ward::new(ON_DEMAND).up();
    ward.wait_state("x", 0, "running");
    let mut logs = Streamer::start(&ward, &["logs", "-f", "x"]);
    assert!(
        logs.wait_line("started", WAIT),
        "no output: {:?}",
        logs.seen
    );
    let mut events = Streamer::start(&ward, &["events", "-f"]);
    wait_subscribed(&ward, &mut events);
    ward.down();
    for (what, streamer) in [("logs -f", &mut logs), ("events -f", &mut events)] {
        let (status, err) = streamer.wait_exit();
        assert!(status.success(), "{what} exited {status}: {err}");
        assert_eq!(err, "ward stopped\n", "{what}'s stderr");
    }
    // The last events before the end were streamed, not cut off.
    assert!(
        events
            .seen
            .iter()
            .any(|l| l.contains("\"to\":\"stopped\"") && l.contains("\"x:0\"")),
        "{:?}",
        events.seen
    );
}

#[test]
fn follow_streams_fail_when_the_connection_breaks() {
    let mut ward = Ward::new(ON_DEMAND).up();
    ward.wait_state("x", 0, "running");
    let mut logs = Streamer::start(&ward, &["logs", "-f", "x"]);
    assert!(
        logs.wait_line("started", WAIT),
        "no output: {:?}",
        logs.seen
    );
    let mut events = Streamer::start(&ward, &["events", "-f"]);
    wait_subscribed(&ward, &mut events);
    signal(ward.daemon_pid(), "KILL");
    ward.wait_daemon_exit();
    for (what, streamer) in [("logs -f", &mut logs), ("events -f", &mut events)] {
        let (status, err) = streamer.wait_exit();
        assert_eq!(status.code(), Some(1), "{what}: {err}");
        assert!(err.contains("broke"), "{what}'s stderr: {err}");
        assert!(!err.contains("ward stopped"), "{what}'s stderr: {err}");
    }
}

/// `ward ARGS` as nobody (uid and gid 65534), on `ward`'s socket.
fn as_nobody(ward: &Ward, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(WARD)
        .arg("--socket")
        .arg(ward.socket())
        .args(args)
        .current_dir("/")
        .env_remove("WARD_SOCKET")
        .env_remove("WARD_CONFIG")
        .env("NO_COLOR", "1");
    cmd
}

#[test]
fn another_user_at_the_connection_limit_does_not_lock_out_wards_own() {
    use std::os::unix::fs::PermissionsExt;
    const MAX: usize = 3;
    if !is_root() {
        eprintln!("skipped: needs root to run the CLI as another user");
        return;
    }
    let ward = Ward::new(&format!(
        "[ward]\nsocket_mode = \"0666\"\n{}{ON_DEMAND}",
        short_limits("5s", "5s", MAX as u32)
    ));
    let open = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(ward.path(), open.clone()).unwrap();
    let ward = ward.up();
    std::fs::set_permissions(ward.path().join(".ward"), open).unwrap();
    ward.wait_state("x", 0, "running");
    // nobody holds every connection it may have, with streams (which no
    // timeout ends).
    let mut held: Vec<Streamer> = (0..MAX)
        .map(|_| Streamer::spawn(as_nobody(&ward, &["logs", "-f", "x"])))
        .collect();
    for streamer in &mut held {
        assert!(
            streamer.wait_line("started", WAIT),
            "nobody's logs -f: {:?}",
            streamer.seen
        );
    }
    let out = run_bounded(as_nobody(&ward, &["status"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "nobody got past its limit");
    assert!(err.contains("too many connections: uid 65534"), "{err}");
    // ward's own user is not held up by nobody's connections.
    let list = ward.status();
    assert_eq!(list.len(), 1, "{list:?}");
    // Once nobody lets go, nobody gets in again.
    held.clear();
    wait_until("nobody to be served again", || {
        run_bounded(as_nobody(&ward, &["status"])).status.success()
    });
    ward.down();
}

#[test]
fn a_second_up_detach_says_only_why_it_failed() {
    // A program that crashes over and over, so that the first ward writes
    // to ward.log all the time.
    let ward = Ward::new(
        r#"
[program.x]
command = ["{testee}", "--exit", "1"]
min_uptime = "0s"
backoff = { initial = "5ms", max = "10ms", jitter = 0.0 }
"#,
    );
    let first = up_detached(&ward);
    let log = ward.path().join(".ward/ward.log");
    wait_until("the first ward to log the crash loop", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("x:0"))
            .count()
            >= 5
    });
    let out = ward.ward(&["up", "--detach"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Still logging: the attempt overlapped the first ward's writes.
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    ward.ok(&["down"]);
    let survivors = wait_gone(&[first.0]);
    kill_all(&survivors);
    assert!(survivors.is_empty(), "the first ward did not go down");

    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "another ward (pid {}) is already running",
            first.0
        )),
        "{said}"
    );
    assert!(
        said.contains("`ward status` talks to it, `ward down` stops it"),
        "{said}"
    );
    assert_eq!(said.lines().count(), 1, "one line: {said}");
    assert!(!said.contains("x:0"), "the first ward's lines: {said}");
    for line in said.lines() {
        assert!(
            line.starts_with("ward: another ward") || !logged.contains(line),
            "a line of ward.log: {line:?} in {said}"
        );
    }
    // The attempt's own report file is gone.
    let leftovers: Vec<_> = std::fs::read_dir(ward.path().join(".ward"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("ward.start."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn stats_count_starts_exits_log_lines_events_and_reloads() {
    let config = r#"
[program.crashy]
command = ["{testee}", "--echo", "hello", "--stderr", "--echo", "oops", "--exit", "1"]
backoff = { initial = "10ms", max = "10ms" }
start_limit = { burst = 5, interval = "1m" }
"#;
    let ward = Ward::new(config).up();
    let get = || {
        json_body(&raw_request(
            &ward,
            "GET /v1/stats HTTP/1.1\r\nhost: ward\r\nconnection: close\r\n\r\n",
        ))
    };
    // Five failed starts, then given up on: nothing races the counts.
    ward.wait_state("crashy", 0, "fatal");
    let stats = get();
    let crashy = &stats["instances"][0];
    assert_eq!(crashy["instance"], "crashy:0", "{stats}");
    let starts = crashy["starts"].as_u64().unwrap();
    assert_eq!(starts, 5, "{stats}");
    assert_eq!(crashy["exits"]["exit"].as_u64().unwrap(), starts, "{stats}");
    assert_eq!(crashy["exits"]["signal"], 0, "{stats}");
    assert_eq!(crashy["exits"]["spawn_failed"], 0, "{stats}");
    // Two lines a run, "hello" and "oops", each stored.
    assert_eq!(crashy["log_lines"].as_u64().unwrap(), 2 * starts, "{stats}");
    assert_eq!(
        crashy["log_bytes"].as_u64().unwrap(),
        ("hello\n".len() + "oops\n".len()) as u64 * starts,
        "{stats}"
    );
    assert_eq!(crashy["log_lines_dropped"], 0, "{stats}");
    assert_eq!(
        crashy["restarts"],
        ward.instance("crashy", 0)["restarts"],
        "{stats}"
    );
    // Every journaled event was counted (the journal may lag, never lead).
    let journal = ward.journal().len() as u64;
    assert!(journal > 0);
    assert!(stats["events"].as_u64().unwrap() >= journal, "{stats}");
    // A reload, and one refused.
    ward.write_config(&config.replace("hello", "hi"));
    ward.ok(&["reload"]);
    ward.write_config("[program.crashy]\ncommand = 5\n");
    assert!(!ward.ward(&["reload"]).status.success());
    let stats = get();
    assert_eq!(stats["reloads"], 1, "{stats}");
    assert_eq!(stats["reloads_rejected"], 1, "{stats}");
    ward.down();
}
