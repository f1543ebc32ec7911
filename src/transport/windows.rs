//! The control API on Windows: a named pipe.
//!
//! The endpoint is a path, as on Unix (`[ward] socket`, by default
//! `ward.sock` in the state dir), so that the config and the CLI's lookup
//! are the same on both systems; the pipe's name is made from it:
//! `\\.\pipe\ward-<digest of the path>`, or the path itself when it is a
//! pipe name already (`socket = '\\.\pipe\my-ward'`).
//!
//! The gate is the pipe's security descriptor, which Windows checks as a
//! client opens the pipe: SYSTEM, Administrators and ward's own account may
//! connect; a `socket_mode` that lets others in (any of its last three
//! bits) adds Authenticated Users. Remote clients are refused. The first
//! instance is made with `FILE_FLAG_FIRST_PIPE_INSTANCE`, so ward fails
//! rather than share a name that another process (another ward, or a
//! squatter) holds.

use std::ffi::c_void;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::windows::named_pipe::{
    ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions,
};

use super::{Peer, UserId};
use crate::files::Descriptor;

/// `ERROR_PIPE_BUSY`: every instance is taken; another comes soon.
const PIPE_BUSY: i32 = 231;

/// How long the CLI waits for a busy pipe to offer an instance.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The pipe name for an endpoint path.
pub fn pipe_name(path: &Path) -> String {
    let text = path.to_string_lossy();
    if text.to_ascii_lowercase().starts_with(r"\\.\pipe\") {
        return text.into_owned();
    }
    // FNV-1a over the path as Windows compares it (without case).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.to_lowercase().replace('/', "\\").bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!(r"\\.\pipe\ward-{hash:016x}")
}

/// A connection: the daemon's end or the CLI's.
#[derive(Debug)]
pub enum Stream {
    Server(NamedPipeServer),
    Client(NamedPipeClient),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Server(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Client(c) => Pin::new(c).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Server(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Client(c) => Pin::new(c).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Server(s) => Pin::new(s).poll_flush(cx),
            Stream::Client(c) => Pin::new(c).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Server(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Client(c) => Pin::new(c).poll_shutdown(cx),
        }
    }
}

/// Connects to the daemon's pipe (the CLI's side), waiting a little while
/// every instance is busy. No daemon: `NotFound`.
pub async fn connect(path: &Path) -> io::Result<Stream> {
    let name = pipe_name(path);
    let deadline = tokio::time::Instant::now() + BUSY_WAIT;
    loop {
        match ClientOptions::new().open(&name) {
            Ok(client) => return Ok(Stream::Client(client)),
            Err(e)
                if e.raw_os_error() == Some(PIPE_BUSY)
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(e) => return Err(e),
        }
    }
}

/// Nothing to remove: a pipe goes with its last instance.
pub fn release(_path: &Path) {}

/// The pipe's name and the descriptor each of its instances is made with.
pub struct Listener {
    name: String,
    descriptor: Descriptor,
    /// The first instance, made by [`bind`] to claim the name.
    first: std::os::windows::io::OwnedHandle,
}

/// Who may connect: SYSTEM, Administrators, ward's account; with a
/// `mode` that lets others in, Authenticated Users too.
fn sddl(mode: u32) -> io::Result<String> {
    let me = crate::files::own_sid()?;
    let mut sddl = format!("D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;{me})");
    if mode & 0o007 != 0 {
        sddl.push_str("(A;;GRGW;;;AU)");
    }
    Ok(sddl)
}

/// Makes the pipe for `path` (its first instance), refusing a name that
/// is taken.
pub fn bind(path: &Path, mode: u32) -> Result<Listener, String> {
    use windows_sys::Win32::Storage::FileSystem::{
        FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED, PIPE_ACCESS_DUPLEX,
    };
    use windows_sys::Win32::System::Pipes::{
        CreateNamedPipeW, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE,
        PIPE_UNLIMITED_INSTANCES, PIPE_WAIT,
    };
    let name = pipe_name(path);
    let descriptor = sddl(mode)
        .and_then(|s| Descriptor::from_sddl(&s))
        .map_err(|e| format!("cannot make the access list of {name}: {e}"))?;
    let attrs = descriptor.attributes();
    let wname: Vec<u16> = name.encode_utf16().chain(Some(0)).collect();
    // SAFETY: a NUL-terminated name and attributes that outlive the call.
    let raw = unsafe {
        CreateNamedPipeW(
            wname.as_ptr(),
            PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
            PIPE_UNLIMITED_INSTANCES,
            64 * 1024,
            64 * 1024,
            0,
            &attrs,
        )
    };
    let made = if raw == windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE {
        Err(io::Error::last_os_error())
    } else {
        use std::os::windows::io::FromRawHandle;
        // SAFETY: a handle just made, owned by no one else.
        Ok(unsafe { std::os::windows::io::OwnedHandle::from_raw_handle(raw as _) })
    };
    let first = made.map_err(|e| {
        if e.kind() == io::ErrorKind::PermissionDenied {
            format!(
                "the pipe {name} (for {}) is held by another process, most likely another \
                 ward on this state dir; stop it first (ward down)",
                path.display()
            )
        } else {
            format!("cannot make the pipe {name}: {e}")
        }
    })?;
    Ok(Listener {
        name,
        descriptor,
        first,
    })
}

impl Listener {
    /// Starts accepting on the runtime (call inside it).
    pub fn into_acceptor(self) -> io::Result<Acceptor> {
        use std::os::windows::io::IntoRawHandle;
        let raw = self.first.into_raw_handle();
        // SAFETY: an overlapped pipe server handle, owned and handed over.
        let current = unsafe { NamedPipeServer::from_raw_handle(raw) }?;
        Ok(Acceptor {
            name: self.name,
            descriptor: self.descriptor,
            current,
        })
    }
}

/// The pipe, accepting connections and telling who each one is.
pub struct Acceptor {
    name: String,
    descriptor: Descriptor,
    /// The instance the next client connects to.
    current: NamedPipeServer,
}

impl Acceptor {
    fn next_instance(&self) -> io::Result<NamedPipeServer> {
        let mut attrs = self.descriptor.attributes();
        // SAFETY: `attrs` is a valid SECURITY_ATTRIBUTES for the call.
        unsafe {
            ServerOptions::new()
                .reject_remote_clients(true)
                .create_with_security_attributes_raw(
                    &self.name,
                    (&mut attrs as *mut windows_sys::Win32::Security::SECURITY_ATTRIBUTES)
                        .cast::<c_void>(),
                )
        }
    }

