//! Dependency conditions, stop ordering, and when a request has settled.

use crate::instance::Instance;
use crate::model::{Blocker, InstanceId, InstanceView, State};
use crate::spec::{Condition, ProgramSpec};

use super::Supervisor;

impl Supervisor {
    /// Every `depends_on` condition of `id`'s program holds now.
    pub(super) fn conditions_met(&self, id: &InstanceId) -> bool {
        let Some(spec) = self.spec_of(id) else {
            return false;
        };
        spec.depends_on
            .iter()
            .all(|(dep, cond)| self.dependency_instances(dep).all(|d| self.meets(d, *cond)))
    }

    /// What readers see of `inst`: a `waiting` one also says what it waits
    /// for.
    pub(super) fn view(&self, spec: &ProgramSpec, inst: &Instance) -> InstanceView {
        let mut view = inst.view(spec);
        if inst.state == State::Waiting {
            view.waiting_on = self.blockers(&inst.id);
        }
        view
    }

    /// Every dependency instance of `id` that fails its condition now.
    fn blockers(&self, id: &InstanceId) -> Vec<Blocker> {
        let Some(spec) = self.spec_of(id) else {
            return Vec::new();
        };
        let mut blockers = Vec::new();
        for (dep, cond) in &spec.depends_on {
            for d in self.dependency_instances(dep) {
                if self.meets(d, *cond) {
                    continue;
                }
                let succeeded = self
                    .spec_of(&d.id)
                    .is_some_and(|spec| d.last_end_succeeded(spec));
                let failed = match d.state {
                    State::Fatal => true,
                    State::Exited | State::Backoff => !succeeded,
                    _ => false,
                };
                blockers.push(Blocker {
                    dependency: d.id.clone(),
                    condition: *cond,
                    state: d.state,
                    last_end: d.last_end.clone(),
                    failed,
                });
            }
        }
        blockers
    }

    /// The instances a condition on `program` is about: its current ones.
    /// A program that is unknown or being removed has none, so a condition
    /// on it holds (the config reports unknown names itself).
    fn dependency_instances<'a>(&'a self, program: &str) -> impl Iterator<Item = &'a Instance> {
        self.programs
            .get(program)
            .filter(|p| !p.retired)
            .into_iter()
            .flat_map(|p| p.instances.values())
            .filter(|i| !i.retiring)
    }

    fn meets(&self, dep: &Instance, cond: Condition) -> bool {
        match cond {
            Condition::Started => dep.state == State::Running && !self.due_to_stop(dep),
            Condition::Completed => {
                dep.state == State::Exited
                    && self
                        .spec_of(&dep.id)
                        .is_some_and(|spec| dep.last_end_succeeded(spec))
            }
        }
    }

    /// Some instance that depends on `id` (directly or not) is live and due
    /// to stop: it must be down before `id` stops.
    pub(super) fn blocked_by_dependents(&self, id: &InstanceId) -> bool {
        let Some(dependents) = self.dependents.get(&*id.program) else {
            return false;
        };
        dependents
            .iter()
            .filter_map(|name| self.programs.get(name))
            .flat_map(|p| p.instances.values())
            .any(|i| self.due_to_stop(i))
    }

    /// A request about `inst` may be answered (see the `engine` module docs): it is
    /// not on its way anywhere.
    pub(super) fn settled(&self, inst: &Instance) -> bool {
        !self.progressing(inst, 0)
    }

    /// `inst` waits on a dependency instance that fails its condition and
    /// is still on its way somewhere.
    fn waits_on_progress(&self, inst: &Instance, depth: usize) -> bool {
        // Dependencies are acyclic (the config guarantees it); the depth
        // bound keeps a broken graph from recursing forever.
        if depth > self.programs.len() {
            return false;
        }
        let Some(spec) = self.spec_of(&inst.id) else {
            return false;
        };
        spec.depends_on.iter().any(|(dep, cond)| {
            self.dependency_instances(dep).any(|d| {
                !self.meets(d, *cond) && (self.progressing(d, depth + 1) || self.unproven(d))
            })
        })
    }

    /// `inst` runs, but not yet for its `min_uptime`: an end now would be a
    /// failed start. A dependency that exits at once (a failing migration)
    /// is thus seen to fail before a request waiting on it is answered. The
    /// run's `min_uptime` timer marks the moment (armed at `Spawned` with
    /// the `min_uptime` then in force, gone once it fires or the state is
    /// left), so a reload that changes `min_uptime` cannot leave a request
    /// waiting for a moment no timer will mark.
    pub(super) fn unproven(&self, inst: &Instance) -> bool {
        inst.state == State::Running && inst.uptime_timer.is_some()
    }

    fn progressing(&self, inst: &Instance, depth: usize) -> bool {
        matches!(inst.state, State::Starting | State::Stopping)
            || self.due_to_stop(inst)
            || (inst.state == State::Waiting && self.waits_on_progress(inst, depth))
    }
}
