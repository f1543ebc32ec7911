//! # ward-service
//!
//! Make a Rust program a native OS service: install it into the service
//! manager (a systemd unit on Linux, a launchd property list on macOS, the
//! Service Control Manager on Windows), and
//! run it the way that manager expects (readiness, a status line, the
//! watchdog, a clean stop on SIGTERM, log lines the journal understands).
//! [ward](https://github.com/ward-sh/ward) uses it for `ward install`; it
//! depends on nothing of ward's.
//!
//! - [`Service`] describes the service; [`install`], [`uninstall`] and
//!   [`status`] act on the system's service manager.
//! - [`run`] gives the program a [`Shutdown`] token that fires on SIGTERM
//!   or Ctrl-C, and a [`Notifier`] (sd_notify on systemd, silent
//!   elsewhere).
//! - [`journal`]: stderr priorities and journald's native protocol.
//!
//! ```no_run
//! use std::time::Duration;
//! use ward_service::{Scope, Service};
//!
//! let service = Service::new("hello", "/usr/local/bin/hello", Scope::System)
//!     .description("Says hello over HTTP")
//!     .args(["--port", "8080"])
//!     .notify(true);
//! ward_service::install(&service, &ward_service::InstallOptions::default())?;
//!
//! // In the program itself:
//! ward_service::run(|ctx| {
//!     // ... bind, start serving ...
//!     ctx.notifier.ready();
//!     while !ctx.shutdown.wait_timeout(Duration::from_secs(1)) {
//!         ctx.notifier.watchdog();
//!     }
//!     ctx.notifier.stopping();
//! });
//! # Ok::<(), ward_service::Error>(())
//! ```
//!
//! On Windows the same names drive the Service Control Manager (through the
//! `windows-service` crate): [`install`] creates an automatic-start service
//! with failure actions (restart after 1 s, 5 s, 30 s), [`run`] runs `main`
//! under the SCM's dispatcher and reports StartPending, Running (at
//! [`Notifier::ready`]), StopPending (on Stop, Shutdown, Preshutdown) and
//! Stopped.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub mod journal;
pub mod launchd;
pub mod notify;
mod shutdown;
pub mod systemd;
#[cfg(windows)]
mod windows;

pub use notify::Notifier;
pub use shutdown::Shutdown;

/// A system-wide service (started at boot, as root unless told otherwise)
/// or one of a user's (started when the user's service manager is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    System,
    User,
}

impl Scope {
    /// [`Scope::System`] for root, [`Scope::User`] for everyone else.
    /// root's (an elevated administrator's) are the system's; anyone
    /// else's their own. On Windows always the system's: services belong
    /// to the machine.
    pub fn default_for_this_user() -> Scope {
        if is_root() || cfg!(windows) {
            Scope::System
        } else {
            Scope::User
        }
    }
}

/// When the service manager starts the program again after it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// After a failure (an exit code other than 0, a signal, a watchdog
    /// timeout); not after a clean exit.
    OnFailure,
    /// Whenever it ends, unless stopped through the manager.
    Always,
    Never,
}

/// What a stop signals (systemd's `KillMode=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillMode {
    /// SIGTERM to every process of the service.
    ControlGroup,
    /// SIGTERM to the main process only, which stops the rest itself; at
    /// the stop timeout, SIGKILL to every process left (right for a
    /// supervisor).
    Mixed,
}

