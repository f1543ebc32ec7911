//! The Windows Service Control Manager: creating, configuring, starting,
//! stopping and deleting a service (through the `windows-service` crate),
//! and running as one (the dispatcher, the control handler, status
//! reports). Services belong to the machine: there is no user scope.
//!
//! An installer's facts ([`Service::properties`]) and its name
//! ([`Service::generator`]) are kept as string values under the service's
//! `Parameters` registry key, where Windows keeps a service's own settings.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

use crate::{Error, ErrorKind, Found, InstallOptions, Installed, Scope, Service, Shutdown, Status};

/// The value naming who installed a service.
const GENERATOR_VALUE: &str = "Generator";
/// Properties are kept as `Property.NAME` values.
const PROPERTY_PREFIX: &str = "Property.";
/// How long install and uninstall wait for a service to start or stop.
const SETTLE: Duration = Duration::from_secs(60);

/// A known folder's path (`SHGetKnownFolderPath`).
fn known_folder(id: &windows_sys::core::GUID) -> Option<PathBuf> {
    use std::os::windows::ffi::OsStringExt;
    use windows_sys::Win32::System::Com::CoTaskMemFree;
    use windows_sys::Win32::UI::Shell::SHGetKnownFolderPath;
    let mut path: *mut u16 = std::ptr::null_mut();
    // SAFETY: a folder id, no token (this user), and a place for the path,
    // freed below whatever the outcome.
    let rc = unsafe { SHGetKnownFolderPath(id, 0, std::ptr::null_mut(), &mut path) };
    let found = (rc >= 0 && !path.is_null()).then(|| {
        // SAFETY: a NUL-terminated string the call allocated.
        unsafe {
            let len = (0..).take_while(|&i| *path.add(i) != 0).count();
            PathBuf::from(OsString::from_wide(std::slice::from_raw_parts(path, len)))
        }
    });
    // SAFETY: allocated by the call (or null), freed once.
    unsafe { CoTaskMemFree(path.cast()) };
    found.filter(|p| p.is_absolute())
}

/// `%ProgramData%`, as the system knows it (`C:\ProgramData`).
pub(crate) fn program_data() -> PathBuf {
    known_folder(&windows_sys::Win32::UI::Shell::FOLDERID_ProgramData)
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
}

/// This user's `%LOCALAPPDATA%`.
pub(crate) fn local_app_data() -> Option<PathBuf> {
    known_folder(&windows_sys::Win32::UI::Shell::FOLDERID_LocalAppData)
}

/// This process runs elevated (an administrator's full token, or SYSTEM).
pub(crate) fn is_elevated() -> bool {
    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
    use windows_sys::Win32::Security::{
        GetTokenInformation, TokenElevation, TOKEN_ELEVATION, TOKEN_QUERY,
    };
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: this process's pseudo-handle and a place for the token,
    // closed below.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return false;
    }
    let mut elevation = TOKEN_ELEVATION::default();
    let mut len = 0u32;
    // SAFETY: an open token and a structure of the size given.
    let asked = unsafe {
        GetTokenInformation(
            token,
            TokenElevation,
            (&mut elevation as *mut TOKEN_ELEVATION).cast(),
            std::mem::size_of::<TOKEN_ELEVATION>() as u32,
            &mut len,
        )
    };
    // SAFETY: opened above, closed once.
    unsafe { CloseHandle(token) };
    asked != 0 && elevation.TokenIsElevated != 0
}

fn machine_only(scope: Scope) -> Result<(), Error> {
    match scope {
        Scope::System => Ok(()),
        Scope::User => Err(Error::new(
            ErrorKind::Invalid,
            "Windows services belong to the machine: install without --user",
        )),
    }
}

fn winapi(what: &str, e: windows_service::Error) -> Error {
    let denied = matches!(&e, windows_service::Error::Winapi(io) if io.raw_os_error() == Some(5));
    if denied {
        return Error::new(
            ErrorKind::NotPermitted,
            format!("cannot {what}: access is denied; run it from an elevated prompt (Run as administrator)"),
        );
    }
    let why = match &e {
        windows_service::Error::Winapi(io) => io.to_string(),
        other => other.to_string(),
    };
    Error::new(ErrorKind::Failed, format!("cannot {what}: {why}"))
}

fn is_missing(e: &windows_service::Error) -> bool {
    // ERROR_SERVICE_DOES_NOT_EXIST
    matches!(e, windows_service::Error::Winapi(io) if io.raw_os_error() == Some(1060))
}

fn manager(access: ServiceManagerAccess) -> Result<ServiceManager, Error> {
    ServiceManager::local_computer(None::<&str>, access)
        .map_err(|e| winapi("open the Service Control Manager", e))
}

fn parameters_key(name: &str) -> String {
    format!(r"SYSTEM\CurrentControlSet\Services\{name}\Parameters")
}

/// Where the Application event log keeps the source of the service `name`.
fn event_source_key(name: &str) -> String {
    format!(r"SYSTEM\CurrentControlSet\Services\EventLog\Application\{name}")
}

