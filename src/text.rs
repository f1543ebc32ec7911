//! ward's words, in one place for the daemon (its notices, ward.log), the
//! API (the reasons in the status) and the CLI: durations, what a reload
//! changed, what a program that put itself in the background did.

use std::time::Duration;

/// `1h2m`, `3m12s`, `4.2s`, `15ms`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    let s = ms / 1000;
    if ms < 1000 {
        format!("{ms}ms")
    } else if s < 60 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if s < 3600 {
        format!("{}m{}s", s / 60, s % 60)
    } else if s < 86400 {
        format!("{}h{}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d{}h", s / 86400, (s % 86400) / 3600)
    }
}

/// What a reload changed, program names by category.
pub struct Changes<'a> {
    pub added: &'a [String],
    pub removed: &'a [String],
    pub restarted: &'a [String],
    pub updated: &'a [String],
    /// `(name, old count, new count)`.
    pub rescaled: Vec<(&'a str, u32, u32)>,
}

impl<'a> Changes<'a> {
    /// The engine's diff, as words take it.
    pub fn of(diff: &'a ward_core::Diff) -> Changes<'a> {
        Changes {
            added: &diff.added,
            removed: &diff.removed,
            restarted: &diff.restarted,
            updated: &diff.updated,
            rescaled: diff
                .rescaled
                .iter()
                .map(|(name, (old, new))| (name.as_str(), *old, *new))
                .collect(),
        }
    }
}

/// One line: `added api; restarted web; rescaled worker 2→3`, or `no
/// changes`.
pub fn reload_summary(c: &Changes<'_>) -> String {
    let mut parts = Vec::new();
    let mut list = |label: &str, names: &[String]| {
        if !names.is_empty() {
            parts.push(format!("{label} {}", names.join(", ")));
        }
    };
    list("added", c.added);
    list("removed", c.removed);
    list("restarted", c.restarted);
    list("updated in place", c.updated);
    let rescaled: Vec<String> = c
        .rescaled
        .iter()
        .map(|(name, old, new)| format!("{name} {old}→{new}"))
        .collect();
    list("rescaled", &rescaled);
    if parts.is_empty() {
        "no changes".into()
    } else {
        parts.join("; ")
    }
}

/// What ward says of a program that put itself in the background.
pub const DAEMONIZED: &str = "daemonized itself: its main process exited 0 while \
     its other processes ran on, so ward stopped them and treats the run as \
     ended; run it in the foreground (e.g. nginx -g 'daemon off;', \
     redis-server --daemonize no)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(Duration::from_millis(15)), "15ms");
        assert_eq!(human_duration(Duration::from_millis(4200)), "4.2s");
        assert_eq!(human_duration(Duration::from_secs(192)), "3m12s");
        assert_eq!(human_duration(Duration::from_secs(3720)), "1h2m");
        assert_eq!(human_duration(Duration::from_secs(90000)), "1d1h");
    }

    #[test]
    fn reload_lines() {
        let mut diff = ward_core::Diff::default();
        assert_eq!(reload_summary(&Changes::of(&diff)), "no changes");
        diff.added.push("api".into());
        diff.rescaled.insert("web".into(), (2, 3));
        assert_eq!(
            reload_summary(&Changes::of(&diff)),
            "added api; rescaled web 2→3"
        );
    }
}
