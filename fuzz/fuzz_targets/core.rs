//! The engine against arbitrary histories: a small program set (1–4
//! programs, dependencies among them, small numbers), a restored state,
//! two more sets to reload to, and a sequence of requests, process events,
//! stale inputs and time (including jumps to the engine's next deadline
//! and early wake-ups), driven through `ward_core::invariants::CheckedShell`,
//! which checks the invariants after every step. `tests/props.rs` in
//! ward-core drives the same shell from proptest.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ward_core::invariants::{self, Op, Pick, Shape};
use ward_core::{BackoffSpec, RestartPolicy, SpecSet, StartLimit};

/// Steps per case: enough for long histories, few enough to stay fast.
const MAX_OPS: usize = 256;

#[derive(Debug, Arbitrary)]
struct Case {
    first: ProgramGen,
    more: [Option<ProgramGen>; 3],
    /// Each reload set: per program slot, what becomes of it.
    reloads: [[SlotGen; 4]; 2],
    restore_mask: u16,
    next_run: u16,
    seed: u64,
    ops: Vec<OpGen>,
}

#[derive(Debug, Arbitrary)]
struct ProgramGen {
    /// 0..=3 instances.
    instances: u8,
    autostart: bool,
    restart: u8,
    initial_ms: u16,
    max_ms: u16,
    /// factor = 1 + tenths / 10.
    factor_tenths: u8,
    /// jitter = percent / 100, at most 1.
    jitter_percent: u8,
    reset_after_ms: u16,
    /// 1..=5 failed starts.
    burst: u8,
    interval_ms: u16,
    cooldown_ms: Option<u16>,
    min_uptime_ms: u16,
    stop_timeout_ms: u16,
    deps_mask: u8,
    completed_mask: u8,
    other_argv: bool,
    more_logs: bool,
    extra_success: bool,
}

impl ProgramGen {
    fn shape(&self) -> Shape {
        let ms = |n: u16| Duration::from_millis(u64::from(n));
        Shape {
            instances: u32::from(self.instances % 4),
            autostart: self.autostart,
            restart: match self.restart % 3 {
                0 => RestartPolicy::Always,
                1 => RestartPolicy::OnFailure,
                _ => RestartPolicy::Never,
            },
            backoff: BackoffSpec {
                initial: ms(self.initial_ms),
                max: ms(self.max_ms),
                factor: 1.0 + f64::from(self.factor_tenths) / 10.0,
                jitter: f64::from(self.jitter_percent.min(100)) / 100.0,
                reset_after: ms(self.reset_after_ms),
            },
            start_limit: StartLimit {
                burst: 1 + u32::from(self.burst % 5),
                interval: ms(self.interval_ms),
                cooldown: self.cooldown_ms.map(ms),
            },
            min_uptime: ms(self.min_uptime_ms),
            stop_timeout: ms(self.stop_timeout_ms),
            deps_mask: self.deps_mask,
            completed_mask: self.completed_mask,
            argv: u8::from(self.other_argv),
            keep: 1 + u32::from(self.more_logs),
            extra_success: self.extra_success,
        }
    }
}

/// A program slot of a reload set.
#[derive(Debug, Arbitrary)]
enum SlotGen {
    /// As in the first set (absent if it was absent): no change.
    Same,
    Absent,
    New(ProgramGen),
}

#[derive(Debug, Arbitrary)]
enum PickGen {
    All,
    Program(u8),
    Typo,
    Instance(u8, u8),
}

impl PickGen {
    fn pick(&self) -> Pick {
        match self {
            PickGen::All => Pick::All,
            PickGen::Program(p) => Pick::Program(usize::from(p % 5)),
            PickGen::Typo => Pick::Typo,
            PickGen::Instance(p, i) => Pick::Instance(usize::from(p % 5), u32::from(i % 4)),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum OpGen {
    Advance(u16),
    AdvanceToDeadline,
    Wake,
    AnswerSpawn(u8, bool),
    LeaderExit(u8, u8, bool),
    TreeGone(u8),
    Stale(u8, u8, u8),
    Start(PickGen),
    Stop(PickGen),
    Restart(PickGen),
    Signal(PickGen),
    Reload(bool, bool),
    Shutdown,
}

impl OpGen {
    fn op(&self) -> Op {
        match self {
            OpGen::Advance(ms) => Op::Advance(Duration::from_millis(u64::from(*ms))),
            OpGen::AdvanceToDeadline => Op::AdvanceToDeadline,
            OpGen::Wake => Op::Wake,
            OpGen::AnswerSpawn(i, ok) => Op::AnswerSpawn(usize::from(*i), *ok),
            // Codes 0, 1 and 2: success, failure, and success only where
            // the program lists it.
            OpGen::LeaderExit(i, code, tree) => {
                Op::LeaderExit(usize::from(*i), i32::from(code % 3), *tree)
            }
            OpGen::TreeGone(i) => Op::TreeGone(usize::from(*i)),
            OpGen::Stale(i, r, kind) => Op::Stale(usize::from(*i), usize::from(*r), *kind),
            OpGen::Start(p) => Op::Start(p.pick()),
            OpGen::Stop(p) => Op::Stop(p.pick()),
            OpGen::Restart(p) => Op::Restart(p.pick()),
            OpGen::Signal(p) => Op::Signal(p.pick()),
            OpGen::Reload(second, dry_run) => Op::Reload(usize::from(*second), *dry_run),
            OpGen::Shutdown => Op::Shutdown,
        }
    }
}

/// Program names are positional (`p0`…`p3`), so a set is built from its
/// slots in order and an absent slot ends it: `invariants::build` names by
/// position, and a hole would rename the programs after it.
fn build(slots: &[Option<Shape>]) -> SpecSet {
    let shapes: Vec<Shape> = slots.iter().map_while(Clone::clone).collect();
    invariants::build(&shapes)
}

fuzz_target!(|case: Case| {
    let first: Vec<Option<Shape>> = std::iter::once(Some(case.first.shape()))
        .chain(case.more.iter().map(|p| p.as_ref().map(ProgramGen::shape)))
        .collect();
    let reloads: Vec<SpecSet> = case
        .reloads
        .iter()
        .map(|slots| {
            let shapes: Vec<Option<Shape>> = slots
                .iter()
                .zip(&first)
                .map(|(slot, before)| match slot {
                    SlotGen::Same => before.clone(),
                    SlotGen::Absent => None,
                    SlotGen::New(p) => Some(p.shape()),
                })
                .collect();
            build(&shapes)
        })
        .collect();
    let ops: Vec<Op> = case.ops.iter().take(MAX_OPS).map(OpGen::op).collect();
    let result = invariants::run_case(
        build(&first),
        invariants::restore(case.restore_mask, u64::from(case.next_run)),
        case.seed,
        &reloads,
        &ops,
    );
    if let Err(v) = result {
        panic!("{v}\nops: {ops:#?}");
    }
});
