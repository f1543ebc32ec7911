//! `ward install`, `ward uninstall` and `ward service-run` (what the
//! installed unit runs): ward as a service of the system's service manager.
//! The unit itself, and talking to systemd or launchd, is `ward-service`'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ward_service::{KillMode, Restart, Scope, Service};

use super::{absolute, Failure, Locations, Outcome, EXIT_USAGE};
use crate::service::{self, CONFIG, GENERATED, GENERATOR};

/// `ward install`'s options.
#[derive(clap::Args, Debug)]
pub struct InstallArgs {
    /// For the whole system: started at boot, as root (the default as
    /// root).
    #[arg(long, conflicts_with = "user")]
    pub system: bool,
    /// For your user: started by your user's service manager, at login (or
    /// at boot, with `loginctl enable-linger`). The default for everyone
    /// but root.
    #[arg(long)]
    pub user: bool,
    /// The service's name (default: `ward`): several can be installed side
    /// by side, each with its own config, state and socket.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Install and enable, but do not start now (it starts at boot).
    #[arg(long)]
    pub no_start: bool,
    /// Replace a unit ward did not write, or one edited by hand since.
    #[arg(long)]
    pub force: bool,
    /// Print the unit (and, with a COMMAND, the config) that would be
    /// written; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// systemd restarts ward when its supervision loop has not answered
    /// for this long (`0s`: no watchdog). launchd and the Windows Service
    /// Control Manager have no watchdog: there it changes nothing.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = crate::duration_arg)]
    pub watchdog: Duration,
    /// Windows: the account the service runs as: LocalService,
    /// NetworkService, LocalSystem (the default), or DOMAIN\\user (its
    /// password from the environment variable WARD_ACCOUNT_PASSWORD).
    #[arg(long, value_name = "ACCOUNT")]
    pub account: Option<String>,
    /// Windows: start a little after the other automatic services at boot
    /// (delayed automatic start).
    #[arg(long)]
    pub delayed_start: bool,
    /// With a COMMAND: its restart policy (`always`, `on-failure`,
    /// `never`; default `always`).
    #[arg(long, value_name = "POLICY", requires = "command")]
    pub restart: Option<String>,
    /// With a COMMAND: the user it runs as.
    #[arg(long, value_name = "USER", requires = "command")]
    pub run_as: Option<String>,
    /// With a COMMAND: an environment variable for it (again for more).
    #[arg(long = "env", value_name = "KEY=VALUE", requires = "command")]
    pub env: Vec<String>,
    /// With a COMMAND: the folder it runs in (default: the current one).
    #[arg(long, value_name = "DIR", requires = "command")]
    pub cwd: Option<PathBuf>,
    /// With a COMMAND: where its log files go (default: the service's logs
    /// folder).
    #[arg(long, value_name = "DIR", requires = "command")]
    pub log_dir: Option<PathBuf>,
    /// One program to keep running, without a config of yours: ward writes
    /// one for it (`ward install --name app -- /opt/app/server --port 80`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `ward uninstall`'s options.
#[derive(clap::Args, Debug)]
pub struct UninstallArgs {
    /// The service's name (default: the only one installed).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Remove a unit of that name that ward did not write, or one edited by
    /// hand.
    #[arg(long)]
    pub force: bool,
    /// Remove the service's log files too (kept by default).
    #[arg(long)]
    pub remove_logs: bool,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: EXIT_USAGE,
        ..Failure::new(message)
    }
}

fn failed(e: ward_service::Error) -> Failure {
    if e.kind == ward_service::ErrorKind::NoManager {
        return Failure::new(format!(
            "{}; in a container, make `ward up --config FILE` its entrypoint (ward runs \
             as PID 1 there), or install for your user (--user) where a user manager runs",
            e.message
        ));
    }
    let mut failure = Failure::new(e.message);
    if matches!(
        e.kind,
        ward_service::ErrorKind::Invalid | ward_service::ErrorKind::Exists
    ) {
        failure.code = EXIT_USAGE;
    }
    failure
}

