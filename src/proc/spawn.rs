//! One spawn: std's `Command` plus ward's own steps between fork and exec
//! (cgroup placement, credentials, working directory, parent-death signal,
//! clean signal state), and errors that say which step failed.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use tokio::sync::oneshot;
use ward_core::ExitStatus;

use super::creds::{self, Credentials};
use super::sentinel::Link;
use super::tree::Tree;
use super::unix::pipe;
use super::{reaper, Launch, MARKER_VAR};

/// Variables systemd (and compatible managers) set for the process they
/// start; a program under ward must not mistake them for its own.
const INHERITED_FROM_SERVICE_MANAGER: [&str; 7] = [
    "NOTIFY_SOCKET",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "INVOCATION_ID",
];

/// What every spawn needs to know, shared with the spawner thread.
pub(crate) struct Context {
    pub cgroup_root: Option<PathBuf>,
    /// `<ward pid>.<ward start time>`: the first half of every marker.
    pub prefix: String,
    pub sentinel: Option<Arc<Link>>,
    pub ward_pid: libc::pid_t,
}

/// A started process.
#[derive(Debug)]
pub struct Child {
    pub pid: u32,
    /// Read ends of the child's stdout and stderr (blocking, close-on-exec).
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub tree: Tree,
    /// The leader's exit status, from the reaper.
    pub exit: oneshot::Receiver<ExitStatus>,
    /// Set when this run could not be placed in its cgroup leaf and runs on
    /// process group + marker alone; say it once.
    #[allow(dead_code)] // until the daemon publishes it
    pub warning: Option<String>,
}

/// Where the child was when something failed, as the child reports it over
/// a close-on-exec pipe: one byte of stage, four of errno, per record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Stage {
    /// Not fatal: the child runs outside its cgroup leaf.
    Cgroup = 1,
    Groups,
    Gid,
    Uid,
    Cwd,
    DeathSignal,
    Orphaned,
    /// Every step before exec succeeded: a failure now is exec's.
    Exec,
}

const STAGES: [Stage; 8] = [
    Stage::Cgroup,
    Stage::Groups,
    Stage::Gid,
    Stage::Uid,
    Stage::Cwd,
    Stage::DeathSignal,
    Stage::Orphaned,
    Stage::Exec,
];

/// Everything the child does between fork and exec, prepared in the parent.
struct ChildSetup {
    cgroup_procs: Option<RawFd>,
    groups: Option<Vec<libc::gid_t>>,
    gid: Option<libc::gid_t>,
    uid: Option<libc::uid_t>,
    cwd: CString,
    report: RawFd,
    parent: libc::pid_t,
}

