//! The sentinel: a tiny process forked at start that outlives ward only to
//! kill what ward leaves behind.
//!
//! A parent-death signal reaches only ward's direct children; a grandchild
//! that double-forked, or anything in a run's cgroup, would survive a
//! SIGKILLed ward. The sentinel holds the read end of a pipe whose write end
//! only ward has: when ward dies (however), the pipe reads end-of-file and
//! the sentinel kills ward's cgroup root, every process group ward told it
//! about, and every process whose environment carries this ward's marker.
//!
//! It is forked before any thread exists, so the child is a faithful,
//! single-threaded copy and may allocate. It execs nothing.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
#[cfg(target_os = "linux")]
use std::time::Duration;

/// Signals that must not end the sentinel: terminal keys, hangups and the
/// polite stop signals all belong to ward. Only SIGKILL (or EOF) ends it.
const IGNORED: [libc::c_int; 8] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGPIPE,
];

/// Bounds for the sweep after ward's death: a process in uninterruptible
/// sleep may take a while to die, but the sentinel must end.
#[cfg(target_os = "linux")]
const SCAN_ROUNDS: u32 = 100;
#[cfg(target_os = "linux")]
const SCAN_PAUSE: Duration = Duration::from_millis(10);
#[cfg(target_os = "linux")]
const RMDIR_TRIES: u32 = 200;

/// ward's end of the pipe. Messages are lines, `+PGID` when a run starts
/// and `-PGID` when its tree is gone, so the sentinel can kill process
/// groups too (they catch members that cleared their environment).
#[derive(Debug)]
pub(crate) struct Link {
    write: OwnedFd,
}

impl Link {
    pub fn track(&self, pgid: i32) {
        self.send(&format!("+{pgid}\n"));
    }

    pub fn untrack(&self, pgid: i32) {
        self.send(&format!("-{pgid}\n"));
    }

    /// Never blocks (the write end is non-blocking): if the sentinel is
    /// stopped or gone and the pipe is full, the message is dropped; the
    /// marker scan still covers the tree.
    fn send(&self, line: &str) {
        // A line is far below PIPE_BUF, so the write is atomic.
        let _ = rustix::io::write(&self.write, line.as_bytes());
    }
}

/// What the sentinel must clean up.
pub(crate) struct Plan {
    pub cgroup_root: Option<PathBuf>,
    /// `WARD_TREE=<prefix>/`: every run of this ward carries it.
    pub env_prefix: Vec<u8>,
}

/// Forks the sentinel. Call only while the process has a single thread.
pub(crate) fn start(plan: Plan) -> io::Result<(Link, u32)> {
    let (read, write) = super::fds::pipe(false)?;
    // SAFETY: the caller guarantees a single thread, so the child is a full
    // copy with no lock held by a vanished thread; it never returns into
    // the caller's code (run ends in _exit).
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(write);
            run(read, plan)
        }
        pid => {
            drop(read);
            set_nonblocking(&write)?;
            Ok((Link { write }, pid as u32))
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

/// The sentinel's whole life. Never returns: a panic must not unwind into
/// the copy of ward's main that the fork also duplicated.
fn run(read: OwnedFd, plan: Plan) -> ! {
    let _ = std::panic::catch_unwind(move || {
        detach(read.as_raw_fd());
        let groups = wait_for_eof(&read);
        drop(read);
        clean_up(&plan, &groups);
    });
    // SAFETY: _exit ends this process at once without running ward's
    // atexit handlers or flushing buffers copied from ward.
    unsafe { libc::_exit(0) }
}

/// Leaves ward's terminal, session, fds and signal handling behind.
fn detach(keep: RawFd) {
    // SAFETY: plain syscalls on this (single-threaded) process; the path is
    // a NUL-terminated literal, the fds come from the kernel.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for std_fd in 0..3 {
                libc::dup2(null, std_fd);
            }
        }
        for fd in inherited_fds() {
            if fd > 2 && fd != keep {
                libc::close(fd);
            }
        }
        for sig in IGNORED {
            libc::signal(sig, libc::SIG_IGN);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        // A session of its own: no terminal signal (Ctrl-C, hangup) for the
        // foreground group reaches it.
        libc::setsid();
        libc::chdir(c"/".as_ptr());
        #[cfg(target_os = "linux")]
        libc::prctl(
            libc::PR_SET_NAME,
            c"ward-sentinel".as_ptr() as libc::c_ulong,
            0,
            0,
            0,
        );
    }
}