/// `ward install`.
pub fn install(loc: &Locations, config_given: bool, args: &InstallArgs) -> Outcome {
    let scope = match (args.system, args.user) {
        (true, _) => Scope::System,
        (_, true) => Scope::User,
        _ => Scope::default_for_this_user(),
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| service::DEFAULT_NAME.into());
    ward_service::check_name(&name).map_err(failed)?;
    let places = service::places(&name, scope).map_err(Failure::new)?;
    let exe = std::env::current_exe()
        .and_then(|p| crate::files::canonical(&p))
        .map_err(|e| Failure::new(format!("cannot tell where this ward binary is: {e}")))?;

    // The config: the user's, or one ward writes for a single command.
    let generated = !args.command.is_empty();
    if generated && config_given {
        return Err(usage(
            "give either --config FILE or a COMMAND after --, not both",
        ));
    }
    let (config_path, config_text) = if generated {
        let path = generated_config_path(&name, scope)?;
        (path, Some(wrapper_config(&name, args)?))
    } else {
        if !loc.config.is_file() {
            return Err(usage(format!(
                "{} does not exist: pass --config FILE, or a COMMAND after -- to install one \
                 program without a config",
                loc.config.display()
            )));
        }
        let path = crate::files::canonical(&loc.config)
            .map_err(|e| Failure::new(format!("cannot resolve {}: {e}", loc.config.display())))?;
        (path, None)
    };
    if args.dry_run {
        if let Some(text) = &config_text {
            println!("# {}", config_path.display());
            print!("{text}");
            println!();
        }
    }
    // A generated config is checked before anything is written, as the
    // text it will be at its place.
    let host = crate::host::LocalHost {
        verify_commands: true,
        places: Some(places.clone()),
    };
    let loaded = match &config_text {
        Some(text) => ward_config::parse_with(&config_path, text, &host),
        None => ward_config::load_with(&config_path, &host),
    };
    let config = loaded.map_err(|diags| {
        let mut failure = Failure::new(format!(
            "{} has {} error{}; nothing was installed",
            config_path.display(),
            diags.items.len(),
            if diags.items.len() == 1 { "" } else { "s" }
        ));
        failure.details = diags.items.iter().map(|d| d.to_string()).collect();
        failure
    })?;

    let mut args_run = vec![
        "service-run".to_string(),
        "--name".into(),
        name.clone(),
        "--config".into(),
        config_path.to_string_lossy().into_owned(),
    ];
    if scope == Scope::User {
        args_run.push("--user".into());
    }
    let exe_text = exe.to_string_lossy().into_owned();
    let mut unit = Service::new(&name, &exe, scope)
        .description(&format!(
            "ward: keeps the programs of {} running",
            config_path.display()
        ))
        .args(args_run)
        .notify(true);
    unit.watchdog = (!args.watchdog.is_zero()).then_some(args.watchdog);
    unit.reload = Some(vec![
        exe_text,
        "--service".into(),
        name.clone(),
        "reload".into(),
    ]);
    unit.stop_timeout = Some(stop_budget(&config.specs));
    unit.restart = Restart::OnFailure;
    unit.kill_mode = KillMode::Mixed;
    unit.delegate = true;
    unit.dirs = Some(service::base(&name));
    unit.log_file = places.logs_dir.as_ref().map(|d| d.join("ward.out"));
    unit.properties = vec![(CONFIG.into(), config_path.to_string_lossy().into_owned())];
    if generated {
        unit.properties.push((GENERATED.into(), "yes".into()));
    }
    unit.generator = GENERATOR.into();
    unit.account = args.account.clone();
    unit.password = args
        .account
        .as_ref()
        .and_then(|_| std::env::var("WARD_ACCOUNT_PASSWORD").ok());
    unit.delayed_start = args.delayed_start;
    unit.validate().map_err(failed)?;
    // A system service runs this binary and reads this config as root at
    // every boot: whoever could change either would be root.
    if scope == Scope::System && ward_service::is_root() && !args.force {
        // (A config ward writes goes into a folder it checks as it writes.)
        let own = (!generated).then_some(&config_path);
        for path in std::iter::once(&exe).chain(own) {
            if let Err(why) = crate::files::only_root_can_change(path) {
                return Err(Failure::new(format!(
                    "{why}: a system service runs {} with full rights at every boot, so \
                     whoever can change it could act as root (an administrator); install from \
                     a place only they can change (e.g. /usr/local/bin and /etc/ward, or \
                     C:\\Program Files and C:\\ProgramData), or --force",
                    path.display()
                )));
            }
        }
    }

    if args.dry_run {
        print!("{}", ward_service::render(&unit));
        return Ok(());
    }
    // A config ward writes now is taken back if installing fails: the
    // one it replaced is put back, a new one goes.
    let before: Option<Option<Vec<u8>>> = match &config_text {
        Some(text) => {
            let (dir, file) = generated_dir(&config_path, &places.state_dir)?;
            let old = dir.read(&file, ward_config::MAX_FILE_SIZE).ok();
            write_generated_config(&config_path, &places.state_dir, text, args.force)?;
            Some(old)
        }
        None => None,
    };
    let options = ward_service::InstallOptions {
        start: !args.no_start,
        force: args.force,
    };
    let installed = match ward_service::install(&unit, &options) {
        Ok(installed) => installed,
        Err(e) => {
            if let (Some(old), Ok((dir, file))) =
                (before, generated_dir(&config_path, &places.state_dir))
            {
                let _ = match old {
                    Some(text) => dir.replace(&file, &text, 0o644, true),
                    None => dir.remove(&file),
                };
            }
            return Err(failed(e));
        }
    };
    println!(
        "{} ward service {name:?}: {}",
        if installed.replaced {
            "replaced the"
        } else {
            "installed the"
        },
        installed.file.display()
    );
    println!("  config: {}", config_path.display());
    println!(
        "  state:  {}   logs: {}",
        config.ward.state_dir.display(),
        config.ward.logs.dir.display()
    );
    if installed.started {
        if let Ok(status) = ward_service::status(&name, scope) {
            println!(
                "  {}{}",
                status.state,
                status.text.map(|t| format!(": {t}")).unwrap_or_default()
            );
        }
    } else {
        println!(
            "  not started now (--no-start); it starts at boot, or with `{}`",
            ward_service::start_command(&name, scope)
        );
    }
    let pick = if name == service::DEFAULT_NAME {
        String::new()
    } else {
        format!(" (--service {name} when there are several)")
    };
    println!(
        "  `ward status` from any folder talks to it{pick}; `ward uninstall{}` removes it",
        if name == service::DEFAULT_NAME {
            String::new()
        } else {
            format!(" --name {name}")
        }
    );
    Ok(())
}