/// Registers the service's name as a source of the Application event log.
/// Its messages are Windows' own `EventCreate.exe` message table, whose
/// event ids 1 to 1000 each read as their one string (what `eventcreate`
/// registers for a source of its own), so that Event Viewer shows the text
/// as it is. Where that file is missing, `program` stands in (Event Viewer
/// then prefixes the text with a note that the description is missing).
fn register_event_source(name: &str, program: &std::path::Path) -> std::io::Result<()> {
    let key = event_source_key(name);
    let messages = known_folder(&windows_sys::Win32::UI::Shell::FOLDERID_System)
        .map(|system| system.join("EventCreate.exe"))
        .filter(|file| file.is_file())
        .unwrap_or_else(|| program.to_path_buf());
    registry::set(&key, "EventMessageFile", &messages.to_string_lossy())?;
    registry::set_dword(&key, "CustomSource", 1)?;
    // Error, warning and information.
    registry::set_dword(&key, "TypesSupported", 7)
}

/// The SCM's name for an account: the built-in service accounts by their
/// short names; `None` (and `LocalSystem`) is LocalSystem.
fn account_name(account: Option<&str>) -> Option<String> {
    let account = account?;
    if account.eq_ignore_ascii_case("LocalSystem") {
        return None;
    }
    Some(
        match account.to_ascii_lowercase().as_str() {
            "localservice" => r"NT AUTHORITY\LocalService",
            "networkservice" => r"NT AUTHORITY\NetworkService",
            _ => account,
        }
        .to_string(),
    )
}

/// An account's SID as a string (`S-1-5-19` for LocalService), asked of
/// the system by name (`.\\user` is a user of this machine).
fn account_sid(account: &str) -> Result<String, Error> {
    use windows_sys::Win32::Foundation::LocalFree;
    use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
    use windows_sys::Win32::Security::{LookupAccountNameW, SID_NAME_USE};
    let plain = account.strip_prefix(r".\").unwrap_or(account);
    let name: Vec<u16> = plain.encode_utf16().chain(Some(0)).collect();
    let mut sid = vec![0u8; 68];
    let mut domain = vec![0u16; 256];
    let mut kind: SID_NAME_USE = 0;
    let unknown = |e: std::io::Error| {
        Error::new(
            ErrorKind::Invalid,
            format!("cannot find the account {account:?}: {e}"),
        )
    };
    loop {
        let mut sid_len = sid.len() as u32;
        let mut domain_len = domain.len() as u32;
        // SAFETY: a NUL-terminated name and buffers of the sizes given.
        let found = unsafe {
            LookupAccountNameW(
                std::ptr::null(),
                name.as_ptr(),
                sid.as_mut_ptr().cast(),
                &mut sid_len,
                domain.as_mut_ptr(),
                &mut domain_len,
                &mut kind,
            )
        };
        if found != 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        // ERROR_INSUFFICIENT_BUFFER: the sizes needed are in the lengths.
        if e.raw_os_error() != Some(122)
            || sid_len as usize <= sid.len() && domain_len as usize <= domain.len()
        {
            return Err(unknown(e));
        }
        sid.resize(sid.len().max(sid_len as usize), 0);
        domain.resize(domain.len().max(domain_len as usize), 0);
    }
    let mut text: *mut u16 = std::ptr::null_mut();
    // SAFETY: the SID the call filled in, and a place for its string.
    if unsafe { ConvertSidToStringSidW(sid.as_mut_ptr().cast(), &mut text) } == 0 {
        return Err(unknown(std::io::Error::last_os_error()));
    }
    // SAFETY: a NUL-terminated string the call allocated, freed once.
    let sid = unsafe {
        let len = (0..).take_while(|&i| *text.add(i) != 0).count();
        let s = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
        LocalFree(text.cast());
        s
    };
    Ok(sid)
}

/// The access list a service's state folder gets when the service runs as
/// an account other than LocalSystem: owned by Administrators; SYSTEM,
/// Administrators and the account, nobody else, nothing inherited.
fn state_folder_sddl(account_sid: &str) -> String {
    format!("O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;{account_sid})")
}

/// The service's state folder ([`Service::dirs`]), made ready for its
/// account as systemd's `StateDirectory=` is for `User=`: made if missing
/// and given [`state_folder_sddl`]. LocalSystem needs nothing: it may use
/// any folder.
fn prepare_state_folder(service: &Service) -> Result<(), Error> {
    use windows_sys::Win32::Security::{
        SetFileSecurityW, DACL_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION,
        PROTECTED_DACL_SECURITY_INFORMATION,
    };
    let (Some(base), Some(account)) = (&service.dirs, account_name(service.account.as_deref()))
    else {
        return Ok(());
    };
    let state = crate::dirs(base, service.scope)?.state;
    let failed = |what: &str, e: std::io::Error| {
        Error::new(
            ErrorKind::Failed,
            format!("cannot {what} {} for {account}: {e}", state.display()),
        )
    };
    let sid = account_sid(&account)?;
    make_folders(&state).map_err(|e| failed("make", e))?;
    let sd = Sd::from(&state_folder_sddl(&sid)).map_err(|e| failed("describe the access of", e))?;
    let path = wide(state.as_os_str());
    // SAFETY: a NUL-terminated path and a descriptor that outlives the call.
    let set = unsafe {
        SetFileSecurityW(
            path.as_ptr(),
            OWNER_SECURITY_INFORMATION
                | DACL_SECURITY_INFORMATION
                | PROTECTED_DACL_SECURITY_INFORMATION,
            sd.0,
        )
    };
    if set == 0 {
        return Err(failed(
            "give the access list of",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// The access list of the folders install makes above a state folder
/// (`%ProgramData%\ward`): SYSTEM and Administrators may change them,
/// everyone else only read. Not `%ProgramData%`'s own, which lets every
/// user make folders: in `ward` that would let them make another
/// service's state folder before install does.
const PARENT_SDDL: &str = "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;AU)";

/// Makes `path` and whatever folders above it are missing, those with
/// [`PARENT_SDDL`].
fn make_folders(path: &std::path::Path) -> std::io::Result<()> {
    use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
    use windows_sys::Win32::Storage::FileSystem::CreateDirectoryW;
    if path.as_os_str().is_empty() || path.exists() {
        return Ok(());
    }
    let parent = path.parent();
    if let Some(parent) = parent {
        make_folders(parent)?;
    }
    let sd = Sd::from(PARENT_SDDL)?;
    let attrs = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd.0,
        bInheritHandle: 0,
    };
    let name = wide(path.as_os_str());
    // SAFETY: a NUL-terminated path and attributes that outlive the call.
    if unsafe { CreateDirectoryW(name.as_ptr(), &attrs) } == 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(e);
        }
    }
    Ok(())
}

/// A security descriptor made from SDDL, freed when dropped.
struct Sd(windows_sys::Win32::Security::PSECURITY_DESCRIPTOR);

impl Sd {
    fn from(sddl: &str) -> std::io::Result<Sd> {
        use windows_sys::Win32::Security::Authorization::{
            ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
        };
        let text = wide(OsStr::new(sddl));
        let mut sd = std::ptr::null_mut();
        // SAFETY: a NUL-terminated string and a place for the descriptor.
        if unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                text.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            )
        } == 0
        {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Sd(sd))
    }
}

