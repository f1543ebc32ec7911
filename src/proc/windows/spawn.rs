//! One spawn on Windows: the program found (PATH and PATHEXT; a batch file
//! through cmd.exe), the command line quoted, the environment block, the
//! pipes, the job; then `CreateProcessW` suspended, into the job, resumed.

use std::ffi::OsString;
use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use windows_sys::Win32::Foundation::{SetHandleInformation, HANDLE, HANDLE_FLAG_INHERIT};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED, FILE_GENERIC_READ,
    FILE_GENERIC_WRITE, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING, PIPE_ACCESS_INBOUND,
};
use windows_sys::Win32::System::Pipes::{
    CreateNamedPipeW, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE, PIPE_WAIT,
};
use windows_sys::Win32::System::Threading::{
    CreateProcessW, DeleteProcThreadAttributeList, InitializeProcThreadAttributeList, ResumeThread,
    UpdateProcThreadAttribute, CREATE_DEFAULT_ERROR_MODE, CREATE_NO_WINDOW, CREATE_SUSPENDED,
    CREATE_UNICODE_ENVIRONMENT, EXTENDED_STARTUPINFO_PRESENT, LPPROC_THREAD_ATTRIBUTE_LIST,
    PROCESS_INFORMATION, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, STARTF_USESTDHANDLES, STARTUPINFOEXW,
};

use super::super::{Child, Exit, Launch, MARKER_VAR};
use super::check::{resolve, Resolved};
use super::job::{self, Tree};
use super::{ok, owned, wide};

/// Variables a service manager sets for ward itself; a program under ward
/// must not mistake them for its own.
const INHERITED_FROM_SERVICE_MANAGER: &[&str] = ward_service::notify::INHERITED;

/// A pipe's buffer: what a program can write before it waits for ward.
const PIPE_BUFFER: u32 = 64 * 1024;

/// Making the three handles a child inherits inheritable, and starting
/// it, is one step: another spawn in between could inherit them too where
/// the handle list is not honoured. Every process ward starts while it
/// supervises (the console-event helper too, which `std::process` starts
/// with every inheritable handle) is started under it.
static SPAWN_LOCK: Mutex<()> = Mutex::new(());

/// Holds [`SPAWN_LOCK`] for a spawn made elsewhere.
pub(crate) fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// What every spawn needs to know.
pub(crate) struct Context {
    /// `<ward pid>.<ward start time>`: the first half of every marker.
    pub prefix: String,
    /// ward's own executable, which sends console events for it.
    pub helper: Option<PathBuf>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// One spawn, on a blocking thread.
pub(crate) fn spawn_now(ctx: &Context, launch: Launch) -> io::Result<Child> {
    if launch.user.is_some() || launch.group.is_some() {
        return Err(invalid(super::check_accounts().unwrap_err()));
    }
    let program = launch
        .argv
        .first()
        .ok_or_else(|| invalid("empty command".into()))?;
    let marker = format!("{}/{}", ctx.prefix, launch.tree_name);
    let env = environment(
        launch
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain([(MARKER_VAR, marker.as_str())]),
    );
    let path = env
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("PATH"))
        .map(|(_, v)| v.as_str());
    let pathext = env
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("PATHEXT"))
        .map(|(_, v)| v.as_str());
    let found = resolve(program, &launch.cwd, path, pathext).map_err(|why| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("cannot run {program}: {why}"),
        )
    })?;
    let (application, line) = match &found {
        Resolved::Program(exe) => (exe.clone(), command_line(&launch.argv).map_err(invalid)?),
        Resolved::Batch(script) => {
            let cmd = comspec(&env);
            let mut argv = vec![
                cmd.to_string_lossy().into_owned(),
                "/d".into(),
                "/c".into(),
                script.to_string_lossy().into_owned(),
            ];
            argv.extend(launch.argv[1..].iter().cloned());
            (cmd, command_line(&argv).map_err(invalid)?)
        }
    };
    let block = env_block(&env).map_err(invalid)?;

    let (out_server, out_client) = pipe()?;
    let (err_server, err_client) = pipe()?;
    let null = open_null()?;
    let job = job::create()?;

    let info = {
        let _one_at_a_time = one_at_a_time();
        let inherited = [
            null.as_raw_handle() as HANDLE,
            out_client.as_raw_handle() as HANDLE,
            err_client.as_raw_handle() as HANDLE,
        ];
        for h in inherited {
            // SAFETY: a handle this function owns.
            ok(unsafe { SetHandleInformation(h, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT) })?;
        }
        create_process(&application, line, &block, &launch.cwd, &inherited).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run {}: {e}", application.display()),
            )
        })?
    };
    // The child has its copies; ours go, so that the pipes end with it.
    drop((null, out_client, err_client));
    let process = owned(info.hProcess)?;
    let thread = owned(info.hThread)?;
    if let Err(e) = job::assign(&job, &process) {
        job::terminate_process(&process);
        return Err(io::Error::new(
            e.kind(),
            format!("cannot put {} in a job object: {e}", application.display()),
        ));
    }
    // SAFETY: the primary thread of the process just made, suspended.
    if unsafe { ResumeThread(thread.as_raw_handle() as HANDLE) } == u32::MAX {
        let e = io::Error::last_os_error();
        job::terminate_process(&process);
        return Err(io::Error::new(
            e.kind(),
            format!("cannot resume {}: {e}", application.display()),
        ));
    }
    drop(thread);
    let process = Arc::new(process);
    let exit = watch_exit(Arc::clone(&process))?;
    let pid = info.dwProcessId;
    Ok(Child {
        pid,
        pipes: Some((out_server, err_server)),
        tree: Tree::new(job, process, pid, marker, ctx.helper.clone()),
        exit,
        warning: None,
    })
}

