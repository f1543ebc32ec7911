//! The daemon: wiring, and the driver loop that owns the engine.
//!
//! One task owns `ward_core::Supervisor`. It waits for an input (from the
//! API, a run task, a signal) or the engine's next timer, hands it to the
//! engine, then carries out every action the engine yields. Readers never
//! touch the engine: they read the snapshot it publishes after each turn.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use ward_config::Config;
use ward_core::{
    Action, Desired, Event, EventKind, Input, Reply, Request, RequestError, Restore, Snapshot,
    Supervisor, Token,
};

use crate::bus::Bus;
use crate::exec::Exec;
use crate::files::Dir;
use crate::hooks::{Control, Handle, Hooks, NoHooks};
use crate::inbox::{ApiError, Ask, LogHub, Msg, Shared};
use crate::logs::Console;
use crate::offload::Worker;
use crate::proc::{Start, Supervision};
use crate::state::{StartRecord, StateFile, StateLock};
use crate::voice::Voice;

/// How long, once everything is down, the API may take to finish the
/// answers it is writing (the reply to `ward down` among them).
const API_DRAIN: Duration = Duration::from_secs(2);
/// How long processes ward adopted get between SIGTERM and SIGKILL when
/// ward ends.
const STRAY_GRACE: Duration = Duration::from_secs(2);

/// How long ward, once everything is down, waits for its last writes
/// (state.json, the journal, ward.log) before it ends anyway.
const WRITE_DRAIN: Duration = Duration::from_secs(5);

/// state.json is rewritten at most this often for changes of the live
/// runs (a crash loop changes them hundreds of times a second); the user's
/// start/stop choices are written at once.
const PERSIST_EVERY: Duration = Duration::from_millis(250);

/// Messages handled together before one turn carries out what the engine
/// decided; bounded so that a flood of messages cannot delay the actions.
const BATCH: usize = 256;

pub struct Options {
    pub mode: Mode,
    /// The system as reloads check the config against (whether commands
    /// are checked, where files go by default): as `ward up` checked it.
    pub host: crate::host::LocalHost,
}

/// Who runs the daemon, and so where it speaks and what a hangup means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Attached to a terminal: program output and ward's notices go to
    /// stdout, and a hangup means the terminal is gone (stop everything;
    /// as PID 1, reload).
    Foreground,
    /// Detached: notices go to `ward.log`, a hangup reloads.
    Detached,
    /// Under a service manager (`ward service-run`): notices go to stderr
    /// (the journal), program output only to the log files, a hangup
    /// reloads.
    Service,
}

/// What a daemon needs before it runs, made before any thread exists (the
/// sentinel is forked here): the state dir's lock, the bound control
/// socket, process supervision. `ward up` makes it; so will a service
/// manager's entry point.
pub struct Prepared {
    config: Option<Config>,
    lock: StateLock,
    listener: Option<crate::transport::Listener>,
    supervision: Option<Supervision>,
    socket: PathBuf,
}

impl Prepared {
    /// Takes the lock, binds the socket, sets up supervision. Call while
    /// single-threaded.
    pub fn new(config: Config) -> Result<Prepared, String> {
        let lock = StateLock::acquire(
            &config.ward.state_dir,
            crate::state::state_dir_mode(&config),
        )?;
        let listener = crate::transport::bind(&config.ward.socket, config.ward.socket_mode)?;
        let supervision = crate::proc::init(crate::proc::InitOptions {
            name: format!("ward-{}", std::process::id()),
            no_cgroup: std::env::var_os("WARD_NO_CGROUP").is_some(),
        })
        .map_err(|e| format!("cannot set up process supervision: {e}"))?;
        Ok(Prepared {
            socket: config.ward.socket.clone(),
            config: Some(config),
            lock,
            listener: Some(listener),
            supervision: Some(supervision),
        })
    }

    /// Runs the daemon (on the runtime) until a shutdown finishes, serving
    /// people through `front` and telling `hooks` how it goes. Once.
    pub async fn run(
        &mut self,
        opts: Options,
        hooks: Box<dyn Hooks>,
        front: Front,
    ) -> std::io::Result<()> {
        let (Some(config), Some(listener), Some(supervision)) = (
            self.config.take(),
            self.listener.take(),
            self.supervision.take(),
        ) else {
            return Err(std::io::Error::other("the daemon has run already"));
        };
        run(
            config,
            self.lock.dir(),
            supervision,
            listener,
            opts,
            hooks,
            front,
        )
        .await
    }

