//! The restart delay: exponential, capped, jittered.
//!
//! `delay = min(initial × factor^k, max)`, then moved by up to
//! `±jitter × delay` at random, then clamped to `[0, max]` so that jitter can
//! never push a delay past the cap the user wrote down. `k` is the number of
//! consecutive unsuccessful ends before this one (0 for the first).

use std::time::Duration;

use crate::rng::Rng;
use crate::spec::BackoffSpec;

/// The delay before restart number `k + 1` of a streak.
pub fn delay(spec: &BackoffSpec, k: u32, rng: &mut Rng) -> Duration {
    let max_ns = nanos(spec.max);
    let initial_ns = nanos(spec.initial);
    // A factor below 1 (or NaN) would make delays shrink; config forbids it,
    // and the engine treats it as "no growth" rather than trusting it.
    let factor = if spec.factor.is_finite() && spec.factor >= 1.0 {
        spec.factor
    } else {
        1.0
    };
    let exponent = i32::try_from(k).unwrap_or(i32::MAX);
    let grown = initial_ns * factor.powi(exponent);
    // `min` also maps an overflow to infinity and then to the cap.
    let capped = if grown.is_finite() {
        grown.min(max_ns)
    } else {
        max_ns
    };
    let jitter = if spec.jitter.is_finite() {
        spec.jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let jittered = if jitter > 0.0 {
        capped * (1.0 + jitter * rng.next_signed_unit())
    } else {
        capped
    };
    let ns = jittered.clamp(0.0, max_ns);
    // `ns` is within [0, max] and max fits in u64 nanoseconds by construction.
    Duration::from_nanos(ns.round().min(max_ns) as u64)
}

fn nanos(d: Duration) -> f64 {
    // Durations past ~584 years do not fit in u64 nanoseconds; such a cap
    // means "no cap" in practice, so saturating is the honest reading.
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(initial_ms: u64, max_ms: u64, factor: f64, jitter: f64) -> BackoffSpec {
        BackoffSpec {
            initial: Duration::from_millis(initial_ms),
            max: Duration::from_millis(max_ms),
            factor,
            jitter,
            reset_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn grows_then_caps() {
        let s = spec(100, 1_000, 2.0, 0.0);
        let mut rng = Rng::new(1);
        let got: Vec<u64> = (0..6)
            .map(|k| delay(&s, k, &mut rng).as_millis() as u64)
            .collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1_000, 1_000]);
    }

    #[test]
    fn huge_exponent_is_the_cap() {
        let s = spec(100, 5_000, 10.0, 0.0);
        assert_eq!(
            delay(&s, u32::MAX, &mut Rng::new(1)),
            Duration::from_millis(5_000)
        );
    }

    #[test]
    fn initial_above_max_is_clamped() {
        let s = spec(10_000, 500, 2.0, 0.0);
        assert_eq!(delay(&s, 0, &mut Rng::new(1)), Duration::from_millis(500));
    }

    #[test]
    fn jitter_stays_within_band_and_cap() {
        let s = spec(1_000, 1_500, 2.0, 0.5);
        let mut rng = Rng::new(99);
        let mut seen_low = false;
        for _ in 0..2_000 {
            let d0 = delay(&s, 0, &mut rng);
            assert!(d0 >= Duration::from_millis(500) && d0 <= Duration::from_millis(1_500));
            seen_low |= d0 < Duration::from_millis(1_000);
            // At the cap jitter can only pull the delay down.
            let d5 = delay(&s, 5, &mut rng);
            assert!(d5 >= Duration::from_millis(750) && d5 <= Duration::from_millis(1_500));
        }
        assert!(seen_low, "jitter never moved the delay");
    }

    #[test]
    fn bad_factor_and_jitter_are_tamed() {
        let s = spec(100, 1_000, f64::NAN, f64::INFINITY);
        assert_eq!(delay(&s, 3, &mut Rng::new(1)), Duration::from_millis(100));
        let s = spec(100, 1_000, 0.5, -1.0);
        assert_eq!(delay(&s, 3, &mut Rng::new(1)), Duration::from_millis(100));
    }

    #[test]
    fn zero_stays_zero() {
        let s = spec(0, 0, 2.0, 1.0);
        assert_eq!(delay(&s, 4, &mut Rng::new(3)), Duration::ZERO);
    }
}
