//! The launch side of a program: its command line and its environment.

use std::ops::Range;
use std::path::Path;

use toml::de::DeValue;

use crate::diag::Diagnostic;
use crate::envfile;
use crate::input::{self, ReadError};
use crate::read::{found, resolve, Ctx, Field, Section};

const COMMAND_EXAMPLE: &str = "command = [\"./bin/api\", \"--port\", \"8080\"]";

/// argv: an array as is, a string split like a shell would split it, or
/// with `shell = true` a string handed to `sh -c`.
pub(crate) fn command(
    ctx: &mut Ctx<'_>,
    section: &Section<'_, '_>,
    shell: bool,
) -> Option<Vec<String>> {
    let Some(field) = section.get("command") else {
        ctx.error(
            section.span.clone(),
            format!("missing key \"command\" {}", section.location()),
            Some(format!("say what to run, e.g. {COMMAND_EXAMPLE}")),
        );
        return None;
    };
    words(ctx, &field, &section.location(), shell)
}

/// A command's words from one field (`command`, `stop_command`): an array
/// as is, a string split like a shell would split it, or with `shell` a
/// string handed to the host's shell. `location` is the section's, for
/// messages.
pub(crate) fn words(
    ctx: &mut Ctx<'_>,
    field: &Field<'_, '_>,
    location: &str,
    shell: bool,
) -> Option<Vec<String>> {
    let span = field.value.span();
    let empty = |ctx: &mut Ctx<'_>| {
        ctx.error(
            span.clone(),
            format!("empty {} {location}", field.key),
            Some(format!("say what to run, e.g. {COMMAND_EXAMPLE}")),
        );
    };
    let argv = match field.value.get_ref() {
        DeValue::String(line) if shell => {
            if line.trim().is_empty() {
                empty(ctx);
                return None;
            }
            ctx.host.shell(line)
        }
        DeValue::String(line) => {
            let Some(words) = shlex::split(line) else {
                ctx.error(
                    field.value.span(),
                    format!("cannot split {} into words", field.place()),
                    Some("a quote is not closed, or the line ends in a backslash; or write the command as an array".into()),
                );
                return None;
            };
            if words.is_empty() {
                empty(ctx);
                return None;
            }
            // `"'' x"` splits into an empty program name: as for an array,
            // that is a mistake here, not an ENOENT at every start.
            if words[0].is_empty() {
                ctx.error(
                    field.value.span(),
                    format!("the program to run, first in {}, is empty", field.place()),
                    Some(format!("e.g. {COMMAND_EXAMPLE}")),
                );
                return None;
            }
            words
        }
        DeValue::Array(_) if shell => {
            ctx.error(
                field.value.span(),
                format!(
                    "{} is an array, but shell = true runs one line with sh -c",
                    field.place()
                ),
                Some("write the command as one string, or drop shell = true".into()),
            );
            return None;
        }
        DeValue::Array(items) => {
            if items.is_empty() {
                empty(ctx);
                return None;
            }
            let mut argv = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item.get_ref() {
                    DeValue::String(s) if s.contains('\0') => ctx.error(
                        item.span(),
                        format!(
                            "element {} of {} contains a NUL character",
                            i + 1,
                            field.place()
                        ),
                        None,
                    ),
                    DeValue::String(s) if i == 0 && s.is_empty() => ctx.error(
                        item.span(),
                        format!("the program to run, first in {}, is empty", field.place()),
                        Some(format!("e.g. {COMMAND_EXAMPLE}")),
                    ),
                    DeValue::String(s) => argv.push(s.to_string()),
                    DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) => {
                        let text = ctx.source(item.span());
                        ctx.error(
                            item.span(),
                            format!(
                                "wrong type for element {} of {}: expected a string, found {}",
                                i + 1,
                                field.place(),
                                found(item.get_ref())
                            ),
                            Some(format!("quote it: \"{text}\"")),
                        );
                    }
                    other => ctx.error(
                        item.span(),
                        format!(
                            "wrong type for element {} of {}: expected a string, found {}",
                            i + 1,
                            field.place(),
                            found(other)
                        ),
                        None,
                    ),
                }
            }
            argv
        }
        other => {
            ctx.error(
                field.value.span(),
                format!(
                    "wrong type for {}: expected an array of strings or a string, found {}",
                    field.place(),
                    found(other)
                ),
                Some(format!("e.g. {COMMAND_EXAMPLE}")),
            );
            return None;
        }
    };
    if argv.iter().any(|a| a.contains('\0')) {
        ctx.error(
            field.value.span(),
            format!("{} contains a NUL character", field.place()),
            None,
        );
        return None;
    }
    Some(argv)
}

