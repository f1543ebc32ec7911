//! The verbs that talk to a running daemon.

use std::io::Write;
use std::time::Duration;

use super::client::{encode, Client};
use super::{describe_reload, Failure, Locations, Outcome};
use crate::api::types::{ActionResult, ReloadResult};

pub async fn status(loc: &Locations, name: Option<&str>, json: bool) -> Outcome {
    super::status::status(loc, name, json).await
}

/// `ward stop`, for each target in turn: answered once every process of
/// each tree is gone.
pub async fn stop(loc: &Locations, targets: &[String]) -> Outcome {
    let client = Client::new(&loc.socket);
    for target in targets {
        let result: ActionResult = client
            .post(&format!("/v1/programs/{}/stop", encode(target)))
            .await?;
        for line in report(&result) {
            println!("{line}");
        }
    }
    Ok(())
}

pub async fn signal(loc: &Locations, sig: &str, target: &str, tree: bool) -> Outcome {
    let client = Client::new(&loc.socket);
    let result: ActionResult = client
        .post_quick(&format!(
            "/v1/programs/{}/signal/{}{}",
            encode(target),
            encode(sig),
            if tree { "?tree=true" } else { "" }
        ))
        .await?;
    for line in report(&result) {
        println!("{line}");
    }
    Ok(())
}

/// A line per instance: `web:0 running (pid 4242)`, with the reason for a
/// state that has one.
fn report(result: &ActionResult) -> Vec<String> {
    result
        .instances
        .iter()
        .map(|s| {
            let mut line = format!("{} {}", s.id(), s.state);
            if let Some(pid) = s.pid {
                line.push_str(&format!(" (pid {pid})"));
            }
            let reason = s.reason();
            if !reason.is_empty() && s.state != ward_core::State::Stopped {
                line.push_str(&format!(": {reason}"));
            }
            line
        })
        .collect()
}

pub async fn reload(loc: &Locations, dry_run: bool) -> Outcome {
    let client = Client::new(&loc.socket);
    let path = if dry_run {
        "/v1/reload?dry_run=true"
    } else {
        "/v1/reload"
    };
    let result = client.post_quick::<ReloadResult>(path).await?;
    let what = describe_reload(&result);
    if dry_run {
        println!("would change: {what}");
    } else {
        println!("reloaded: {what}");
    }
    for line in super::reload::details(&result) {
        println!("{line}");
    }
    Ok(())
}

/// How long `down` waits, once every program is down, for the daemon to
/// finish writing and exit.
const EXIT_WAIT: Duration = Duration::from_secs(60);

