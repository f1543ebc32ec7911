//! The verbs. Every verb but `up` and `check` is a client of the control
//! API; `up` runs the daemon (in the foreground, or detached).

pub mod client;
pub mod control;
mod events;
pub mod generate;
pub mod init;
mod offline;
mod reload;
pub mod service;
mod start;
mod status;
pub mod up;

pub use start::start;

use std::path::{Path, PathBuf};

/// Where the config is and where its daemon answers.
pub struct Locations {
    pub config: PathBuf,
    pub socket: PathBuf,
    /// The folders searched for `ward.toml` when no `--config` named one
    /// and none was found (empty otherwise): said when a verb fails.
    pub searched: Vec<PathBuf>,
    /// Check that each command can be run when the config is read (`up`,
    /// `check`, and the daemon's reloads); off with `--no-verify-commands`.
    pub verify_commands: bool,
    /// The installed service this is for (`--service`, or the only one
    /// installed when no `ward.toml` is found).
    pub service: Option<crate::service::Installed>,
    /// Where ward's files are when the config does not say: that service's
    /// places; `None`, beside the config.
    pub places: Option<ward_config::Places>,
}

/// A failure of a verb: the one-line reason (printed as `ward: reason`),
/// optional detail lines, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub details: Vec<String>,
    pub code: i32,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            details: Vec::new(),
            code: EXIT_FAILED,
        }
    }
}

/// Exit codes (docs/usage.md has the table): what was asked did not
/// happen.
pub const EXIT_FAILED: i32 = 1;
/// The command line was wrong: bad arguments, a program that does not
/// exist, an unknown signal.
pub const EXIT_USAGE: i32 = 2;
/// No daemon answers on the control socket.
pub const EXIT_NOT_RUNNING: i32 = 3;

impl From<client::CallError> for Failure {
    fn from(e: client::CallError) -> Failure {
        Failure {
            code: if e.not_running {
                EXIT_NOT_RUNNING
            } else if e.refused {
                EXIT_USAGE
            } else {
                EXIT_FAILED
            },
            message: e.message,
            details: e.details,
        }
    }
}

pub type Outcome = Result<(), Failure>;

impl Locations {
    /// Where the config and the daemon are, in this order (docs/usage.md):
    ///
    /// 1. `--config`/`WARD_CONFIG` names the config, `--socket`/`WARD_SOCKET`
    ///    the socket;
    /// 2. `--service NAME`/`WARD_SERVICE` names an installed service (`ward
    ///    install`): its config, and its places (`/var/lib/ward/NAME`,
    ///    `/run/ward/NAME/ward.sock`, …) for what the config does not say;
    /// 3. the first `ward.toml` in the current folder or one above it (as
    ///    git and cargo look for theirs), up to the home folder (when the
    ///    current one is inside it) or a file-system boundary;
    /// 4. for the verbs that talk to a daemon (`installed`), the installed
    ///    service, when there is exactly one (several: a usage error that
    ///    names them); `up`, `check` and `install` never take it unasked;
    /// 5. else `./ward.toml` (and a verb that needs it says where it looked).
    ///
    /// The socket, unless given, comes from the config; a config with
    /// errors still names its socket when its `[ward]` table is readable,
    /// else the default is used (so `ward reload` can report the errors of
    /// a broken config).
    pub fn resolve(
        config: Option<PathBuf>,
        socket: Option<PathBuf>,
        service: Option<String>,
        installed: bool,
    ) -> Result<Locations, Failure> {
        let usage = |message: String| Failure {
            code: EXIT_USAGE,
            ..Failure::new(message)
        };
        let named = match service {
            Some(name) => Some(crate::service::find(&name).map_err(usage)?),
            None => None,
        };
        let (config, searched, service) = match (config, named) {
            (Some(config), service) => (absolute(&config), Vec::new(), service),
            (None, Some(service)) => (service.config.clone(), Vec::new(), Some(service)),
            (None, None) => match find_config() {
                (found, searched) if searched.is_empty() || !installed => (found, searched, None),
                (fallback, searched) => {
                    let mut installed = crate::service::installed();
                    match installed.len() {
                        0 => (fallback, searched, None),
                        1 => {
                            let service = installed.remove(0);
                            (service.config.clone(), Vec::new(), Some(service))
                        }
                        _ => {
                            return Err(usage(format!(
                                "no ward.toml here, and several ward services are installed \
                                 ({}): pick one with --service NAME (or WARD_SERVICE), or \
                                 pass --config FILE",
                                crate::service::listing(&installed)
                            )))
                        }
                    }
                }
            },
        };
        let places = match &service {
            Some(service) => Some(service.places().map_err(Failure::new)?),
            None => None,
        };
        let mut loc = Locations {
            config,
            socket: PathBuf::new(),
            searched,
            verify_commands: true,
            service,
            places,
        };
        loc.socket = match socket {
            Some(socket) => absolute(&socket),
            None => {
                ward_config::socket_path_with(&loc.config, &crate::host::Places(loc.places.clone()))
            }
        };
        Ok(loc)
    }

