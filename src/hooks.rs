//! The daemon's seam to whatever runs it: a service manager (systemd,
//! launchd, the Windows Service Control Manager) or nothing at all.
//!
//! In: [`Control`] messages through a [`Handle`] — stop, the terminal
//! going away (or a reload) — from Unix signals and console events, and
//! from the Windows SCM (its Stop, and ParamChange for a reload). Out:
//! [`Hooks`] — ready, a one-line status, reloading, stopping, a watchdog
//! ping from the driver loop itself (so a driver that is stuck stops
//! pinging), and what goes to the system's event log. `ward up` has none
//! ([`NoHooks`]); `ward service-run` tells its manager through
//! `ward_service::Notifier` ([`Notify`]): sd_notify under systemd, status
//! reports and the Application event log under the SCM.

use std::sync::Arc;
use std::time::Duration;

/// What is asked of the daemon from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop every program gracefully, then exit (again: kill at once).
    Stop,
    /// The terminal went away: stop in the foreground, reload detached
    /// (SIGHUP's two meanings).
    Hangup,
}

/// Sends [`Control`] messages to a running daemon.
#[derive(Clone)]
pub struct Handle(Arc<dyn Fn(Control) -> bool + Send + Sync>);

impl Handle {
    /// A handle that delivers with `send` (false once the daemon is gone).
    pub fn new(send: impl Fn(Control) -> bool + Send + Sync + 'static) -> Handle {
        Handle(Arc::new(send))
    }

    /// False once the daemon is gone.
    pub fn send(&self, control: Control) -> bool {
        (self.0)(control)
    }
}

/// What the daemon tells whatever runs it. Every method has a default that
/// does nothing.
pub trait Hooks: Send {
    /// The daemon runs; `handle` sends it controls (a service manager's
    /// stop).
    fn attach(&mut self, _handle: Handle) {}
    /// Nothing is on its way any more: every program that starts has
    /// started (or failed), nothing is stopping (once, and again after each
    /// reload).
    fn ready(&mut self) {}
    /// A one-line summary changed: `5/5 running`, `4/5 running; api:0
    /// backoff`.
    fn status(&mut self, _summary: &str) {}
    /// A reload begins; `ready` follows when it is applied.
    fn reloading(&mut self) {}
    /// The daemon is stopping every program.
    fn stopping(&mut self) {}
    /// How often the driver loop must ping (`None`: no watchdog).
    fn watchdog_interval(&self) -> Option<Duration> {
        None
    }
    /// The driver loop is alive.
    fn watchdog(&mut self) {}
    /// Whether the manager keeps what ward writes to stderr (the journal
    /// does; the Windows SCM does not: ward then writes `ward.log`).
    fn keeps_stderr(&self) -> bool {
        true
    }
    /// Something an operator must hear of even where ward's own output is
    /// not read (a program gave up): the system's event log, if any.
    fn alert(&mut self, _text: &str) {}
}

/// Nothing runs ward but a shell (or a container's PID 1).
pub struct NoHooks;

impl Hooks for NoHooks {}

/// The hooks for `ward up`: none, but in a test build asked for them
/// (`WARD_TEST_HOOKS=FILE`), a [`Recorder`] that writes each call as a line
/// to FILE, so the tests see the daemon tell what it tells a service
/// manager, when it tells it. Release builds never record.
pub fn for_up() -> Box<dyn Hooks> {
    match std::env::var_os("WARD_TEST_HOOKS").filter(|_| cfg!(debug_assertions)) {
        Some(path) => Box::new(Recorder(path.into())),
        None => Box::new(NoHooks),
    }
}

