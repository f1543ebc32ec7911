//! The daemon: wiring, and the driver loop that owns the engine.
//!
//! One task owns `ward_core::Supervisor`. It waits for an input (from the
//! API, a run task, a signal) or the engine's next timer, hands it to the
//! engine, then carries out every action the engine yields. Readers never
//! touch the engine: they read the snapshot it publishes after each turn.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch};
use ward_config::Config;
use ward_core::{
    Action, Desired, Event, EventKind, Input, InstanceId, Reply, Request, RequestError, Restore,
    RunId, Snapshot, Supervisor, Token,
};

use crate::bus::Bus;
use crate::exec::{Exec, LogHub};
use crate::logs::Console;
use crate::proc::{Supervision, Tree};
use crate::state::{LiveRecord, StateFile};

/// Everything that reaches the driver.
pub enum Msg {
    Input(Input),
    /// A request from the API; the reply goes back on `reply`.
    Request {
        request: Request,
        reply: oneshot::Sender<Result<Reply, ApiError>>,
    },
    /// Re-read the config file, then reload (or just diff, with `dry_run`).
    Reload {
        dry_run: bool,
        reply: oneshot::Sender<Result<Reply, ApiError>>,
    },
    /// A run's process exists: its tree, for signals and the state file.
    RunStarted {
        id: InstanceId,
        run: RunId,
        tree: Tree,
        record: LiveRecord,
    },
    /// An event the shell itself has to report.
    Event(Event),
}

#[derive(Debug)]
pub enum ApiError {
    Request(RequestError),
    /// The config file has errors (each rendered, one per item).
    Config(Vec<String>),
}

/// What the API reads: the latest snapshot and the clock it is measured on.
#[derive(Clone)]
pub struct Shared {
    pub tx: mpsc::UnboundedSender<Msg>,
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    pub epoch: Instant,
    pub events: tokio::sync::broadcast::Sender<Arc<str>>,
    pub journal: PathBuf,
    pub logs: LogHub,
    /// Program → log dir, for reading log files.
    pub log_dirs: watch::Receiver<Arc<HashMap<String, PathBuf>>>,
}

impl Shared {
    pub fn now(&self) -> ward_core::Time {
        self.epoch.elapsed()
    }
}

pub struct Options {
    pub foreground: bool,
}

