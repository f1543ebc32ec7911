//! `testee`: the program ward's integration tests supervise. It can crash,
//! hang, ignore SIGTERM, fork grandchildren (some escaping the process
//! group), flood stdout, speak sd_notify, and report its environment.
//!
//! ```text
//! testee [OPTIONS] [STEPS]
//! ```
//!
//! Steps run in the order given. Then, if `--exit` or `--after` was given,
//! testee waits `--after` and exits with `--exit` (default 0); otherwise it
//! sleeps until killed, so `testee --fork 2` keeps running (and `testee`
//! alone just sleeps).
//!
//! Options (position does not matter):
//!
//! | option | meaning |
//! |---|---|
//! | `--pidfile FILE` | append `PID\n` for testee itself (first thing) and for every process it forks (as each is created); one `write` per line with `O_APPEND`, so a reader polling the file sees whole lines |
//! | `--exit CODE` | exit with CODE (0..=255) once the steps are done |
//! | `--after DURATION` | wait this long after the steps, then exit (with `--exit`, or 0) |
//! | `--heartbeat FILE` | after each block that `--lines` writes, replace FILE (write `FILE.tmp`, rename) with the number of lines written so far and a newline: a reader sees whole numbers that only grow, and proof that output is not blocked |
//! | `--pace DURATION` | sleep this long after each block that `--lines` writes (a flood that leaves CPU to others) |
//!
//! Steps:
//!
//! | step | meaning |
//! |---|---|
//! | `--ignore-term` | ignore SIGTERM (children forked later inherit it) |
//! | `--ignore SIG` | ignore any signal (`TERM`, `SIGINT`, `hup`, `15`, ...) |
//! | `--trap SIG` | on SIG, print `trapped SIGNAME` and exit 0 |
//! | `--raise SIG` | send SIG to itself (`--raise KILL`, `--raise SEGV`: a crash) |
//! | `--fork N` | fork N children that sleep until killed (same process group, same pipes) |
//! | `--double-fork-setsid` | fork a child that forks again and exits; the grandchild calls `setsid()` (leaving the process group) and sleeps until killed, keeping the pipes; its pid goes to the pidfile once it exists |
//! | `--hide` | fork a child that calls `setsid()` and executes `testee` again with an empty environment (no `WARD_TREE` marker) and its output to /dev/null: the child stays testee's child; its pid goes to the pidfile once it has executed |
//! | `--hide-orphan` | as `--hide`, but from a middle child that exits at once: the hidden grandchild is re-parented to the subreaper (ward) or PID 1 |
//! | `--orphans N` | N times: fork a child that forks again and exits at once; the grandchild (an orphan, reparented to the subreaper or PID 1) has its pid put in the pidfile, then exits: a zombie until its new parent reaps it. testee reaps the middle children itself |
//! | `--stdout`, `--stderr` | where the output steps that follow write (default stdout) |
//! | `--echo TEXT` | print TEXT and a newline |
//! | `--partial TEXT` | print TEXT with no newline (flushed) |
//! | `--lines N` | print N lines numbered from 0: `%012d`, then `x` filler, then `\n` |
//! | `--size B` | line size in bytes, newline included, of the `--lines` just before (default 100, at least 13) |
//! | `--long N` | print one line of N `x` bytes and a newline |
//! | `--bytes N` | print exactly N bytes of a 64-byte pattern (63 characters and `\n`); the last line may lack its newline |
//! | `--env NAME` | print `NAME=value`, or `NAME unset` |
//! | `--cwd` | print the working directory |
//! | `--fds` | print one line `fd N TARGET` for each open descriptor (from `/proc/self/fd`, without the one used to read it; TARGET is where it points) |
//! | `--notify MSG` | send MSG (e.g. `READY=1`) as one datagram to `$NOTIFY_SOCKET` (`@name` = abstract); exits 3 if unset or it fails |
//! | `--sleep DURATION` | sleep |
//! | `--forever` | sleep until killed |
//!
//! Durations: `500ms`, `2s`, `1.5s`, `1m`. Output is written in large
//! blocks, as fast as the pipe takes it. A failed write to stdout or stderr
//! (a closed pipe) exits 120. Bad arguments: a message and exit 2.
//!
//! Example: `testee --pidfile /tmp/p --ignore-term --fork 2 --double-fork-setsid
//! --lines 1000 --size 100 --partial abc --exit 3 --after 500ms`

