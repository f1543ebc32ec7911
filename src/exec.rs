//! Carries out the engine's process actions, and turns what happens to each
//! run into inputs for the engine.
//!
//! Each spawn gets one task (`run_task`) that owns the run from fork to the
//! end of its tree: it drains the output (through the log pump), waits for
//! the leader, then for the rest of the tree, and reports `Spawned`,
//! `Exited` and `TreeGone` in that order, each stamped with the run's id.
//! Only the driver task touches `Exec`, so no locks guard this state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};
use ward_core::{Event, EventKind, Input, InstanceId, LaunchSpec, LogSpec, RunId, Signal};

use crate::inbox::{LogHub, Msg};
use crate::logs::{self, Console, InstanceLog, RunLabel, Sinks};
use crate::proc::{self, Launch, Spawner, Tree};
use crate::state::LiveRecord;

/// How long a run's task waits, once the tree is gone, for the log pump to
/// reach EOF. Only a process outside the tree still holding the pipe can
/// make it wait this long; the pump then keeps draining on its own.
const PUMP_GRACE: Duration = Duration::from_secs(2);

pub struct Exec {
    spawner: Spawner,
    tx: mpsc::UnboundedSender<Msg>,
    console: Option<Console>,
    hub: LogHub,
    /// Where the pumps count lines and bytes.
    stats: crate::stats::Stats,
    instances: HashMap<InstanceId, InstanceRt>,
    /// journald, once a program sends its output there.
    journald: Journald,
}

/// The way to journald, found when the first program needs it.
enum Journald {
    Unknown,
    Here(Arc<ward_service::journal::Journal>),
    /// Not reachable (said once).
    Absent,
}

struct InstanceRt {
    log: Arc<Mutex<InstanceLog>>,
    log_spec: Arc<LogSpec>,
    run: Option<RunRt>,
}

struct RunRt {
    run: RunId,
    /// How it was started: a stop command runs the same way.
    launch: Arc<LaunchSpec>,
    /// None until the spawn task reports the process; operations asked for
    /// before that wait in `pending` (a stop can arrive mid-spawn).
    tree: Option<(Tree, LiveRecord)>,
    pending: Vec<TreeOp>,
}

#[derive(Clone, Copy)]
enum TreeOp {
    /// A stop's signal: to the whole tree, or the main process only.
    Stop {
        sig: proc::Signal,
        main_only: bool,
    },
    SignalMain(proc::Signal),
    /// A user's signal to every process of the tree.
    SignalTree(proc::Signal),
    Kill,
}

impl Exec {
    pub fn new(
        spawner: Spawner,
        tx: mpsc::UnboundedSender<Msg>,
        console: Option<Console>,
        hub: LogHub,
        stats: crate::stats::Stats,
    ) -> Exec {
        Exec {
            spawner,
            tx,
            console,
            hub,
            stats,
            instances: HashMap::new(),
            journald: Journald::Unknown,
        }
    }

    pub fn spawn(
        &mut self,
        id: InstanceId,
        run: RunId,
        launch: Arc<LaunchSpec>,
        logs: Arc<LogSpec>,
    ) {
        let journal = if logs.journald { self.journald() } else { None };
        // A run's log file lives as long as the instance's log settings. It
        // is opened by the run task, off the driver: an open can block (a
        // hung disk), and the driver must not.
        if self.instances.get(&id).is_none_or(|rt| rt.log_spec != logs) {
            let log = InstanceLog::new(&id.program, id.index, &logs);
            self.instances.insert(
                id.clone(),
                InstanceRt {
                    log: Arc::new(Mutex::new(log)),
                    log_spec: logs.clone(),
                    run: None,
                },
            );
        }
        let Some(rt) = self.instances.get_mut(&id) else {
            return;
        };
        rt.run = Some(RunRt {
            run,
            launch: launch.clone(),
            tree: None,
            pending: Vec::new(),
        });
        let follow = self
            .hub
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(id.clone())
            .or_insert_with(|| broadcast::channel(crate::inbox::FOLLOW_CHUNKS).0)
            .clone();
        let counters = self.stats.log_counters(&id);
        let ctx = RunCtx {
            id,
            run,
            launch,
            log: rt.log.clone(),
            follow,
            counters,
            console: self.console.clone(),
            journal,
            spawner: self.spawner.clone(),
            tx: self.tx.clone(),
        };
        tokio::spawn(run_task(ctx));
    }

