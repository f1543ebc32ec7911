//! Log capture: every line, timestamped, formatted, rotated, tailed and
//! followed.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::harness::*;

#[test]
fn every_line_is_captured_with_a_timestamp_including_the_partial_last_one() {
    let ward = Ward::new(
        r#"
[program.burst]
command = ["{testee}", "--lines", "5000", "--size", "100", "--partial", "tail-without-newline", "--exit", "0"]
restart = "never"
min_uptime = "0s"
"#,
    )
    .up();
    ward.wait_state("burst", 0, "exited");
    let text = std::fs::read_to_string(ward.path().join(".ward/logs/burst.0.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5001, "every line, and the partial one");
    for (i, line) in lines[..5000].iter().enumerate() {
        // `2026-11-21T15:44:13.123Z stdout 000000000042...`
        let (ts, rest) = line.split_once(' ').unwrap();
        assert_eq!(ts.len(), 24, "{line}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{line}");
        let rest = rest.strip_prefix("stdout ").expect("stream word");
        assert!(
            rest.starts_with(&format!("{i:012}")),
            "line {i} out of order: {line}"
        );
    }
    assert!(lines[5000].ends_with("stdout tail-without-newline"));
    // The tail through the API.
    let out = ward.ok(&["logs", "burst", "-n", "2"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("tail-without-newline"));
    ward.down();
}

#[test]
fn json_lines_embed_json_output_as_objects() {
    let ward = Ward::new(
        r#"
[program.j]
command = ["{testee}", "--echo", "plain \"quoted\"", "--echo", "{\"level\":\"info\",\"n\":1}", "--exit", "0"]
restart = "never"
min_uptime = "0s"
logs = { format = "json" }
"#,
    )
    .up();
    ward.wait_state("j", 0, "exited");
    let text = std::fs::read_to_string(ward.path().join(".ward/logs/j.0.log")).unwrap();
    let docs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["line"], "plain \"quoted\"");
    assert_eq!(docs[0]["program"], "j");
    assert_eq!(docs[0]["instance"], 0);
    assert_eq!(docs[0]["stream"], "stdout");
    assert!(docs[0]["run"].as_u64().is_some());
    assert!(docs[0]["pid"].as_u64().is_some());
    assert!(docs[0]["ts"].as_str().unwrap().ends_with('Z'));
    assert_eq!(docs[1]["line"]["level"], "info");
    assert_eq!(docs[1]["line"]["n"], 1);
    ward.down();
}

/// 3000 lines of 100 bytes into files of at most 64 KiB, three kept.
const ROTATING: &str = r#"
[program.big]
command = ["{testee}", "--lines", "3000", "--size", "100", "--exit", "0"]
restart = "never"
min_uptime = "0s"
logs = { max_size = "64KiB", keep = 3, timestamps = false }
"#;

#[test]
fn logs_rotate_by_renaming() {
    let ward = Ward::new(ROTATING).up();
    ward.wait_state("big", 0, "exited");
    let dir = ward.path().join(".ward/logs");
    let mut total = 0;
    for name in ["big.0.log", "big.0.log.1", "big.0.log.2", "big.0.log.3"] {
        let meta = std::fs::metadata(dir.join(name)).unwrap_or_else(|_| panic!("{name} exists"));
        assert!(meta.len() <= 64 * 1024, "{name} is {} bytes", meta.len());
        total += 1;
    }
    assert_eq!(total, 4);
    assert!(!dir.join("big.0.log.4").exists(), "keep = 3");
    // The newest lines are in the current file, the oldest kept in .3.
    let current = std::fs::read_to_string(dir.join("big.0.log")).unwrap();
    assert!(
        current.contains(&format!("{:012}", 2999)),
        "the newest line is in the current file"
    );
    ward.down();
}

#[test]
fn logs_follow_streams_new_lines() {
    // One numbered line every 100 ms, for as long as it runs: whatever the
    // follower shows with `-n 0` can only have come through the stream.
    let ward = Ward::new(
        r#"
[program.ticker]
command = "i=0; while :; do echo tick-$i; i=$((i+1)); sleep 0.1; done"
shell = true
"#,
    )
    .up();
    let log = ward.path().join(".ward/logs/ticker.0.log");
    wait_until("the first tick in the file", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("tick-0"))
    });
    let follower = Follower::start(&ward, &["logs", "-f", "ticker:0", "-n", "0"]);
    // Every tick up to this one was in the file before the follower could
    // connect.
    let in_file = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(tick)
        .max()
        .expect("ticks in the file");
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match follower.next_line(deadline) {
            Some(line) => seen.push(line),
            None => break,
        }
    }
    drop(follower);
    assert!(seen.len() >= 3, "three lines streamed: {seen:?}");
    for line in &seen {
        let n = tick(line).unwrap_or_else(|| panic!("not a tick: {line:?} in {seen:?}"));
        assert!(
            n > in_file,
            "tick-{n} was in the file before the follower started (-n 0): {seen:?}"
        );
        assert!(line.contains(" stdout tick-"), "stored format: {line:?}");
    }
    let ticks: Vec<u64> = seen.iter().filter_map(|l| tick(l)).collect();
    assert!(ticks.windows(2).all(|w| w[0] + 1 == w[1]), "{seen:?}");
    ward.down();
}

