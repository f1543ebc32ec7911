//! Property tests: random programs, random dependencies (acyclic), random
//! policies, and random sequences of requests, process events, stale
//! inputs and time, against the simulated shell of
//! [`ward_core::invariants`], which checks the invariants after every step.
//! The fuzz target `core` (in `fuzz/`) drives the same shell.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use ward_core::invariants::{self, Op, Pick, Shape};
use ward_core::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

prop_compose! {
    fn shape()(
        (instances, autostart, restart, initial_ms, max_ms, factor) in (
            prop_oneof![1 => Just(0u32), 6 => Just(1u32), 3 => Just(2u32)],
            prop::bool::weighted(0.7),
            prop_oneof![
                Just(RestartPolicy::Always),
                Just(RestartPolicy::OnFailure),
                Just(RestartPolicy::Never),
            ],
            0u64..2_000,
            0u64..5_000,
            1.0f64..3.0,
        ),
        (jitter, reset_after_ms, burst, interval_ms, cooldown_ms, min_uptime_ms) in (
            prop_oneof![Just(0.0f64), 0.0f64..1.0],
            0u64..10_000,
            1u32..5,
            0u64..20_000,
            prop::option::of(0u64..10_000),
            0u64..3_000,
        ),
        (stop_timeout_ms, deps_mask, completed_mask, argv, keep, extra_success) in (
            0u64..3_000,
            any::<u8>(),
            prop::num::u8::ANY.prop_map(|m| m & m.rotate_left(3)),
            0u8..2,
            1u32..3,
            any::<bool>(),
        ),
    ) -> Shape {
        Shape {
            instances,
            autostart,
            restart,
            backoff: BackoffSpec {
                initial: ms(initial_ms),
                max: ms(max_ms),
                factor,
                jitter,
                reset_after: ms(reset_after_ms),
            },
            start_limit: StartLimit {
                burst,
                interval: ms(interval_ms),
                cooldown: cooldown_ms.map(ms),
            },
            min_uptime: ms(min_uptime_ms),
            stop_timeout: ms(stop_timeout_ms),
            deps_mask,
            completed_mask,
            argv,
            keep,
            extra_success,
        }
    }
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        1 => Just(Pick::All),
        3 => (0usize..5).prop_map(Pick::Program),
        1 => Just(Pick::Typo),
        2 => (0usize..5, 0u32..3).prop_map(|(p, i)| Pick::Instance(p, i)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        24 => prop_oneof![
            3 => 0u64..50,
            3 => 50u64..1_500,
            1 => 1_500u64..12_000,
        ].prop_map(|n| Op::Advance(ms(n))),
        3 => Just(Op::AdvanceToDeadline),
        1 => Just(Op::Wake),
        16 => (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(i, ok)| Op::AnswerSpawn(i, ok)),
        14 => (any::<usize>(), 0i32..3, prop::bool::weighted(0.3))
            .prop_map(|(i, c, t)| Op::LeaderExit(i, c, t)),
        4 => any::<usize>().prop_map(Op::TreeGone),
        6 => (any::<usize>(), any::<usize>(), 0u8..4).prop_map(|(i, r, k)| Op::Stale(i, r, k)),
        6 => pick().prop_map(Op::Start),
        6 => pick().prop_map(Op::Stop),
        4 => pick().prop_map(Op::Restart),
        2 => pick().prop_map(Op::Signal),
        4 => (0usize..2, prop::bool::weighted(0.3)).prop_map(|(i, d)| Op::Reload(i, d)),
        1 => Just(Op::Shutdown),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_invariants_hold(
        programs in prop::collection::vec(shape(), 2..=5),
        restore_mask in prop_oneof![Just(0u16), any::<u16>()],
        reloads in prop::collection::vec(prop::collection::vec(shape(), 1..=5), 2),
        ops in prop::collection::vec(op(), 1..80),
        seed in any::<u64>(),
    ) {
        let reloads: Vec<SpecSet> = reloads.iter().map(|r| invariants::build(r)).collect();
        invariants::run_case(
            invariants::build(&programs),
            invariants::restore(restore_mask, seed % 1_000),
            seed,
            &reloads,
            &ops,
        )
        .map_err(|v| TestCaseError::fail(v.to_string()))?;
    }
}