impl Drop for Sd {
    fn drop(&mut self) {
        // SAFETY: allocated by the conversion, freed once.
        unsafe { windows_sys::Win32::Foundation::LocalFree(self.0.cast()) };
    }
}

/// A NUL-terminated UTF-16 string for the system's calls.
fn wide(text: &OsStr) -> Vec<u16> {
    use std::os::windows::ffi::OsStrExt;
    text.encode_wide().chain(Some(0)).collect()
}

/// What [`install`] creates, in words (`sc.exe create` would say the same).
pub(crate) fn render(service: &Service) -> String {
    let mut command = vec![format!("\"{}\"", service.program.display())];
    command.extend(service.args.iter().map(|a| {
        if a.contains([' ', '"']) {
            format!("\"{}\"", a.replace('"', "\\\""))
        } else {
            a.clone()
        }
    }));
    let mut text = format!(
        "service {:?} (Windows Service Control Manager)\n  command: {}\n  start: {}\n  \
         account: {}\n  on failure: restart after 1s, 5s, 30s; the count reset after a day\n  \
         description: {}\n  event log source: {:?} (Application)\n",
        service.name,
        command.join(" "),
        if service.delayed_start {
            "automatic (delayed)"
        } else {
            "automatic"
        },
        account_name(service.account.as_deref()).unwrap_or_else(|| "LocalSystem".into()),
        service.description,
        service.name,
    );
    if let (Some(base), Some(account)) = (&service.dirs, account_name(service.account.as_deref())) {
        let state = crate::dirs(base, service.scope)
            .map(|d| d.state.display().to_string())
            .unwrap_or_else(|_| base.clone());
        text.push_str(&format!(
            "  state folder: {state}, for SYSTEM, Administrators and {account} only\n"
        ));
    }
    for (key, value) in &service.properties {
        text.push_str(&format!("  {key}: {value}\n"));
    }
    text
}