/// The number in a `tick-N` line.
fn tick(line: &str) -> Option<u64> {
    line.rsplit_once("tick-")?.1.trim().parse().ok()
}

#[test]
fn a_long_line_is_split_and_every_piece_but_the_last_is_marked() {
    let ward = Ward::new(
        r#"
[program.text]
command = ["{testee}", "--long", "2500", "--echo", "short", "--exit", "0"]
restart = "never"
logs = { max_line = "1KiB" }
[program.json]
command = ["{testee}", "--long", "2500", "--echo", "short", "--exit", "0"]
restart = "never"
logs = { max_line = "1KiB", format = "json" }
"#,
    )
    .up();
    ward.wait_state("text", 0, "exited");
    ward.wait_state("json", 0, "exited");
    let dir = ward.path().join(".ward/logs");

    let text = std::fs::read_to_string(dir.join("text.0.log")).unwrap();
    let lines: Vec<(&str, &str)> = text
        .lines()
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let _ts = parts.next();
            (parts.next().unwrap_or(""), parts.next().unwrap_or(""))
        })
        .collect();
    assert_eq!(lines.len(), 4, "three pieces and the short line:\n{text}");
    let streams: Vec<&str> = lines.iter().map(|l| l.0).collect();
    assert_eq!(
        streams,
        ["stdout+", "stdout+", "stdout", "stdout"],
        "{text}"
    );
    let sizes: Vec<usize> = lines[..3].iter().map(|l| l.1.len()).collect();
    assert_eq!(sizes, [1024, 1024, 452], "{text}");
    assert!(lines[..3].iter().all(|l| l.1.bytes().all(|b| b == b'x')));
    assert_eq!(lines[3].1, "short");

    let json = std::fs::read_to_string(dir.join("json.0.log")).unwrap();
    let docs: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(docs.len(), 4, "{json}");
    for doc in &docs[..2] {
        assert_eq!(doc["partial"], true, "{doc}");
    }
    for doc in &docs[2..] {
        assert!(doc.get("partial").is_none_or(|p| p == false), "{doc}");
    }
    let joined: String = docs[..3]
        .iter()
        .map(|d| d["line"].as_str().expect("a piece is a string"))
        .collect();
    assert_eq!(joined, "x".repeat(2500));
    assert_eq!(docs[3]["line"], "short");
    ward.down();
}

#[test]
fn logs_n_reads_across_rotation_in_order() {
    let ward = Ward::new(ROTATING).up();
    ward.wait_state("big", 0, "exited");
    let dir = ward.path().join(".ward/logs");
    let count = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .lines()
            .count()
    };
    let current = count("big.0.log");
    let first = count("big.0.log.1");
    // Past the current file and the whole of .1, into .2.
    let n = current + first + 10;
    assert!(n <= 3000, "the files hold more than the program wrote");
    let out = ward.ok(&["logs", "big", "-n", &n.to_string()]);
    let numbers: Vec<usize> = out
        .lines()
        .map(|l| {
            l.get(..12)
                .and_then(|d| d.parse().ok())
                .unwrap_or_else(|| panic!("not a numbered line: {l:?}"))
        })
        .collect();
    let expected: Vec<usize> = (3000 - n..3000).collect();
    assert_eq!(numbers, expected, "the last {n} lines, in order");
    ward.down();
}

#[test]
fn no_colour_when_stdout_is_not_a_terminal() {
    let mut ward = Ward::new(
        r#"
[program.hello]
command = ["{testee}", "--echo", "hello from testee", "--forever"]
"#,
    );
    // NO_COLOR unset: only "stdout is a file" may turn the colour off.
    ward.spawn_daemon_with(&[], &["NO_COLOR", "CLICOLOR_FORCE", "FORCE_COLOR"]);
    ward.wait_answering();
    ward.wait_state("hello", 0, "running");
    wait_until("the line on ward's stdout", || {
        ward.daemon_stdout().contains("hello from testee")
    });
    ward.ok(&["down"]);
    let status = ward.wait_daemon_exit();
    assert!(status.success(), "{status}");
    let out = std::fs::read(ward.path().join("ward.out")).unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(!out.contains(&0x1b), "escape codes in a file: {text:?}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("hello:0") && l.ends_with("| hello from testee")),
        "{text}"
    );
}

