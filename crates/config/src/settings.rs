//! `[ward]`: ward's own settings, its control API's limits (`[ward.api]`),
//! and the `logs` tables (`[ward.logs]` and each program's `logs`), which
//! share one reader.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::DeValue;
use ward_core::{LogFormat, LogSpec};

use crate::read::{Ctx, Field, Section};
use crate::{ApiSettings, WardSettings};

const WARD_KEYS: [&str; 5] = ["state_dir", "socket", "socket_mode", "api", "logs"];
const API_KEYS: [&str; 3] = ["header_timeout", "idle_timeout", "max_connections_per_user"];
const LOG_KEYS: [&str; 11] = [
    "dir",
    "max_size",
    "keep",
    "format",
    "timestamps",
    "max_line",
    "mode",
    "group",
    "allow_writable_dir",
    "files",
    "journald",
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
        access: Default::default(),
        files: true,
        journald: false,
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
    // Each path with the key it was read from: where a problem with it
    // is reported. A default has none.
    let places = ctx.host.places(dir);
    let (state_dir, state_dir_key) = match keyed_path(ctx, get("state_dir"), dir) {
        Some((path, f)) => (path, Some(f)),
        None => (places.state_dir.clone(), None),
    };
    let (socket, socket_key) = match keyed_path(ctx, get("socket"), dir) {
        Some((path, f)) => (path, Some(f)),
        None => (
            places
                .socket
                .clone()
                .unwrap_or_else(|| state_dir.join("ward.sock")),
            None,
        ),
    };
    check_state_dir(ctx, &state_dir, state_dir_key.as_ref());
    check_socket_length(ctx, &socket, socket_key.as_ref().or(state_dir_key.as_ref()));
    let socket_mode = get("socket_mode")
        .and_then(|f| socket_mode(ctx, &f))
        .unwrap_or(DEFAULT_SOCKET_MODE);
    let api = get("api").map_or(DEFAULT_API, |f| read_api(ctx, &f));
    let mut defaults = default_logs(&state_dir);
    if let Some(logs_dir) = places.logs_dir {
        defaults.dir = logs_dir;
    }
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

fn keyed_path<'a, 'i>(
    ctx: &mut Ctx<'_>,
    field: Option<Field<'a, 'i>>,
    dir: &Path,
) -> Option<(PathBuf, Field<'a, 'i>)> {
    let field = field?;
    Some((ctx.path(&field, dir)?, field))
}

/// A state_dir that exists must be a directory: `ward up` would fail to
/// create its files there. (One that does not exist yet is created.)
fn check_state_dir(ctx: &mut Ctx<'_>, state_dir: &Path, key: Option<&Field<'_, '_>>) {
    let is_other = std::fs::metadata(state_dir).is_ok_and(|meta| !meta.is_dir());
    if !is_other {
        return;
    }
    let message = format!(
        "state_dir {} exists and is not a directory",
        state_dir.display()
    );
    match key {
        Some(f) => ctx.error(
            f.value.span(),
            message,
            Some("name a directory, or a path that does not exist yet (ward creates it)".into()),
        ),
        None => ctx.error_whole_file(
            message,
            Some("ward keeps its state in .ward beside the config: remove that file, or set [ward] state_dir".into()),
        ),
    }
}

/// The longest path a Unix socket address holds, without its NUL
/// (`sun_path` is 108 bytes on Linux, 104 on macOS and the BSDs); `None`
/// where the control socket is not a Unix socket.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) const SOCKET_PATH_MAX: Option<usize> = Some(107);
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
pub(crate) const SOCKET_PATH_MAX: Option<usize> = Some(103);
#[cfg(not(unix))]
pub(crate) const SOCKET_PATH_MAX: Option<usize> = None;

/// The longest name `api::bind` gives the socket while it sets it up, in
/// the socket's directory: `.w` and the pid in hex.
const TEMPORARY_SOCKET_NAME_MAX: usize = 10;

/// The control socket's path must fit a Unix socket address, or `ward up`
/// cannot listen on it and no client can reach it. Reported at `key` (the
/// `socket` key, else the `state_dir` it is derived from), else about the
/// whole file (the default beside it).
fn check_socket_length(ctx: &mut Ctx<'_>, socket: &Path, key: Option<&Field<'_, '_>>) {
    let Some(limit) = SOCKET_PATH_MAX else {
        return;
    };
    let len = socket.as_os_str().as_encoded_bytes().len();
    let dir_len = socket
        .parent()
        .map_or(0, |d| d.as_os_str().as_encoded_bytes().len());
    let message = if len > limit {
        format!(
            "the control socket path {} is {len} bytes long; a Unix socket path holds at most {limit} bytes here",
            socket.display()
        )
    } else if dir_len + 1 + TEMPORARY_SOCKET_NAME_MAX > limit {
        format!(
            "the control socket's directory {} is {dir_len} bytes long; ward sets the socket up under a temporary name of up to {TEMPORARY_SOCKET_NAME_MAX} bytes there, and a Unix socket path holds at most {limit} bytes here",
            socket.parent().unwrap_or(socket).display()
        )
    } else {
        return;
    };
    let help = Some(
        "set [ward] socket to a shorter path, e.g. socket = \"/run/myapp-ward.sock\"".to_string(),
    );
    match key {
        Some(f) => ctx.error(f.value.span(), message, help),
        None => ctx.error_whole_file(message, help),
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
    if let Some(f) = section.get("group") {
        if let Some(group) = ctx.text_value(&f) {
            if !crate::host::is_numeric_id(group) {
                if let Err(why) = ctx.host.check_group(group) {
                    ctx.error(
                        f.value.span(),
                        format!("{why} for {}", f.place()),
                        Some(
                            "ward gives the log files to this group: fix the name, create it, \
                             or give a numeric gid"
                                .into(),
                        ),
                    );
                }
            }
            logs.access.group = Some(group.to_string());
        }
    }
    if let Some(b) = section.get("allow_writable_dir").and_then(|f| ctx.bool(&f)) {
        logs.access.allow_writable_dir = b;
    }
    if let Some(b) = section.get("files").and_then(|f| ctx.bool(&f)) {
        logs.files = b;
    }
    if let Some(b) = section.get("journald").and_then(|f| ctx.bool(&f)) {
        logs.journald = b;
    }
    if !logs.files && !logs.journald {
        // Said where it was decided: the key of this table that turned
        // the last way out off.
        if let Some(f) = section.get("files").or_else(|| section.get("journald")) {
            ctx.error(
                f.value.span(),
                format!(
                    "{}: with files = false and journald = false the output goes nowhere",
                    f.place()
                ),
                Some(
                    "keep the files (files = true), or send the output to the journal \
                     (journald = true)"
                        .into(),
                ),
            );
        }
    }
    logs
}
