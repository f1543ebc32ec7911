//! The start limit: too many failed starts within a window make an instance
//! `fatal` instead of restarting it forever.

use std::collections::VecDeque;
use std::time::Duration;

use crate::model::Time;
use crate::spec::StartLimit;

/// The times of recent failed starts, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FailedStarts {
    times: VecDeque<Time>,
}

impl FailedStarts {
    /// Records a failed start at `now` and forgets those that left the
    /// window. Returns how many remain: failures at `t` with
    /// `now - interval <= t` count, so a zero interval still counts failures
    /// at the same instant.
    pub fn record(&mut self, now: Time, interval: Duration) -> u32 {
        self.times.push_back(now);
        let oldest_kept = now.saturating_sub(interval);
        while self.times.front().is_some_and(|&t| t < oldest_kept) {
            self.times.pop_front();
        }
        u32::try_from(self.times.len()).unwrap_or(u32::MAX)
    }

    pub fn clear(&mut self) {
        self.times.clear();
    }
}

/// Whether `failed` failed starts within the window reach the limit.
pub fn reached(limit: &StartLimit, failed: u32) -> bool {
    failed >= limit.burst
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn counts_within_window_only() {
        let mut f = FailedStarts::default();
        assert_eq!(f.record(s(0), s(10)), 1);
        assert_eq!(f.record(s(5), s(10)), 2);
        assert_eq!(f.record(s(10), s(10)), 3);
        // t=0 is now older than 11-10.
        assert_eq!(f.record(s(11), s(10)), 3);
        assert_eq!(f.record(s(100), s(10)), 1);
    }

    #[test]
    fn zero_interval_counts_same_instant() {
        let mut f = FailedStarts::default();
        assert_eq!(f.record(s(3), Duration::ZERO), 1);
        assert_eq!(f.record(s(3), Duration::ZERO), 2);
        assert_eq!(f.record(s(4), Duration::ZERO), 1);
    }

    #[test]
    fn limit_reached_at_burst() {
        let limit = StartLimit {
            burst: 3,
            interval: s(60),
            cooldown: None,
        };
        assert!(!reached(&limit, 2));
        assert!(reached(&limit, 3));
    }

    #[test]
    fn clear_forgets() {
        let mut f = FailedStarts::default();
        f.record(s(1), s(10));
        f.clear();
        assert_eq!(f.record(s(2), s(10)), 1);
    }
}