#[cfg(unix)]
fn main() {
    unix::main();
}

#[cfg(windows)]
fn main() {
    windows::main();
}

// What both sides share: numbers, durations, the pidfile.

fn number(flag: &str, s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("{flag}: not a number: {s}"))
}

fn duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        return Err(format!("duration needs a unit (ms, s, m): {s}"));
    };
    let value: f64 = num.parse().map_err(|_| format!("bad duration: {s}"))?;
    std::time::Duration::try_from_secs_f64(value * scale).map_err(|_| format!("bad duration: {s}"))
}

const USAGE: &str = "usage: testee [--pidfile FILE] [--exit CODE] [--after DURATION] [STEPS...]; see tests/testee.rs";

/// The plan made of the arguments, or exit 2 saying why.
fn planned<P>(parsed: Result<P, String>) -> P {
    parsed.unwrap_or_else(|msg| {
        eprintln!("testee: {msg}\n{USAGE}");
        std::process::exit(2)
    })
}

/// Once the steps are done: run on unless told to exit (`--exit`,
/// `--after`), else wait `after` and exit with `code` (0 by default).
fn finish(code: Option<i32>, after: Option<std::time::Duration>) -> ! {
    if code.is_none() && after.is_none() {
        sleep_forever();
    }
    if let Some(after) = after {
        std::thread::sleep(after);
    }
    std::process::exit(code.unwrap_or(0))
}

