//! `ward start` and `ward restart`: ask, then say truthfully where each
//! instance got to, and fail (exit 1) naming every one that did not get
//! there.
//!
//! The daemon answers a start once each target is running and has been up
//! for its `min_uptime`, has failed (`backoff`, `fatal`, an `exited` run
//! that failed), has completed (`exited` with a success code), or waits on
//! a dependency. An instance still waiting on a dependency that is on its
//! way (a migration that is running) is watched (its status, which changes
//! nothing) until it gets somewhere or `--timeout` passes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::client::{encode, Client};
use super::{Failure, Locations, Outcome};
use crate::api::types::{ActionResult, InstanceStatus};
use ward_core::State;

/// How often an instance waiting on a dependency on its way is looked at.
const POLL: Duration = Duration::from_millis(200);

/// Where one instance got to.
enum Verdict {
    /// Running past its `min_uptime`, or a one-shot that completed.
    Arrived(String),
    /// Did not get there, and will not by itself soon: the reason.
    Failed(String),
    /// Waiting on a dependency that is still on its way.
    OnItsWay(String),
}

fn verdict(s: &InstanceStatus) -> Verdict {
    let head = match s.pid {
        Some(pid) => format!("{} {} (pid {pid})", s.id(), s.state),
        None => format!("{} {}", s.id(), s.state),
    };
    let reason = s.reason();
    let with_reason = if reason.is_empty() {
        head.clone()
    } else {
        format!("{head}: {reason}")
    };
    match s.state {
        // Not yet up for its `min_uptime`: an end now would be a failure.
        State::Running if s.unsettled() => Verdict::OnItsWay(with_reason),
        State::Running => Verdict::Arrived(head),
        State::Exited if s.last_exit_ok && s.note.is_none() => Verdict::Arrived(format!(
            "{head}: completed ({})",
            s.last_exit.as_ref().map(|e| e.short()).unwrap_or_default()
        )),
        State::Waiting if !s.waiting_on.iter().any(|w| w.failed) => Verdict::OnItsWay(with_reason),
        State::Starting | State::Stopping => Verdict::OnItsWay(with_reason),
        State::Stopped => Verdict::Failed(format!(
            "{head}: it was stopped before it got running ({})",
            if reason.is_empty() {
                "by another request".to_string()
            } else {
                reason
            }
        )),
        _ => Verdict::Failed(with_reason),
    }
}

/// Keeps the latest status of each instance, in the order first named.
fn record(
    instances: Vec<InstanceStatus>,
    order: &mut Vec<String>,
    latest: &mut BTreeMap<String, InstanceStatus>,
) {
    for s in instances {
        let id = s.id();
        if !latest.contains_key(&id) {
            order.push(id.clone());
        }
        latest.insert(id, s);
    }
}

/// `ward start` / `ward restart` of `targets`; waits up to `timeout` for
/// instances that wait on a dependency on its way.
pub async fn start(loc: &Locations, verb: &str, targets: &[String], timeout: Duration) -> Outcome {
    let client = Client::new(&loc.socket);
    // By instance, in the order first named.
    let mut order: Vec<String> = Vec::new();
    let mut latest: BTreeMap<String, InstanceStatus> = BTreeMap::new();
    for target in targets {
        let result: ActionResult = client
            .post(&format!("/v1/programs/{}/{verb}", encode(target)))
            .await?;
        record(result.instances, &mut order, &mut latest);
    }
    let deadline = Instant::now() + timeout;
    let mut told: Vec<String> = Vec::new();
    loop {
        let on_its_way: Vec<String> = order
            .iter()
            .filter(|id| matches!(verdict(&latest[*id]), Verdict::OnItsWay(_)))
            .cloned()
            .collect();
        if on_its_way.is_empty() || Instant::now() >= deadline {
            break;
        }
        for id in &on_its_way {
            if !told.contains(id) {
                if let Verdict::OnItsWay(line) = verdict(&latest[id]) {
                    eprintln!("{line}…");
                }
                told.push(id.clone());
            }
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
        // Only looking: asking to start again would retry a dependency
        // that failed meanwhile.
        for id in on_its_way {
            let now: Vec<InstanceStatus> = client
                .get(&format!("/v1/status?name={}", encode(&id)))
                .await?;
            record(now, &mut order, &mut latest);
        }
    }
    let mut failed = Vec::new();
    for id in &order {
        match verdict(&latest[id]) {
            Verdict::Arrived(line) => println!("{line}"),
            Verdict::Failed(line) => failed.push((id.clone(), line)),
            Verdict::OnItsWay(line) => failed.push((
                id.clone(),
                format!(
                    "{line} (still, after {}; wait longer with --timeout)",
                    crate::text::human_duration(timeout)
                ),
            )),
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = failed.iter().map(|(id, _)| id.as_str()).collect();
    let mut failure = Failure::new(format!(
        "{} did not {}: {}",
        if failed.len() == 1 {
            "1 instance".to_string()
        } else {
            format!("{} instances", failed.len())
        },
        if verb == "restart" {
            "restart"
        } else {
            "start"
        },
        names.join(", ")
    ));
    failure.details = failed.into_iter().map(|(_, line)| line).collect();
    Err(failure)
}
