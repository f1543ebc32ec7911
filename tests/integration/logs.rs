//! Log capture: every line, timestamped, formatted, rotated, tailed and
//! followed.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
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

#[test]
fn logs_rotate_by_renaming() {
    let ward = Ward::new(
        r#"
[program.big]
command = ["{testee}", "--lines", "3000", "--size", "100", "--exit", "0"]
restart = "never"
min_uptime = "0s"
logs = { max_size = "64KiB", keep = 3, timestamps = false }
"#,
    )
    .up();
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
    let ward = Ward::new(
        r#"
[program.ticker]
command = ["{testee}", "--echo", "first", "--sleep", "1s", "--echo", "second", "--forever"]
"#,
    )
    .up();
    ward.wait_state("ticker", 0, "running");
    let mut follower = Command::new(WARD)
        .arg("--config")
        .arg(ward.config())
        .args(["logs", "-f", "ticker:0", "-n", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("second")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    let _ = follower.kill();
    let _ = follower.wait();
    assert!(seen.iter().any(|l| l.contains("first")), "{seen:?}");
    assert!(seen.iter().any(|l| l.contains("second")), "{seen:?}");
    ward.down();
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
