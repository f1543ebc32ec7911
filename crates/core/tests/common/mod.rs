//! A simulated shell around the engine: a clock, a log of every action, and
//! a scripted world that answers Spawn, Signal and KillTree.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ward_core::*;

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A program with plain defaults: one instance, autostart, restart always,
/// backoff 1s×2 up to 10s without jitter, 5 failed starts in 60s, min
/// uptime 1s, TERM with 5s to stop.
pub fn prog(name: &str) -> ProgramSpec {
    ProgramSpec {
        name: name.to_string(),
        launch: Arc::new(LaunchSpec {
            argv: vec![format!("./{name}")],
            shell: false,
            cwd: PathBuf::from("/srv"),
            env: Vec::new(),
            user: None,
            group: None,
        }),
        logs: Arc::new(LogSpec {
            dir: PathBuf::from("/var/log/ward"),
            max_size: 1 << 20,
            keep: 3,
            format: LogFormat::Text,
            timestamps: true,
            max_line: 8192,
            access: Default::default(),
            files: true,
            journald: false,
        }),
        instances: 1,
        autostart: true,
        restart: RestartPolicy::Always,
        success_exit_codes: vec![0],
        backoff: BackoffSpec {
            initial: secs(1),
            max: secs(10),
            factor: 2.0,
            jitter: 0.0,
            reset_after: secs(60),
        },
        start_limit: StartLimit {
            burst: 5,
            interval: secs(60),
            cooldown: None,
        },
        min_uptime: secs(1),
        stop_signal: Signal::Term,
        stop_command: None,
        stop_timeout: secs(5),
        stop_mode: StopMode::Tree,
        depends_on: BTreeMap::new(),
    }
}

pub fn needs(mut spec: ProgramSpec, dep: &str, cond: Condition) -> ProgramSpec {
    spec.depends_on.insert(dep.to_string(), cond);
    spec
}

pub fn set(programs: Vec<ProgramSpec>) -> SpecSet {
    SpecSet {
        programs: programs.into_iter().map(|p| (p.name.clone(), p)).collect(),
    }
}

pub fn id(name: &str, index: u32) -> InstanceId {
    InstanceId::new(name, index)
}

pub const SIGTERM: i32 = 15;
pub const SIGKILL: i32 = 9;

/// How the simulated world treats a program's processes.
#[derive(Debug, Clone)]
pub struct World {
    /// Answer Spawn with Spawned after this long; None: leave it to the test.
    pub spawn_after: Option<Duration>,
    /// Answer Spawn with SpawnFailed instead.
    pub spawn_fails: bool,
    /// On the stop signal, the leader exits after this long; None: it
    /// ignores the signal (only KillTree gets rid of it).
    pub exit_on_signal: Option<Duration>,
    /// The leader leaves children that outlive it until KillTree, or until
    /// `tree_lingers` passes.
    pub tree_lingers: Option<Duration>,
}

impl Default for World {
    fn default() -> World {
        World {
            spawn_after: Some(ms(10)),
            spawn_fails: false,
            exit_on_signal: Some(ms(100)),
            tree_lingers: None,
        }
    }
}

pub struct Sim {
    pub sup: Supervisor,
    pub now: Duration,
    /// Every action, with the time it was emitted.
    pub log: Vec<(Duration, Action)>,
    pub world: BTreeMap<String, World>,
    scheduled: BTreeMap<(Duration, u64), Input>,
    seq: u64,
    next_token: u64,
    next_pid: u32,
    /// Runs whose leader is alive, and whether their tree outlives it.
    leaders: BTreeMap<(InstanceId, RunId), ()>,
    trees: BTreeMap<(InstanceId, RunId), ()>,
}

impl Sim {
    pub fn new(specs: SpecSet) -> Sim {
        Sim::restored(specs, Restore::default())
    }

    pub fn restored(specs: SpecSet, restore: Restore) -> Sim {
        let sup = Supervisor::new(specs, restore, 7, Duration::ZERO);
        let mut sim = Sim {
            sup,
            now: Duration::ZERO,
            log: Vec::new(),
            world: BTreeMap::new(),
            scheduled: BTreeMap::new(),
            seq: 0,
            next_token: 1,
            next_pid: 1000,
            leaders: BTreeMap::new(),
            trees: BTreeMap::new(),
        };
        sim.drain();
        sim
    }

    pub fn world_of(&self, program: &str) -> World {
        self.world.get(program).cloned().unwrap_or_default()
    }