/// Runs the daemon until a shutdown finishes. Returns the exit code.
pub async fn run(
    config: Config,
    supervision: Supervision,
    listener: crate::api::Listener,
    opts: Options,
) -> std::io::Result<i32> {
    let epoch = Instant::now();
    let now = || epoch.elapsed();
    let state_path = config.ward.state_dir.join("state.json");
    let (state, state_note) = StateFile::load(&state_path);

    let mut bus = Bus::new(&config.ward.state_dir);
    let console = opts.foreground.then(|| {
        Console::start(
            config
                .specs
                .programs
                .values()
                .map(|p| label_width(&p.name, p.instances))
                .max()
                .unwrap_or(0),
        )
    });
    let say = |bus: &mut Bus, message: String| {
        publish(
            bus,
            &console,
            &Event {
                instance: None,
                run: None,
                kind: EventKind::Notice { message },
            },
        );
    };
    if let Some(note) = state_note {
        say(&mut bus, note);
    }
    if let Some(reason) = supervision.fallback_reason() {
        say(
            &mut bus,
            format!("process trees are tracked by process group and environment marker, not cgroups: {reason}"),
        );
    }
    let swept = crate::proc::sweep(
        &state
            .live
            .iter()
            .map(|r| crate::proc::Leftover {
                pid: r.pid,
                start_time: r.start_time,
                pgid: r.pgid,
                cgroup: r.cgroup.clone(),
                marker: r.marker.clone(),
            })
            .collect::<Vec<_>>(),
    );
    if swept > 0 {
        say(
            &mut bus,
            format!("killed {swept} processes left behind by a previous ward"),
        );
    }

    let spawner = supervision.start()?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let hub: LogHub = Default::default();
    let mut exec = Exec::new(spawner, tx.clone(), console.clone(), hub.clone());

    let mut desired = state.desired.clone();
    let restore = Restore {
        desired: state.desired_map(),
        next_run: state.next_run(),
    };
    let seed = u64::from(std::process::id()) ^ epoch_nanos();
    let mut sup = Supervisor::new(config.specs.clone(), restore, seed, now());
    let (snap_tx, snap_rx) = watch::channel(Arc::new(sup.snapshot()));
    let (dirs_tx, dirs_rx) = watch::channel(Arc::new(log_dirs(&config)));
    let shared = Shared {
        tx: tx.clone(),
        snapshot: snap_rx,
        epoch,
        events: bus.subscribe(),
        journal: bus.journal_path().to_path_buf(),
        logs: hub,
        log_dirs: dirs_rx,
    };
    let server = tokio::spawn(crate::api::serve(listener, shared));

    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;

    let mut config = config;
    let mut replies: HashMap<Token, oneshot::Sender<Result<Reply, ApiError>>> = HashMap::new();
    let mut next_token = 0u64;
    let mut stop_signals = 0u32;
    let mut last_saved: Option<StateFile> = None;
    let mut exit = false;

    loop {
        // Carry out everything the engine decided.
        let mut changed = false;
        while let Some(action) = sup.poll_action() {
            match action {
                Action::Spawn {
                    id,
                    run,
                    launch,
                    logs,
                } => exec.spawn(id, run, launch, logs),
                Action::Signal { id, run, signal } => exec.signal(&id, run, signal),
                Action::KillTree { id, run } => exec.kill_tree(&id, run),
                Action::Reply { token, result } => {
                    if let Some(reply) = replies.remove(&token) {
                        let _ = reply.send(result.map_err(ApiError::Request));
                    }
                }
                Action::Publish(event) => {
                    changed = true;
                    on_event(&event, &mut desired, &mut exec, &sup);
                    publish(&mut bus, &console, &event);
                }
                Action::Exit => exit = true,
            }
        }
        if changed {
            let _ = snap_tx.send(Arc::new(sup.snapshot()));
        }
        if let Some(message) = bus.flush() {
            say(&mut bus, message);
        }
        let doc = StateFile {
            version: 0,
            next_run: sup.next_run().0,
            desired: desired.clone(),
            live: exec.live_records(),
        };
        if last_saved.as_ref() != Some(&doc) {
            match doc.save(&state_path) {
                Ok(()) => last_saved = Some(doc),
                Err(e) => {
                    // Retried on the next turn; said once per failure streak.
                    if last_saved.is_some() {
                        say(
                            &mut bus,
                            format!("cannot write {}: {e}", state_path.display()),
                        );
                        last_saved = None;
                    }
                }
            }
        }
        if exit {
            break;
        }

        // A timer past the end of representable time never fires.
        let deadline = sup
            .poll_timeout()
            .and_then(|t| epoch.checked_add(t))
            .map(tokio::time::Instant::from_std);
        tokio::select! {
            biased;
            msg = rx.recv() => {
                let Some(msg) = msg else { break };
                match msg {
                    Msg::Input(input) => {
                        if let Input::Exited { id, run, tree_alive: false, .. }
                        | Input::TreeGone { id, run }
                        | Input::SpawnFailed { id, run, .. } = &input
                        {
                            exec.ended(id, *run);
                        }
                        sup.handle(now(), input);
                    }
                    Msg::Request { request, reply } => {
                        next_token += 1;
                        let token = Token(next_token);
                        replies.insert(token, reply);
                        sup.handle(now(), Input::Request { token, request });
                    }
                    Msg::Reload { dry_run, reply } => {
                        match ward_config::load(&config.path) {
                            Err(diags) => {
                                let errors: Vec<String> = diags.items.iter().map(|d| d.to_string()).collect();
                                if !dry_run {
                                    publish(&mut bus, &console, &Event {
                                        instance: None,
                                        run: None,
                                        kind: EventKind::ReloadRejected {
                                            errors: diags.items.iter().map(|d| d.one_line()).collect(),
                                        },
                                    });
                                }
                                let _ = reply.send(Err(ApiError::Config(errors)));
                            }
                            Ok(new) => {
                                if !dry_run {
                                    if new.ward.state_dir != config.ward.state_dir || new.ward.socket != config.ward.socket {
                                        say(&mut bus, "changes to state_dir or socket take effect when ward restarts".into());
                                    }
                                    let _ = dirs_tx.send(Arc::new(log_dirs(&new)));
                                    if let Some(console) = &console {
                                        console.set_width(new.specs.programs.values().map(|p| label_width(&p.name, p.instances)).max().unwrap_or(0));
                                    }
                                }
                                next_token += 1;
                                let token = Token(next_token);
                                replies.insert(token, reply);
                                sup.handle(now(), Input::Request { token, request: Request::Reload { specs: new.specs.clone(), dry_run } });
                                if !dry_run {
                                    config = new;
                                }
                            }
                        }
                    }
                    Msg::RunStarted { id, run, tree, record } => exec.started(&id, run, tree, record),
                    Msg::Event(event) => publish(&mut bus, &console, &event),
                }
            }
            _ = sleep_until(deadline) => sup.handle_timeout(now()),
            _ = sigint.recv() => stop_requested(&mut stop_signals, &mut sup, &mut exec, now(), &console),
            _ = sigterm.recv() => stop_requested(&mut stop_signals, &mut sup, &mut exec, now(), &console),
            _ = sighup.recv() => {
                let (reply, _) = oneshot::channel();
                let _ = tx.send(Msg::Reload { dry_run: false, reply });
            }
        }
    }

    server.abort();
    if let Some(message) = bus.flush() {
        eprintln!("ward: {message}");
    }
    if let Some(console) = &console {
        // The last lines and notices reach the terminal before ward exits.
        console.flush(std::time::Duration::from_secs(1));
    }
    supervision.cleanup();
    Ok(0)
}

