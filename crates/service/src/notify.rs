//! Telling the service manager how the service is doing: systemd's
//! `sd_notify` protocol (a datagram of `KEY=value` lines to the socket
//! named by `$NOTIFY_SOCKET`). Elsewhere, and when the service was not
//! started with `Type=notify`, every call does nothing.
//!
//! ```no_run
//! let notifier = ward_service::Notifier::from_env();
//! // ... start up ...
//! notifier.ready();
//! notifier.status("serving 3 clients");
//! if let Some(every) = notifier.watchdog_interval() {
//!     // call notifier.watchdog() at least this often, from the loop that
//!     // must not get stuck
//! #   let _ = every;
//! }
//! notifier.stopping();
//! ```

use std::io;
use std::time::Duration;

/// A connection to the service manager's notification socket, or nothing
/// (not under a manager that listens). Cheap to share between threads.
#[derive(Debug)]
pub struct Notifier {
    #[cfg(unix)]
    socket: Option<(
        std::os::unix::net::UnixDatagram,
        std::os::unix::net::SocketAddr,
    )>,
    /// Under the Windows Service Control Manager: its status reports.
    #[cfg(windows)]
    scm: Option<std::sync::Arc<crate::windows::Reporter>>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From the environment the service manager gave: `$NOTIFY_SOCKET` (a
    /// path, or `@name` for an abstract socket) and `$WATCHDOG_USEC` (with
    /// `$WATCHDOG_PID`, when it names this process). The variables stay
    /// set; a program that starts others should not pass them on (see
    /// [`INHERITED`]).
    pub fn from_env() -> Notifier {
        let watchdog = watchdog_from(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        #[cfg(unix)]
        {
            let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|path| connect(&path).ok());
            Notifier {
                watchdog: watchdog.filter(|_| socket.is_some()),
                socket,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = watchdog;
            Notifier::none()
        }
    }

    /// A notifier that says nothing (for a program run by hand).
    pub fn none() -> Notifier {
        Notifier {
            #[cfg(unix)]
            socket: None,
            #[cfg(windows)]
            scm: None,
            watchdog: None,
        }
    }

    /// The status reports of a service the SCM runs. Its "watchdog" is
    /// the pending states' checkpoint: pinged every 5 s, a long start or
    /// stop keeps telling the SCM that it is still under way.
    #[cfg(windows)]
    pub(crate) fn scm(reporter: std::sync::Arc<crate::windows::Reporter>) -> Notifier {
        Notifier {
            scm: Some(reporter),
            watchdog: Some(Duration::from_secs(10)),
        }
    }

    /// Whether a service manager listens.
    pub fn is_listening(&self) -> bool {
        #[cfg(unix)]
        {
            self.socket.is_some()
        }
        #[cfg(windows)]
        {
            self.scm.is_some()
        }
        #[cfg(not(any(unix, windows)))]
        {
            false
        }
    }

    /// Start-up is complete (`READY=1`; the SCM's Running); after a
    /// reload, the reload is.
    pub fn ready(&self) {
        #[cfg(windows)]
        if let Some(scm) = &self.scm {
            scm.running();
        }
        let _ = self.send("READY=1");
    }

    /// A one-line status for `systemctl status` (`STATUS=…`). Newlines are
    /// replaced by spaces.
    pub fn status(&self, line: &str) {
        let _ = self.send(&format!("STATUS={}", line.replace('\n', " ")));
    }

    /// A reload begins (`RELOADING=1` with the `CLOCK_MONOTONIC` time, as
    /// `Type=notify-reload` wants); say [`Notifier::ready`] when it is done.
    pub fn reloading(&self) {
        let message = match monotonic_usec() {
            Some(usec) => format!("RELOADING=1\nMONOTONIC_USEC={usec}"),
            None => "RELOADING=1".to_string(),
        };
        let _ = self.send(&message);
    }

    /// Shutting down (`STOPPING=1`; the SCM's StopPending).
    pub fn stopping(&self) {
        #[cfg(windows)]
        if let Some(scm) = &self.scm {
            scm.stopping();
        }
        let _ = self.send("STOPPING=1");
    }

    /// Writes `text` to the system's event log, where the service manager
    /// keeps no output of the service's own: under the Windows SCM, the
    /// Application log (the service's name is the source). Elsewhere the
    /// manager keeps stderr (the journal): nothing to do.
    pub fn event(&self, level: crate::Level, text: &str) {
        #[cfg(windows)]
        if let Some(scm) = &self.scm {
            scm.event(level, text);
        }
        #[cfg(not(windows))]
        let _ = (level, text);
    }

    /// Whether the manager keeps what the service writes to stderr
    /// (systemd's journal, launchd's log file; not the Windows SCM).
    pub fn keeps_stderr(&self) -> bool {
        #[cfg(windows)]
        {
            self.scm.is_none()
        }
        #[cfg(not(windows))]
        {
            true
        }
    }

    /// The service failed: the SCM reports `code` (its own error code) as
    /// it stops. Nothing elsewhere (the exit status says it).
    pub fn exit_code(&self, code: u32) {
        #[cfg(windows)]
        if let Some(scm) = &self.scm {
            scm.set_exit_code(code);
        }
        #[cfg(not(windows))]
        let _ = code;
    }

    /// Still alive (`WATCHDOG=1`; under the SCM, a pending start or stop
    /// moves its checkpoint on). Without a watchdog this is not sent.
    pub fn watchdog(&self) {
        #[cfg(windows)]
        if let Some(scm) = &self.scm {
            scm.tick();
            return;
        }
        if self.watchdog.is_some() {
            let _ = self.send("WATCHDOG=1");
        }
    }

    /// How often to call [`Notifier::watchdog`]: half the manager's
    /// watchdog timeout (`WatchdogSec=`), or `None` when none is set.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|timeout| timeout / 2)
    }

    /// Sends `message` (`KEY=value` lines) as one datagram; never blocks
    /// for long (the socket is a datagram socket on the local machine).
    pub fn send(&self, message: &str) -> io::Result<()> {
        #[cfg(unix)]
        if let Some((socket, addr)) = &self.socket {
            socket.send_to_addr(message.as_bytes(), addr)?;
        }
        #[cfg(not(unix))]
        let _ = message;
        Ok(())
    }
}

/// The variables a service manager sets for the process it starts, which a
/// program must not pass on to the programs it starts in turn (they would
/// take them for their own).
pub const INHERITED: &[&str] = &[
    "NOTIFY_SOCKET",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "INVOCATION_ID",
    "JOURNAL_STREAM",
    "SYSTEMD_EXEC_PID",
    "MANAGERPID",
];

/// The watchdog timeout `$WATCHDOG_USEC` sets, if `$WATCHDOG_PID` is unset
/// or names `pid`.
fn watchdog_from(usec: Option<&str>, for_pid: Option<&str>, pid: u32) -> Option<Duration> {
    if let Some(for_pid) = for_pid {
        if for_pid.trim().parse::<u32>().ok() != Some(pid) {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

#[cfg(unix)]
fn connect(
    path: &std::ffi::OsStr,
) -> io::Result<(
    std::os::unix::net::UnixDatagram,
    std::os::unix::net::SocketAddr,
)> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let bytes = path.as_bytes();
    let addr = match bytes.split_first() {
        None => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "empty NOTIFY_SOCKET",
            ))
        }
        Some((b'@', name)) => abstract_addr(name)?,
        Some((b'/', _)) => SocketAddr::from_pathname(path)?,
        Some(_) => {
            // vsock and other addresses are not supported.
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "NOTIFY_SOCKET is neither a path nor an abstract name",
            ));
        }
    };
    let socket = UnixDatagram::unbound()?;
    // A manager that does not read never holds up the caller (ward sends
    // from its supervision loop): a message it cannot take is dropped.
    socket.set_nonblocking(true)?;
    Ok((socket, addr))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_addr(name: &[u8]) -> io::Result<std::os::unix::net::SocketAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    std::os::unix::net::SocketAddr::from_abstract_name(name)
}

