//! A run's process tree on Windows: its Job Object. Every process the
//! program starts is in the job (nothing may break away), so the job's
//! active-process count says when the tree is gone, and ending the job
//! ends all of it.

use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::path::PathBuf;
use std::sync::Arc;

use windows_sys::Win32::Foundation::{FILETIME, HANDLE, WAIT_OBJECT_0};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectBasicAccountingInformation,
    JobObjectBasicProcessIdList, JobObjectExtendedLimitInformation, QueryInformationJobObject,
    SetInformationJobObject, TerminateJobObject, JOBOBJECT_BASIC_ACCOUNTING_INFORMATION,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};
use windows_sys::Win32::System::Threading::{
    GetExitCodeProcess, GetProcessTimes, OpenProcess, TerminateProcess, WaitForSingleObject,
    INFINITE, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE, PROCESS_TERMINATE,
};

use super::super::{Signal, TreeRecord};
use super::{ok, owned};

/// The exit code of a process ward ended (as Task Manager's "End task"
/// and `taskkill /f` do).
const KILLED: u32 = 1;

/// Every process of one run: its job.
#[derive(Clone, Debug)]
pub struct Tree(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    job: OwnedHandle,
    /// The leader, for its creation time and to end it alone.
    leader: Arc<OwnedHandle>,
    pid: u32,
    /// `<prefix>/<tree name>`, the value of `WARD_TREE`.
    marker: String,
    /// ward's executable, which sends console events (see `console`).
    helper: Option<PathBuf>,
}

/// A job whose processes end when its last handle closes (ward's, at the
/// latest when ward ends), and that lets a crashing program end rather
/// than wait on an error dialog nobody sees.
pub(crate) fn create() -> io::Result<OwnedHandle> {
    // SAFETY: no attributes, no name.
    let job = owned(unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) })
        .map_err(|e| io::Error::new(e.kind(), format!("cannot make a job object: {e}")))?;
    let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
    limits.BasicLimitInformation.LimitFlags =
        JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
    // SAFETY: a job handle and a structure of the size given.
    ok(unsafe {
        SetInformationJobObject(
            raw(&job),
            JobObjectExtendedLimitInformation,
            (&limits as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
            std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
        )
    })
    .map_err(|e| io::Error::new(e.kind(), format!("cannot set up a job object: {e}")))?;
    Ok(job)
}

fn raw(h: &OwnedHandle) -> HANDLE {
    h.as_raw_handle() as HANDLE
}

pub(crate) fn assign(job: &OwnedHandle, process: &OwnedHandle) -> io::Result<()> {
    // SAFETY: two open handles.
    ok(unsafe { AssignProcessToJobObject(raw(job), raw(process)) })
}

pub(crate) fn terminate_process(process: &OwnedHandle) {
    // SAFETY: an open process handle.
    unsafe { TerminateProcess(raw(process), KILLED) };
}

/// Ends the process `pid`; whether it could.
pub(crate) fn terminate_pid(pid: u32) -> bool {
    // SAFETY: plain arguments.
    let Ok(process) = owned(unsafe { OpenProcess(PROCESS_TERMINATE, 0, pid) }) else {
        return false;
    };
    // SAFETY: an open process handle.
    unsafe { TerminateProcess(raw(&process), KILLED) != 0 }
}

/// Waits for the process to end and returns its exit code.
pub(crate) fn wait_exit(process: &OwnedHandle) -> u32 {
    // SAFETY: an open process handle.
    unsafe { WaitForSingleObject(raw(process), INFINITE) };
    let mut code = KILLED;
    // SAFETY: an open process handle and a place for the code.
    unsafe { GetExitCodeProcess(raw(process), &mut code) };
    code
}

/// The process is gone (or has exited and only its handle is left).
pub(crate) fn has_exited(pid: u32) -> bool {
    // SAFETY: plain arguments.
    match owned(unsafe { OpenProcess(PROCESS_SYNCHRONIZE, 0, pid) }) {
        // SAFETY: an open process handle; no wait.
        Ok(process) => unsafe { WaitForSingleObject(raw(&process), 0) == WAIT_OBJECT_0 },
        Err(_) => true,
    }
}

/// When a process was created (100 ns units since 1601), or `None` if it
/// does not exist.
pub fn start_time(pid: u32) -> Option<u64> {
    // SAFETY: plain arguments.
    let process = owned(unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) }).ok()?;
    creation_time(&process)
}