/// `env_file` entries first, then `env`; a name set twice keeps its first
/// place and its last value.
pub(crate) fn environment(
    ctx: &mut Ctx<'_>,
    section: &Section<'_, '_>,
    dir: &Path,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |name: String, value: String| match env.iter_mut().find(|(n, _)| *n == name) {
        Some(slot) => slot.1 = value,
        None => env.push((name, value)),
    };
    if let Some(field) = section.get("env_file") {
        for (name, value) in env_files(ctx, &field, dir) {
            set(name, value);
        }
    }
    if let Some(table) = section.get("env").and_then(|f| Section::of(ctx, &f)) {
        for entry in table.entries() {
            if let Some(value) = env_value(ctx, &entry) {
                set(entry.key.to_string(), value.to_string());
            }
        }
    }
    env
}

fn env_value<'a>(ctx: &mut Ctx<'_>, entry: &Field<'a, '_>) -> Option<&'a str> {
    if entry.key.is_empty() || entry.key.contains(['=', '\0']) {
        ctx.error(
            entry.key_span.clone(),
            format!("invalid environment variable name {:?}", entry.key),
            Some("a name is not empty and holds no \"=\"".into()),
        );
        return None;
    }
    match entry.value.get_ref() {
        DeValue::String(s) if s.contains('\0') => {
            ctx.error(
                entry.value.span(),
                format!("{} contains a NUL character", entry.place()),
                Some("environment values cannot hold NUL".into()),
            );
            None
        }
        DeValue::String(s) => Some(s.as_ref()),
        DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) => {
            let text = ctx.source(entry.value.span());
            let key = ctx.source(entry.key_span.clone());
            ctx.error(
                entry.value.span(),
                format!(
                    "wrong type for {}: expected a string, found {}",
                    entry.place(),
                    found(entry.value.get_ref())
                ),
                Some(format!("quote it: {key} = \"{text}\"")),
            );
            None
        }
        other => {
            ctx.error(
                entry.value.span(),
                format!(
                    "wrong type for {}: expected a string, found {}",
                    entry.place(),
                    found(other)
                ),
                None,
            );
            None
        }
    }
}

/// Reads every file `env_file` names (one string or an array of them).
fn env_files(ctx: &mut Ctx<'_>, field: &Field<'_, '_>, dir: &Path) -> Vec<(String, String)> {
    let files: Vec<(&str, Range<usize>)> = match field.value.get_ref() {
        DeValue::String(s) => vec![(s.as_ref(), field.value.span())],
        DeValue::Array(items) => {
            let mut files = Vec::new();
            for item in items.iter() {
                match item.get_ref() {
                    DeValue::String(s) => files.push((s.as_ref(), item.span())),
                    other => ctx.error(
                        item.span(),
                        format!(
                            "wrong type for an element of {}: expected a string, found {}",
                            field.place(),
                            found(other)
                        ),
                        None,
                    ),
                }
            }
            files
        }
        other => {
            ctx.error(
                field.value.span(),
                format!(
                    "wrong type for {}: expected a path or an array of paths, found {}",
                    field.place(),
                    found(other)
                ),
                Some("e.g. env_file = \".env\"".into()),
            );
            return Vec::new();
        }
    };
    let mut entries = Vec::new();
    for (written, span) in files {
        if written.is_empty() || written.contains('\0') {
            ctx.error(span, format!("invalid path for {}", field.place()), None);
            continue;
        }
        let path = resolve(dir, Path::new(written));
        let text = match input::read_text(&path) {
            Ok(text) => text,
            Err(e) => {
                env_file_error(ctx, span, &path, &e);
                continue;
            }
        };
        // Messages name the file the way the user named the config.
        let shown = match ctx.file.parent() {
            Some(parent) if Path::new(written).is_relative() => parent.join(written),
            _ => Path::new(written).to_path_buf(),
        };
        let (found_entries, errors) = envfile::parse(&text);
        for e in errors {
            ctx.diags
                .push(Diagnostic::at(&shown, &text, e.span, e.message, e.help));
        }
        entries.extend(found_entries);
    }
    entries
}

/// An env file that was not read, reported at the `env_file` value that
/// names it.
fn env_file_error(ctx: &mut Ctx<'_>, span: Range<usize>, path: &Path, e: &ReadError) {
    let shown = path.display();
    let (message, help) = match e {
        ReadError::Io(e) => (
            format!("cannot read env_file {shown}: {e}"),
            "create it, or drop env_file",
        ),
        ReadError::NotRegular(_) => (
            format!("env_file {shown}: {}", e.reason()),
            "env_file names a regular file of KEY=VALUE lines",
        ),
        ReadError::TooLarge => (
            format!("env_file {shown}: {}", e.reason()),
            "is it the file you meant? An env file holds KEY=VALUE lines",
        ),
        ReadError::NotUtf8(bad) => (
            format!("env_file {shown} is not valid UTF-8: {}", bad.describe()),
            if bad.utf16() {
                "it looks like UTF-16; save it as UTF-8"
            } else {
                "save it as UTF-8"
            },
        ),
    };
    ctx.error(span, message, Some(help.into()));
}
