//! The control API: one axum router, served on a Unix socket whose file
//! permissions are the authentication (and the peer's uid is checked on
//! every connection as well). The CLI is a client of exactly this API.
//! `docs/api.md` documents every endpoint.

mod conn;
mod detail;
pub mod types;

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use hyper::body::Frame;
use serde::Deserialize;
use tokio::sync::{broadcast, oneshot, watch};
use ward_core::{InstanceId, Reply, Request, RequestError, Signal, Target};

use crate::inbox::{ApiError, Ask, Msg, Shared};
use types::{ActionResult, ErrorBody, InstanceStatus, LastExit, ReloadResult};

use crate::transport::{self, Listener};
pub use conn::Limits;

/// The trailer that ends a follow stream ward ended itself, and why
/// (`stopped`: ward is shutting down). The CLI asks for it with
/// `TE: trailers`; a connection that breaks has none.
pub const END_TRAILER: &str = "ward-end";

/// The server-sent event that ends `GET /v1/events?follow=true` when ward
/// shuts down.
pub const END_EVENT: &str = "end";

/// Set once ward is stopping: follow streams end on it.
#[derive(Clone)]
struct Closing(watch::Receiver<bool>);

impl Closing {
    async fn wait(&mut self) {
        // A dropped sender means the server is gone: stop as well.
        let _ = self.0.wait_for(|closing| *closing).await;
    }
}

/// Serves until `stop` resolves, then ends the follow streams, lets
/// answers under way finish, and returns once every connection is closed.
pub async fn serve(
    listener: Listener,
    shared: Shared,
    limits: Limits,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let acceptor = match listener.into_acceptor() {
        Ok(acceptor) => acceptor,
        Err(e) => {
            let _ = shared.tx.send(Msg::Event(ward_core::Event {
                instance: None,
                run: None,
                kind: ward_core::EventKind::Notice {
                    message: format!("cannot serve the control socket: {e}"),
                },
            }));
            return;
        }
    };
    let (closing, closing_rx) = watch::channel(false);
    let app = router(shared, closing_rx).layer(axum::middleware::from_fn(admit));
    conn::serve(acceptor, app, limits, closing, stop).await;
}

/// Middleware: a peer the transport did not admit gets a plain 403 with
/// the transport's words, which the CLI shows as they are.
async fn admit(
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<transport::Peer>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match peer.refused {
        None => next.run(request).await,
        Some(why) => error(StatusCode::FORBIDDEN, why),
    }
}

/// Every endpoint; follow streams end once `closing` turns true.
fn router(shared: Shared, closing: watch::Receiver<bool>) -> Router {
    Router::new()
        .route("/v1/ping", get(ping))
        .route("/v1/status", get(status))
        .route("/v1/instances/{target}", get(detail::instances))
        .route("/v1/programs/{target}/start", post(start))
        .route("/v1/programs/{target}/stop", post(stop))
        .route("/v1/programs/{target}/restart", post(restart))
        .route("/v1/programs/{target}/signal/{signal}", post(signal))
        // An empty signal name would otherwise match no route at all.
        .route("/v1/programs/{target}/signal", post(no_signal))
        .route("/v1/programs/{target}/signal/", post(no_signal))
        .route("/v1/reload", post(reload))
        .route("/v1/shutdown", post(shutdown))
        .route("/v1/logs/{target}", get(logs))
        .route("/v1/events", get(events))
        .route("/v1/stats", get(stats))
        .layer(Extension(Closing(closing)))
        .with_state(shared)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.into(),
            details: Vec::new(),
        }),
    )
        .into_response()
}

fn request_error(e: RequestError) -> Response {
    let status = match e {
        RequestError::NoSuchProgram { .. } | RequestError::NoSuchInstance { .. } => {
            StatusCode::NOT_FOUND
        }
        RequestError::ShuttingDown => StatusCode::CONFLICT,
    };
    error(status, e.to_string())
}

