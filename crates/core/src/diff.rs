//! What replacing one program set with another changes.
//!
//! Each program present in either set lands in at most one of `added`,
//! `removed`, `restarted` (its `launch` or `logs` differ, compared by value)
//! or `updated` (any other setting differs, the instance count aside). A
//! program present in both whose instance count differs is listed in
//! `rescaled` as well; a count change alone puts it in `rescaled` only.
//! Every list is sorted by name. `fields` lists, for each program present
//! in both, every setting that differs (see `changes`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::model::{Diff, FieldChange};
use crate::spec::{
    BackoffSpec, Condition, LaunchSpec, LogAccess, LogFormat, LogSpec, ProgramSpec, RestartPolicy,
    SpecSet, StartLimit, StopMode,
};

/// See the module docs.
pub fn diff(old: &SpecSet, new: &SpecSet) -> Diff {
    let mut out = Diff::default();
    for (name, before) in &old.programs {
        match new.programs.get(name) {
            None => out.removed.push(name.clone()),
            Some(after) => {
                let changes = changes(before, after);
                if needs_restart(before, after) {
                    out.restarted.push(name.clone());
                } else if changes.iter().any(|(part, _)| *part == Part::Policy) {
                    out.updated.push(name.clone());
                }
                if !changes.is_empty() {
                    let fields = changes.into_iter().map(|(_, f)| f).collect();
                    out.fields.insert(name.clone(), fields);
                }
                if before.instances != after.instances {
                    out.rescaled
                        .insert(name.clone(), (before.instances, after.instances));
                }
            }
        }
    }
    out.added = new
        .programs
        .keys()
        .filter(|name| !old.programs.contains_key(*name))
        .cloned()
        .collect();
    out
}

/// Launch or log settings differ: the running processes no longer match.
pub fn needs_restart(before: &ProgramSpec, after: &ProgramSpec) -> bool {
    // `Arc`'s `PartialEq` compares the contents, which is what we want: a
    // reload builds fresh `Arc`s even for unchanged programs.
    before.launch != after.launch || before.logs != after.logs
}

/// Which category of a reload a setting belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// How the process is run (`launch`): a change restarts.
    Launch,
    /// Where its output goes (`logs`): a change restarts.
    Logs,
    /// The instance count: instances are added or stopped.
    Count,
    /// Everything else: applied in place (`updated`).
    Policy,
}