/// A service to install: what runs, and how the manager treats it.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// The unit's name (`hello` → `hello.service`) or the launchd label.
    /// Letters, digits, `-`, `_`, `.` and `@`; not starting with `.` or `-`.
    pub name: String,
    pub description: String,
    /// An absolute path.
    pub program: PathBuf,
    pub args: Vec<String>,
    pub scope: Scope,
    /// The program tells the manager when it is ready (`Type=notify`):
    /// starting it waits for [`Notifier::ready`].
    pub notify: bool,
    /// With `notify`: the manager restarts the program if it has not heard
    /// [`Notifier::watchdog`] for this long.
    pub watchdog: Option<Duration>,
    /// The command that makes the program reload (`systemctl reload`);
    /// program first.
    pub reload: Option<Vec<String>>,
    /// How long a stop may take before everything left is killed.
    pub stop_timeout: Option<Duration>,
    pub restart: Restart,
    pub kill_mode: KillMode,
    /// The program manages a subtree of cgroups of its own (systemd's
    /// `Delegate=yes`).
    pub delegate: bool,
    /// Directories the manager makes for the service, at this path below
    /// its places for them ([`dirs`]): for a system service under systemd,
    /// state, runtime and logs (`StateDirectory=` …); for a user's, the
    /// runtime directory only (systemd's places for a user's state moved
    /// between versions; the service makes its own where [`dirs`] says);
    /// under the Windows SCM, the state folder, for a service with an
    /// [`Service::account`] other than LocalSystem (owned by
    /// Administrators; SYSTEM, Administrators and the account only).
    pub dirs: Option<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
    /// Where the program's stdout and stderr go under launchd (systemd
    /// gives them to the journal).
    pub log_file: Option<PathBuf>,
    /// Facts the installer keeps with the service, read back by
    /// [`systemd::read`] (`X-` keys of the unit).
    pub properties: Vec<(String, String)>,
    /// Who writes the file (its first line says so, e.g. `ward install`):
    /// an installer overwrites and removes only files it wrote.
    pub generator: String,
    /// Windows: the account the service runs as (`LocalService`,
    /// `NetworkService`, `LocalSystem`, or `DOMAIN\user`); `None` is
    /// LocalSystem. Elsewhere it must be `None`: a system service runs as
    /// root, a user's as its user.
    pub account: Option<String>,
    /// Windows: the password of a user [`Service::account`] (the built-in
    /// accounts have none).
    pub password: Option<String>,
    /// Windows: start a little after the other automatic services at boot
    /// (delayed automatic start).
    pub delayed_start: bool,
}

impl Service {
    pub fn new(name: &str, program: impl Into<PathBuf>, scope: Scope) -> Service {
        Service {
            name: name.to_string(),
            description: name.to_string(),
            program: program.into(),
            args: Vec::new(),
            scope,
            notify: false,
            watchdog: None,
            reload: None,
            stop_timeout: None,
            restart: Restart::OnFailure,
            kill_mode: KillMode::ControlGroup,
            delegate: false,
            dirs: None,
            env: Vec::new(),
            working_dir: None,
            log_file: None,
            properties: Vec::new(),
            generator: "ward-service".to_string(),
            account: None,
            password: None,
            delayed_start: false,
        }
    }

