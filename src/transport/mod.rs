//! How clients reach the control API, and who they are.
//!
//! On Unix a socket, whose file mode is the first gate and whose peers'
//! credentials (`SO_PEERCRED`, `getpeereid`) the second (`unix.rs`); on
//! Windows a named pipe whose security descriptor is the gate
//! (`windows.rs`). A TCP listener with a token may come later. Each is a
//! module here that provides the same four things, so that neither the
//! daemon nor the CLI knows which one it uses:
//!
//! - `bind(endpoint, mode) -> Listener`: made before the runtime starts;
//! - `Listener::into_acceptor() -> Acceptor`, and `Acceptor::accept()`,
//!   which gives a connection (`Stream`) and its [`Peer`];
//! - `connect(endpoint) -> Stream`, for the CLI;
//! - `release(endpoint)`: what a daemon that stops leaves tidy.

#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;
#[cfg(all(test, unix))]
pub use unix::testing;
#[cfg(unix)]
pub use unix::{bind, connect, release, Acceptor, Listener, Stream};
#[cfg(windows)]
pub use windows::{bind, connect, release, Acceptor, Listener, Stream};

use std::fmt;

/// A user, as the transport knows users: connections are counted per user.
/// On Unix, a uid; on Windows, a digest of the account's SID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserId(pub u32);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "uid {}", self.0)
    }
}

/// Who is on the other end of a connection, and whether the endpoint's
/// rules let them in (decided by the transport as it accepts).
#[derive(Debug, Clone)]
pub struct Peer {
    /// `None` when the transport could not tell.
    pub user: Option<UserId>,
    /// `None`: admitted. Otherwise why not, in words for the client.
    pub refused: Option<String>,
}
