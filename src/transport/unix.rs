//! The control socket on Unix: binding it safely, and deciding who may
//! use it.
//!
//! The file mode is the first gate. The second is the peer's credentials
//! on every connection (`SO_PEERCRED` on Linux, `getpeereid` elsewhere,
//! through tokio): ward's own uid and root are always served; other users
//! only as far as the socket's mode grants them (its group, or everyone),
//! so loosening the mode is the one way to share.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Peer, UserId};

/// A connection to the control socket.
pub type Stream = tokio::net::UnixStream;

/// Connects to the daemon's socket (the CLI's side).
pub async fn connect(path: &Path) -> io::Result<Stream> {
    tokio::net::UnixStream::connect(path).await
}

/// Removes the socket file of a daemon that stops (it holds the state
/// dir's lock, so the file is its own).
pub fn release(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// The bound control socket, made before the runtime starts.
pub struct Listener {
    inner: std::os::unix::net::UnixListener,
    /// Where it lives (the listener itself knows only its temporary name).
    path: PathBuf,
}

/// Binds the control socket at `path` with `mode`, replacing a stale socket
/// file left by a ward that died. The caller holds the state-dir lock, so
/// no other ward of this state dir can be answering; a socket that still
/// answers belongs to another ward and is left alone.
pub fn bind(path: &Path, mode: u32) -> Result<Listener, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(format!(
                    "{} exists and is not a socket; remove it or set [ward] socket",
                    path.display()
                ));
            }
            let me = own_uid();
            if me != Some(0) && me != Some(meta.uid()) {
                return Err(format!(
                    "the socket {} belongs to uid {}; ward will not take it over",
                    path.display(),
                    meta.uid()
                ));
            }
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(format!(
                    "another ward is answering on {}; stop it first (ward down)",
                    path.display()
                ));
            }
            std::fs::remove_file(path)
                .map_err(|e| format!("cannot remove the stale socket {}: {e}", path.display()))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot inspect {}: {e}", path.display())),
    }
    // Bind under a temporary name, set the mode, then rename into place: the
    // socket is never reachable with looser permissions.
    // The temporary name is short (a socket path has a small length limit).
    let tmp = path.with_file_name(format!(".w{:x}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = std::os::unix::net::UnixListener::bind(&tmp)
        .map_err(|e| format!("cannot create the control socket {}: {e}", path.display()))?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "cannot create the control socket {}: {e}",
            path.display()
        ));
    }
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot use the control socket: {e}"))?;
    Ok(Listener {
        inner: listener,
        path: path.to_path_buf(),
    })
}

/// The effective uid of this process.
fn own_uid() -> Option<u32> {
    Some(rustix::process::geteuid().as_raw())
}

/// A peer's credentials.
#[derive(Debug, Clone, Copy)]
struct Credentials {
    uid: Option<u32>,
    gid: Option<u32>,
    pid: Option<i32>,
}

/// What the socket's owner and mode allow.
#[derive(Debug, Clone, Copy)]
struct Access {
    owner: Option<u32>,
    group: u32,
    mode: u32,
}

impl Access {
    fn admits(&self, peer: &Credentials) -> bool {
        let Some(uid) = peer.uid else {
            return false;
        };
        if Some(uid) == self.owner || uid == 0 || self.mode & 0o006 != 0 {
            return true;
        }
        self.mode & 0o060 != 0
            && (peer.gid == Some(self.group) || peer.pid.is_some_and(|p| in_group(p, self.group)))
    }

    /// The peer as the API sees it: who, and whether it may come in.
    fn judge(&self, peer: &Credentials) -> Peer {
        let refused = (!self.admits(peer)).then(|| {
            let who = peer
                .uid
                .map(|u| format!("uid {u}"))
                .unwrap_or_else(|| "a peer of unknown uid".into());
            format!(
                "{who} is not allowed to control this ward (socket mode {:04o}; set [ward] \
                 socket_mode to share it with a group)",
                self.mode
            )
        });
        Peer {
            user: peer.uid.map(UserId),
            refused,
        }
    }
}

/// Whether process `pid` has `gid` among its supplementary groups (from
/// `/proc`: on systems without it, a peer gets in through the socket's
/// group only as its primary group).
#[cfg(target_os = "linux")]
fn in_group(pid: i32, gid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Groups:"))
                .map(|groups| groups.split_whitespace().any(|g| g.parse() == Ok(gid)))
        })
        .unwrap_or(false)
}

#[cfg(not(target_os = "linux"))]
fn in_group(_pid: i32, _gid: u32) -> bool {
    false
}

/// The socket, accepting connections and telling who each one is.
pub struct Acceptor {
    inner: tokio::net::UnixListener,
    access: Access,
}

impl Acceptor {
    /// The next connection and who is on its other end.
    pub async fn accept(&mut self) -> (Stream, Peer) {
        loop {
            match self.inner.accept().await {
                Ok((stream, _)) => {
                    let cred = stream.peer_cred().ok();
                    let peer = Credentials {
                        uid: cred.map(|c| c.uid()),
                        gid: cred.map(|c| c.gid()),
                        pid: cred.and_then(|c| c.pid()),
                    };
                    return (stream, self.access.judge(&peer));
                }
                // Out of fds and the like: back off a little, keep serving.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }
}

impl Listener {
    /// Starts accepting on the runtime (call inside it).
    pub fn into_acceptor(self) -> io::Result<Acceptor> {
        let meta = std::fs::metadata(&self.path)?;
        let access = Access {
            owner: own_uid(),
            group: meta.gid(),
            mode: meta.permissions().mode() & 0o777,
        };
        let inner = tokio::net::UnixListener::from_std(self.inner)?;
        Ok(Acceptor { inner, access })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32) -> Credentials {
        Credentials {
            uid: Some(uid),
            gid: Some(gid),
            pid: None,
        }
    }

    #[test]
    fn the_mode_decides_who_else_gets_in() {
        let private = Access {
            owner: Some(1000),
            group: 50,
            mode: 0o600,
        };
        assert!(private.admits(&peer(1000, 1000)));
        assert!(private.admits(&peer(0, 0)));
        assert!(!private.admits(&peer(1001, 50)));
        let group = Access {
            mode: 0o660,
            ..private
        };
        assert!(group.admits(&peer(1001, 50)));
        assert!(!group.admits(&peer(1001, 51)));
        let everyone = Access {
            mode: 0o666,
            ..private
        };
        assert!(everyone.admits(&peer(1001, 51)));
        let unknown = Credentials {
            uid: None,
            gid: None,
            pid: None,
        };
        assert!(!everyone.admits(&unknown));
        let judged = group.judge(&peer(1001, 51));
        assert_eq!(judged.user, Some(UserId(1001)));
        assert!(
            judged
                .refused
                .unwrap()
                .starts_with("uid 1001 is not allowed"),
            "the refusal names the uid"
        );
        assert_eq!(group.judge(&peer(1001, 50)).refused, None);
    }
}

/// A datagram socket at a path, standing in for a local service (journald)
/// in tests.
#[cfg(test)]
pub mod testing {
    use std::os::unix::net::UnixDatagram;
    use std::path::Path;

    pub struct Datagrams(UnixDatagram);

    impl Datagrams {
        pub fn bind(path: &Path) -> Datagrams {
            Datagrams(UnixDatagram::bind(path).unwrap())
        }

        /// Every datagram received so far.
        pub fn drain(&self) -> Vec<Vec<u8>> {
            self.0.set_nonblocking(true).unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = self.0.recv(&mut buf) {
                got.push(buf[..n].to_vec());
            }
            got
        }
    }
}