fn sleep_forever() -> ! {
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

fn record_pid(pidfile: &std::path::Path, pid: u32) {
    let line = format!("{pid}\n");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(pidfile)
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    if let Err(e) = written {
        eprintln!("testee: --pidfile {}: {e}", pidfile.display());
        std::process::exit(2);
    }
}

#[cfg(unix)]
mod unix {
    use super::{duration, finish, number, planned, record_pid, sleep_forever};
    use std::ffi::{c_int, OsString};
    use std::io::{self, Read, Write};
    use std::mem;
    use std::os::unix::net::{UnixDatagram, UnixStream};
    use std::path::PathBuf;
    use std::process::exit;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    const WRITE_FAILED: i32 = 120;
    const BLOCK: usize = 256 * 1024;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Target {
        Stdout,
        Stderr,
    }

    #[derive(Debug)]
    enum Step {
        Ignore(c_int),
        Trap(c_int),
        Raise(c_int),
        Fork(u32),
        DoubleForkSetsid,
        Hide { orphan: bool },
        Orphans(u32),
        Target(Target),
        Echo(String),
        Partial(String),
        Lines { n: u64, size: usize },
        Long(usize),
        Bytes(u64),
        Env(OsString),
        Cwd,
        Fds,
        Notify(String),
        Sleep(Duration),
        Forever,
    }

    struct Plan {
        pidfile: Option<PathBuf>,
        exit: Option<i32>,
        after: Option<Duration>,
        heartbeat: Option<PathBuf>,
        pace: Option<Duration>,
        steps: Vec<Step>,
    }

    pub fn main() {
        let args: Vec<OsString> = std::env::args_os().skip(1).collect();
        let plan = planned(parse(args));
        if let Some(pidfile) = &plan.pidfile {
            record_pid(pidfile, std::process::id());
        }
        let mut target = Target::Stdout;
        for step in &plan.steps {
            run(step, &plan, &mut target);
        }
        finish(plan.exit, plan.after)
    }

    fn parse(args: Vec<OsString>) -> Result<Plan, String> {
        let mut plan = Plan {
            pidfile: None,
            exit: None,
            after: None,
            heartbeat: None,
            pace: None,
            steps: Vec::new(),
        };
        if args.is_empty() {
            plan.steps.push(Step::Forever);
            return Ok(plan);
        }
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let flag = flag
                .into_string()
                .map_err(|f| format!("not an option: {f:?}"))?;
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            let mut text = || {
                value()?
                    .into_string()
                    .map_err(|v| format!("{flag}: not UTF-8: {v:?}"))
            };
            let step = match flag.as_str() {
                "--pidfile" => {
                    plan.pidfile = Some(PathBuf::from(value()?));
                    continue;
                }
                "--exit" => {
                    let code = text()?;
                    let code = code
                        .parse::<u8>()
                        .map_err(|_| format!("--exit: not a code 0..=255: {code}"))?;
                    plan.exit = Some(code.into());
                    continue;
                }
                "--after" => {
                    plan.after = Some(duration(&text()?)?);
                    continue;
                }
                "--heartbeat" => {
                    plan.heartbeat = Some(PathBuf::from(value()?));
                    continue;
                }
                "--pace" => {
                    plan.pace = Some(duration(&text()?)?);
                    continue;
                }
                "--size" => {
                    let size = number(&flag, &text()?)?;
                    match plan.steps.last_mut() {
                        Some(Step::Lines { size: s, .. }) => *s = size as usize,
                        _ => return Err("--size must follow --lines".into()),
                    }
                    continue;
                }
                "--ignore-term" => Step::Ignore(libc::SIGTERM),
                "--ignore" => Step::Ignore(signal(&text()?)?),
                "--trap" => Step::Trap(signal(&text()?)?),
                "--raise" => Step::Raise(signal(&text()?)?),
                "--fork" => Step::Fork(number(&flag, &text()?)? as u32),
                "--double-fork-setsid" => Step::DoubleForkSetsid,
                "--hide" => Step::Hide { orphan: false },
                "--hide-orphan" => Step::Hide { orphan: true },
                "--orphans" => Step::Orphans(number(&flag, &text()?)? as u32),
                "--stdout" => Step::Target(Target::Stdout),
                "--stderr" => Step::Target(Target::Stderr),
                "--echo" => Step::Echo(text()?),
                "--partial" => Step::Partial(text()?),
                "--lines" => Step::Lines {
                    n: number(&flag, &text()?)?,
                    size: 100,
                },
                "--long" => Step::Long(number(&flag, &text()?)? as usize),
                "--bytes" => Step::Bytes(number(&flag, &text()?)?),
                "--env" => Step::Env(value()?),
                "--cwd" => Step::Cwd,
                "--fds" => Step::Fds,
                "--notify" => Step::Notify(text()?),
                "--sleep" => Step::Sleep(duration(&text()?)?),
                "--forever" => Step::Forever,
                other => return Err(format!("unknown option {other}")),
            };
            plan.steps.push(step);
        }
        Ok(plan)
    }

    const SIGNALS: [(&str, c_int); 14] = [
        ("HUP", libc::SIGHUP),
        ("INT", libc::SIGINT),
        ("QUIT", libc::SIGQUIT),
        ("ABRT", libc::SIGABRT),
        ("KILL", libc::SIGKILL),
        ("USR1", libc::SIGUSR1),
        ("SEGV", libc::SIGSEGV),
        ("USR2", libc::SIGUSR2),
        ("PIPE", libc::SIGPIPE),
        ("ALRM", libc::SIGALRM),
        ("TERM", libc::SIGTERM),
        ("CONT", libc::SIGCONT),
        ("STOP", libc::SIGSTOP),
        ("WINCH", libc::SIGWINCH),
    ];

    fn signal(s: &str) -> Result<c_int, String> {
        if let Ok(n) = s.parse::<c_int>() {
            return Ok(n);
        }
        let upper = s.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        SIGNALS
            .iter()
            .find(|(name, _)| *name == bare)
            .map(|&(_, n)| n)
            .ok_or_else(|| format!("unknown signal {s}"))
    }

    fn signal_name(n: c_int) -> &'static str {
        SIGNALS
            .iter()
            .find(|&&(_, sig)| sig == n)
            .map_or("UNKNOWN", |&(name, _)| name)
    }

    fn run(step: &Step, plan: &Plan, target: &mut Target) {
        match step {
            Step::Ignore(sig) => set_handler(*sig, libc::SIG_IGN),
            Step::Trap(sig) => {
                set_handler(*sig, on_trap as extern "C" fn(c_int) as libc::sighandler_t)
            }
            // SAFETY: raise only sends a signal to this process.
            Step::Raise(sig) => unsafe {
                libc::raise(*sig);
            },
            Step::Fork(n) => {
                for _ in 0..*n {
                    let pid = fork();
                    if pid == 0 {
                        sleep_forever();
                    }
                    record(plan, pid);
                }
            }
            Step::DoubleForkSetsid => double_fork(plan, Grandchild::Escapee),
            Step::Hide { orphan } => hide(plan, *orphan),
            Step::Orphans(n) => {
                for _ in 0..*n {
                    double_fork(plan, Grandchild::Orphan);
                }
            }
            Step::Target(t) => *target = *t,
            Step::Echo(text) => emit(*target, format!("{text}\n").as_bytes()),
            Step::Partial(text) => emit(*target, text.as_bytes()),
            Step::Lines { n, size } => lines(plan, *target, *n, *size),
            Step::Long(n) => {
                let mut line = vec![b'x'; *n];
                line.push(b'\n');
                emit(*target, &line);
            }
            Step::Bytes(n) => bytes(*target, *n),
            Step::Env(name) => {
                let mut line = name.as_encoded_bytes().to_vec();
                match std::env::var_os(name) {
                    Some(value) => {
                        line.push(b'=');
                        line.extend_from_slice(value.as_encoded_bytes());
                    }
                    None => line.extend_from_slice(b" unset"),
                }
                line.push(b'\n');
                emit(*target, &line);
            }
            Step::Cwd => {
                let cwd = std::env::current_dir().unwrap_or_default();
                let mut line = cwd.into_os_string().into_encoded_bytes();
                line.push(b'\n');
                emit(*target, &line);
            }
            Step::Fds => {
                let mut text = String::new();
                for fd in open_fds() {
                    let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
                        .map(|t| t.display().to_string())
                        .unwrap_or_else(|e| format!("? ({e})"));
                    text.push_str(&format!("fd {fd} {target}\n"));
                }
                emit(*target, text.as_bytes());
            }
            Step::Notify(msg) => {
                if let Err(e) = notify(msg) {
                    eprintln!("testee: --notify: {e}");
                    exit(3);
                }
            }
            Step::Sleep(d) => std::thread::sleep(*d),
            Step::Forever => sleep_forever(),
        }
    }

    /// The open descriptors, without the one that reads the directory.
    fn open_fds() -> Vec<c_int> {
        let mut fds = Vec::new();
        // SAFETY: opendir/readdir/closedir on a constant path; each entry
        // is read before the next readdir call.
        unsafe {
            let dir = libc::opendir(c"/proc/self/fd".as_ptr());
            if dir.is_null() {
                eprintln!("testee: --fds: {}", io::Error::last_os_error());
                exit(2);
            }
            let own = libc::dirfd(dir);
            loop {
                let entry = libc::readdir(dir);
                if entry.is_null() {
                    break;
                }
                let name = std::ffi::CStr::from_ptr((*entry).d_name.as_ptr());
                if let Some(fd) = name.to_str().ok().and_then(|n| n.parse::<c_int>().ok()) {
                    if fd != own {
                        fds.push(fd);
                    }
                }
            }
            libc::closedir(dir);
        }
        fds.sort_unstable();
        fds
    }

    fn set_handler(sig: c_int, handler: libc::sighandler_t) {
        // SAFETY: installs SIG_IGN or `on_trap`, which only calls
        // async-signal-safe functions; testee has a single thread.
        let previous = unsafe { libc::signal(sig, handler) };
        if previous == libc::SIG_ERR {
            eprintln!("testee: cannot set a handler for signal {sig}");
            exit(2);
        }
    }

    extern "C" fn on_trap(sig: c_int) {
        let msg = format_trap(sig);
        // SAFETY: write and _exit are async-signal-safe; `msg` is a stack buffer.
        unsafe {
            libc::write(1, msg.0.as_ptr().cast(), msg.1);
            libc::_exit(0);
        }
    }

    /// `trapped SIGNAME\n` without allocating (this runs in a signal handler).
    fn format_trap(sig: c_int) -> ([u8; 32], usize) {
        let mut buf = [0u8; 32];
        let mut len = 0;
        for part in [
            b"trapped SIG".as_slice(),
            signal_name(sig).as_bytes(),
            b"\n",
        ] {
            buf[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        }
        (buf, len)
    }

    fn fork() -> libc::pid_t {
        // SAFETY: testee is single-threaded, so the child may do anything the
        // parent could.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            eprintln!("testee: fork: {}", io::Error::last_os_error());
            exit(2);
        }
        pid
    }

    fn record(plan: &Plan, pid: libc::pid_t) {
        if let Some(pidfile) = &plan.pidfile {
            record_pid(pidfile, pid as u32);
        }
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Grandchild {
        /// Leaves the process group and session, and stays.
        Escapee,
        /// Exits at once.
        Orphan,
    }

    /// Forks a child that forks the grandchild and exits. The grandchild
    /// reports its pid through a socket, so that it is in the pidfile before
    /// testee goes on to its next step.
    fn double_fork(plan: &Plan, kind: Grandchild) {
        let (mut reader, mut writer) = match UnixStream::pair() {
            Ok(pair) => pair,
            Err(e) => {
                eprintln!("testee: socketpair: {e}");
                exit(2);
            }
        };
        let middle = fork();
        if middle == 0 {
            drop(reader);
            if fork() == 0 {
                if kind == Grandchild::Escapee {
                    // SAFETY: setsid has no preconditions.
                    unsafe { libc::setsid() };
                }
                // SAFETY: getpid has no preconditions.
                let pid = unsafe { libc::getpid() };
                let _ = writer.write_all(&pid.to_ne_bytes());
                drop(writer);
                if kind == Grandchild::Escapee {
                    sleep_forever();
                }
                // SAFETY: as for the middle child below.
                unsafe { libc::_exit(0) };
            }
            // SAFETY: leaves without running the parent's atexit handlers or
            // flushing its copied buffers twice.
            unsafe { libc::_exit(0) };
        }
        drop(writer);
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(middle, &mut status, 0) };
        let mut pid = [0u8; 4];
        if reader.read_exact(&mut pid).is_err() {
            eprintln!("testee: a grandchild did not report its pid");
            exit(2);
        }
        record(plan, libc::pid_t::from_ne_bytes(pid));
    }

    /// `--hide`/`--hide-orphan`: a process that leaves the process group
    /// and clears its environment, the two ways out of a tree without
    /// cgroups. Its pid is reported once it has executed, so a reader of the
    /// pidfile knows its environment is already empty.
    fn hide(plan: &Plan, orphan: bool) {
        let (mut reader, mut writer) = match UnixStream::pair() {
            Ok(pair) => pair,
            Err(e) => {
                eprintln!("testee: socketpair: {e}");
                exit(2);
            }
        };
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("testee"));
        let middle = if orphan { fork() } else { 0 };
        if middle == 0 {
            let child = fork();
            if child == 0 {
                drop(reader);
                // SAFETY: setsid has no preconditions.
                unsafe { libc::setsid() };
                // The report goes out at exec: the socket is close-on-exec,
                // so the reader sees EOF once the new program runs.
                let pid = std::process::id().to_ne_bytes();
                let _ = writer.write_all(&pid);
                use std::os::unix::process::CommandExt;
                let e = std::process::Command::new(&exe)
                    .env_clear()
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .exec();
                eprintln!("testee: --hide: cannot execute {}: {e}", exe.display());
                // SAFETY: leaves the forked copy without running handlers.
                unsafe { libc::_exit(2) };
            }
            if orphan {
                // SAFETY: as above.
                unsafe { libc::_exit(0) };
            }
        }
        drop(writer);
        if orphan {
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(middle, &mut status, 0) };
        }
        let mut pid = [0u8; 4];
        if reader.read_exact(&mut pid).is_err() {
            eprintln!("testee: a hidden process did not report its pid");
            exit(2);
        }
        // EOF: it has executed (or died trying).
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
        record(plan, libc::pid_t::from_ne_bytes(pid));
    }

    fn notify(msg: &str) -> io::Result<()> {
        let path = std::env::var_os("NOTIFY_SOCKET")
            .ok_or_else(|| io::Error::other("NOTIFY_SOCKET is not set"))?;
        let socket = UnixDatagram::unbound()?;
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            return send_abstract(&socket, name, msg);
        }
        socket.send_to(msg.as_bytes(), PathBuf::from(path))?;
        Ok(())
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn send_abstract(socket: &UnixDatagram, name: &[u8], msg: &str) -> io::Result<()> {
        #[cfg(target_os = "android")]
        use std::os::android::net::SocketAddrExt;
        #[cfg(target_os = "linux")]
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(msg.as_bytes(), &addr)?;
        Ok(())
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn send_abstract(_: &UnixDatagram, _: &[u8], _: &str) -> io::Result<()> {
        Err(io::Error::other("abstract sockets exist only on Linux"))
    }

    fn emit(target: Target, bytes: &[u8]) {
        let result = match target {
            Target::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            }
            Target::Stderr => io::stderr().lock().write_all(bytes),
        };
        if result.is_err() {
            exit(WRITE_FAILED);
        }
    }

    fn lines(plan: &Plan, target: Target, n: u64, size: usize) {
        let size = size.max(13);
        let mut line = vec![b'x'; size];
        line[size - 1] = b'\n';
        let mut block = Vec::with_capacity(BLOCK + size);
        let mut in_block = 0;
        for i in 0..n {
            let mut v = i;
            for digit in line[..12].iter_mut().rev() {
                *digit = b'0' + (v % 10) as u8;
                v /= 10;
            }
            block.extend_from_slice(&line);
            in_block += 1;
            if block.len() >= BLOCK {
                emit(target, &block);
                block.clear();
                block_written(plan, mem::take(&mut in_block));
            }
        }
        emit(target, &block);
        block_written(plan, in_block);
    }

    /// Lines written by `--lines` steps so far, for `--heartbeat`.
    static LINES_WRITTEN: AtomicU64 = AtomicU64::new(0);

    fn block_written(plan: &Plan, lines: u64) {
        let total = LINES_WRITTEN.fetch_add(lines, Ordering::Relaxed) + lines;
        if let Some(path) = &plan.heartbeat {
            // Written aside and renamed over the file, so that a reader never
            // sees a half-written number.
            let mut tmp = path.clone().into_os_string();
            tmp.push(".tmp");
            let written = std::fs::write(&tmp, format!("{total}\n"))
                .and_then(|()| std::fs::rename(&tmp, path));
            if let Err(e) = written {
                eprintln!("testee: --heartbeat {}: {e}", path.display());
                exit(2);
            }
        }
        if let Some(pace) = plan.pace {
            std::thread::sleep(pace);
        }
    }

    fn bytes(target: Target, mut n: u64) {
        const PATTERN: &[u8; 64] =
            b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+\n";
        let block: Vec<u8> = PATTERN.iter().copied().cycle().take(BLOCK).collect();
        while n > 0 {
            let take = n.min(BLOCK as u64) as usize;
            emit(target, &block[..take]);
            n -= take as u64;
        }
    }
}

