//! Unix: setting up ward's supervision (subreaper, cgroup root, sentinel),
//! the spawner thread, and signal numbers.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, Arc, Mutex};

use super::{Output, Signal};
use tokio::sync::oneshot;

use super::child::Stack;
use super::sentinel;
use super::spawn::{check_component, spawn_now, Context};
use super::tree::marker_entry;
use super::Child;
use super::{reaper, InitOptions, Launch};

/// Spawns run on this many threads at once: a spawn mostly waits (for the
/// child to be scheduled and to exec), so starting many programs overlaps
/// those waits. Idle threads cost a few pages each.
const SPAWNER_THREADS: usize = 4;

/// Makes ward a child subreaper, sets up its cgroup root (if it can) and
/// forks the sentinel. Call first thing in `main`, before any thread exists
/// (before the tokio runtime): the sentinel is a fork of this process and
/// must not inherit locks held by other threads. On Linux this is checked:
/// with more than one thread, it fails.
pub fn init(opts: InitOptions) -> io::Result<Supervision> {
    check_component("ward's cgroup name", &opts.name)?;
    ensure_single_thread()?;
    set_up(opts, true)
}

/// [`init`] without the sentinel, for test programs whose threads exist
/// before they can call it. Nothing kills the trees of a dead process then.
#[allow(dead_code)] // for test programs only
pub fn init_without_sentinel(opts: InitOptions) -> io::Result<Supervision> {
    check_component("ward's cgroup name", &opts.name)?;
    set_up(opts, false)
}

fn set_up(opts: InitOptions, with_sentinel: bool) -> io::Result<Supervision> {
    become_subreaper()?;
    let ward_pid = std::process::id();
    let prefix = match super::start_time(ward_pid) {
        Some(t) => format!("{ward_pid}.{t}"),
        None => format!("{ward_pid}.{}", unique_fallback()),
    };
    let (cgroup_root, fallback) = cgroup_root(&opts);
    let (sentinel, sentinel_pid) = if with_sentinel {
        let plan = sentinel::Plan {
            cgroup_root: cgroup_root.clone(),
            env_prefix: marker_entry(&format!("{prefix}/")),
        };
        match sentinel::start(plan) {
            Ok((link, pid)) => (Some(Arc::new(link)), Some(pid)),
            Err(e) => {
                #[cfg(target_os = "linux")]
                if let Some(root) = &cgroup_root {
                    super::cgroup::remove_tree(root);
                }
                let msg = format!("cannot start the sentinel: {e}");
                return Err(io::Error::new(e.kind(), msg));
            }
        }
    } else {
        (None, None)
    };
    Ok(Supervision {
        ctx: Arc::new(Context {
            cgroup_root,
            prefix,
            sentinel,
            ward_pid: ward_pid as libc::pid_t,
            nofile: raise_nofile(),
            close_range: super::fds::close_range_works(),
        }),
        fallback,
        sentinel_pid,
    })
}

/// Windows starts a copy of ward to send console events; on Unix no
/// process is ever started as a helper: always `None`.
pub fn run_helper() -> Option<i32> {
    None
}

/// Makes `cmd` start its process in a session of its own, away from the
/// terminal, for `ward up --detach`: the daemon must outlive the shell and
/// get neither its Ctrl-C nor its hangup. (Do not also set a process group
/// on `cmd`: a group leader cannot start a session.)
pub fn detach(cmd: &mut Command) {
    // SAFETY: the closure only calls setsid, which is async-signal-safe and
    // touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    };
}

/// Raises ward's soft limit on open files to the hard one: every program
/// costs ward a few descriptors (pipes, log file), and the common default
/// of 1024 would stop ward at a few hundred programs. Returns the original
/// limit, which children get back (a program using select() breaks above
/// 1024), or `None` when nothing changed.
fn raise_nofile() -> Option<libc::rlimit> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    // `None` is unlimited.
    let raw = |v: Option<u64>| v.map_or(libc::RLIM_INFINITY, |v| v as libc::rlim_t);
    if raw(lim.current) >= raw(lim.maximum) {
        return None;
    }
    let raised = Rlimit {
        current: lim.maximum,
        maximum: lim.maximum,
    };
    setrlimit(Resource::Nofile, raised).ok()?;
    // As the child restores it, after the fork.
    Some(libc::rlimit {
        rlim_cur: raw(lim.current),
        rlim_max: raw(lim.maximum),
    })
}

/// The hard limit on open files, which ward raises its soft limit to at
/// start: how many descriptors ward can have. `None` when unlimited or
/// unknown.
pub fn open_files_limit() -> Option<u64> {
    // `None` when unlimited.
    rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum
}

#[cfg(target_os = "linux")]
fn cgroup_root(opts: &InitOptions) -> (Option<PathBuf>, Option<String>) {
    if opts.no_cgroup {
        return (
            None,
            Some("WARD_NO_CGROUP is set in ward's environment".into()),
        );
    }
    match super::cgroup::setup(&opts.name) {
        Ok(root) => (Some(root), None),
        Err(why) => (None, Some(why)),
    }
}

