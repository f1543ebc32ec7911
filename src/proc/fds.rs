//! Descriptors: what ward inherited, and what its programs inherit.
//!
//! ward runs as root and starts programs as other users, so a descriptor
//! that leaks is a capability handed out: a file the shell that started
//! ward had open, ward's lock file, a pipe of another program. Two rules
//! keep them in:
//!
//! - at start, the daemon closes every descriptor above 2 it inherited
//!   ([`close_inherited`]), except those a service manager handed it on
//!   purpose (socket activation: `LISTEN_PID` is ward's pid, fds
//!   `3..3+LISTEN_FDS`), which stay open but close-on-exec;
//! - every spawned child marks every descriptor above 2 close-on-exec
//!   right after it has set up its stdio ([`cloexec_above_stdio`]), so a
//!   descriptor opened without `O_CLOEXEC` anywhere in ward never reaches a
//!   program. (Not closed: the report pipe and `cgroup.procs` are still
//!   used between that point and `execve`.)

use std::io;
use std::os::fd::{OwnedFd, RawFd};

/// The highest descriptor the fallback (a kernel without
/// `close_range(CLOSE_RANGE_CLOEXEC)`) visits when the open descriptors
/// cannot be listed.
const FALLBACK_CEILING: RawFd = 1 << 16;

/// How the child marks its descriptors above 2 close-on-exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sweep {
    /// One `close_range(3, ~0, CLOSE_RANGE_CLOEXEC)` (Linux 5.11).
    CloseRange,
    /// `fcntl(FD_CLOEXEC)` on each of `3..=highest`, `highest` being the
    /// highest descriptor the parent had open just before the spawn (every
    /// descriptor ward opens later is close-on-exec already: Rust's
    /// standard library and tokio open everything with `O_CLOEXEC`).
    EachUpTo(RawFd),
}

/// Whether this kernel has `close_range` with `CLOSE_RANGE_CLOEXEC`.
/// Probed once, on a range beyond any descriptor, which changes nothing.
pub(crate) fn close_range_works() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: integer arguments only; the range holds no descriptor.
        unsafe {
            libc::syscall(
                libc::SYS_close_range,
                libc::c_uint::MAX,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            ) == 0
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// How a spawn about to start should sweep: computed by the parent, which
/// may allocate (the child may not).
pub(crate) fn sweep_for_spawn(close_range: bool) -> Sweep {
    if close_range {
        Sweep::CloseRange
    } else {
        Sweep::EachUpTo(highest_open().unwrap_or(FALLBACK_CEILING))
    }
}

/// In the child, after the `dup2`s onto 0, 1 and 2: every descriptor above
/// 2 becomes close-on-exec. Async-signal-safe and allocation-free: only
/// raw system calls on integers.
pub(crate) fn cloexec_above_stdio(sweep: Sweep) {
    let highest = match sweep {
        Sweep::CloseRange => {
            #[cfg(target_os = "linux")]
            {
                // SAFETY: integer arguments only; marks this process's own
                // descriptors (the child has its own descriptor table).
                let done = unsafe {
                    libc::syscall(
                        libc::SYS_close_range,
                        3 as libc::c_uint,
                        libc::c_uint::MAX,
                        libc::CLOSE_RANGE_CLOEXEC,
                    )
                };
                if done == 0 {
                    return;
                }
            }
            FALLBACK_CEILING
        }
        Sweep::EachUpTo(highest) => highest,
    };
    cloexec_each(3, highest);
}

/// `FD_CLOEXEC` on every open descriptor of `from..=to`.
fn cloexec_each(from: RawFd, to: RawFd) {
    for fd in from..=to {
        // SAFETY: fcntl on an integer; a closed descriptor is EBADF.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
            // SAFETY: as above; only adds FD_CLOEXEC.
            unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
        }
    }
}

