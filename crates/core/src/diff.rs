//! What replacing one program set with another changes.
//!
//! Each program present in either set lands in at most one of `added`,
//! `removed`, `restarted` (its `launch` or `logs` differ, compared by value)
//! or `updated` (any other setting differs, the instance count aside). A
//! program present in both whose instance count differs is listed in
//! `rescaled` as well; a count change alone puts it in `rescaled` only.
//! Every list is sorted by name.

use crate::model::Diff;
use crate::spec::{ProgramSpec, SpecSet};

/// See the module docs.
pub fn diff(old: &SpecSet, new: &SpecSet) -> Diff {
    let mut out = Diff::default();
    for (name, before) in &old.programs {
        match new.programs.get(name) {
            None => out.removed.push(name.clone()),
            Some(after) => {
                if needs_restart(before, after) {
                    out.restarted.push(name.clone());
                } else if policy_differs(before, after) {
                    out.updated.push(name.clone());
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

/// Anything but launch, logs and the instance count differs.
fn policy_differs(before: &ProgramSpec, after: &ProgramSpec) -> bool {
    let ProgramSpec {
        name,
        launch: _,
        logs: _,
        instances: _,
        autostart,
        restart,
        success_exit_codes,
        backoff,
        start_limit,
        min_uptime,
        stop_signal,
        stop_timeout,
        stop_mode,
        depends_on,
    } = before;
    // Destructuring makes a new field a compile error here until someone
    // decides which category it belongs to.
    *name != after.name
        || *autostart != after.autostart
        || *restart != after.restart
        || *success_exit_codes != after.success_exit_codes
        || *backoff != after.backoff
        || *start_limit != after.start_limit
        || *min_uptime != after.min_uptime
        || *stop_signal != after.stop_signal
        || *stop_timeout != after.stop_timeout
        || *stop_mode != after.stop_mode
        || *depends_on != after.depends_on
}