    /// The connection to journald, made once (a socket and no wait);
    /// `None`, said once, where there is none.
    fn journald(&mut self) -> Option<Arc<ward_service::journal::Journal>> {
        if let Journald::Unknown = self.journald {
            self.journald = match ward_service::journal::Journal::connect() {
                Ok(journal) => Journald::Here(Arc::new(journal)),
                Err(e) => {
                    let _ = self.tx.send(Msg::Event(Event {
                        instance: None,
                        run: None,
                        kind: EventKind::Notice {
                            message: format!(
                                "cannot send output to journald ({}: {e}); programs with \
                                 logs.journald = true write to their files only",
                                ward_service::journal::SOCKET
                            ),
                        },
                    }));
                    Journald::Absent
                }
            };
        }
        match &self.journald {
            Journald::Here(journal) => Some(Arc::clone(journal)),
            _ => None,
        }
    }

    /// The spawn task found the process: apply what was asked meanwhile.
    pub fn started(&mut self, id: &InstanceId, run: RunId, tree: Tree, record: LiveRecord) {
        let Some(rt) = self.current(id, run) else {
            return;
        };
        let pending = std::mem::take(&mut rt.pending);
        rt.tree = Some((tree.clone(), record));
        for op in pending {
            self.apply(id, run, &tree, op);
        }
    }

    /// The run is over (its tree is gone): forget it.
    pub fn ended(&mut self, id: &InstanceId, run: RunId) {
        if let Some(rt) = self.instances.get_mut(id) {
            if rt.run.as_ref().is_some_and(|r| r.run == run) {
                rt.run = None;
            }
        }
    }

    /// A stop by the program's `stop_command` instead of its signal: the
    /// command runs with the program's working directory, environment and
    /// account, and `WARD_MAIN_PID` (the main process), in a tree of its
    /// own (ended once it exits, or at `stop_timeout`). Its failure is
    /// said; the engine's deadline ends the program's tree either way.
    pub fn stop_command(
        &mut self,
        id: &InstanceId,
        run: RunId,
        argv: Vec<String>,
        main_pid: u32,
        limit: std::time::Duration,
    ) {
        let Some(rt) = self.current(id, run) else {
            return;
        };
        let program = &rt.launch;
        let mut env = launch_env(id, run, program);
        env.push(("WARD_MAIN_PID".to_string(), main_pid.to_string()));
        let launch = Launch {
            argv,
            cwd: program.cwd.clone(),
            env,
            user: program.user.clone(),
            group: program.group.clone(),
            tree_name: format!("{}.{}.r{}.stop", id.program, id.index, run.0),
        };
        let (spawner, tx, id) = (self.spawner.clone(), self.tx.clone(), id.clone());
        tokio::spawn(async move {
            if let Err(message) = run_stop_command(&spawner, launch, limit).await {
                let _ = tx.send(Msg::Event(Event {
                    instance: Some(id),
                    run: Some(run),
                    kind: EventKind::Notice {
                        message: format!("{message}; the stop goes on to its deadline"),
                    },
                }));
            }
        });
    }

    /// A stop's signal (and the SIGCONT after it).
    pub fn signal(&mut self, id: &InstanceId, run: RunId, sig: Signal, main_only: bool) {
        let sig = to_proc(sig);
        self.tree_op(id, run, TreeOp::Stop { sig, main_only });
    }

    pub fn signal_main(&mut self, id: &InstanceId, run: RunId, sig: Signal) {
        self.tree_op(id, run, TreeOp::SignalMain(to_proc(sig)));
    }

    pub fn signal_tree(&mut self, id: &InstanceId, run: RunId, sig: Signal) {
        self.tree_op(id, run, TreeOp::SignalTree(to_proc(sig)));
    }

    pub fn kill_tree(&mut self, id: &InstanceId, run: RunId) {
        self.tree_op(id, run, TreeOp::Kill);
    }

    /// An instance the engine has let go of (removed from the config,
    /// nothing of it running): its log file and followers go too.
    pub fn release(&mut self, id: &InstanceId) {
        self.instances.remove(id);
        self.hub
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(id);
    }

    /// The live processes, for the state file.
    pub fn live_records(&self) -> Vec<LiveRecord> {
        let mut records: Vec<LiveRecord> = self
            .instances
            .values()
            .filter_map(|rt| rt.run.as_ref()?.tree.as_ref().map(|(_, rec)| rec.clone()))
            .collect();
        records.sort_by(|a, b| a.instance.cmp(&b.instance));
        records
    }