/// How long a stop of everything may take: ward stops programs in reverse
/// dependency order, each level within its `stop_timeout`, so the longest
/// chain of stop timeouts, plus time to kill what is left and write the
/// last state.
fn stop_budget(specs: &ward_core::SpecSet) -> Duration {
    fn chain(
        name: &str,
        specs: &ward_core::SpecSet,
        memo: &mut BTreeMap<String, Duration>,
        depth: usize,
    ) -> Duration {
        if let Some(d) = memo.get(name) {
            return *d;
        }
        let Some(spec) = specs.get(name) else {
            return Duration::ZERO;
        };
        // The config has no cycles (ward-config refuses them); the depth
        // bound only keeps a bug from recursing for ever.
        let below = if depth > specs.programs.len() {
            Duration::ZERO
        } else {
            spec.depends_on
                .keys()
                .map(|dep| chain(dep, specs, memo, depth + 1))
                .max()
                .unwrap_or_default()
        };
        let total = spec.stop_timeout + below;
        memo.insert(name.to_string(), total);
        total
    }
    let mut memo = BTreeMap::new();
    let longest = specs
        .programs
        .keys()
        .map(|name| chain(name, specs, &mut memo, 0))
        .max()
        .unwrap_or_default();
    (longest + Duration::from_secs(15)).max(Duration::from_secs(30))
}

/// Where `ward install NAME -- COMMAND` keeps the config it writes:
/// `/etc/ward/NAME.toml`, `~/.config/ward/NAME.toml` for a user, or
/// `%ProgramData%\ward\NAME\NAME.toml` on Windows.
fn generated_config_path(name: &str, scope: Scope) -> Result<PathBuf, Failure> {
    ward_service::config_file(&service::base(name), scope).map_err(failed)
}

/// The first line of a config `ward install` writes: it replaces and
/// removes only files that start so.
const GENERATED_HEADER: &str = "# Written by `ward install`";

