//! `ward status`: every instance as a table with why each is in its
//! state; `ward status NAME`: each named instance in detail.

use std::time::Duration;

use super::client::Client;
use super::{Failure, Locations, Outcome};
use crate::api::types::{InstanceDetail, InstanceStatus};
use crate::text::human_duration;
use ward_core::{Desired, DesiredBy, State};

pub async fn status(loc: &Locations, name: Option<&str>, json: bool) -> Outcome {
    let client = Client::new(&loc.socket);
    match name {
        None => {
            let list: Vec<InstanceStatus> = client.get("/v1/status").await?;
            if json {
                print_json(&list)?;
            } else {
                print!("{}", table(&list));
                // Said where people look, as `ward up` says it at start.
                if let Ok(ping) = client.get::<serde_json::Value>("/v1/ping").await {
                    if let Some(line) = trees_line(&ping["trees"]) {
                        println!("{line}");
                    }
                }
            }
        }
        Some(name) => {
            let path = format!("/v1/instances/{}", super::client::encode(name));
            let list: Vec<InstanceDetail> = client.get(&path).await?;
            if json {
                print_json(&list)?;
            } else {
                let blocks: Vec<String> = list.iter().map(detail).collect();
                print!("{}", blocks.join("\n"));
            }
        }
    }
    Ok(())
}

fn print_json<T: serde::Serialize>(value: &T) -> Outcome {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(format!("cannot print the status: {e}")))?;
    println!("{text}");
    Ok(())
}

/// `running`, or `running (to stop)` while a stop is on its way.
fn state_word(s: &InstanceStatus) -> String {
    if s.desired == Desired::Down && s.state != State::Stopped && s.state != State::Stopping {
        format!("{} (to stop)", s.state)
    } else {
        s.state.to_string()
    }
}