/// `CreateProcessW`, suspended, with a console of its own that has no
/// window (`CREATE_NO_WINDOW`: nothing flashes on a desktop, and under
/// Wine no desktop process is started into the job), handing
/// the child exactly `inherited` (stdin, stdout, stderr).
fn create_process(
    application: &std::path::Path,
    line: String,
    block: &[u16],
    cwd: &std::path::Path,
    inherited: &[HANDLE; 3],
) -> io::Result<PROCESS_INFORMATION> {
    let application = wide(application);
    let mut line = wide(line);
    let cwd = wide(cwd);
    let mut size = 0usize;
    // SAFETY: asks the size of a list of one attribute (fails by design).
    unsafe { InitializeProcThreadAttributeList(std::ptr::null_mut(), 1, 0, &mut size) };
    // usize-aligned storage of at least `size` bytes.
    let mut storage = vec![0usize; size.div_ceil(std::mem::size_of::<usize>()).max(1)];
    let list = storage.as_mut_ptr() as LPPROC_THREAD_ATTRIBUTE_LIST;
    // SAFETY: `list` points at `size` writable bytes that outlive its use.
    ok(unsafe { InitializeProcThreadAttributeList(list, 1, 0, &mut size) })?;
    struct Delete(LPPROC_THREAD_ATTRIBUTE_LIST);
    impl Drop for Delete {
        fn drop(&mut self) {
            // SAFETY: a list initialised above, deleted once.
            unsafe { DeleteProcThreadAttributeList(self.0) };
        }
    }
    let _delete = Delete(list);
    // SAFETY: `inherited` outlives the CreateProcessW call below.
    ok(unsafe {
        UpdateProcThreadAttribute(
            list,
            0,
            PROC_THREAD_ATTRIBUTE_HANDLE_LIST as usize,
            inherited.as_ptr().cast(),
            std::mem::size_of_val(inherited),
            std::ptr::null_mut(),
            std::ptr::null(),
        )
    })?;
    // SAFETY: all-zero is a valid STARTUPINFOEXW to fill in.
    let mut start: STARTUPINFOEXW = unsafe { std::mem::zeroed() };
    start.StartupInfo.cb = std::mem::size_of::<STARTUPINFOEXW>() as u32;
    start.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    start.StartupInfo.hStdInput = inherited[0];
    start.StartupInfo.hStdOutput = inherited[1];
    start.StartupInfo.hStdError = inherited[2];
    start.lpAttributeList = list;
    // SAFETY: all-zero is a valid PROCESS_INFORMATION to be filled in.
    let mut info: PROCESS_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: every pointer is to a NUL-terminated wide string or a
    // structure that lives across the call; the command line is mutable,
    // as CreateProcessW requires.
    ok(unsafe {
        CreateProcessW(
            application.as_ptr(),
            line.as_mut_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            1,
            CREATE_SUSPENDED
                | CREATE_NO_WINDOW
                | CREATE_UNICODE_ENVIRONMENT
                | CREATE_DEFAULT_ERROR_MODE
                | EXTENDED_STARTUPINFO_PRESENT,
            block.as_ptr().cast(),
            cwd.as_ptr(),
            &start.StartupInfo,
            &mut info,
        )
    })?;
    Ok(info)
}

/// Waits for the process on a thread of its own (a small one) and sends
/// its exit code.
fn watch_exit(process: Arc<OwnedHandle>) -> io::Result<oneshot::Receiver<Exit>> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("ward-exit".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let code = job::wait_exit(&process);
            let _ = tx.send(Exit::Code(code as i32));
        })
        .map_err(|e| io::Error::new(e.kind(), format!("cannot start an exit watch: {e}")))?;
    Ok(rx)
}

