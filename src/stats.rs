//! Counters, in one place: what metrics will export. Fed from the bus
//! (every event ward publishes passes [`Stats::record`]) and, for the
//! lines and bytes a program writes, by its log pump (through the
//! [`LogCounters`] of its instance). `GET /v1/stats` shows them.
//!
//! Counts start at zero when ward starts; they are not kept across
//! restarts of ward.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use ward_core::{Event, EventKind, ExitStatus, InstanceId};

/// Every counter; cheap to clone (one shared table).
#[derive(Clone, Default)]
pub struct Stats(Arc<Mutex<Table>>);

#[derive(Default)]
struct Table {
    events: u64,
    reloads: u64,
    reloads_rejected: u64,
    instances: BTreeMap<InstanceId, Counts>,
}

#[derive(Default)]
struct Counts {
    starts: u64,
    exits: ExitCounts,
    log_lines_dropped: u64,
    log: Arc<LogCounters>,
}

/// Runs that ended, by how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExitCounts {
    /// Exited with a code (any code).
    pub exit: u64,
    /// Killed by a signal.
    pub signal: u64,
    /// Could not be started at all.
    pub spawn_failed: u64,
}

/// What a program's pump counts as it goes (shared with the pump).
#[derive(Debug, Default)]
pub struct LogCounters {
    /// Lines stored (a line split for its length counts once per piece).
    pub lines: AtomicU64,
    /// Bytes read from the program's stdout and stderr.
    pub bytes: AtomicU64,
}

/// `GET /v1/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Events ward published (what `ward events` lists).
    pub events: u64,
    /// Reloads applied, and reloads refused for a config with errors.
    pub reloads: u64,
    pub reloads_rejected: u64,
    pub instances: Vec<InstanceReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceReport {
    /// `web:0`.
    pub instance: String,
    /// Spawns (each run that got a process).
    pub starts: u64,
    /// Restarts as `ward status` counts them (after a failure, or asked).
    pub restarts: u32,
    pub exits: ExitCounts,
    pub log_lines: u64,
    pub log_bytes: u64,
    /// Lines that could not be written (full disk, writer behind).
    pub log_lines_dropped: u64,
}

impl Stats {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one event (the bus calls this for each).
    pub fn record(&self, event: &Event) {
        let mut table = self.table();
        table.events += 1;
        match (&event.instance, &event.kind) {
            (_, EventKind::Reloaded { .. }) => table.reloads += 1,
            (_, EventKind::ReloadRejected { .. }) => table.reloads_rejected += 1,
            (Some(id), kind) => {
                let counts = table.instances.entry(id.clone()).or_default();
                match kind {
                    EventKind::Spawned { .. } => counts.starts += 1,
                    EventKind::SpawnFailed { .. } => counts.exits.spawn_failed += 1,
                    EventKind::Exited {
                        status: ExitStatus::Code { .. },
                        ..
                    } => counts.exits.exit += 1,
                    EventKind::Exited {
                        status: ExitStatus::Signal { .. },
                        ..
                    } => counts.exits.signal += 1,
                    EventKind::LogLinesDropped { lines, .. } => {
                        counts.log_lines_dropped += lines;
                    }
                    _ => {}
                }
            }
            (None, _) => {}
        }
    }

    /// The pump's counters of instance `id` (the same across its runs).
    pub fn log_counters(&self, id: &InstanceId) -> Arc<LogCounters> {
        Arc::clone(&self.table().instances.entry(id.clone()).or_default().log)
    }

    /// The counters of every instance in `snapshot` (instances gone from
    /// the config are left out), with its restarts from the engine.
    pub fn report(&self, snapshot: &ward_core::Snapshot) -> Report {
        let table = self.table();
        let instances = snapshot
            .instances
            .iter()
            .map(|view| {
                let counts = table.instances.get(&view.id);
                InstanceReport {
                    instance: view.id.to_string(),
                    starts: counts.map_or(0, |c| c.starts),
                    restarts: view.restarts,
                    exits: counts.map(|c| c.exits).unwrap_or_default(),
                    log_lines: counts.map_or(0, |c| c.log.lines.load(Ordering::Relaxed)),
                    log_bytes: counts.map_or(0, |c| c.log.bytes.load(Ordering::Relaxed)),
                    log_lines_dropped: counts.map_or(0, |c| c.log_lines_dropped),
                }
            })
            .collect();
        Report {
            events: table.events,
            reloads: table.reloads,
            reloads_rejected: table.reloads_rejected,
            instances,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ward_core::RunId;

    fn event(instance: Option<&str>, kind: EventKind) -> Event {
        Event {
            instance: instance.map(|i| InstanceId::new(i, 0)),
            run: Some(RunId(1)),
            kind,
        }
    }

    #[test]
    fn events_are_counted_by_kind() {
        let stats = Stats::default();
        stats.record(&event(Some("api"), EventKind::Spawned { pid: 7 }));
        stats.record(&event(
            Some("api"),
            EventKind::Exited {
                status: ExitStatus::Code { code: 1 },
                uptime_ms: 5,
                failed_start: true,
            },
        ));
        stats.record(&event(
            Some("api"),
            EventKind::SpawnFailed {
                error: "no such file".into(),
            },
        ));
        stats.record(&event(
            Some("api"),
            EventKind::LogLinesDropped {
                lines: 12,
                reason: "disk full".into(),
            },
        ));
        stats.record(&event(
            None,
            EventKind::Reloaded {
                diff: Default::default(),
            },
        ));
        let log = stats.log_counters(&InstanceId::new("api", 0));
        log.lines.fetch_add(3, Ordering::Relaxed);
        log.bytes.fetch_add(30, Ordering::Relaxed);
        let sup = ward_core::Supervisor::new(
            ward_core::SpecSet::default(),
            ward_core::Restore::default(),
            1,
            std::time::Duration::ZERO,
        );
        let mut snapshot = sup.snapshot();
        // An instance as the engine shows it.
        let view = ward_core::InstanceView {
            id: InstanceId::new("api", 0),
            state: ward_core::State::Backoff,
            desired: ward_core::Desired::Up,
            desired_by: ward_core::DesiredBy::Config,
            run: Some(RunId(1)),
            pid: None,
            started_at: None,
            since: std::time::Duration::ZERO,
            next_at: None,
            restarts: 2,
            last_end: None,
            waiting_on: Vec::new(),
            daemonized: false,
            restart: ward_core::RestartPolicy::OnFailure,
            min_uptime: std::time::Duration::from_secs(1),
            proven: false,
            last_end_ok: false,
        };
        snapshot.instances.push(view);
        let report = stats.report(&snapshot);
        assert_eq!(report.events, 5);
        assert_eq!(report.reloads, 1);
        assert_eq!(
            report.instances,
            vec![InstanceReport {
                instance: "api:0".into(),
                starts: 1,
                restarts: 2,
                exits: ExitCounts {
                    exit: 1,
                    signal: 0,
                    spawn_failed: 1,
                },
                log_lines: 3,
                log_bytes: 30,
                log_lines_dropped: 12,
            }]
        );
    }
}