    pub fn description(mut self, text: &str) -> Service {
        self.description = text.to_string();
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Service
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    pub fn notify(mut self, notify: bool) -> Service {
        self.notify = notify;
        self
    }

    /// Checks what a manager would refuse or misread, before anything is
    /// written.
    pub fn validate(&self) -> Result<(), Error> {
        check_name(&self.name)?;
        if !self.program.is_absolute() {
            return Err(Error::invalid(format!(
                "the program must be an absolute path, not {}",
                self.program.display()
            )));
        }
        if self.generator.is_empty() || self.generator.contains("--") {
            return Err(Error::invalid(format!(
                "{:?} cannot name the installer (empty, or with -- in it)",
                self.generator
            )));
        }
        let texts = [self.description.as_str(), self.generator.as_str()]
            .into_iter()
            .chain(self.args.iter().map(String::as_str))
            .chain(self.reload.iter().flatten().map(String::as_str))
            .chain(self.env.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))
            .chain(
                self.properties
                    .iter()
                    .flat_map(|(k, v)| [k.as_str(), v.as_str()]),
            );
        for text in texts {
            if unfit(text) {
                return Err(Error::invalid(format!(
                    "{text:?} holds a control character (a line break, a NUL, …) or ends in a \
                     backslash, which a service file cannot carry"
                )));
            }
        }
        let paths = [
            Some(&self.program),
            self.working_dir.as_ref(),
            self.log_file.as_ref(),
        ];
        for path in paths.into_iter().flatten() {
            if !path.is_absolute() {
                return Err(Error::invalid(format!(
                    "{} must be an absolute path",
                    path.display()
                )));
            }
            let text = path
                .to_str()
                .ok_or_else(|| Error::invalid(format!("{} is not valid UTF-8", path.display())))?;
            if unfit(text) {
                return Err(Error::invalid(format!(
                    "{text:?} holds a control character (a line break, a NUL, …) or ends in a \
                     backslash, which a service file cannot carry"
                )));
            }
        }
        // systemd refuses such an executable ("special characters"); on
        // Windows a backslash is the path's separator.
        if cfg!(unix)
            && self
                .program
                .to_str()
                .is_some_and(|p| p.contains(['"', '\'', '\\']))
        {
            return Err(Error::invalid(format!(
                "{} has a quote or a backslash in its path, which a service manager does not \
                 run: install the program under a plainer path",
                self.program.display()
            )));
        }
        for (key, _) in &self.env {
            if key.is_empty() || key.contains(['=', ' ', '"', '\\']) {
                return Err(Error::invalid(format!(
                    "{key:?} cannot be the name of an environment variable"
                )));
            }
        }
        for (key, _) in &self.properties {
            let ok = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                return Err(Error::invalid(format!(
                    "{key:?} cannot be a property name (letters, digits and -)"
                )));
            }
        }
        if !cfg!(windows) {
            if self.account.is_some() || self.password.is_some() {
                return Err(Error::invalid(
                    "an account is for Windows services; here a system service runs as root \
                     and a user's service as its user"
                        .to_string(),
                ));
            }
            if self.delayed_start {
                return Err(Error::invalid(
                    "a delayed start is for Windows services; here the manager orders \
                     services by their dependencies"
                        .to_string(),
                ));
            }
        }
        if let Some(account) = &self.account {
            if account.is_empty() || unfit(account) || account.contains(['"', '/']) {
                return Err(Error::invalid(format!(
                    "{account:?} cannot name an account (LocalService, NetworkService, \
                     LocalSystem, or DOMAIN\\user)"
                )));
            }
        }
        if let Some(dirs) = &self.dirs {
            let ok = !dirs.is_empty()
                && !dirs.starts_with('/')
                && dirs
                    .split('/')
                    .all(|part| !part.is_empty() && part != "." && part != "..")
                && dirs
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.@/".contains(&b));
            if !ok {
                return Err(Error::invalid(format!(
                    "{dirs:?} cannot name the service's directories (a relative path of plain names)"
                )));
            }
        }
        Ok(())
    }
}

/// Text a unit or a property list cannot hold as is: a control character
/// (a line break would start a line of its own in a unit; XML has no
/// place for most), or a backslash at the end (it would continue a unit's
/// line onto the next).
fn unfit(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && c != '\t') || text.ends_with('\\')
}

/// A name systemd and launchd both take as is.
pub fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{name:?} cannot name a service: use letters, digits, -, _, . and @, \
             not starting with . or -"
        )))
    }
}

/// How [`install`] goes about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallOptions {
    /// Start the service once installed (and enabled).
    pub start: bool,
    /// Write over a service file this installer did not write, or that
    /// was edited by hand since.
    pub force: bool,
}

impl Default for InstallOptions {
    fn default() -> InstallOptions {
        InstallOptions {
            start: true,
            force: false,
        }
    }
}

/// What [`install`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The file written.
    pub file: PathBuf,
    /// An older file of this installer's was replaced.
    pub replaced: bool,
    pub started: bool,
}

/// The file [`install`] writes for `service` on this system: a systemd
/// unit, or a launchd property list on macOS.
pub fn render(service: &Service) -> String {
    #[cfg(target_os = "macos")]
    {
        launchd::render(service)
    }
    #[cfg(windows)]
    {
        windows::render(service)
    }
    #[cfg(not(any(target_os = "macos", windows)))]
    {
        systemd::render(service)
    }
}

/// Installs `service` into this system's service manager: writes its
/// file, enables it (started at boot, or at the user's login) and, unless
/// told not to, starts it. Anything written is taken back if a step fails.
pub fn install(service: &Service, options: &InstallOptions) -> Result<Installed, Error> {
    service.validate()?;
    #[cfg(target_os = "macos")]
    {
        launchd::install(service, options)
    }
    #[cfg(windows)]
    {
        windows::install(service, options)
    }
    #[cfg(not(any(target_os = "macos", windows)))]
    {
        systemd::install(service, options)
    }
}

/// Stops the service, disables it and removes its file (only a file this
/// installer wrote, unless `force`).
pub fn uninstall(name: &str, scope: Scope, generator: &str, force: bool) -> Result<PathBuf, Error> {
    check_name(name)?;
    #[cfg(target_os = "macos")]
    {
        launchd::uninstall(name, scope, generator, force)
    }
    #[cfg(windows)]
    {
        windows::uninstall(name, scope, generator, force)
    }
    #[cfg(not(any(target_os = "macos", windows)))]
    {
        systemd::uninstall(name, scope, generator, force)
    }
}