/// The counters since ward started (`crate::stats`).
async fn stats(State(shared): State<Shared>) -> Json<crate::stats::Report> {
    let snapshot = shared.snapshot.borrow().clone();
    Json(shared.stats.report(&snapshot))
}

async fn ping(State(shared): State<Shared>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "pid": std::process::id(),
        "version": env!("CARGO_PKG_VERSION"),
        "lock": shared.lock,
        "trees": match &shared.trees_fallback {
            None => serde_json::json!({"mode": "cgroup"}),
            Some(reason) => serde_json::json!({"mode": "process-group", "reason": reason}),
        },
    }))
}

#[derive(Deserialize)]
struct StatusQuery {
    name: Option<String>,
}

async fn status(State(shared): State<Shared>, Query(q): Query<StatusQuery>) -> Response {
    let snapshot = shared.snapshot.borrow().clone();
    let now = shared.now();
    let target = match q.name.as_deref().map(parse_target) {
        Some(Ok(target)) => Some(target),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, e),
        None => None,
    };
    let views = match snapshot.select(target.as_ref().unwrap_or(&Target::All)) {
        Ok(views) => views,
        Err(e) => return request_error(e),
    };
    let selected: Vec<InstanceStatus> = views
        .iter()
        .map(|v| InstanceStatus::from_view(v, now))
        .collect();
    Json(selected).into_response()
}

/// `all`, `api`, `api:1`.
pub fn parse_target(s: &str) -> Result<Target, String> {
    if s == "all" {
        return Ok(Target::All);
    }
    match s.rsplit_once(':') {
        Some((program, index)) => match index.parse::<u32>() {
            Ok(i) if !program.is_empty() => Ok(Target::Instance(program.to_string(), i)),
            _ => Err(format!(
                "{s:?} is not a program name, NAME:INDEX or \"all\""
            )),
        },
        None if !s.is_empty() => Ok(Target::Program(s.to_string())),
        None => Err("empty program name".into()),
    }
}

async fn ask(shared: &Shared, ask: Ask) -> Result<Reply, Response> {
    let (reply, answer) = oneshot::channel();
    if shared.tx.send(Msg::Request { ask, reply }).is_err() {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ward is shutting down",
        ));
    }
    match answer.await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(ApiError::Request(e))) => Err(request_error(e)),
        Ok(Err(ApiError::Config(details))) => Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(ErrorBody {
                error: "the config has errors; nothing was changed".into(),
                details,
            }),
        )
            .into_response()),
        Err(_) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ward is shutting down",
        )),
    }
}

async fn act(shared: Shared, target: String, make: fn(Target) -> Request) -> Response {
    let target = match parse_target(&target) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match ask(&shared, Ask::Engine(make(target))).await {
        Ok(reply) => done(&shared, reply),
        Err(resp) => resp,
    }
}

fn done(shared: &Shared, reply: Reply) -> Response {
    let now = shared.now();
    match reply {
        Reply::Done { instances } => Json(ActionResult {
            instances: instances
                .iter()
                .map(|v| InstanceStatus::from_view(v, now))
                .collect(),
        })
        .into_response(),
        Reply::Reloaded {
            diff,
            dry_run,
            instances,
        } => Json(ReloadResult::from_reply(&diff, dry_run, &instances)).into_response(),
    }
}

async fn start(State(shared): State<Shared>, UrlPath(target): UrlPath<String>) -> Response {
    act(shared, target, Request::Start).await
}

async fn stop(State(shared): State<Shared>, UrlPath(target): UrlPath<String>) -> Response {
    act(shared, target, Request::Stop).await
}

async fn restart(State(shared): State<Shared>, UrlPath(target): UrlPath<String>) -> Response {
    act(shared, target, Request::Restart).await
}