impl ChildSetup {
    /// Runs in the forked child. Only async-signal-safe system calls: no
    /// allocation, no lock, no logging (another thread of ward may have held
    /// the allocator's lock at the fork).
    fn run(&self) -> io::Result<()> {
        if let Some(fd) = self.cgroup_procs {
            // Before the credentials change: afterwards the child may no
            // longer write to cgroup.procs.
            // SAFETY: fd is open (the parent keeps it open across the fork);
            // the buffer is a static byte string.
            if unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) } != 1 {
                let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
                self.note(Stage::Cgroup, errno);
            }
        }
        if let Some(groups) = &self.groups {
            // SAFETY: the pointer and length describe a live Vec.
            if unsafe { libc::setgroups(groups.len() as _, groups.as_ptr()) } == -1 {
                return self.fail(Stage::Groups);
            }
        }
        if let Some(gid) = self.gid {
            // SAFETY: setgid has no memory preconditions; this process is
            // single-threaded, so no other thread keeps the old group.
            if unsafe { libc::setgid(gid) } == -1 {
                return self.fail(Stage::Gid);
            }
        }
        if let Some(uid) = self.uid {
            // SAFETY: as for setgid.
            if unsafe { libc::setuid(uid) } == -1 {
                return self.fail(Stage::Uid);
            }
        }
        // SAFETY: cwd is a NUL-terminated string owned by self.
        if unsafe { libc::chdir(self.cwd.as_ptr()) } == -1 {
            return self.fail(Stage::Cwd);
        }
        #[cfg(target_os = "linux")]
        {
            // After the credentials change, which would clear it.
            // SAFETY: prctl with integer arguments only.
            if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } == -1 {
                return self.fail(Stage::DeathSignal);
            }
            // ward may have died before the signal was armed.
            // SAFETY: getppid has no preconditions.
            if unsafe { libc::getppid() } != self.parent {
                self.note(Stage::Orphaned, libc::ESRCH);
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        // Ignored signals stay ignored across exec and the mask is inherited;
        // a child must start with neither (std resets only SIGPIPE). The two
        // signals libc reserves below SIGRTMIN are left alone: libc refuses
        // them, and programs that use them (through libc) set them up anyway.
        // SAFETY: signal() and sigprocmask() are async-signal-safe; the set
        // lives on this stack frame.
        unsafe {
            for sig in (1..32).chain(realtime_signals()) {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        }
        self.note(Stage::Exec, 0);
        Ok(())
    }

    fn fail(&self, stage: Stage) -> io::Result<()> {
        let err = io::Error::last_os_error();
        self.note(stage, err.raw_os_error().unwrap_or(0));
        Err(err)
    }

    fn note(&self, stage: Stage, errno: i32) {
        let e = errno.to_ne_bytes();
        let record = [stage as u8, e[0], e[1], e[2], e[3]];
        // SAFETY: report is the open write end of the report pipe; 5 bytes
        // are below PIPE_BUF, so the write is whole or not at all.
        let _ = unsafe { libc::write(self.report, record.as_ptr().cast(), record.len()) };
    }
}

#[cfg(target_os = "linux")]
fn realtime_signals() -> std::ops::RangeInclusive<libc::c_int> {
    libc::SIGRTMIN()..=libc::SIGRTMAX()
}

/// None outside Linux: an empty range.
#[cfg(not(target_os = "linux"))]
#[allow(clippy::reversed_empty_ranges)]
fn realtime_signals() -> std::ops::RangeInclusive<libc::c_int> {
    1..=0
}

fn read_reports(fd: &OwnedFd) -> Vec<(Stage, i32)> {
    let mut buf = [0u8; 64];
    let mut bytes = Vec::new();
    loop {
        // SAFETY: buf is valid for writes of its length; fd is open and
        // non-blocking.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n as usize]);
    }
    bytes
        .chunks_exact(5)
        .filter_map(|r| {
            let stage = *STAGES.iter().find(|s| **s as u8 == r[0])?;
            Some((stage, i32::from_ne_bytes([r[1], r[2], r[3], r[4]])))
        })
        .collect()
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// A name that becomes one path component (cgroup directory, marker tail).
pub(crate) fn check_component(what: &str, name: &str) -> io::Result<()> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.len() > 200
        || name.contains(['/', '\0', '\n']);
    if bad {
        return Err(invalid(format!(
            "{what} {name:?} is not a valid directory name"
        )));
    }
    Ok(())
}

fn check_launch(launch: &Launch) -> io::Result<&str> {
    let program = launch
        .argv
        .first()
        .ok_or_else(|| invalid("cannot run an empty command".into()))?;
    if let Some(arg) = launch.argv.iter().find(|a| a.contains('\0')) {
        return Err(invalid(format!(
            "cannot run {program}: argument {arg:?} contains a NUL byte"
        )));
    }
    for (key, value) in &launch.env {
        if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
            return Err(invalid(format!(
                "cannot run {program}: bad environment variable {key:?}"
            )));
        }
    }
    check_component("tree name", &launch.tree_name)?;
    Ok(program)
}