    /// Lets go of the socket, then the lock (last: the next ward waits for
    /// it). Call once the runtime is down.
    pub fn release(self) {
        crate::transport::release(&self.socket);
        drop(self.lock);
    }
}

/// What serves people on the control socket (the API): given the daemon's
/// shared view, the bound listener, and a future that resolves when it
/// must stop; it finishes what it is answering, then its task ends.
pub type Front = Box<
    dyn FnOnce(
            Shared,
            crate::transport::Listener,
            std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
        ) -> tokio::task::JoinHandle<()>
        + Send,
>;

/// Runs the daemon until a shutdown finishes, telling `hooks` how it goes.
async fn run(
    config: Config,
    state_dir: Arc<Dir>,
    supervision: Supervision,
    listener: crate::transport::Listener,
    opts: Options,
    mut hooks: Box<dyn Hooks>,
    front: Front,
) -> std::io::Result<()> {
    let epoch = Instant::now();
    let state_path = state_dir.join("state.json");
    let (state, state_note) = StateFile::load(&state_dir);
    let pid1 = std::process::id() == 1;
    let hangup_stops = opts.mode == Mode::Foreground && !pid1;

    let (tx, rx) = mpsc::unbounded_channel::<Msg>();
    let console = (opts.mode == Mode::Foreground).then(|| Console::start(label_width(&config)));
    let voice = match (&console, opts.mode) {
        (Some(console), _) => Voice::console(console.clone()),
        (None, Mode::Service) if hooks.keeps_stderr() => Voice::stderr(),
        (None, _) => Voice::log(Arc::clone(&state_dir), waker(&tx)),
    };
    let spawner = supervision.start()?;
    let hub: LogHub = Default::default();
    let stats = crate::stats::Stats::default();
    let exec = Exec::new(spawner, tx.clone(), console, hub.clone(), stats.clone());
    let driver_tx = tx.clone();

    // What the user asked for, kept only for instances the config has.
    let restore = Restore {
        desired: state.desired_map(),
        next_run: state.next_run(),
    };
    // Programs that would start but that the user stopped (`ward stop`),
    // which stay stopped across restarts of ward: said, not silent.
    let left_stopped: Vec<String> = restore
        .desired
        .iter()
        .filter(|(id, desired)| {
            **desired == Desired::Down
                && config
                    .specs
                    .get(&id.program)
                    .is_some_and(|p| p.autostart && id.index < p.instances)
        })
        .map(|(id, _)| id.to_string())
        .collect();
    let seed = u64::from(std::process::id()) ^ epoch_nanos();
    let sup = Supervisor::new(config.specs.clone(), restore, seed, epoch.elapsed());
    let (snap_tx, snap_rx) = watch::channel(Arc::new(sup.snapshot()));
    let (dirs_tx, dirs_rx) = watch::channel(Arc::new(log_dirs(&config)));
    let (specs_tx, specs_rx) = watch::channel(Arc::new(config.specs.clone()));
    let bus = Bus::new(Arc::clone(&state_dir), stats.clone(), waker(&tx));
    let state_writer = state_writer(Arc::clone(&state_dir), waker(&tx));
    let shared = Shared {
        tx: tx.clone(),
        snapshot: snap_rx,
        epoch,
        events: bus.subscribe(),
        journal: bus.journal_path().to_path_buf(),
        lock: state_dir.join(crate::state::LOCK_FILE),
        logs: hub,
        log_dirs: dirs_rx,
        specs: specs_rx,
        trees_fallback: supervision.fallback_reason().map(str::to_string),
        stats,
    };
    let (api_stop, api_stopped) = oneshot::channel::<()>();
    let server = front(
        shared,
        listener,
        Box::pin(async {
            let _ = api_stopped.await;
        }),
    );

    let start = supervision.start_record();
    let mut driver = Driver {
        host: opts.host,
        start: Some(StartRecord {
            cgroup_root: start.cgroup_root,
            marker_prefix: start.marker_prefix,
        }),
        tx: driver_tx,
        sup,
        exec,
        bus,
        voice,
        config,
        epoch,
        state_path,
        snap_tx,
        dirs_tx,
        specs_tx,
        replies: HashMap::new(),
        reloading: HashMap::new(),
        next_token: 0,
        state_writer,
        last_saved: None,
        last_write: None,
        persist_at: None,
        save_failing: false,
        exit: false,
        hooks: Box::new(NoHooks),
        hangup_stops: false,
        stops: 0,
        told_ready: false,
        told_stopping: false,
        told_status: String::new(),
    };
    if let Some(note) = state_note {
        driver.notice(note);
    }
    if !left_stopped.is_empty() {
        driver.notice(format!(
            "left stopped, as `ward stop` asked before ward last ran: {}; `ward start NAME` starts one",
            left_stopped.join(", ")
        ));
    }
    if let Some(reason) = supervision.fallback_reason() {
        driver.notice(format!(
            "process trees are tracked by process group and environment marker, not cgroups: {reason}"
        ));
    }
    // What a previous start left behind if it died with its sentinel: its
    // whole cgroup root and marker (runs it never recorded included), then
    // the runs it recorded.
    let starts: Vec<Start> = state
        .starts
        .iter()
        .map(|r| Start {
            cgroup_root: r.cgroup_root.clone(),
            marker_prefix: r.marker_prefix.clone(),
        })
        .collect();
    let leftovers: Vec<crate::proc::TreeRecord> =
        state.live.iter().map(|r| r.tree.clone()).collect();
    let swept =
        crate::proc::sweep_starts(&starts, supervision.cgroups()) + crate::proc::sweep(&leftovers);
    if swept > 0 {
        driver.notice(format!(
            "killed {swept} processes left behind by a previous ward on this state dir"
        ));
    }
    // This start is on disk before its first spawn.
    driver.persist();

    // What the system asks of ward (signals; later a service manager)
    // arrives as messages.
    let control_tx = tx.clone();
    let handle = Handle::new(move |control| control_tx.send(Msg::Control(control)).is_ok());
    let signals = handle.clone();
    crate::proc::signals::listen(move |asked| {
        signals.send(match asked {
            crate::proc::signals::Asked::Stop => Control::Stop,
            crate::proc::signals::Asked::Hangup => Control::Hangup,
        })
    })?;
    hooks.attach(handle);
    driver.hooks = hooks;
    driver.hangup_stops = hangup_stops;

    driver.run(rx).await?;
    // Every run is over. What ward adopted and no run owns any more (a
    // descendant that left its group and cleared its environment, then
    // lost its parent) goes too: ward leaves nothing behind.
    let sentinel = supervision.sentinel_pid();
    if let Ok(strays) =
        tokio::task::spawn_blocking(move || crate::proc::end_adopted(sentinel, STRAY_GRACE)).await
    {
        if strays > 0 {
            driver.notice(if strays == 1 {
                "stopped 1 process that had left its program's tree (it was re-parented to ward)".into()
            } else {
                format!(
                    "stopped {strays} processes that had left their program's tree (they were re-parented to ward)"
                )
            });
        }
    }
    // What was deferred is written now: the runs are all over, and this
    // start leaves nothing for the next one to sweep.
    driver.start = None;
    driver.last_write = None;
    driver.persist_last().await;

    // Let the API finish what it is writing, then stop it.
    let _ = api_stop.send(());
    let mut server = server;
    if tokio::time::timeout(API_DRAIN, &mut server).await.is_err() {
        server.abort();
    }
    // The last writes: bounded, for a disk that hangs (ward still ends).
    let state_path = driver.state_path.display().to_string();
    let writes = [
        (driver.state_writer.finish(WRITE_DRAIN), state_path),
        (
            driver.bus.finish(WRITE_DRAIN),
            driver.bus.journal_path().display().to_string(),
        ),
        (driver.voice.finish(WRITE_DRAIN), "ward.log".to_string()),
    ];
    for (done, what) in writes {
        if !done {
            let _ = writeln!(
                std::io::stderr(),
                "ward: {what} was not fully written within {}s; ending anyway",
                WRITE_DRAIN.as_secs()
            );
        }
    }
    if let Some(console) = driver.voice.as_console() {
        // The last lines and notices reach the terminal before ward exits.
        console.flush(Duration::from_secs(1));
    }
    supervision.cleanup();
    Ok(())
}

