//! `GET /v1/instances/{target}`: each instance in detail, for
//! `ward status NAME` — its status, its command, its last exits (from the
//! journal) and its last stderr lines (from its log file). The files are
//! read off the driver, bounded.

use std::path::Path;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use ward_core::{InstanceId, LogFormat};

use super::types::{InstanceDetail, InstanceStatus, LastExit, PastExit};
use super::{error, parse_target, request_error};
use crate::inbox::Shared;

/// Past exits shown per instance.
const EXITS: usize = 5;
/// Stderr lines shown per instance.
const STDERR_LINES: usize = 5;
/// Journal lines searched for exits: the journal is shared by every
/// instance, so look further back than the few asked for.
const JOURNAL_LINES: usize = 4000;
/// Log lines searched for stderr ones.
const LOG_LINES: usize = 400;
/// A longer line is cut (with `…`): this is a summary, `ward logs` has it whole.
const LINE_CHARS: usize = 300;

pub async fn instances(State(shared): State<Shared>, UrlPath(target): UrlPath<String>) -> Response {
    let target = match parse_target(&target) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let snapshot = shared.snapshot.borrow().clone();
    let specs = shared.specs.borrow().clone();
    let now = shared.now();
    let views = match snapshot.select(&target) {
        Ok(views) => views,
        Err(e) => return request_error(e),
    };
    let mut details = Vec::new();
    let mut reads = Vec::new();
    for view in views {
        let status = InstanceStatus::from_view(view, now);
        let Some(spec) = specs.get(&view.id.program) else {
            continue;
        };
        let log = crate::logs::log_path(&spec.logs.dir, &view.id.program, view.id.index);
        let marked = spec.logs.timestamps || spec.logs.format == LogFormat::Json;
        reads.push((view.id.clone(), log.clone(), marked));
        details.push(InstanceDetail {
            status,
            command: spec.launch.argv.clone(),
            cwd: spec.launch.cwd.display().to_string(),
            user: spec.launch.user.clone(),
            exits: Vec::new(),
            stderr: Vec::new(),
            stderr_marked: marked,
            log: log.display().to_string(),
            log_files: spec.logs.files,
            journald: spec.logs.journald,
        });
    }
    let journal = shared.journal.clone();
    let read = tokio::task::spawn_blocking(move || {
        let exits = past_exits(&journal, reads.iter().map(|(id, _, _)| id));
        let lines: Vec<Vec<String>> = reads
            .iter()
            .map(|(_, log, marked)| last_stderr(log, *marked))
            .collect();
        (exits, lines)
    })
    .await;
    let Ok((mut exits, lines)) = read else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot read the journal and log files",
        );
    };
    for (detail, lines) in details.iter_mut().zip(lines) {
        detail.exits = exits.remove(&detail.status.id()).unwrap_or_default();
        detail.stderr = lines;
    }
    Json(details).into_response()
}

/// The last exits of each instance, oldest first, from the journal's tail.
/// An unreadable journal gives none: the rest of the detail still helps.
fn past_exits<'a>(
    journal: &Path,
    ids: impl Iterator<Item = &'a InstanceId>,
) -> std::collections::HashMap<String, Vec<PastExit>> {
    let wanted: std::collections::HashSet<String> = ids.map(ToString::to_string).collect();
    let mut found: std::collections::HashMap<String, Vec<PastExit>> = Default::default();
    let Ok(bytes) = crate::bus::journal_tail(journal, JOURNAL_LINES) else {
        return found;
    };
    for line in bytes.split(|b| *b == b'\n') {
        let Ok(event) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        let Some(instance) = event["instance"].as_str() else {
            continue;
        };
        if !wanted.contains(instance) {
            continue;
        }
        let Some(exit) = LastExit::from_event(&event) else {
            continue;
        };
        let list = found.entry(instance.to_string()).or_default();
        list.push(PastExit {
            ts: event["ts"].as_str().unwrap_or_default().to_string(),
            run: event["run"].as_u64(),
            exit,
            uptime_ms: event["uptime_ms"].as_u64(),
        });
        if list.len() > EXITS {
            list.remove(0);
        }
    }
    found
}

/// The last stderr lines of a log file (its last lines of output when the
/// format does not say which stream a line came from). A missing or
/// unreadable file gives none.
fn last_stderr(log: &Path, marked: bool) -> Vec<String> {
    let Ok(bytes) = crate::logs::tail_file(log, LOG_LINES) else {
        return Vec::new();
    };
    let mut lines: Vec<String> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|raw| {
            let line = String::from_utf8_lossy(raw);
            if !marked {
                return Some(line.into_owned());
            }
            stderr_text(&line)
        })
        .collect();
    let keep = lines.len().saturating_sub(STDERR_LINES);
    lines.drain(..keep);
    lines.into_iter().map(|l| cut(&l)).collect()
}

/// The program's words of a stored stderr line (json, or text with a
/// time and stream in front); None for any other line.
fn stderr_text(line: &str) -> Option<String> {
    if line.starts_with('{') {
        let doc: Value = serde_json::from_str(line).ok()?;
        if doc["stream"] != "stderr" {
            return None;
        }
        return Some(match &doc["line"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    }
    let (_ts, rest) = line.split_once(' ')?;
    rest.strip_prefix("stderr ").map(str::to_string)
}

fn cut(line: &str) -> String {
    if line.chars().count() <= LINE_CHARS {
        return line.to_string();
    }
    let mut cut: String = line.chars().take(LINE_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_stderr_lines_in_both_formats() {
        assert_eq!(
            stderr_text("2026-12-03T10:00:00.000Z stderr Address already in use").as_deref(),
            Some("Address already in use")
        );
        assert_eq!(stderr_text("2026-12-03T10:00:00.000Z stdout hello"), None);
        assert_eq!(
            stderr_text(r#"{"ts":"x","program":"a","instance":0,"run":1,"pid":2,"stream":"stderr","line":"boom"}"#)
                .as_deref(),
            Some("boom")
        );
        assert_eq!(
            stderr_text(
                r#"{"ts":"x","program":"a","instance":0,"run":1,"pid":2,"stream":"stdout","line":"ok"}"#
            ),
            None
        );
        let long = "x".repeat(LINE_CHARS + 10);
        assert_eq!(cut(&long).chars().count(), LINE_CHARS + 1);
    }
}