#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
fn abstract_addr(_name: &[u8]) -> io::Result<std::os::unix::net::SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets exist only on Linux",
    ))
}

/// `CLOCK_MONOTONIC` now, in microseconds.
fn monotonic_usec() -> Option<u64> {
    #[cfg(unix)]
    {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let secs = u64::try_from(now.tv_sec).ok()?;
        let nanos = u64::try_from(now.tv_nsec).ok()?;
        Some(secs * 1_000_000 + nanos / 1_000)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_is_for_this_process_only() {
        let d = Duration::from_secs(10);
        assert_eq!(watchdog_from(Some("10000000"), None, 7), Some(d));
        assert_eq!(watchdog_from(Some("10000000"), Some("7"), 7), Some(d));
        assert_eq!(watchdog_from(Some("10000000"), Some("8"), 7), None);
        assert_eq!(watchdog_from(Some("0"), None, 7), None);
        assert_eq!(watchdog_from(Some("x"), None, 7), None);
        assert_eq!(watchdog_from(None, Some("7"), 7), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn messages_reach_a_path_and_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixDatagram};
        let tmp = std::env::temp_dir().join(format!("ward-service-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let server = UnixDatagram::bind(&tmp).unwrap();
        let (socket, addr) = connect(tmp.as_os_str()).unwrap();
        let notifier = Notifier {
            socket: Some((socket, addr)),
            watchdog: Some(Duration::from_secs(4)),
        };
        notifier.ready();
        notifier.status("2/3 running\nsoon");
        notifier.reloading();
        notifier.watchdog();
        let mut buf = [0u8; 256];
        let mut next = || {
            let n = server.recv(&mut buf).unwrap();
            String::from_utf8(buf[..n].to_vec()).unwrap()
        };
        assert_eq!(next(), "READY=1");
        assert_eq!(next(), "STATUS=2/3 running soon");
        let reload = next();
        assert!(
            reload.starts_with("RELOADING=1\nMONOTONIC_USEC="),
            "{reload}"
        );
        assert_eq!(next(), "WATCHDOG=1");
        assert_eq!(notifier.watchdog_interval(), Some(Duration::from_secs(2)));
        let _ = std::fs::remove_file(&tmp);

        let name = format!("ward-service-test-{}", std::process::id());
        let server =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let (socket, addr) = connect(std::ffi::OsStr::new(&format!("@{name}"))).unwrap();
        let notifier = Notifier {
            socket: Some((socket, addr)),
            watchdog: None,
        };
        notifier.stopping();
        notifier.watchdog();
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
        server.set_nonblocking(true).unwrap();
        assert!(server.recv(&mut buf).is_err(), "no watchdog without one");
    }

    #[test]
    fn without_a_manager_nothing_is_sent() {
        let n = Notifier::none();
        assert!(!n.is_listening());
        n.ready();
        assert_eq!(n.watchdog_interval(), None);
    }
}
