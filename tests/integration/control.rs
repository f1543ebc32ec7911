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
        "ward: web:0 waiting: dependency migrate:0 failed (exit 1); \
         it will not start until migrate completes",
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
    // Names still work in every spelling (the daemon answers they are
    // valid by getting as far as "not running").
    for good in ["hup", "SIGUSR1", "Term"] {
        let out = ward.ward(&["signal", good, "api"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "signal {good:?}: {err}");
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
