//! This system as the config sees it: the seam through which ward-config
//! asks about users and groups (`ward_config::Host`).

/// This system, as the config sees it: the users and groups a program
/// runs as must exist here. `check`, `up` and `reload` all load through
/// it, so `ward check` reports what `ward up` would fail on.
#[derive(Debug, Clone)]
pub struct LocalHost {
    /// Check that each command can be run (off with `--no-verify-commands`,
    /// for commands an earlier step creates).
    pub verify_commands: bool,
    /// Where ward's files go when the config does not say: an installed
    /// service's places; `None`, beside the config.
    pub places: Option<ward_config::Places>,
}

impl ward_config::Host for LocalHost {
    fn check_user(&self, name: &str) -> Result<(), String> {
        crate::proc::check_user(name)
    }

    fn check_group(&self, name: &str) -> Result<(), String> {
        crate::proc::check_group(name)
    }

    fn check_command(
        &self,
        program: &str,
        cwd: &std::path::Path,
        path: Option<&str>,
    ) -> Result<(), String> {
        if !self.verify_commands {
            return Ok(());
        }
        // ward's one did-you-mean rule, for a typo among PATH's names.
        let near = |wanted: &str, names: &[String]| {
            ward_core::suggest::closest(wanted, names.iter().map(String::as_str))
                .map(str::to_string)
        };
        crate::proc::check_command(program, cwd, path, &near)
    }

    fn places(&self, config_dir: &std::path::Path) -> ward_config::Places {
        places_or_beside(&self.places, config_dir)
    }

    fn check_stop_signal(
        &self,
        program: &str,
        cwd: &std::path::Path,
        path: Option<&str>,
        signal: ward_core::Signal,
    ) -> Result<(), String> {
        if !self.verify_commands {
            return Ok(());
        }
        crate::proc::check_stop_signal(program, cwd, path, signal)
    }

    fn check_accounts(&self) -> Result<(), String> {
        crate::proc::check_accounts()
    }

    fn check_signal(&self, signal: ward_core::Signal) -> Result<(), String> {
        crate::proc::check_signal(signal)
    }

    fn default_stop_signal(&self) -> ward_core::Signal {
        crate::proc::DEFAULT_STOP_SIGNAL
    }

    fn shell(&self, line: &str) -> Vec<String> {
        crate::proc::shell(line)
    }
}

/// A host that accepts every name, with ward's places: for reading where
/// a config's files are, not whether it would run.
pub struct Places(pub Option<ward_config::Places>);

impl ward_config::Host for Places {
    fn check_user(&self, _name: &str) -> Result<(), String> {
        Ok(())
    }

    fn check_group(&self, _name: &str) -> Result<(), String> {
        Ok(())
    }

    fn places(&self, config_dir: &std::path::Path) -> ward_config::Places {
        places_or_beside(&self.0, config_dir)
    }

    fn default_stop_signal(&self) -> ward_core::Signal {
        crate::proc::DEFAULT_STOP_SIGNAL
    }

    fn shell(&self, line: &str) -> Vec<String> {
        crate::proc::shell(line)
    }
}

fn places_or_beside(
    places: &Option<ward_config::Places>,
    config_dir: &std::path::Path,
) -> ward_config::Places {
    match places {
        Some(places) => places.clone(),
        None => ward_config::Places::beside(config_dir),
    }
}