/// The open descriptors of this process, from `/proc/self/fd` (Linux) or
/// `/dev/fd` (macOS, the BSDs), without the one used to read the list.
fn open_fds() -> io::Result<Vec<RawFd>> {
    let mut last = io::Error::from(io::ErrorKind::NotFound);
    for dir in ["/proc/self/fd", "/dev/fd"] {
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut fds: Vec<RawFd> = entries
                    .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect();
                // The directory's own descriptor is listed too, and is
                // closed by now; a later open may reuse its number, so
                // keep it in the list (closing or marking a closed
                // descriptor is harmless).
                fds.sort_unstable();
                return Ok(fds);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn highest_open() -> Option<RawFd> {
    open_fds().ok()?.last().copied()
}

/// How many descriptors a service manager handed to ward for socket
/// activation (systemd's protocol): `LISTEN_FDS` of them from fd 3, if
/// `LISTEN_PID` names this process; none otherwise.
fn handed_over(listen_pid: Option<&str>, listen_fds: Option<&str>, me: u32) -> RawFd {
    if listen_pid.and_then(|p| p.trim().parse::<u32>().ok()) != Some(me) {
        return 0;
    }
    listen_fds
        .and_then(|n| n.trim().parse::<RawFd>().ok())
        .filter(|n| (0..FALLBACK_CEILING).contains(n))
        .unwrap_or(0)
}

/// Closes every descriptor above 2 that ward inherited, except those handed
/// to it for socket activation, which become close-on-exec. Call first
/// thing in the daemon, while it has a single thread: nothing else may be
/// using a descriptor this closes.
pub fn close_inherited() -> io::Result<()> {
    let kept = handed_over(
        std::env::var("LISTEN_PID").ok().as_deref(),
        std::env::var("LISTEN_FDS").ok().as_deref(),
        std::process::id(),
    );
    for fd in 3..3 + kept {
        cloexec_each(fd, fd);
    }
    let first = 3 + kept;
    #[cfg(target_os = "linux")]
    {
        // SAFETY: integer arguments only; the caller guarantees no other
        // thread uses the descriptors closed.
        let done = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                first as libc::c_uint,
                libc::c_uint::MAX,
                0 as libc::c_uint,
            )
        };
        if done == 0 {
            return Ok(());
        }
    }
    let fds = open_fds().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot list the open descriptors to close them: {e}"),
        )
    })?;
    for fd in fds.into_iter().filter(|fd| *fd >= first) {
        // SAFETY: the caller guarantees no other thread uses it; a
        // descriptor already closed is EBADF, which changes nothing.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// A close-on-exec pipe (read end, write end); `nonblocking` for both ends.
pub(crate) fn pipe(nonblocking: bool) -> io::Result<(OwnedFd, OwnedFd)> {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        use rustix::pipe::PipeFlags;
        let flags = PipeFlags::CLOEXEC
            | if nonblocking {
                PipeFlags::NONBLOCK
            } else {
                PipeFlags::empty()
            };
        Ok(rustix::pipe::pipe_with(flags)?)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        // No pipe2 here: the flags follow at once. Only ward's spawner thread
        // forks after init, so no child can inherit the fds in between.
        let (read, write) = rustix::pipe::pipe()?;
        for fd in [&read, &write] {
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)?;
            if nonblocking {
                rustix::fs::fcntl_setfl(fd, rustix::fs::OFlags::NONBLOCK)?;
            }
        }
        Ok((read, write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn pipes_are_close_on_exec() {
        let (r, w) = pipe(true).unwrap();
        for fd in [&r, &w] {
            let flags = rustix::io::fcntl_getfd(fd).unwrap();
            assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
            let status = rustix::fs::fcntl_getfl(fd).unwrap();
            assert!(status.contains(rustix::fs::OFlags::NONBLOCK));
        }
    }

    fn is_cloexec(fd: RawFd) -> bool {
        // SAFETY: fcntl on an integer.
        unsafe { libc::fcntl(fd, libc::F_GETFD) & libc::FD_CLOEXEC != 0 }
    }

    #[test]
    fn the_fallback_marks_inherited_descriptors_close_on_exec() {
        let file = std::fs::File::open("/dev/null").unwrap();
        // A descriptor as a careless library would leave it: no
        // close-on-exec, well above the others.
        let copy = rustix::io::fcntl_dupfd_cloexec(&file, 400).unwrap();
        rustix::io::fcntl_setfd(&copy, rustix::io::FdFlags::empty()).unwrap();
        let fd = copy.as_raw_fd();
        assert!(fd >= 400);
        assert!(!is_cloexec(fd));
        assert!(highest_open().unwrap() >= fd);
        cloexec_each(fd, fd + 1);
        assert!(is_cloexec(fd));
    }

    #[test]
    fn socket_activation_needs_our_pid() {
        assert_eq!(handed_over(Some("42"), Some("2"), 42), 2);
        assert_eq!(handed_over(Some(" 42\n"), Some("1"), 42), 1);
        assert_eq!(handed_over(Some("41"), Some("2"), 42), 0);
        assert_eq!(handed_over(None, Some("2"), 42), 0);
        assert_eq!(handed_over(Some("42"), None, 42), 0);
        assert_eq!(handed_over(Some("42"), Some("-1"), 42), 0);
        assert_eq!(handed_over(Some("42"), Some("many"), 42), 0);
    }
}