    fn tree_op(&mut self, id: &InstanceId, run: RunId, op: TreeOp) {
        let Some(rt) = self.current(id, run) else {
            return;
        };
        match &rt.tree {
            Some((tree, _)) => {
                let tree = tree.clone();
                self.apply(id, run, &tree, op)
            }
            None => rt.pending.push(op),
        }
    }

    /// Signals and kills run on the blocking pool: without cgroups a
    /// tree's members are found by scanning /proc, and on Windows a
    /// console event is sent by a helper process; neither may hold up the
    /// driver. A signal that fails while the tree is still there is said
    /// (a Windows console event that cannot reach its program, say); one
    /// that fails because the tree is gone is not: the run task reports
    /// the end on its own.
    fn apply(&self, id: &InstanceId, run: RunId, tree: &Tree, op: TreeOp) {
        let tree = tree.clone();
        let tx = self.tx.clone();
        let id = id.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = apply_now(&tree, op) {
                if tree.is_empty().is_ok_and(|empty| !empty) {
                    let _ = tx.send(Msg::Event(Event {
                        instance: Some(id),
                        run: Some(run),
                        kind: EventKind::Notice {
                            message: format!("{e}; the stop goes on to its deadline"),
                        },
                    }));
                }
            }
        });
    }

    fn current(&mut self, id: &InstanceId, run: RunId) -> Option<&mut RunRt> {
        self.instances
            .get_mut(id)?
            .run
            .as_mut()
            .filter(|r| r.run == run)
    }
}

/// Runs a `stop_command` to its end (at most `limit`), keeping the last
/// few KiB of its output for a message; whatever it left running goes.
async fn run_stop_command(
    spawner: &Spawner,
    launch: Launch,
    limit: std::time::Duration,
) -> Result<(), String> {
    use tokio::io::AsyncReadExt;
    let program = launch.argv[0].clone();
    let mut child = spawner
        .spawn(launch)
        .await
        .map_err(|e| format!("the stop command failed to start: {e}"))?;
    let tree = child.tree.clone();
    let keep_tail = |pipe: Option<proc::Output>| {
        tokio::spawn(async move {
            let mut kept: Vec<u8> = Vec::new();
            if let Some(mut pipe) = pipe {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    kept.extend_from_slice(&buf[..n]);
                    let over = kept.len().saturating_sub(4096);
                    kept.drain(..over);
                }
            }
            kept
        })
    };
    let (out, err) = match child.output() {
        Ok((out, err)) => (Some(out), Some(err)),
        Err(_) => (None, None),
    };
    let (out, err) = (keep_tail(out), keep_tail(err));
    let ended = tokio::time::timeout(limit, &mut child.exit).await;
    let ender = tree.clone();
    let _ = tokio::task::spawn_blocking(move || {
        ender.kill();
        ender.cleanup();
    })
    .await;
    let said = |task: tokio::task::JoinHandle<Vec<u8>>| async move {
        let bytes = tokio::time::timeout(std::time::Duration::from_secs(1), task)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(str::to_string)
    };
    let last = match said(err).await {
        Some(line) => Some(line),
        None => said(out).await,
    };
    let how = match ended {
        Ok(Ok(proc::Exit::Code(0))) => return Ok(()),
        Ok(Ok(exit)) => crate::voice::describe(&to_core(exit)),
        Ok(Err(_)) => "no exit status".to_string(),
        Err(_) => format!("still running after stop_timeout ({limit:?}); ended"),
    };
    Err(match last {
        Some(line) => format!("the stop command {program} failed ({how}): {line}"),
        None => format!("the stop command {program} failed ({how})"),
    })
}

/// The engine's signal, as `proc` names it.
fn to_proc(sig: Signal) -> proc::Signal {
    match sig {
        Signal::Hup => proc::Signal::Hup,
        Signal::Int => proc::Signal::Int,
        Signal::Quit => proc::Signal::Quit,
        Signal::Abrt => proc::Signal::Abrt,
        Signal::Kill => proc::Signal::Kill,
        Signal::Usr1 => proc::Signal::Usr1,
        Signal::Usr2 => proc::Signal::Usr2,
        Signal::Alrm => proc::Signal::Alrm,
        Signal::Term => proc::Signal::Term,
        Signal::Cont => proc::Signal::Cont,
        Signal::Stop => proc::Signal::Stop,
        Signal::Tstp => proc::Signal::Tstp,
        Signal::Winch => proc::Signal::Winch,
        Signal::CtrlC => proc::Signal::CtrlC,
        Signal::CtrlBreak => proc::Signal::CtrlBreak,
    }
}

