//! Checks across programs: program names, dependencies on unknown programs,
//! and dependency cycles.

use std::collections::BTreeMap;

use ward_core::deps::find_cycle;

use crate::program::Program;
use crate::read::{did_you_mean, Ctx, Field};

/// The longest program name, in bytes. A name becomes part of file and
/// directory names, each one path component of at most 255 bytes, and
/// ward's spawner refuses components over 200: the cgroup leaf
/// `<name>.<index>.r<run>` adds up to 27 bytes (index up to 9999, run up to
/// 2^64), a log file `<name>.<index>.log.<n>` up to 14. 100 leaves room
/// for both, and for names yet to come; and it still reads in a status line.
pub const MAX_NAME_LEN: usize = 100;

const NAME_RULE: &str =
    "a name holds only ASCII letters (A-Z, a-z), digits (0-9), \"_\", \"-\" and \".\"";
const NAME_EXAMPLES: &str = "e.g. [program.api], [program.worker-1], [program.db_main]";

/// `[A-Za-z0-9_.-]+`, at most [`MAX_NAME_LEN`] bytes, and not something a
/// path or a command line would take for something else. Only ASCII: a
/// name becomes a file name, a cgroup directory name, the value of
/// `WARD_PROGRAM` and a URL path segment, and each of those has its own
/// idea of what other characters mean.
pub(crate) fn check_name(ctx: &mut Ctx<'_>, entry: &Field<'_, '_>) {
    let name = entry.key;
    let bad_char = name.chars().find(|&c| c != ':' && !allowed(c));
    let (message, help) = if name.contains(':') {
        (
            format!("invalid program name {name:?}"),
            format!("\":\" separates a program from its instance number (web:0); {NAME_EXAMPLES}"),
        )
    } else if name.is_empty() {
        (
            "invalid program name \"\"".to_string(),
            format!("a name cannot be empty; {NAME_EXAMPLES}"),
        )
    } else if let Some(c) = bad_char {
        let suggestion = match ascii_spelling(name) {
            Some(ascii) => format!("spell it in ASCII, e.g. [program.{}]", table_key(&ascii)),
            None => NAME_EXAMPLES.to_string(),
        };
        (
            format!(
                "invalid program name {name:?}: {:?} is not allowed",
                c.to_string()
            ),
            format!("{NAME_RULE}; {suggestion}"),
        )
    } else if name == "." || name == ".." {
        (
            format!("invalid program name {name:?}"),
            format!("a name cannot be a path component like \".\" or \"..\"; {NAME_EXAMPLES}"),
        )
    } else if name.starts_with('-') {
        (
            format!("invalid program name {name:?}"),
            format!(
                "a name cannot start with \"-\" (it would read as a command-line option); {NAME_EXAMPLES}"
            ),
        )
    } else if name.len() > MAX_NAME_LEN {
        (
            format!(
                "program name of {} bytes is too long: the limit is {MAX_NAME_LEN}",
                name.len()
            ),
            "the name becomes part of file names (<name>.<index>.log) and cgroup names (<name>.<index>.r<run>), which the system limits in length; choose a shorter name".to_string(),
        )
    } else {
        return;
    };
    ctx.error(entry.key_span.clone(), message, Some(help));
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// `name` in allowed characters: accents dropped from Latin letters (`é` →
/// `e`, `ß` → `ss`), anything else a `-`. `None` when nothing of the name
/// is left, or what is left is not a valid name.
fn ascii_spelling(name: &str) -> Option<String> {
    let mut out = String::new();
    for c in name.chars() {
        if allowed(c) {
            out.push(c);
        } else if let Some(latin) = unaccented(c) {
            out.push_str(latin);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-');
    let valid = out.chars().any(|c| c.is_ascii_alphanumeric()) && out.len() <= MAX_NAME_LEN;
    valid.then(|| out.to_string())
}

/// The ASCII letters a Latin letter with a diacritic is commonly spelled
/// with.
fn unaccented(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ă' | 'Ą' => "A",
        'æ' => "ae",
        'Æ' => "AE",
        'ç' | 'ć' | 'č' => "c",
        'Ç' | 'Ć' | 'Č' => "C",
        'ď' | 'đ' | 'ð' => "d",
        'Ď' | 'Đ' | 'Ð' => "D",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ė' | 'Ę' | 'Ě' => "E",
        'ğ' => "g",
        'Ğ' => "G",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ī' | 'Į' | 'İ' => "I",
        'ł' | 'ľ' | 'ĺ' => "l",
        'Ł' | 'Ľ' | 'Ĺ' => "L",
        'ñ' | 'ń' | 'ň' => "n",
        'Ñ' | 'Ń' | 'Ň' => "N",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' | 'Ő' => "O",
        'œ' => "oe",
        'Œ' => "OE",
        'ŕ' | 'ř' => "r",
        'Ŕ' | 'Ř' => "R",
        'ś' | 'š' | 'ş' | 'ș' => "s",
        'Ś' | 'Š' | 'Ş' | 'Ș' => "S",
        'ß' => "ss",
        'ť' | 'ţ' | 'ț' => "t",
        'Ť' | 'Ţ' | 'Ț' => "T",
        'þ' => "th",
        'Þ' => "TH",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => "u",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ū' | 'Ů' | 'Ű' | 'Ų' => "U",
        'ý' | 'ÿ' => "y",
        'Ý' | 'Ÿ' => "Y",
        'ź' | 'ż' | 'ž' => "z",
        'Ź' | 'Ż' | 'Ž' => "Z",
        _ => return None,
    })
}

/// A name as written in a `[program.NAME]` header: quoted when it holds a
/// `.`, which a bare key cannot.
fn table_key(name: &str) -> String {
    if name.contains('.') {
        format!("{name:?}")
    } else {
        name.to_string()
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
