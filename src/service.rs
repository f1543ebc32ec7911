//! ward as an installed service (`ward install`): its name, where its files
//! are, and how the CLI finds it. The service manager itself (systemd,
//! launchd) is `ward-service`'s business.

use std::path::PathBuf;

use ward_config::Places;
use ward_service::{Found, Scope};

/// What `ward install` signs its unit files with: it replaces and removes
/// only files that say so.
pub const GENERATOR: &str = "ward install";

/// The unit's fact naming the config the service runs.
pub const CONFIG: &str = "Ward-Config";

/// The unit's fact saying that ward wrote that config itself (the
/// one-program wrapper): `ward uninstall` removes it too.
pub const GENERATED: &str = "Ward-Generated";

/// The name of a service installed without `--name`.
pub const DEFAULT_NAME: &str = "ward";

/// Where a service keeps its files, below the system's places for them:
/// `ward/NAME` (`/var/lib/ward/NAME`, `/run/ward/NAME`, …).
pub fn base(name: &str) -> String {
    format!("ward/{name}")
}

/// An installed ward service: its name, scope and config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub name: String,
    pub scope: Scope,
    pub config: PathBuf,
    /// ward wrote the config (the one-program wrapper).
    pub generated: bool,
}

impl Installed {
    fn of(found: Found) -> Option<Installed> {
        let config = PathBuf::from(found.property(CONFIG)?);
        Some(Installed {
            generated: found.property(GENERATED) == Some("yes"),
            name: found.name,
            scope: found.scope,
            config,
        })
    }

    /// Where this service's files are when its config does not say.
    pub fn places(&self) -> Result<Places, String> {
        places(&self.name, self.scope)
    }

    /// `ward` (system) or `ward (user)`, for messages.
    pub fn label(&self) -> String {
        match self.scope {
            Scope::System => self.name.clone(),
            Scope::User => format!("{} (user)", self.name),
        }
    }
}

/// The defaults of a service's state dir, socket and logs: the runtime
/// directory holds the socket.
pub fn places(name: &str, scope: Scope) -> Result<Places, String> {
    let dirs = ward_service::dirs(&base(name), scope).map_err(|e| e.to_string())?;
    Ok(Places {
        state_dir: dirs.state,
        socket: Some(dirs.runtime.join("ward.sock")),
        logs_dir: Some(dirs.logs),
    })
}

/// The scopes to look in, the likelier first: root's services are the
/// system's; anyone else's are their own, then the system's.
pub fn scopes() -> [Scope; 2] {
    if ward_service::is_root() {
        [Scope::System, Scope::User]
    } else {
        [Scope::User, Scope::System]
    }
}

/// The installed service `name` (a user's own first, unless root).
pub fn find(name: &str) -> Result<Installed, String> {
    ward_service::check_name(name).map_err(|e| e.to_string())?;
    for scope in scopes() {
        if let Some(found) =
            ward_service::find(name, scope, GENERATOR).map_err(|e| e.to_string())?
        {
            return Installed::of(found).ok_or_else(|| {
                format!("the service {name:?} does not say which config it runs (its {CONFIG})")
            });
        }
    }
    Err(format!(
        "no ward service {name:?} is installed (see `ward install`); installed: {}",
        listing(&installed())
    ))
}

/// Every installed ward service, the likelier scope first.
pub fn installed() -> Vec<Installed> {
    scopes()
        .into_iter()
        .flat_map(|scope| ward_service::list(scope, GENERATOR))
        .filter_map(Installed::of)
        .collect()
}

/// `api, web (user)`, or `none`.
pub fn listing(services: &[Installed]) -> String {
    if services.is_empty() {
        return "none".into();
    }
    services
        .iter()
        .map(Installed::label)
        .collect::<Vec<_>>()
        .join(", ")
}
