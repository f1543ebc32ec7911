//! The engine's invariants, checked from outside.
//!
//! [`CheckedShell`] drives a [`Supervisor`](crate::Supervisor) the way a real shell would: it
//! carries out every action, reports only what happens to processes it
//! was asked to start, fires timers when they are due, and checks after
//! every step what the design promises:
//!
//! 1. at most one live run per instance;
//! 2. a run reaches its end before its instance spawns again;
//! 3. a stop ends in a kill exactly at its deadline (at once, or before the
//!    deadline, after a second Shutdown), and no deadline passes unkilled;
//! 4. no backoff delay exceeds its cap;
//! 5. no instance spawns before every `started` dependency is running;
//! 6. an input about a run that is not the instance's current one changes
//!    nothing and emits nothing;
//! 7. every request gets exactly one reply (once the world cooperates), and
//!    a shutdown ends in exactly one `Exit`, with everything stopped;
//! 8. after `handle_timeout` no timer is left due, and a wake-up with no
//!    timer due changes nothing;
//! 9. settling is complete: a settle that looks at every instance (not only
//!    at what the last input touched) finds nothing more to do;
//!
//! and that the snapshot agrees with the events and with the world.
//!
//! It lives in the library, not among the tests, so that the property
//! tests (`tests/props.rs`) and the fuzz targets (`fuzz/`) check one set of
//! rules. A broken rule comes back as a [`Violation`], never as a panic:
//! the caller decides how to fail.

use std::fmt;

use crate::engine::Restore;
use crate::model::Diff;
use crate::spec::SpecSet;

pub use cases::{build, program_name, restore, Op, Pick, Shape};
pub use shell::CheckedShell;

/// A broken invariant, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Violation {}

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(Violation(format!($($why)+)));
        }
    };
}

macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($why:tt)+) => {
        match (&$left, &$right) {
            (left, right) => {
                if left != right {
                    return Err(Violation(format!(
                        "{}: {:?} != {:?}",
                        format_args!($($why)+),
                        left,
                        right
                    )));
                }
            }
        }
    };
}

// After the macros: textual scope makes them visible in these modules.
mod cases;
mod shell;

/// What [`Supervisor::diff`](crate::Supervisor::diff) promises: each program of either set in at
/// most one of added, removed, restarted, updated, rightly so; rescaled
/// exactly for the programs of both sets whose count differs; every list
/// sorted.
pub fn check_diff(old: &SpecSet, new: &SpecSet, diff: &Diff) -> Result<(), Violation> {
    for (what, list) in [
        ("added", &diff.added),
        ("removed", &diff.removed),
        ("restarted", &diff.restarted),
        ("updated", &diff.updated),
    ] {
        ensure!(
            list.windows(2).all(|w| w[0] < w[1]),
            "diff.{what} is not sorted and free of repeats: {list:?}"
        );
    }
    let both = |name: &String| old.programs.get(name).zip(new.programs.get(name));
    for name in old.programs.keys().chain(new.programs.keys()) {
        let places = [
            diff.added.contains(name),
            diff.removed.contains(name),
            diff.restarted.contains(name),
            diff.updated.contains(name),
        ];
        ensure!(
            places.iter().filter(|p| **p).count() <= 1,
            "{name} is in more than one list of {diff:?}"
        );
        let expected = match both(name) {
            None if old.programs.contains_key(name) => [false, true, false, false],
            None => [true, false, false, false],
            Some((before, after)) => {
                let restart = before.launch != after.launch || before.logs != after.logs;
                let mut before_policy = before.clone();
                before_policy.launch = after.launch.clone();
                before_policy.logs = after.logs.clone();
                before_policy.instances = after.instances;
                let update = !restart && before_policy != *after;
                [false, false, restart, update]
            }
        };
        ensure_eq!(places, expected, "{name}: its place in the diff");
        let rescaled = both(name)
            .filter(|(before, after)| before.instances != after.instances)
            .map(|(before, after)| (before.instances, after.instances));
        ensure_eq!(
            diff.rescaled.get(name).copied(),
            rescaled,
            "{name}: rescaled"
        );
    }
    for name in diff
        .added
        .iter()
        .chain(&diff.removed)
        .chain(&diff.restarted)
        .chain(&diff.updated)
        .chain(diff.rescaled.keys())
    {
        ensure!(
            old.programs.contains_key(name) || new.programs.contains_key(name),
            "the diff names {name}, in neither set"
        );
    }
    Ok(())
}

/// One whole case: an engine built from `programs`, the `ops` applied in
/// turn (reloads pick from `reloads`), then [`CheckedShell::finish`].
pub fn run_case(
    programs: SpecSet,
    restore: Restore,
    seed: u64,
    reloads: &[SpecSet],
    ops: &[Op],
) -> Result<(), Violation> {
    let mut shell = CheckedShell::new(programs, restore, seed)?;
    for op in ops {
        shell.apply(op, reloads)?;
    }
    shell.finish()
}