/// What the manager says of an installed service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// `active`, `inactive`, `failed`, `activating`, … (launchd: `running`
    /// or `not running`).
    pub state: String,
    /// The status line the service last sent (`systemctl status`).
    pub text: Option<String>,
    pub pid: Option<u32>,
    /// Started at boot (or login).
    pub enabled: bool,
    /// Windows: the delays of the Service Control Manager's failure actions
    /// (restart after each, in turn). Empty elsewhere: systemd's is
    /// `Restart=`, launchd's `KeepAlive`.
    pub restart_delays: Vec<Duration>,
}

/// The manager's view of service `name`.
pub fn status(name: &str, scope: Scope) -> Result<Status, Error> {
    check_name(name)?;
    #[cfg(target_os = "macos")]
    {
        launchd::status(name, scope)
    }
    #[cfg(windows)]
    {
        windows::status(name, scope)
    }
    #[cfg(not(any(target_os = "macos", windows)))]
    {
        systemd::status(name, scope)
    }
}

/// Where a service keeps its files: `base` (e.g. `ward/api`) below this
/// system's places for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    /// Kept across restarts and reboots.
    pub state: PathBuf,
    /// Gone at reboot: sockets, pid files.
    pub runtime: PathBuf,
    pub logs: PathBuf,
}

/// The places of a service's files. Linux, system: `/var/lib/BASE`,
/// `/run/BASE`, `/var/log/BASE` (what systemd's `StateDirectory=`,
/// `RuntimeDirectory=` and `LogsDirectory=` make, see [`Service::dirs`]).
/// Linux, user: `$XDG_STATE_HOME/BASE` (`~/.local/state/BASE`),
/// `$XDG_RUNTIME_DIR/BASE`, `$XDG_STATE_HOME/log/BASE`. macOS, system:
/// `/Library/Application Support/BASE`, `/var/run/BASE`,
/// `/Library/Logs/BASE`; user: `~/Library/Application Support/BASE` (the
/// runtime files too: socket paths must stay short) and
/// `~/Library/Logs/BASE`.
pub fn dirs(base: &str, scope: Scope) -> Result<Dirs, Error> {
    #[cfg(target_os = "macos")]
    {
        match scope {
            Scope::System => Ok(Dirs {
                state: PathBuf::from("/Library/Application Support").join(base),
                runtime: PathBuf::from("/var/run").join(base),
                logs: PathBuf::from("/Library/Logs").join(base),
            }),
            Scope::User => {
                let home = home()?;
                let state = home.join("Library/Application Support").join(base);
                Ok(Dirs {
                    runtime: state.clone(),
                    state,
                    logs: home.join("Library/Logs").join(base),
                })
            }
        }
    }
    #[cfg(windows)]
    {
        // The system's own answer (not the environment, which differs
        // between a service and a console, and which anyone can set).
        let root = match scope {
            Scope::System => windows::program_data(),
            Scope::User => {
                windows::local_app_data().map_or_else(|| Ok(home()?.join(r"AppData\Local")), Ok)?
            }
        }
        .join(base.replace('/', "\\"));
        Ok(Dirs {
            runtime: root.clone(),
            logs: root.join("logs"),
            state: root,
        })
    }
    #[cfg(not(any(target_os = "macos", windows)))]
    {
        match scope {
            Scope::System => Ok(Dirs {
                state: PathBuf::from("/var/lib").join(base),
                runtime: PathBuf::from("/run").join(base),
                logs: PathBuf::from("/var/log").join(base),
            }),
            Scope::User => {
                let state_home = match xdg("XDG_STATE_HOME") {
                    Some(dir) => dir,
                    None => home()?.join(".local/state"),
                };
                let runtime = match xdg("XDG_RUNTIME_DIR") {
                    Some(dir) => dir,
                    None => {
                        #[cfg(unix)]
                        let uid = rustix::process::getuid().as_raw();
                        #[cfg(not(unix))]
                        let uid = 0;
                        PathBuf::from(format!("/run/user/{uid}"))
                    }
                }
                .join(base);
                Ok(Dirs {
                    state: state_home.join(base),
                    logs: state_home.join("log").join(base),
                    runtime,
                })
            }
        }
    }
}

