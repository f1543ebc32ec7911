//! ward-config: `ward.toml` → a validated [`SpecSet`], or every mistake in
//! the file at once, each with `file:line:col`, what was wrong and what was
//! expected. `docs/config.md` is the reference for the format.
//!
//! Reading is one pass over toml's spanned tree ([`toml::de::DeTable`]):
//! each reader either yields a value or records a [`Diagnostic`] at the
//! offending text and lets the default stand in, so that one mistake never
//! hides the next.

mod diag;
mod envfile;
mod graph;
mod host;
mod input;
mod launch;
mod program;
mod read;
mod settings;
mod units;

use std::path::{Path, PathBuf};

use serde::Serialize;
use toml::de::{DeTable, DeValue};
use ward_core::{LogSpec, SpecSet};

pub use diag::{Diagnostic, Diagnostics};
pub use graph::MAX_NAME_LEN;
pub use host::{AnyHost, Host, Places};
pub use input::MAX_FILE_SIZE;
pub use units::{parse_duration, parse_size, MAX_DURATION};

use input::ReadError;
use read::{Ctx, Field, Section};

/// A loaded, validated configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Absolute path of the file loaded.
    pub path: PathBuf,
    pub ward: WardSettings,
    pub specs: SpecSet,
}

/// `[ward]`: ward's own settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WardSettings {
    /// Absolute; default `.ward` beside the config file.
    pub state_dir: PathBuf,
    /// Absolute; default `<state_dir>/ward.sock`.
    pub socket: PathBuf,
    /// Permission bits of the control socket; default `0o600`.
    pub socket_mode: u32,
    /// Limits of the control API's connections (`[ward.api]`).
    pub api: ApiSettings,
    /// Defaults for every program's `logs` (`[ward.logs]`); `dir` defaults
    /// to `<state_dir>/logs`.
    pub logs: LogSpec,
}

/// `[ward.api]`: how long ward waits for a client of its control API, and
/// how many connections one user may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ApiSettings {
    /// A request's head must be complete this long after the connection
    /// opened or, on a kept-alive connection, after its first byte.
    pub header_timeout: std::time::Duration,
    /// A kept-alive connection with no request under way is closed after
    /// this long without a new one. Answers and streams under way are not
    /// cut by either timeout.
    pub idle_timeout: std::time::Duration,
    /// Connections one peer uid may have open at once; past it a new one is
    /// answered `503` and closed. Counted per uid, so that another user the
    /// socket mode admits cannot take ward's own user's (or root's).
    pub max_connections_per_user: u32,
}

/// Reads and validates the file at `path`. Relative paths in it are
/// resolved against the file's directory. Users and groups are not looked
/// up: see [`load_with`].
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    load_with(path, &AnyHost)
}

/// As [`load`], asking `host` about what the file alone cannot tell (do
/// its users and groups exist?).
///
/// Only a regular file of at most [`MAX_FILE_SIZE`] bytes is read, the
/// config as every `env_file`; nothing here waits for a writer.
pub fn load_with(path: &Path, host: &dyn Host) -> Result<Config, Diagnostics> {
    match input::read_text(path) {
        Ok(text) => parse_with(path, &text, host),
        Err(ReadError::NotUtf8(bad)) => {
            let help = if bad.utf16() {
                "the file looks like UTF-16; save it as UTF-8"
            } else {
                "save the file as UTF-8"
            };
            Err(Diagnostics {
                items: vec![Diagnostic::at(
                    path,
                    &bad.lossy,
                    bad.offset..bad.offset + 1,
                    format!("{} is not valid UTF-8: {}", path.display(), bad.describe()),
                    Some(help.into()),
                )],
            })
        }
        Err(ReadError::Io(e)) => {
            let help = match e.kind() {
                std::io::ErrorKind::NotFound => {
                    Some("create one with `ward init`, or pass --config FILE".into())
                }
                _ => None,
            };
            Err(Diagnostics::whole_file(
                path,
                format!("cannot read {}: {e}", path.display()),
                help,
            ))
        }
        Err(e @ ReadError::NotRegular(_)) => Err(Diagnostics::whole_file(
            path,
            format!("{}: {}", path.display(), e.reason()),
            Some("name a regular file: ward does not read devices, FIFOs or sockets".into()),
        )),
        Err(e @ ReadError::TooLarge) => Err(Diagnostics::whole_file(
            path,
            format!("{}: {}", path.display(), e.reason()),
            None,
        )),
    }
}

/// Validates `text`, the contents of `path`: `path` names the file in
/// messages and anchors relative paths. Files the text names (`env_file`)
/// are read. Users and groups are not looked up: see [`parse_with`].
pub fn parse(path: &Path, text: &str) -> Result<Config, Diagnostics> {
    parse_with(path, text, &AnyHost)
}