    pub fn set_world(&mut self, program: &str, world: World) {
        self.world.insert(program.to_string(), world);
    }

    /// `program` lives through its stop signal: only KillTree ends it.
    pub fn ignores_stop_signal(&mut self, program: &str) {
        self.set_world(
            program,
            World {
                exit_on_signal: None,
                ..World::default()
            },
        );
    }

    /// When the first KillTree was emitted, if one was.
    pub fn kill_at(&self) -> Option<Duration> {
        self.log
            .iter()
            .find(|(_, a)| matches!(a, Action::KillTree { .. }))
            .map(|(t, _)| *t)
    }

    fn schedule(&mut self, at: Duration, input: Input) {
        self.seq += 1;
        self.scheduled.insert((at, self.seq), input);
    }

    /// Takes every action out of the engine, logs it, and lets the world
    /// react.
    pub fn drain(&mut self) {
        while let Some(action) = self.sup.poll_action() {
            self.react(&action);
            self.log.push((self.now, action));
        }
    }

    fn react(&mut self, action: &Action) {
        match action {
            Action::Spawn { id, run, .. } => {
                let world = self.world_of(&id.program);
                if let Some(delay) = world.spawn_after {
                    let input = if world.spawn_fails {
                        Input::SpawnFailed {
                            id: id.clone(),
                            run: *run,
                            error: "no such file".into(),
                        }
                    } else {
                        self.next_pid += 1;
                        self.leaders.insert((id.clone(), *run), ());
                        self.trees.insert((id.clone(), *run), ());
                        Input::Spawned {
                            id: id.clone(),
                            run: *run,
                            pid: self.next_pid,
                        }
                    };
                    self.schedule(self.now + delay, input);
                }
            }
            Action::Signal { id, run, .. } | Action::StopCommand { id, run, .. } => {
                let world = self.world_of(&id.program);
                if let Some(delay) = world.exit_on_signal {
                    if self.leaders.contains_key(&(id.clone(), *run)) {
                        self.leader_exits(id, *run, delay, SIGTERM);
                    }
                }
            }
            Action::KillTree { id, run } => {
                let key = (id.clone(), *run);
                if self.leaders.contains_key(&key) {
                    self.leaders.remove(&key);
                    self.trees.remove(&key);
                    let input = Input::Exited {
                        id: id.clone(),
                        run: *run,
                        status: ExitStatus::Signal {
                            signal: SIGKILL,
                            core_dumped: false,
                        },
                        tree_alive: false,
                    };
                    self.schedule(self.now + ms(1), input);
                } else if self.trees.remove(&key).is_some() {
                    let input = Input::TreeGone {
                        id: id.clone(),
                        run: *run,
                    };
                    self.schedule(self.now + ms(1), input);
                }
            }
            _ => {}
        }
    }

    fn leader_exits(&mut self, id: &InstanceId, run: RunId, delay: Duration, signal: i32) {
        let world = self.world_of(&id.program);
        let key = (id.clone(), run);
        self.leaders.remove(&key);
        let tree_alive = world.tree_lingers.is_some();
        if !tree_alive {
            self.trees.remove(&key);
        }
        let input = Input::Exited {
            id: id.clone(),
            run,
            status: ExitStatus::Signal {
                signal,
                core_dumped: false,
            },
            tree_alive,
        };
        self.schedule(self.now + delay, input);
        if let Some(linger) = world.tree_lingers {
            self.schedule(
                self.now + delay + linger,
                Input::TreeGone {
                    id: id.clone(),
                    run,
                },
            );
        }
    }

    /// Hands an input to the engine now.
    pub fn input(&mut self, input: Input) {
        self.sup.handle(self.now, input);
        self.drain();
    }

    pub fn request(&mut self, request: Request) -> Token {
        let token = Token(self.next_token);
        self.next_token += 1;
        self.input(Input::Request { token, request });
        token
    }