/// Where an installer keeps a config it writes for the service whose
/// places are below `base` (`ward/web`): Linux and macOS, system:
/// `/etc/BASE.toml`; user: `$XDG_CONFIG_HOME/BASE.toml`
/// (`~/.config/BASE.toml`); Windows: `%ProgramData%\BASE\NAME.toml`, in
/// the service's own folder (NAME: the last part of BASE).
pub fn config_file(base: &str, scope: Scope) -> Result<PathBuf, Error> {
    #[cfg(windows)]
    {
        let name = base.rsplit('/').next().unwrap_or(base);
        Ok(dirs(base, scope)?.state.join(format!("{name}.toml")))
    }
    #[cfg(not(windows))]
    {
        let file = format!("{base}.toml");
        match scope {
            Scope::System => Ok(PathBuf::from("/etc").join(file)),
            Scope::User => {
                let config_home = match xdg("XDG_CONFIG_HOME") {
                    Some(dir) => dir,
                    None => home()?.join(".config"),
                };
                Ok(config_home.join(file))
            }
        }
    }
}

/// A service this installer put in place, as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    pub scope: Scope,
    /// The facts it keeps ([`Service::properties`]).
    pub properties: Vec<(String, String)>,
    /// Nobody edited its file since.
    pub untouched: bool,
}

impl Found {
    /// The fact named `key`.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The service `name` of `scope`, if `generator` installed it.
pub fn find(name: &str, scope: Scope, generator: &str) -> Result<Option<Found>, Error> {
    check_name(name)?;
    #[cfg(target_os = "macos")]
    {
        Ok(launchd::read(name, scope, generator)?
            .filter(|list| list.ours)
            .map(|list| Found {
                name: name.to_string(),
                scope,
                properties: list.properties,
                untouched: true,
            }))
    }
    #[cfg(windows)]
    {
        windows::find(name, scope, generator)
    }
    #[cfg(not(any(target_os = "macos", windows)))]
    {
        Ok(systemd::read(name, scope, generator)?
            .filter(|unit| unit.ours)
            .map(|unit| Found {
                name: name.to_string(),
                scope,
                properties: unit.properties,
                untouched: !unit.edited,
            }))
    }
}

/// Every service of `scope` that `generator` installed, by name.
pub fn list(scope: Scope, generator: &str) -> Vec<Found> {
    #[cfg(target_os = "macos")]
    {
        launchd::list(scope, generator)
            .into_iter()
            .map(|(name, list)| Found {
                name,
                scope,
                properties: list.properties,
                untouched: true,
            })
            .collect()
    }
    #[cfg(windows)]
    {
        windows::list(scope, generator)
    }
    #[cfg(not(any(target_os = "macos", windows)))]
    {
        systemd::list(scope, generator)
            .into_iter()
            .map(|(name, unit)| Found {
                name,
                scope,
                properties: unit.properties,
                untouched: !unit.edited,
            })
            .collect()
    }
}

/// The command that starts service `name` by hand: `systemctl start NAME`,
/// `systemctl --user start NAME`, `launchctl kickstart system/NAME`.
pub fn start_command(name: &str, scope: Scope) -> String {
    #[cfg(target_os = "macos")]
    {
        match scope {
            Scope::System => format!("sudo launchctl kickstart system/{name}"),
            Scope::User => format!("launchctl kickstart gui/$(id -u)/{name}"),
        }
    }
    #[cfg(windows)]
    {
        let _ = scope;
        format!("sc.exe start {name}")
    }
    #[cfg(not(any(target_os = "macos", windows)))]
    {
        match scope {
            Scope::System => format!("systemctl start {name}"),
            Scope::User => format!("systemctl --user start {name}"),
        }
    }
}

/// What a program run by [`run`] is given.
pub struct Context {
    /// Fires on SIGTERM (the manager's stop) and SIGINT (Ctrl-C); on
    /// Windows on the SCM's Stop, Shutdown and Preshutdown, or Ctrl-C and
    /// Ctrl-Break in a console.
    pub shutdown: Shutdown,
    pub notifier: Notifier,
    /// One message per reload asked: on Windows the SCM's ParamChange
    /// (`sc control NAME paramchange`). Nothing arrives elsewhere (a Unix
    /// program reloads on SIGHUP, which it handles itself).
    pub reloads: std::sync::mpsc::Receiver<()>,
}

/// How bad an event is, for the system's event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// Runs `main` as a service: with a [`Shutdown`] token that fires when the
/// manager stops the service (SIGTERM) or on Ctrl-C (SIGINT), and a
/// [`Notifier`] for readiness, status and the watchdog. Returns what
/// `main` returns. Signal handling is set up before `main` runs; a second
/// SIGTERM or SIGINT after the first ends the process at once (exit code
/// 130), for a program stuck in its shutdown.
///
/// On Windows, started by the Service Control Manager, `main` runs on the
/// dispatcher's thread: the service reports StartPending until
/// [`Notifier::ready`] (then Running), StopPending from the Stop request
/// (or [`Notifier::stopping`]) and Stopped once `main` returns. Started
/// from a console, it runs as a program.
pub fn run<T: Send + 'static>(main: impl FnOnce(Context) -> T + Send + 'static) -> T {
    #[cfg(windows)]
    {
        windows::run(true, main)
    }
    #[cfg(not(windows))]
    {
        let (_, reloads) = std::sync::mpsc::channel();
        main(Context {
            shutdown: Shutdown::on_signals(),
            notifier: Notifier::from_env(),
            reloads,
        })
    }
}