/// A signal by name (`HUP`, `SIGUSR1`, `term`), or the usage error that
/// lists every name ward knows. The CLI checks its argument with this too.
pub fn parse_signal(name: &str) -> Result<Signal, String> {
    if let Some(sig) = Signal::from_name(name) {
        return crate::proc::check_signal(sig).map(|()| sig);
    }
    Err({
        let names: Vec<&str> = Signal::ALL
            .iter()
            .filter(|s| crate::proc::check_signal(**s).is_ok())
            .map(|s| s.name())
            .collect();
        let what = if name.trim().is_empty() {
            "empty signal name".to_string()
        } else {
            format!("unknown signal {name:?}")
        };
        format!(
            "{what}; expected one of {} (with or without SIG, any case)",
            names.join(", ")
        )
    })
}

async fn no_signal() -> Response {
    let message = parse_signal("").err().unwrap_or_default();
    error(StatusCode::BAD_REQUEST, message)
}

#[derive(Deserialize)]
struct SignalQuery {
    /// Every process of each tree, not only the main process.
    #[serde(default)]
    tree: bool,
}

async fn signal(
    State(shared): State<Shared>,
    UrlPath((target, sig)): UrlPath<(String, String)>,
    Query(q): Query<SignalQuery>,
) -> Response {
    let sig = match parse_signal(&sig) {
        Ok(sig) => sig,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let target = match parse_target(&target) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let request = if q.tree {
        Request::SignalTree(target, sig)
    } else {
        Request::Signal(target, sig)
    };
    match ask(&shared, Ask::Engine(request)).await {
        Ok(reply) => done(&shared, reply),
        Err(resp) => resp,
    }
}

#[derive(Deserialize)]
struct ReloadQuery {
    #[serde(default)]
    dry_run: bool,
}

async fn reload(State(shared): State<Shared>, Query(q): Query<ReloadQuery>) -> Response {
    match ask(&shared, Ask::Reload { dry_run: q.dry_run }).await {
        Ok(reply) => done(&shared, reply),
        Err(resp) => resp,
    }
}

async fn shutdown(State(shared): State<Shared>) -> Response {
    match ask(&shared, Ask::Engine(Request::Shutdown)).await {
        Ok(reply) => done(&shared, reply),
        Err(resp) => resp,
    }
}

#[derive(Deserialize)]
struct LogsQuery {
    #[serde(default = "default_lines")]
    n: usize,
    #[serde(default)]
    follow: bool,
    /// With `follow`: a line where each new run begins, for a terminal
    /// (never written to the files): `plain`, or `dim` (ANSI faint).
    #[serde(default)]
    marks: Option<Marks>,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Marks {
    Plain,
    Dim,
}

/// Past lines or events shown when a query does not say how many.
const DEFAULT_LINES: usize = 20;

fn default_lines() -> usize {
    DEFAULT_LINES
}

async fn logs(
    State(shared): State<Shared>,
    Extension(closing): Extension<Closing>,
    UrlPath(target): UrlPath<String>,
    Query(q): Query<LogsQuery>,
) -> Response {
    let target = match parse_target(&target) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let snapshot = shared.snapshot.borrow().clone();
    let ids: Vec<InstanceId> = match snapshot.select(&target) {
        Ok(views) => views.iter().map(|v| v.id.clone()).collect(),
        Err(e) => return request_error(e),
    };
    let prefixed = prefix_width(&ids);
    let dirs: Arc<HashMap<String, PathBuf>> = shared.log_dirs.borrow().clone();

    // Subscribe before reading the files, so nothing written in between is
    // missed (a line may show twice; none is lost).
    let live: Vec<(InstanceId, broadcast::Receiver<Bytes>)> = if q.follow {
        let mut hub = shared.logs.lock().unwrap_or_else(|p| p.into_inner());
        ids.iter()
            .map(|id| {
                let tx = hub
                    .entry(id.clone())
                    .or_insert_with(|| broadcast::channel(crate::inbox::FOLLOW_CHUNKS).0);
                (id.clone(), tx.subscribe())
            })
            .collect()
    } else {
        Vec::new()
    };

    let files: Vec<(InstanceId, PathBuf)> = ids
        .iter()
        .filter_map(|id| Some((id.clone(), dirs.get(&*id.program)?.clone())))
        .collect();
    let n = q.n;
    let read = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let mut head = Vec::new();
        for (id, dir) in &files {
            match crate::logs::tail(dir, &id.program, id.index, n) {
                Ok(bytes) => head.extend(prefix_lines(&id.to_string(), &bytes, prefixed)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot read the log of {id}: {e}")),
            }
        }
        Ok(head)
    })
    .await;
    let head = match read {
        Ok(Ok(head)) => Bytes::from(head),
        Ok(Err(message)) => return error(StatusCode::INTERNAL_SERVER_ERROR, message),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if !q.follow {
        return ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], head).into_response();
    }

    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(FOLLOW_QUEUE);
    for (id, mut sub) in live {
        let tx = tx.clone();
        let name = id.to_string();
        tokio::spawn(async move {
            loop {
                // A follower that left ends this task at once, not at the
                // next line of a quiet program.
                let received = tokio::select! {
                    received = sub.recv() => received,
                    () = tx.closed() => return,
                };
                let chunk = match received {
                    Ok(chunk) => Bytes::from(prefix_lines(&name, &chunk, prefixed)),
                    Err(broadcast::error::RecvError::Lagged(n)) => Bytes::from(format!(
                        "[ward: {n} chunks of {name} skipped: reader too slow]\n"
                    )),
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
        });
    }
    if let (Some(marks), true) = (q.marks, q.follow) {
        let last_exits: HashMap<InstanceId, String> = snapshot
            .instances
            .iter()
            .filter(|v| ids.contains(&v.id))
            .filter_map(|v| {
                let end = v.last_end.as_ref()?;
                Some((v.id.clone(), LastExit::from_end(end).short()))
            })
            .collect();
        let (_, events) = shared.events.subscribe_with_recent(0);
        tokio::spawn(run_marks(
            ids.clone(),
            marks,
            last_exits,
            events,
            tx.clone(),
        ));
    }
    drop(tx);
    let follow = Follow {
        head: Some(head),
        rx,
        closing,
        left: FOLLOW_QUEUE,
        ended: false,
    };
    let stream = futures_util::stream::unfold(follow, Follow::next);
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::TRAILER, END_TRAILER),
        ],
        Body::new(http_body_util::StreamBody::new(stream)),
    )
        .into_response()
}