/// The leaf of this run and the open cgroup.procs the child writes to, or
/// the reason the run goes without.
#[cfg(target_os = "linux")]
fn prepare_leaf(ctx: &Context, tree_name: &str) -> Result<Option<(PathBuf, OwnedFd)>, String> {
    use super::cgroup;
    let Some(root) = &ctx.cgroup_root else {
        return Ok(None);
    };
    let leaf = cgroup::create_leaf(root, tree_name).map_err(|e| {
        format!(
            "cannot create cgroup {}: {e}",
            root.join(tree_name).display()
        )
    })?;
    match cgroup::open_procs(&leaf) {
        Ok(fd) => Ok(Some((leaf, fd))),
        Err(e) => {
            let _ = cgroup::remove(&leaf);
            Err(format!("cannot open {}/cgroup.procs: {e}", leaf.display()))
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn prepare_leaf(_ctx: &Context, _tree_name: &str) -> Result<Option<(PathBuf, OwnedFd)>, String> {
    Ok(None)
}

#[cfg(target_os = "linux")]
fn drop_leaf(leaf: &Path) {
    let _ = super::cgroup::remove(leaf);
}

#[cfg(not(target_os = "linux"))]
fn drop_leaf(_leaf: &Path) {}

/// One spawn, on the spawner thread.
pub(crate) fn spawn_now(ctx: &Context, launch: Launch) -> io::Result<Child> {
    let program = check_launch(&launch)?;
    let creds = creds::resolve(launch.user.as_deref(), launch.group.as_deref())?;
    let cwd = CString::new(launch.cwd.as_os_str().as_bytes()).map_err(|_| {
        invalid(format!(
            "working directory {:?} contains a NUL byte",
            launch.cwd
        ))
    })?;
    let (mut leaf, mut warning) = match prepare_leaf(ctx, &launch.tree_name) {
        Ok(leaf) => (leaf, None),
        Err(why) => (
            None,
            Some(format!("{why}; this run uses its process group only")),
        ),
    };
    let (report_read, report_write) = pipe(true)?;
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    let setup = ChildSetup {
        cgroup_procs: leaf.as_ref().map(|(_, fd)| fd.as_raw_fd()),
        // Only root may set groups; for anyone else the list can only be
        // its own, and setuid/setgid still check the rest.
        groups: creds
            .as_ref()
            .and_then(|c| c.groups.clone())
            .filter(|_| is_root),
        gid: creds.as_ref().and_then(|c| c.gid),
        uid: creds.as_ref().and_then(|c| c.uid),
        cwd,
        report: report_write.as_raw_fd(),
        parent: ctx.ward_pid,
    };
    let marker = format!("{}/{}", ctx.prefix, launch.tree_name);

    let mut cmd = Command::new(program);
    cmd.args(&launch.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // What a service manager handed to ward itself (readiness socket,
    // socket activation, watchdog) is ward's, not its programs'.
    for var in INHERITED_FROM_SERVICE_MANAGER {
        cmd.env_remove(var);
    }
    if let Some(c) = &creds {
        cmd.envs(c.env.iter().map(|(k, v)| (k, v)));
    }
    cmd.envs(launch.env.iter().map(|(k, v)| (k, v)))
        .env(MARKER_VAR, &marker);
    // SAFETY: ChildSetup::run makes only async-signal-safe calls on data
    // prepared before the fork, as pre_exec requires.
    unsafe { cmd.pre_exec(move || setup.run()) };

    let spawned = {
        let mut table = reaper::lock();
        cmd.spawn().map(|child| {
            let exit = table.register(child.id());
            (child, exit)
        })
    };
    drop(cmd);
    drop(report_write);
    let reports = read_reports(&report_read);

    let (child, exit) = match spawned {
        Ok(pair) => pair,
        Err(e) => {
            if let Some((dir, _)) = &leaf {
                drop_leaf(dir);
            }
            return Err(explain(e, &reports, program, &launch.cwd, creds.as_ref()));
        }
    };
    if let Some((_, errno)) = reports.iter().find(|(s, _)| *s == Stage::Cgroup) {
        if let Some((dir, _)) = leaf.take() {
            warning = Some(format!(
                "cannot move the process into {}: {}; this run uses its process group only",
                dir.display(),
                io::Error::from_raw_os_error(*errno)
            ));
            drop_leaf(&dir);
        }
    }
    let pid = child.id();
    let (stdout, stderr) = match (child.stdout, child.stderr) {
        (Some(out), Some(err)) => (OwnedFd::from(out), OwnedFd::from(err)),
        // Piped above, so std always returns both; kept total all the same.
        _ => return Err(io::Error::other("the child's output pipes are missing")),
    };
    if let Some(link) = &ctx.sentinel {
        link.track(pid as i32);
    }
    let tree = Tree::new(
        pid as i32,
        leaf.map(|(dir, _)| dir),
        marker,
        ctx.sentinel.clone(),
    );
    Ok(Child {
        pid,
        stdout,
        stderr,
        tree,
        exit,
        warning,
    })
}

/// Turns the error std reports for a failed spawn into one that says which
/// step failed, from the child's own report.
fn explain(
    e: io::Error,
    reports: &[(Stage, i32)],
    program: &str,
    cwd: &Path,
    creds: Option<&Credentials>,
) -> io::Error {
    let stage = reports
        .iter()
        .map(|(s, _)| *s)
        .rfind(|s| *s != Stage::Cgroup);
    let user = creds.map(|c| c.user_label.as_str()).unwrap_or_default();
    let group = creds.map(|c| c.group_label.as_str()).unwrap_or_default();
    let denied = if e.kind() == io::ErrorKind::PermissionDenied {
        "permission denied: "
    } else {
        ""
    };
    let msg = match stage {
        Some(Stage::Groups) => {
            format!("{denied}cannot set the supplementary groups of {user}: {e}")
        }
        Some(Stage::Gid) => format!("{denied}cannot switch to {group}: {e}"),
        Some(Stage::Uid) => format!("{denied}cannot run as {user}: {e}"),
        Some(Stage::Cwd) => format!("cannot change directory to {}: {e}", cwd.display()),
        Some(Stage::DeathSignal) => {
            format!("cannot set the parent-death signal for {program}: {e}")
        }
        Some(Stage::Orphaned) => format!("ward exited while starting {program}"),
        Some(Stage::Exec) => format!("cannot run {program}: {e}"),
        Some(Stage::Cgroup) | None => format!("cannot prepare the process for {program}: {e}"),
    };
    io::Error::new(e.kind(), msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_checks_name_what_is_wrong() {
        let mut l = Launch {
            argv: vec!["./api".into()],
            cwd: "/".into(),
            env: vec![],
            user: None,
            group: None,
            tree_name: "api.0.r1".into(),
        };
        assert_eq!(check_launch(&l).unwrap(), "./api");
        l.tree_name = "a/b".into();
        assert!(check_launch(&l)
            .unwrap_err()
            .to_string()
            .contains("tree name"));
        l.tree_name = "ok".into();
        l.env = vec![("A=B".into(), "x".into())];
        assert!(check_launch(&l)
            .unwrap_err()
            .to_string()
            .contains("\"A=B\""));
        l.argv.clear();
        assert_eq!(
            check_launch(&l).unwrap_err().to_string(),
            "cannot run an empty command"
        );
    }

    #[test]
    fn failures_name_the_step() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        let cwd = Path::new("/x");
        let msg = explain(e, &[(Stage::Exec, 0)], "./api", cwd, None).to_string();
        assert_eq!(
            msg,
            "cannot run ./api: No such file or directory (os error 2)"
        );
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        let msg = explain(e, &[(Stage::Cwd, libc::ENOENT)], "./api", cwd, None).to_string();
        assert!(msg.starts_with("cannot change directory to /x: "), "{msg}");
        let e = io::Error::from_raw_os_error(libc::EPERM);
        let msg = explain(e, &[(Stage::Uid, libc::EPERM)], "x", cwd, None).to_string();
        assert!(msg.starts_with("permission denied: cannot run as"), "{msg}");
    }

    #[test]
    fn reports_survive_the_pipe() {
        let (r, w) = pipe(true).unwrap();
        let setup = ChildSetup {
            cgroup_procs: None,
            groups: None,
            gid: None,
            uid: None,
            cwd: CString::new("/").unwrap(),
            report: w.as_raw_fd(),
            parent: 0,
        };
        setup.note(Stage::Cgroup, libc::EBUSY);
        setup.note(Stage::Exec, 0);
        assert_eq!(
            read_reports(&r),
            vec![(Stage::Cgroup, libc::EBUSY), (Stage::Exec, 0)]
        );
    }
}
