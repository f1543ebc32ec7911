//! This system as the config sees it: the seam through which ward-config
//! asks about users and groups (`ward_config::Host`).

/// This system, as the config sees it: the users and groups a program
/// runs as must exist here. `check`, `up` and `reload` all load through
/// it, so `ward check` reports what `ward up` would fail on.
pub struct LocalHost;

impl ward_config::Host for LocalHost {
    fn check_user(&self, name: &str) -> Result<(), String> {
        crate::proc::check_user(name)
    }

    fn check_group(&self, name: &str) -> Result<(), String> {
        crate::proc::check_group(name)
    }
}