/// The config of the one-program wrapper.
fn wrapper_config(name: &str, args: &InstallArgs) -> Result<String, Failure> {
    let mut text = format!(
        "{GENERATED_HEADER} for the service {name:?}; `ward install --force` writes it again.\n\n[program.{}]\n",
        toml_key(name)
    );
    let command: Vec<String> = args.command.iter().map(|w| toml_string(w)).collect();
    text.push_str(&format!("command = [{}]\n", command.join(", ")));
    text.push_str(&format!(
        "restart = {}\n",
        toml_string(args.restart.as_deref().unwrap_or("always"))
    ));
    let cwd = match &args.cwd {
        Some(dir) => absolute(dir),
        None => std::env::current_dir()
            .map_err(|e| Failure::new(format!("cannot tell the current folder: {e}")))?,
    };
    text.push_str(&format!("cwd = {}\n", toml_string(&cwd.to_string_lossy())));
    if let Some(user) = &args.run_as {
        text.push_str(&format!("user = {}\n", toml_string(user)));
    }
    if !args.env.is_empty() {
        let mut pairs = Vec::new();
        for pair in &args.env {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(usage(format!("--env {pair:?} is not KEY=VALUE")));
            };
            pairs.push(format!("{} = {}", toml_key(key), toml_string(value)));
        }
        text.push_str(&format!("env = {{ {} }}\n", pairs.join(", ")));
    }
    if let Some(dir) = &args.log_dir {
        text.push_str(&format!(
            "logs = {{ dir = {} }}\n",
            toml_string(&absolute(dir).to_string_lossy())
        ));
    }
    Ok(text)
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML key: bare when it can be, quoted otherwise.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_string()
    } else {
        toml_string(key)
    }
}

/// The folder of a generated config, opened safely (made if missing; not
/// a link; not writable by others), and the file's name in it. Where that
/// folder is the service's state folder (on Windows), it is ward's own
/// and opened as such: given ward's mode (access list) back, since the
/// service may have given it to its account.
fn generated_dir(path: &Path, state_dir: &Path) -> Result<(crate::files::Dir, String), Failure> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Err(Failure::new(format!(
            "{} cannot hold a config",
            path.display()
        )));
    };
    let policy = if dir == state_dir {
        crate::files::DirPolicy::private()
    } else {
        crate::files::DirPolicy {
            mode: 0o755,
            enforce_mode: false,
            group: None,
            allow_writable: false,
        }
    };
    let dir = crate::files::Dir::open(dir, policy).map_err(|e| Failure::new(e.to_string()))?;
    Ok((dir, name.to_string()))
}

/// Whether the file at `path` is a config `ward install` wrote (read as a
/// regular file, bounded, never through a link).
fn is_generated(path: &Path, state_dir: &Path) -> bool {
    let Ok((dir, name)) = generated_dir(path, state_dir) else {
        return false;
    };
    dir.read(&name, ward_config::MAX_FILE_SIZE)
        .is_ok_and(|text| text.starts_with(GENERATED_HEADER.as_bytes()))
}

/// Writes the wrapper's config, never over a file ward did not write and
/// never through a link.
fn write_generated_config(path: &Path, state_dir: &Path, text: &str, force: bool) -> Outcome {
    let (dir, name) = generated_dir(path, state_dir)?;
    match dir.read(&name, ward_config::MAX_FILE_SIZE) {
        Ok(existing) if !existing.starts_with(GENERATED_HEADER.as_bytes()) && !force => {
            return Err(usage(format!(
                "{} exists and was not written by `ward install`: pass --config {0} to install \
                 it as it is, or --force to replace it",
                path.display()
            )));
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound && !force => {
            return Err(usage(format!("{} is in the way: {e}", path.display())));
        }
        _ => {}
    }
    dir.replace(&name, text.as_bytes(), 0o644, true)
        .map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))
}