    /// Moves the clock forward, delivering scheduled inputs and firing the
    /// engine's timers in time order.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        loop {
            let next_input = self.scheduled.keys().next().map(|(t, _)| *t);
            let next_timer = self.sup.poll_timeout();
            let next = match (next_input, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if next > target {
                break;
            }
            self.now = self.now.max(next);
            if next_timer.is_some_and(|t| t <= self.now) {
                self.sup.handle_timeout(self.now);
                self.drain();
            }
            while let Some(entry) = self.scheduled.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let input = entry.remove();
                // Inputs the world scheduled for a run it since killed are
                // still delivered: the engine must ignore what is stale.
                self.sup.handle(self.now, input);
                self.drain();
            }
        }
        self.now = target;
    }

    // ----- the test's own hand on the world -----

    /// The current run's leader exits on its own.
    pub fn exit(&mut self, name: &str, index: u32, code: i32) {
        let id = id(name, index);
        let run = self.run(name, index).expect("a live run");
        self.leaders.remove(&(id.clone(), run));
        self.trees.remove(&(id.clone(), run));
        self.input(Input::Exited {
            id,
            run,
            status: ExitStatus::Code { code },
            tree_alive: false,
        });
    }

    /// The leader exits on its own and leaves its tree behind.
    pub fn exit_leaving_tree(&mut self, name: &str, index: u32, code: i32) {
        let id = id(name, index);
        let run = self.run(name, index).expect("a live run");
        self.leaders.remove(&(id.clone(), run));
        self.input(Input::Exited {
            id,
            run,
            status: ExitStatus::Code { code },
            tree_alive: true,
        });
    }

    pub fn tree_gone(&mut self, name: &str, index: u32) {
        let id = id(name, index);
        let run = self.run(name, index).expect("a live run");
        self.trees.remove(&(id.clone(), run));
        self.input(Input::TreeGone { id, run });
    }

    // ----- looking -----

    pub fn view(&self, name: &str, index: u32) -> InstanceView {
        self.sup
            .snapshot()
            .instances
            .into_iter()
            .find(|v| v.id == id(name, index))
            .unwrap_or_else(|| panic!("no instance {name}:{index}"))
    }

    pub fn exists(&self, name: &str, index: u32) -> bool {
        self.sup
            .snapshot()
            .instances
            .iter()
            .any(|v| v.id == id(name, index))
    }

    pub fn state(&self, name: &str, index: u32) -> State {
        self.view(name, index).state
    }

    pub fn run(&self, name: &str, index: u32) -> Option<RunId> {
        self.view(name, index).run
    }

    pub fn reply(&self, token: Token) -> Option<Result<Reply, RequestError>> {
        let mut replies = self.log.iter().filter_map(|(_, a)| match a {
            Action::Reply { token: t, result } if *t == token => Some(result.clone()),
            _ => None,
        });
        let first = replies.next();
        assert!(replies.next().is_none(), "two replies to {token:?}");
        first
    }

    pub fn events(&self) -> Vec<(Duration, Event)> {
        self.log
            .iter()
            .filter_map(|(t, a)| match a {
                Action::Publish(e) => Some((*t, e.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn event_kinds(&self, name: &str, index: u32) -> Vec<EventKind> {
        let want = id(name, index);
        self.events()
            .into_iter()
            .filter(|(_, e)| e.instance.as_ref() == Some(&want))
            .map(|(_, e)| e.kind)
            .collect()
    }

    /// The order in which instances were sent Spawn, as `name:index`.
    pub fn spawn_order(&self) -> Vec<String> {
        self.log
            .iter()
            .filter_map(|(_, a)| match a {
                Action::Spawn { id, .. } => Some(id.to_string()),
                _ => None,
            })
            .collect()
    }

    pub fn spawns_of(&self, name: &str, index: u32) -> Vec<(Duration, RunId)> {
        let want = id(name, index);
        self.log
            .iter()
            .filter_map(|(t, a)| match a {
                Action::Spawn { id, run, .. } if *id == want => Some((*t, *run)),
                _ => None,
            })
            .collect()
    }

    pub fn backoffs(&self, name: &str, index: u32) -> Vec<(u64, u32)> {
        self.event_kinds(name, index)
            .into_iter()
            .filter_map(|k| match k {
                EventKind::Backoff { delay_ms, attempt } => Some((delay_ms, attempt)),
                _ => None,
            })
            .collect()
    }

    /// Where each instance stopped, in the order the stop signal went out
    /// or the instance went straight to stopped.
    pub fn signal_order(&self) -> Vec<String> {
        self.log
            .iter()
            .filter_map(|(_, a)| match a {
                Action::Signal { id, .. } => Some(id.to_string()),
                _ => None,
            })
            .collect()
    }

    pub fn actions_since(&self, mark: usize) -> Vec<Action> {
        self.log[mark..].iter().map(|(_, a)| a.clone()).collect()
    }
}