/// For a terminal following logs: a dim line as each instance of `ids`
/// begins a new run, `— web:0 restarted (exit 1), run 7 —`.
async fn run_marks(
    ids: Vec<InstanceId>,
    marks: Marks,
    mut last_exits: HashMap<InstanceId, String>,
    mut events: broadcast::Receiver<Arc<crate::bus::Stamped>>,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) {
    use ward_core::{EventKind, RunEnd};
    loop {
        let stamped = tokio::select! {
            received = events.recv() => match received {
                Ok(stamped) => stamped,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = tx.closed() => return,
        };
        let event = &stamped.event;
        let Some(id) = event.instance.as_ref().filter(|id| ids.contains(id)) else {
            continue;
        };
        let end = match &event.kind {
            EventKind::Exited { status, .. } => RunEnd::Exited { status: *status },
            EventKind::SpawnFailed { error } => RunEnd::SpawnFailed {
                error: error.clone(),
            },
            EventKind::Spawned { .. } => {
                let run = event
                    .run
                    .map(|r| format!(", run {}", r.0))
                    .unwrap_or_default();
                let what = match last_exits.remove(id) {
                    Some(exit) => format!("restarted ({exit})"),
                    None => "started".into(),
                };
                let mark = match marks {
                    Marks::Dim => format!("\x1b[2m— {id} {what}{run} —\x1b[22m\n"),
                    Marks::Plain => format!("— {id} {what}{run} —\n"),
                };
                if tx.send(Bytes::from(mark)).await.is_err() {
                    return;
                }
                continue;
            }
            _ => continue,
        };
        last_exits.insert(id.clone(), LastExit::from_end(&end).short());
    }
}

/// Chunks a log follower's stream queues between the per-instance tasks
/// and the connection (also the most it sends once ward is stopping).
const FOLLOW_QUEUE: usize = 64;

/// A `logs?follow` stream: the tail, then live chunks; when ward stops,
/// what is queued and the end trailer.
struct Follow {
    head: Option<Bytes>,
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    closing: Closing,
    /// Chunks that may still go out once ward is stopping.
    left: usize,
    ended: bool,
}

impl Follow {
    async fn next(mut self) -> Option<(Result<Frame<Bytes>, Infallible>, Follow)> {
        if self.ended {
            return None;
        }
        if let Some(head) = self.head.take().filter(|h| !h.is_empty()) {
            return Some((Ok(Frame::data(head)), self));
        }
        tokio::select! {
            biased;
            () = self.closing.wait() => {}
            chunk = self.rx.recv() => match chunk {
                Some(chunk) => return Some((Ok(Frame::data(chunk)), self)),
                // Every instance followed is gone from the config.
                None => return None,
            },
        }
        // Stopping: what is queued already (a bounded number), then the end.
        if self.left > 0 {
            self.left -= 1;
            if let Ok(chunk) = self.rx.try_recv() {
                return Some((Ok(Frame::data(chunk)), self));
            }
        }
        self.ended = true;
        let mut trailers = HeaderMap::new();
        trailers.insert(END_TRAILER, HeaderValue::from_static("stopped"));
        Some((Ok(Frame::trailers(trailers)), self))
    }
}

/// With several instances, each line gets its instance's name in front,
/// padded to the longest name so the lines stay aligned (as `ward up`
/// does); one instance's lines go as stored (`None`).
pub(crate) fn prefix_width(ids: &[InstanceId]) -> Option<usize> {
    (ids.len() > 1).then(|| {
        ids.iter()
            .map(|id| id.to_string().chars().count())
            .max()
            .unwrap_or(0)
    })
}

/// `bytes`' lines with `name | ` in front (padded to `width`), or as they
/// are without a width.
pub(crate) fn prefix_lines(name: &str, bytes: &[u8], width: Option<usize>) -> Vec<u8> {
    let Some(width) = width else {
        return bytes.to_vec();
    };
    let prefix = format!("{name:<width$} | ");
    let mut out = Vec::with_capacity(bytes.len() + 16);
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(line);
    }
    out
}