/// ward's environment without what a service manager gave ward itself,
/// with `set` on top. Names are compared without case, as Windows does.
fn environment<'a>(set: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| {
            !INHERITED_FROM_SERVICE_MANAGER
                .iter()
                .any(|r| r.eq_ignore_ascii_case(k))
        })
        .collect();
    for (key, value) in set {
        match env.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
            Some(slot) => slot.1 = value.to_string(),
            None => env.push((key.to_string(), value.to_string())),
        }
    }
    env
}

/// The environment block `CreateProcessW` takes: `NAME=value` entries
/// sorted by name without case, each NUL-terminated, then one more NUL.
pub(crate) fn env_block(env: &[(String, String)]) -> Result<Vec<u16>, String> {
    let mut sorted: Vec<&(String, String)> = env.iter().collect();
    sorted.sort_by_key(|(k, _)| k.to_uppercase());
    let mut block = Vec::new();
    for (k, v) in sorted {
        if k.is_empty()
            || k.chars().skip(1).any(|c| c == '=')
            || k.contains('\0')
            || v.contains('\0')
        {
            return Err(format!(
                "the environment variable {k:?} cannot be passed on"
            ));
        }
        block.extend(OsString::from(format!("{k}={v}")).encode_wide_vec());
        block.push(0);
    }
    if block.is_empty() {
        block.push(0);
    }
    block.push(0);
    Ok(block)
}

trait EncodeWide {
    fn encode_wide_vec(&self) -> Vec<u16>;
}

impl EncodeWide for OsString {
    fn encode_wide_vec(&self) -> Vec<u16> {
        use std::os::windows::ffi::OsStrExt;
        self.encode_wide().collect()
    }
}

/// cmd.exe, as `COMSPEC` names it.
fn comspec(env: &[(String, String)]) -> PathBuf {
    env.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("COMSPEC"))
        .map(|(_, v)| PathBuf::from(v))
        .unwrap_or_else(|| PathBuf::from(r"C:\Windows\System32\cmd.exe"))
}

/// The command line for `argv`, as the C runtime splits it back into
/// arguments (quotes and backslashes escaped). cmd.exe does not split that
/// way: when the program is cmd.exe with `/c` (or `/k`), what follows is
/// one line for cmd, wrapped in quotes that `/s` strips: a single
/// argument as it is (the line the user wrote), several quoted for cmd,
/// refusing what cmd would expand in them (`%`, `!`, `"`, line breaks).
pub(crate) fn command_line(argv: &[String]) -> Result<String, String> {
    let mut line = String::new();
    let is_cmd = argv.first().is_some_and(|p| {
        let base = p
            .rsplit(['\\', '/'])
            .next()
            .unwrap_or(p)
            .to_ascii_lowercase();
        base == "cmd" || base == "cmd.exe"
    });
    let switch = is_cmd
        .then(|| {
            argv.iter()
                .skip(1)
                .position(|a| a.eq_ignore_ascii_case("/c") || a.eq_ignore_ascii_case("/k"))
        })
        .flatten()
        .map(|i| i + 1);
    let plain_end = switch.unwrap_or(argv.len());
    for (i, arg) in argv[..plain_end].iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        quote_into(arg, &mut line)?;
    }
    let Some(switch) = switch else {
        return Ok(line);
    };
    let rest = &argv[switch + 1..];
    line.push_str(" /s ");
    line.push_str(&argv[switch]);
    line.push_str(" \"");
    match rest {
        [one] => line.push_str(one),
        _ => {
            for (i, arg) in rest.iter().enumerate() {
                if i > 0 {
                    line.push(' ');
                }
                cmd_quote_into(arg, &mut line)?;
            }
        }
    }
    line.push('"');
    Ok(line)
}

/// One argument as the C runtime reads it back.
fn quote_into(arg: &str, line: &mut String) -> Result<(), String> {
    if arg.contains('\0') {
        return Err("an argument contains a NUL character".into());
    }
    if !arg.is_empty() && !arg.contains([' ', '\t', '\n', '\x0b', '"']) {
        line.push_str(arg);
        return Ok(());
    }
    line.push('"');
    let mut backslashes = 0;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                line.extend(std::iter::repeat_n('\\', backslashes * 2 + 1));
                line.push('"');
                backslashes = 0;
            }
            _ => {
                line.extend(std::iter::repeat_n('\\', backslashes));
                line.push(c);
                backslashes = 0;
            }
        }
    }
    line.extend(std::iter::repeat_n('\\', backslashes * 2));
    line.push('"');
    Ok(())
}

/// One argument of a batch file's line, as cmd.exe reads it.
fn cmd_quote_into(arg: &str, line: &mut String) -> Result<(), String> {
    if arg.contains(['%', '!', '"', '\r', '\n', '\0']) {
        return Err(format!(
            "the argument {arg:?} cannot be passed to a batch file: cmd.exe would expand \
             or split what is in it (%, !, \", line breaks); pass it in an environment \
             variable instead"
        ));
    }
    let special = |c: char| " \t&|<>^(),;=@".contains(c);
    if arg.is_empty() || arg.contains(special) {
        line.push('"');
        line.push_str(arg);
        line.push('"');
    } else {
        line.push_str(arg);
    }
    Ok(())
}

