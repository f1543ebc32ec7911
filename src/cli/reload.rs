//! What `ward reload` says under its summary line: for each program, every
//! setting that changed (old → new), and what happened (or, dry, would
//! happen) to each of its instances, in words.

use crate::api::types::{InstanceReload, ReloadResult};
use ward_core::{DesiredBy, ReloadOutcome};

/// The lines under the summary: per program, its changed settings, then
/// what becomes of its instances (instances with the same fate share a
/// line).
pub fn details(result: &ReloadResult) -> Vec<String> {
    let mut lines = Vec::new();
    for program in &result.programs {
        for f in &program.fields {
            lines.push(format!(
                "  {}: {} {} → {}",
                program.name, f.key, f.old, f.new
            ));
        }
        // Instances with the same fate, in order.
        let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
        for inst in &program.instances {
            let fate = fate(inst, result.dry_run);
            match groups.iter_mut().find(|(f, _)| *f == fate) {
                Some((_, ids)) => ids.push(&inst.instance),
                None => groups.push((fate, vec![&inst.instance])),
            }
        }
        for (fate, ids) in groups {
            let who = if ids.len() == 1 && program.instances.len() == 1 {
                program.name.clone()
            } else {
                ids.join(", ")
            };
            lines.push(format!("  {who}: {fate}"));
        }
    }
    lines
}

/// `restarts`, `stays stopped (stopped by `ward stop`)`, or, dry,
/// `would restart`.
fn fate(inst: &InstanceReload, dry: bool) -> String {
    let stopped_by = match inst.desired_by {
        DesiredBy::User => "stopped by `ward stop`",
        DesiredBy::Remembered => "stopped by `ward stop` before ward last started",
        _ => "autostart = false",
    };
    let (now, would) = match inst.outcome {
        ReloadOutcome::Restarts => ("restarts".to_string(), "would restart".to_string()),
        ReloadOutcome::KeepsRunning => (
            "keeps running; the new settings apply now".into(),
            "would keep running with the new settings".into(),
        ),
        ReloadOutcome::Revived => (
            "starts again now (it had been given up on: fatal)".into(),
            "would start again now (it is given up on: fatal)".into(),
        ),
        ReloadOutcome::StaysStopped => (
            format!("stays stopped ({stopped_by})"),
            format!("would stay stopped ({stopped_by})"),
        ),
        ReloadOutcome::NextStart => (
            format!(
                "not running ({}); the new settings apply from its next start",
                inst.state
            ),
            format!(
                "not running ({}); the new settings would apply from its next start",
                inst.state
            ),
        ),
        ReloadOutcome::Starts => ("starts".into(), "would start".into()),
        ReloadOutcome::Stops => (
            "stops and is removed".into(),
            "would stop and be removed".into(),
        ),
    };
    if dry {
        would
    } else {
        now
    }
}
