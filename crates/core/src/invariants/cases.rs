//! Generated cases: program sets built from a few numbers, restored
//! states, and the steps of the world. The property tests and the fuzz
//! targets generate these, each in its own way.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::Restore;
use crate::model::{Desired, InstanceId, RunId};
use crate::spec::{
    BackoffSpec, Condition, LaunchSpec, LogFormat, LogSpec, ProgramSpec, RestartPolicy, Signal,
    SpecSet, StartLimit, StopMode,
};

// ----- programs -----

/// Program `i` of a generated set is named `p{i}`.
pub fn program_name(i: usize) -> String {
    format!("p{i}")
}

/// One generated program: the settings that matter to the engine. Every
/// other setting is a fixed plain value.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub instances: u32,
    pub autostart: bool,
    pub restart: RestartPolicy,
    pub backoff: BackoffSpec,
    pub start_limit: StartLimit,
    pub min_uptime: Duration,
    pub stop_timeout: Duration,
    /// Bit `j`: depends on program `j`. Only programs before this one
    /// count, so a generated set has no cycle.
    pub deps_mask: u8,
    /// Bit `j`: that dependency is `completed` rather than `started`.
    pub completed_mask: u8,
    /// Picks the command line: a change across a reload restarts.
    pub argv: u8,
    /// Rotated log files kept: a change across a reload restarts.
    pub keep: u32,
    /// Exit code 2 is a success too.
    pub extra_success: bool,
}

/// The program set of `shapes`, named by [`program_name`].
pub fn build(shapes: &[Shape]) -> SpecSet {
    let programs = shapes
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            let name = program_name(i);
            let mut depends_on = BTreeMap::new();
            for j in 0..i.min(8) {
                if shape.deps_mask & (1 << j) != 0 {
                    let cond = if shape.completed_mask & (1 << j) != 0 {
                        Condition::Completed
                    } else {
                        Condition::Started
                    };
                    depends_on.insert(program_name(j), cond);
                }
            }
            let spec = ProgramSpec {
                name: name.clone(),
                launch: Arc::new(LaunchSpec {
                    argv: vec![format!("./v{}", shape.argv)],
                    shell: false,
                    cwd: PathBuf::from("/srv"),
                    env: Vec::new(),
                    user: None,
                    group: None,
                }),
                logs: Arc::new(LogSpec {
                    dir: PathBuf::from("/var/log/ward"),
                    max_size: 1 << 20,
                    keep: shape.keep,
                    format: LogFormat::Text,
                    timestamps: true,
                    max_line: 8192,
                    access: Default::default(),
                    files: true,
                    journald: false,
                }),
                instances: shape.instances,
                autostart: shape.autostart,
                restart: shape.restart,
                success_exit_codes: if shape.extra_success {
                    vec![0, 2]
                } else {
                    vec![0]
                },
                backoff: shape.backoff,
                start_limit: shape.start_limit,
                min_uptime: shape.min_uptime,
                stop_signal: Signal::Term,
                stop_command: None,
                stop_timeout: shape.stop_timeout,
                // Both modes, without a field of its own: the invariants
                // hold whoever the stop signal reaches.
                stop_mode: if shape.argv % 2 == 1 {
                    StopMode::Main
                } else {
                    StopMode::Tree
                },
                depends_on,
            };
            (name, spec)
        })
        .collect();
    SpecSet { programs }
}

/// A state file as the shell might have kept it. Bit `i` of `mask`: instance
/// 0 of program `i` (of six; some may not exist) has an explicit desired
/// state, `Up` if bit `i + 8` is set, else `Down`.
pub fn restore(mask: u16, next_run: u64) -> Restore {
    let desired = (0..6)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| {
            let desired = if mask & (1 << (i + 8)) != 0 {
                Desired::Up
            } else {
                Desired::Down
            };
            (InstanceId::new(&program_name(i), 0), desired)
        })
        .collect();
    Restore {
        desired,
        next_run: RunId(next_run),
    }
}

// ----- what happens -----

/// Which instances a request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    All,
    /// Program `i` (which may not exist).
    Program(usize),
    /// A name close to an existing one, for the did-you-mean path.
    Typo,
    Instance(usize, u32),
}

/// One step of the world. Indexes into the shell's lists wrap around; a
/// step that has nothing to act on does nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Time passes; every timer due meanwhile fires at its own time.
    Advance(Duration),
    /// Time jumps to the engine's next deadline, if it has one.
    AdvanceToDeadline,
    /// The shell wakes with no timer due (a `select!` that woke early).
    Wake,
    /// A pending spawn succeeds or fails.
    AnswerSpawn(usize, bool),
    /// A live leader exits with this code, perhaps leaving its tree.
    LeaderExit(usize, i32, bool),
    /// A lingering tree empties.
    TreeGone(usize),
    /// An input about an instance and a run that do not go together:
    /// (instance, run, which input).
    Stale(usize, usize, u8),
    Start(Pick),
    Stop(Pick),
    Restart(Pick),
    Signal(Pick),
    /// Reload with set `i` of the reloads given to
    /// [`CheckedShell::apply`](super::CheckedShell::apply).
    Reload(usize, bool),
    Shutdown,
}