#[cfg(not(target_os = "linux"))]
fn cgroup_root(_opts: &InitOptions) -> (Option<PathBuf>, Option<String>) {
    (None, Some("cgroups exist only on Linux".into()))
}

#[cfg(target_os = "linux")]
fn ensure_single_thread() -> io::Result<()> {
    match super::procfs::own_thread_count() {
        Some(1) | None => Ok(()),
        Some(n) => Err(io::Error::other(format!(
            "proc::init must run before any thread is started (this process has {n} threads)"
        ))),
    }
}

/// Without /proc the thread count is not known; the rule is documented.
#[cfg(not(target_os = "linux"))]
fn ensure_single_thread() -> io::Result<()> {
    Ok(())
}

#[cfg(target_os = "linux")]
fn become_subreaper() -> io::Result<()> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
    Ok(())
}

/// Other Unixes have no subreaper; orphans go to init there.
#[cfg(not(target_os = "linux"))]
fn become_subreaper() -> io::Result<()> {
    Ok(())
}

fn unique_fallback() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// ward's supervision of its children, set up by [`init`].
pub struct Supervision {
    ctx: Arc<Context>,
    fallback: Option<String>,
    sentinel_pid: Option<u32>,
}

impl Supervision {
    /// ward's cgroup root, if cgroups are in use.
    pub fn cgroups(&self) -> Option<&Path> {
        self.ctx.cgroup_root.as_deref()
    }

    /// Why cgroups are not used (say it once, at start), if they are not.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// What the state file records about this start, before any spawn.
    pub fn start_record(&self) -> super::Start {
        super::Start {
            cgroup_root: self.ctx.cgroup_root.clone(),
            marker_prefix: self.ctx.prefix.clone(),
        }
    }

    /// The prefix of every marker of this ward start (`<pid>.<start time>`).
    #[allow(dead_code)] // for tests and diagnostics
    pub fn marker_prefix(&self) -> &str {
        &self.ctx.prefix
    }

    pub fn sentinel_pid(&self) -> Option<u32> {
        self.sentinel_pid
    }

    /// Starts the reaper (once per process) and the spawner threads. They
    /// live as long as the process, even when every [`Spawner`] is dropped:
    /// a child's parent-death signal fires when the thread that made it
    /// ends.
    pub fn start(&self) -> io::Result<Spawner> {
        reaper::start()?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..SPAWNER_THREADS {
            let ctx = self.ctx.clone();
            let queue = Arc::clone(&queue);
            let mut stack = Stack::new()
                .map_err(|e| io::Error::new(e.kind(), format!("cannot map a spawn stack: {e}")))?;
            std::thread::Builder::new()
                .name(format!("ward-spawner{n}"))
                .spawn(move || {
                    loop {
                        // Poison only means another spawner panicked while
                        // taking a job; the queue itself is intact.
                        let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(job) = job else { break };
                        // A panic must not end this thread: every child it
                        // made would get its parent-death signal.
                        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                            spawn_now(&ctx, job.launch, &mut stack)
                        }))
                        .unwrap_or_else(|_| Err(io::Error::other("spawning panicked")));
                        if let Err(Ok(orphan)) = job.reply.send(result) {
                            // The caller gave up waiting: nobody would watch
                            // this run, so it must not outlive the request.
                            orphan.tree.kill();
                            orphan.tree.cleanup();
                        }
                    }
                    loop {
                        std::thread::park();
                    }
                })
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot start a spawner thread: {e}"))
                })?;
        }
        Ok(Spawner { jobs })
    }

    /// Removes ward's cgroup root and whatever empty leaves remain. Call at
    /// a clean exit, after every tree is gone.
    pub fn cleanup(&self) {
        #[cfg(target_os = "linux")]
        if let Some(root) = &self.ctx.cgroup_root {
            super::cgroup::remove_tree(root);
        }
    }
}

struct Job {
    launch: Launch,
    reply: oneshot::Sender<io::Result<Child>>,
}

/// Starts processes. Cheap to clone; every spawn runs on one of a few
/// long-lived OS threads, so the parent-death signal of a child never fires
/// early.
#[derive(Clone)]
pub struct Spawner {
    jobs: mpsc::Sender<Job>,
}

impl Spawner {
    /// Starts `launch`: stdin from /dev/null, stdout and stderr to pipes, its
    /// own process group, SIGKILL as parent-death signal, in a cgroup leaf
    /// where ward has cgroups, `WARD_TREE=<marker>` in its environment, and
    /// the user's credentials when `user` is given. Errors say what failed
    /// ("cannot run ./api: No such file or directory (os error 2)").
    pub async fn spawn(&self, launch: Launch) -> io::Result<Child> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { launch, reply })
            .map_err(|_| spawner_gone())?;
        answer.await.map_err(|_| spawner_gone())?
    }
}

fn spawner_gone() -> io::Error {
    io::Error::other("the spawner thread is gone")
}

