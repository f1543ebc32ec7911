//! `ward events` for people: one line an event (time, instance, what
//! happened), or the journal's JSON lines as they are for tools.

use std::io::Write;

use serde_json::Value;

/// Prints journal lines (JSON objects, one a line) as they arrive in
/// pieces: as they are, or in words.
pub struct EventPrinter {
    human: bool,
    pending: Vec<u8>,
}

impl EventPrinter {
    pub fn new(human: bool) -> EventPrinter {
        EventPrinter {
            human,
            pending: Vec::new(),
        }
    }

    /// Prints every whole line in `bytes` (with what came before); false
    /// once stdout is closed.
    pub fn write(&mut self, bytes: &[u8]) -> bool {
        let mut stdout = std::io::stdout();
        if !self.human {
            return stdout.write_all(bytes).and_then(|_| stdout.flush()).is_ok();
        }
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            if text.is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(text) {
                Ok(event) => out.extend_from_slice(describe(&event).as_bytes()),
                // Not an event ward wrote (a cut line): shown as it is.
                Err(_) => out.extend_from_slice(text.as_bytes()),
            }
            out.push(b'\n');
        }
        stdout.write_all(&out).and_then(|_| stdout.flush()).is_ok()
    }
}

/// `2026-12-03 10:00:01.112  api:0  exited (exit 1), run 7`
pub fn describe(event: &Value) -> String {
    let ts = event["ts"]
        .as_str()
        .map(|t| t.trim_end_matches('Z').replacen('T', " ", 1))
        .unwrap_or_default();
    let who = event["instance"].as_str().unwrap_or("ward");
    let kind = event["event"].as_str().unwrap_or("?");
    let num = |key: &str| event[key].as_u64().unwrap_or(0);
    let text = |key: &str| event[key].as_str().unwrap_or("").to_string();
    let what = match kind {
        "spawned" => format!("started (pid {})", num("pid")),
        "spawn_failed" => format!("failed to start: {}", text("error")),
        "exited" => {
            let how = crate::api::types::LastExit::from_event(event)
                .map_or_else(|| event["status"].to_string(), |e| e.short());
            if event["failed_start"].as_bool() == Some(true) {
                format!("exited ({how}) before min_uptime: a failed start")
            } else {
                format!("exited ({how})")
            }
        }
        "backoff" => format!("restarting in {} ms", num("delay_ms")),
        "fatal" => match event["cooldown_ms"].as_u64() {
            Some(ms) => format!(
                "gave up after {} failed starts; next try in {ms} ms",
                num("failed_starts")
            ),
            None => format!("gave up after {} failed starts", num("failed_starts")),
        },
        "state_changed" => format!("{} → {}", text("from"), text("to")),
        "desired_changed" => match event["desired"].as_str() {
            Some("down") => "asked to stop".into(),
            _ => "asked to run".into(),
        },
        "stop_timeout" => "did not stop in time; killing its process tree".into(),
        "daemonized" => "daemonized itself (see ward status)".into(),
        "reloaded" => "config reloaded".into(),
        "reload_rejected" => {
            let errors: Vec<String> = event["errors"]
                .as_array()
                .map(|e| {
                    e.iter()
                        .filter_map(|x| x.as_str())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            format!("reload rejected, nothing changed: {}", errors.join("; "))
        }
        "log_lines_dropped" => format!("{} log lines dropped: {}", num("lines"), text("reason")),
        "notice" => text("message"),
        other => {
            // An event this CLI does not know (a newer daemon): its fields.
            let mut rest = event.clone();
            if let Some(map) = rest.as_object_mut() {
                for key in ["ts", "seq", "event", "instance", "run"] {
                    map.remove(key);
                }
            }
            format!("{other} {rest}")
        }
    };
    let run = event["run"]
        .as_u64()
        .map(|r| format!(", run {r}"))
        .unwrap_or_default();
    format!("{ts}  {who}  {what}{run}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_sentences() {
        let e: Value = serde_json::from_str(
            r#"{"ts":"2026-12-03T10:00:01.112Z","seq":4,"instance":"api:0","run":7,"event":"exited","status":{"kind":"exit","code":1},"uptime_ms":20,"failed_start":true}"#,
        )
        .unwrap();
        assert_eq!(
            describe(&e),
            "2026-12-03 10:00:01.112  api:0  exited (exit 1) before min_uptime: a failed start, run 7"
        );
        let e: Value = serde_json::from_str(
            r#"{"ts":"2026-12-03T10:00:02.000Z","seq":5,"event":"notice","message":"hello"}"#,
        )
        .unwrap();
        assert_eq!(describe(&e), "2026-12-03 10:00:02.000  ward  hello");
        let e: Value = serde_json::from_str(r#"{"ts":"x","event":"new_kind","extra":1}"#).unwrap();
        assert!(describe(&e).ends_with("new_kind {\"extra\":1}"));
    }
}