/// The hooks for `ward service-run`: [`Notify`] (silent when no service
/// manager listens), or in a test build asked for it, a [`Recorder`].
pub fn for_service(
    notifier: Arc<ward_service::Notifier>,
    stop: ward_service::Shutdown,
    reloads: std::sync::mpsc::Receiver<()>,
) -> Box<dyn Hooks> {
    match std::env::var_os("WARD_TEST_HOOKS").filter(|_| cfg!(debug_assertions)) {
        Some(path) => Box::new(Recorder(path.into())),
        None => Box::new(Notify {
            notifier,
            controls: Some((stop, reloads)),
            started: false,
            summary: String::new(),
        }),
    }
}

/// Tells a service manager through `ward_service::Notifier`: under systemd
/// `READY=1`, `STATUS=…`, `RELOADING=1`, `STOPPING=1`, `WATCHDOG=1` at
/// half of `WatchdogSec=`; under the Windows SCM, Running and StopPending,
/// and the Application event log (started, stopping, a program that gave
/// up). The manager's own stop and reload requests (the SCM's Stop and
/// ParamChange) come back as [`Control`]s.
pub struct Notify {
    pub notifier: Arc<ward_service::Notifier>,
    /// The manager's stop token and reload requests, until attached.
    pub controls: Option<(ward_service::Shutdown, std::sync::mpsc::Receiver<()>)>,
    /// `ready` was said once (the event log hears of the start once).
    pub started: bool,
    /// The last status line.
    pub summary: String,
}

impl Hooks for Notify {
    fn attach(&mut self, handle: Handle) {
        let Some((stop, reloads)) = self.controls.take() else {
            return;
        };
        let stopper = handle.clone();
        // Small threads that wait: one for the stop token (fired only by
        // the SCM), one for reload requests (ends when none can come).
        let waits = [
            std::thread::Builder::new()
                .name("ward-manager-stop".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    stop.wait();
                    stopper.send(Control::Stop);
                }),
            std::thread::Builder::new()
                .name("ward-manager-reload".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    while reloads.recv().is_ok() {
                        if !handle.send(Control::Hangup) {
                            return;
                        }
                    }
                }),
        ];
        for wait in waits {
            if let Err(e) = wait {
                self.notifier.event(
                    ward_service::Level::Warning,
                    &format!("cannot listen to the service manager: {e}"),
                );
            }
        }
    }
    fn ready(&mut self) {
        self.notifier.ready();
        if !self.started {
            self.started = true;
            self.notifier.event(
                ward_service::Level::Info,
                &format!("ward started: {}", self.summary),
            );
        }
    }
    fn status(&mut self, summary: &str) {
        self.summary = summary.to_string();
        self.notifier.status(summary);
    }
    fn reloading(&mut self) {
        self.notifier.reloading();
    }
    fn stopping(&mut self) {
        self.notifier.stopping();
        self.notifier
            .event(ward_service::Level::Info, "ward is stopping its programs");
    }
    fn watchdog_interval(&self) -> Option<Duration> {
        self.notifier.watchdog_interval()
    }
    fn watchdog(&mut self) {
        self.notifier.watchdog();
    }
    fn keeps_stderr(&self) -> bool {
        self.notifier.keeps_stderr()
    }
    fn alert(&mut self, text: &str) {
        self.notifier.event(ward_service::Level::Error, text);
    }
}

/// Writes each hook call as a line (`ready`, `status 1/1 running`,
/// `reloading`, `stopping`, `alert TEXT`) to a file: for tests.
pub struct Recorder(std::path::PathBuf);

impl Recorder {
    fn line(&self, line: &str) {
        use std::io::Write;
        if let Ok(mut file) = crate::files::append_existing(&self.0) {
            let _ = writeln!(file, "{line}");
        }
    }
}

impl Hooks for Recorder {
    fn ready(&mut self) {
        self.line("ready");
    }
    fn status(&mut self, summary: &str) {
        self.line(&format!("status {summary}"));
    }
    fn reloading(&mut self) {
        self.line("reloading");
    }
    fn stopping(&mut self) {
        self.line("stopping");
    }
    fn alert(&mut self, text: &str) {
        self.line(&format!("alert {text}"));
    }
}