pub fn table(list: &[InstanceStatus]) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "INSTANCE".to_string(),
        "STATE".to_string(),
        "PID".to_string(),
        "UPTIME".to_string(),
        "RESTARTS".to_string(),
        "REASON".to_string(),
    ]];
    for s in list {
        let reason = s.reason();
        rows.push([
            s.name.clone(),
            s.instance.to_string(),
            state_word(s),
            s.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            s.uptime_ms
                .map(|ms| human_duration(Duration::from_millis(ms)))
                .unwrap_or_else(|| "-".into()),
            s.restarts.to_string(),
            if reason.is_empty() {
                "-".into()
            } else {
                reason
            },
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The line under the table when process trees are tracked without
/// cgroups (what escapes then is in docs/usage.md); nothing otherwise.
fn trees_line(trees: &serde_json::Value) -> Option<String> {
    if trees["mode"] != "process-group" {
        return None;
    }
    Some(format!(
        "process trees: tracked by process group and environment marker, not cgroups ({}); see \"Process trees\" in docs/usage.md",
        trees["reason"].as_str().unwrap_or("no reason given")
    ))
}

/// One instance, a field a line.
pub fn detail(d: &InstanceDetail) -> String {
    let s = &d.status;
    let ago = |ms: u64| human_duration(Duration::from_millis(ms));
    let mut out = format!("{}\n", s.id());
    let mut field = |key: &str, value: String| out.push_str(&format!("  {key:<10} {value}\n"));
    field("command", shell_words(&d.command));
    field("cwd", d.cwd.clone());
    if let Some(user) = &d.user {
        field("user", user.clone());
    }
    let mut state = format!("{} for {}", state_word(s), ago(s.state_ms));
    if let Some(pid) = s.pid {
        state.push_str(&format!(", pid {pid}"));
    }
    if let Some(run) = s.run {
        state.push_str(&format!(", run {run}"));
    }
    field("state", state);
    let reason = s.reason();
    if !reason.is_empty() {
        field("why", reason);
    }
    if let Some(error) = s
        .last_exit
        .as_ref()
        .and_then(crate::api::types::LastExit::spawn_error)
    {
        field("error", error.to_string());
    }
    if let Some(note) = &s.note {
        field("note", note.clone());
    }
    let up = s.desired == Desired::Up;
    let by = match (s.desired_by, up) {
        (DesiredBy::User, true) => "by `ward start` or `ward restart`",
        (DesiredBy::User, false) => "by `ward stop`",
        (DesiredBy::Remembered, true) => "by `ward start` before ward last started",
        (DesiredBy::Remembered, false) => "by `ward stop` before ward last started",
        (DesiredBy::Dependency, _) => "a program that needs it was started",
        (DesiredBy::Config, true) => "autostart",
        (DesiredBy::Config, false) => "autostart = false",
    };
    let desired = if up { "up" } else { "down" };
    field("desired", format!("{desired} ({by})"));
    field(
        "restarts",
        format!("{} (restart = \"{}\")", s.restarts, s.restart),
    );
    if d.exits.is_empty() {
        field("exits", "none recorded".into());
    } else {
        for (i, e) in d.exits.iter().rev().enumerate() {
            let mut line = format!("{}  {}", short_time(&e.ts), e.exit.reason());
            if let Some(ms) = e.uptime_ms {
                line.push_str(&format!(" after {}", ago(ms)));
            }
            if let Some(run) = e.run {
                line.push_str(&format!(", run {run}"));
            }
            field(if i == 0 { "exits" } else { "" }, line);
        }
    }
    let what = if d.stderr_marked { "stderr" } else { "output" };
    if d.stderr.is_empty() {
        field(what, format!("none in {}", d.log));
    } else {
        for (i, line) in collapse(&d.stderr).into_iter().enumerate() {
            field(if i == 0 { what } else { "" }, line);
        }
    }
    out
}

/// Runs of the same line (a crash loop says the same thing every run) as
/// one line with a count.
fn collapse(lines: &[String]) -> Vec<String> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for line in lines {
        match out.last_mut() {
            Some((last, n)) if last == line => *n += 1,
            _ => out.push((line.clone(), 1)),
        }
    }
    out.into_iter()
        .map(|(line, n)| match n {
            1 => line,
            n => format!("{line}  ({n} times)"),
        })
        .collect()
}

/// `2026-12-03T10:00:01.112Z` → `2026-12-03 10:00:01`.
fn short_time(ts: &str) -> String {
    let ts = ts.trim_end_matches('Z').replacen('T', " ", 1);
    match ts.split_once('.') {
        Some((whole, _)) => whole.to_string(),
        None => ts,
    }
}

/// argv as a shell would read it back: words with spaces or quotes quoted.
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|w| {
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::LastExit;

    fn inst(name: &str, state: State) -> InstanceStatus {
        InstanceStatus {
            name: name.into(),
            instance: 0,
            state,
            desired: Desired::Up,
            desired_by: DesiredBy::Config,
            pid: None,
            run: None,
            restarts: 0,
            uptime_ms: None,
            state_ms: 1,
            next_ms: None,
            restart: ward_core::RestartPolicy::OnFailure,
            min_uptime_ms: 1000,
            proven: false,
            last_exit: None,
            last_exit_ok: false,
            waiting_on: Vec::new(),
            note: None,
        }
    }

    fn exit(code: i32) -> Option<LastExit> {
        Some(LastExit::Exit { code })
    }

    #[test]
    fn table_says_why() {
        let mut api = inst("api", State::Running);
        api.pid = Some(1234);
        api.restarts = 2;
        api.uptime_ms = Some(192_000);
        api.last_exit = exit(1);
        let mut worker = inst("worker", State::Stopped);
        worker.desired = Desired::Down;
        worker.desired_by = DesiredBy::User;
        let mut job = inst("job", State::Backoff);
        job.last_exit = Some(LastExit::SpawnFailed {
            error: "cannot run pyhton3: No such file or directory (os error 2)".into(),
        });
        job.next_ms = Some(2_000);
        let mut done = inst("migrate", State::Exited);
        done.last_exit = exit(0);
        let mut db = inst("db", State::Fatal);
        db.last_exit = exit(3);
        let table = table(&[api, worker, job, done, db]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "NAME     INSTANCE  STATE    PID   UPTIME  RESTARTS  REASON"
        );
        assert_eq!(
            lines[1],
            "api      0         running  1234  3m12s   2         last: exit 1"
        );
        assert_eq!(
            lines[2],
            "worker   0         stopped  -     -       0         by `ward stop`"
        );
        assert_eq!(
            lines[3],
            "job      0         backoff  -     -       0         cannot run pyhton3: No such file or directory; next try in 2.0s"
        );
        assert_eq!(
            lines[4],
            "migrate  0         exited   -     -       0         exit 0; not restarted (restart = \"on-failure\")"
        );
        assert_eq!(
            lines[5],
            "db       0         fatal    -     -       0         exit 3; gave up (start limit); `ward start` tries again"
        );
    }

    #[test]
    fn repeated_lines_collapse() {
        let lines = ["a", "b", "b", "b", "a"].map(String::from);
        assert_eq!(collapse(&lines), ["a", "b  (3 times)", "a"]);
    }

    #[test]
    fn commands_read_back_as_shell_words() {
        let argv = ["python3", "-c", "print('hi there')", "--port=8"].map(String::from);
        assert_eq!(
            shell_words(&argv),
            r"python3 -c 'print('\''hi there'\'')' --port=8"
        );
    }
}
