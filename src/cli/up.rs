//! `ward up`: run the daemon, in the foreground or detached.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::client::Client;
use super::{Failure, Locations, Outcome};
use crate::api::types::InstanceStatus;
use crate::daemon;
use crate::files::{Dir, DirPolicy, PRIVATE_FILE};
use crate::state::state_dir_mode;
use ward_core::State;

/// Set in the environment of the daemon that `up --detach` starts.
const DETACHED_ENV: &str = "WARD_DETACHED";

/// How long the daemon's last writes may take once everything is down.
const RUNTIME_DRAIN: Duration = Duration::from_secs(10);

/// How long `up --detach` waits for the daemon to answer.
const DETACH_WAIT: Duration = Duration::from_secs(15);

/// Set by `up --detach` for its daemon: a file of its own where the daemon
/// writes why it could not start. ward.log is no place to look for that:
/// another ward running on the same state dir writes there too.
const REPORT_ENV: &str = "WARD_START_REPORT";

/// The start-up report file `up --detach` asked this process to write, if
/// any; taken out of the environment, so programs do not inherit it. Call
/// before any thread exists.
pub fn take_report_path() -> Option<PathBuf> {
    let path = std::env::var_os(REPORT_ENV).map(PathBuf::from);
    std::env::remove_var(REPORT_ENV);
    path
}

/// Writes why this detached daemon failed, for the `up --detach` that
/// waits for it: the detail lines, then the reason (the last line).
pub fn write_report(path: &Path, failure: &Failure) {
    let mut text = String::new();
    for line in &failure.details {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&failure.message);
    text.push('\n');
    // The file is the parent's, made for this; never create one elsewhere,
    // never write through a link.
    if let Ok(mut file) = crate::files::append_existing(path) {
        let _ = file.write_all(text.as_bytes());
    }
}

/// Loads the config, or prints every error and fails.
fn load(loc: &Locations, socket_override: bool) -> Result<ward_config::Config, Failure> {
    let mut config = ward_config::load_with(&loc.config, &loc.host()).map_err(|diags| {
        for d in &diags.items {
            eprintln!("{d}");
        }
        Failure::new(format!(
            "{} has {} error{}; nothing was started",
            loc.config.display(),
            diags.items.len(),
            if diags.items.len() == 1 { "" } else { "s" }
        ))
    })?;
    if socket_override {
        config.ward.socket = loc.socket.clone();
    }
    // Refused up front, like a config error: past the limit, programs would
    // fail to start one by one with errors that do not name it.
    if let Some(why) = super::open_files_shortfall(&config, crate::proc::open_files_limit()) {
        return Err(Failure::new(format!("{why}; nothing was started")));
    }
    Ok(config)
}

/// The foreground daemon (or the one `up --detach` started). Runs on the
/// calling thread; it must be called before any other thread exists (the
/// sentinel is forked here).
pub fn foreground(loc: &Locations, socket_override: bool) -> Outcome {
    let mode = match std::env::var_os(DETACHED_ENV) {
        None => daemon::Mode::Foreground,
        Some(_) => daemon::Mode::Detached,
    };
    // The marker is for this process only, not for the programs it runs.
    // Single-threaded here, so changing the environment is sound.
    std::env::remove_var(DETACHED_ENV);
    close_inherited()?;
    run_daemon(loc, socket_override, mode, crate::hooks::for_up)
}

/// Whatever the shell (or other parent) had open is not ward's to keep,
/// and must not reach its programs: closed first thing, while the process
/// has one thread (no descriptor is in use elsewhere), before anything of
/// ward's own is opened (the hooks' sd_notify socket).
pub fn close_inherited() -> Outcome {
    crate::proc::close_inherited_fds()
        .map_err(|e| Failure::new(format!("cannot close inherited descriptors: {e}")))
}

/// Runs the daemon on the calling thread until it is done, telling the
/// hooks `hooks` makes how it goes; call before any other thread exists
/// (the sentinel is forked here), after [`close_inherited`]. `ward up` and
/// `ward service-run`.
pub fn run_daemon(
    loc: &Locations,
    socket_override: bool,
    mode: daemon::Mode,
    hooks: impl FnOnce() -> Box<dyn crate::hooks::Hooks>,
) -> Outcome {
    let hooks = hooks();
    let config = load(loc, socket_override)?;
    let limits = crate::api::Limits::from(&config.ward.api);
    let mut prepared = daemon::Prepared::new(config).map_err(Failure::new)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Log writes run on the blocking pool: a hung disk may hold this
        // many threads, and no more.
        .max_blocking_threads(64)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("cannot start the runtime: {e}")))?;

    let result = runtime.block_on(prepared.run(
        daemon::Options {
            mode,
            host: loc.host(),
        },
        hooks,
        // The control API is what serves people.
        Box::new(move |shared, listener, stop| {
            tokio::spawn(crate::api::serve(listener, shared, limits, stop))
        }),
    ));
    // Writes still under way on the blocking pool (the last log lines)
    // finish before the lock goes: a `ward up` waiting for it must not
    // meet this daemon's writes. Bounded, for a disk that hangs.
    runtime.shutdown_timeout(RUNTIME_DRAIN);
    // The socket is ours while we hold the lock; the lock goes last.
    prepared.release();
    result.map_err(|e| Failure::new(format!("ward failed: {e}")))
}