struct Driver {
    /// What reloads check the config against.
    host: crate::host::LocalHost,
    /// This start, for the state file while it runs.
    start: Option<StartRecord>,
    /// The driver's own inbox, for work it hands to other tasks.
    tx: mpsc::UnboundedSender<Msg>,
    sup: Supervisor,
    exec: Exec,
    bus: Bus,
    voice: Voice,
    config: Config,
    epoch: Instant,
    /// state.json, for messages.
    state_path: PathBuf,
    snap_tx: watch::Sender<Arc<Snapshot>>,
    dirs_tx: watch::Sender<Arc<HashMap<String, PathBuf>>>,
    /// The programs as configured, for `ward status NAME`.
    specs_tx: watch::Sender<Arc<ward_core::SpecSet>>,
    replies: HashMap<Token, oneshot::Sender<Result<Reply, ApiError>>>,
    /// Configs of reloads the engine has not answered yet.
    reloading: HashMap<Token, Config>,
    next_token: u64,
    /// Writes state.json off the driver.
    state_writer: Worker<(StateFile, bool), Saved>,
    last_saved: Option<StateFile>,
    last_write: Option<Instant>,
    /// A deferred rewrite of state.json is due then.
    persist_at: Option<Instant>,
    save_failing: bool,
    exit: bool,
    /// Whatever runs ward (a service manager), told how it goes.
    hooks: Box<dyn Hooks>,
    /// A hangup stops everything (the foreground's terminal went away)
    /// rather than reloading.
    hangup_stops: bool,
    /// Stops asked so far: the second kills at once.
    stops: u32,
    /// `ready` was told since the start or the last reload.
    told_ready: bool,
    told_stopping: bool,
    told_status: String,
}