pub async fn down(loc: &Locations) -> Outcome {
    let client = Client::new(&loc.socket);
    let ping: serde_json::Value = client.get("/v1/ping").await?;
    let result: ActionResult = client.post("/v1/shutdown").await?;
    // The reply comes once every program is down; the daemon then flushes
    // what it still holds and exits, letting go of its lock last. Wait for
    // that, so `ward down && ward up` never has two daemons on one state
    // dir.
    let pid = ping["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
    let lock = ping["lock"].as_str().map(std::path::PathBuf::from);
    let exited = tokio::task::spawn_blocking(move || {
        crate::proc::wait_daemon_exit(pid, lock.as_deref(), EXIT_WAIT)
    })
    .await
    .unwrap_or(false);
    if !exited {
        return Err(Failure::new(format!(
            "every program is down, but the daemon{} did not exit within {}s",
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
            EXIT_WAIT.as_secs()
        )));
    }
    println!(
        "ward stopped ({} instance{} down)",
        result.instances.len(),
        if result.instances.len() == 1 { "" } else { "s" }
    );
    Ok(())
}

pub async fn logs(loc: &Locations, target: &str, follow: bool, lines: usize) -> Outcome {
    let client = Client::new(&loc.socket);
    use std::io::IsTerminal;
    // On a terminal, a (dim) line marks where each new run begins.
    let marks = match (
        follow && std::io::stdout().is_terminal(),
        crate::logs::stdout_colour(),
    ) {
        (false, _) => "",
        (true, true) => "&marks=dim",
        (true, false) => "&marks=plain",
    };
    let path = format!(
        "/v1/logs/{}?n={lines}&follow={follow}{marks}",
        encode(target)
    );
    let mut stdout = std::io::stdout();
    let mut wrote = false;
    let end = match client
        .stream(&path, |chunk| {
            wrote |= !chunk.is_empty();
            // A closed stdout (`ward logs -f api | head`) ends the command.
            stdout.write_all(chunk).and_then(|_| stdout.flush()).is_ok()
        })
        .await
    {
        Err(e) if e.not_running && !follow => return super::offline::logs(loc, target, lines),
        Err(e) if e.not_running => {
            return Err(Failure {
                message: format!(
                    "{}; `logs -f` follows a running ward (without -f, ward reads the files)",
                    e.message
                ),
                ..Failure::from(e)
            })
        }
        other => other?,
    };
    if end.as_deref() == Some("stopped") {
        eprintln!("ward stopped");
    }
    if !wrote && !follow {
        explain_silence(&client, target).await;
    }
    Ok(())
}

/// Nothing in the logs: say so on stderr, and why when ward knows (a
/// command that cannot run has no output to show, only its error).
async fn explain_silence(client: &Client, target: &str) {
    let path = format!("/v1/instances/{}", encode(target));
    let Ok(list) = client
        .get::<Vec<crate::api::types::InstanceDetail>>(&path)
        .await
    else {
        return;
    };
    for detail in list {
        let s = detail.status;
        let why = match &s.last_exit {
            _ if !detail.log_files => format!(
                "its output goes to the journal only (logs.files = false): \
                 journalctl WARD_PROGRAM={} WARD_INSTANCE={}",
                s.name, s.instance
            ),
            Some(e @ crate::api::types::LastExit::SpawnFailed { .. }) => {
                format!("it never started: {}", e.reason())
            }
            _ if s.run.is_none() => {
                let reason = s.reason();
                if reason.is_empty() {
                    format!("it has not run yet ({})", s.state)
                } else {
                    format!("it has not run yet ({}: {reason})", s.state)
                }
            }
            _ => "it has written nothing to stdout or stderr".into(),
        };
        eprintln!("ward: no output from {}: {why}", s.id());
    }
}

pub async fn events(loc: &Locations, follow: bool, lines: usize, human: bool) -> Outcome {
    let client = Client::new(&loc.socket);
    let mut printer = super::events::EventPrinter::new(human);
    if !follow {
        let read = client
            .stream(&format!("/v1/events?n={lines}"), |chunk| {
                printer.write(chunk)
            })
            .await;
        return match read {
            Err(e) if e.not_running => super::offline::events(loc, lines, &mut printer),
            other => other.map(|_| ()).map_err(Failure::from),
        };
    }
    // Server-sent events: print the `data:` of each event, one per line,
    // until ward sends its end event.
    let mut pending = Vec::new();
    let mut kind: Option<Vec<u8>> = None;
    let mut data: Vec<u8> = Vec::new();
    let mut stopped = false;
    client
        .stream(&format!("/v1/events?follow=true&n={lines}"), |chunk| {
            pending.extend_from_slice(chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if let Some(name) = line.strip_prefix(b"event:") {
                    kind = Some(name.trim_ascii().to_vec());
                } else if let Some(value) = line.strip_prefix(b"data:") {
                    data.extend_from_slice(value.strip_prefix(b" ").unwrap_or(value));
                    data.push(b'\n');
                } else if line.is_empty() {
                    // The end of one event.
                    match kind.take() {
                        Some(name) if name == crate::api::END_EVENT.as_bytes() => {
                            stopped = true;
                            return false;
                        }
                        _ => {}
                    }
                    let event = std::mem::take(&mut data);
                    if !event.is_empty() && !printer.write(&event) {
                        return false;
                    }
                }
            }
            true
        })
        .await?;
    if stopped {
        eprintln!("ward stopped");
    }
    Ok(())
}
