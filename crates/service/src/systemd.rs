//! systemd: the unit file for a [`Service`], and installing it with
//! `systemctl`.
//!
//! The file's first two lines say who wrote it and a fingerprint of the
//! rest, so that an installer replaces or removes only units it wrote and
//! nobody edited since (a change belongs in a drop-in: `systemctl edit`).

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{fingerprint, Error, ErrorKind, InstallOptions, Installed, KillMode, Restart, Scope};
use crate::{Service, Status};

/// The unit file's text.
pub fn render(service: &Service) -> String {
    let body = render_body(service);
    format!(
        "# Written by {}; a change here is lost when it writes the file again\n\
         # (use `systemctl edit {}` for changes of your own).\n\
         # fingerprint {}\n{body}",
        service.generator,
        service.name,
        fingerprint(&body)
    )
}

fn render_body(s: &Service) -> String {
    let mut u = String::new();
    let line = |u: &mut String, key: &str, value: &str| {
        let _ = writeln!(u, "{key}={value}");
    };
    u.push_str("\n[Unit]\n");
    line(&mut u, "Description", &specifiers(&s.description));
    if s.scope == Scope::System {
        line(&mut u, "Wants", "network-online.target");
        line(&mut u, "After", "network-online.target");
    }
    for (key, value) in &s.properties {
        line(&mut u, &format!("X-{key}"), &specifiers(value));
    }
    u.push_str("\n[Service]\n");
    if s.notify {
        line(&mut u, "Type", "notify");
        line(&mut u, "NotifyAccess", "main");
        if let Some(watchdog) = s.watchdog {
            line(&mut u, "WatchdogSec", &seconds(watchdog));
        }
    } else {
        line(&mut u, "Type", "exec");
    }
    let start: Vec<String> = std::iter::once(s.program.to_string_lossy().into_owned())
        .chain(s.args.iter().cloned())
        .collect();
    line(&mut u, "ExecStart", &command_line(&start));
    if let Some(reload) = &s.reload {
        line(&mut u, "ExecReload", &command_line(reload));
    }
    line(
        &mut u,
        "Restart",
        match s.restart {
            Restart::OnFailure => "on-failure",
            Restart::Always => "always",
            Restart::Never => "no",
        },
    );
    if s.restart != Restart::Never {
        line(&mut u, "RestartSec", "1s");
    }
    line(
        &mut u,
        "KillMode",
        match s.kill_mode {
            KillMode::ControlGroup => "control-group",
            KillMode::Mixed => "mixed",
        },
    );
    if let Some(timeout) = s.stop_timeout {
        line(&mut u, "TimeoutStopSec", &seconds(timeout));
    }
    if s.delegate {
        line(&mut u, "Delegate", "yes");
    }
    if let Some(dirs) = &s.dirs {
        // A user manager's places for state and logs moved between systemd
        // versions; the service makes those itself (see `crate::dirs`).
        if s.scope == Scope::System {
            line(&mut u, "StateDirectory", dirs);
            line(&mut u, "StateDirectoryMode", "0700");
            line(&mut u, "LogsDirectory", dirs);
        }
        line(&mut u, "RuntimeDirectory", dirs);
    }
    if let Some(dir) = &s.working_dir {
        line(
            &mut u,
            "WorkingDirectory",
            &specifiers(&dir.to_string_lossy()),
        );
    }
    for (key, value) in &s.env {
        line(
            &mut u,
            "Environment",
            &quote(&format!("{key}={value}"), false),
        );
    }
    u.push_str("\n[Install]\n");
    line(
        &mut u,
        "WantedBy",
        match s.scope {
            Scope::System => "multi-user.target",
            Scope::User => "default.target",
        },
    );
    u
}

/// `%` doubled: systemd reads `%x` as a specifier everywhere.
fn specifiers(text: &str) -> String {
    text.replace('%', "%%")
}

