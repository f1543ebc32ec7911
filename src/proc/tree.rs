//! Process trees: every process of one run, found by its cgroup leaf when it
//! has one, else by its process group plus the environment marker that every
//! descendant inherits. Also the sweep of a previous ward's leftovers.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ward_core::Signal;

use super::sentinel::Link;
use super::{signal_number, Leftover, MARKER_VAR};

/// How often a kill re-scans for processes that forked while being killed.
/// Each round only hits processes not yet hit; a process with SIGKILL
/// pending cannot fork, so the rounds run out quickly.
const KILL_ROUNDS: u32 = 16;

/// Every process of one run.
///
/// Without a cgroup, a process that both leaves the process group (setsid)
/// and clears or replaces its environment cannot be found; with a cgroup,
/// nothing short of a privileged move escapes.
#[derive(Clone, Debug)]
pub struct Tree {
    pgid: i32,
    leaf: Option<PathBuf>,
    /// `<prefix>/<tree name>`, the value of `WARD_TREE`.
    marker: String,
    sentinel: Option<Arc<Link>>,
}

/// One live process of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Member {
    pid: u32,
    pgrp: i32,
}

impl Tree {
    pub(crate) fn new(
        pgid: i32,
        leaf: Option<PathBuf>,
        marker: String,
        sentinel: Option<Arc<Link>>,
    ) -> Tree {
        Tree {
            pgid,
            leaf,
            marker,
            sentinel,
        }
    }

    pub fn pgid(&self) -> i32 {
        self.pgid
    }

    /// The value of `WARD_TREE` in this run's environment (for the state
    /// file's [`Leftover`] record).
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// The run's cgroup leaf, if it has one (for the state file).
    pub fn cgroup(&self) -> Option<&Path> {
        self.leaf.as_deref()
    }