    /// This system, as the config is checked against.
    pub fn host(&self) -> crate::host::LocalHost {
        crate::host::LocalHost {
            verify_commands: self.verify_commands,
            places: self.places.clone(),
        }
    }

    /// For a daemon that does not answer, when it is an installed
    /// service: what to say instead of "start it with `ward up`".
    pub fn service_not_running(&self) -> Option<String> {
        let service = self.service.as_ref()?;
        Some(format!(
            "the ward service {:?} is not running (no daemon answers on {}): start it with \
             `{}`; `ward logs` and `ward events` show what happened",
            service.name,
            self.socket.display(),
            ward_service::start_command(&service.name, service.scope)
        ))
    }

    /// Where the search for `ward.toml` went, when it found none.
    pub fn search_note(&self) -> Option<String> {
        if self.searched.is_empty() {
            return None;
        }
        let folders: Vec<String> = self
            .searched
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        Some(format!(
            "no ward.toml in {} (searched from the current folder up); ward used {} and the \
             socket {}: run ward in the project's folder or pass --config FILE",
            folders.join(", "),
            self.config.display(),
            self.socket.display()
        ))
    }
}

/// The first `ward.toml` from the current folder up, or `./ward.toml` and
/// the folders searched.
fn find_config() -> (PathBuf, Vec<PathBuf>) {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|home| home.is_absolute() && cwd.starts_with(home));
    let mut searched = Vec::new();
    let mut dir = cwd.clone();
    loop {
        let candidate = dir.join("ward.toml");
        if candidate.is_file() {
            return (candidate, Vec::new());
        }
        searched.push(dir.clone());
        if home.as_ref() == Some(&dir) {
            break;
        }
        let Some(parent) = dir.parent().map(Path::to_path_buf) else {
            break;
        };
        if !crate::files::same_filesystem(&dir, &parent) {
            break;
        }
        dir = parent;
    }
    (cwd.join("ward.toml"), searched)
}

pub fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

/// Descriptors ward needs for itself, whatever it runs: about 16 at rest
/// (stdio, lock, control socket, journal, the runtime's, the sentinel's
/// pipe), up to 24 more while four spawns are under way (pipes, /dev/null,
/// cgroup.procs), and room for control connections, state writes and tree
/// reads.
const FDS_FOR_WARD: u64 = 64;

/// Descriptors ward holds per instance while it runs: the read ends of its
/// stdout and stderr pipes, and its log file.
const FDS_PER_INSTANCE: u64 = 3;

/// Open files ward needs for `instances` instances.
pub fn open_files_needed(instances: u64) -> u64 {
    FDS_FOR_WARD + FDS_PER_INSTANCE * instances
}

