//! The new process itself: everything it does between its creation and
//! `execve`, prepared in full by the parent, and how it is created.
//!
//! On Linux the child is created with `clone(CLONE_VM | CLONE_VFORK)` on a
//! stack of its own, as `posix_spawn` does: the daemon's page tables are not
//! copied and no thread of the daemon takes a copy-on-write fault, which made
//! a plain `fork` of the multi-threaded daemon cost milliseconds. The
//! spawning thread sleeps until the child has called `execve` or exited;
//! ward's other threads run on, in the memory the child shares. So the child
//! only reads what the parent prepared, writes to its own stack and to
//! nothing else, and makes only async-signal-safe system calls: no
//! allocation, no lock, no logging. Elsewhere it is a plain `fork`, and the
//! same rules keep it sound.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use super::fds::{self, Sweep};

/// Where the child was when something failed, as the child reports it over
/// a close-on-exec pipe: one byte of stage, four of errno, per record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Stage {
    /// Not fatal: the child runs outside its cgroup leaf.
    Cgroup = 1,
    Stdio,
    ProcessGroup,
    Groups,
    Gid,
    Uid,
    Limits,
    Cwd,
    DeathSignal,
    Orphaned,
    Exec,
}

const STAGES: [Stage; 11] = [
    Stage::Cgroup,
    Stage::Stdio,
    Stage::ProcessGroup,
    Stage::Groups,
    Stage::Gid,
    Stage::Uid,
    Stage::Limits,
    Stage::Cwd,
    Stage::DeathSignal,
    Stage::Orphaned,
    Stage::Exec,
];

/// The exit code of a child that failed before or at `execve` (as a shell
/// reports a command it cannot run); the report pipe says why.
const FAILED: libc::c_int = 127;

/// A list of C strings and the NULL-terminated pointer array `execve` takes.
/// The pointers point into `strings`' heap buffers, which do not move when
/// the `Vec` holding them does.
pub(crate) struct CStrings {
    #[allow(dead_code)] // read through `ptrs`; owned here so they stay valid
    strings: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
}

impl CStrings {
    pub fn new(strings: Vec<CString>) -> CStrings {
        let mut ptrs: Vec<_> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        CStrings { strings, ptrs }
    }

    fn as_ptr(&self) -> *const *const libc::c_char {
        self.ptrs.as_ptr()
    }
}

/// Everything the child does, prepared in the parent.
pub(crate) struct Plan {
    /// Paths to try with `execve`, in order: the program itself when it
    /// names a path, else each directory of the child's PATH joined to it.
    pub candidates: Vec<CString>,
    pub argv: CStrings,
    pub envp: CStrings,
    /// Become the child's fds 0, 1 and 2; each is 3 or above (see
    /// [`above_stdio`]), so no `dup2` overwrites another's source.
    pub stdio: [RawFd; 3],
    pub cgroup_procs: Option<RawFd>,
    pub groups: Option<Vec<libc::gid_t>>,
    pub gid: Option<libc::gid_t>,
    pub uid: Option<libc::uid_t>,
    pub cwd: CString,
    /// Write end of the report pipe (close-on-exec, non-blocking).
    pub report: RawFd,
    /// The daemon's pid: if the child's parent is no longer this, ward died
    /// before the parent-death signal was armed (Linux).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub parent: libc::pid_t,
    /// The open-files limit to restore (ward raised its own).
    pub nofile: Option<libc::rlimit>,
    /// How every descriptor above 2 is made close-on-exec.
    pub fds: Sweep,
}

