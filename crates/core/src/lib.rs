//! ward-core: the supervision engine, pure.
//!
//! No tokio, no sockets, no files, no processes, no clock reads: the engine
//! is a state machine in the shape of a sans-IO protocol engine. The shell
//! feeds it [`Input`]s with the current time, calls [`Supervisor::handle_timeout`]
//! when [`Supervisor::poll_timeout`] says so, and carries out every
//! [`Action`] that [`Supervisor::poll_action`] yields. Everything the engine
//! decides (restarts, backoff, start limits, stop deadlines, dependency
//! order, reload diffs) is therefore testable on a simulated clock.
#![forbid(unsafe_code)]

mod backoff;
pub mod deps;
mod diff;
pub mod engine;
mod instance;
/// The invariants harness for property tests and fuzzing: not part of the
/// engine's API (the `testkit` feature).
#[cfg(feature = "testkit")]
pub mod invariants;
mod limit;
mod model;
mod rng;
mod spec;
pub mod suggest;
mod timers;

pub use engine::{Restore, Supervisor};
pub use model::*;
pub use spec::*;
