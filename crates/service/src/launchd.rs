//! launchd (macOS): the property list for a [`Service`] (a LaunchDaemon
//! for the system, a LaunchAgent for a user), and loading it with
//! `launchctl bootstrap` / `bootout`.
//!
//! The list carries who wrote it and a fingerprint of the rest in a
//! comment, as the systemd unit does, so that only an unedited file of
//! this installer's is replaced or removed.

use std::path::{Path, PathBuf};

use crate::{fingerprint, Error, ErrorKind, Restart, Scope, Service};

/// The property list's text.
pub fn render(service: &Service) -> String {
    let body = render_body(service);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \
         \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <!-- Written by {}; a change here is lost when it writes the file again. -->\n\
         <!-- fingerprint {} -->\n{body}",
        escape(&service.generator).replace("--", "- -"),
        fingerprint(&body)
    )
}

fn render_body(s: &Service) -> String {
    let mut p = String::from("<plist version=\"1.0\">\n<dict>\n");
    let key = |p: &mut String, k: &str| {
        p.push_str(&format!("\t<key>{}</key>\n", escape(k)));
    };
    let string = |p: &mut String, indent: &str, v: &str| {
        p.push_str(&format!("{indent}<string>{}</string>\n", escape(v)));
    };
    key(&mut p, "Label");
    string(&mut p, "\t", &s.name);
    key(&mut p, "ProgramArguments");
    p.push_str("\t<array>\n");
    string(&mut p, "\t\t", &s.program.to_string_lossy());
    for arg in &s.args {
        string(&mut p, "\t\t", arg);
    }
    p.push_str("\t</array>\n");
    key(&mut p, "RunAtLoad");
    p.push_str("\t<true/>\n");
    key(&mut p, "KeepAlive");
    match s.restart {
        Restart::Always => p.push_str("\t<true/>\n"),
        Restart::OnFailure => {
            p.push_str("\t<dict>\n\t\t<key>SuccessfulExit</key>\n\t\t<false/>\n\t</dict>\n")
        }
        Restart::Never => p.push_str("\t<false/>\n"),
    }
    if let Some(timeout) = s.stop_timeout {
        key(&mut p, "ExitTimeOut");
        // Whole seconds, rounded up: never shorter than asked.
        let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
        p.push_str(&format!("\t<integer>{secs}</integer>\n"));
    }
    if let Some(dir) = &s.working_dir {
        key(&mut p, "WorkingDirectory");
        string(&mut p, "\t", &dir.to_string_lossy());
    }
    if let Some(log) = &s.log_file {
        for k in ["StandardOutPath", "StandardErrorPath"] {
            key(&mut p, k);
            string(&mut p, "\t", &log.to_string_lossy());
        }
    }
    if !s.env.is_empty() {
        key(&mut p, "EnvironmentVariables");
        p.push_str("\t<dict>\n");
        for (k, v) in &s.env {
            p.push_str(&format!("\t\t<key>{}</key>\n", escape(k)));
            string(&mut p, "\t\t", v);
        }
        p.push_str("\t</dict>\n");
    }
    if !s.properties.is_empty() {
        // launchd ignores keys it does not know; the installer reads these.
        key(&mut p, PROPERTIES);
        p.push_str("\t<dict>\n");
        for (k, v) in &s.properties {
            p.push_str(&format!("\t\t<key>{}</key>\n", escape(k)));
            string(&mut p, "\t\t", v);
        }
        p.push_str("\t</dict>\n");
    }
    p.push_str("</dict>\n</plist>\n");
    p
}

/// The key of the installer's own facts in the list.
pub const PROPERTIES: &str = "XServiceProperties";

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Where the list of `name` goes: `/Library/LaunchDaemons/` for the
/// system, `~/Library/LaunchAgents/` for a user.
pub fn plist_path(name: &str, scope: Scope) -> Result<PathBuf, Error> {
    let dir = match scope {
        Scope::System => PathBuf::from("/Library/LaunchDaemons"),
        Scope::User => crate::home()?.join("Library/LaunchAgents"),
    };
    Ok(dir.join(format!("{name}.plist")))
}

/// Whether the file at `path` (its text) is this generator's, and edited.
pub fn ownership(text: &str, generator: &str) -> (bool, bool) {
    let marker = format!(
        "<!-- Written by {};",
        escape(generator).replace("--", "- -")
    );
    let mut lines = text.splitn(5, '\n');
    let (_xml, _doctype) = (lines.next(), lines.next());
    let written = lines.next().unwrap_or_default();
    let noted = lines.next().unwrap_or_default();
    let body = lines.next().unwrap_or_default();
    let ours = written.starts_with(&marker);
    let edited = ours
        && noted
            .strip_prefix("<!-- fingerprint ")
            .and_then(|n| n.strip_suffix(" -->"))
            .is_none_or(|n| n != fingerprint(body));
    (ours, edited)
}