/// Every setting of a program that differs between `before` and `after`,
/// named by its config key (`command`, `backoff.initial`, `env.PORT`,
/// `depends_on.migrate`) with both values as a config would write them.
/// Environment values are not shown (they are often secrets): only whether
/// a variable is set, and that its value changed.
/// Each comes with its [`Part`]. The values are compared as
/// they are written, which is exact for every setting (durations to the
/// nanosecond, numbers as the shortest text that reads back the same), so
/// the categories of [`diff`] come from here too.
fn changes(before: &ProgramSpec, after: &ProgramSpec) -> Vec<(Part, FieldChange)> {
    let ProgramSpec {
        name: _,
        launch,
        logs,
        instances,
        autostart,
        restart,
        success_exit_codes,
        backoff,
        start_limit,
        min_uptime,
        stop_signal,
        stop_command,
        stop_timeout,
        stop_mode,
        depends_on,
    } = before;
    // Destructuring (here and below) makes a new field a compile error
    // until someone decides how a change of it reads, and which part of a
    // reload it is.
    let mut out = Changes {
        part: Part::Launch,
        found: Vec::new(),
    };
    let LaunchSpec {
        argv,
        shell,
        cwd,
        env,
        user,
        group,
    } = &**launch;
    out.field(
        "command",
        command(argv, *shell),
        command(&after.launch.argv, after.launch.shell),
    );
    out.field(
        "cwd",
        quoted(&cwd.display()),
        quoted(&after.launch.cwd.display()),
    );
    env_changes(&mut out, env, &after.launch.env);
    out.field("user", optional(user), optional(&after.launch.user));
    out.field("group", optional(group), optional(&after.launch.group));
    out.part = Part::Logs;
    let LogSpec {
        dir,
        max_size,
        keep,
        format,
        timestamps,
        max_line,
        access,
        files,
        journald,
    } = &**logs;
    let new_logs = &*after.logs;
    out.field(
        "logs.dir",
        quoted(&dir.display()),
        quoted(&new_logs.dir.display()),
    );
    out.field("logs.max_size", max_size, new_logs.max_size);
    out.field("logs.keep", keep, new_logs.keep);
    out.field("logs.format", word(format), word(&new_logs.format));
    out.field("logs.timestamps", timestamps, new_logs.timestamps);
    out.field("logs.max_line", max_line, new_logs.max_line);
    out.field("logs.files", files, new_logs.files);
    out.field("logs.journald", journald, new_logs.journald);
    let LogAccess {
        mode,
        group: log_group,
        allow_writable_dir,
    } = access;
    out.field(
        "logs.mode",
        format!("\"{mode:o}\""),
        format!("\"{:o}\"", new_logs.access.mode),
    );
    out.field(
        "logs.group",
        optional(log_group),
        optional(&new_logs.access.group),
    );
    out.field(
        "logs.allow_writable_dir",
        allow_writable_dir,
        new_logs.access.allow_writable_dir,
    );
    out.part = Part::Count;
    out.field("instances", instances, after.instances);
    out.part = Part::Policy;
    out.field("autostart", autostart, after.autostart);
    out.field("restart", word(restart), word(&after.restart));
    out.field(
        "success_exit_codes",
        format!("{success_exit_codes:?}"),
        format!("{:?}", after.success_exit_codes),
    );
    let BackoffSpec {
        initial,
        max,
        factor,
        jitter,
        reset_after,
    } = backoff;
    out.field(
        "backoff.initial",
        duration(*initial),
        duration(after.backoff.initial),
    );
    out.field("backoff.max", duration(*max), duration(after.backoff.max));
    out.field("backoff.factor", factor, after.backoff.factor);
    out.field("backoff.jitter", jitter, after.backoff.jitter);
    out.field(
        "backoff.reset_after",
        duration(*reset_after),
        duration(after.backoff.reset_after),
    );
    let StartLimit {
        burst,
        interval,
        cooldown,
    } = start_limit;
    out.field("start_limit.burst", burst, after.start_limit.burst);
    out.field(
        "start_limit.interval",
        duration(*interval),
        duration(after.start_limit.interval),
    );
    let cooldown_text = |c: &Option<Duration>| c.map_or_else(|| "\"never\"".into(), duration);
    out.field(
        "start_limit.cooldown",
        cooldown_text(cooldown),
        cooldown_text(&after.start_limit.cooldown),
    );
    out.field(
        "min_uptime",
        duration(*min_uptime),
        duration(after.min_uptime),
    );
    out.field(
        "stop_signal",
        quoted(&stop_signal.name()),
        quoted(&after.stop_signal.name()),
    );
    let command = |c: &Option<Vec<String>>| match c {
        Some(words) => format!(
            "[{}]",
            words
                .iter()
                .map(|w| quoted(w))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => NONE.to_string(),
    };
    out.field(
        "stop_command",
        command(stop_command),
        command(&after.stop_command),
    );
    out.field(
        "stop_timeout",
        duration(*stop_timeout),
        duration(after.stop_timeout),
    );
    out.field("stop_mode", word(stop_mode), word(&after.stop_mode));
    let names: BTreeSet<&String> = depends_on.keys().chain(after.depends_on.keys()).collect();
    for name in names {
        let condition = |c: Option<&Condition>| c.map_or_else(|| NONE.to_string(), word);
        out.field(
            &format!("depends_on.{name}"),
            condition(depends_on.get(name)),
            condition(after.depends_on.get(name)),
        );
    }
    out.found
}

/// What a setting that is not there reads as.
const NONE: &str = "(none)";

struct Changes {
    /// The part of the reload the fields being added belong to.
    part: Part,
    found: Vec<(Part, FieldChange)>,
}

impl Changes {
    fn field(&mut self, key: &str, old: impl ToString, new: impl ToString) {
        let (old, new) = (old.to_string(), new.to_string());
        if old != new {
            self.found.push((
                self.part,
                FieldChange {
                    key: key.to_string(),
                    old,
                    new,
                },
            ));
        }
    }
}

fn env_changes(out: &mut Changes, before: &[(String, String)], after: &[(String, String)]) {
    // The last setting of a name wins, as in the environment itself.
    let old: BTreeMap<&str, &str> = before.iter().map(|(k, v)| (&**k, &**v)).collect();
    let new: BTreeMap<&str, &str> = after.iter().map(|(k, v)| (&**k, &**v)).collect();
    let names: BTreeSet<&str> = old.keys().chain(new.keys()).copied().collect();
    for name in names {
        let (was, is) = match (old.get(name), new.get(name)) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(_), Some(_)) => ("(a value)", "(another value)"),
            (Some(_), None) => ("(a value)", "(unset)"),
            (None, Some(_)) => ("(unset)", "(a value)"),
            (None, None) => continue,
        };
        out.field(&format!("env.{name}"), was, is);
    }
}