/// [`run`] for a program that answers signals (and console events) itself:
/// the token fires only on the SCM's Stop, Shutdown and Preshutdown, and
/// nothing watches SIGTERM, SIGINT, Ctrl-C or Ctrl-Break for it.
pub fn run_leaving_signals<T: Send + 'static>(
    main: impl FnOnce(Context) -> T + Send + 'static,
) -> T {
    #[cfg(windows)]
    {
        windows::run(false, main)
    }
    #[cfg(not(windows))]
    {
        let (_, reloads) = std::sync::mpsc::channel();
        main(Context {
            shutdown: Shutdown::new(),
            notifier: Notifier::from_env(),
            reloads,
        })
    }
}

/// Why something could not be done, in words for the person who asked.
#[derive(Debug)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The service description cannot be installed as it is.
    Invalid,
    /// Installing for the whole system needs root.
    NotPermitted,
    /// No service manager of the expected kind runs here.
    NoManager,
    /// A file is in the way (not this installer's, or edited by hand).
    Exists,
    /// No such service is installed.
    NotInstalled,
    /// A step failed (the message says which, and what the manager said).
    Failed,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    fn invalid(message: String) -> Error {
        Error::new(ErrorKind::Invalid, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    #[cfg(unix)]
    {
        rustix::process::geteuid().is_root()
    }
    #[cfg(windows)]
    {
        windows::is_elevated()
    }
    #[cfg(not(any(unix, windows)))]
    {
        false
    }
}

/// The files `NAME.SUFFIX` in `dir` that `read` takes (an installer's own),
/// by NAME, sorted.
pub(crate) fn scan<T>(
    dir: &std::path::Path,
    suffix: &str,
    mut read: impl FnMut(&std::path::Path) -> Option<T>,
) -> Vec<(String, T)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(String, T)> = entries
        .flatten()
        .filter_map(|entry| {
            let file_name = entry.file_name();
            let name = file_name.to_str()?.strip_suffix(suffix)?.to_string();
            Some((name, read(&entry.path())?))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// The user's home folder (`$HOME`). For root, only a folder that belongs
/// to root: an environment kept from another user (`sudo -E`, `su`) must
/// not point root's files at theirs.
pub(crate) fn home() -> Result<PathBuf, Error> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute())
        .ok_or_else(|| Error::new(ErrorKind::Failed, "HOME is not set"))?;
    if !roots_if_root(&home) {
        return Err(Error::new(
            ErrorKind::Failed,
            format!(
                "HOME ({}) is not root's own folder: run as root with root's environment \
                 (sudo -i, su -)",
                home.display()
            ),
        ));
    }
    Ok(home)
}

/// An XDG base folder from the environment (`XDG_STATE_HOME`, …), absolute;
/// for root, only one that belongs to root (as for [`home`]; otherwise the
/// default below the home is used).
pub(crate) fn xdg(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|d| d.is_absolute() && roots_if_root(d))
}

