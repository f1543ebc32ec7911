//! The documented JSON (docs/api.md) against ward's real output: every
//! field the status, the instance detail and the events carry is
//! documented, and every documented field of an instance shows up.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::harness::*;

const API_MD: &str = include_str!("../../docs/api.md");

/// The lines of the section that starts with `heading` (up to the next
/// heading of any level).
fn section(heading: &str) -> Vec<&'static str> {
    API_MD
        .lines()
        .skip_while(|l| l.trim_end() != heading)
        .skip(1)
        .take_while(|l| !l.starts_with('#'))
        .collect()
}

/// `` `name` `` at the start of `s`: the name and the rest.
fn ticked(s: &str) -> Option<(&str, &str)> {
    let rest = s.strip_prefix('`')?;
    let (name, rest) = rest.split_once('`')?;
    name.chars()
        .all(|c| c.is_ascii_lowercase() || c == '_')
        .then_some((name, rest))
}

/// The fields a bullet list documents: `- `a`, `b`: …`, `- `a` (…): …`,
/// and `… . `c`: …` within a bullet.
fn bullet_fields(lines: &[&str]) -> BTreeSet<String> {
    let mut fields = BTreeSet::new();
    for line in lines {
        let Some(mut rest) = line.strip_prefix("- ") else {
            continue;
        };
        let mut names = Vec::new();
        while let Some((name, after)) = ticked(rest) {
            names.push(name);
            rest = after.strip_prefix(", ").unwrap_or(after);
        }
        if let Some(paren) = rest.strip_prefix(" (") {
            rest = paren.split_once(')').map_or("", |(_, after)| after);
        }
        if rest.starts_with(':') {
            fields.extend(names.iter().map(|n| n.to_string()));
        }
        for (i, _) in line.match_indices(". `") {
            if let Some((name, after)) = ticked(&line[i + 2..]) {
                if after.starts_with(':') {
                    fields.insert(name.to_string());
                }
            }
        }
    }
    fields
}

/// The events table: kind → its documented fields (the ticked names of the
/// second cell outside parentheses).
fn event_fields() -> BTreeMap<String, BTreeSet<String>> {
    let mut kinds = BTreeMap::new();
    for line in section("### Events") {
        let cells: Vec<&str> = line.split(" | ").collect();
        if cells.len() < 2 {
            continue;
        }
        let Some((kind, _)) = ticked(cells[0].trim_start_matches("| ")) else {
            continue;
        };
        let mut fields = BTreeSet::new();
        let mut depth = 0;
        let cell = cells[1];
        let mut i = 0;
        while i < cell.len() {
            let rest = &cell[i..];
            match rest.chars().next() {
                Some('(') => depth += 1,
                Some(')') => depth -= 1,
                Some('`') if depth == 0 => {
                    if let Some((name, _)) = ticked(rest) {
                        fields.insert(name.to_string());
                    }
                    // Past the closing tick.
                    i += rest[1..].find('`').map_or(rest.len(), |j| j + 2);
                    continue;
                }
                _ => {}
            }
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
        kinds.insert(kind.to_string(), fields);
    }
    kinds
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn the_documented_json_is_what_ward_writes() {
    let instance_doc = bullet_fields(&section("### Instance object"));
    let detail_doc = bullet_fields(&section("### Instance detail"));
    let events_doc = event_fields();
    assert!(
        instance_doc.contains("state_ms") && instance_doc.contains("instance"),
        "{instance_doc:?}"
    );
    assert!(
        detail_doc.contains("stderr_marked") && detail_doc.contains("user"),
        "{detail_doc:?}"
    );
    assert!(
        events_doc["exited"].contains("failed_start"),
        "{events_doc:?}"
    );

    // Every state and every optional field: a crash loop given up on, one
    // in backoff, one waiting on it, one that daemonizes, one that cannot
    // run, one running.
    let ward = Ward::new(
        r#"
[program.crash]
command = ["{testee}", "--exit", "3"]
start_limit = { burst = 1, interval = "1m", cooldown = "1h" }
[program.slow]
command = ["{testee}", "--exit", "1"]
backoff = { initial = "1h", max = "1h" }
[program.after]
command = ["{testee}", "--forever"]
depends_on = { slow = "completed" }
[program.nginx]
command = ["{testee}", "--double-fork-setsid", "--exit", "0"]
restart = "never"
stop_timeout = "2s"
[program.typo]
command = ["not-a-command-anywhere"]
backoff = { initial = "1h", max = "1h" }
[program.web]
command = ["{testee}", "--forever"]
"#,
    )
    .without_command_checks()
    .up();
    ward.wait_state("crash", 0, "fatal");
    ward.wait_state("slow", 0, "backoff");
    ward.wait_state("after", 0, "waiting");
    ward.wait_state("nginx", 0, "exited");
    ward.wait_state("typo", 0, "backoff");
    ward.wait_state("web", 0, "running");
    ward.ok(&["restart", "web"]);

    let status = ward.status();
    let mut seen = BTreeSet::new();
    for s in &status {
        let k = keys(s);
        let undocumented: Vec<_> = k.difference(&instance_doc).collect();
        assert!(
            undocumented.is_empty(),
            "{undocumented:?} in {s} not in docs/api.md"
        );
        seen.extend(k);
        for w in s["waiting_on"].as_array().into_iter().flatten() {
            assert_eq!(
                keys(w),
                ["condition", "failed", "instance", "last_exit", "state"]
                    .map(String::from)
                    .into(),
                "{w}"
            );
        }
    }
    let missing: Vec<_> = instance_doc.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "documented but never written: {missing:?}"
    );

    let details: Value = serde_json::from_str(&ward.ok(&["status", "--json", "all"])).unwrap();
    for d in details.as_array().unwrap() {
        let extra: Vec<_> = keys(d)
            .into_iter()
            .filter(|k| !instance_doc.contains(k) && !detail_doc.contains(k))
            .collect();
        assert!(extra.is_empty(), "{extra:?} in {d} not in docs/api.md");
        for e in d["exits"].as_array().unwrap() {
            let k = keys(e);
            assert!(
                k.is_subset(&["ts", "run", "exit", "uptime_ms"].map(String::from).into()),
                "{e}"
            );
        }
    }

    ward.ok(&["stop", "web"]);
    let journal = ward.journal();
    let common: BTreeSet<String> = ["ts", "seq", "event", "instance", "run"]
        .map(String::from)
        .into();
    for e in &journal {
        let kind = e["event"].as_str().unwrap();
        let documented = events_doc
            .get(kind)
            .unwrap_or_else(|| panic!("event {kind} is not in docs/api.md: {e}"));
        let extra: Vec<_> = keys(e)
            .into_iter()
            .filter(|k| !common.contains(k) && !documented.contains(k))
            .collect();
        assert!(
            extra.is_empty(),
            "{extra:?} of {e} not documented for {kind}"
        );
    }
    for kind in [
        "spawned",
        "spawn_failed",
        "exited",
        "backoff",
        "fatal",
        "state_changed",
        "desired_changed",
        "daemonized",
    ] {
        assert!(
            journal.iter().any(|e| e["event"] == kind),
            "no {kind} event to check"
        );
    }
    ward.down();
}