#[derive(Deserialize)]
struct EventsQuery {
    /// How many past events: 20 by default without `follow`, none with it.
    n: Option<usize>,
    #[serde(default)]
    follow: bool,
}

async fn events(
    State(shared): State<Shared>,
    Extension(closing): Extension<Closing>,
    Query(q): Query<EventsQuery>,
) -> Response {
    if q.follow {
        let n = q.n.unwrap_or(0);
        let (past, rx) = shared.events.subscribe_with_recent(n);
        let past_lines = match last_events(&shared, past, n).await {
            Ok(lines) => lines,
            Err(response) => return response,
        };
        let follow = EventFollow {
            past: past_lines.into(),
            rx,
            closing,
            stopping: None,
            ended: false,
        };
        let stream = futures_util::stream::unfold(follow, EventFollow::next);
        return Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response();
    }
    let n = q.n.unwrap_or(DEFAULT_LINES);
    // This ward's latest events from memory (current even before the
    // journal's writer has written them), older ones from the journal.
    let (past, _) = shared.events.subscribe_with_recent(n);
    match last_events(&shared, past, n).await {
        Ok(lines) => {
            let mut body = String::new();
            for line in lines {
                body.push_str(&line);
                body.push('\n');
            }
            ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
        }
        Err(response) => response,
    }
}

