//! `[ward]`: ward's own settings, and the `logs` tables (`[ward.logs]` and
//! each program's `logs`), which share one reader.

use std::path::Path;

use toml::de::DeValue;
use ward_core::{LogFormat, LogSpec};

use crate::read::{Ctx, Field, Section};
use crate::WardSettings;

const WARD_KEYS: [&str; 4] = ["state_dir", "socket", "socket_mode", "logs"];
const LOG_KEYS: [&str; 9] = [
    "dir",
    "max_size",
    "keep",
    "format",
    "timestamps",
    "max_line",
    "mode",
    "group",
    "allow_writable_dir",
];

pub(crate) const DEFAULT_SOCKET_MODE: u32 = 0o600;

/// The built-in log settings, writing under `state_dir`.
pub(crate) fn default_logs(state_dir: &Path) -> LogSpec {
    LogSpec {
        dir: state_dir.join("logs"),
        max_size: 50_000_000,
        keep: 5,
        format: LogFormat::Text,
        timestamps: true,
        max_line: 16 * 1024,
        access: Default::default(),
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
    let defaults = default_logs(&state_dir);
    let logs = match get("logs") {
        Some(f) => read_logs(ctx, &f, &defaults, dir),
        None => defaults,
    };
    WardSettings {
        state_dir,
        socket,
        socket_mode,
        logs,
    }
}

fn socket_mode(ctx: &mut Ctx<'_>, field: &Field<'_, '_>) -> Option<u32> {
    let mode = octal_mode(ctx, field)?;
    if mode & 0o600 != 0o600 {
        let written = ctx.source(field.value.span());
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

/// A log file's mode: ward's user reads and writes; others may at most
/// read (a writable log could be rewritten; an executable one makes no
/// sense).
fn log_mode(ctx: &mut Ctx<'_>, field: &Field<'_, '_>) -> Option<u32> {
    let mode = octal_mode(ctx, field)?;
    if mode & 0o600 != 0o600 || mode & !0o644 != 0 {
        let written = ctx.source(field.value.span());
        ctx.error(
            field.value.span(),
            format!(
                "{} {written} is not a mode for log files: ward needs to read and write them, \
                 and others may at most read them",
                field.place()
            ),
            Some("use \"0600\" (the default), \"0640\" to share with `group`, or \"0644\"".into()),
        );
        return None;
    }
    Some(mode)
}

/// `"0660"`: a string, because a bare `660` in TOML is decimal. TOML's own
/// octal integers (`0o660`) are accepted too.
fn octal_mode(ctx: &mut Ctx<'_>, field: &Field<'_, '_>) -> Option<u32> {
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
                Some(format!("quote it: {} = \"0{}\"", field.key, i.as_str())),
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
    if let Some(mode) = section.get("mode").and_then(|f| log_mode(ctx, &f)) {
        logs.access.mode = mode;
    }
    if let Some(group) = section.get("group").and_then(|f| ctx.text_value(&f)) {
        logs.access.group = Some(group.to_string());
    }
    if let Some(b) = section.get("allow_writable_dir").and_then(|f| ctx.bool(&f)) {
        logs.access.allow_writable_dir = b;
    }
    logs
}