/// Creates the service (automatic start; restarted by the SCM after 1 s,
/// 5 s, 30 s, the count reset after a day), records its facts, and starts
/// it unless told not to, waiting until it runs. A failed step deletes
/// what was created.
pub(crate) fn install(service: &Service, options: &InstallOptions) -> Result<Installed, Error> {
    machine_only(service.scope)?;
    // What the SCM has no place for is refused, not dropped.
    let unsupported = [
        (!service.env.is_empty(), "environment variables"),
        (service.working_dir.is_some(), "a working directory"),
        (
            service.restart != crate::Restart::OnFailure,
            "a restart policy other than on-failure",
        ),
    ];
    if let Some((_, what)) = unsupported.iter().find(|(asked, _)| *asked) {
        return Err(Error::new(
            ErrorKind::Invalid,
            format!("a Windows service cannot be given {what} here"),
        ));
    }
    let scm = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
    // Before anything is created: an account that does not exist stops
    // the install here.
    prepare_state_folder(service)?;
    let replaced = match scm.open_service(&service.name, ServiceAccess::QUERY_STATUS) {
        Ok(_) => {
            let ours = registry::get(&parameters_key(&service.name), GENERATOR_VALUE).as_deref()
                == Some(service.generator.as_str());
            if !ours && !options.force {
                return Err(Error::new(
                    ErrorKind::Exists,
                    format!(
                        "a service named {:?} exists and was not installed by {}: choose another \
                         name, or replace it with --force",
                        service.name, service.generator
                    ),
                ));
            }
            remove(&scm, &service.name)?;
            true
        }
        Err(e) if is_missing(&e) => false,
        Err(e) => return Err(winapi("look for an existing service", e)),
    };
    let info = ServiceInfo {
        name: OsString::from(&service.name),
        display_name: OsString::from(&service.name),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: service.program.clone(),
        launch_arguments: service.args.iter().map(OsString::from).collect(),
        dependencies: Vec::new(),
        account_name: account_name(service.account.as_deref()).map(OsString::from),
        account_password: service.password.as_ref().map(OsString::from),
    };
    let access = ServiceAccess::QUERY_STATUS
        | ServiceAccess::START
        | ServiceAccess::STOP
        | ServiceAccess::DELETE
        | ServiceAccess::CHANGE_CONFIG;
    let created = scm
        .create_service(&info, access)
        .map_err(|e| winapi("create the service", e))?;
    let undo = |err: Error| -> Error {
        let _ = created.delete();
        let _ = registry::delete_tree(&event_source_key(&service.name));
        err
    };
    created
        .set_description(&service.description)
        .map_err(|e| undo(winapi("describe the service", e)))?;
    created
        .update_failure_actions(failure_actions())
        .map_err(|e| undo(winapi("set the service's failure actions", e)))?;
    if service.delayed_start {
        created
            .set_delayed_auto_start(true)
            .map_err(|e| undo(winapi("make the service's start a delayed one", e)))?;
    }
    // At a system shutdown, the SCM waits this long for the service to stop
    // (it accepts Preshutdown for that).
    if let Some(timeout) = service.stop_timeout {
        created
            .set_preshutdown_timeout(timeout)
            .map_err(|e| undo(winapi("set the service's shutdown time", e)))?;
    }
    let key = parameters_key(&service.name);
    let mut values = vec![(GENERATOR_VALUE.to_string(), service.generator.clone())];
    values.extend(
        service
            .properties
            .iter()
            .map(|(k, v)| (format!("{PROPERTY_PREFIX}{k}"), v.clone())),
    );
    for (value, data) in &values {
        registry::set(&key, value, data).map_err(|e| {
            undo(Error::new(
                ErrorKind::Failed,
                format!("cannot record the service's {value} in HKLM\\{key}: {e}"),
            ))
        })?;
    }
    register_event_source(&service.name, &service.program).map_err(|e| {
        undo(Error::new(
            ErrorKind::Failed,
            format!(
                "cannot register the event log source {:?} in HKLM\\{}: {e}",
                service.name,
                event_source_key(&service.name)
            ),
        ))
    })?;
    if options.start {
        created
            .start::<&OsStr>(&[])
            .map_err(|e| undo(winapi("start the service", e)))?;
        wait_for(&created, ServiceState::Running).map_err(|e| {
            let _ = created.stop();
            undo(e)
        })?;
    }
    Ok(Installed {
        file: PathBuf::from(format!(
            r"HKLM\SYSTEM\CurrentControlSet\Services\{}",
            service.name
        )),
        replaced,
        started: options.start,
    })
}

/// What the SCM does when the service fails: start it again after 1 s, then
/// 5 s, then 30 s (and 30 s for every failure after), the count reset
/// after a day without one.
fn failure_actions() -> ServiceFailureActions {
    let restart = |secs| ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: Duration::from_secs(secs),
    };
    ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(24 * 3600)),
        reboot_msg: None,
        command: None,
        actions: Some(vec![restart(1), restart(5), restart(30)]),
    }
}

/// Polls until the service is in `state` (Wine's `net start` does not wait,
/// and neither does `StartService`), at most [`SETTLE`].
fn wait_for(service: &windows_service::service::Service, state: ServiceState) -> Result<(), Error> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let status = service
            .query_status()
            .map_err(|e| winapi("ask how the service is", e))?;
        if status.current_state == state {
            return Ok(());
        }
        if status.current_state == ServiceState::Stopped && state != ServiceState::Stopped {
            return Err(Error::new(
                ErrorKind::Failed,
                format!("the service stopped as it started ({:?})", status.exit_code),
            ));
        }
        if Instant::now() >= deadline {
            return Err(Error::new(
                ErrorKind::Failed,
                format!(
                    "the service is still {:?} after {}s",
                    status.current_state,
                    SETTLE.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops the service (waiting until it has) and deletes it.
fn remove(scm: &ServiceManager, name: &str) -> Result<(), Error> {
    let service = scm
        .open_service(
            name,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
        )
        .map_err(|e| winapi("open the service", e))?;
    let status = service
        .query_status()
        .map_err(|e| winapi("ask how the service is", e))?;
    if status.current_state != ServiceState::Stopped {
        service.stop().map_err(|e| winapi("stop the service", e))?;
        wait_for(&service, ServiceState::Stopped)?;
    }
    service
        .delete()
        .map_err(|e| winapi("delete the service", e))
}

pub(crate) fn uninstall(
    name: &str,
    scope: Scope,
    generator: &str,
    force: bool,
) -> Result<PathBuf, Error> {
    machine_only(scope)?;
    let scm = manager(ServiceManagerAccess::CONNECT)?;
    match scm.open_service(name, ServiceAccess::QUERY_STATUS) {
        Ok(_) => {}
        Err(e) if is_missing(&e) => {
            return Err(Error::new(
                ErrorKind::NotInstalled,
                format!("there is no service {name:?}"),
            ))
        }
        Err(e) => return Err(winapi("open the service", e)),
    }
    let ours = registry::get(&parameters_key(name), GENERATOR_VALUE).as_deref() == Some(generator);
    if !ours && !force {
        return Err(Error::new(
            ErrorKind::Exists,
            format!("the service {name:?} was not installed by {generator}: it is not removed (--force removes it)"),
        ));
    }
    remove(&scm, name)?;
    let _ = registry::delete_tree(&event_source_key(name));
    Ok(PathBuf::from(format!(
        r"HKLM\SYSTEM\CurrentControlSet\Services\{name}"
    )))
}

pub(crate) fn status(name: &str, scope: Scope) -> Result<Status, Error> {
    machine_only(scope)?;
    let scm = manager(ServiceManagerAccess::CONNECT)?;
    let service = scm
        .open_service(
            name,
            ServiceAccess::QUERY_STATUS | ServiceAccess::QUERY_CONFIG,
        )
        .map_err(|e| {
            if is_missing(&e) {
                Error::new(
                    ErrorKind::NotInstalled,
                    format!("there is no service {name:?}"),
                )
            } else {
                winapi("open the service", e)
            }
        })?;
    let now = service
        .query_status()
        .map_err(|e| winapi("ask how the service is", e))?;
    let config = service
        .query_config()
        .map_err(|e| winapi("read the service's configuration", e))?;
    let state = match now.current_state {
        ServiceState::Stopped => "stopped",
        ServiceState::StartPending => "starting",
        ServiceState::StopPending => "stopping",
        ServiceState::Running => "running",
        ServiceState::ContinuePending => "continuing",
        ServiceState::PausePending => "pausing",
        ServiceState::Paused => "paused",
    };
    let restart_delays = service
        .get_failure_actions()
        .ok()
        .and_then(|f| f.actions)
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.action_type == ServiceActionType::Restart)
        .map(|a| a.delay)
        .collect();
    Ok(Status {
        state: state.into(),
        text: None,
        pid: now.process_id,
        enabled: config.start_type == ServiceStartType::AutoStart,
        restart_delays,
    })
}

pub(crate) fn find(name: &str, scope: Scope, generator: &str) -> Result<Option<Found>, Error> {
    if scope == Scope::User {
        return Ok(None);
    }
    let key = parameters_key(name);
    if registry::get(&key, GENERATOR_VALUE).as_deref() != Some(generator) {
        return Ok(None);
    }
    Ok(Some(Found {
        name: name.to_string(),
        scope,
        properties: registry::values(&key)
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(PROPERTY_PREFIX)?.to_string(), v)))
            .collect(),
        untouched: true,
    }))
}

