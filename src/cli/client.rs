//! The CLI's side of the control API: HTTP/1.1 over the Unix socket.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use crate::api::types::ErrorBody;

pub struct Client {
    socket: PathBuf,
}

/// How long a question that does not wait for programs (status, signal,
/// reload, a log tail) may take before the CLI gives up on the daemon.
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// A failed call, already in words for the user.
#[derive(Debug)]
pub struct CallError {
    pub message: String,
    /// Extra lines (config errors of a rejected reload).
    pub details: Vec<String>,
    /// No daemon answers on the socket (none there, or nobody listening):
    /// verbs that can read the files instead do.
    pub not_running: bool,
    /// The daemon refused the question itself (400, 404: a name that does
    /// not exist, a malformed target): the caller's mistake, exit 2.
    pub refused: bool,
}

impl CallError {
    fn plain(message: String) -> CallError {
        CallError {
            message,
            details: Vec::new(),
            not_running: false,
            refused: false,
        }
    }
}

impl Client {
    pub fn new(socket: &Path) -> Client {
        Client {
            socket: socket.to_path_buf(),
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CallError> {
        self.bounded(async {
            let resp = self.send(Method::GET, path).await?;
            json(resp).await
        })
        .await
    }

    /// A POST whose answer does not wait for programs to start or stop.
    pub async fn post_quick<T: DeserializeOwned>(&self, path: &str) -> Result<T, CallError> {
        self.bounded(self.post(path)).await
    }

    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, CallError>>,
    ) -> Result<T, CallError> {
        tokio::time::timeout(ANSWER_WITHIN, call)
            .await
            .unwrap_or_else(|_| {
                Err(CallError::plain(format!(
                    "ward did not answer within {}s on {}; is the daemon stuck or stopped (SIGSTOP)?",
                    ANSWER_WITHIN.as_secs(),
                    self.socket.display()
                )))
            })
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str) -> Result<T, CallError> {
        let resp = self.send(Method::POST, path).await?;
        json(resp).await
    }

    /// A streamed GET: calls `each` with every chunk of the body as it
    /// comes, until the body ends or `each` returns false. The answer is the
    /// reason ward gave for ending the stream (its `ward-end` trailer:
    /// `stopped` when ward shut down), if it gave one; a connection that
    /// broke instead is an error.
    pub async fn stream(
        &self,
        path: &str,
        mut each: impl FnMut(&[u8]) -> bool,
    ) -> Result<Option<String>, CallError> {
        let mut resp = self.send(Method::GET, path).await?;
        if !resp.status().is_success() {
            return Err(body_error(resp).await);
        }
        while let Some(frame) = resp.body_mut().frame().await {
            let frame = frame
                .map_err(|e| CallError::plain(format!("the connection to ward broke: {e}")))?;
            if let Some(data) = frame.data_ref() {
                if !each(data) {
                    break;
                }
            } else if let Some(trailers) = frame.trailers_ref() {
                let end = trailers
                    .get(crate::api::END_TRAILER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                if end.is_some() {
                    return Ok(end);
                }
            }
        }
        Ok(None)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
    ) -> Result<hyper::Response<Incoming>, CallError> {
        let stream = crate::transport::connect(&self.socket)
            .await
            .map_err(|e| self.connect_error(e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| CallError::plain(format!("cannot talk to ward: {e}")))?;
        tokio::spawn(conn);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "ward")
            // A follow stream that ward ends says why in a trailer.
            .header(hyper::header::TE, "trailers")
            .body(Empty::<Bytes>::new())
            .map_err(|e| CallError::plain(format!("bad request {path}: {e}")))?;
        sender
            .send_request(request)
            .await
            .map_err(|e| CallError::plain(format!("ward did not answer: {e}")))
    }

    fn connect_error(&self, e: std::io::Error) -> CallError {
        let socket = self.socket.display();
        if matches!(
            e.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
        ) {
            return CallError {
                not_running: true,
                ..CallError::plain(format!(
                    "ward is not running (no daemon answers on {socket}); start it with `ward up`"
                ))
            };
        }
        CallError::plain(match e.kind() {
            std::io::ErrorKind::PermissionDenied => {
                format!("permission denied on {socket}: the socket belongs to another user")
            }
            _ => format!("cannot connect to ward on {socket}: {e}"),
        })
    }
}

async fn json<T: DeserializeOwned>(resp: hyper::Response<Incoming>) -> Result<T, CallError> {
    if !resp.status().is_success() {
        return Err(body_error(resp).await);
    }
    let body = read_body(resp).await?;
    serde_json::from_slice(&body)
        .map_err(|e| CallError::plain(format!("ward sent an answer this ward cannot read: {e}")))
}

async fn read_body(resp: hyper::Response<Incoming>) -> Result<Bytes, CallError> {
    resp.into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| CallError::plain(format!("the connection to ward broke: {e}")))
}

async fn body_error(resp: hyper::Response<Incoming>) -> CallError {
    let status = resp.status();
    match read_body(resp).await {
        Ok(body) => match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(err) => CallError {
                message: err.error,
                details: err.details,
                not_running: false,
                refused: matches!(status, StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND),
            },
            Err(_) => CallError::plain(describe_status(status, &body)),
        },
        Err(e) => e,
    }
}

fn describe_status(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        format!("ward answered {status}")
    } else {
        format!("ward answered {status}: {text}")
    }
}

/// What `encode` leaves as it is: letters, digits, `-_.~`, and `:` (so
/// `web:1` stays readable in logs of requests).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b':');

/// Percent-encodes a path segment or query value.
pub fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_segments() {
        assert_eq!(encode("web:1"), "web:1");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(encode("größe?x=1"), "gr%C3%B6%C3%9Fe%3Fx%3D1");
    }
}