    /// The next connection and who is on its other end. The security
    /// descriptor admitted it: Windows refuses anyone else at the open.
    pub async fn accept(&mut self) -> (Stream, Peer) {
        loop {
            let connected = self.current.connect().await;
            if connected.is_err() {
                // A client that came and went before the accept (or a
                // broken instance): the instance is reset for the next.
                let _ = self.current.disconnect();
            }
            if connected.is_ok() {
                match self.next_instance() {
                    Ok(next) => {
                        let connected = std::mem::replace(&mut self.current, next);
                        let user = client_user(&connected);
                        return (
                            Stream::Server(connected),
                            Peer {
                                user,
                                refused: None,
                            },
                        );
                    }
                    Err(_) => {
                        // Out of resources: drop this client (it sees the
                        // pipe close) and keep serving on this instance.
                        let _ = self.current.disconnect();
                    }
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// The client's account, as a number for counting connections per user: a
/// digest of its SID.
fn client_user(pipe: &NamedPipeServer) -> Option<UserId> {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::System::Pipes::GetNamedPipeClientProcessId;
    let mut pid = 0u32;
    // SAFETY: a connected pipe handle and a place for the pid.
    if unsafe { GetNamedPipeClientProcessId(pipe.as_raw_handle() as _, &mut pid) } == 0 {
        return None;
    }
    let sid = crate::files::process_sid(pid).ok()?;
    let mut hash: u32 = 0x811c_9dc5;
    for b in sid.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    Some(UserId(hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_path_names_one_pipe_without_case() {
        let a = pipe_name(Path::new(r"C:\ProgramData\ward\web\ward.sock"));
        assert!(a.starts_with(r"\\.\pipe\ward-"), "{a}");
        assert_eq!(
            a,
            pipe_name(Path::new(r"c:\programdata\WARD\web\ward.sock"))
        );
        assert_eq!(a, pipe_name(Path::new("C:/ProgramData/ward/web/ward.sock")));
        assert_ne!(
            a,
            pipe_name(Path::new(r"C:\ProgramData\ward\api\ward.sock"))
        );
        assert_eq!(pipe_name(Path::new(r"\\.\pipe\mine")), r"\\.\pipe\mine");
    }
}