/// How a process ended, as the engine takes it.
fn to_core(exit: proc::Exit) -> ward_core::ExitStatus {
    match exit {
        proc::Exit::Code(code) => ward_core::ExitStatus::Code { code },
        proc::Exit::Signal {
            number,
            core_dumped,
        } => ward_core::ExitStatus::Signal {
            signal: number,
            core_dumped,
        },
    }
}

fn apply_now(tree: &Tree, op: TreeOp) -> std::io::Result<()> {
    match op {
        // The engine's tree-wide signal is the stop signal: a stopped
        // process is continued to receive it.
        TreeOp::Stop {
            sig,
            main_only: false,
        } => tree.signal_stop(sig),
        TreeOp::Stop {
            sig,
            main_only: true,
        } => tree.signal_stop_leader(sig),
        TreeOp::SignalMain(sig) => tree.signal_leader(sig),
        TreeOp::SignalTree(sig) => tree.signal(sig),
        TreeOp::Kill => {
            tree.kill();
            Ok(())
        }
    }
}

struct RunCtx {
    id: InstanceId,
    run: RunId,
    launch: Arc<LaunchSpec>,
    log: Arc<Mutex<InstanceLog>>,
    follow: broadcast::Sender<Bytes>,
    counters: Arc<crate::stats::LogCounters>,
    console: Option<Console>,
    journal: Option<Arc<ward_service::journal::Journal>>,
    spawner: Spawner,
    tx: mpsc::UnboundedSender<Msg>,
}

async fn run_task(ctx: RunCtx) {
    let RunCtx {
        id,
        run,
        launch,
        log,
        follow,
        counters,
        console,
        journal,
        spawner,
        tx,
    } = ctx;
    let input = |input: Input| {
        let _ = tx.send(Msg::Input(input));
    };
    let launch_req = Launch {
        argv: launch.argv.clone(),
        cwd: launch.cwd.clone(),
        env: launch_env(&id, run, &launch),
        user: launch.user.clone(),
        group: launch.group.clone(),
        tree_name: format!("{}.{}.r{}", id.program, id.index, run.0),
    };
    open_log(&log, &id, run, &tx).await;
    let mut child = match spawner.spawn(launch_req).await {
        Ok(child) => child,
        Err(e) => {
            input(Input::SpawnFailed {
                id,
                run,
                error: e.to_string(),
            });
            return;
        }
    };
    if let Some(warning) = &child.warning {
        let _ = tx.send(Msg::Event(Event {
            instance: Some(id.clone()),
            run: Some(run),
            kind: EventKind::Notice {
                message: warning.clone(),
            },
        }));
    }
    let pid = child.pid;
    let tree = child.tree.clone();
    let record = LiveRecord {
        instance: id.to_string(),
        run: run.0,
        tree: tree.record(pid),
    };
    let _ = tx.send(Msg::RunStarted {
        id: id.clone(),
        run,
        tree: tree.clone(),
        record,
    });
    input(Input::Spawned {
        id: id.clone(),
        run,
        pid,
    });

    let pump = match child.output() {
        Ok((stdout, stderr)) => {
            let drop_tx = tx.clone();
            let drop_id = id.clone();
            let label = RunLabel {
                program: id.program.clone(),
                index: id.index,
                run: run.0,
                pid,
            };
            let sinks = Sinks {
                console,
                follow,
                counters,
                journal: journal.map(|journal| logs::JournalSink::new(journal, &label)),
                on_drop: Arc::new(move |lines, reason| {
                    let _ = drop_tx.send(Msg::Event(Event {
                        instance: Some(drop_id.clone()),
                        run: Some(run),
                        kind: EventKind::LogLinesDropped { lines, reason },
                    }));
                }),
            };
            Some(tokio::spawn(logs::pump(log, label, stdout, stderr, sinks)))
        }
        Err(e) => {
            // The pipes could not join the event loop: the child would block
            // on a full pipe, so it cannot be run.
            let _ = tx.send(Msg::Event(Event {
                instance: Some(id.clone()),
                run: Some(run),
                kind: EventKind::Notice {
                    message: format!("cannot read the program's output ({e}); killing it"),
                },
            }));
            tree.kill();
            None
        }
    };

    // No status from the reaper (it is gone): the run ended all the same.
    let status = to_core(child.exit.await.unwrap_or(proc::Exit::Signal {
        number: proc::signal_number(proc::Signal::Kill),
        core_dumped: false,
    }));
    // A tree that cannot be read is not taken for empty: that would end a
    // stop with processes left running. Said once when reading starts to
    // fail, and once when it works again.
    let mut unreadable = false;
    let mut read = |outcome: Option<&std::io::Error>| {
        let message = match (outcome, unreadable) {
            (Some(e), false) => format!(
                "cannot tell whether this run's processes are gone ({e}); \
                 ward keeps trying and treats them as alive meanwhile"
            ),
            (None, true) => "this run's processes can be seen again".to_string(),
            _ => return,
        };
        unreadable = outcome.is_some();
        let _ = tx.send(Msg::Event(Event {
            instance: Some(id.clone()),
            run: Some(run),
            kind: EventKind::Notice { message },
        }));
    };
    let empty = tree.is_empty();
    read(empty.as_ref().err());
    if let Ok(true) = empty {
        drain(pump).await;
        input(Input::Exited {
            id,
            run,
            status,
            tree_alive: false,
        });
    } else {
        input(Input::Exited {
            id: id.clone(),
            run,
            status,
            tree_alive: true,
        });
        tree.gone(&mut read).await;
        drain(pump).await;
        input(Input::TreeGone { id, run });
    }
    tree.cleanup();
}