/// A command line for `ExecStart=`: every word in double quotes, with `\`
/// and `"` escaped, `%` doubled (specifiers) and `$` doubled (variables).
pub fn command_line(words: &[String]) -> String {
    words
        .iter()
        .map(|w| quote(w, true))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(word: &str, dollars: bool) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('"');
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' if dollars => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The words of a command line as [`command_line`] writes them (and as
/// systemd reads plain or quoted words).
pub fn parse_command_line(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let quote = matches!(chars[i], '"' | '\'').then_some(chars[i]);
        if quote.is_some() {
            i += 1;
        }
        let mut word = String::new();
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '\\' if i < chars.len() => {
                    word.push(chars[i]);
                    i += 1;
                }
                c if Some(c) == quote => break,
                c if quote.is_none() && c.is_whitespace() => break,
                '%' | '$' if chars.get(i) == Some(&c) => {
                    word.push(c);
                    i += 1;
                }
                c => word.push(c),
            }
        }
        words.push(word);
    }
    words
}

fn seconds(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Where the unit file of `name` goes: `/etc/systemd/system/` for the
/// system, `$XDG_CONFIG_HOME/systemd/user/` (`~/.config/systemd/user/`)
/// for a user.
pub fn unit_path(name: &str, scope: Scope) -> Result<PathBuf, Error> {
    Ok(unit_dir(scope)?.join(format!("{name}.service")))
}

fn unit_dir(scope: Scope) -> Result<PathBuf, Error> {
    match scope {
        Scope::System => Ok(PathBuf::from("/etc/systemd/system")),
        Scope::User => Ok(config_home()?.join("systemd/user")),
    }
}

fn config_home() -> Result<PathBuf, Error> {
    match crate::xdg("XDG_CONFIG_HOME") {
        Some(dir) => Ok(dir),
        None => Ok(crate::home()?.join(".config")),
    }
}

/// A unit file as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    pub path: PathBuf,
    /// Written by this generator (its first line says so).
    pub ours: bool,
    /// Ours, but changed since it was written.
    pub edited: bool,
    /// Its `X-` keys, without the `X-`.
    pub properties: Vec<(String, String)>,
    /// The words of its `ExecStart=`.
    pub exec_start: Vec<String>,
}

/// Reads the unit file of `name`, if there is one.
pub fn read(name: &str, scope: Scope, generator: &str) -> Result<Option<UnitFile>, Error> {
    let path = unit_path(name, scope)?;
    read_file(&path, generator)
}