pub(crate) fn list(scope: Scope, generator: &str) -> Vec<Found> {
    if scope == Scope::User {
        return Vec::new();
    }
    let mut found: Vec<Found> = registry::subkeys(r"SYSTEM\CurrentControlSet\Services")
        .into_iter()
        .filter_map(|name| find(&name, scope, generator).ok().flatten())
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

// ----- running as a service -----

/// The status reports of a running service, shared by its notifier and the
/// control handler.
pub(crate) struct Reporter {
    handle: service_control_handler::ServiceStatusHandle,
    checkpoint: Mutex<u32>,
    /// What Stopped reports: 0, or the service's own error code.
    exit_code: Mutex<u32>,
    /// The service's name: its event log source.
    source: String,
    /// What was last reported.
    state: Mutex<ServiceState>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reporter")
    }
}

impl Reporter {
    fn report(&self, state: ServiceState, wait_hint: Duration) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
        let pending = matches!(
            state,
            ServiceState::StartPending | ServiceState::StopPending
        );
        let checkpoint = {
            let mut n = self.checkpoint.lock().unwrap_or_else(|e| e.into_inner());
            *n = if pending { *n + 1 } else { 0 };
            *n
        };
        let _ = self.handle.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: if state == ServiceState::Running {
                ServiceControlAccept::STOP
                    | ServiceControlAccept::SHUTDOWN
                    | ServiceControlAccept::PRESHUTDOWN
                    | ServiceControlAccept::PARAM_CHANGE
            } else {
                ServiceControlAccept::empty()
            },
            exit_code: ServiceExitCode::Win32(0),
            checkpoint,
            wait_hint,
            process_id: None,
        });
    }

    /// Running (what `Notifier::ready` says).
    pub(crate) fn running(&self) {
        self.report(ServiceState::Running, Duration::ZERO);
    }

    /// Stopping, with more time asked for (what `Notifier::stopping` and
    /// each watchdog ping while stopping say).
    pub(crate) fn stopping(&self) {
        self.report(ServiceState::StopPending, Duration::from_secs(30));
    }

    /// Still starting, or still stopping: the checkpoint moves on.
    pub(crate) fn progress(&self, stopping: bool) {
        let state = if stopping {
            ServiceState::StopPending
        } else {
            ServiceState::StartPending
        };
        self.report(state, Duration::from_secs(30));
    }

    /// While starting or stopping, the checkpoint moves on (the program
    /// is still at it); otherwise nothing.
    pub(crate) fn tick(&self) {
        let state = *self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state {
            ServiceState::StartPending => self.progress(false),
            ServiceState::StopPending => self.progress(true),
            _ => {}
        }
    }

    /// What Stopped will report: the service's own error `code` (0: none).
    pub(crate) fn set_exit_code(&self, code: u32) {
        *self.exit_code.lock().unwrap_or_else(|e| e.into_inner()) = code;
    }

    /// Writes `text` to the Application event log, under the service's name.
    pub(crate) fn event(&self, level: crate::Level, text: &str) {
        event_log::report(&self.source, level, text);
    }

    fn stopped(&self) {
        let code = *self.exit_code.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self.handle.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: ServiceState::Stopped,
            controls_accepted: ServiceControlAccept::empty(),
            exit_code: if code == 0 {
                ServiceExitCode::Win32(0)
            } else {
                ServiceExitCode::ServiceSpecific(code)
            },
            checkpoint: 0,
            wait_hint: Duration::ZERO,
            process_id: None,
        });
    }
}

