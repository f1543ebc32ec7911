//! Process trees: every process of one run, found by its cgroup leaf when it
//! has one, else by its process group plus the environment marker that every
//! descendant inherits. Also the sweep of a previous ward's leftovers.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::Signal;

use super::sentinel::Link;
use super::{signal_number, TreeRecord, MARKER_VAR};

/// How often a kill re-scans for processes that forked while being killed.
/// Each round only hits processes not yet hit; a process with SIGKILL
/// pending cannot fork, so the rounds run out quickly.
pub(crate) const KILL_ROUNDS: u32 = 16;

/// Every process of one run.
///
/// Without a cgroup, a process that leaves the process group (setsid),
/// clears or replaces its environment, and whose parent is no longer in
/// the tree cannot be found (it is re-parented to ward, the subreaper, and
/// ended when ward ends); with a cgroup, nothing short of a privileged move
/// escapes.
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

    /// The state file's record of this tree, whose leader is `pid`.
    pub fn record(&self, pid: u32) -> TreeRecord {
        TreeRecord {
            pid,
            start_time: start_time(pid).unwrap_or(0),
            pgid: self.pgid,
            cgroup: self.cgroup().map(Path::to_path_buf),
            marker: self.marker.clone(),
        }
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

    /// [`Tree::signal_stop`] for the main process only (`stop_mode =
    /// "main"`): it stops the rest of its tree its own way.
    pub fn signal_stop_leader(&self, sig: Signal) -> io::Result<()> {
        self.signal_leader(sig)?;
        match sig {
            Signal::Kill | Signal::Cont | Signal::Stop | Signal::Tstp => Ok(()),
            _ => send(self.pgid, libc::SIGCONT),
        }
    }

    /// Each of `signos` in turn to the process group, then to the members
    /// outside it. The members are found once, after the first signal has
    /// reached the group, so every signal reaches the same processes;
    /// without a cgroup also once before it, while the descendants of the
    /// group still have their parents (see [`Tree::members`]).
    fn send_all(&self, signos: &[i32]) -> io::Result<()> {
        let before = self.members_by_parent();
        let mut outside: Option<Vec<Member>> = None;
        let mut result = Ok(());
        for &signo in signos {
            let mut keep = |r: io::Result<()>| {
                if result.is_ok() {
                    result = r;
                }
            };
            keep(send(-self.pgid, signo));
            if outside.is_none() {
                // Members that cannot be listed got no signal: an error.
                let mut listed = self.members().unwrap_or_else(|e| {
                    keep(Err(e));
                    Vec::new()
                });
                for m in &before {
                    if !listed.contains(m) {
                        listed.push(*m);
                    }
                }
                outside = Some(listed.into_iter().filter(|m| m.pgrp != self.pgid).collect());
            }
            for m in outside.iter().flatten() {
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
        let before = self.members_by_parent();
        let _ = send(-self.pgid, libc::SIGKILL);
        let mut hit = HashSet::new();
        for m in before {
            if m.pgrp != self.pgid && hit.insert(m.pid) {
                let _ = send(m.pid as i32, libc::SIGKILL);
            }
        }
        for _ in 0..KILL_ROUNDS {
            // A tree that cannot be listed now is not taken for empty: the
            // run task keeps watching it (see `gone`).
            let Ok(members) = self.members() else {
                return;
            };
            let fresh: Vec<Member> = members.into_iter().filter(|m| hit.insert(m.pid)).collect();
            if fresh.is_empty() {
                return;
            }
            for m in fresh {
                let _ = send(m.pid as i32, libc::SIGKILL);
            }
        }
    }

    /// No live process is left (zombies do not count: they are dead, and
    /// ward's reaper collects those that are its children). An error when
    /// the tree cannot be read (`cgroup.events`, or /proc without a cgroup:
    /// out of descriptors, say): never a guess, since "empty" ends a stop
    /// and would leave whatever is left running unwatched.
    pub fn is_empty(&self) -> io::Result<bool> {
        #[cfg(target_os = "linux")]
        if let Some(leaf) = &self.leaf {
            return match super::cgroup::populated(leaf) {
                Ok(populated) => Ok(!populated),
                // Only an empty cgroup can be removed, and nothing enters a
                // removed one: a leaf that is gone is an empty tree.
                Err(e) if e.kind() == io::ErrorKind::NotFound && !leaf.exists() => Ok(true),
                Err(e) => Err(io::Error::new(
                    e.kind(),
                    format!("cannot read {}/cgroup.events: {e}", leaf.display()),
                )),
            };
        }
        Ok(self.members()?.is_empty())
    }

    /// The live processes of the tree, leader first if it is alive.
    #[allow(dead_code)] // for tests and diagnostics; the daemon needs no list
    pub fn pids(&self) -> io::Result<Vec<u32>> {
        let mut pids: Vec<u32> = self.members()?.into_iter().map(|m| m.pid).collect();
        pids.sort_by_key(|&p| (p as i32 != self.pgid, p));
        Ok(pids)
    }

    /// Resolves when the tree is empty (see [`super::until_empty`]).
    pub async fn gone(&self, read: impl FnMut(Option<&io::Error>)) {
        super::until_empty(|| self.is_empty(), read).await
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

    /// Without a cgroup, the members as seen before the group is signalled:
    /// a descendant found only through its parent (see [`Tree::members`])
    /// is lost from view once a signal has ended that parent. Empty with a
    /// cgroup (it sees every process anyway) or when /proc cannot be read
    /// (the listing after the signal reports that).
    fn members_by_parent(&self) -> Vec<Member> {
        #[cfg(target_os = "linux")]
        if self.leaf.is_none() {
            return self.members().unwrap_or_default();
        }
        Vec::new()
    }

    /// The live processes of the tree: its cgroup's when it has one, else
    /// its process group's, the marked ones, and every descendant of those.
    /// A list that cannot be read whole is an error, never a shorter list.
    #[cfg(target_os = "linux")]
    fn members(&self) -> io::Result<Vec<Member>> {
        use super::procfs;
        let member = |s: procfs::ProcStat| Member {
            pid: s.pid,
            pgrp: s.pgrp,
        };
        if let Some(leaf) = &self.leaf {
            let mut members = Vec::new();
            for pid in super::cgroup::procs(leaf)? {
                if let Some(st) = procfs::read_stat(pid)?.filter(procfs::ProcStat::is_live) {
                    members.push(member(st));
                }
            }
            return Ok(members);
        }
        let entry = marker_entry(&self.marker);
        let mut members = Vec::new();
        let mut others = Vec::new();
        for p in procfs::live_processes()? {
            if p.pgrp == self.pgid || carries(p.pid, |e| e == entry.as_slice())? {
                members.push(member(p));
            } else {
                others.push(p);
            }
        }
        // And every descendant of a member, whatever it did to its group
        // and environment: while its parent is in the tree, so is it.
        let mut known: std::collections::HashSet<u32> = members.iter().map(|m| m.pid).collect();
        loop {
            let before = members.len();
            others.retain(|p| {
                if known.contains(&p.ppid) {
                    known.insert(p.pid);
                    members.push(member(*p));
                    false
                } else {
                    true
                }
            });
            if members.len() == before {
                break;
            }
        }
        Ok(members)
    }

    /// Without /proc only the process group can be seen, and only whether it
    /// still has a member: the leader stands for the group.
    #[cfg(not(target_os = "linux"))]
    fn members(&self) -> io::Result<Vec<Member>> {
        let group = rustix::process::Pid::from_raw(self.pgid)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        let found = match rustix::process::test_kill_process_group(group) {
            Ok(()) => true,
            Err(rustix::io::Errno::SRCH) => false,
            // Someone else's process now, but a process of the group.
            Err(rustix::io::Errno::PERM) => true,
            Err(e) => return Err(e.into()),
        };
        Ok(if found {
            vec![Member {
                pid: self.pgid as u32,
                pgrp: self.pgid,
            }]
        } else {
            Vec::new()
        })
    }
}

/// kill(2) to one process, for the end of adopted strays; one that is gone
/// (or not ours) is not an error there.
#[cfg(target_os = "linux")]
pub(crate) fn kill_pid(pid: u32, signo: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        if pid > 1 {
            let _ = send(pid, signo);
        }
    }
}

/// kill(2) of a process (`target` > 0) or a process group (`-target`); a
/// target that no longer exists is not an error.
fn send(target: i32, signo: i32) -> io::Result<()> {
    use rustix::process::{kill_process, kill_process_group, Pid, Signal};
    let sig =
        Signal::from_named_raw(signo).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let pid = Pid::from_raw(target.saturating_abs())
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let sent = if target < 0 {
        kill_process_group(pid, sig)
    } else {
        kill_process(pid, sig)
    };
    match sent {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `WARD_TREE=<marker>` as it appears in an environment block.
pub(crate) fn marker_entry(marker: &str) -> Vec<u8> {
    format!("{MARKER_VAR}={marker}").into_bytes()
}

/// Whether `pid`'s environment has an entry that `matches`; an error when
/// the process exists but its environment cannot be read.
#[cfg(target_os = "linux")]
fn carries(pid: u32, mut matches: impl FnMut(&[u8]) -> bool) -> io::Result<bool> {
    use super::procfs;
    Ok(procfs::read_environ(pid)?.is_some_and(|env| procfs::env_entries(&env).any(&mut matches)))
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
pub fn sweep(records: &[TreeRecord]) -> usize {
    #[cfg(target_os = "linux")]
    {
        sweep_linux(records)
    }
    #[cfg(not(target_os = "linux"))]
    {
        /// The process group `pid` is in, if it exists.
        fn group_of(pid: u32) -> Option<i32> {
            use rustix::process::{getpgid, Pid};
            let pid = Pid::from_raw(i32::try_from(pid).ok()?)?;
            Some(getpgid(Some(pid)).ok()?.as_raw_nonzero().get())
        }
        let mut killed = 0;
        for r in records {
            // Without /proc there is no start time to check, so only a group
            // is hit, and only while its recorded leader still leads it.
            if r.pgid > 1 && group_of(r.pid) == Some(r.pgid) && send(-r.pgid, libc::SIGKILL).is_ok()
            {
                killed += 1;
            }
        }
        killed
    }
}

#[cfg(target_os = "linux")]
fn sweep_linux(records: &[TreeRecord]) -> usize {
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
        // A sweep is best effort (it runs once, at start, with few
        // descriptors open): a scan that fails ends it.
        let Ok(live) = procfs::live_processes() else {
            break;
        };
        let live: Vec<procfs::ProcStat> = live
            .into_iter()
            .filter(|p| p.pid != me && Some(p.pgrp) != own_group)
            .collect();
        let verified: Vec<&procfs::ProcStat> = live
            .iter()
            .filter(|p| {
                recorded.get(&p.pid) == Some(&p.start_time)
                    || carries(p.pid, |e| markers.contains(e)).unwrap_or(false)
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

    /// A tree whose leaf is a directory but no cgroup: nothing can be read.
    #[cfg(target_os = "linux")]
    fn unreadable_tree(dir: &Path) -> Tree {
        // A process group that does not exist: only the leaf could say.
        Tree::new(i32::MAX, Some(dir.to_path_buf()), "0.0/none".into(), None)
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_tree_that_cannot_be_read_is_not_empty() {
        let dir = tempfile::tempdir().unwrap();
        let tree = unreadable_tree(dir.path());
        let err = tree.is_empty().unwrap_err();
        assert!(err.to_string().contains("cgroup.events"), "{err}");
        assert!(tree.pids().is_err());
        // A leaf that is gone was empty (only an empty cgroup is removed).
        let gone = unreadable_tree(&dir.path().join("removed"));
        assert!(gone.is_empty().unwrap());
    }

    #[tokio::test]
    #[cfg(target_os = "linux")]
    async fn gone_does_not_resolve_while_the_tree_cannot_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let tree = unreadable_tree(dir.path());
        let mut errors = 0;
        let waited = tokio::time::timeout(
            Duration::from_millis(300),
            tree.gone(|outcome| errors += usize::from(outcome.is_some())),
        )
        .await;
        assert!(waited.is_err(), "gone resolved on an unreadable tree");
        assert!(errors >= 2, "it did not keep trying: {errors} attempts");
        // Once it can be read (and is empty), it resolves and says so.
        let mut last_ok = false;
        let gone = unreadable_tree(&dir.path().join("removed"));
        tokio::time::timeout(
            Duration::from_secs(5),
            gone.gone(|outcome| last_ok = outcome.is_none()),
        )
        .await
        .unwrap();
        assert!(last_ok);
    }

    #[test]
    fn sweep_of_nothing_kills_nothing() {
        assert_eq!(sweep(&[]), 0);
        let stranger = TreeRecord {
            pid: std::process::id(),
            start_time: 0,
            pgid: 0,
            cgroup: Some(PathBuf::from("/tmp")),
            marker: "0.0/none".into(),
        };
        assert_eq!(sweep(&[stranger]), 0);
    }
}