/// testee on Windows: the steps that mean something there.
///
/// | option / step | meaning |
/// |---|---|
/// | `--pidfile FILE`, `--exit CODE`, `--after DURATION` | as on Unix |
/// | `--ignore-ctrl` | ignore Ctrl-C and Ctrl-Break (a handler that says "handled") |
/// | `--trap-ctrl` | on Ctrl-C or Ctrl-Break print `trapped CTRL_C_EVENT` (or `CTRL_BREAK_EVENT`) and exit 0 |
/// | `--spawn N` | start N copies of testee that run until killed (same console, same output, same pidfile) |
/// | `--stdout`, `--stderr`, `--echo TEXT`, `--lines N`, `--size B` | as on Unix |
/// | `--pace DURATION` | `--lines` writes blocks of 16 KiB, sleeping this long after each |
/// | `--env NAME`, `--cwd`, `--sleep DURATION`, `--forever` | as on Unix |
#[cfg(windows)]
mod windows {
    use super::{duration, finish, number, planned, record_pid, sleep_forever};
    use std::io::Write;
    use std::path::PathBuf;
    use std::process::exit;
    use std::time::Duration;

    use windows_sys::Win32::System::Console::{
        SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_C_EVENT,
    };

    enum Step {
        IgnoreCtrl,
        TrapCtrl,
        Spawn(u64),
        Stderr(bool),
        Echo(String),
        Lines { n: u64, size: usize },
        Env(String),
        Cwd,
        Sleep(Duration),
        Forever,
    }