type Main = Box<dyn FnOnce(crate::Context) -> Box<dyn std::any::Any + Send> + Send>;

/// What the dispatcher's thread runs: set once, by [`run`].
static MAIN: OnceLock<Mutex<Option<Main>>> = OnceLock::new();
/// What `main` returned, for [`run`] to hand back.
static RESULT: OnceLock<Mutex<Option<Box<dyn std::any::Any + Send>>>> = OnceLock::new();

windows_service::define_windows_service!(ffi_service_main, service_main);

fn service_main(arguments: Vec<OsString>) {
    let Some(main) = MAIN
        .get()
        .and_then(|m| m.lock().unwrap_or_else(|e| e.into_inner()).take())
    else {
        return;
    };
    // The SCM passes the service's name first.
    let source = arguments
        .first()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "service".into());
    let shutdown = Shutdown::new();
    let on_control = shutdown.clone();
    let (reload, reloads) = std::sync::mpsc::channel();
    let reporter: Arc<OnceLock<Arc<Reporter>>> = Arc::default();
    let handler_reporter = Arc::clone(&reporter);
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown | ServiceControl::Preshutdown => {
            if let Some(r) = handler_reporter.get() {
                r.stopping();
            }
            on_control.fire();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::ParamChange => {
            let _ = reload.send(());
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    // The name is not checked for a service of its own process.
    let Ok(handle) = service_control_handler::register("", handler) else {
        return;
    };
    let shared = Arc::new(Reporter {
        handle,
        checkpoint: Mutex::new(0),
        exit_code: Mutex::new(0),
        source,
        state: Mutex::new(ServiceState::StartPending),
    });
    let _ = reporter.set(Arc::clone(&shared));
    shared.progress(false);
    let result = main(crate::Context {
        shutdown,
        notifier: crate::Notifier::scm(Arc::clone(&shared)),
        reloads,
    });
    if let Some(slot) = RESULT.get() {
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
    }
    shared.stopped();
}

/// Runs `main` under the Service Control Manager when it started this
/// process, and as a console program otherwise (Ctrl-C and Ctrl-Break fire
/// the token, unless `console_events` is false: the program answers them
/// itself).
pub(crate) fn run<T: Send + 'static>(
    console_events: bool,
    main: impl FnOnce(crate::Context) -> T + Send + 'static,
) -> T {
    let boxed: Main = Box::new(move |ctx| Box::new(main(ctx)) as Box<dyn std::any::Any + Send>);
    let _ = MAIN.set(Mutex::new(Some(boxed)));
    let _ = RESULT.set(Mutex::new(None));
    match windows_service::service_dispatcher::start("", ffi_service_main) {
        Ok(()) => {}
        // ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: not started by the SCM.
        Err(windows_service::Error::Winapi(e)) if e.raw_os_error() == Some(1063) => {
            let main = MAIN
                .get()
                .and_then(|m| m.lock().unwrap_or_else(|e| e.into_inner()).take());
            if let Some(main) = main {
                let (_, reloads) = std::sync::mpsc::channel();
                let result = main(crate::Context {
                    shutdown: if console_events {
                        Shutdown::on_signals()
                    } else {
                        Shutdown::new()
                    },
                    notifier: crate::Notifier::none(),
                    reloads,
                });
                if let Ok(result) = result.downcast::<T>() {
                    return *result;
                }
            }
            eprintln!("the program did not run");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("cannot start the service dispatcher: {e}");
            std::process::exit(1);
        }
    }
    let result = RESULT
        .get()
        .and_then(|r| r.lock().unwrap_or_else(|e| e.into_inner()).take());
    match result.map(|r| r.downcast::<T>()) {
        Some(Ok(result)) => *result,
        // The SCM never called service_main (it could not register its
        // handler): nothing ran.
        _ => {
            eprintln!("the service did not run");
            std::process::exit(1);
        }
    }
}

/// The Application event log.
mod event_log {
    use windows_sys::Win32::System::EventLog::{
        DeregisterEventSource, RegisterEventSourceW, ReportEventW, EVENTLOG_ERROR_TYPE,
        EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE,
    };

    /// Writes `text` as one event of `source` (event id 1, the text its
    /// one string). Failing to is not an error anyone could act on.
    pub fn report(source: &str, level: crate::Level, text: &str) {
        let name: Vec<u16> = source.encode_utf16().chain(Some(0)).collect();
        let text: Vec<u16> = text.encode_utf16().chain(Some(0)).collect();
        let kind = match level {
            crate::Level::Info => EVENTLOG_INFORMATION_TYPE,
            crate::Level::Warning => EVENTLOG_WARNING_TYPE,
            crate::Level::Error => EVENTLOG_ERROR_TYPE,
        };
        // SAFETY: NUL-terminated strings alive across the calls; the
        // source handle is closed once.
        unsafe {
            let handle = RegisterEventSourceW(std::ptr::null(), name.as_ptr());
            if handle.is_null() {
                return;
            }
            let strings = [text.as_ptr()];
            ReportEventW(
                handle,
                kind,
                0,
                1,
                std::ptr::null_mut(),
                1,
                0,
                strings.as_ptr(),
                std::ptr::null(),
            );
            DeregisterEventSource(handle);
        }
    }
}