impl Driver {
    fn now(&self) -> ward_core::Time {
        self.epoch.elapsed()
    }

    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Msg>) -> std::io::Result<()> {
        let mut due_now = 0u32;
        let watchdog = self.hooks.watchdog_interval();
        let mut next_ping = watchdog.map(|every| tokio::time::Instant::now() + every);
        loop {
            self.turn();
            if self.exit {
                return Ok(());
            }
            // A timer already due fires now: tokio's timer would round it up
            // to its next millisecond tick (a restart without backoff would
            // wait that long). Bounded, so that messages are never starved.
            if due_now < 64 {
                let now = self.now();
                if self.sup.poll_timeout().is_some_and(|t| t <= now) {
                    due_now += 1;
                    self.sup.handle_timeout(now);
                    continue;
                }
            }
            due_now = 0;
            // A timer past the end of representable time never fires.
            let deadline = self
                .sup
                .poll_timeout()
                .and_then(|t| self.epoch.checked_add(t))
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                biased;
                msg = rx.recv() => match msg {
                    Some(msg) => {
                        self.on_msg(msg);
                        // What else has arrived goes into the same turn: one
                        // snapshot for a burst (a thousand programs starting)
                        // rather than one per message.
                        for _ in 0..BATCH {
                            match rx.try_recv() {
                                Ok(msg) => self.on_msg(msg),
                                Err(_) => break,
                            }
                        }
                    }
                    None => return Ok(()),
                },
                _ = sleep_until(deadline) => {
                    let now = self.now();
                    self.sup.handle_timeout(now);
                }
                // The next turn writes what was deferred.
                _ = sleep_until(self.persist_at.map(tokio::time::Instant::from_std)) => {}
                // ... and hands the journal's and ward.log's lines over.
                _ = sleep_until(
                    [self.bus.due(), self.voice.due()]
                        .into_iter()
                        .flatten()
                        .min()
                        .map(tokio::time::Instant::from_std)
                ) => {}
                // Pinged from this loop: a driver that is stuck stops pinging.
                _ = sleep_until(next_ping) => {
                    self.hooks.watchdog();
                    next_ping = watchdog.map(|every| tokio::time::Instant::now() + every);
                }
            }
        }
    }

    /// What was asked from outside (a signal, a service manager).
    fn control(&mut self, control: Control) {
        match control {
            Control::Stop => self.stop_everything(),
            Control::Hangup if self.hangup_stops => {
                // The terminal went away: nobody is left to watch.
                self.stop_everything();
            }
            Control::Hangup => {
                let (reply, _) = oneshot::channel();
                self.reload(false, reply);
            }
        }
    }

    /// Tells whatever runs ward that it is stopping (once, however the
    /// shutdown was asked: a signal, `ward down`, a service manager), the
    /// summary when it changed, and that ward is ready once nothing is on
    /// its way any more.
    fn tell(&mut self) {
        if self.sup.shutting_down() && !self.told_stopping {
            self.told_stopping = true;
            self.hooks.stopping();
        }
        let snapshot = self.snap_tx.borrow().clone();
        let summary = crate::hooks::summary(&snapshot);
        if summary != self.told_status {
            self.hooks.status(&summary);
            self.told_status = summary;
        }
        if !self.told_ready && !self.sup.shutting_down() && snapshot.settled() {
            self.told_ready = true;
            self.hooks.ready();
        }
    }

    /// Carries out everything the engine decided, then publishes the new
    /// snapshot (before any reply or event leaves, so whoever reacts to one
    /// reads the state it describes) and persists what must survive.
    fn turn(&mut self) {
        let mut actions = Vec::new();
        while let Some(action) = self.sup.poll_action() {
            actions.push(action);
        }
        let changed = actions
            .iter()
            .any(|a| matches!(a, Action::Publish(_) | Action::Refresh));
        // Someone was answered (and may look at the journal next): this
        // turn's lines go to the writers at once, not batched with later ones.
        let answered = actions
            .iter()
            .any(|a| matches!(a, Action::Reply { .. } | Action::Exit));
        if changed {
            let _ = self.snap_tx.send(Arc::new(self.sup.snapshot()));
        }
        for action in actions {
            match action {
                Action::Spawn {
                    id,
                    run,
                    launch,
                    logs,
                } => self.exec.spawn(id, run, launch, logs),
                Action::Signal {
                    id,
                    run,
                    signal,
                    main_only,
                } => self.exec.signal(&id, run, signal, main_only),
                Action::StopCommand {
                    id,
                    run,
                    command,
                    main_pid,
                    within,
                } => self.exec.stop_command(&id, run, command, main_pid, within),
                Action::SignalMain { id, run, signal } => self.exec.signal_main(&id, run, signal),
                Action::SignalTree { id, run, signal } => self.exec.signal_tree(&id, run, signal),
                Action::KillTree { id, run } => self.exec.kill_tree(&id, run),
                Action::Reply { token, result } => {
                    self.reload_answered(
                        token,
                        matches!(result, Ok(Reply::Reloaded { dry_run: false, .. })),
                    );
                    if let Some(reply) = self.replies.remove(&token) {
                        let _ = reply.send(result.map_err(ApiError::Request));
                    }
                }
                Action::Publish(event) => self.publish(event),
                Action::Release { id } => self.exec.release(&id),
                Action::Refresh => {}
                Action::Exit => self.exit = true,
            }
        }
        if let Some(message) = self.bus.flush(answered) {
            self.notice(message);
        }
        if let Some(message) = self.voice.flush(answered) {
            self.notice(message);
        }
        self.persist();
        // Only a new snapshot can change what whatever runs ward is told.
        if changed {
            self.tell();
        }
    }

    fn on_msg(&mut self, msg: Msg) {
        let now = self.now();
        match msg {
            Msg::Input(input) => {
                if let Input::Exited {
                    id,
                    run,
                    tree_alive: false,
                    ..
                }
                | Input::TreeGone { id, run }
                | Input::SpawnFailed { id, run, .. } = &input
                {
                    self.exec.ended(id, *run);
                }
                self.sup.handle(now, input);
            }
            Msg::Request {
                ask: Ask::Engine(request),
                reply,
            } => {
                self.request(request, reply);
            }
            Msg::Request {
                ask: Ask::Reload { dry_run },
                reply,
            } => self.reload(dry_run, reply),
            Msg::ConfigLoaded {
                result,
                dry_run,
                reply,
            } => self.config_loaded(*result, dry_run, reply),
            Msg::RunStarted {
                id,
                run,
                tree,
                record,
            } => self.exec.started(&id, run, tree, record),
            Msg::Event(event) => self.publish(event),
            // The turn that follows says what the writers reported.
            Msg::Wake => {}
            Msg::Control(control) => self.control(control),
        }
    }

    fn request(
        &mut self,
        request: Request,
        reply: oneshot::Sender<Result<Reply, ApiError>>,
    ) -> Token {
        self.next_token += 1;
        let token = Token(self.next_token);
        self.replies.insert(token, reply);
        let now = self.now();
        self.sup.handle(now, Input::Request { token, request });
        token
    }

    /// Re-reads the config file, on the blocking pool: reading it (and the
    /// env files it names) must never hold up the driver. The result comes
    /// back as [`Msg::ConfigLoaded`].
    fn reload(&mut self, dry_run: bool, reply: oneshot::Sender<Result<Reply, ApiError>>) {
        if self.sup.shutting_down() {
            let _ = reply.send(Err(ApiError::Request(RequestError::ShuttingDown)));
            return;
        }
        let path = self.config.path.clone();
        let tx = self.tx.clone();
        let host = self.host.clone();
        tokio::task::spawn_blocking(move || {
            let result = Box::new(ward_config::load_with(&path, &host));
            let _ = tx.send(Msg::ConfigLoaded {
                result,
                dry_run,
                reply,
            });
        });
    }

    /// A config file with errors is rejected whole and nothing changes; a
    /// good one goes to the engine as a Reload.
    fn config_loaded(
        &mut self,
        result: Result<Config, ward_config::Diagnostics>,
        dry_run: bool,
        reply: oneshot::Sender<Result<Reply, ApiError>>,
    ) {
        if self.sup.shutting_down() {
            let _ = reply.send(Err(ApiError::Request(RequestError::ShuttingDown)));
            return;
        }
        let new = match result {
            Ok(new) => new,
            Err(diags) => {
                if !dry_run {
                    self.publish(Event {
                        instance: None,
                        run: None,
                        kind: EventKind::ReloadRejected {
                            errors: diags.items.iter().map(|d| d.one_line()).collect(),
                        },
                    });
                }
                let errors = diags.items.iter().map(|d| d.to_string()).collect();
                let _ = reply.send(Err(ApiError::Config(errors)));
                return;
            }
        };
        let specs = new.specs.clone();
        let token = self.request(Request::Reload { specs, dry_run }, reply);
        if !dry_run {
            // The shell's copies follow once the engine has taken it.
            self.reloading.insert(token, new);
        }
    }

    /// The engine answered a reload: if it took the new config, the shell
    /// takes it too (its log dirs, its specs for the API, the console's
    /// width), and whatever runs ward hears that a reload is under way
    /// (`ready` follows once it has settled).
    fn reload_answered(&mut self, token: Token, accepted: bool) {
        let Some(new) = self.reloading.remove(&token) else {
            return;
        };
        if !accepted {
            return;
        }
        self.hooks.reloading();
        self.told_ready = false;
        if new.ward.state_dir != self.config.ward.state_dir
            || new.ward.socket != self.config.ward.socket
        {
            self.notice("changes to state_dir or socket take effect when ward restarts".into());
        }
        let _ = self.dirs_tx.send(Arc::new(log_dirs(&new)));
        let _ = self.specs_tx.send(Arc::new(new.specs.clone()));
        if let Some(console) = self.voice.as_console() {
            console.set_width(label_width(&new));
        }
        self.config = new;
    }

    /// SIGINT/SIGTERM (and a hangup in the foreground): the first stops
    /// everything gracefully; another one asks the engine to kill every
    /// tree at once.
    fn stop_everything(&mut self) {
        self.stops += 1;
        self.notice(if self.stops == 1 {
            "stopping every program (again to kill them at once)".into()
        } else {
            "killing every program".into()
        });
        let (reply, _) = oneshot::channel();
        self.request(Request::Shutdown, reply);
    }

    /// `"api:0" → down` for every instance whose desired state is not what
    /// its config's `autostart` gives: the user's start/stop choices, which
    /// state.json keeps. Derived from the engine, so a program removed or
    /// added by a reload carries no stale choice.
    fn choices(&self) -> BTreeMap<String, Desired> {
        let snapshot = self.snap_tx.borrow().clone();
        let specs = self.sup.specs();
        snapshot
            .instances
            .iter()
            .filter_map(|view| {
                let spec = specs.get(&view.id.program)?;
                let default = if spec.autostart {
                    Desired::Up
                } else {
                    Desired::Down
                };
                (view.desired != default).then(|| (view.id.to_string(), view.desired))
            })
            .collect()
    }

    fn publish(&mut self, event: Event) {
        let stamped = self.bus.publish(event);
        self.voice.event(&stamped.ts, &stamped.event);
        if let EventKind::Fatal { .. } = &stamped.event.kind {
            if let Some((_, text)) = crate::voice::text(&stamped.event) {
                self.hooks.alert(&text);
            }
        }
    }

    fn notice(&mut self, message: String) {
        self.publish(Event {
            instance: None,
            run: None,
            kind: EventKind::Notice { message },
        });
    }

    /// Hands state.json to its writer when what it holds changed. The user's
    /// choices go at once (written durably); the live runs at most every
    /// [`PERSIST_EVERY`]. A writer that is behind gets the newest document
    /// next turn; a failed write is said once (and its end too) and tried
    /// again.
    fn persist(&mut self) {
        for saved in self.state_writer.take_reports() {
            let path = self.state_path.display().to_string();
            match saved {
                Saved::Failed(e) => {
                    // Written again from scratch, a little later.
                    self.last_saved = None;
                    self.persist_at = Some(Instant::now() + PERSIST_EVERY);
                    if !std::mem::replace(&mut self.save_failing, true) {
                        self.notice(format!(
                            "cannot write {path}: {e}; what you start and stop is not remembered until it can be"
                        ));
                    }
                }
                Saved::Recovered => {
                    if std::mem::take(&mut self.save_failing) {
                        self.notice(format!("{path} is writable again"));
                    }
                }
            }
        }
        let doc = StateFile {
            version: 0,
            next_run: self.sup.next_run().0,
            desired: self.choices(),
            live: self.exec.live_records(),
            starts: self.start.iter().cloned().collect(),
        };
        if self.last_saved.as_ref() == Some(&doc) {
            self.persist_at = None;
            return;
        }
        let choices_changed = self
            .last_saved
            .as_ref()
            .is_none_or(|last| last.desired != doc.desired);
        if let Some(last) = self.last_write {
            if !choices_changed && last.elapsed() < PERSIST_EVERY {
                self.persist_at.get_or_insert(last + PERSIST_EVERY);
                return;
            }
        }
        match self.state_writer.offer((doc.clone(), choices_changed)) {
            Ok(()) => {
                self.last_write = Some(Instant::now());
                self.persist_at = None;
                self.last_saved = Some(doc);
            }
            // The writer is behind (a slow disk): the newest document goes
            // next time.
            Err(_) => {
                self.persist_at = Some(Instant::now() + PERSIST_EVERY);
            }
        }
    }
}

