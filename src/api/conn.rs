//! The control API's connections: accepting them, bounding how many one
//! user may hold, and closing those whose client keeps ward waiting.
//!
//! A client must send a request's head within `header_timeout` of
//! connecting (or, on a kept-alive connection, of the head's first byte),
//! and a kept-alive connection with no request under way is closed after
//! `idle_timeout`. Neither cuts an answer under way: while a request is
//! being answered (a follow stream for as long as it lasts) the connection
//! has no deadline. Each peer uid may hold `max_connections_per_user`
//! connections; past that a new one is answered `503` with a JSON error and
//! closed. Counting per uid means another user whom the socket's mode
//! admits cannot take the connections of ward's own user or root; a
//! client of one's own user that holds them all is one's own doing, and
//! what it holds idle goes within the timeouts.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use super::types::ErrorBody;
use crate::transport::{Acceptor, Peer, Stream, UserId};

/// How long ward waits for its clients, and how many connections each
/// user may hold (`[ward.api]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections_per_user: usize,
}

impl From<&ward_config::ApiSettings> for Limits {
    fn from(s: &ward_config::ApiSettings) -> Limits {
        Limits {
            header_timeout: s.header_timeout,
            idle_timeout: s.idle_timeout,
            max_connections_per_user: usize::try_from(s.max_connections_per_user)
                .unwrap_or(usize::MAX),
        }
    }
}

/// Refusals being written at once; past this a connection over the limit
/// is closed without a word, so that a flood of connections costs ward
/// nothing but the accepts.
const REFUSALS_AT_ONCE: usize = 64;

/// How long a refusal waits for the client's request (read and thrown
/// away, so that the client gets to read the answer) before closing.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `stop` resolves; then `closing` is set
/// (follow streams end on it), every connection finishes its answer under
/// way and closes, and this returns once they all have.
pub async fn serve(
    mut listener: Acceptor,
    app: Router,
    limits: Limits,
    closing: watch::Sender<bool>,
    stop: impl Future<Output = ()>,
) {
    let slots = Slots::new(limits.max_connections_per_user);
    // One strong count per refusal under way.
    let refusing = Arc::new(());
    // Every connection task holds a receiver: once they are all gone, so
    // are the connections.
    let (live_tx, live_rx) = watch::channel(());
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let Some(slot) = slots.take(peer.user) else {
            if Arc::strong_count(&refusing) <= REFUSALS_AT_ONCE {
                let token = refusing.clone();
                let message = slots.refusal(peer.user);
                tokio::spawn(async move {
                    refuse(stream, &message).await;
                    drop(token);
                });
            }
            continue;
        };
        let app = app.clone();
        let closing = closing.subscribe();
        let live = live_rx.clone();
        tokio::spawn(async move {
            connection(stream, peer, app, limits, closing).await;
            drop(slot);
            drop(live);
        });
    }
    // No one new gets in; streams end; answers under way finish.
    drop(listener);
    let _ = closing.send(true);
    drop(live_rx);
    live_tx.closed().await;
}

/// One connection, until the client leaves, a timeout closes it, or ward
/// stops (then after the answer under way).
async fn connection(
    stream: Stream,
    peer: Peer,
    app: Router,
    limits: Limits,
    mut closing: watch::Receiver<bool>,
) {
    let clock = Arc::new(Mutex::new(Clock::new()));
    let io = TokioIo::new(Watched::new(stream, clock.clone(), limits));
    let tower = TowerToHyperService::new(app);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer.clone()));
        let answering = Answering::begin(&clock);
        let call = hyper::service::Service::call(&tower, request);
        async move {
            let response = call.await?;
            Ok::<_, std::convert::Infallible>(response.map(|body| {
                Body::new(Tracked {
                    body,
                    _answering: answering,
                })
            }))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(conn);
    let mut closing_seen = *closing.borrow();
    if closing_seen {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            changed = closing.changed(), if !closing_seen => {
                closing_seen = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Answers a connection over the limit with a `503` and a JSON error, then
/// closes it. The answer goes out once the client's request head is in (or
/// a short while has passed): an HTTP client takes an answer that comes
/// before its request for a broken connection.
async fn refuse(mut stream: Stream, message: &str) {
    let body = serde_json::to_string(&ErrorBody {
        error: message.to_string(),
        details: Vec::new(),
    })
    .unwrap_or_default();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let linger = Instant::now() + REFUSAL_LINGER;
    let mut buf = [0u8; 1024];
    let mut seen = Vec::new();
    let _ = tokio::time::timeout_at(linger, async {
        while seen.len() < 16 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                return;
            }
        }
    })
    .await;
    // A fresh socket's buffer takes the answer whole; the bound covers a
    // peer that somehow does not.
    let wrote = tokio::time::timeout(REFUSAL_LINGER, stream.write_all(answer.as_bytes())).await;
    if !matches!(wrote, Ok(Ok(()))) {
        return;
    }
    let _ = stream.shutdown().await;
    // Whatever else the client sends is read and dropped until it closes
    // (briefly): closing with unread data would reset the connection, and
    // the client might lose the answer.
    let _ = tokio::time::timeout_at(linger + REFUSAL_LINGER, async {
        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Connections open per peer user.
struct Slots {
    max: usize,
    open: Arc<Mutex<HashMap<Option<UserId>, usize>>>,
}

/// One open connection's place in its user's count; given back on drop.
struct Slot {
    user: Option<UserId>,
    open: Arc<Mutex<HashMap<Option<UserId>, usize>>>,
}

impl Slots {
    fn new(max: usize) -> Slots {
        Slots {
            max,
            open: Default::default(),
        }
    }

    fn take(&self, user: Option<UserId>) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(user).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot {
            user,
            open: self.open.clone(),
        })
    }

    fn refusal(&self, user: Option<UserId>) -> String {
        let who = user
            .map(|u| u.to_string())
            .unwrap_or_else(|| "a peer of unknown uid".into());
        format!(
            "too many connections: {who} already has {} open to this ward, its limit \
             ([ward.api] max_connections_per_user); try again once some close",
            self.max
        )
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

/// Where a connection is between requests: what its read deadline is.
struct Clock {
    /// Requests handed to the router whose answers are not finished.
    answering: usize,
    /// When the connection opened, or the last answer finished.
    since: Instant,
    /// No request has come yet: the first head is due `header_timeout`
    /// after connecting.
    fresh: bool,
    /// The first byte read since `since`, on a kept-alive connection.
    first_byte: Option<Instant>,
    /// The connection's task, parked on a read: woken when an answer
    /// finishes, so that the idle deadline is armed at once.
    reader: Option<Waker>,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            answering: 0,
            since: Instant::now(),
            fresh: true,
            first_byte: None,
            reader: None,
        }
    }

    /// When the connection must be closed unless a request head completes;
    /// none while an answer is under way.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        if self.answering > 0 {
            return None;
        }
        Some(match (self.fresh, self.first_byte) {
            (true, _) => self.since + limits.header_timeout,
            (false, Some(first)) => first + limits.header_timeout,
            (false, None) => self.since + limits.idle_timeout,
        })
    }

    fn what_timed_out(&self) -> &'static str {
        if self.fresh || self.first_byte.is_some() {
            "no complete request head within [ward.api] header_timeout"
        } else {
            "idle past [ward.api] idle_timeout"
        }
    }
}

