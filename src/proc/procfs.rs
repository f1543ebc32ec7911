//! Reading `/proc`: which processes are alive, in which process group, since
//! when, and with which environment. Linux only; the callers have fallbacks.

use std::fs;
use std::io;

/// The few fields of `/proc/PID/stat` that ward needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub pid: u32,
    /// One letter: `R`, `S`, `D`, `Z`, `T`, ...
    pub state: u8,
    pub ppid: u32,
    pub pgrp: i32,
    /// Clock ticks since boot (field 22). Together with the pid it names a
    /// process uniquely: a recycled pid has a later start time.
    pub start_time: u64,
}

impl ProcStat {
    /// Not yet (or no longer) a zombie: it can still run, fork and hold
    /// resources. Zombies are left for their parent (often ward's reaper).
    pub fn is_live(&self) -> bool {
        !matches!(self.state, b'Z' | b'X' | b'x')
    }
}

/// Parses the text of `/proc/PID/stat`. The command name (field 2) may hold
/// spaces and parentheses, so the fixed fields are counted from the last `)`.
pub(crate) fn parse_stat(pid: u32, text: &str) -> Option<ProcStat> {
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_ascii_whitespace();
    // Fields 3.. : state, ppid, pgrp, session, tty_nr, tpgid, flags, minflt,
    // cminflt, majflt, cmajflt, utime, stime, cutime, cstime, priority, nice,
    // num_threads, itrealvalue, starttime.
    let state = *fields.next()?.as_bytes().first()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let start_time = fields.nth(16)?.parse().ok()?;
    Some(ProcStat {
        pid,
        state,
        ppid,
        pgrp,
        start_time,
    })
}

/// `/proc/PID/...` could not be read because the process is gone (or, for
/// `denied_too`, is not ours to read): not a failure to read the list.
fn is_gone(e: &io::Error, denied_too: bool) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || e.raw_os_error() == Some(libc::ESRCH)
        || (denied_too && e.kind() == io::ErrorKind::PermissionDenied)
}

/// The stat of `pid`; `None` when it is gone (or not valid); an error when
/// it exists but cannot be read (out of descriptors, memory).
pub(crate) fn read_stat(pid: u32) -> io::Result<Option<ProcStat>> {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => Ok(parse_stat(pid, &text)),
        Err(e) if is_gone(&e, false) => Ok(None),
        Err(e) => Err(e),
    }
}

/// As [`read_stat`], for callers to whom an unreadable process is as good
/// as gone.
pub(crate) fn stat(pid: u32) -> Option<ProcStat> {
    read_stat(pid).ok().flatten()
}

/// Every process that is not a zombie, in no particular order. Processes
/// that end while the directory is read are skipped; one that cannot be
/// read, or /proc itself, is an error: a list with holes would pass for a
/// list without those processes.
pub(crate) fn live_processes() -> io::Result<Vec<ProcStat>> {
    let mut live = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Some(pid) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(st) = read_stat(pid)? {
            if st.is_live() {
                live.push(st);
            }
        }
    }
    Ok(live)
}

/// The initial environment of a process (what it was exec'd with); `None`
/// when it is gone or not ours to read (another user's, a kernel thread);
/// an error when it exists but cannot be read.
pub(crate) fn read_environ(pid: u32) -> io::Result<Option<Vec<u8>>> {
    match fs::read(format!("/proc/{pid}/environ")) {
        Ok(env) => Ok(Some(env)),
        Err(e) if is_gone(&e, true) => Ok(None),
        Err(e) => Err(e),
    }
}

/// As [`read_environ`], for callers to whom an unreadable environment is as
/// good as none.
pub(crate) fn environ(pid: u32) -> Option<Vec<u8>> {
    read_environ(pid).ok().flatten()
}

/// `NAME=value` entries of a raw environment block.
pub(crate) fn env_entries(block: &[u8]) -> impl Iterator<Item = &[u8]> {
    block.split(|&b| b == 0).filter(|e| !e.is_empty())
}

/// How many threads this process has, from `/proc/self/status`.
pub(crate) fn own_thread_count() -> Option<usize> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_command_names() {
        let text = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615";
        let st = parse_stat(4242, text).unwrap();
        assert_eq!(st.state, b'S');
        assert_eq!(st.pgrp, 4242);
        assert_eq!(st.ppid, 1);
        assert_eq!(st.start_time, 987654);
        assert!(st.is_live());
    }

    #[test]
    fn zombies_are_not_live() {
        let text = "7 (sh) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0";
        let st = parse_stat(7, text).unwrap();
        assert_eq!(st.start_time, 55);
        assert!(!st.is_live());
    }

    #[test]
    fn rejects_truncated_stat() {
        assert_eq!(parse_stat(1, "1 (init) S 0 1"), None);
        assert_eq!(parse_stat(1, "garbage"), None);
    }

    #[test]
    fn reads_own_stat_and_threads() {
        let me = std::process::id();
        let st = stat(me).unwrap();
        assert_eq!(st.pid, me);
        assert!(st.is_live());
        assert!(own_thread_count().unwrap() >= 1);
        assert!(live_processes().unwrap().iter().any(|p| p.pid == me));
        assert_eq!(read_stat(u32::MAX).unwrap(), None);
        assert_eq!(read_environ(u32::MAX).unwrap(), None);
    }

    #[test]
    fn splits_environment_blocks() {
        let block = b"A=1\0WARD_TREE=x/y\0\0";
        let entries: Vec<&[u8]> = env_entries(block).collect();
        assert_eq!(entries, vec![&b"A=1"[..], &b"WARD_TREE=x/y"[..]]);
    }
}