impl Driver {
    /// The last state.json of this ward, handed to its writer even when it
    /// is behind: tried until [`WRITE_DRAIN`] has passed.
    async fn persist_last(&mut self) {
        let until = Instant::now() + WRITE_DRAIN;
        loop {
            self.persist();
            if self.persist_at.is_none() || self.save_failing || Instant::now() >= until {
                return;
            }
            self.last_write = None;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// What the state writer reports: a write failed, or works again.
enum Saved {
    Failed(String),
    Recovered,
}

/// The thread that writes state.json: the newest documents, in order.
fn state_writer(
    dir: Arc<Dir>,
    wake: impl Fn() + Send + 'static,
) -> Worker<(StateFile, bool), Saved> {
    let mut failing = false;
    // A few documents may wait: each is the newest when it was offered.
    Worker::start(
        "state",
        2,
        wake,
        move |(doc, durable): (StateFile, bool)| match doc.save(&dir, durable) {
            Ok(()) => std::mem::take(&mut failing).then_some(Saved::Recovered),
            Err(e) => {
                failing = true;
                Some(Saved::Failed(e.to_string()))
            }
        },
    )
}

/// Something a writer thread calls to have the driver say its reports.
fn waker(tx: &mpsc::UnboundedSender<Msg>) -> impl Fn() + Send + 'static {
    let tx = tx.clone();
    move || {
        let _ = tx.send(Msg::Wake);
    }
}

/// The width of the longest `name:index` label, for the console.
fn label_width(config: &Config) -> usize {
    config
        .specs
        .programs
        .values()
        .map(|p| p.name.len() + 1 + p.instances.saturating_sub(1).to_string().len())
        .max()
        .unwrap_or(0)
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