/// `ward uninstall`.
pub fn uninstall(args: &UninstallArgs) -> Outcome {
    let target = match &args.name {
        // A unit of that name ward did not write: only with --force, and
        // only the unit goes (ward knows nothing else of it).
        Some(name) if args.force && service::find(name).is_err() => {
            let mut last = None;
            for scope in service::scopes() {
                match ward_service::uninstall(name, scope, GENERATOR, true) {
                    Ok(file) => {
                        println!("removed the service {name:?}: {}", file.display());
                        return Ok(());
                    }
                    Err(e) if e.kind == ward_service::ErrorKind::NotInstalled => last = Some(e),
                    Err(e) => return Err(failed(e)),
                }
            }
            return Err(last.map_or_else(|| usage("no such service"), failed));
        }
        Some(name) => service::find(name).map_err(usage)?,
        None => {
            let mut all = service::installed();
            match all.len() {
                1 => all.remove(0),
                0 => return Err(usage("no ward service is installed")),
                _ => {
                    return Err(usage(format!(
                        "several ward services are installed ({}): say which with --name NAME",
                        service::listing(&all)
                    )))
                }
            }
        }
    };
    let places = target.places().map_err(Failure::new)?;
    // Where its files are, as the service used them (its config may have
    // put them elsewhere than the service's places; those stay).
    let host = crate::host::Places(Some(places.clone()));
    let config = ward_config::load_with(&target.config, &host).ok();
    let file = ward_service::uninstall(&target.name, target.scope, GENERATOR, args.force)
        .map_err(failed)?;
    println!(
        "removed the ward service {:?}: {}",
        target.name,
        file.display()
    );
    let mut kept = Vec::new();
    // The config ward wrote goes first: it may live in the state folder
    // (on Windows), which goes next.
    if !target.generated {
        kept.push(format!(
            "its config is yours and stays: {}",
            target.config.display()
        ));
    } else if is_generated(&target.config, &places.state_dir)
        && generated_dir(&target.config, &places.state_dir)
            .is_ok_and(|(dir, name)| dir.remove(&name).is_ok())
    {
        println!(
            "  removed the config ward wrote for it: {}",
            target.config.display()
        );
    } else {
        kept.push(format!("its config is kept: {}", target.config.display()));
    }
    // Logs that are kept stay even where they live inside the state
    // folder (on Windows): the rest of that folder goes.
    let keep_logs = places.logs_dir.as_ref().filter(|_| !args.remove_logs);
    let runtime = places
        .socket
        .as_ref()
        .and_then(|s| s.parent().map(Path::to_path_buf))
        .filter(|r| *r != places.state_dir);
    for (dir, what) in [
        (Some(places.state_dir.clone()), "state"),
        (runtime, "runtime"),
    ] {
        if let Some(dir) = dir {
            remove_dir(&dir, what, keep_logs.map(PathBuf::as_path));
        }
    }
    if let Some(logs) = &places.logs_dir {
        if args.remove_logs {
            remove_dir(logs, "logs", None);
        } else if logs.exists() {
            kept.push(format!(
                "its logs are kept in {} (--remove-logs removes them)",
                logs.display()
            ));
        }
    }
    if let Some(config) = &config {
        if config.ward.state_dir != places.state_dir && config.ward.state_dir.exists() {
            kept.push(format!(
                "the state dir its config names is kept: {}",
                config.ward.state_dir.display()
            ));
        }
    }
    for line in kept {
        println!("  {line}");
    }
    Ok(())
}