/// Journals and broadcasts an event, and says it where a person watches:
/// the terminal in the foreground, ward's own log (stderr) when detached.
fn publish(bus: &mut Bus, console: &Option<Console>, event: &Event) {
    let line = bus.publish(event);
    if let Some(text) = console_text(event) {
        match console {
            Some(console) => console.notice(&text),
            None => eprintln!("{} {text}", stamp_of(&line)),
        }
    }
}

/// The `ts` of a journal line (it is the first field).
fn stamp_of(line: &str) -> &str {
    line.strip_prefix("{\"ts\":\"")
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
}

/// SIGINT/SIGTERM: the first stops everything gracefully; a second one
/// kills every tree at once (the stops then complete as their trees vanish).
fn stop_requested(
    count: &mut u32,
    sup: &mut Supervisor,
    exec: &mut Exec,
    now: ward_core::Time,
    console: &Option<Console>,
) {
    *count += 1;
    if *count == 1 {
        if let Some(console) = console {
            console.notice("stopping every program (again to kill them now)");
        }
        sup.handle(
            now,
            Input::Request {
                token: Token(0),
                request: Request::Shutdown,
            },
        );
    } else {
        if let Some(console) = console {
            console.notice("killing every program");
        }
        exec.kill_all();
    }
}

/// What the shell keeps in step with the engine's events.
fn on_event(
    event: &Event,
    desired: &mut std::collections::BTreeMap<String, Desired>,
    exec: &mut Exec,
    sup: &Supervisor,
) {
    let Some(id) = &event.instance else {
        if let EventKind::Reloaded { .. } = event.kind {
            let specs = sup.specs();
            exec.forget(|id| {
                specs
                    .get(&id.program)
                    .is_some_and(|p| id.index < p.instances)
            });
            desired.retain(|key, _| {
                crate::state::parse_instance(key).is_some_and(|id| {
                    specs
                        .get(&id.program)
                        .is_some_and(|p| id.index < p.instances)
                })
            });
        }
        return;
    };
    if let EventKind::DesiredChanged { desired: d } = &event.kind {
        desired.insert(id.to_string(), *d);
    }
}

