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
//! bits) adds Authenticated Users, to read and write data only (they may
//! not make instances of the pipe). Remote clients are refused. The first
//! instance is made with `FILE_FLAG_FIRST_PIPE_INSTANCE`, so ward fails
//! rather than share a name that another process (another ward, or a
//! squatter) holds; and the CLI, before it talks, checks who owns the pipe
//! it opened, so that it does not talk to a squatter either.

use std::ffi::c_void;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::windows::named_pipe::{NamedPipeClient, NamedPipeServer, ServerOptions};

use super::{Peer, UserId};
use crate::proc::fs::Descriptor;

/// `ERROR_PIPE_BUSY`: every instance is taken; another comes soon.
const PIPE_BUSY: i32 = 231;

/// How long the CLI waits for a busy pipe to offer an instance.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The pipe name for an endpoint path.
pub fn pipe_name(path: &Path) -> String {
    let text = path.to_string_lossy();
    if is_pipe_name(path) {
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
/// every instance is busy, and talks only to a pipe that ward's kind of
/// account holds ([`holder_refusal`]). No daemon: `NotFound`.
pub async fn connect(path: &Path) -> io::Result<Stream> {
    let name = pipe_name(path);
    let deadline = tokio::time::Instant::now() + BUSY_WAIT;
    let client = loop {
        match open_client(&name) {
            Ok(client) => break client,
            Err(e)
                if e.raw_os_error() == Some(PIPE_BUSY)
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(e) => return Err(e),
        }
    };
    check_holder(&client, path, &name)?;
    Ok(Stream::Client(client))
}

/// Opens the client's end: reading, and writing data only, which is all a
/// client needs and all that Authenticated Users may be given (see
/// [`sddl`]); identification only, so that the daemon can tell who the
/// client is but cannot act as them.
fn open_client(name: &str) -> io::Result<NamedPipeClient> {
    use windows_sys::Win32::Foundation::{GENERIC_READ, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::Storage::FileSystem::{
        CreateFileW, FILE_FLAG_OVERLAPPED, FILE_WRITE_DATA, OPEN_EXISTING, SECURITY_IDENTIFICATION,
        SECURITY_SQOS_PRESENT,
    };
    let wname: Vec<u16> = name.encode_utf16().chain(Some(0)).collect();
    // SAFETY: a NUL-terminated name; no security attributes or template.
    let raw = unsafe {
        CreateFileW(
            wname.as_ptr(),
            GENERIC_READ | FILE_WRITE_DATA,
            0,
            std::ptr::null(),
            OPEN_EXISTING,
            FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
            std::ptr::null_mut(),
        )
    };
    if raw == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: an overlapped pipe client handle just opened, owned here.
    unsafe { NamedPipeClient::from_raw_handle(raw as _) }
}

/// Refuses a pipe that someone else made under ward's name.
fn check_holder(client: &NamedPipeClient, path: &Path, name: &str) -> io::Result<()> {
    use std::os::windows::io::AsRawHandle;
    let owner = crate::proc::fs::owner_of(client.as_raw_handle() as _)
        .map_err(|e| io::Error::other(format!("cannot tell who holds the pipe {name}: {e}")))?;
    let me = crate::proc::fs::own_sid()?;
    let folder = path
        .parent()
        .filter(|_| !is_pipe_name(path))
        .and_then(|dir| Some((dir, crate::proc::fs::makers_in(dir).ok()?)));
    let folder = folder
        .as_ref()
        .map(|(dir, makers)| (*dir, makers.as_slice()));
    match holder_refusal(&owner, &me, folder) {
        None => Ok(()),
        Some(why) => Err(io::Error::other(format!("the pipe {name} {why}"))),
    }
}

/// Accounts that no other user can act as: SYSTEM, LocalService,
/// NetworkService, Administrators.
const HOLDERS: [&str; 4] = ["S-1-5-18", "S-1-5-19", "S-1-5-20", "S-1-5-32-544"];

/// Whether the account that owns the pipe may be ward: `None`, or why
/// not. On Unix the socket sits in ward's state folder, so only those who
/// may make files there can make it; a pipe's name is open to every user,
/// so the CLI checks the pipe's owner instead: one of [`HOLDERS`], a
/// service's own account (`NT SERVICE\…`, which only the Service Control
/// Manager runs as), the CLI's own account (`me`), or one of those who
/// could have made a file in the endpoint's folder (`folder`: its owner,
/// and whom its access list lets add files; a service's state folder that
/// install made for its account names that account). Nobody else can
/// make more instances of ward's pipe: its access list gives them no
/// `FILE_CREATE_PIPE_INSTANCE`.
fn holder_refusal(owner: &str, me: &str, folder: Option<(&Path, &[String])>) -> Option<String> {
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    if HOLDERS.iter().any(|h| eq(h, owner))
        || owner.to_ascii_uppercase().starts_with("S-1-5-80-")
        || eq(owner, me)
        || folder.is_some_and(|(_, makers)| makers.iter().any(|m| eq(m, owner)))
    {
        return None;
    }
    let folder = match folder {
        Some((dir, _)) => format!(", nor one who may make files in {}", dir.display()),
        None => String::new(),
    };
    Some(format!(
        "belongs to {owner}: not SYSTEM, a service account, Administrators, your account{folder}. \
         Another user may have made a pipe of that name before ward started; the CLI will \
         not talk to it (and ward cannot start while it exists)"
    ))
}

/// Whether the endpoint names a pipe itself (`\\.\pipe\NAME`).
fn is_pipe_name(path: &Path) -> bool {
    path.to_string_lossy()
        .to_ascii_lowercase()
        .starts_with(r"\\.\pipe\")
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

/// Who may connect: SYSTEM, Administrators, ward's account (the owner);
/// with a `mode` that lets others in, Authenticated Users too, but only
/// to read and write data ([`CLIENT_RIGHTS`]).
fn sddl(mode: u32) -> io::Result<String> {
    let me = crate::proc::fs::own_sid()?;
    // The owner is ward's account, said outright: left to the token, an
    // elevated administrator's objects belong to Administrators, and
    // Wine's to a group.
    let mut sddl = format!("O:{me}D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;{me})");
    if mode & 0o007 != 0 {
        sddl.push_str(&format!("(A;;{CLIENT_RIGHTS:#x};;;AU)"));
    }
    Ok(sddl)
}

/// What a client needs: `FILE_GENERIC_READ` (which holds `READ_CONTROL`,
/// to read the pipe's owner) and `FILE_WRITE_DATA`. Not `GENERIC_WRITE`:
/// it holds `FILE_APPEND_DATA`, which on a pipe is
/// `FILE_CREATE_PIPE_INSTANCE`, and would let any user serve instances of
/// ward's pipe to other clients.
const CLIENT_RIGHTS: u32 = 0x0012_0089 | 0x2;

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
        // Taken: access denied (the first-instance flag), or busy (its
        // maker allowed no more instances).
        if e.kind() == io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(PIPE_BUSY) {
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
    let sid = crate::proc::fs::process_sid(pid).ok()?;
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

    const ME: &str = "S-1-5-21-1-2-3-1001";
    const OTHER: &str = "S-1-5-21-1-2-3-1002";

    #[test]
    fn the_cli_talks_only_to_a_pipe_held_by_wards_kind_of_account() {
        let state = Path::new(r"C:\ProgramData\ward\web");
        for owner in [
            "S-1-5-18",
            "S-1-5-19",
            "S-1-5-20",
            "S-1-5-32-544",
            "s-1-5-80-1-2-3-4-5",
            ME,
        ] {
            assert_eq!(
                holder_refusal(owner, ME, Some((state, &["S-1-5-18".into()]))),
                None,
                "{owner}"
            );
        }
        // A service that runs as a user of its own: install made its state
        // folder for that user; or another user's foreground ward, in a
        // folder of theirs.
        let made_for = ["S-1-5-32-544".to_string(), "S-1-5-18".into(), OTHER.into()];
        assert_eq!(holder_refusal(OTHER, ME, Some((state, &made_for))), None);
        assert_eq!(
            holder_refusal(OTHER, ME, Some((state, &[OTHER.into()]))),
            None
        );
        // Anyone else: another user, the Users group, everyone.
        let private = ["S-1-5-32-544".to_string(), "S-1-5-18".into()];
        for owner in [OTHER, "S-1-5-32-545", "S-1-1-0", "S-1-5-11", ""] {
            let why = holder_refusal(owner, ME, Some((state, &private)))
                .unwrap_or_else(|| panic!("{owner} was trusted"));
            assert!(why.contains(&format!("belongs to {owner}:")), "{why}");
            assert!(
                why.contains(r"one who may make files in C:\ProgramData\ward\web"),
                "{why}"
            );
        }
        let why = holder_refusal(OTHER, ME, None).expect("refused");
        assert!(!why.contains("make files"), "{why}");
    }

    #[test]
    fn other_users_may_not_make_instances_of_wards_pipe() {
        use windows_sys::Win32::Storage::FileSystem::{FILE_APPEND_DATA, FILE_GENERIC_WRITE};
        assert!(!sddl(0o600).expect("sddl").contains(";AU)"));
        let open = sddl(0o666).expect("sddl");
        assert!(
            open.contains(&format!("(A;;{CLIENT_RIGHTS:#x};;;AU)")),
            "{open}"
        );
        // FILE_APPEND_DATA is FILE_CREATE_PIPE_INSTANCE on a pipe.
        assert_eq!(CLIENT_RIGHTS & FILE_APPEND_DATA, 0);
        assert_ne!(CLIENT_RIGHTS & FILE_GENERIC_WRITE, FILE_GENERIC_WRITE);
    }

    #[test]
    fn the_cli_refuses_a_pipe_someone_else_owns() {
        use windows_sys::Win32::System::Pipes::{CreateNamedPipeW, PIPE_TYPE_BYTE};
        // A squatter's pipe under ward's name, owned by Everyone. Windows
        // lets nobody give an object an owner they are not (the call
        // fails with ERROR_INVALID_OWNER); Wine lets it through, and the
        // CLI must then refuse the pipe.
        let endpoint = std::env::temp_dir().join(format!("ward-squat-{}.sock", std::process::id()));
        let name = pipe_name(&endpoint);
        let descriptor = Descriptor::from_sddl("O:WDD:(A;;GA;;;WD)").expect("descriptor");
        let attrs = descriptor.attributes();
        let wname: Vec<u16> = name.encode_utf16().chain(Some(0)).collect();
        // SAFETY: a NUL-terminated name and attributes that outlive the call.
        let raw = unsafe {
            CreateNamedPipeW(
                wname.as_ptr(),
                windows_sys::Win32::Storage::FileSystem::PIPE_ACCESS_DUPLEX,
                PIPE_TYPE_BYTE,
                1,
                4096,
                4096,
                0,
                &attrs,
            )
        };
        if raw == windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE {
            let e = io::Error::last_os_error();
            assert_eq!(e.raw_os_error(), Some(1307), "{e}");
            return;
        }
        use std::os::windows::io::FromRawHandle;
        // SAFETY: a handle just made, owned here.
        let _squatter = unsafe { std::os::windows::io::OwnedHandle::from_raw_handle(raw as _) };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let refused = runtime
            .block_on(connect(&endpoint))
            .expect_err("the CLI talked to a squatter");
        let text = refused.to_string();
        assert!(text.contains("belongs to S-1-1-0:"), "{text}");
        // ward itself refuses to share the name.
        let Err(why) = bind(&endpoint, 0o600) else {
            panic!("ward bound a pipe a squatter holds")
        };
        assert!(why.contains("held by another process"), "{why}");
    }

    #[test]
    fn the_cli_reaches_wards_pipe_and_reads_who_holds_it() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let endpoint = std::env::temp_dir().join(format!("ward-pipe-{}.sock", std::process::id()));
        runtime.block_on(async {
            let listener = bind(&endpoint, 0o666).expect("bind");
            let mut acceptor = listener.into_acceptor().expect("acceptor");
            let server = tokio::spawn(async move {
                let (_stream, peer) = acceptor.accept().await;
                peer
            });
            let client = connect(&endpoint).await.expect("the CLI connects");
            let peer = server.await.expect("accepted");
            assert!(peer.user.is_some(), "the daemon tells who the client is");
            let Stream::Client(client) = client else {
                panic!("a client end")
            };
            use std::os::windows::io::AsRawHandle;
            let owner = crate::proc::fs::owner_of(client.as_raw_handle() as _).expect("owner");
            assert!(owner.starts_with("S-1-"), "{owner}");
        });
    }
}