/// String values of the registry (`HKEY_LOCAL_MACHINE`).
mod registry {
    use std::ffi::OsString;
    use std::os::windows::ffi::OsStringExt;
    use windows_sys::Win32::Foundation::{
        ERROR_FILE_NOT_FOUND, ERROR_NO_MORE_ITEMS, ERROR_SUCCESS,
    };
    use windows_sys::Win32::System::Registry::{
        RegCloseKey, RegDeleteTreeW, RegEnumKeyExW, RegEnumValueW, RegGetValueW, RegOpenKeyExW,
        RegSetKeyValueW, HKEY, HKEY_LOCAL_MACHINE, KEY_READ, REG_DWORD, REG_SZ, RRF_RT_REG_SZ,
    };

    fn wide(text: &str) -> Vec<u16> {
        super::wide(std::ffi::OsStr::new(text))
    }

    fn string(buf: &[u16]) -> String {
        let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
        OsString::from_wide(&buf[..end])
            .to_string_lossy()
            .into_owned()
    }

    /// Sets `key\value` to `data`, creating the key.
    pub fn set(key: &str, value: &str, data: &str) -> std::io::Result<()> {
        let data = wide(data);
        let bytes: Vec<u8> = data.iter().flat_map(|c| c.to_le_bytes()).collect();
        set_raw(key, value, REG_SZ, &bytes)
    }

    /// Sets `key\value` to the number `data` (a REG_DWORD), creating
    /// the key.
    pub fn set_dword(key: &str, value: &str, data: u32) -> std::io::Result<()> {
        set_raw(key, value, REG_DWORD, &data.to_le_bytes())
    }

    /// Sets `key\value` to `data` of the registry type `kind`.
    fn set_raw(key: &str, value: &str, kind: u32, data: &[u8]) -> std::io::Result<()> {
        let (key, value) = (wide(key), wide(value));
        // SAFETY: NUL-terminated key and value; `data.len()` bytes of data,
        // alive for the call.
        let rc = unsafe {
            RegSetKeyValueW(
                HKEY_LOCAL_MACHINE,
                key.as_ptr(),
                value.as_ptr(),
                kind,
                data.as_ptr().cast(),
                data.len() as u32,
            )
        };
        if rc == ERROR_SUCCESS {
            Ok(())
        } else {
            Err(std::io::Error::from_raw_os_error(rc as i32))
        }
    }

    /// Removes `key` and everything below it (nothing there: no error).
    pub fn delete_tree(key: &str) -> std::io::Result<()> {
        let key = wide(key);
        // SAFETY: a NUL-terminated key.
        let rc = unsafe { RegDeleteTreeW(HKEY_LOCAL_MACHINE, key.as_ptr()) };
        if rc == ERROR_SUCCESS || rc == ERROR_FILE_NOT_FOUND {
            Ok(())
        } else {
            Err(std::io::Error::from_raw_os_error(rc as i32))
        }
    }

    /// `key\value`, if it is a string.
    pub fn get(key: &str, value: &str) -> Option<String> {
        let (key, value) = (wide(key), wide(value));
        let mut buf = vec![0u16; 4096];
        let mut size = (buf.len() * 2) as u32;
        // SAFETY: key and value are NUL-terminated; buf holds `size` bytes.
        let rc = unsafe {
            RegGetValueW(
                HKEY_LOCAL_MACHINE,
                key.as_ptr(),
                value.as_ptr(),
                RRF_RT_REG_SZ,
                std::ptr::null_mut(),
                buf.as_mut_ptr().cast(),
                &mut size,
            )
        };
        (rc == ERROR_SUCCESS).then(|| string(&buf))
    }

    fn open(key: &str) -> Option<HKEY> {
        let key = wide(key);
        let mut handle: HKEY = std::ptr::null_mut();
        // SAFETY: key is NUL-terminated; handle receives the opened key.
        let rc =
            unsafe { RegOpenKeyExW(HKEY_LOCAL_MACHINE, key.as_ptr(), 0, KEY_READ, &mut handle) };
        (rc == ERROR_SUCCESS).then_some(handle)
    }

    /// The names `enumerate(handle, index, buf, len)` gives for index 0,
    /// 1, … of the open `key` (its subkeys, or its values), until it says
    /// there are no more.
    fn names(key: &str, enumerate: impl Fn(HKEY, u32, *mut u16, *mut u32) -> u32) -> Vec<String> {
        let Some(handle) = open(key) else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for index in 0.. {
            let mut buf = [0u16; 256];
            let mut len = buf.len() as u32;
            let rc = enumerate(handle, index, buf.as_mut_ptr(), &mut len);
            if rc == ERROR_NO_MORE_ITEMS || rc != ERROR_SUCCESS {
                break;
            }
            names.push(string(&buf[..(len as usize).min(buf.len())]));
        }
        // SAFETY: handle was opened above and is closed once.
        unsafe { RegCloseKey(handle) };
        names
    }