/// The line ward prints on the terminal for an event, if any.
fn console_text(event: &Event) -> Option<String> {
    let who = event
        .instance
        .as_ref()
        .map(|id| format!("{id} "))
        .unwrap_or_default();
    let text = match &event.kind {
        EventKind::Spawned { pid } => format!("{who}started (pid {pid})"),
        EventKind::SpawnFailed { error } => format!("{who}failed to start: {error}"),
        EventKind::Exited { status, .. } => format!("{who}exited ({})", describe(status)),
        EventKind::Backoff { delay_ms, .. } => {
            format!("{who}restarting in {}", human_ms(*delay_ms))
        }
        EventKind::Fatal {
            failed_starts,
            cooldown_ms,
        } => match cooldown_ms {
            Some(ms) => format!(
                "{who}gave up after {failed_starts} failed starts; next try in {}",
                human_ms(*ms)
            ),
            None => format!("{who}gave up after {failed_starts} failed starts"),
        },
        EventKind::StopTimeout => format!("{who}did not stop in time; killing its process tree"),
        EventKind::StateChanged {
            to: ward_core::State::Stopped,
            ..
        } => format!("{who}stopped"),
        EventKind::Reloaded { diff } => format!("reloaded: {}", crate::cli::describe_diff(diff)),
        EventKind::ReloadRejected { errors } => {
            format!(
                "reload rejected, nothing changed:\n  {}",
                errors.join("\n  ")
            )
        }
        EventKind::LogLinesDropped { lines, reason } => {
            format!("{who}{lines} log lines were dropped: {reason}")
        }
        EventKind::Notice { message } => format!("{who}{message}"),
        _ => return None,
    };
    Some(text)
}

pub fn describe(status: &ward_core::ExitStatus) -> String {
    match status {
        ward_core::ExitStatus::Code { code } => format!("exit {code}"),
        ward_core::ExitStatus::Signal {
            signal,
            core_dumped,
        } => {
            let name = crate::proc::signal_name(*signal)
                .map(|n| format!("SIG{n}"))
                .unwrap_or_else(|| format!("signal {signal}"));
            if *core_dumped {
                format!("{name}, core dumped")
            } else {
                name
            }
        }
    }
}

pub fn human_ms(ms: u64) -> String {
    crate::cli::human_duration(std::time::Duration::from_millis(ms))
}

fn label_width(name: &str, instances: u32) -> usize {
    name.len() + 1 + instances.saturating_sub(1).to_string().len()
}

fn log_dirs(config: &Config) -> HashMap<String, PathBuf> {
    config
        .specs
        .programs
        .values()
        .map(|p| (p.name.clone(), p.logs.dir.clone()))
        .collect()
}

fn epoch_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The lock that keeps two daemons off one state dir. Held for the life of
/// the daemon (the OS drops it when the process dies, even by SIGKILL).
pub struct StateLock {
    _file: std::fs::File,
}

impl StateLock {
    pub fn acquire(state_dir: &Path) -> Result<StateLock, String> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| format!("cannot create the state dir {}: {e}", state_dir.display()))?;
        let path = state_dir.join("ward.lock");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Err(if holder.is_empty() {
                    format!("another ward is already running on {}", state_dir.display())
                } else {
                    format!(
                        "another ward (pid {holder}) is already running on {}",
                        state_dir.display()
                    )
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()))
            }
        }
        use std::io::{Seek, Write};
        let _ = file.set_len(0);
        let _ = file.seek(std::io::SeekFrom::Start(0));
        let _ = writeln!(file, "{}", std::process::id());
        Ok(StateLock { _file: file })
    }
}
