//! The sweep of what a previous start of ward on the same state dir left
//! behind when it died together with its sentinel (SIGKILL to both, the
//! OOM killer, a power cut of a container): everything in that start's
//! cgroup root, and every process carrying its marker prefix. Runs that
//! were spawned moments before the end and never reached `state.json` are
//! found this way too, since the start itself is recorded before its first
//! spawn.

use std::path::Path;

use super::Start;

/// Kills what `starts` (earlier starts of ward on this state dir) left
/// running; returns how many processes it killed. A start whose ward is
/// still alive (same pid, same start time) is left alone, and so is
/// `own_root`, this ward's own cgroup root (as PID 1 of a container, a
/// later start has the same pid, so the same root name).
pub fn sweep_starts(starts: &[Start], own_root: Option<&Path>) -> usize {
    #[cfg(target_os = "linux")]
    {
        starts.iter().map(|s| sweep_start(s, own_root)).sum()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (starts, own_root);
        0
    }
}

/// `<pid>.<start time>` → (pid, start time).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_prefix(prefix: &str) -> Option<(u32, u64)> {
    let (pid, time) = prefix.split_once('.')?;
    Some((pid.parse().ok()?, time.parse().ok()?))
}

/// The cgroup root of a start, if it is one ward made: an absolute path to
/// a cgroup v2 directory named `ward-<that start's pid>`. A corrupt state
/// file cannot point the sweep at anything else.
#[cfg(target_os = "linux")]
fn checked_root(start: &Start, pid: u32) -> Option<&Path> {
    let root = start.cgroup_root.as_deref()?;
    let named = root
        .file_name()
        .is_some_and(|n| n.to_str() == Some(&format!("ward-{pid}")));
    (root.is_absolute() && named && super::cgroup::is_cgroup2_dir(root)).then_some(root)
}

#[cfg(target_os = "linux")]
fn sweep_start(start: &Start, own_root: Option<&Path>) -> usize {
    use super::{cgroup, procfs};
    use std::collections::HashSet;
    use std::time::Duration;

    let Some((pid, time)) = parse_prefix(&start.marker_prefix) else {
        return 0;
    };
    // That ward still runs (or is this one): nothing of it is left over.
    // The same pid with another start time is a recycled pid (or, as PID 1
    // of a container, a later start), and the recorded start is gone.
    if procfs::stat(pid).is_some_and(|s| s.start_time == time) {
        return 0;
    }
    let me = std::process::id();
    let mut killed: HashSet<u32> = HashSet::new();
    let root = checked_root(start, pid).filter(|root| Some(*root) != own_root);
    if let Some(root) = root {
        killed.extend(members(root));
        let _ = cgroup::kill(root);
    }
    let entry = super::tree::marker_entry(&format!("{}/", start.marker_prefix));
    for _ in 0..super::tree::KILL_ROUNDS {
        // An unreadable /proc is not "nothing left": try again, within the
        // rounds.
        let Ok(live) = procfs::live_processes() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let marked: Vec<u32> = live
            .into_iter()
            .map(|p| p.pid)
            .filter(|&p| p != me)
            .filter(|&p| {
                procfs::environ(p)
                    .is_some_and(|env| procfs::env_entries(&env).any(|e| e.starts_with(&entry)))
            })
            .collect();
        if marked.is_empty() {
            break;
        }
        for p in marked {
            killed.insert(p);
            if let Some(pid) = i32::try_from(p)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if let Some(root) = root {
        // Bounded: a process in uninterruptible sleep may take a while to
        // die; its root is then removed by a later start.
        for _ in 0..200 {
            if !cgroup::populated(root).unwrap_or(false) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        cgroup::remove_tree(root);
    }
    killed.len()
}

/// Every process in `dir` and the cgroups below it.
#[cfg(target_os = "linux")]
fn members(dir: &Path) -> Vec<u32> {
    let mut pids = super::cgroup::procs(dir).unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(members(&entry.path()));
            }
        }
    }
    pids
}

/// At the end of a ward's life, once every run is over: ends the processes
/// ward adopted as subreaper that belong to no run any more (a descendant
/// that left its process group, cleared its environment, and whose parent
/// then exited), and what they started. SIGTERM first, then SIGKILL after
/// `grace`; `keep` (the sentinel) is left alone. Returns how many there
/// were. Nothing to do where ward is no subreaper.
pub fn end_adopted(keep: Option<u32>, grace: std::time::Duration) -> usize {
    #[cfg(target_os = "linux")]
    {
        let strays = adopted(keep);
        if strays.is_empty() {
            return 0;
        }
        for &pid in &strays {
            super::tree::kill_pid(pid, libc::SIGTERM);
            super::tree::kill_pid(pid, libc::SIGCONT);
        }
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline && !adopted(keep).is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        for pid in adopted(keep) {
            super::tree::kill_pid(pid, libc::SIGKILL);
        }
        strays.len()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (keep, grace);
        0
    }
}

/// The live children of ward but `keep`, and all their descendants.
#[cfg(target_os = "linux")]
fn adopted(keep: Option<u32>) -> Vec<u32> {
    let Ok(all) = super::procfs::live_processes() else {
        return Vec::new();
    };
    let mut found: std::collections::HashSet<u32> = [std::process::id()].into();
    let mut strays = Vec::new();
    loop {
        let before = strays.len();
        for p in &all {
            if Some(p.pid) != keep && !found.contains(&p.pid) && found.contains(&p.ppid) {
                found.insert(p.pid);
                strays.push(p.pid);
            }
        }
        if strays.len() == before {
            return strays;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn prefixes_name_a_pid_and_a_start_time() {
        assert_eq!(parse_prefix("123.456"), Some((123, 456)));
        assert_eq!(parse_prefix("123"), None);
        assert_eq!(parse_prefix("a.1"), None);
    }

    #[test]
    fn a_live_ward_and_junk_are_left_alone() {
        let me = std::process::id();
        let time = super::super::start_time(me).unwrap();
        let own = Start {
            cgroup_root: Some(PathBuf::from("/")),
            marker_prefix: format!("{me}.{time}"),
        };
        let junk = Start {
            cgroup_root: Some(PathBuf::from("/etc")),
            marker_prefix: "not a prefix".into(),
        };
        let dead = Start {
            cgroup_root: Some(PathBuf::from("/etc")),
            marker_prefix: "999999999.1".into(),
        };
        assert_eq!(sweep_starts(&[own, junk, dead], None), 0);
    }
}