    /// Sends `sig` to every process of the tree. The process group is
    /// signalled with one `kill(-pgid)`, which the kernel makes atomic
    /// against a concurrent fork; members outside the group (setsid'd, in the
    /// cgroup or carrying the marker) are then signalled one by one. A tree
    /// that is already empty is not an error.
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        self.send_all(&[signal_number(sig)])
    }

    /// Sends the stop signal `sig` to every process of the tree, then
    /// SIGCONT to the same processes, as systemd does: a stopped process
    /// (SIGSTOP, Ctrl-Z, a debugger that let go) keeps any other signal
    /// pending until it is continued, so without SIGCONT it would not stop
    /// gracefully but be killed at the deadline. A process that was not
    /// stopped ignores SIGCONT unless it handles it. No SIGCONT follows KILL
    /// (needs none), CONT itself, or STOP and TSTP, which it would cancel.
    pub fn signal_stop(&self, sig: Signal) -> io::Result<()> {
        match sig {
            Signal::Kill | Signal::Cont | Signal::Stop | Signal::Tstp => self.signal(sig),
            _ => self.send_all(&[signal_number(sig), libc::SIGCONT]),
        }
    }

    /// Each of `signos` in turn to the process group, then to the members
    /// outside it. The members are found once, after the first signal has
    /// reached the group, so every signal reaches the same processes.
    fn send_all(&self, signos: &[i32]) -> io::Result<()> {
        let mut outside: Option<Vec<Member>> = None;
        let mut result = Ok(());
        for &signo in signos {
            let mut keep = |r: io::Result<()>| {
                if result.is_ok() {
                    result = r;
                }
            };
            keep(send(-self.pgid, signo));
            let outside = outside.get_or_insert_with(|| {
                self.members()
                    .into_iter()
                    .filter(|m| m.pgrp != self.pgid)
                    .collect()
            });
            for m in outside.iter() {
                keep(send(m.pid as i32, signo));
            }
        }
        result
    }

    /// Sends `sig` to the run's main process (the leader: its pid is the
    /// group's id). While any process of the group lives, the kernel does not
    /// hand that pid to another process.
    pub fn signal_leader(&self, sig: Signal) -> io::Result<()> {
        send(self.pgid, signal_number(sig))
    }

    /// SIGKILLs the whole tree: `cgroup.kill` where the run has a leaf (one
    /// atomic write that no fork escapes), else the process group and then
    /// rounds of scans for marked processes until no new one turns up.
    pub fn kill(&self) {
        #[cfg(target_os = "linux")]
        if let Some(leaf) = &self.leaf {
            if super::cgroup::kill(leaf).is_ok() {
                return;
            }
        }
        let _ = send(-self.pgid, libc::SIGKILL);
        let mut hit = HashSet::new();
        for _ in 0..KILL_ROUNDS {
            let fresh: Vec<Member> = self
                .members()
                .into_iter()
                .filter(|m| hit.insert(m.pid))
                .collect();
            if fresh.is_empty() {
                return;
            }
            for m in fresh {
                let _ = send(m.pid as i32, libc::SIGKILL);
            }
        }
    }

    /// No live process is left (zombies do not count: they are dead, and
    /// ward's reaper collects those that are its children).
    pub fn is_empty(&self) -> bool {
        #[cfg(target_os = "linux")]
        if let Some(leaf) = &self.leaf {
            if let Ok(populated) = super::cgroup::populated(leaf) {
                return !populated;
            }
        }
        self.members().is_empty()
    }

    /// The live processes of the tree, leader first if it is alive.
    #[allow(dead_code)] // for tests and diagnostics; the daemon needs no list
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.members().into_iter().map(|m| m.pid).collect();
        pids.sort_by_key(|&p| (p as i32 != self.pgid, p));
        pids
    }

    /// Resolves when the tree is empty. Polls, 5 ms doubling to 100 ms: this
    /// runs only while a stop or an exit is under way.
    pub async fn gone(&self) {
        let mut pause = Duration::from_millis(5);
        while !self.is_empty() {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Removes the cgroup leaf and tells the sentinel to forget the process
    /// group. Call once the tree is gone; calling again does nothing. A leaf
    /// that is still populated is left in place (the root's cleanup and the
    /// sentinel retry).
    pub fn cleanup(&self) {
        #[cfg(target_os = "linux")]
        if let Some(leaf) = &self.leaf {
            let _ = super::cgroup::remove(leaf);
        }
        if let Some(link) = &self.sentinel {
            link.untrack(self.pgid);
        }
    }

    #[cfg(target_os = "linux")]
    fn members(&self) -> Vec<Member> {
        use super::procfs;
        if let Some(leaf) = &self.leaf {
            if let Ok(pids) = super::cgroup::procs(leaf) {
                return pids
                    .into_iter()
                    .filter_map(procfs::stat)
                    .filter(procfs::ProcStat::is_live)
                    .map(|s| Member {
                        pid: s.pid,
                        pgrp: s.pgrp,
                    })
                    .collect();
            }
        }
        let entry = marker_entry(&self.marker);
        procfs::live_processes()
            .into_iter()
            .filter(|p| p.pgrp == self.pgid || carries(p.pid, |e| e == entry.as_slice()))
            .map(|p| Member {
                pid: p.pid,
                pgrp: p.pgrp,
            })
            .collect()
    }

    /// Without /proc only the process group can be seen, and only whether it
    /// still has a member: the leader stands for the group.
    #[cfg(not(target_os = "linux"))]
    fn members(&self) -> Vec<Member> {
        if send(-self.pgid, 0).is_ok() {
            vec![Member {
                pid: self.pgid as u32,
                pgrp: self.pgid,
            }]
        } else {
            Vec::new()
        }
    }
}

/// kill(2); a target that no longer exists is not an error.
fn send(target: i32, signo: i32) -> io::Result<()> {
    // SAFETY: kill has no memory preconditions.
    if unsafe { libc::kill(target, signo) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ESRCH) => Ok(()),
        _ => Err(err),
    }
}

/// `WARD_TREE=<marker>` as it appears in an environment block.
pub(crate) fn marker_entry(marker: &str) -> Vec<u8> {
    format!("{MARKER_VAR}={marker}").into_bytes()
}

#[cfg(target_os = "linux")]
fn carries(pid: u32, mut matches: impl FnMut(&[u8]) -> bool) -> bool {
    use super::procfs;
    procfs::environ(pid).is_some_and(|env| procfs::env_entries(&env).any(&mut matches))
}