/// Every instance of the config.
fn instance_count(config: &ward_config::Config) -> u64 {
    config
        .specs
        .programs
        .values()
        .map(|p| u64::from(p.instances))
        .sum()
}

/// Whether ward can hold the descriptors `config` needs under the hard
/// open-files limit `limit` (ward raises its soft limit to the hard one):
/// the reason, how to fix it, when it cannot. Short of descriptors,
/// programs would fail to start one after another with errors that do not
/// name the limit.
pub fn open_files_shortfall(config: &ward_config::Config, limit: Option<u64>) -> Option<String> {
    let limit = limit?;
    let instances = instance_count(config);
    let need = open_files_needed(instances);
    if need <= limit {
        return None;
    }
    let suggest = need.next_power_of_two().max(1024);
    Some(format!(
        "{} needs about {need} open files ({FDS_FOR_WARD} for ward itself and \
         {FDS_PER_INSTANCE} for each of its {instances} instance{}), but the open-files \
         limit is {limit}; raise it (`ulimit -n {suggest}` in the shell that starts ward, \
         `LimitNOFILE={suggest}` in its systemd unit) or run fewer instances",
        config.path.display(),
        if instances == 1 { "" } else { "s" },
    ))
}

/// `ward check`: validate the config, print every error, start nothing.
pub fn check(loc: &Locations) -> Outcome {
    match ward_config::load_with(&loc.config, &loc.host()) {
        Ok(config) => {
            if let Some(why) = open_files_shortfall(&config, crate::proc::open_files_limit()) {
                return Err(Failure::new(format!(
                    "{why}; `ward up` would refuse to start"
                )));
            }
            let n = config.specs.programs.len();
            let instances = instance_count(&config);
            println!(
                "{}: ok ({n} program{}, {instances} instance{})",
                loc.config.display(),
                if n == 1 { "" } else { "s" },
                if instances == 1 { "" } else { "s" }
            );
            Ok(())
        }
        Err(diags) => {
            for d in &diags.items {
                eprintln!("{d}");
            }
            Err(Failure::new(format!(
                "{} has {} error{}; nothing was started",
                loc.config.display(),
                diags.items.len(),
                if diags.items.len() == 1 { "" } else { "s" }
            )))
        }
    }
}

/// One line for a reload's changes (see [`crate::text::reload_summary`]).
pub fn describe_reload(r: &crate::api::types::ReloadResult) -> String {
    crate::text::reload_summary(&crate::text::Changes {
        added: &r.added,
        removed: &r.removed,
        restarted: &r.restarted,
        updated: &r.updated,
        rescaled: r
            .rescaled
            .iter()
            .map(|(name, old, new)| (name.as_str(), *old, *new))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(instances: &[u32]) -> ward_config::Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ward.toml");
        let toml: String = instances
            .iter()
            .enumerate()
            .map(|(i, n)| format!("[program.p{i}]\ncommand = [\"x\"]\ninstances = {n}\n"))
            .collect();
        std::fs::write(&path, toml).unwrap();
        ward_config::load(&path).unwrap()
    }

    #[test]
    fn the_open_files_limit_must_cover_every_instance() {
        let config = config_with(&[150, 50]);
        assert_eq!(open_files_needed(200), 664);
        let why = open_files_shortfall(&config, Some(128)).unwrap();
        assert!(why.contains("needs about 664 open files"), "{why}");
        assert!(why.contains("each of its 200 instances"), "{why}");
        assert!(why.contains("limit is 128"), "{why}");
        assert!(why.contains("`ulimit -n 1024`"), "{why}");
        assert!(why.contains("`LimitNOFILE=1024`"), "{why}");
        assert_eq!(open_files_shortfall(&config, Some(664)), None);
        assert_eq!(open_files_shortfall(&config, None), None);
        let big = config_with(&[10000, 10000]);
        let why = open_files_shortfall(&big, Some(4096)).unwrap();
        assert!(why.contains("`ulimit -n 65536`"), "{why}");
    }
}
