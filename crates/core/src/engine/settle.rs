//! Settling: after every input and timer, bring each instance in line with
//! its goal, then answer the requests that can be answered.

use crate::model::{Action, Desired, InstanceId, State};

use super::Supervisor;

impl Supervisor {
    /// Brings every instance in line with its goal (see the `engine` module docs),
    /// then answers every request whose targets have settled.
    pub(super) fn settle(&mut self) {
        // Every pass that changes something moves some instance strictly
        // forward (stopped→starting, waiting→starting, →stopped,
        // running→stopping), and none of those can be undone within a
        // settle, so this terminates; the bound is a guard, not a rule.
        // A pass looks only at what the last one (or the input) touched.
        let mut passes = 0;
        loop {
            let ids = self.take_dirty();
            if ids.is_empty() {
                break;
            }
            passes += 1;
            if passes > 8 && passes > 4 * self.instance_count() + 8 {
                break;
            }
            // Stops sweep dependents first, starts dependencies first, so
            // that actions come out in the order a person would expect.
            for id in ids.iter().rev() {
                self.settle_down(id);
            }
            for id in &ids {
                self.settle_up(id);
            }
        }
        self.answer_settled_requests();
    }

    /// Settles as if everything had changed. For the invariant checks: the
    /// settle after each input must already have done all of this.
    #[cfg(feature = "testkit")]
    pub(crate) fn settle_everything(&mut self) {
        self.all_dirty = true;
        self.settle();
    }

    fn instance_count(&self) -> usize {
        self.programs.values().map(|p| p.instances.len()).sum()
    }

    /// Stops what must stop; forgets what is retired and stopped.
    fn settle_down(&mut self, id: &InstanceId) {
        let Some(inst) = self.instance(id) else {
            return;
        };
        let goal = self.goal(inst);
        match inst.state {
            State::Stopped if inst.retiring => self.forget(id),
            State::Waiting | State::Backoff | State::Exited | State::Fatal
                if goal == Desired::Down =>
            {
                self.transition(id, State::Stopped)
            }
            State::Starting | State::Running
                if self.due_to_stop(inst) && !self.blocked_by_dependents(id) =>
            {
                self.begin_stop(id)
            }
            _ => {}
        }
    }

    /// Starts what should run and may.
    fn settle_up(&mut self, id: &InstanceId) {
        let Some(inst) = self.instance(id) else {
            return;
        };
        if self.goal(inst) == Desired::Down {
            return;
        }
        match inst.state {
            State::Stopped => self.start_now(id, true),
            State::Waiting if self.conditions_met(id) => self.spawn(id),
            _ => {}
        }
    }

    /// Drops a stopped, retiring instance, and its program with its last
    /// instance if the program was removed.
    fn forget(&mut self, id: &InstanceId) {
        let Some(program) = self.programs.get_mut(&*id.program) else {
            return;
        };
        if let Some(inst) = program.instances.remove(&id.index) {
            for key in [inst.timer, inst.reset_timer, inst.uptime_timer]
                .into_iter()
                .flatten()
            {
                self.timers.cancel(key);
            }
            self.actions.push_back(Action::Release { id: id.clone() });
        }
        if program.retired && program.instances.is_empty() {
            self.programs.remove(&*id.program);
            self.rebuild_graph();
        } else {
            self.touch(&id.program);
        }
    }

    fn answer_settled_requests(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for request in pending {
            let settled = request.targets.iter().all(|id| match self.instance(id) {
                Some(inst) => self.settled(inst) && !(request.proven && self.unproven(inst)),
                None => true,
            });
            if settled {
                let instances = request
                    .targets
                    .iter()
                    .filter_map(|id| Some(self.view(self.spec_of(id)?, self.instance(id)?)))
                    .collect();
                self.reply_done(request.token, instances);
            } else {
                self.pending.push(request);
            }
        }
        self.finish_shutdown_if_down();
    }

    fn finish_shutdown_if_down(&mut self) {
        let Some(tokens) = &self.shutdown else {
            return;
        };
        if tokens.is_empty() && self.exit_sent {
            return;
        }
        let all_down = self
            .programs
            .values()
            .flat_map(|p| p.instances.values())
            .all(|i| !i.state.is_live());
        if !all_down {
            return;
        }
        let tokens = self
            .shutdown
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let views = self.snapshot().instances;
        for token in tokens {
            self.reply_done(token, views.clone());
        }
        if !self.exit_sent {
            self.exit_sent = true;
            self.actions.push_back(Action::Exit);
        }
    }
}
