//! `[ward]`: ward's own settings, its control API's limits (`[ward.api]`),
//! and the `logs` tables (`[ward.logs]` and each program's `logs`), which
//! share one reader.

use std::path::Path;
use std::time::Duration;

use toml::de::DeValue;
use ward_core::{LogFormat, LogSpec};

use crate::read::{Ctx, Field, Section};
use crate::{ApiSettings, WardSettings};

const WARD_KEYS: [&str; 5] = ["state_dir", "socket", "socket_mode", "api", "logs"];
const API_KEYS: [&str; 3] = ["header_timeout", "idle_timeout", "max_connections_per_user"];
const LOG_KEYS: [&str; 6] = [
    "dir",
    "max_size",
    "keep",
    "format",
    "timestamps",
    "max_line",
];

pub(crate) const DEFAULT_SOCKET_MODE: u32 = 0o600;

/// A request's head arrives in one write from any real client; a few
/// seconds is ample, and short enough that a client which connects and
/// stalls holds its connection only briefly.
pub const DEFAULT_API: ApiSettings = ApiSettings {
    header_timeout: Duration::from_secs(5),
    idle_timeout: Duration::from_secs(30),
    max_connections_per_user: 64,
};

/// The built-in log settings, writing under `state_dir`.
pub(crate) fn default_logs(state_dir: &Path) -> LogSpec {
    LogSpec {
        dir: state_dir.join("logs"),
        max_size: 50_000_000,
        keep: 5,
        format: LogFormat::Text,
        timestamps: true,
        max_line: 16 * 1024,
    }
}

pub(crate) fn read_ward(
    ctx: &mut Ctx<'_>,
    field: Option<Field<'_, '_>>,
    dir: &Path,
) -> WardSettings {
    let section = field.and_then(|f| Section::of(ctx, &f));
    let get = |key: &str| section.as_ref().and_then(|s| s.get(key));
    if let Some(section) = &section {
        section.check_keys(ctx, &WARD_KEYS, &[]);
    }
    let state_dir = get("state_dir")
        .and_then(|f| ctx.path(&f, dir))
        .unwrap_or_else(|| dir.join(".ward"));
    let socket = get("socket")
        .and_then(|f| ctx.path(&f, dir))
        .unwrap_or_else(|| state_dir.join("ward.sock"));
    let socket_mode = get("socket_mode")
        .and_then(|f| socket_mode(ctx, &f))
        .unwrap_or(DEFAULT_SOCKET_MODE);
    let api = get("api").map_or(DEFAULT_API, |f| read_api(ctx, &f));
    let defaults = default_logs(&state_dir);
    let logs = match get("logs") {
        Some(f) => read_logs(ctx, &f, &defaults, dir),
        None => defaults,
    };
    WardSettings {
        state_dir,
        socket,
        socket_mode,
        api,
        logs,
    }
}

/// `[ward.api]`, each key it sets replacing the default.
fn read_api(ctx: &mut Ctx<'_>, field: &Field<'_, '_>) -> ApiSettings {
    let mut api = DEFAULT_API;
    let Some(section) = Section::of(ctx, field) else {
        return api;
    };
    section.check_keys(ctx, &API_KEYS, &[]);
    let mut timeout = |key: &str| {
        let f = section.get(key)?;
        let d = ctx.duration(&f)?;
        if d.is_zero() {
            ctx.error(
                f.value.span(),
                format!("{} must be longer than 0s", f.place()),
                Some("a connection needs some time: e.g. \"5s\"".into()),
            );
            return None;
        }
        Some(d)
    };
    if let Some(d) = timeout("header_timeout") {
        api.header_timeout = d;
    }
    if let Some(d) = timeout("idle_timeout") {
        api.idle_timeout = d;
    }
    if let Some(n) = section
        .get("max_connections_per_user")
        .and_then(|f| ctx.integer(&f, 1, 100_000))
    {
        api.max_connections_per_user = u32::try_from(n).unwrap_or(api.max_connections_per_user);
    }
    api
}

/// `"0660"`: a string, because a bare `660` in TOML is decimal. TOML's own
/// octal integers (`0o660`) are accepted too.
fn socket_mode(ctx: &mut Ctx<'_>, field: &Field<'_, '_>) -> Option<u32> {
    let text = ctx.source(field.value.span());
    let (digits, written) = match field.value.get_ref() {
        DeValue::String(s) => (s.strip_prefix("0o").unwrap_or(s).to_string(), text),
        DeValue::Integer(i) if i.radix() == 8 => (i.as_str().to_string(), text),
        DeValue::Integer(i) => {
            ctx.error(
                field.value.span(),
                format!(
                    "wrong type for {}: expected a string of octal digits like \"0660\", found an integer",
                    field.place()
                ),
                Some(format!("quote it: socket_mode = \"0{}\"", i.as_str())),
            );
            return None;
        }
        other => {
            ctx.error(
                field.value.span(),
                format!(
                    "wrong type for {}: expected a string of octal digits like \"0660\", found {}",
                    field.place(),
                    crate::read::found(other)
                ),
                None,
            );
            return None;
        }
    };
    let mode = match u32::from_str_radix(&digits, 8) {
        Ok(m) if !digits.is_empty() && !digits.starts_with('+') && m <= 0o777 => m,
        _ => {
            ctx.error(
                field.value.span(),
                format!("invalid mode {written} for {}", field.place()),
                Some("write permission bits as octal digits, e.g. \"0600\" or \"0660\"".into()),
            );
            return None;
        }
    };
    if mode & 0o600 != 0o600 {
        ctx.error(
            field.value.span(),
            format!(
                "{} {written} would keep ward's own user from using the socket",
                field.place()
            ),
            Some("the owner needs read and write: use at least \"0600\"".into()),
        );
        return None;
    }
    Some(mode)
}

/// A `logs` table, each key it sets replacing the one in `base`.
pub(crate) fn read_logs(
    ctx: &mut Ctx<'_>,
    field: &Field<'_, '_>,
    base: &LogSpec,
    dir: &Path,
) -> LogSpec {
    let mut logs = base.clone();
    let Some(section) = Section::of(ctx, field) else {
        return logs;
    };
    section.check_keys(ctx, &LOG_KEYS, &[]);
    if let Some(d) = section.get("dir").and_then(|f| ctx.path(&f, dir)) {
        logs.dir = d;
    }
    if let Some(n) = section
        .get("max_size")
        .and_then(|f| ctx.size(&f, (4 * 1024, "4KiB"), None))
    {
        logs.max_size = n;
    }
    if let Some(n) = section.get("keep").and_then(|f| ctx.integer(&f, 0, 1000)) {
        logs.keep = u32::try_from(n).unwrap_or(logs.keep);
    }
    if let Some(format) = section
        .get("format")
        .and_then(|f| ctx.choice(&f, &[("text", LogFormat::Text), ("json", LogFormat::Json)]))
    {
        logs.format = format;
    }
    if let Some(b) = section.get("timestamps").and_then(|f| ctx.bool(&f)) {
        logs.timestamps = b;
    }
    if let Some(n) = section
        .get("max_line")
        .and_then(|f| ctx.size(&f, (1024, "1KiB"), Some((1024 * 1024, "1MiB"))))
    {
        logs.max_line = usize::try_from(n).unwrap_or(logs.max_line);
    }
    logs
}