/// How often `up --detach` looks at the programs while they settle.
const SETTLE_POLL: Duration = Duration::from_millis(50);

/// Starts the daemon in the background, returns once it answers and its
/// programs have settled (or `wait` has passed), and says which are not
/// running and why. Fails when one was given up on (`fatal`).
pub fn detach(loc: &Locations, socket_override: bool, wait: Duration) -> Outcome {
    let config = load(loc, socket_override)?;
    // The state dir and ward.log as the daemon itself opens them: checked,
    // private, never through a link.
    let dir = Dir::open(
        &config.ward.state_dir,
        DirPolicy {
            mode: state_dir_mode(&config),
            ..DirPolicy::private()
        },
    )
    .map_err(|e| Failure::new(format!("cannot use the state dir: {e}")))?;
    let log_path = dir.join("ward.log");
    let log = dir
        .append("ward.log", PRIVATE_FILE, None)
        .map_err(|e| Failure::new(e.to_string()))?
        .file;
    let report = StartReport::create(&dir)?;
    let exe = std::env::current_exe()
        .map_err(|e| Failure::new(format!("cannot find ward's own binary: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--config")
        .arg(&loc.config)
        .arg("--socket")
        .arg(&config.ward.socket)
        .arg("up")
        .args((!loc.verify_commands).then_some("--no-verify-commands"))
        .env(DETACHED_ENV, "1")
        .env(REPORT_ENV, &report.0)
        .stdin(Stdio::null())
        .stdout(
            log.try_clone()
                .map_err(|e| Failure::new(format!("cannot use {}: {e}", log_path.display())))?,
        )
        .stderr(log);
    crate::proc::detach(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::new(format!("cannot start the daemon: {e}")))?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("cannot start the runtime: {e}")))?;
    let client = Client::new(&config.ward.socket);
    let deadline = Instant::now() + DETACH_WAIT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            // Only what this attempt said: not ward.log, where another
            // ward of this state dir may be writing.
            let said = report.read();
            let mut lines: Vec<String> = said.lines().map(str::to_string).collect();
            return Err(match lines.pop() {
                Some(reason) => Failure {
                    message: reason,
                    details: lines,
                    code: super::EXIT_FAILED,
                },
                None => Failure::new(format!(
                    "the daemon exited at once ({status}) without saying why; see {}",
                    log_path.display()
                )),
            });
        }
        let ping: Result<serde_json::Value, _> = runtime.block_on(client.get("/v1/ping"));
        if let Ok(ping) = ping {
            if ping["pid"].as_u64() == Some(u64::from(child.id())) {
                println!(
                    "ward is up (pid {}); socket {}; its own log {}",
                    child.id(),
                    config.ward.socket.display(),
                    log_path.display()
                );
                return runtime.block_on(settle(&client, wait));
            }
        }
        if Instant::now() > deadline {
            return Err(Failure::new(format!(
                "the daemon (pid {}) did not answer within {}s; see {}",
                child.id(),
                DETACH_WAIT.as_secs(),
                log_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to `wait` for every instance to settle (running past its
/// `min_uptime`, waiting, failed, stopped), then prints a line for each
/// that is not running, with why. Fails if one is `fatal`.
async fn settle(client: &Client, wait: Duration) -> Outcome {
    let deadline = Instant::now() + wait;
    let list = loop {
        let list: Vec<InstanceStatus> = client.get("/v1/status").await?;
        if Instant::now() >= deadline || !list.iter().any(InstanceStatus::unsettled) {
            break list;
        }
        tokio::time::sleep(SETTLE_POLL.min(deadline.saturating_duration_since(Instant::now())))
            .await;
    };
    let mut fatal = Vec::new();
    for s in list.iter().filter(|s| s.state != State::Running) {
        let reason = s.reason();
        if reason.is_empty() {
            println!("{} {}", s.id(), s.state);
        } else {
            println!("{} {}: {reason}", s.id(), s.state);
        }
        if s.state == State::Fatal {
            fatal.push(s.id());
        }
    }
    if fatal.is_empty() {
        return Ok(());
    }
    Err(Failure::new(format!(
        "ward is up, but gave up on {} (fatal): see `ward status {}`",
        fatal.join(", "),
        fatal[0]
    )))
}

/// The file a detached daemon writes its start-up failure to: made by `up
/// --detach` beside ward.log (its pid keeps two attempts apart), removed
/// when it is done waiting.
struct StartReport(PathBuf);

impl StartReport {
    fn create(dir: &Dir) -> Result<StartReport, Failure> {
        let name = format!("ward.start.{}", std::process::id());
        dir.create_new(&name, PRIVATE_FILE).map_err(|e| {
            Failure::new(format!("cannot create {}: {e}", dir.join(&name).display()))
        })?;
        Ok(StartReport(dir.join(&name)))
    }

    /// What the daemon wrote (bounded: it is a few lines).
    fn read(&self) -> String {
        use std::io::Read;
        let mut text = String::new();
        if let Ok(file) = crate::files::open_regular(&self.0) {
            let _ = file.take(64 * 1024).read_to_string(&mut text);
        }
        text
    }
}

impl Drop for StartReport {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
