//! The engine's timer set: every timeout the engine keeps lives here, so
//! the shell only ever needs to sleep until [`Timers::next`].

use std::collections::BTreeMap;

use crate::model::{InstanceId, RunId, Time};

/// What a timer does when it fires. Each is tied to an instance; the ones
/// about a run name it, so a late firing for an older run is harmless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerKind {
    /// Leave `backoff` and start again.
    Backoff,
    /// Leave `fatal` for a fresh try.
    Cooldown,
    /// The stop deadline of a run: kill its tree.
    StopDeadline(RunId),
    /// The run has stayed up for `reset_after`: forget the failure streak.
    Reset(RunId),
    /// The run has stayed up for `min_uptime`: its end would no longer be a
    /// failed start, so a request waiting to see how it fares is answered.
    MinUptime(RunId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    pub id: InstanceId,
    pub kind: TimerKind,
}

/// Identifies an armed timer so its owner can cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerKey {
    at: Time,
    seq: u64,
}

impl TimerKey {
    /// When the timer is due.
    pub fn at(&self) -> Time {
        self.at
    }
}

/// Timers ordered by due time, then by arming order, so that timers due at
/// the same instant fire in the order they were armed.
#[derive(Debug, Clone, Default)]
pub struct Timers {
    armed: BTreeMap<TimerKey, Timer>,
    seq: u64,
}

impl Timers {
    pub fn arm(&mut self, at: Time, timer: Timer) -> TimerKey {
        let key = TimerKey { at, seq: self.seq };
        self.seq = self.seq.wrapping_add(1);
        self.armed.insert(key, timer);
        key
    }

    pub fn cancel(&mut self, key: TimerKey) {
        self.armed.remove(&key);
    }

    /// When the earliest timer is due.
    pub fn next(&self) -> Option<Time> {
        self.armed.first_key_value().map(|(key, _)| key.at)
    }

    /// Removes and returns the earliest timer due at or before `now`.
    pub fn pop_due(&mut self, now: Time) -> Option<(TimerKey, Timer)> {
        if self.next()? > now {
            return None;
        }
        self.armed.pop_first()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(ms: u64) -> Time {
        Duration::from_millis(ms)
    }

    fn timer(name: &str) -> Timer {
        Timer {
            id: InstanceId::new(name, 0),
            kind: TimerKind::Backoff,
        }
    }

    #[test]
    fn fires_in_time_then_arming_order() {
        let mut timers = Timers::default();
        timers.arm(t(20), timer("late"));
        timers.arm(t(10), timer("first"));
        timers.arm(t(10), timer("second"));
        assert_eq!(timers.next(), Some(t(10)));
        assert!(timers.pop_due(t(9)).is_none());
        let names: Vec<String> = std::iter::from_fn(|| timers.pop_due(t(15)))
            .map(|(_, tm)| tm.id.program.to_string())
            .collect();
        assert_eq!(names, vec!["first", "second"]);
        assert_eq!(timers.next(), Some(t(20)));
    }

    #[test]
    fn cancel_removes() {
        let mut timers = Timers::default();
        let key = timers.arm(t(5), timer("a"));
        timers.cancel(key);
        assert_eq!(timers.next(), None);
        // Cancelling twice is harmless.
        timers.cancel(key);
    }
}