/// The platform's number for `sig`.
pub fn signal_number(sig: Signal) -> i32 {
    match sig {
        Signal::Hup => libc::SIGHUP,
        Signal::Int => libc::SIGINT,
        Signal::Quit => libc::SIGQUIT,
        Signal::Abrt => libc::SIGABRT,
        Signal::Kill => libc::SIGKILL,
        Signal::Usr1 => libc::SIGUSR1,
        Signal::Usr2 => libc::SIGUSR2,
        Signal::Alrm => libc::SIGALRM,
        Signal::Term => libc::SIGTERM,
        Signal::Cont => libc::SIGCONT,
        Signal::Stop => libc::SIGSTOP,
        Signal::Tstp => libc::SIGTSTP,
        Signal::Winch => libc::SIGWINCH,
        // What a terminal sends for Ctrl-C and Ctrl-\ (config and API
        // refuse these names on Unix: see `check_signal`).
        Signal::CtrlC => libc::SIGINT,
        Signal::CtrlBreak => libc::SIGQUIT,
    }
}

/// The name (without `SIG`) of a signal number, as in exit statuses:
/// `15` → `"TERM"`, `11` → `"SEGV"`.
pub fn signal_name(num: i32) -> Option<&'static str> {
    const NAMES: [(libc::c_int, &str); 28] = [
        (libc::SIGHUP, "HUP"),
        (libc::SIGINT, "INT"),
        (libc::SIGQUIT, "QUIT"),
        (libc::SIGABRT, "ABRT"),
        (libc::SIGKILL, "KILL"),
        (libc::SIGUSR1, "USR1"),
        (libc::SIGUSR2, "USR2"),
        (libc::SIGALRM, "ALRM"),
        (libc::SIGTERM, "TERM"),
        (libc::SIGCONT, "CONT"),
        (libc::SIGSTOP, "STOP"),
        (libc::SIGTSTP, "TSTP"),
        (libc::SIGWINCH, "WINCH"),
        (libc::SIGILL, "ILL"),
        (libc::SIGTRAP, "TRAP"),
        (libc::SIGBUS, "BUS"),
        (libc::SIGFPE, "FPE"),
        (libc::SIGSEGV, "SEGV"),
        (libc::SIGPIPE, "PIPE"),
        (libc::SIGCHLD, "CHLD"),
        (libc::SIGTTIN, "TTIN"),
        (libc::SIGTTOU, "TTOU"),
        (libc::SIGURG, "URG"),
        (libc::SIGXCPU, "XCPU"),
        (libc::SIGXFSZ, "XFSZ"),
        (libc::SIGVTALRM, "VTALRM"),
        (libc::SIGPROF, "PROF"),
        (libc::SIGSYS, "SYS"),
    ];
    NAMES.iter().find(|(n, _)| *n == num).map(|(_, name)| *name)
}

/// Unix's side of [`Output`]: a pipe's read end.
pub(crate) type OutputPipe = tokio::net::unix::pipe::Receiver;

impl Output {
    /// A pipe's read end (blocking or not), registered with the runtime:
    /// call on the runtime.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<Output> {
        tokio::net::unix::pipe::Receiver::from_owned_fd(fd).map(Output)
    }

    /// Asks the kernel for a pipe buffer of `bytes` (rounded up to pages, at
    /// most /proc/sys/fs/pipe-max-size for a user without
    /// CAP_SYS_RESOURCE). For a program that floods its output: fewer reads
    /// and wake-ups per byte, and more room before the program blocks on a
    /// full pipe. Elsewhere than on Linux pipes keep the size they have.
    pub fn enlarge(&self, bytes: usize) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsFd;
            rustix::pipe::fcntl_setpipe_size(self.0.as_fd(), bytes)?;
        }
        #[cfg(not(target_os = "linux"))]
        let _ = bytes;
        Ok(())
    }
}

/// What tests of the log pump need of pipes: a pair (the write end is the
/// program's side), an `Output` from any descriptor a child process gives,
/// and a pipe's buffer size.
#[cfg(test)]
pub mod testing {
    use super::Output;

    pub type Input = tokio::net::unix::pipe::Sender;

    pub fn pipe() -> (Input, Output) {
        let (input, output) = tokio::net::unix::pipe::pipe().unwrap();
        (input, Output(output))
    }

    pub fn output_of(fd: impl Into<std::os::fd::OwnedFd>) -> Output {
        Output::new(fd.into()).unwrap()
    }

    /// The buffer size of the pipe `end` belongs to.
    pub fn pipe_size(end: &impl std::os::fd::AsFd) -> usize {
        rustix::pipe::fcntl_getpipe_size(end).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_numbers_have_their_names() {
        assert_eq!(signal_name(signal_number(Signal::Hup)), Some("HUP"));
        assert_eq!(signal_name(signal_number(Signal::Winch)), Some("WINCH"));
        assert_eq!(signal_name(libc::SIGTERM), Some("TERM"));
        assert_eq!(signal_name(libc::SIGSEGV), Some("SEGV"));
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(1000), None);
    }
}