#[test]
fn foreground_output_is_prefixed_with_the_instance_name() {
    let ward = Ward::new(
        r#"
[program.hello]
command = ["{testee}", "--echo", "hello from testee", "--forever"]
"#,
    )
    .up();
    ward.wait_state("hello", 0, "running");
    wait_until("the line on ward's stdout", || {
        let mut out = String::new();
        if let Ok(mut f) = std::fs::File::open(ward.path().join("ward.out")) {
            let _ = f.read_to_string(&mut out);
        }
        out.lines()
            .any(|l| l.starts_with("hello:0") && l.ends_with("hello from testee"))
    });
    std::thread::sleep(Duration::from_millis(10));
    ward.down();
}

#[test]
fn logs_of_several_instances_are_prefixed_and_aligned() {
    let ward = Ward::new(
        r#"
[program.a]
command = ["{testee}", "--echo", "from a", "--forever"]
[program.longer]
command = ["{testee}", "--echo", "from longer", "--forever"]
"#,
    )
    .up();
    wait_until("both lines", || {
        ward.ok(&["logs", "all", "-n", "5"]).lines().count() == 2
    });
    let out = ward.ok(&["logs", "all", "-n", "5"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.iter().any(|l| l.starts_with("a:0      | ")), "{out}");
    assert!(lines.iter().any(|l| l.starts_with("longer:0 | ")), "{out}");
    ward.down();
}

/// `ward logs -f` with its output on a terminal (`script` gives it one).
fn follow_on_a_terminal(ward: &Ward, target: &str, colour: bool) -> Follower {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let line = format!(
        "{} --config {} logs -f -n 0 {target}",
        quote(WARD),
        quote(&ward.config().display().to_string())
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qfec", &line, "/dev/null"])
        .current_dir(ward.path())
        .env_remove("WARD_SOCKET")
        .env_remove("WARD_CONFIG");
    if colour {
        cmd.env_remove("NO_COLOR");
    } else {
        cmd.env("NO_COLOR", "1");
    }
    Follower::spawn(cmd)
}

#[test]
fn logs_follow_marks_each_new_run_on_a_terminal_only() {
    let ward = Ward::new(
        r#"
[program.x]
command = ["{testee}", "--echo", "hello", "--exit", "1", "--after", "300ms"]
backoff = { initial = "300ms", max = "300ms" }
start_limit = { burst = 1000 }
"#,
    )
    .up();
    let piped = Follower::start(&ward, &["logs", "-f", "-n", "0", "x"]);
    for colour in [true, false] {
        let tty = follow_on_a_terminal(&ward, "x", colour);
        let deadline = Instant::now() + WAIT;
        let mark = loop {
            let line = tty
                .next_line(deadline)
                .expect("a restart mark on the terminal");
            if line.contains("restarted") {
                break line;
            }
        };
        let mark = mark.trim_end_matches('\r');
        let (start, end) = if colour {
            ("\x1b[2m", "\x1b[22m")
        } else {
            ("", "")
        };
        let text = mark
            .strip_prefix(start)
            .and_then(|m| m.strip_suffix(end))
            .unwrap_or_else(|| panic!("colour {colour}: {mark:?}"));
        let run = text
            .strip_prefix("— x:0 restarted (exit 1), run ")
            .and_then(|r| r.strip_suffix(" —"))
            .unwrap_or_else(|| panic!("{text:?}"));
        assert!(run.parse::<u64>().is_ok(), "{text:?}");
    }
    // Piped output and the files have the program's lines only: the
    // piped follower saw several runs (several lines), and no mark.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut piped_lines = 0;
    while let Some(line) = piped.next_line(deadline) {
        assert!(!line.contains("restarted"), "{line:?}");
        assert!(line.ends_with("hello"), "{line:?}");
        piped_lines += 1;
    }
    assert!(
        piped_lines >= 2,
        "the piped follower saw {piped_lines} lines"
    );
    let file = std::fs::read_to_string(ward.path().join(".ward/logs/x.0.log")).unwrap();
    assert!(!file.contains("restarted"), "{file}");
    ward.down();
}
