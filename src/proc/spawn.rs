//! One spawn, prepared in the parent (paths, environment, credentials,
//! pipes, cgroup leaf) and carried out by [`child`](super::child), and errors
//! that say which step failed.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::child::{self, CStrings, Plan, Stack, Stage};
use super::creds::{self, Credentials};
use super::exec_check;
use super::fds;
use super::fds::pipe;
use super::sentinel::Link;
use super::tree::Tree;
use super::{reaper, Child, Launch, MARKER_VAR};

/// Variables systemd (and compatible managers) set for the process they
/// start; a program under ward must not mistake them for its own.
const INHERITED_FROM_SERVICE_MANAGER: &[&str] = ward_service::notify::INHERITED;

/// What every spawn needs to know, shared with the spawner thread.
pub(crate) struct Context {
    pub cgroup_root: Option<PathBuf>,
    /// `<ward pid>.<ward start time>`: the first half of every marker.
    pub prefix: String,
    pub sentinel: Option<Arc<Link>>,
    pub ward_pid: libc::pid_t,
    /// The open-files limit ward was started with, when ward raised its
    /// own: children get the original back.
    pub nofile: Option<libc::rlimit>,
    /// This kernel has `close_range(CLOSE_RANGE_CLOEXEC)`.
    pub close_range: bool,
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

/// One spawn, on the spawner thread, whose `stack` the child runs on.
pub(crate) fn spawn_now(ctx: &Context, launch: Launch, stack: &mut Stack) -> io::Result<Child> {
    let program = check_launch(&launch)?;
    let creds = creds::resolve(launch.user.as_deref(), launch.group.as_deref())?;
    let cwd = CString::new(launch.cwd.as_os_str().as_bytes()).map_err(|_| {
        invalid(format!(
            "working directory {:?} contains a NUL byte",
            launch.cwd
        ))
    })?;
    let marker = format!("{}/{}", ctx.prefix, launch.tree_name);
    // What a service manager handed to ward itself (readiness socket,
    // socket activation, watchdog) is ward's, not its programs'.
    let env = child::environment(
        INHERITED_FROM_SERVICE_MANAGER,
        creds
            .iter()
            .flat_map(|c| c.env.iter())
            .chain(launch.env.iter())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain([(MARKER_VAR, marker.as_str())]),
    );
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_os_str());
    let candidates = child::candidates(program, path);
    let argv = launch
        .argv
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            invalid(format!(
                "cannot run {program}: an argument contains a NUL byte"
            ))
        })?;
    let envp = child::env_strings(&env)?;

    let null = child::above_stdio(OwnedFd::from(std::fs::File::open("/dev/null")?))?;
    let (out_read, out_write) = stdio_pipe()?;
    let (err_read, err_write) = stdio_pipe()?;
    let (report_read, report_write) = pipe(true)?;
    let (mut leaf, mut warning) = match prepare_leaf(ctx, &launch.tree_name) {
        Ok(leaf) => (leaf, None),
        Err(why) => (
            None,
            Some(format!("{why}; this run uses its process group only")),
        ),
    };
    let is_root = rustix::process::geteuid().is_root();
    let mut plan = Plan {
        candidates,
        argv: CStrings::new(argv),
        envp,
        stdio: [
            null.as_raw_fd(),
            out_write.as_raw_fd(),
            err_write.as_raw_fd(),
        ],
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
        nofile: ctx.nofile,
        fds: fds::sweep_for_spawn(ctx.close_range),
    };

    // The reaper holds back any exit it cannot place until this spawn has
    // registered its pid (see reaper.rs); the lock is not held meanwhile,
    // so other spawner threads run at the same time.
    let ticket = reaper::lock().begin();
    let started = child::start(&plan, stack);
    let started = {
        let mut table = reaper::lock();
        match started {
            Ok(pid) => Ok((pid, table.register(ticket, pid as u32))),
            Err(e) => {
                table.abandon(ticket);
                Err(e)
            }
        }
    };
    // Kept to say what is wrong with them, should exec have failed.
    let candidates = std::mem::take(&mut plan.candidates);
    drop((plan, null, out_write, err_write, report_write));
    let reports = child::read_reports(&report_read);
    let failure = reports.iter().copied().find(|(s, _)| *s != Stage::Cgroup);

    let (pid, exit) = match (started, failure) {
        (Ok(pair), None) => pair,
        // The child exited: the reaper collects it; nobody waits for it.
        (Ok(_), Some((stage, errno))) => {
            drop_leaf_of(&leaf);
            let exec = (stage == Stage::Exec)
                .then(|| exec_check::diagnose(errno, program, &candidates, &launch.cwd, path))
                .flatten();
            return Err(explain(
                stage,
                errno,
                program,
                &launch.cwd,
                creds.as_ref(),
                exec,
            ));
        }
        (Err(e), _) => {
            drop_leaf_of(&leaf);
            return Err(io::Error::new(
                e.kind(),
                format!("cannot start a process for {program}: {e}"),
            ));
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
    if let Some(link) = &ctx.sentinel {
        link.track(pid);
    }
    let tree = Tree::new(pid, leaf.map(|(dir, _)| dir), marker, ctx.sentinel.clone());
    Ok(Child {
        pid: pid as u32,
        pipes: Some((out_read, err_read)),
        tree,
        exit,
        warning,
    })
}

/// A pipe for the child's stdout or stderr: the read end ward's (blocking,
/// close-on-exec), the write end the child's (3 or above, see
/// [`child::above_stdio`]).
fn stdio_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = pipe(false)?;
    Ok((read, child::above_stdio(write)?))
}