    /// The names of `key`'s subkeys.
    pub fn subkeys(key: &str) -> Vec<String> {
        names(key, |handle, index, buf, len| {
            // SAFETY: handle is open; buf holds `*len` characters; the
            // class and time are not asked for.
            unsafe {
                RegEnumKeyExW(
                    handle,
                    index,
                    buf,
                    len,
                    std::ptr::null(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            }
        })
    }

    /// Every string value of `key`, by name.
    pub fn values(key: &str) -> Vec<(String, String)> {
        let names = names(key, |handle, index, buf, len| {
            // SAFETY: handle is open; buf holds `*len` characters; the
            // type and data are not asked for.
            unsafe {
                RegEnumValueW(
                    handle,
                    index,
                    buf,
                    len,
                    std::ptr::null(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            }
        });
        names
            .into_iter()
            .filter_map(|name| Some((name.clone(), get(key, &name)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wine keeps no failure actions (it has no crash recovery), so what
    /// install asks for is checked here, as the SCM receives it.
    #[test]
    fn a_failed_service_is_restarted_after_1_5_and_30_seconds() {
        let actions = failure_actions();
        let raw: Vec<(i32, u32)> = actions
            .actions
            .as_ref()
            .unwrap()
            .iter()
            .map(|a| (a.to_raw().Type, a.to_raw().Delay))
            .collect();
        let restart = ServiceActionType::Restart.to_raw();
        assert_eq!(raw, [(restart, 1000), (restart, 5000), (restart, 30000)]);
        assert_eq!(actions.reset_period.to_raw(), 24 * 3600);
    }

    #[test]
    fn the_description_of_a_service_names_its_command_quoted() {
        let mut s = Service::new(
            "app",
            std::path::absolute("/opt/my app/app.exe").unwrap(),
            Scope::System,
        )
        .args(["--name", "a b"]);
        s.properties = vec![("Ward-Config".into(), "C:\\ward.toml".into())];
        let text = render(&s);
        assert!(text.contains("app.exe\" --name \"a b\""), "{text}");
        assert!(text.contains("restart after 1s, 5s, 30s"), "{text}");
        assert!(text.contains("Ward-Config: C:\\ward.toml"), "{text}");
        assert!(text.contains("start: automatic\n"), "{text}");
        assert!(text.contains("account: LocalSystem"), "{text}");
        assert!(text.contains("event log source: \"app\""), "{text}");
        s.account = Some("networkservice".into());
        s.delayed_start = true;
        let text = render(&s);
        assert!(text.contains("start: automatic (delayed)"), "{text}");
        assert!(
            text.contains(r"account: NT AUTHORITY\NetworkService"),
            "{text}"
        );
    }

    #[test]
    fn a_service_with_an_account_gets_its_state_folder_for_that_account() {
        assert_eq!(
            account_sid(r"NT AUTHORITY\LocalService").unwrap(),
            "S-1-5-19"
        );
        assert_eq!(
            account_sid(r"NT AUTHORITY\NetworkService").unwrap(),
            "S-1-5-20"
        );
        let e = account_sid(r".\no-such-user-here").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(e.message.contains("no-such-user-here"), "{}", e.message);
        assert_eq!(
            state_folder_sddl("S-1-5-19"),
            "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;S-1-5-19)"
        );

        let base = format!("ward-test/acct-{}", std::process::id());
        let mut s = Service::new(
            "acct",
            std::path::absolute("/ward.exe").unwrap(),
            Scope::System,
        );
        s.dirs = Some(base.clone());
        let state = crate::dirs(&base, Scope::System).unwrap().state;
        // LocalSystem may use any folder: nothing is made.
        prepare_state_folder(&s).unwrap();
        assert!(!state.exists());
        assert!(!render(&s).contains("state folder"));
        s.account = Some("LocalService".into());
        let text = render(&s);
        assert!(
            text.contains(&format!(
                "state folder: {}, for SYSTEM, Administrators and NT AUTHORITY\\LocalService only",
                state.display()
            )),
            "{text}"
        );
        prepare_state_folder(&s).unwrap();
        assert!(state.is_dir());
        std::fs::remove_dir_all(state.parent().unwrap()).unwrap();
        // An account that does not exist: said before anything is made.
        s.account = Some(r".\no-such-user-here".into());
        let e = prepare_state_folder(&s).unwrap_err();
        assert!(e.message.contains("no-such-user-here"), "{}", e.message);
        assert!(!state.exists());
    }

    #[test]
    fn accounts_are_named_as_the_scm_knows_them() {
        assert_eq!(account_name(None), None);
        assert_eq!(account_name(Some("LocalSystem")), None);
        assert_eq!(
            account_name(Some("LocalService")).as_deref(),
            Some(r"NT AUTHORITY\LocalService")
        );
        assert_eq!(account_name(Some(r".\app")).as_deref(), Some(r".\app"));
    }

    #[test]
    fn the_machine_s_folders_come_from_the_system_not_the_environment() {
        let before = std::env::var_os("ProgramData");
        std::env::set_var("ProgramData", r"C:\elsewhere");
        let dirs = crate::dirs("ward/web", Scope::System).unwrap();
        if let Some(v) = before {
            std::env::set_var("ProgramData", v);
        }
        assert!(!dirs.state.starts_with(r"C:\elsewhere"), "{dirs:?}");
        assert!(dirs.state.ends_with(r"ward\web"), "{dirs:?}");
        assert_eq!(dirs.logs, dirs.state.join("logs"));
        assert_eq!(
            crate::config_file("ward/web", Scope::System).unwrap(),
            dirs.state.join("web.toml")
        );
    }
}