/// `["python3", "web.py"]`, or the line of a shell command.
fn command(argv: &[String], shell: bool) -> String {
    match argv {
        [_, _, line] if shell => quoted(line),
        _ => format!("{argv:?}"),
    }
}

fn quoted(value: &dyn std::fmt::Display) -> String {
    format!("{:?}", value.to_string())
}

fn optional(value: &Option<String>) -> String {
    value
        .as_deref()
        .map_or_else(|| NONE.to_string(), |v| quoted(&v))
}

/// A value's name as the config spells it: `"on-failure"`, `"main"`.
fn word(value: impl Word) -> String {
    format!("\"{}\"", value.word())
}

trait Word {
    fn word(&self) -> &'static str;
}

impl Word for &RestartPolicy {
    fn word(&self) -> &'static str {
        match self {
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Never => "never",
        }
    }
}

impl Word for &LogFormat {
    fn word(&self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl Word for &StopMode {
    fn word(&self) -> &'static str {
        match self {
            StopMode::Tree => "tree",
            StopMode::Main => "main",
        }
    }
}

impl Word for &Condition {
    fn word(&self) -> &'static str {
        match self {
            Condition::Started => "started",
            Condition::Completed => "completed",
        }
    }
}

/// `"1m30s"`, `"500ms"`, `"1.5s"`, as a config writes durations; exact to
/// the nanosecond (`"1.0000005s"`), so two durations read the same only if
/// they are the same.
pub(crate) fn duration(d: Duration) -> String {
    if d.is_zero() {
        return "\"0s\"".into();
    }
    if d.subsec_nanos() != 0 {
        return if d < Duration::from_secs(1) && d.subsec_nanos().is_multiple_of(1_000_000) {
            format!("\"{}ms\"", d.subsec_millis())
        } else {
            format!("\"{}s\"", fraction(d))
        };
    }
    let mut s = d.as_secs();
    let mut text = String::from("\"");
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if s >= size {
            text.push_str(&format!("{}{unit}", s / size));
            s %= size;
        }
    }
    text.push('"');
    text
}

/// `1.5`, `0.0000005`: seconds with every nanosecond that is there.
fn fraction(d: Duration) -> String {
    let nanos = format!("{:09}", d.subsec_nanos());
    format!("{}.{}", d.as_secs(), nanos.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_a_config_writes_them() {
        assert_eq!(duration(Duration::ZERO), "\"0s\"");
        assert_eq!(duration(Duration::from_millis(500)), "\"500ms\"");
        assert_eq!(duration(Duration::from_millis(1500)), "\"1.5s\"");
        assert_eq!(duration(Duration::from_secs(90)), "\"1m30s\"");
        assert_eq!(duration(Duration::from_secs(86_400 + 7200)), "\"1d2h\"");
        // Two durations read the same only if they are the same.
        assert_eq!(
            duration(Duration::from_nanos(1_000_000_500)),
            "\"1.0000005s\""
        );
        assert_eq!(duration(Duration::from_nanos(500)), "\"0.0000005s\"");
    }

    #[test]
    fn environment_values_are_not_shown() {
        let mut out = Changes {
            part: Part::Launch,
            found: Vec::new(),
        };
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        env_changes(
            &mut out,
            &[
                pair("PORT", "1"),
                pair("TOKEN", "s3cret"),
                pair("SAME", "x"),
            ],
            &[pair("PORT", "2"), pair("NEW", "hunter2"), pair("SAME", "x")],
        );
        let rows: Vec<String> = out
            .found
            .iter()
            .map(|(_, f)| format!("{} {} {}", f.key, f.old, f.new))
            .collect();
        assert_eq!(
            rows,
            [
                "env.NEW (unset) (a value)",
                "env.PORT (a value) (another value)",
                "env.TOKEN (a value) (unset)"
            ]
        );
    }
}