fn drop_leaf_of(leaf: &Option<(PathBuf, OwnedFd)>) {
    if let Some((dir, _)) = leaf {
        drop_leaf(dir);
    }
}

/// Says which step of the child failed, from the child's own report, and
/// for a failed exec what is wrong with the file when the parent could see
/// it (`exec`: the file found in PATH, if it was looked up, and why).
fn explain(
    stage: Stage,
    errno: i32,
    program: &str,
    cwd: &Path,
    creds: Option<&Credentials>,
    exec: Option<(Option<PathBuf>, String)>,
) -> io::Error {
    let e = io::Error::from_raw_os_error(errno);
    if let Some((found, why)) = exec {
        let found = found.map_or(String::new(), |f| format!(" ({})", f.display()));
        return io::Error::new(e.kind(), format!("cannot run {program}{found}: {why}"));
    }
    let user = creds.map(|c| c.user_label.as_str()).unwrap_or_default();
    let group = creds.map(|c| c.group_label.as_str()).unwrap_or_default();
    let denied = if e.kind() == io::ErrorKind::PermissionDenied {
        "permission denied: "
    } else {
        ""
    };
    let msg = match stage {
        Stage::Groups => format!("{denied}cannot set the supplementary groups of {user}: {e}"),
        Stage::Gid => format!("{denied}cannot switch to {group}: {e}"),
        Stage::Uid => format!("{denied}cannot run as {user}: {e}"),
        Stage::Limits => format!("cannot restore the open-files limit for {program}: {e}"),
        Stage::Cwd => format!("cannot change directory to {}: {e}", cwd.display()),
        Stage::DeathSignal => format!("cannot set the parent-death signal for {program}: {e}"),
        Stage::Orphaned => format!("ward exited while starting {program}"),
        Stage::Exec if errno == libc::ENOEXEC => {
            format!("cannot run {program}: {e} (a script needs a #! line)")
        }
        Stage::Exec => format!("cannot run {program}: {e}"),
        Stage::Stdio | Stage::ProcessGroup | Stage::Cgroup => {
            format!("cannot prepare the process for {program}: {e}")
        }
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
        let cwd = Path::new("/x");
        let msg = explain(Stage::Exec, libc::ENOENT, "./api", cwd, None, None).to_string();
        assert_eq!(
            msg,
            "cannot run ./api: No such file or directory (os error 2)"
        );
        let msg = explain(Stage::Cwd, libc::ENOENT, "./api", cwd, None, None).to_string();
        assert!(msg.starts_with("cannot change directory to /x: "), "{msg}");
        let msg = explain(Stage::Uid, libc::EPERM, "x", cwd, None, None).to_string();
        assert!(msg.starts_with("permission denied: cannot run as"), "{msg}");
        let msg = explain(Stage::Exec, libc::ENOEXEC, "./s", cwd, None, None).to_string();
        assert!(msg.ends_with("(a script needs a #! line)"), "{msg}");
        let said = Some((None, "is a directory".to_string()));
        let msg = explain(Stage::Exec, libc::EACCES, "./bin", cwd, None, said).to_string();
        assert_eq!(msg, "cannot run ./bin: is a directory");
        let said = Some((Some("/opt/job".into()), "is a directory".to_string()));
        let msg = explain(Stage::Exec, libc::EACCES, "job", cwd, None, said).to_string();
        assert_eq!(msg, "cannot run job (/opt/job): is a directory");
    }
}