fn read_file(path: &Path, generator: &str) -> Result<Option<UnitFile>, Error> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(format!("cannot read {}: {e}", path.display()))),
    };
    if !meta.is_file() {
        // A link (`systemctl link`, a masked unit) is nobody's to replace.
        return Ok(Some(UnitFile {
            path: path.to_path_buf(),
            ours: false,
            edited: false,
            properties: Vec::new(),
            exec_start: Vec::new(),
        }));
    }
    if meta.len() > 1 << 20 {
        return Err(failed(format!(
            "{} is too large for a unit file",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| failed(format!("cannot read {}: {e}", path.display())))?;
    Ok(Some(parse(path, &text, generator)))
}

fn parse(path: &Path, text: &str, generator: &str) -> UnitFile {
    let mut lines = text.splitn(4, '\n');
    let first = lines.next().unwrap_or_default();
    let _second = lines.next();
    let third = lines.next().unwrap_or_default();
    let body = lines.next().unwrap_or_default();
    let ours = first.starts_with(&format!("# Written by {generator};"));
    let edited = ours
        && third
            .strip_prefix("# fingerprint ")
            .is_none_or(|noted| noted != fingerprint(body));
    let mut properties = Vec::new();
    let mut exec_start = Vec::new();
    for line in body.lines() {
        if let Some((key, value)) = line.split_once('=') {
            if let Some(key) = key.strip_prefix("X-") {
                properties.push((key.to_string(), value.replace("%%", "%")));
            } else if key == "ExecStart" {
                exec_start = parse_command_line(value);
            }
        }
    }
    UnitFile {
        path: path.to_path_buf(),
        ours,
        edited,
        properties,
        exec_start,
    }
}

/// Every unit of `scope` this generator wrote, by name.
pub fn list(scope: Scope, generator: &str) -> Vec<(String, UnitFile)> {
    let Ok(dir) = unit_dir(scope) else {
        return Vec::new();
    };
    crate::scan(&dir, ".service", |path| {
        read_file(path, generator)
            .ok()
            .flatten()
            .filter(|unit| unit.ours)
    })
}

/// Whether systemd manages this system (it made `/run/systemd/system`), or
/// the user's session (a user manager answers).
pub fn running(scope: Scope) -> bool {
    match scope {
        Scope::System => Path::new("/run/systemd/system").is_dir(),
        // The user manager's own socket, where `systemctl --user` goes.
        Scope::User => user_runtime_dir().is_some_and(|dir| dir.join("systemd/private").exists()),
    }
}

/// `$XDG_RUNTIME_DIR`, else `/run/user/UID`.
fn user_runtime_dir() -> Option<PathBuf> {
    if let Some(dir) = crate::xdg("XDG_RUNTIME_DIR") {
        return Some(dir);
    }
    #[cfg(unix)]
    {
        Some(PathBuf::from(format!(
            "/run/user/{}",
            rustix::process::getuid().as_raw()
        )))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

fn no_manager(scope: Scope) -> Error {
    let pid1 = std::fs::read_to_string("/proc/1/comm")
        .map(|c| c.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let message = match scope {
        Scope::System => format!(
            "systemd does not run this system (PID 1 is {pid1}): there is no service \
             manager to install into"
        ),
        Scope::User => "no systemd user manager answers for this user (systemctl --user); \
             log in through a session that starts one, or enable lingering \
             (loginctl enable-linger)"
            .to_string(),
    };
    Error::new(ErrorKind::NoManager, message)
}

/// Writes the unit, reloads systemd, enables the unit and (unless told
/// not to) starts it, waiting for it to be ready when it notifies. A failed
/// step takes back what the earlier ones did.
pub fn install(service: &Service, options: &InstallOptions) -> Result<Installed, Error> {
    service.validate()?;
    let scope = service.scope;
    if scope == Scope::System && !crate::is_root() {
        return Err(Error::new(
            ErrorKind::NotPermitted,
            "installing a system service needs root (sudo), or install it for your user (--user)",
        ));
    }
    if !running(scope) {
        return Err(no_manager(scope));
    }
    let path = unit_path(&service.name, scope)?;
    let existing = read_file(&path, &service.generator)?;
    if let Some(unit) = &existing {
        if !options.force {
            check_replaceable(unit, &service.generator)?;
        }
    }
    let text = render(service);
    let previous = existing
        .as_ref()
        .and_then(|_| std::fs::read_to_string(&path).ok());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
    }
    let unit = format!("{}.service", service.name);
    // How the unit this one replaces was: a failed step puts it back so.
    let was = |verb: &str| {
        previous.is_some() && systemctl(scope, &[verb, "--quiet", &unit]).is_ok_and(|out| out.ok)
    };
    let (was_enabled, was_active) = (was("is-enabled"), was("is-active"));
    write_atomically(&path, &text)?;
    let undo = |err: Error| -> Error {
        match &previous {
            Some(old) => {
                let _ = write_atomically(&path, old);
                let _ = systemctl(scope, &["daemon-reload"]);
                if !was_enabled {
                    let _ = systemctl(scope, &["disable", "--quiet", &unit]);
                }
                if was_active {
                    let _ = systemctl(scope, &["restart", &unit]);
                }
            }
            None => {
                let _ = systemctl(scope, &["disable", "--quiet", &unit]);
                let _ = std::fs::remove_file(&path);
                let _ = systemctl(scope, &["daemon-reload"]);
            }
        }
        err
    };
    step(scope, &["daemon-reload"], "reload systemd's units").map_err(undo)?;
    step(scope, &["enable", "--quiet", &unit], "enable the unit").map_err(undo)?;
    let started = if options.start {
        // `restart` starts a stopped unit and brings a running one up on
        // the new file alike.
        if let Err(e) = step(scope, &["restart", &unit], "start the unit") {
            let _ = systemctl(scope, &["stop", &unit]);
            let journal = recent_journal(scope, &unit);
            let mut e = undo(e);
            if !journal.is_empty() {
                e.message.push_str("\nthe unit's last log lines:\n");
                e.message.push_str(&journal);
            }
            return Err(e);
        }
        true
    } else {
        false
    };
    Ok(Installed {
        file: path,
        replaced: existing.is_some(),
        started,
    })
}

fn check_replaceable(unit: &UnitFile, generator: &str) -> Result<(), Error> {
    if !unit.ours {
        return Err(Error::new(
            ErrorKind::Exists,
            format!(
                "{} exists and was not written by {generator}: choose another name, \
                 or replace it with --force",
                unit.path.display()
            ),
        ));
    }
    if unit.edited {
        return Err(Error::new(
            ErrorKind::Exists,
            format!(
                "{} was edited by hand since {generator} wrote it: replacing it would lose \
                 the edits; keep them in a drop-in (systemctl edit) and use --force",
                unit.path.display()
            ),
        ));
    }
    Ok(())
}

/// Stops and disables the unit, removes its file and reloads systemd.
pub fn uninstall(name: &str, scope: Scope, generator: &str, force: bool) -> Result<PathBuf, Error> {
    crate::check_name(name)?;
    if scope == Scope::System && !crate::is_root() {
        return Err(Error::new(
            ErrorKind::NotPermitted,
            "removing a system service needs root (sudo)",
        ));
    }
    let path = unit_path(name, scope)?;
    let Some(unit) = read_file(&path, generator)? else {
        return Err(Error::new(
            ErrorKind::NotInstalled,
            format!(
                "there is no service {name:?} ({} does not exist)",
                path.display()
            ),
        ));
    };
    if !force {
        let why = if !unit.ours {
            Some(format!("was not written by {generator}"))
        } else if unit.edited {
            Some(format!("was edited by hand since {generator} wrote it"))
        } else {
            None
        };
        if let Some(why) = why {
            return Err(Error::new(
                ErrorKind::Exists,
                format!(
                    "{} {why}: it is not removed (--force removes it)",
                    path.display()
                ),
            ));
        }
    }
    let unit_name = format!("{name}.service");
    if running(scope) {
        step(
            scope,
            &["disable", "--now", "--quiet", &unit_name],
            "stop and disable the unit",
        )?;
    }
    std::fs::remove_file(&path)
        .map_err(|e| failed(format!("cannot remove {}: {e}", path.display())))?;
    if running(scope) {
        let _ = systemctl(scope, &["daemon-reload"]);
        let _ = systemctl(scope, &["reset-failed", &unit_name]);
    }
    Ok(path)
}

/// What `systemctl show` says of the unit.
pub fn status(name: &str, scope: Scope) -> Result<Status, Error> {
    let unit = format!("{name}.service");
    let out = systemctl(
        scope,
        &[
            "show",
            "--property=ActiveState,StatusText,MainPID,UnitFileState",
            &unit,
        ],
    )?;
    if !out.ok {
        return Err(failed(format!(
            "systemctl show {unit} failed: {}",
            out.stderr.trim()
        )));
    }
    let mut status = Status::default();
    for line in out.stdout.lines() {
        match line.split_once('=') {
            Some(("ActiveState", v)) => status.state = v.to_string(),
            Some(("StatusText", v)) if !v.is_empty() => status.text = Some(v.to_string()),
            Some(("MainPID", v)) => status.pid = v.parse().ok().filter(|&p| p > 0),
            Some(("UnitFileState", v)) => status.enabled = v == "enabled",
            _ => {}
        }
    }
    Ok(status)
}

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn systemctl(scope: Scope, args: &[&str]) -> Result<Output, Error> {
    let mut cmd = Command::new("systemctl");
    if scope == Scope::User {
        cmd.arg("--user");
    }
    cmd.args(args).stdin(std::process::Stdio::null());
    let out = cmd
        .output()
        .map_err(|e| failed(format!("cannot run systemctl: {e}")))?;
    Ok(Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs one `systemctl` step; its failure says `what` and systemctl's words.
fn step(scope: Scope, args: &[&str], what: &str) -> Result<(), Error> {
    let out = systemctl(scope, args)?;
    if out.ok {
        return Ok(());
    }
    let said = out.stderr.trim();
    Err(failed(format!(
        "cannot {what}: systemctl{} {} failed{}",
        if scope == Scope::User { " --user" } else { "" },
        args.join(" "),
        if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        }
    )))
}

fn recent_journal(scope: Scope, unit: &str) -> String {
    let mut cmd = Command::new("journalctl");
    if scope == Scope::User {
        cmd.arg("--user");
    }
    cmd.args(["-u", unit, "-n", "10", "--no-pager", "-o", "cat"])
        .stdin(std::process::Stdio::null());
    cmd.output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_string())
        .unwrap_or_default()
}

pub(crate) fn write_atomically(path: &Path, text: &str) -> Result<(), Error> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("unit"),
        std::process::id()
    ));
    let result = (|| -> io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
        let mut file = options.open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        failed(format!("cannot write {}: {e}", path.display()))
    })
}

