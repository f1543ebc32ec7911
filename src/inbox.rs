//! What reaches the driver (its inbox) and what the API reads back: the
//! types the driver, the run tasks and the API share, so that none of them
//! has to know the others.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use ward_core::{Event, Input, InstanceId, Reply, Request, RequestError, RunId, Snapshot};

use crate::proc::Tree;
use crate::state::LiveRecord;

/// Everything that reaches the driver.
pub enum Msg {
    Input(Input),
    /// A request from the API; the reply goes back on `reply`.
    Request {
        ask: Ask,
        reply: oneshot::Sender<Result<Reply, ApiError>>,
    },
    /// The config file, read for a reload off the driver (a slow or stuck
    /// file must not hold up supervision).
    ConfigLoaded {
        result: Box<Result<ward_config::Config, ward_config::Diagnostics>>,
        dry_run: bool,
        reply: oneshot::Sender<Result<Reply, ApiError>>,
    },
    /// A run's process exists: its tree, for signals and the state file.
    RunStarted {
        id: InstanceId,
        run: RunId,
        tree: Tree,
        record: LiveRecord,
    },
    /// An event the shell itself has to report.
    Event(Event),
    /// Asked from outside: a signal, later a service manager.
    Control(crate::hooks::Control),
    /// A writer thread has something to report (a write failing, or
    /// working again): the next turn says it.
    Wake,
}

/// What the API asks of the daemon.
#[derive(Debug)]
pub enum Ask {
    /// A request the engine answers as it is.
    Engine(Request),
    /// Re-read the config file, then reload (or just diff, with
    /// `dry_run`): the shell reads the file, the engine applies it.
    Reload { dry_run: bool },
}

#[derive(Debug)]
pub enum ApiError {
    Request(RequestError),
    /// The config file has errors (each rendered, one per item).
    Config(Vec<String>),
}

/// What the API reads: the latest snapshot and the clock it is measured on.
#[derive(Clone)]
pub struct Shared {
    pub tx: mpsc::UnboundedSender<Msg>,
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    pub epoch: Instant,
    pub events: crate::bus::Feed,
    /// The counters (`GET /v1/stats`).
    pub stats: crate::stats::Stats,
    pub journal: PathBuf,
    /// The state dir's lock file: the daemon lets go of it last, so a
    /// client that can take it knows the daemon is gone.
    pub lock: PathBuf,
    pub logs: LogHub,
    /// Program → log dir, for reading log files.
    pub log_dirs: watch::Receiver<Arc<HashMap<String, PathBuf>>>,
    /// The programs as configured (the last accepted reload's).
    pub specs: watch::Receiver<Arc<ward_core::SpecSet>>,
    /// Why process trees are tracked without cgroups, when they are.
    pub trees_fallback: Option<String>,
}

impl Shared {
    pub fn now(&self) -> ward_core::Time {
        self.epoch.elapsed()
    }
}

/// The follow channels of every instance, for `GET /v1/logs?follow`.
pub type LogHub = Arc<Mutex<HashMap<InstanceId, broadcast::Sender<Bytes>>>>;

/// Chunks a `ward logs -f` follower may fall behind before it is told it
/// skipped some. Each chunk is a read's worth of lines (up to 256 KiB), so
/// a few are plenty, and every instance holds one channel.
pub const FOLLOW_CHUNKS: usize = 16;