#[cfg(target_os = "macos")]
pub(crate) fn install(
    service: &Service,
    options: &crate::InstallOptions,
) -> Result<crate::Installed, Error> {
    use std::process::Command;
    let scope = service.scope;
    if scope == Scope::System && !crate::is_root() {
        return Err(Error::new(
            ErrorKind::NotPermitted,
            "installing a system service needs root (sudo), or install it for your user (--user)",
        ));
    }
    let path = plist_path(&service.name, scope)?;
    let previous = std::fs::read_to_string(&path).ok();
    if let Some(text) = &previous {
        let (ours, edited) = ownership(text, &service.generator);
        if !options.force && (!ours || edited) {
            return Err(Error::new(
                ErrorKind::Exists,
                format!(
                    "{} exists and {}: use another name, or replace it with --force",
                    path.display(),
                    if ours {
                        "was edited by hand"
                    } else {
                        "was not written by this installer"
                    }
                ),
            ));
        }
        let _ = Command::new("launchctl")
            .args(["bootout", &format!("{}/{}", domain(scope), service.name)])
            .output();
    }
    // launchd opens the log file for the job: its folder must exist.
    let folders = [
        path.parent(),
        service.log_file.as_deref().and_then(Path::parent),
    ];
    for dir in folders.into_iter().flatten() {
        std::fs::create_dir_all(dir)
            .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
    }
    // Written whole, mode 0644, never through a link (launchd refuses a
    // daemon's list that others can write).
    crate::systemd::write_atomically(&path, &render(service))?;
    if options.start {
        let out = Command::new("launchctl")
            .args(["bootstrap", &domain(scope), &path.to_string_lossy()])
            .output()
            .map_err(|e| failed(format!("cannot run launchctl: {e}")))?;
        if !out.status.success() {
            match &previous {
                // The job it replaced is loaded again, as it was.
                Some(old) => {
                    let _ = crate::systemd::write_atomically(&path, old);
                    let _ = Command::new("launchctl")
                        .args(["bootstrap", &domain(scope), &path.to_string_lossy()])
                        .output();
                }
                None => {
                    let _ = std::fs::remove_file(&path);
                }
            }
            return Err(failed(format!(
                "launchctl bootstrap failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    Ok(crate::Installed {
        file: path,
        replaced: previous.is_some(),
        started: options.start,
    })
}

#[cfg(target_os = "macos")]
pub(crate) fn uninstall(
    name: &str,
    scope: Scope,
    generator: &str,
    force: bool,
) -> Result<PathBuf, Error> {
    let path = plist_path(name, scope)?;
    let text = std::fs::read_to_string(&path).map_err(|_| {
        Error::new(
            ErrorKind::NotInstalled,
            format!(
                "there is no service {name:?} ({} does not exist)",
                path.display()
            ),
        )
    })?;
    if !ownership(&text, generator).0 && !force {
        return Err(Error::new(
            ErrorKind::Exists,
            format!(
                "{} was not written by {generator}: it is not removed (--force removes it)",
                path.display()
            ),
        ));
    }
    let _ = std::process::Command::new("launchctl")
        .args(["bootout", &format!("{}/{name}", domain(scope))])
        .output();
    std::fs::remove_file(&path)
        .map_err(|e| failed(format!("cannot remove {}: {e}", path.display())))?;
    Ok(path)
}

#[cfg(target_os = "macos")]
pub(crate) fn status(name: &str, scope: Scope) -> Result<crate::Status, Error> {
    let out = std::process::Command::new("launchctl")
        .args(["print", &format!("{}/{name}", domain(scope))])
        .output()
        .map_err(|e| failed(format!("cannot run launchctl: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let pid = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("pid = "))
        .and_then(|p| p.trim().parse().ok());
    Ok(crate::Status {
        state: if pid.is_some() {
            "running"
        } else {
            "not running"
        }
        .into(),
        text: None,
        pid,
        enabled: out.status.success(),
        restart_delays: Vec::new(),
    })
}

/// `system`, or `gui/<uid>` for the user's agents.
#[cfg(target_os = "macos")]
fn domain(scope: Scope) -> String {
    match scope {
        Scope::System => "system".into(),
        Scope::User => format!("gui/{}", rustix::process::getuid().as_raw()),
    }
}

#[cfg(target_os = "macos")]
fn failed(message: String) -> Error {
    Error::new(ErrorKind::Failed, message)
}

/// An installed property list, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFile {
    /// Written by this generator.
    pub ours: bool,
    /// Its [`PROPERTIES`].
    pub properties: Vec<(String, String)>,
}

/// Reads an installed list back; `None` when there is none.
pub fn read(name: &str, scope: Scope, generator: &str) -> Result<Option<ListFile>, Error> {
    let path = plist_path(name, scope)?;
    read_file(&path, generator)
}

fn read_file(path: &Path, generator: &str) -> Result<Option<ListFile>, Error> {
    // A list is small and a regular file: anything else is nobody's.
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.is_file() || meta.len() > 1 << 20 => {
            return Ok(Some(ListFile {
                ours: false,
                properties: Vec::new(),
            }))
        }
        _ => {}
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::new(
                ErrorKind::Failed,
                format!("cannot read {}: {e}", path.display()),
            ))
        }
    };
    let (ours, _) = ownership(&text, generator);
    Ok(Some(ListFile {
        ours,
        properties: properties_of(&text),
    }))
}

/// Every list of `scope` this generator wrote, by label.
pub fn list(scope: Scope, generator: &str) -> Vec<(String, ListFile)> {
    let Some(dir) = plist_path("x", scope)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    else {
        return Vec::new();
    };
    crate::scan(&dir, ".plist", |path| {
        read_file(path, generator)
            .ok()
            .flatten()
            .filter(|list| list.ours)
    })
}

/// The string pairs under [`PROPERTIES`] in a list this module wrote.
fn properties_of(text: &str) -> Vec<(String, String)> {
    let Some(start) = text.find(&format!("<key>{PROPERTIES}</key>")) else {
        return Vec::new();
    };
    let rest = &text[start..];
    let Some(end) = rest.find("</dict>") else {
        return Vec::new();
    };
    let mut pairs = Vec::new();
    let mut key = None;
    for line in rest[..end].lines().skip(1) {
        let line = line.trim();
        if let Some(k) = line
            .strip_prefix("<key>")
            .and_then(|l| l.strip_suffix("</key>"))
        {
            key = Some(unescape(k));
        } else if let Some(v) = line
            .strip_prefix("<string>")
            .and_then(|l| l.strip_suffix("</string>"))
        {
            if let Some(k) = key.take() {
                pairs.push((k, unescape(v)));
            }
        }
    }
    pairs
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sample() -> Service {
        let mut s = Service::new("sh.ward.web", "/usr/local/bin/ward", Scope::System).args([
            "service-run",
            "--config",
            "/etc/ward <&> \"x\".toml",
        ]);
        s.stop_timeout = Some(Duration::from_millis(12_500));
        s.log_file = Some("/Library/Logs/ward/web/ward.log".into());
        s.env = vec![("A".into(), "1 & 2".into())];
        s.properties = vec![("Ward-Config".into(), "/etc/ward <&> \"x\".toml".into())];
        s.generator = "ward install".into();
        s
    }

    #[test]
    fn the_list_parses_back_with_what_was_asked() {
        let text = render(&sample());
        let value = plist::Value::from_reader_xml(text.as_bytes()).expect("a valid plist");
        let dict = value.as_dictionary().unwrap();
        assert_eq!(dict["Label"].as_string(), Some("sh.ward.web"));
        let args: Vec<&str> = dict["ProgramArguments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "/usr/local/bin/ward",
                "service-run",
                "--config",
                "/etc/ward <&> \"x\".toml"
            ]
        );
        assert_eq!(dict["RunAtLoad"].as_boolean(), Some(true));
        let keep = dict["KeepAlive"].as_dictionary().unwrap();
        assert_eq!(keep["SuccessfulExit"].as_boolean(), Some(false));
        assert_eq!(
            dict["ExitTimeOut"].as_signed_integer(),
            Some(13),
            "rounded up"
        );
        assert_eq!(
            dict["StandardErrorPath"].as_string(),
            Some("/Library/Logs/ward/web/ward.log")
        );
        let env = dict["EnvironmentVariables"].as_dictionary().unwrap();
        assert_eq!(env["A"].as_string(), Some("1 & 2"));
        let props = dict[PROPERTIES].as_dictionary().unwrap();
        assert_eq!(
            props["Ward-Config"].as_string(),
            Some("/etc/ward <&> \"x\".toml")
        );
    }

    #[test]
    fn the_list_is_the_golden_one() {
        let text = render(&sample());
        let golden = include_str!("../tests/golden/sh.ward.web.plist");
        assert_eq!(
            text, golden,
            "the rendered list differs from tests/golden/sh.ward.web.plist"
        );
    }

    #[test]
    fn ownership_and_properties_read_back() {
        let text = render(&sample());
        assert_eq!(ownership(&text, "ward install"), (true, false));
        assert_eq!(ownership(&text, "someone else"), (false, false));
        let edited = text.replace("<integer>13</integer>", "<integer>99</integer>");
        assert_eq!(ownership(&edited, "ward install"), (true, true));
        assert_eq!(
            properties_of(&text),
            vec![(
                "Ward-Config".to_string(),
                "/etc/ward <&> \"x\".toml".to_string()
            )]
        );
    }

    #[test]
    fn restart_policies_map_to_keep_alive() {
        let mut s = sample();
        s.restart = Restart::Always;
        let v = plist::Value::from_reader_xml(render(&s).as_bytes()).unwrap();
        assert_eq!(
            v.as_dictionary().unwrap()["KeepAlive"].as_boolean(),
            Some(true)
        );
        s.restart = Restart::Never;
        let v = plist::Value::from_reader_xml(render(&s).as_bytes()).unwrap();
        assert_eq!(
            v.as_dictionary().unwrap()["KeepAlive"].as_boolean(),
            Some(false)
        );
    }
}