/// A process's start time in clock ticks since boot, or `None` if it does
/// not exist (or on a system without /proc).
pub fn start_time(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        super::procfs::stat(pid).map(|s| s.start_time)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// Kills what a previous ward left running, as recorded in its state file.
/// A recorded pid is hit only if its start time still matches (a recycled pid
/// belongs to someone else), a process group only if a verified process is
/// still in it, a cgroup only if the path is a cgroup v2 directory named
/// after the run. Processes carrying a recorded marker are killed too: the
/// marker names one run of one ward start, so it cannot match a stranger.
/// Returns how many processes were killed.
pub fn sweep(records: &[Leftover]) -> usize {
    #[cfg(target_os = "linux")]
    {
        sweep_linux(records)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let mut killed = 0;
        for r in records {
            // Without /proc there is no start time to check, so only a group
            // is hit, and only while its recorded leader still leads it.
            // SAFETY: getpgid has no memory preconditions.
            if r.pgid > 1
                && unsafe { libc::getpgid(r.pid as i32) } == r.pgid
                && send(-r.pgid, libc::SIGKILL).is_ok()
            {
                killed += 1;
            }
        }
        killed
    }
}

#[cfg(target_os = "linux")]
fn sweep_linux(records: &[Leftover]) -> usize {
    use super::{cgroup, procfs};
    use std::collections::HashMap;

    if records.is_empty() {
        // Nothing recorded: no reason to read every process's environment.
        return 0;
    }
    let me = std::process::id();
    let own_group = procfs::stat(me).map(|s| s.pgrp);
    let markers: HashSet<Vec<u8>> = records.iter().map(|r| marker_entry(&r.marker)).collect();
    let recorded: HashMap<u32, u64> = records.iter().map(|r| (r.pid, r.start_time)).collect();
    let groups: HashSet<i32> = records.iter().map(|r| r.pgid).filter(|&g| g > 1).collect();
    let leaves: Vec<&Path> = records
        .iter()
        .filter_map(|r| {
            let leaf = r.cgroup.as_deref()?;
            let tree_name = r.marker.rsplit('/').next()?;
            let named = leaf.file_name().is_some_and(|n| n == tree_name);
            (leaf.is_absolute() && named && cgroup::is_cgroup2_dir(leaf)).then_some(leaf)
        })
        .collect();

    let mut killed: HashSet<u32> = HashSet::new();
    for leaf in &leaves {
        killed.extend(cgroup::procs(leaf).unwrap_or_default());
        let _ = cgroup::kill(leaf);
    }
    for _ in 0..KILL_ROUNDS {
        let live: Vec<procfs::ProcStat> = procfs::live_processes()
            .into_iter()
            .filter(|p| p.pid != me && Some(p.pgrp) != own_group)
            .collect();
        let verified: Vec<&procfs::ProcStat> = live
            .iter()
            .filter(|p| {
                recorded.get(&p.pid) == Some(&p.start_time)
                    || carries(p.pid, |e| markers.contains(e))
            })
            .collect();
        let live_groups: HashSet<i32> = verified
            .iter()
            .map(|p| p.pgrp)
            .filter(|g| groups.contains(g))
            .collect();
        let fresh: Vec<u32> = live
            .iter()
            .filter(|p| live_groups.contains(&p.pgrp))
            .map(|p| p.pid)
            .chain(verified.iter().map(|p| p.pid))
            .filter(|&pid| killed.insert(pid))
            .collect();
        for &g in &live_groups {
            let _ = send(-g, libc::SIGKILL);
        }
        for &pid in &fresh {
            let _ = send(pid as i32, libc::SIGKILL);
        }
        if fresh.is_empty() {
            break;
        }
    }
    for leaf in &leaves {
        remove_when_empty(leaf);
    }
    // The dead ward's root, once its last leaf is gone.
    for root in leaves.iter().filter_map(|leaf| leaf.parent()) {
        cgroup::remove_dead_root(root);
    }
    killed.len()
}

/// rmdir a killed leaf once its processes are dead (bounded: 2 s).
#[cfg(target_os = "linux")]
fn remove_when_empty(leaf: &Path) {
    use super::cgroup;
    for _ in 0..200 {
        if !cgroup::populated(leaf).unwrap_or(false) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = cgroup::remove(leaf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_entries_name_the_variable() {
        assert_eq!(marker_entry("12.34/api.0.r1"), b"WARD_TREE=12.34/api.0.r1");
    }

    #[test]
    fn own_start_time_is_stable() {
        let me = std::process::id();
        let first = start_time(me);
        assert!(first.is_some());
        assert_eq!(start_time(me), first);
    }

    #[test]
    fn sweep_of_nothing_kills_nothing() {
        assert_eq!(sweep(&[]), 0);
        let stranger = Leftover {
            pid: std::process::id(),
            start_time: 0,
            pgid: 0,
            cgroup: Some(PathBuf::from("/tmp")),
            marker: "0.0/none".into(),
        };
        assert_eq!(sweep(&[stranger]), 0);
    }
}