    struct Plan {
        pidfile: Option<PathBuf>,
        exit: Option<i32>,
        after: Option<Duration>,
        pace: Option<Duration>,
        steps: Vec<Step>,
    }

    fn parse(args: Vec<String>) -> Result<Plan, String> {
        let mut plan = Plan {
            pidfile: None,
            exit: None,
            after: None,
            pace: None,
            steps: Vec::new(),
        };
        if args.is_empty() {
            plan.steps.push(Step::Forever);
        }
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            let step = match flag.as_str() {
                "--pidfile" => {
                    plan.pidfile = Some(PathBuf::from(value()?));
                    continue;
                }
                "--exit" => {
                    let code = value()?;
                    plan.exit = Some(number("--exit", &code)? as i32);
                    continue;
                }
                "--after" => {
                    plan.after = Some(duration(&value()?)?);
                    continue;
                }
                "--pace" => {
                    plan.pace = Some(duration(&value()?)?);
                    continue;
                }
                "--size" => {
                    let size = number("--size", &value()?)? as usize;
                    match plan.steps.last_mut() {
                        Some(Step::Lines { size: s, .. }) => *s = size.max(13),
                        _ => return Err("--size follows --lines".into()),
                    }
                    continue;
                }
                "--ignore-ctrl" => Step::IgnoreCtrl,
                "--trap-ctrl" => Step::TrapCtrl,
                "--spawn" => Step::Spawn(number("--spawn", &value()?)?),
                "--stdout" => Step::Stderr(false),
                "--stderr" => Step::Stderr(true),
                "--echo" => Step::Echo(value()?),
                "--lines" => Step::Lines {
                    n: number("--lines", &value()?)?,
                    size: 100,
                },
                "--env" => Step::Env(value()?),
                "--cwd" => Step::Cwd,
                "--sleep" => Step::Sleep(duration(&value()?)?),
                "--forever" => Step::Forever,
                other => return Err(format!("unknown option {other}")),
            };
            plan.steps.push(step);
        }
        Ok(plan)
    }

    unsafe extern "system" fn ignore(_event: u32) -> windows_sys::core::BOOL {
        1
    }

    unsafe extern "system" fn trap(event: u32) -> windows_sys::core::BOOL {
        let name = match event {
            CTRL_C_EVENT => "CTRL_C_EVENT",
            CTRL_BREAK_EVENT => "CTRL_BREAK_EVENT",
            _ => return 0,
        };
        println!("trapped {name}");
        let _ = std::io::stdout().flush();
        exit(0)
    }

    fn write(stderr: bool, bytes: &[u8]) {
        let done = if stderr {
            std::io::stderr().write_all(bytes)
        } else {
            std::io::stdout()
                .write_all(bytes)
                .and_then(|()| std::io::stdout().flush())
        };
        if done.is_err() {
            exit(120);
        }
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let plan = planned(parse(args));
        if let Some(pidfile) = &plan.pidfile {
            record_pid(pidfile, std::process::id());
        }
        let mut stderr = false;
        for step in &plan.steps {
            match step {
                // SAFETY: handlers valid for the life of the process.
                Step::IgnoreCtrl => unsafe {
                    SetConsoleCtrlHandler(Some(ignore), 1);
                },
                // SAFETY: as above; Ctrl-C is enabled for this process too.
                Step::TrapCtrl => unsafe {
                    SetConsoleCtrlHandler(None, 0);
                    SetConsoleCtrlHandler(Some(trap), 1);
                },
                Step::Spawn(n) => {
                    for _ in 0..*n {
                        let mut cmd = std::process::Command::new(
                            std::env::current_exe().expect("testee's own path"),
                        );
                        if let Some(pidfile) = &plan.pidfile {
                            cmd.arg("--pidfile").arg(pidfile);
                        }
                        cmd.arg("--forever");
                        if let Err(e) = cmd.spawn() {
                            eprintln!("testee: --spawn: {e}");
                            exit(2);
                        }
                    }
                }
                Step::Stderr(to) => stderr = *to,
                Step::Echo(text) => write(stderr, format!("{text}\n").as_bytes()),
                Step::Lines { n, size } => {
                    let limit = if plan.pace.is_some() { 16 } else { 256 } * 1024;
                    let mut block = Vec::new();
                    for i in 0..*n {
                        let mut line = format!("{i:012}");
                        line.extend(std::iter::repeat_n('x', size - 13));
                        line.push('\n');
                        block.extend_from_slice(line.as_bytes());
                        if block.len() >= limit {
                            write(stderr, &block);
                            block.clear();
                            if let Some(pace) = plan.pace {
                                std::thread::sleep(pace);
                            }
                        }
                    }
                    write(stderr, &block);
                }
                Step::Env(name) => match std::env::var(name) {
                    Ok(v) => write(stderr, format!("{name}={v}\n").as_bytes()),
                    Err(_) => write(stderr, format!("{name} unset\n").as_bytes()),
                },
                Step::Cwd => {
                    let cwd = std::env::current_dir().map(|p| p.display().to_string());
                    write(stderr, format!("{}\n", cwd.unwrap_or_default()).as_bytes())
                }
                Step::Sleep(d) => std::thread::sleep(*d),
                Step::Forever => sleep_forever(),
            }
        }
        finish(plan.exit, plan.after)
    }
}
