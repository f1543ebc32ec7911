//! Checks across programs: program names, dependencies on unknown programs,
//! and dependency cycles.

use std::collections::BTreeMap;

use ward_core::deps::find_cycle;

use crate::program::Program;
use crate::read::{did_you_mean, Ctx, Field};

/// `[A-Za-z0-9_.-]+`, and not something a path or a command line would
/// take for something else.
pub(crate) fn check_name(ctx: &mut Ctx<'_>, entry: &Field<'_, '_>) {
    let name = entry.key;
    let problem = if name.contains(':') {
        Some("\":\" separates a program from its instance number (web:0)")
    } else if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        Some("a name holds letters, digits, \"_\", \"-\" and \".\"")
    } else if name == "." || name == ".." {
        Some("a name cannot be a path component like \".\" or \"..\"")
    } else if name.starts_with('-') {
        Some("a name cannot start with \"-\" (it would read as a command-line option)")
    } else {
        None
    };
    if let Some(problem) = problem {
        ctx.error(
            entry.key_span.clone(),
            format!("invalid program name {name:?}"),
            Some(format!(
                "{problem}; e.g. [program.api], [program.worker-1], [program.db_main]"
            )),
        );
    }
}

/// Every dependency names a program of the file, and no program waits,
/// directly or not, for itself.
pub(crate) fn check_dependencies(ctx: &mut Ctx<'_>, programs: &[Program], names: &[&str]) {
    for program in programs {
        for dep in &program.deps {
            if names.contains(&dep.name.as_str()) {
                continue;
            }
            let help = match did_you_mean(&dep.name, names.iter().copied()) {
                Some(best) => format!("did you mean \"{best}\"?"),
                None if names.is_empty() => "there are no programs in this file".to_string(),
                None => format!("programs in this file: {}", names.join(", ")),
            };
            ctx.error(
                dep.span.clone(),
                format!(
                    "unknown program {:?} in depends_on of [program.{}]",
                    dep.name, program.spec.name
                ),
                Some(help),
            );
        }
    }

    let mut edges: BTreeMap<String, Vec<String>> = programs
        .iter()
        .map(|p| {
            let deps = p.deps.iter().map(|d| d.name.clone()).collect();
            (p.spec.name.clone(), deps)
        })
        .collect();
    // Each cycle found loses the edge that closes it, so the loop ends, and
    // every cycle reported is one of the file's.
    while let Some(cycle) = find_cycle(
        edges
            .iter()
            .map(|(name, deps)| (name.as_str(), deps.iter().map(String::as_str))),
    ) {
        let (Some(first), Some(second)) = (cycle.first(), cycle.get(1)) else {
            break;
        };
        let entry = programs
            .iter()
            .find(|p| &p.spec.name == first)
            .and_then(|p| p.deps.iter().find(|d| &d.name == second));
        if let Some(entry) = entry {
            ctx.error(
                entry.span.clone(),
                format!("dependency cycle: {}", cycle.join(" → ")),
                Some("programs that wait for each other never start; remove one of these dependencies".into()),
            );
        }
        match edges.get_mut(first) {
            Some(deps) => deps.retain(|d| d != second),
            None => break,
        }
    }
}