impl Plan {
    /// Runs in the child; returns only when the child must exit, having
    /// reported why.
    fn run(&self) {
        for (fd, target) in self.stdio.iter().zip(0..) {
            // SAFETY: both are plain fd numbers; dup2 touches no memory.
            if unsafe { libc::dup2(*fd, target) } == -1 {
                return self.fail(Stage::Stdio);
            }
        }
        // Nothing but 0, 1 and 2 reaches the program. Marked, not closed:
        // the report pipe and cgroup.procs are still used before exec.
        fds::cloexec_above_stdio(self.fds);
        // SAFETY: setpgid with integer arguments only.
        if unsafe { libc::setpgid(0, 0) } == -1 {
            return self.fail(Stage::ProcessGroup);
        }
        if let Some(fd) = self.cgroup_procs {
            // Before the credentials change: afterwards the child may no
            // longer write to cgroup.procs.
            // SAFETY: fd is open (the parent keeps it open until the child
            // has exec'd); the buffer is a static byte string.
            if unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) } != 1 {
                self.note(Stage::Cgroup, errno());
            }
        }
        if let Some(groups) = &self.groups {
            if set_groups(groups) == -1 {
                return self.fail(Stage::Groups);
            }
        }
        if let Some(gid) = self.gid {
            if set_gid(gid) == -1 {
                return self.fail(Stage::Gid);
            }
        }
        if let Some(uid) = self.uid {
            if set_uid(uid) == -1 {
                return self.fail(Stage::Uid);
            }
        }
        if let Some(lim) = &self.nofile {
            // SAFETY: lim points at a valid rlimit the parent keeps alive;
            // the limit is per process, so glibc's call touches ward's
            // threads in no way.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, lim) } == -1 {
                return self.fail(Stage::Limits);
            }
        }
        // SAFETY: cwd is a NUL-terminated string the parent keeps alive.
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
            // SAFETY: getppid has no preconditions.
            if unsafe { libc::getppid() } != self.parent {
                return self.note(Stage::Orphaned, libc::ESRCH);
            }
        }
        reset_signals();
        let mut last = libc::ENOENT;
        for path in &self.candidates {
            // SAFETY: every pointer array is NULL-terminated and points at
            // NUL-terminated strings the parent keeps alive.
            unsafe { libc::execve(path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr()) };
            match errno() {
                // As execvp: a permission problem on one candidate is
                // reported only when no later one runs.
                libc::EACCES => last = libc::EACCES,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                other => return self.note(Stage::Exec, other),
            }
        }
        self.note(Stage::Exec, last);
    }

    fn fail(&self, stage: Stage) {
        self.note(stage, errno());
    }

    pub fn note(&self, stage: Stage, errno: i32) {
        let e = errno.to_ne_bytes();
        let record = [stage as u8, e[0], e[1], e[2], e[3]];
        // SAFETY: report is the open write end of the report pipe; 5 bytes
        // are below PIPE_BUF, so the write is whole or not at all.
        let _ = unsafe { libc::write(self.report, record.as_ptr().cast(), record.len()) };
    }
}

// The credential calls go straight to the kernel on Linux: glibc's
// wrappers would signal every thread of ward to change its credentials too
// (the child shares ward's memory, so glibc sees ward's threads as its own).
// The kernel calls change this process only. (32-bit x86 and ARM name the
// 32-bit-id calls differently.)

#[cfg(all(
    target_os = "linux",
    not(any(target_arch = "x86", target_arch = "arm"))
))]
mod nr {
    pub const SETGROUPS: libc::c_long = libc::SYS_setgroups;
    pub const SETGID: libc::c_long = libc::SYS_setgid;
    pub const SETUID: libc::c_long = libc::SYS_setuid;
}

#[cfg(all(target_os = "linux", any(target_arch = "x86", target_arch = "arm")))]
mod nr {
    pub const SETGROUPS: libc::c_long = libc::SYS_setgroups32;
    pub const SETGID: libc::c_long = libc::SYS_setgid32;
    pub const SETUID: libc::c_long = libc::SYS_setuid32;
}

#[cfg(target_os = "linux")]
fn set_groups(groups: &[libc::gid_t]) -> libc::c_long {
    // SAFETY: the pointer and length describe a live slice, which the parent
    // keeps until the child has exec'd.
    unsafe { libc::syscall(nr::SETGROUPS, groups.len(), groups.as_ptr()) }
}

#[cfg(target_os = "linux")]
fn set_gid(gid: libc::gid_t) -> libc::c_long {
    // SAFETY: an integer argument only.
    unsafe { libc::syscall(nr::SETGID, gid) }
}