/// Not root, or `path` — or, while it does not exist, the nearest folder
/// above it that does — belongs to root.
fn roots_if_root(path: &std::path::Path) -> bool {
    #[cfg(unix)]
    if is_root() {
        use std::os::unix::fs::MetadataExt;
        for at in path.ancestors() {
            match std::fs::symlink_metadata(at) {
                Ok(meta) => return meta.uid() == 0,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(_) => return false,
            }
        }
        return false;
    }
    let _ = path;
    true
}

/// A small, stable hash (64-bit FNV-1a) of a service file's body: an
/// installer notes it in the file, and so tells a file it wrote from one
/// edited by hand since.
pub(crate) fn fingerprint(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An absolute program path on this system.
    fn app() -> PathBuf {
        std::path::absolute("/opt/app").unwrap()
    }

    #[cfg(not(windows))]
    #[test]
    fn windows_only_settings_are_refused_elsewhere() {
        let mut s = Service::new("app", app(), Scope::System);
        s.account = Some("LocalService".into());
        let e = s.validate().unwrap_err();
        assert!(e.message.contains("for Windows services"), "{}", e.message);
        s.account = None;
        s.delayed_start = true;
        assert!(s.validate().is_err());
        assert_eq!(
            config_file("ward/web", Scope::System).unwrap(),
            PathBuf::from("/etc/ward/web.toml")
        );
    }

    #[test]
    fn names_and_descriptions_are_checked_before_anything_is_written() {
        let ok = Service::new("my-app_2.x@1", app(), Scope::System);
        assert!(ok.validate().is_ok());
        for bad in ["", ".hidden", "-x", "a b", "a/b", "ünïcode", "a\nb"] {
            let s = Service::new(bad, app(), Scope::System);
            assert_eq!(
                s.validate().unwrap_err().kind,
                ErrorKind::Invalid,
                "{bad:?}"
            );
        }
        if cfg!(unix) {
            let quoted = Service::new("app", "/opt/it's/app", Scope::System);
            assert!(quoted.validate().unwrap_err().message.contains("quote"));
        }
        let relative = Service::new("app", "app", Scope::System);
        assert!(relative
            .validate()
            .unwrap_err()
            .message
            .contains("absolute"));
        let newline = Service::new("app", app(), Scope::System).args(["a\nb"]);
        assert!(newline.validate().is_err());
        let bell = Service::new("app", app(), Scope::System).description("ding\u{7}");
        assert!(bell.validate().is_err());
        let mut trailing = Service::new("app", app(), Scope::System);
        trailing.properties = vec![("Key".into(), "C:\\dir\\".into())];
        assert!(trailing
            .validate()
            .unwrap_err()
            .message
            .contains("backslash"));
        let mut env = Service::new("app", app(), Scope::System);
        env.env.push(("A=B".into(), "x".into()));
        assert!(env.validate().is_err());
        let mut dirs = Service::new("app", app(), Scope::System);
        for bad in ["/abs", "a/../b", "a//b", "a b", ""] {
            dirs.dirs = Some(bad.into());
            assert!(dirs.validate().is_err(), "{bad:?}");
        }
        dirs.dirs = Some("ward/api".into());
        assert!(dirs.validate().is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn root_takes_no_folder_of_another_user_from_its_environment() {
        // /tmp belongs to root; a folder below it of uid 65534 does not.
        let mine = std::env::temp_dir().join(format!("ward-service-roots-{}", std::process::id()));
        std::fs::create_dir_all(mine.join("sub")).unwrap();
        assert!(roots_if_root(&mine.join("sub/not-yet")));
        if is_root() {
            rustix::fs::chown(&mine, Some(rustix::fs::Uid::from_raw(65534)), None).unwrap();
            assert!(!roots_if_root(&mine), "owned by another user");
            assert!(
                !roots_if_root(&mine.join("not-yet")),
                "would be made in another user's folder"
            );
            assert!(
                roots_if_root(&mine.join("sub")),
                "sub still belongs to root"
            );
        }
        let _ = std::fs::remove_dir_all(&mine);
    }

    #[test]
    fn fingerprints_tell_bodies_apart() {
        assert_eq!(fingerprint("a"), fingerprint("a"));
        assert_ne!(fingerprint("a"), fingerprint("b"));
        assert_eq!(fingerprint("").len(), 16);
    }
}