/// A request being answered; dropped with its answer's body (sent whole,
/// or abandoned), which puts the connection back on the clock.
struct Answering(Arc<Mutex<Clock>>);

impl Answering {
    fn begin(clock: &Arc<Mutex<Clock>>) -> Answering {
        let mut c = clock.lock().unwrap_or_else(|p| p.into_inner());
        c.answering += 1;
        c.fresh = false;
        drop(c);
        Answering(clock.clone())
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        c.answering = c.answering.saturating_sub(1);
        if c.answering == 0 {
            c.since = Instant::now();
            c.first_byte = None;
            if let Some(reader) = c.reader.take() {
                reader.wake();
            }
        }
    }
}

/// An answer's body, which ends the request's `Answering` with it.
struct Tracked {
    body: Body,
    _answering: Answering,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, with the connection's read deadline enforced on it: a read
/// that would wait past the deadline fails with `TimedOut`, which ends the
/// connection.
struct Watched {
    stream: Stream,
    clock: Arc<Mutex<Clock>>,
    limits: Limits,
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
}

impl Watched {
    fn new(stream: Stream, clock: Arc<Mutex<Clock>>, limits: Limits) -> Watched {
        Watched {
            stream,
            clock,
            limits,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: None,
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let mut c = this.clock.lock().unwrap_or_else(|p| p.into_inner());
                    if c.answering == 0 && c.first_byte.is_none() {
                        c.first_byte = Some(Instant::now());
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let mut c = this.clock.lock().unwrap_or_else(|p| p.into_inner());
                c.reader = Some(cx.waker().clone());
                let Some(deadline) = c.deadline(&this.limits) else {
                    return Poll::Pending;
                };
                let what = c.what_timed_out();
                drop(c);
                if this.armed != Some(deadline) {
                    this.sleep.as_mut().reset(deadline);
                    this.armed = Some(deadline);
                }
                match this.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            max_connections_per_user: 2,
        }
    }

    #[test]
    fn slots_are_counted_per_uid_and_given_back() {
        let slots = Slots::new(2);
        let a = slots.take(Some(UserId(1000))).expect("first");
        let _b = slots.take(Some(UserId(1000))).expect("second");
        assert!(
            slots.take(Some(UserId(1000))).is_none(),
            "a third for the same uid"
        );
        // Another user is not held up by the first one's connections.
        let _c = slots.take(Some(UserId(1001))).expect("another uid");
        let _d = slots.take(Some(UserId(0))).expect("root");
        drop(a);
        assert!(
            slots.take(Some(UserId(1000))).is_some(),
            "a slot given back"
        );
        assert!(slots.refusal(Some(UserId(1000))).contains("uid 1000"));
    }

    #[test]
    fn the_deadline_follows_the_connection() {
        let limits = limits();
        let clock = Arc::new(Mutex::new(Clock::new()));
        let opened = clock.lock().unwrap().since;
        // Fresh: the first head is due header_timeout after connecting,
        // even once its first byte has come.
        assert_eq!(
            clock.lock().unwrap().deadline(&limits),
            Some(opened + limits.header_timeout)
        );
        clock.lock().unwrap().first_byte = Some(opened + Duration::from_secs(1));
        assert_eq!(
            clock.lock().unwrap().deadline(&limits),
            Some(opened + limits.header_timeout)
        );
        // Answering: no deadline at all.
        let answering = Answering::begin(&clock);
        assert_eq!(clock.lock().unwrap().deadline(&limits), None);
        drop(answering);
        // Kept alive: idle_timeout from the answer's end, then
        // header_timeout from the next request's first byte.
        let ended = clock.lock().unwrap().since;
        assert!(ended >= opened);
        assert_eq!(
            clock.lock().unwrap().deadline(&limits),
            Some(ended + limits.idle_timeout)
        );
        clock.lock().unwrap().first_byte = Some(ended + Duration::from_secs(20));
        assert_eq!(
            clock.lock().unwrap().deadline(&limits),
            Some(ended + Duration::from_secs(25))
        );
    }
}