/// Opens the instance's log file (if it is not open) on the blocking pool,
/// and says so when it cannot be: the run starts anyway, and its output is
/// dropped (and counted) until the file can be opened. A file that is open
/// already (every restart but the first) costs no hop to the pool; a log
/// whose lock is busy (a pump writing) is checked on the pool, where
/// waiting for it blocks nothing else.
async fn open_log(
    log: &Arc<Mutex<InstanceLog>>,
    id: &InstanceId,
    run: RunId,
    tx: &mpsc::UnboundedSender<Msg>,
) {
    // Open already, or no files at all (`logs.files = false`).
    if log
        .try_lock()
        .is_ok_and(|log| log.is_open() || !log.spec().files)
    {
        return;
    }
    let log = Arc::clone(log);
    let failed = tokio::task::spawn_blocking(move || {
        let mut log = logs::lock(&log);
        if !log.spec().files {
            return None;
        }
        // Said once while the same error lasts, not at every restart.
        let before = log.error().map(|e| e.to_string());
        match log.ensure_open() {
            Err(e) if before.as_deref() != Some(&e.to_string()) => {
                Some((log.path().to_path_buf(), e))
            }
            _ => None,
        }
    })
    .await;
    if let Ok(Some((path, e))) = failed {
        let _ = tx.send(Msg::Event(Event {
            instance: Some(id.clone()),
            run: Some(run),
            kind: EventKind::Notice {
                message: format!(
                    "cannot open log file {}: {e}; output is dropped (and counted) until it can",
                    path.display()
                ),
            },
        }));
    }
}

/// Lines written just before an exit are in the pipe: read them all before
/// the exit is reported.
async fn drain(pump: Option<tokio::task::JoinHandle<logs::PumpStats>>) {
    if let Some(pump) = pump {
        let _ = tokio::time::timeout(PUMP_GRACE, pump).await;
    }
}

/// What every program finds in its environment besides its own settings.
fn launch_env(id: &InstanceId, run: RunId, launch: &LaunchSpec) -> Vec<(String, String)> {
    let mut env = vec![
        ("WARD_PROGRAM".to_string(), id.program.to_string()),
        ("WARD_INSTANCE".to_string(), id.index.to_string()),
        ("WARD_RUN".to_string(), run.0.to_string()),
    ];
    env.extend(launch.env.iter().cloned());
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_of_the_engine_reaches_the_system_by_its_name() {
        for sig in Signal::ALL
            .into_iter()
            .filter(|s| proc::check_signal(*s).is_ok())
        {
            let number = proc::signal_number(to_proc(sig));
            assert_eq!(proc::signal_name(number), Some(sig.name()), "{sig:?}");
        }
    }
}