#[cfg(target_os = "linux")]
fn set_uid(uid: libc::uid_t) -> libc::c_long {
    // SAFETY: an integer argument only.
    unsafe { libc::syscall(nr::SETUID, uid) }
}

// Elsewhere the child is a fork, with one thread: libc's calls are right.

#[cfg(not(target_os = "linux"))]
fn set_groups(groups: &[libc::gid_t]) -> libc::c_long {
    // SAFETY: the pointer and length describe a live slice.
    unsafe { libc::setgroups(groups.len() as _, groups.as_ptr()) as libc::c_long }
}

#[cfg(not(target_os = "linux"))]
fn set_gid(gid: libc::gid_t) -> libc::c_long {
    // SAFETY: an integer argument only.
    unsafe { libc::setgid(gid) as libc::c_long }
}

#[cfg(not(target_os = "linux"))]
fn set_uid(uid: libc::uid_t) -> libc::c_long {
    // SAFETY: an integer argument only.
    unsafe { libc::setuid(uid) as libc::c_long }
}

/// Dispositions back to the defaults and no signal blocked. A handler of
/// ward's must never run in the child (it would act on ward's memory), and
/// an ignored signal or the mask would outlive exec. The two signals libc
/// reserves below SIGRTMIN are left alone: libc refuses them.
fn reset_signals() {
    // SAFETY: signal() and sigprocmask() are async-signal-safe; the set lives
    // on this stack frame.
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

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The child's entry point on its own stack.
#[cfg(target_os = "linux")]
extern "C" fn child_main(plan: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `plan` is the &Plan `start` passed, alive until the child has
    // exec'd or exited (the parent sleeps until then).
    let plan = unsafe { &*(plan as *const Plan) };
    plan.run();
    // SAFETY: _exit ends the child without running anything of ward's.
    unsafe { libc::_exit(FAILED) }
}

/// The stack a vfork child runs on: mapped once per spawning thread and
/// reused, since only one child runs on it at a time (the thread sleeps until
/// the child is done with it). The lowest page is a guard.
#[cfg(target_os = "linux")]
pub(crate) struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping belongs to the Stack alone; moving it to the thread
// that spawns moves that ownership with it.
#[cfg(target_os = "linux")]
unsafe impl Send for Stack {}

#[cfg(target_os = "linux")]
impl Stack {
    const LEN: usize = 256 * 1024;

    pub fn new() -> io::Result<Stack> {
        // SAFETY: an anonymous private mapping; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Stack {
            base,
            len: Self::LEN,
        };
        // SAFETY: the first page of the mapping just made.
        if unsafe { libc::mprotect(base, page_size(), libc::PROT_NONE) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    fn top(&self) -> *mut libc::c_void {
        // Stacks grow down on every architecture Linux runs Rust on with
        // clone(2)'s glibc wrapper; the end is page-aligned, so 16-aligned.
        self.base.wrapping_byte_add(self.len)
    }
}

#[cfg(target_os = "linux")]
impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer used by any child.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

#[cfg(target_os = "linux")]
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// Creates the child and runs `plan` in it. Returns its pid once it has
/// exec'd or exited. Every signal is blocked in the calling thread around
/// the creation, so none is handled in the child before `reset_signals`.
#[cfg(target_os = "linux")]
pub(crate) fn start(plan: &Plan, stack: &mut Stack) -> io::Result<libc::pid_t> {
    let _mask = BlockSignals::new();
    // SAFETY: child_main runs on `stack`, which this &mut borrow keeps to
    // this child; `plan` outlives it (CLONE_VFORK returns only after exec or
    // exit); child_main keeps to the rules of the module comment.
    let pid = unsafe {
        libc::clone(
            child_main,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            plan as *const Plan as *mut libc::c_void,
        )
    };
    if pid == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(pid)
}

#[cfg(not(target_os = "linux"))]
pub(crate) struct Stack;

#[cfg(not(target_os = "linux"))]
impl Stack {
    pub fn new() -> io::Result<Stack> {
        Ok(Stack)
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn start(plan: &Plan, _stack: &mut Stack) -> io::Result<libc::pid_t> {
    let _mask = BlockSignals::new();
    // SAFETY: the child keeps to the rules of the module comment, which make
    // a fork of a multi-threaded process sound.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            plan.run();
            // SAFETY: _exit ends the child without running anything of ward's.
            unsafe { libc::_exit(FAILED) }
        }
        pid => Ok(pid),
    }
}

/// Blocks every signal in this thread until dropped.
struct BlockSignals(libc::sigset_t);

impl BlockSignals {
    fn new() -> BlockSignals {
        // SAFETY: sigset_t is a plain C struct; the calls fill and read sets
        // on this stack frame.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            BlockSignals(old)
        }
    }
}

impl Drop for BlockSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `new`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

/// Reads every record the child wrote (the pipe is non-blocking and the
/// child has exec'd or exited, so all of them are there).
pub(crate) fn read_reports(fd: &OwnedFd) -> Vec<(Stage, i32)> {
    let mut buf = [0u8; 64];
    let mut bytes = Vec::new();
    loop {
        // SAFETY: buf is valid for writes of its length; fd is open.
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

/// `fd` itself when it is 3 or above, else a close-on-exec duplicate that
/// is: the child's `dup2`s onto 0, 1 and 2 must not overwrite one another's
/// source, and `dup2(fd, fd)` would leave close-on-exec set.
pub(crate) fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on an open fd; the new fd is owned by nobody
    // else.
    let dup = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if dup == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: dup was just created.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(dup) })
}

