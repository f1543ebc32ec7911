//! `ward up`: run the daemon, in the foreground or detached.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::client::Client;
use super::{Failure, Locations, Outcome};
use crate::daemon;
use crate::state::StateLock;

/// Set in the environment of the daemon that `up --detach` starts.
const DETACHED_ENV: &str = "WARD_DETACHED";

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
    // The file is the parent's, made for this; never create one elsewhere.
    if let Ok(mut file) = std::fs::OpenOptions::new().append(true).open(path) {
        let _ = file.write_all(text.as_bytes());
    }
}

/// Loads the config, or prints every error and fails.
fn load(loc: &Locations, socket_override: bool) -> Result<ward_config::Config, Failure> {
    let mut config = ward_config::load(&loc.config).map_err(|diags| {
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
    Ok(config)
}

/// The foreground daemon. Runs on the calling thread; it must be called
/// before any other thread exists (the sentinel is forked here).
pub fn foreground(loc: &Locations, socket_override: bool) -> Outcome {
    let foreground = std::env::var_os(DETACHED_ENV).is_none();
    // The marker is for this process only, not for the programs it runs.
    // Still single-threaded here, so changing the environment is sound.
    std::env::remove_var(DETACHED_ENV);
    let config = load(loc, socket_override)?;
    let lock = StateLock::acquire(&config.ward.state_dir).map_err(Failure::new)?;
    let listener =
        crate::api::bind(&config.ward.socket, config.ward.socket_mode).map_err(Failure::new)?;
    let socket = config.ward.socket.clone();
    let supervision = crate::proc::init(crate::proc::InitOptions {
        name: format!("ward-{}", std::process::id()),
        no_cgroup: std::env::var_os("WARD_NO_CGROUP").is_some(),
    })
    .map_err(|e| Failure::new(format!("cannot set up process supervision: {e}")))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Log writes run on the blocking pool: a hung disk may hold this
        // many threads, and no more.
        .max_blocking_threads(64)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("cannot start the runtime: {e}")))?;

    let result = runtime.block_on(daemon::run(
        config,
        supervision,
        listener,
        daemon::Options { foreground },
    ));
    // The socket is ours while we hold the lock.
    let _ = std::fs::remove_file(&socket);
    drop(lock);
    result.map_err(|e| Failure::new(format!("ward failed: {e}")))
}

/// Starts the daemon in the background and returns once it answers.
pub fn detach(loc: &Locations, socket_override: bool) -> Outcome {
    let config = load(loc, socket_override)?;
    std::fs::create_dir_all(&config.ward.state_dir).map_err(|e| {
        Failure::new(format!(
            "cannot create the state dir {}: {e}",
            config.ward.state_dir.display()
        ))
    })?;
    let log_path = config.ward.state_dir.join("ward.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| Failure::new(format!("cannot open {}: {e}", log_path.display())))?;
    let report = StartReport::create(&config.ward.state_dir)?;
    let exe = std::env::current_exe()
        .map_err(|e| Failure::new(format!("cannot find ward's own binary: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--config")
        .arg(&loc.config)
        .arg("--socket")
        .arg(&config.ward.socket)
        .arg("up")
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
            let said = std::fs::read_to_string(&report.0).unwrap_or_default();
            let mut lines: Vec<String> = said.lines().map(str::to_string).collect();
            return Err(match lines.pop() {
                Some(reason) => Failure {
                    message: reason,
                    details: lines,
                    code: 1,
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
                return Ok(());
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

/// The file a detached daemon writes its start-up failure to: made by `up
/// --detach` beside ward.log (its pid keeps two attempts apart), removed
/// when it is done waiting.
struct StartReport(PathBuf);

impl StartReport {
    fn create(state_dir: &Path) -> Result<StartReport, Failure> {
        let path = state_dir.join(format!("ward.start.{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Failure::new(format!("cannot create {}: {e}", path.display())))?;
        Ok(StartReport(path))
    }
}

impl Drop for StartReport {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