/// A pipe for one output stream: the server end (overlapped, for ward)
/// and the client end (for the child). The name is unique to this ward
/// and spawn, and `FILE_FLAG_FIRST_PIPE_INSTANCE` makes the creation fail
/// rather than join a pipe someone else made under it; one instance only,
/// so nobody else can connect to it either.
fn pipe() -> io::Result<(OwnedHandle, OwnedHandle)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        r"\\.\pipe\ward-{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default()
    );
    let wname = wide(&name);
    // SAFETY: a NUL-terminated name; no security attributes (the default
    // descriptor: ward's account, SYSTEM and Administrators).
    let server = owned(unsafe {
        CreateNamedPipeW(
            wname.as_ptr(),
            PIPE_ACCESS_INBOUND | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
            1,
            0,
            PIPE_BUFFER,
            0,
            std::ptr::null(),
        )
    })
    .map_err(|e| io::Error::new(e.kind(), format!("cannot make a pipe {name}: {e}")))?;
    // SAFETY: a NUL-terminated name; the client end is opened for writing,
    // synchronous (what a child's stdout is).
    let client = owned(unsafe {
        CreateFileW(
            wname.as_ptr(),
            FILE_GENERIC_WRITE,
            0,
            std::ptr::null(),
            OPEN_EXISTING,
            0,
            std::ptr::null_mut(),
        )
    })
    .map_err(|e| io::Error::new(e.kind(), format!("cannot open the pipe {name}: {e}")))?;
    Ok((server, client))
}

/// The NUL device, for the child's stdin.
fn open_null() -> io::Result<OwnedHandle> {
    let name = wide("NUL");
    // SAFETY: a NUL-terminated name.
    owned(unsafe {
        CreateFileW(
            name.as_ptr(),
            FILE_GENERIC_READ,
            FILE_SHARE_READ | FILE_SHARE_WRITE,
            std::ptr::null(),
            OPEN_EXISTING,
            0,
            std::ptr::null_mut(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(argv: &[&str]) -> Result<String, String> {
        command_line(&argv.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn arguments_are_quoted_as_the_c_runtime_reads_them() {
        assert_eq!(line(&["a.exe", "b", "c d"]).unwrap(), r#"a.exe b "c d""#);
        assert_eq!(line(&["a.exe", ""]).unwrap(), r#"a.exe """#);
        assert_eq!(
            line(&["a.exe", r#"say "hi""#]).unwrap(),
            r#"a.exe "say \"hi\"""#
        );
        assert_eq!(line(&["a.exe", r"C:\dir\"]).unwrap(), r"a.exe C:\dir\");
        assert_eq!(
            line(&["a.exe", r"C:\my dir\"]).unwrap(),
            r#"a.exe "C:\my dir\\""#
        );
        assert_eq!(line(&["a.exe", r#"a\"b"#]).unwrap(), r#"a.exe "a\\\"b""#);
        assert!(line(&["a.exe", "a\0b"]).is_err());
    }

    #[test]
    fn cmd_gets_one_line_after_its_switch() {
        assert_eq!(
            line(&["cmd.exe", "/d", "/c", "echo %PATH% & exit 3"]).unwrap(),
            r#"cmd.exe /d /s /c "echo %PATH% & exit 3""#
        );
        assert_eq!(
            line(&[
                r"C:\Windows\System32\CMD.EXE",
                "/d",
                "/c",
                r"C:\app dir\run.bat",
                "a b",
                "c"
            ])
            .unwrap(),
            r#"C:\Windows\System32\CMD.EXE /d /s /c ""C:\app dir\run.bat" "a b" c""#
        );
        let refused = line(&["cmd.exe", "/c", "run.bat", "100%"]).unwrap_err();
        assert!(refused.contains("environment variable"), "{refused}");
        // Not cmd: /c is an argument like any other.
        assert_eq!(
            line(&["app.exe", "/c", "x y"]).unwrap(),
            r#"app.exe /c "x y""#
        );
    }

    #[test]
    fn the_environment_block_is_sorted_and_ends_twice() {
        let env = vec![
            ("b".to_string(), "2".to_string()),
            ("A".to_string(), "1".to_string()),
        ];
        let block = String::from_utf16(&env_block(&env).unwrap()).unwrap();
        assert_eq!(block, "A=1\0b=2\0\0");
        assert!(env_block(&[("A=B".into(), "1".into())]).is_err());
        assert_eq!(env_block(&[]).unwrap(), [0, 0]);
    }
}
