//! Waiting, from a client, until a daemon is gone for good.

use std::path::Path;
use std::time::{Duration, Instant};

/// Waits (at most `within`) until the daemon `pid`, whose state-dir lock is
/// at `lock`, has exited. The lock is the daemon's last act: once this
/// process can take it, nothing of the daemon writes any more. A client
/// that may not open the lock (another user let in by the socket's mode)
/// watches the pid instead; an exited daemon that its parent has not yet
/// reaped counts as exited. Returns whether it saw the end.
pub fn wait_daemon_exit(pid: Option<u32>, lock: Option<&Path>, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let lock = lock.and_then(|path| super::fs::open_regular(path).ok());
    loop {
        let gone = match &lock {
            Some(file) => match file.try_lock_shared() {
                Ok(()) => {
                    let _ = file.unlock();
                    true
                }
                Err(_) => false,
            },
            None => pid.is_none_or(has_exited),
        };
        if gone {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The process is gone, or a zombie (it has exited; its parent has not
/// collected it yet).
#[cfg(target_os = "linux")]
fn has_exited(pid: u32) -> bool {
    super::procfs::stat(pid).is_none_or(|s| !s.is_live())
}

#[cfg(windows)]
use super::windows::has_exited;

#[cfg(all(unix, not(target_os = "linux")))]
fn has_exited(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return true;
    };
    rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_waited_for_and_a_free_one_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ward.lock");
        let held = std::fs::File::create(&path).unwrap();
        held.lock().unwrap();
        let me = Some(std::process::id());
        assert!(!wait_daemon_exit(
            me,
            Some(&path),
            Duration::from_millis(50)
        ));
        drop(held);
        assert!(wait_daemon_exit(me, Some(&path), Duration::from_secs(5)));
        // Without the lock, the pid tells: this process is alive.
        assert!(!wait_daemon_exit(me, None, Duration::from_millis(50)));
        assert!(wait_daemon_exit(None, None, Duration::ZERO));
    }
}