fn creation_time(process: &OwnedHandle) -> Option<u64> {
    let mut times = [FILETIME::default(); 4];
    let [created, exited, kernel, user] = &mut times;
    // SAFETY: an open process handle and four places for times.
    ok(unsafe { GetProcessTimes(raw(process), created, exited, kernel, user) }).ok()?;
    Some(u64::from(times[0].dwHighDateTime) << 32 | u64::from(times[0].dwLowDateTime))
}

impl Tree {
    pub(crate) fn new(
        job: OwnedHandle,
        leader: Arc<OwnedHandle>,
        pid: u32,
        marker: String,
        helper: Option<PathBuf>,
    ) -> Tree {
        Tree(Arc::new(Inner {
            job,
            leader,
            pid,
            marker,
            helper,
        }))
    }

    /// The state file's record of this tree, whose leader is `pid`.
    pub fn record(&self, pid: u32) -> TreeRecord {
        TreeRecord {
            pid,
            start_time: creation_time(&self.0.leader).unwrap_or(0),
            pgid: 0,
            cgroup: None,
            marker: self.0.marker.clone(),
        }
    }

    /// `sig` to the whole tree: a console event to the program's console
    /// (every process attached to it: the program and what it started,
    /// unless one made a console of its own), or KILL: the job ended.
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        match sig {
            Signal::Kill => {
                self.kill();
                Ok(())
            }
            Signal::CtrlC | Signal::CtrlBreak => {
                let helper = self.0.helper.as_deref().ok_or_else(|| {
                    io::Error::other("ward's own executable is unknown; it sends console events")
                })?;
                super::console::send(helper, self.0.pid, sig)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{sig:?} is not something Windows can send"),
            )),
        }
    }

    /// [`Tree::signal`]: a console event needs no continuing.
    pub fn signal_stop(&self, sig: Signal) -> io::Result<()> {
        self.signal(sig)
    }

    /// The main process only: KILL ends the leader alone; a console event
    /// reaches its whole console all the same (Windows cannot aim one at
    /// a single process of a console).
    pub fn signal_stop_leader(&self, sig: Signal) -> io::Result<()> {
        self.signal_leader(sig)
    }

    pub fn signal_leader(&self, sig: Signal) -> io::Result<()> {
        match sig {
            Signal::Kill => {
                terminate_process(&self.0.leader);
                Ok(())
            }
            _ => self.signal(sig),
        }
    }

    /// Ends every process of the job at once.
    pub fn kill(&self) {
        // SAFETY: an open job handle.
        unsafe { TerminateJobObject(raw(&self.0.job), KILLED) };
    }

    /// No process of the job is left.
    pub fn is_empty(&self) -> io::Result<bool> {
        let mut info = JOBOBJECT_BASIC_ACCOUNTING_INFORMATION::default();
        // SAFETY: a job handle and a structure of the size given.
        ok(unsafe {
            QueryInformationJobObject(
                raw(&self.0.job),
                JobObjectBasicAccountingInformation,
                (&mut info as *mut JOBOBJECT_BASIC_ACCOUNTING_INFORMATION).cast(),
                std::mem::size_of::<JOBOBJECT_BASIC_ACCOUNTING_INFORMATION>() as u32,
                std::ptr::null_mut(),
            )
        })
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read a job object: {e}")))?;
        Ok(info.ActiveProcesses == 0)
    }

    /// The live processes of the job, leader first if it is alive.
    #[allow(dead_code)] // for tests and diagnostics
    pub fn pids(&self) -> io::Result<Vec<u32>> {
        // A header of two u32 and room for 1024 ids.
        let mut buf = vec![0usize; 1 + 1024];
        // SAFETY: a job handle and a buffer of the size given.
        ok(unsafe {
            QueryInformationJobObject(
                raw(&self.0.job),
                JobObjectBasicProcessIdList,
                buf.as_mut_ptr().cast(),
                (buf.len() * std::mem::size_of::<usize>()) as u32,
                std::ptr::null_mut(),
            )
        })?;
        let listed = (buf[0] >> 32) as usize;
        let mut pids: Vec<u32> = buf[1..=listed.min(1024)]
            .iter()
            .map(|&p| p as u32)
            .collect();
        pids.sort_by_key(|&p| (p != self.0.pid, p));
        Ok(pids)
    }

    /// Resolves when the job is empty (see [`super::super::until_empty`]).
    pub async fn gone(&self, read: impl FnMut(Option<&io::Error>)) {
        super::super::until_empty(|| self.is_empty(), read).await
    }

    /// Nothing to remove: the job goes with its last handle.
    pub fn cleanup(&self) {}
}
