//! `ward up`: run the daemon, in the foreground or detached.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::client::Client;
use super::{Failure, Locations, Outcome};
use crate::daemon;
use crate::state::{state_dir_mode, StateLock};

/// Set in the environment of the daemon that `up --detach` starts.
const DETACHED_ENV: &str = "WARD_DETACHED";

/// How long the daemon's last writes may take once everything is down.
const RUNTIME_DRAIN: Duration = Duration::from_secs(10);

/// How long `up --detach` waits for the daemon to answer.
const DETACH_WAIT: Duration = Duration::from_secs(15);

/// Loads the config, or prints every error and fails.
fn load(loc: &Locations, socket_override: bool) -> Result<ward_config::Config, Failure> {
    let mut config =
        ward_config::load_with(&loc.config, &crate::host::LocalHost).map_err(|diags| {
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

/// The foreground daemon. Runs on the calling thread; it must be called
/// before any other thread exists (the sentinel is forked here).
pub fn foreground(loc: &Locations, socket_override: bool) -> Outcome {
    // Whatever the shell (or other parent) had open is not ward's to keep,
    // and must not reach its programs. Single-threaded here, so no
    // descriptor is in use elsewhere.
    crate::proc::close_inherited_fds()
        .map_err(|e| Failure::new(format!("cannot close inherited descriptors: {e}")))?;
    let foreground = std::env::var_os(DETACHED_ENV).is_none();
    // The marker is for this process only, not for the programs it runs.
    // Still single-threaded here, so changing the environment is sound.
    std::env::remove_var(DETACHED_ENV);
    let config = load(loc, socket_override)?;
    let lock = StateLock::acquire(&config.ward.state_dir, state_dir_mode(&config))
        .map_err(Failure::new)?;
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
        lock.dir(),
        supervision,
        listener,
        daemon::Options { foreground },
    ));
    // Writes still under way on the blocking pool (the last log lines)
    // finish before the lock goes: a `ward up` waiting for it must not
    // meet this daemon's writes. Bounded, for a disk that hangs.
    runtime.shutdown_timeout(RUNTIME_DRAIN);
    // The socket is ours while we hold the lock; the lock goes last.
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
    let start_offset = log.metadata().map(|m| m.len()).unwrap_or(0);
    let exe = std::env::current_exe()
        .map_err(|e| Failure::new(format!("cannot find ward's own binary: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--config")
        .arg(&loc.config)
        .arg("--socket")
        .arg(&config.ward.socket)
        .arg("up")
        .env(DETACHED_ENV, "1")
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
            let said = read_from(&log_path, start_offset);
            let mut failure = Failure::new(format!("the daemon exited at once ({status})"));
            failure.details = said.lines().map(str::to_string).collect();
            return Err(failure);
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

fn read_from(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        if file.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = file.read_to_string(&mut text);
        }
    }
    text
}