/// As [`parse`], asking `host` about what the file alone cannot tell.
pub fn parse_with(path: &Path, text: &str, host: &dyn Host) -> Result<Config, Diagnostics> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let abs = std::path::absolute(path).map_err(|e| {
        Diagnostics::whole_file(
            path,
            format!("cannot tell where {} is: {e}", path.display()),
            None,
        )
    })?;
    let dir = abs.parent().map_or_else(|| abs.clone(), Path::to_path_buf);
    let root = DeTable::parse(text).map_err(|e| syntax_error(path, text, &e))?;

    let mut ctx = Ctx::new(path, text, host);
    let top = Section::root(root.get_ref());
    top.check_keys(
        &mut ctx,
        &["ward", "program", "job"],
        &[("services", "program"), ("apps", "program")],
    );
    let ward = settings::read_ward(&mut ctx, top.get("ward"), &dir);
    if let Some(jobs) = top.get("job") {
        reject_jobs(&mut ctx, &jobs);
    }
    let specs = read_programs(&mut ctx, top.get("program"), &dir, &ward.logs);

    if ctx.diags.is_empty() {
        Ok(Config {
            path: abs,
            ward,
            specs,
        })
    } else {
        let mut items = ctx.diags;
        diag::sort(&mut items, path);
        Err(Diagnostics { items })
    }
}

/// Where the daemon of the config at `path` answers, even when the file
/// has errors elsewhere (so `ward reload` can reach the daemon and report
/// them): `[ward] socket` or `state_dir` when those keys read well, else
/// the default `.ward/ward.sock` beside the file.
pub fn socket_path(path: &Path) -> PathBuf {
    socket_path_with(path, &AnyHost)
}

/// As [`socket_path`], with the defaults `host` gives ([`Host::places`]).
pub fn socket_path_with(path: &Path, host: &dyn Host) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = abs.parent().map_or_else(|| abs.clone(), Path::to_path_buf);
    let places = host.places(&dir);
    let default = places
        .socket
        .unwrap_or_else(|| places.state_dir.join("ward.sock"));
    let Ok(text) = input::read_text(path) else {
        return default;
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let Ok(root) = DeTable::parse(text) else {
        return default;
    };
    let mut ctx = Ctx::new(path, text, host);
    let top = Section::root(root.get_ref());
    settings::read_ward(&mut ctx, top.get("ward"), &dir).socket
}

fn syntax_error(path: &Path, text: &str, e: &toml::de::Error) -> Diagnostics {
    let span = e.span().unwrap_or(0..0);
    let mut message = format!("invalid TOML: {}", e.message());
    let mut help = None;
    if e.message() == "duplicate key" {
        if let Some(key) = text.get(span.clone()) {
            message = format!("invalid TOML: duplicate key {key}");
        }
        help = Some("a key is set once per table; remove one of them".into());
    }
    Diagnostics {
        items: vec![Diagnostic::at(path, text, span, message, help)],
    }
}

/// Scheduled jobs are part of the design, not of this version: say so at
/// each `[job.NAME]` rather than calling the key unknown.
fn reject_jobs(ctx: &mut Ctx<'_>, jobs: &Field<'_, '_>) {
    let message = "scheduled jobs ([job.*]) are not supported yet";
    let help = Some(
        "for now, make it a [program] with autostart = false and restart = \"never\", and start it from cron with `ward start NAME`"
            .to_string(),
    );
    match jobs.value.get_ref() {
        DeValue::Table(table) if !table.is_empty() => {
            let mut spans: Vec<_> = table.values().map(|v| v.span()).collect();
            spans.sort_by_key(|s| s.start);
            for span in spans {
                ctx.error(span, message.into(), help.clone());
            }
        }
        _ => ctx.error(jobs.key_span.clone(), message.into(), help),
    }
}

fn read_programs(
    ctx: &mut Ctx<'_>,
    field: Option<Field<'_, '_>>,
    dir: &Path,
    logs: &LogSpec,
) -> SpecSet {
    let Some(section) = field.and_then(|f| Section::of(ctx, &f)) else {
        return SpecSet::default();
    };
    let entries = section.entries();
    let names: Vec<&str> = entries.iter().map(|e| e.key).collect();
    let mut programs = Vec::with_capacity(entries.len());
    for entry in &entries {
        graph::check_name(ctx, entry);
        if let DeValue::Array(_) = entry.value.get_ref() {
            ctx.error(
                entry.value.span(),
                format!(
                    "[[program.{}]] makes a list; a program is one table",
                    entry.key
                ),
                Some(format!("write [program.{}]", entry.key)),
            );
            continue;
        }
        if let Some(program) = Section::of(ctx, entry) {
            programs.push(program::read_program(ctx, entry.key, &program, dir, logs));
        }
    }
    graph::check_dependencies(ctx, &programs, &names);
    SpecSet {
        programs: programs
            .into_iter()
            .map(|p| (p.spec.name.clone(), p.spec))
            .collect(),
    }
}

#[cfg(test)]
mod tests;