#[cfg(target_os = "linux")]
fn inherited_fds() -> Vec<RawFd> {
    // The directory's own fd is in the list; closing it again after the
    // iterator is dropped merely fails with EBADF.
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(not(target_os = "linux"))]
fn inherited_fds() -> Vec<RawFd> {
    // SAFETY: sysconf has no preconditions.
    let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) };
    let max = if max <= 0 { 1024 } else { max.min(65536) };
    (0..max as RawFd).collect()
}

/// Blocks until ward is gone, collecting the process groups it reports.
fn wait_for_eof(fd: &OwnedFd) -> HashSet<i32> {
    let mut groups = HashSet::new();
    let mut pending = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = match rustix::io::read(fd, &mut buf) {
            Ok(0) => return groups,
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return groups,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            apply(&mut groups, &line[..end]);
        }
    }
}

fn apply(groups: &mut HashSet<i32>, line: &[u8]) {
    let Some((&op, num)) = line.split_first() else {
        return;
    };
    let Some(pgid) = std::str::from_utf8(num)
        .ok()
        .and_then(|s| s.parse::<i32>().ok())
    else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    match op {
        b'+' => {
            groups.insert(pgid);
        }
        b'-' => {
            groups.remove(&pgid);
        }
        _ => {}
    }
}

fn clean_up(plan: &Plan, groups: &HashSet<i32>) {
    #[cfg(target_os = "linux")]
    if let Some(root) = &plan.cgroup_root {
        let _ = super::cgroup::kill(root);
    }
    for &pgid in groups {
        // pgid > 1 was checked.
        if let Some(pgid) = rustix::process::Pid::from_raw(pgid) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }
    kill_marked(&plan.env_prefix);
    if let Some(root) = &plan.cgroup_root {
        remove_cgroups(root);
    }
}

/// Kills every live process carrying this ward's marker, until a scan finds
/// none (a killed process may still be dying; a marked one may have forked
/// just before it was hit).
#[cfg(target_os = "linux")]
fn kill_marked(env_prefix: &[u8]) {
    use super::procfs;
    let me = std::process::id();
    for _ in 0..SCAN_ROUNDS {
        let live = match procfs::live_processes() {
            Ok(live) => live,
            // Rare (the sentinel has few descriptors of its own), and not
            // "nothing left": scan again.
            Err(_) => {
                std::thread::sleep(SCAN_PAUSE);
                continue;
            }
        };
        let marked: Vec<u32> = live
            .into_iter()
            .filter(|p| p.pid != me)
            .filter(|p| {
                procfs::environ(p.pid)
                    .is_some_and(|env| procfs::env_entries(&env).any(|e| e.starts_with(env_prefix)))
            })
            .map(|p| p.pid)
            .collect();
        if marked.is_empty() {
            return;
        }
        for pid in marked {
            if let Some(pid) = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        std::thread::sleep(SCAN_PAUSE);
    }
}

#[cfg(not(target_os = "linux"))]
fn kill_marked(_env_prefix: &[u8]) {}

#[cfg(target_os = "linux")]
fn remove_cgroups(root: &Path) {
    use super::cgroup;
    for _ in 0..RMDIR_TRIES {
        cgroup::remove_tree(root);
        if !root.exists() {
            return;
        }
        std::thread::sleep(SCAN_PAUSE);
    }
}

#[cfg(not(target_os = "linux"))]
fn remove_cgroups(_root: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_and_untracks_groups() {
        let mut groups = HashSet::new();
        for line in [
            &b"+100"[..],
            b"+200",
            b"-100",
            b"+1",
            b"+-5",
            b"x9",
            b"",
            b"+abc",
        ] {
            apply(&mut groups, line);
        }
        assert_eq!(groups, HashSet::from([200]));
    }
}