fn failed(message: String) -> Error {
    Error::new(ErrorKind::Failed, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Service {
        let mut s = Service::new("web app", "/opt/my app/bin/ward", Scope::System)
            .description("ward: 100% up")
            .args([
                "service-run",
                "--config",
                "/etc/my \"ward\"/ward.toml",
                "$HOME",
                "a\\b",
            ])
            .notify(true);
        s.name = "web-app".into();
        s.watchdog = Some(Duration::from_secs(30));
        s.stop_timeout = Some(Duration::from_millis(12_500));
        s.kill_mode = KillMode::Mixed;
        s.delegate = true;
        s.dirs = Some("ward/web-app".into());
        s.reload = Some(vec!["/opt/my app/bin/ward".into(), "reload".into()]);
        s.env = vec![("A".into(), "x y %h".into())];
        s.properties = vec![("Ward-Config".into(), "/etc/my \"ward\"/ward.toml".into())];
        s.generator = "ward install".into();
        s
    }

    #[test]
    fn a_unit_says_everything_once_and_quotes_every_word() {
        let text = render(&sample());
        let expect = r#"# Written by ward install; a change here is lost when it writes the file again
# (use `systemctl edit web-app` for changes of your own).
# fingerprint FP

[Unit]
Description=ward: 100%% up
Wants=network-online.target
After=network-online.target
X-Ward-Config=/etc/my "ward"/ward.toml

[Service]
Type=notify
NotifyAccess=main
WatchdogSec=30s
ExecStart="/opt/my app/bin/ward" "service-run" "--config" "/etc/my \"ward\"/ward.toml" "$$HOME" "a\\b"
ExecReload="/opt/my app/bin/ward" "reload"
Restart=on-failure
RestartSec=1s
KillMode=mixed
TimeoutStopSec=12500ms
Delegate=yes
StateDirectory=ward/web-app
StateDirectoryMode=0700
LogsDirectory=ward/web-app
RuntimeDirectory=ward/web-app
Environment="A=x y %%h"

[Install]
WantedBy=multi-user.target
"#;
        let fp = text
            .lines()
            .nth(2)
            .unwrap()
            .strip_prefix("# fingerprint ")
            .unwrap();
        assert_eq!(text, expect.replace("FP", fp));
    }

    #[test]
    fn a_unit_reads_back_as_ours_until_edited() {
        let service = sample();
        let text = render(&service);
        let path = Path::new("/x/web-app.service");
        let unit = parse(path, &text, "ward install");
        assert!(unit.ours && !unit.edited);
        assert_eq!(
            unit.properties,
            vec![(
                "Ward-Config".to_string(),
                "/etc/my \"ward\"/ward.toml".to_string()
            )]
        );
        let mut words = vec![service.program.to_string_lossy().into_owned()];
        words.extend(service.args.clone());
        assert_eq!(unit.exec_start, words);
        let edited = parse(
            path,
            &text.replace("RestartSec=1s", "RestartSec=5s"),
            "ward install",
        );
        assert!(edited.ours && edited.edited);
        let foreign = parse(path, "[Service]\nExecStart=/bin/true\n", "ward install");
        assert!(!foreign.ours);
        assert!(check_replaceable(&foreign, "ward install").is_err());
        assert!(check_replaceable(&edited, "ward install")
            .unwrap_err()
            .message
            .contains("edited by hand"));
        assert!(check_replaceable(&unit, "ward install").is_ok());
    }

    #[test]
    fn command_lines_round_trip() {
        let words: Vec<String> = ["/bin/x", "a b", "q\"uote", "back\\slash", "%i", "$X", ""]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(parse_command_line(&command_line(&words)), words);
        assert_eq!(
            parse_command_line("/bin/x  plain 'single q'"),
            ["/bin/x", "plain", "single q"]
        );
    }

    #[test]
    fn a_user_unit_goes_under_the_config_home() {
        let s = Service::new("app", "/bin/app", Scope::User);
        let text = render(&s);
        assert!(text.contains("WantedBy=default.target"));
        assert!(!text.contains("network-online"));
        assert!(text.contains("Type=exec"));
    }
}