/// The status line for a snapshot: how many instances run, and the first
/// few that should run but do not.
pub fn summary(snapshot: &ward_core::Snapshot) -> String {
    use ward_core::{Desired, State};
    let total = snapshot.instances.len();
    let running = snapshot
        .instances
        .iter()
        .filter(|v| v.state == State::Running)
        .count();
    let mut line = format!("{running}/{total} running");
    let mut troubled = snapshot
        .instances
        .iter()
        .filter(|v| v.desired == Desired::Up && v.state != State::Running)
        // A one-shot that completed is where it should be.
        .filter(|v| !(v.state == State::Exited && v.last_end_ok));
    // Two named, the rest counted: no text made for a thousand.
    let named: Vec<String> = troubled
        .by_ref()
        .take(2)
        .map(|v| format!("{} {}", v.id, v.state.name()))
        .collect();
    let more = troubled.count();
    match (named.as_slice(), more) {
        ([], _) => {}
        ([a], _) => line.push_str(&format!("; {a}")),
        ([a, b], 0) => line.push_str(&format!("; {a}, {b}")),
        ([a, b], n) => line.push_str(&format!("; {a}, {b} and {n} more")),
        _ => {}
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use ward_core::{Desired, DesiredBy, InstanceId, InstanceView, RunEnd, Snapshot, State};

    fn view(name: &str, state: State, desired: Desired, end: Option<i32>) -> InstanceView {
        InstanceView {
            id: InstanceId::new(name, 0),
            state,
            desired,
            desired_by: DesiredBy::Config,
            run: None,
            pid: None,
            started_at: None,
            since: Duration::ZERO,
            next_at: None,
            restarts: 0,
            last_end: end.map(|code| RunEnd::Exited {
                status: ward_core::ExitStatus::Code { code },
            }),
            waiting_on: Vec::new(),
            daemonized: false,
            restart: ward_core::RestartPolicy::OnFailure,
            min_uptime: Duration::from_secs(1),
            // Running for its min_uptime already, unless a test says not.
            proven: state == State::Running,
            last_end_ok: end == Some(0),
        }
    }

    #[test]
    fn the_summary_names_what_should_run_and_does_not() {
        let mut snapshot = Snapshot::default();
        snapshot
            .instances
            .push(view("api", State::Running, Desired::Up, None));
        assert_eq!(summary(&snapshot), "1/1 running");
        snapshot
            .instances
            .push(view("migrate", State::Exited, Desired::Up, Some(0)));
        snapshot
            .instances
            .push(view("off", State::Stopped, Desired::Down, None));
        assert_eq!(summary(&snapshot), "1/3 running");
        snapshot
            .instances
            .push(view("worker", State::Backoff, Desired::Up, Some(1)));
        assert_eq!(summary(&snapshot), "1/4 running; worker:0 backoff");
        for name in ["a", "b", "c"] {
            snapshot
                .instances
                .push(view(name, State::Fatal, Desired::Up, Some(3)));
        }
        assert_eq!(
            summary(&snapshot),
            "1/7 running; worker:0 backoff, a:0 fatal and 2 more"
        );
        assert!(snapshot.settled());
        snapshot
            .instances
            .push(view("new", State::Starting, Desired::Up, None));
        assert!(!snapshot.settled());
        snapshot.instances.pop();
        snapshot
            .instances
            .push(view("old", State::Stopping, Desired::Up, None));
        assert!(!snapshot.settled(), "a restart under way is not settled");
        snapshot.instances.pop();
        snapshot
            .instances
            .push(view("young", State::Running, Desired::Up, None));
        snapshot.instances.last_mut().unwrap().proven = false;
        assert!(
            !snapshot.settled(),
            "running, but not yet for its min_uptime: not settled"
        );
        snapshot.instances.last_mut().unwrap().proven = true;
        assert!(snapshot.settled());
    }
}