/// The last `n` events as journal lines: `past` (this ward's, from
/// memory), preceded by older ones from the journal when `past` has fewer
/// than `n` (earlier runs of ward, or past the in-memory window). The
/// journal may lag behind memory: a line both hold is taken once.
async fn last_events(
    shared: &Shared,
    past: Vec<Arc<crate::bus::Stamped>>,
    n: usize,
) -> Result<Vec<String>, Response> {
    // Serialised here, at the edge.
    let mut lines: Vec<String> = past.iter().map(|e| e.line()).collect();
    if lines.len() >= n {
        return Ok(lines);
    }
    let want = n - lines.len();
    let path = shared.journal.clone();
    let older = match tokio::task::spawn_blocking(move || crate::bus::journal_tail(&path, n)).await
    {
        Ok(Ok(older)) => older,
        Ok(Err(e)) => {
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read {}: {e}", shared.journal.display()),
            ))
        }
        Err(e) => return Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    };
    let known: std::collections::HashSet<&str> = lines.iter().map(String::as_str).collect();
    let older: Vec<String> = String::from_utf8_lossy(&older)
        .lines()
        .filter(|line| !known.contains(line))
        .map(str::to_string)
        .collect();
    let skip = older.len().saturating_sub(want);
    lines.splice(0..0, older.into_iter().skip(skip));
    Ok(lines)
}

/// An `events?follow` stream: live events; when ward stops, what is
/// queued and the end event.
struct EventFollow {
    /// Past events asked for (`n`), sent first.
    past: std::collections::VecDeque<String>,
    rx: broadcast::Receiver<Arc<crate::bus::Stamped>>,
    closing: Closing,
    /// Once ward stops: how many queued events may still go out.
    stopping: Option<usize>,
    ended: bool,
}

impl EventFollow {
    async fn next(mut self) -> Option<(Result<SseEvent, Infallible>, EventFollow)> {
        if self.ended {
            return None;
        }
        if let Some(line) = self.past.pop_front() {
            return Some((Ok(SseEvent::default().data(&*line)), self));
        }
        let received = match self.stopping {
            Some(_) => None,
            None => tokio::select! {
                biased;
                () = self.closing.wait() => {
                    self.stopping = Some(FOLLOW_QUEUE);
                    None
                }
                received = self.rx.recv() => Some(received),
            },
        };
        let received = match received {
            Some(received) => received,
            // Stopping: what was published before, then the end event.
            None => {
                let left = self.stopping.unwrap_or(0);
                self.stopping = Some(left.saturating_sub(1));
                match self.rx.try_recv() {
                    Ok(line) if left > 0 => Ok(line),
                    Err(broadcast::error::TryRecvError::Lagged(n)) if left > 0 => {
                        Err(broadcast::error::RecvError::Lagged(n))
                    }
                    _ => {
                        self.ended = true;
                        let end = SseEvent::default()
                            .event(END_EVENT)
                            .data(r#"{"reason":"stopped"}"#);
                        return Some((Ok(end), self));
                    }
                }
            }
        };
        let data = match received {
            Ok(event) => event.line(),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                format!("{{\"event\":\"lagged\",\"skipped\":{n}}}")
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(SseEvent::default().data(data)), self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(parse_target("all"), Ok(Target::All));
        assert_eq!(parse_target("api"), Ok(Target::Program("api".into())));
        assert_eq!(parse_target("web:2"), Ok(Target::Instance("web".into(), 2)));
        assert!(parse_target("web:x").is_err());
        assert!(parse_target(":1").is_err());
        assert!(parse_target("").is_err());
    }

    #[test]
    fn prefixes_every_line() {
        assert_eq!(
            prefix_lines("w:1", b"a\nb\n", Some(3)),
            b"w:1 | a\nw:1 | b\n"
        );
        assert_eq!(prefix_lines("w:1", b"a\n", Some(7)), b"w:1     | a\n");
        assert_eq!(prefix_lines("w:1", b"a\n", None), b"a\n");
    }
}