/// The environment as `KEY=VALUE` strings: ward's own, without `remove`,
/// then `set` in order (a later value for a name wins).
pub(crate) fn environment<'a>(
    remove: &[&str],
    set: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| !remove.iter().any(|r| OsStr::new(r) == k))
        .collect();
    for (key, value) in set {
        match env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.into(),
            None => env.push((key.into(), value.into())),
        }
    }
    env
}

/// Joins the environment into C strings for `execve`.
pub(crate) fn env_strings(env: &[(OsString, OsString)]) -> io::Result<CStrings> {
    let strings = env
        .iter()
        .map(|(k, v)| {
            let mut kv = Vec::with_capacity(k.len() + v.len() + 1);
            kv.extend_from_slice(k.as_bytes());
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in the environment"))?;
    Ok(CStrings::new(strings))
}

/// Where a program is looked up when the child has no PATH.
pub(crate) const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The paths `execve` tries for `program`: itself when it contains a `/`
/// (relative to the child's working directory), else each directory of
/// `path` (the child's PATH, or the system default), as execvp does.
pub(crate) fn candidates(program: &str, path: Option<&OsStr>) -> Vec<CString> {
    let to_c = |bytes: Vec<u8>| CString::new(bytes).ok();
    if program.contains('/') {
        return to_c(program.as_bytes().to_vec()).into_iter().collect();
    }
    let path = path.unwrap_or(OsStr::new(DEFAULT_PATH));
    path.as_bytes()
        .split(|b| *b == b':')
        .filter_map(|dir| {
            // An empty entry means the working directory.
            let dir = if dir.is_empty() { b".".as_slice() } else { dir };
            to_c(
                Path::new(OsStr::from_bytes(dir))
                    .join(program)
                    .into_os_string()
                    .into_vec(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_path_like_execvp() {
        let c = |p: &str, path: Option<&str>| -> Vec<String> {
            candidates(p, path.map(OsStr::new))
                .into_iter()
                .map(|c| c.into_string().unwrap())
                .collect()
        };
        assert_eq!(c("./api", Some("/bin")), ["./api"]);
        assert_eq!(c("/usr/bin/env", None), ["/usr/bin/env"]);
        assert_eq!(c("api", Some("/a::/b")), ["/a/api", "./api", "/b/api"]);
        assert_eq!(
            c("sh", None),
            ["/usr/local/bin/sh", "/usr/bin/sh", "/bin/sh"]
        );
    }

    #[test]
    fn the_environment_overrides_and_removes() {
        std::env::set_var("WARD_CHILD_TEST_A", "1");
        let env = environment(&["WARD_CHILD_TEST_A"], [("X_NEW", "2"), ("X_NEW", "3")]);
        assert!(!env.iter().any(|(k, _)| k == "WARD_CHILD_TEST_A"));
        let x: Vec<_> = env.iter().filter(|(k, _)| k == "X_NEW").collect();
        assert_eq!(x, [&(OsString::from("X_NEW"), OsString::from("3"))]);
        let strings = env_strings(&env).unwrap();
        assert!(strings.strings.iter().any(|s| s.as_bytes() == b"X_NEW=3"));
        assert!(strings.ptrs.last().unwrap().is_null());
    }

    #[test]
    fn reports_survive_the_pipe() {
        let (r, w) = super::super::fds::pipe(true).unwrap();
        let plan = Plan {
            candidates: Vec::new(),
            argv: CStrings::new(Vec::new()),
            envp: CStrings::new(Vec::new()),
            stdio: [3, 3, 3],
            cgroup_procs: None,
            groups: None,
            gid: None,
            uid: None,
            cwd: CString::new("/").unwrap(),
            report: w.as_raw_fd(),
            parent: 0,
            nofile: None,
            fds: Sweep::EachUpTo(2),
        };
        plan.note(Stage::Cgroup, libc::EBUSY);
        plan.note(Stage::Exec, libc::ENOENT);
        assert_eq!(
            read_reports(&r),
            vec![(Stage::Cgroup, libc::EBUSY), (Stage::Exec, libc::ENOENT)]
        );
    }

    /// What `/bin/ls /proc/self/fd` lists when run through `start` with
    /// `sweep`, while this process holds `leak` open without close-on-exec.
    #[cfg(target_os = "linux")]
    fn fds_of_a_child(sweep: Sweep) -> Vec<i32> {
        let (out_read, out_write) = super::super::fds::pipe(false).unwrap();
        let out_write = above_stdio(out_write).unwrap();
        let (_report_read, report_write) = super::super::fds::pipe(true).unwrap();
        let s = |t: &str| CString::new(t).unwrap();
        let plan = Plan {
            candidates: vec![s("/bin/ls")],
            argv: CStrings::new(vec![s("ls"), s("-1"), s("/proc/self/fd")]),
            envp: CStrings::new(Vec::new()),
            stdio: [out_write.as_raw_fd(); 3],
            cgroup_procs: None,
            groups: None,
            gid: None,
            uid: None,
            cwd: s("/"),
            report: report_write.as_raw_fd(),
            // SAFETY: getpid has no preconditions.
            parent: unsafe { libc::getpid() },
            nofile: None,
            fds: sweep,
        };
        let pid = start(&plan, &mut Stack::new().unwrap()).unwrap();
        drop((plan, out_write, report_write));
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(out_read), &mut text).unwrap();
        let mut status = 0;
        // SAFETY: waits for the child made above (no reaper runs in this
        // test binary).
        unsafe { libc::waitpid(pid, &mut status, 0) };
        text.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn children_get_no_descriptor_above_stdio() {
        let file = std::fs::File::open("/dev/null").unwrap();
        // As a careless library (or the shell that started ward) would
        // leave one: not close-on-exec.
        // SAFETY: F_DUPFD on an open descriptor; closed below.
        let leak = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD, 300) };
        assert!(leak >= 300);
        let mut sweeps = vec![fds::sweep_for_spawn(false)];
        if fds::close_range_works() {
            sweeps.push(fds::sweep_for_spawn(true));
        }
        for sweep in sweeps {
            let listed = fds_of_a_child(sweep);
            // 0, 1, 2 and the one ls reads the directory with.
            assert!(listed.starts_with(&[0, 1, 2]), "{sweep:?}: {listed:?}");
            assert!(!listed.contains(&leak), "{sweep:?}: {listed:?}");
            assert!(listed.len() <= 4, "{sweep:?}: {listed:?}");
        }
        // SAFETY: the descriptor made above.
        unsafe { libc::close(leak) };
    }
}