/// Removes `dir` and all in it, but `keep` when that is inside it (then
/// `dir` stays, holding only `keep`).
fn remove_dir(dir: &Path, what: &str, keep: Option<&Path>) {
    let removed = match keep.filter(|k| k.parent() == Some(dir)) {
        None => std::fs::remove_dir_all(dir),
        Some(keep) => std::fs::read_dir(dir).and_then(|entries| {
            for entry in entries.flatten() {
                let path = entry.path();
                if path == keep {
                    continue;
                }
                let gone = match entry.file_type() {
                    Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
                    _ => std::fs::remove_file(&path),
                };
                gone?;
            }
            Ok(())
        }),
    };
    match removed {
        Ok(()) => println!("  removed its {what} folder {}", dir.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => println!(
            "  could not remove its {what} folder {}: {e}",
            dir.display()
        ),
    }
}

/// `ward service-run --name NAME [--user]`: the daemon as the installed
/// unit runs it. Its files go to the service's places unless the config
/// says otherwise; it tells the service manager how it goes (sd_notify),
/// and speaks on stderr (the journal).
pub fn run(config: Option<PathBuf>, name: &str, user: bool) -> Outcome {
    let scope = if user { Scope::User } else { Scope::System };
    ward_service::check_name(name).map_err(failed)?;
    let Some(config) = config else {
        return Err(usage(
            "service-run needs --config FILE (the installed unit passes it)",
        ));
    };
    let places = service::places(name, scope).map_err(Failure::new)?;
    let mut loc = Locations {
        config: absolute(&config),
        socket: PathBuf::new(),
        searched: Vec::new(),
        verify_commands: true,
        service: None,
        places: Some(places),
    };
    loc.socket =
        ward_config::socket_path_with(&loc.config, &crate::host::Places(loc.places.clone()));
    // Before the service manager's connection is made (sd_notify's socket).
    super::up::close_inherited()?;
    // Under the Windows SCM, the daemon runs on the dispatcher's thread
    // and stops on its Stop; elsewhere this runs it as it is (ward answers
    // its own signals either way).
    ward_service::run_leaving_signals(move |manager| {
        let notifier = std::sync::Arc::new(manager.notifier);
        let hooks_notifier = std::sync::Arc::clone(&notifier);
        let (stop, reloads) = (manager.shutdown, manager.reloads);
        let outcome = super::up::run_daemon(&loc, false, crate::daemon::Mode::Service, move || {
            crate::hooks::for_service(hooks_notifier, stop, reloads)
        });
        match &outcome {
            Ok(()) => notifier.event(ward_service::Level::Info, "ward stopped"),
            Err(failure) => {
                let mut text = failure.message.clone();
                for line in &failure.details {
                    text.push_str("\n  ");
                    text.push_str(line);
                }
                notifier.event(ward_service::Level::Error, &text);
                notifier.exit_code(failure.code.max(1) as u32);
            }
        }
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(text: &str) -> ward_core::SpecSet {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ward.toml");
        std::fs::write(&path, text).unwrap();
        ward_config::load(&path).unwrap().specs
    }

    #[test]
    fn the_stop_budget_covers_the_longest_chain_of_stop_timeouts() {
        let s = specs(
            r#"
[program.db]
command = ["x"]
stop_timeout = "20s"
[program.api]
command = ["x"]
stop_timeout = "10s"
depends_on = ["db"]
[program.web]
command = ["x"]
stop_timeout = "5s"
depends_on = ["api"]
[program.cron]
command = ["x"]
stop_timeout = "30s"
"#,
        );
        // web → api → db: 35s, more than cron's 30s; plus 15s.
        assert_eq!(stop_budget(&s), Duration::from_secs(50));
        assert_eq!(
            stop_budget(&specs(
                "[program.a]\ncommand = [\"x\"]\nstop_timeout = \"1s\"\n"
            )),
            Duration::from_secs(30),
            "never below 30s"
        );
    }

    #[test]
    fn the_wrapper_config_quotes_what_it_is_given() {
        // An absolute folder on this system (`Z:\srv\my app` on Windows).
        let cwd = std::path::absolute("/srv/my app").unwrap();
        let args = InstallArgs {
            system: false,
            user: false,
            name: None,
            no_start: false,
            force: false,
            dry_run: false,
            watchdog: Duration::from_secs(30),
            account: None,
            delayed_start: false,
            restart: Some("on-failure".into()),
            run_as: Some("www-data".into()),
            env: vec!["PORT=80".into(), "GREETING=say \"hi\"\\n".into()],
            cwd: Some(cwd.clone()),
            log_dir: None,
            command: vec!["/opt/app/server".into(), "--name".into(), "a \"b\"".into()],
        };
        let text = wrapper_config("app", &args).unwrap();
        let cwd_text = cwd.to_str().unwrap().replace('\\', "\\\\");
        assert_eq!(
            text,
            format!(
                "# Written by `ward install` for the service \"app\"; `ward install --force` writes it again.\n\n\
                 [program.app]\n\
                 command = [\"/opt/app/server\", \"--name\", \"a \\\"b\\\"\"]\n\
                 restart = \"on-failure\"\n\
                 cwd = \"{cwd_text}\"\n\
                 user = \"www-data\"\n\
                 env = {{ PORT = \"80\", GREETING = \"say \\\"hi\\\"\\\\n\" }}\n"
            )
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.toml");
        std::fs::write(&path, &text).unwrap();
        let config = ward_config::load(&path).expect("the generated config is valid");
        let app = config.specs.get("app").unwrap();
        assert_eq!(app.launch.argv, ["/opt/app/server", "--name", "a \"b\""]);
        assert_eq!(app.launch.cwd, cwd);
        assert_eq!(
            app.launch.env,
            [
                ("PORT".to_string(), "80".to_string()),
                ("GREETING".to_string(), "say \"hi\"\\n".to_string())
            ]
        );
    }
}
