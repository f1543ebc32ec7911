//! Windows: ward's directories held open while in use, files opened
//! without following a link (`FILE_OPEN_REPARSE_POINT`) and used
//! only if regular, every file shared for deletion so that a log can be
//! renamed (rotated) while it is open, ward's private directories made
//! with an access list of their own (SYSTEM, Administrators and ward's
//! account, nobody else, nothing inherited), and directories that exist
//! already refused when someone else owns them or may change their
//! entries.
//!
//! Windows' `openat` is `NtCreateFile` with a `RootDirectory`: every file
//! of a [`Dir`] is opened, created, renamed and removed relative to the
//! directory's own handle, as on Unix. That handle is also kept open
//! without `FILE_SHARE_DELETE`, so the directory cannot be renamed or
//! removed (and replaced by a link) while ward uses it. A file named by
//! path (`open_regular`, `append_existing`) is opened the same way,
//! relative to its folder's handle.

use std::fs::File;
use std::io;
use std::os::windows::fs::{FileExt, MetadataExt};
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};

use windows_sys::Win32::Foundation::{LocalFree, HANDLE};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, TokenUser, ACL, PSECURITY_DESCRIPTOR, PSID, SECURITY_ATTRIBUTES,
    TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::Storage::FileSystem::READ_CONTROL;
use windows_sys::Win32::Storage::FileSystem::{
    CreateDirectoryW, CreateFileW, GetFileInformationByHandle, BY_HANDLE_FILE_INFORMATION,
    FILE_ATTRIBUTE_REPARSE_POINT, FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT,
    FILE_LIST_DIRECTORY, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

use super::{context, err, Appending, DirPolicy};

/// The identity of a file: its volume and its index on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    volume: u32,
    index: u64,
}

fn info_of(handle: HANDLE) -> io::Result<BY_HANDLE_FILE_INFORMATION> {
    let mut info = BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: an open handle and a structure to fill.
    if unsafe { GetFileInformationByHandle(handle, &mut info) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info)
}

impl FileId {
    fn of_handle(handle: HANDLE) -> io::Result<FileId> {
        let info = info_of(handle)?;
        Ok(FileId {
            volume: info.dwVolumeSerialNumber,
            index: u64::from(info.nFileIndexHigh) << 32 | u64::from(info.nFileIndexLow),
        })
    }

    /// The identity of an open file.
    pub fn of_file(file: &File) -> io::Result<FileId> {
        FileId::of_handle(file.as_raw_handle() as HANDLE)
    }
}

/// An open, checked directory, held open while ward uses it.
#[derive(Debug)]
pub struct Dir {
    handle: OwnedHandle,
    path: PathBuf,
}

fn wide(s: impl AsRef<std::ffi::OsStr>) -> Vec<u16> {
    use std::os::windows::ffi::OsStrExt;
    s.as_ref().encode_wide().chain(Some(0)).collect()
}

/// Refuses what is not a regular file (a link, a directory, a device, a
/// pipe), naming what it is.
fn ensure_regular(file: &File, path: &Path) -> io::Result<std::fs::Metadata> {
    let meta = file.metadata()?;
    let what = if meta.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        Some("a link (a symbolic link, a junction or another reparse point)")
    } else if meta.is_dir() {
        Some("a directory")
    } else if !meta.is_file() {
        Some("not a regular file")
    } else {
        None
    };
    if let Some(what) = what {
        return Err(err(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is {what}; ward uses only regular files there, and follows no links",
                path.display()
            ),
        ));
    }
    Ok(meta)
}

/// Accounts that may change what a system service runs: SYSTEM,
/// Administrators, TrustedInstaller (which owns Windows' own files), and
/// the owner of the object through OWNER RIGHTS / CREATOR OWNER (the owner
/// is checked to be one of the first three).
const TRUSTED: [&str; 5] = [
    "S-1-5-18",
    "S-1-5-32-544",
    "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464",
    "S-1-3-4",
    "S-1-3-0",
];

/// Rights that change a file: its data, its access list or owner, or
/// deleting it (and putting another in its place).
const FILE_WRITES: u32 = 0x2 | 0x4 | 0x1_0000 | 0x4_0000 | 0x8_0000 | 0x4000_0000 | 0x1000_0000;

/// Rights that let someone swap a directory on the path, or an entry in
/// it: deleting it, deleting its children, changing its access list or
/// owner. (Adding new entries is not among them: C:\ lets every user
/// make folders, which changes nothing already there.)
const DIR_WRITES: u32 = 0x40 | 0x1_0000 | 0x4_0000 | 0x8_0000 | 0x1000_0000;

/// Who besides ward's account may keep a folder of ward's: SYSTEM,
/// Administrators, TrustedInstaller, and the folder's owner through OWNER
/// RIGHTS or CREATOR OWNER (the owner is checked on its own).
const DIR_KEEPERS: [&str; 5] = TRUSTED;

/// Rights over a folder of ward's that no one else may have: adding a
/// file or folder (one of their own, which ward would then use), deleting
/// entries, deleting or re-permissioning the folder; and the generic
/// rights that hold them.
const DIR_CHANGES: u32 = 0x2 | 0x4 | DIR_WRITES | 0x4000_0000;

fn sid_string(sid: PSID) -> Option<String> {
    let mut text: *mut u16 = std::ptr::null_mut();
    // SAFETY: a valid SID and a place for the string, freed below.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return None;
    }
    // SAFETY: a NUL-terminated string the call allocated, freed once.
    unsafe {
        let len = (0..).take_while(|&i| *text.add(i) != 0).count();
        let s = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
        LocalFree(text.cast());
        Some(s)
    }
}

/// What asking an object for its owner and access list gives: the
/// descriptor they point into (freed when it drops), the owner as a SID
/// string, the list. `ask` makes the call with places for the owner, the
/// list and the descriptor, and gives its error code.
fn security_with(
    ask: impl FnOnce(*mut PSID, *mut *mut ACL, *mut PSECURITY_DESCRIPTOR) -> u32,
) -> io::Result<(Descriptor, String, *mut ACL)> {
    let mut owner: PSID = std::ptr::null_mut();
    let mut dacl: *mut ACL = std::ptr::null_mut();
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    let rc = ask(&mut owner, &mut dacl, &mut sd);
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc as i32));
    }
    let sd = Descriptor(sd);
    Ok((sd, sid_string(owner).unwrap_or_default(), dacl))
}

/// The owner and access list of a file or folder ([`security_with`]).
fn security_at(path: &Path) -> io::Result<(Descriptor, String, *mut ACL)> {
    use windows_sys::Win32::Security::Authorization::{GetNamedSecurityInfoW, SE_FILE_OBJECT};
    let name = wide(path);
    // SAFETY: a NUL-terminated path and places for what is asked; the
    // descriptor (which owner and dacl point into) is freed by its guard.
    security_with(|owner, dacl, sd| unsafe {
        GetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_AND_LIST,
            owner,
            std::ptr::null_mut(),
            dacl,
            std::ptr::null_mut(),
            sd,
        )
    })
}

/// The owner and access list of the object behind `handle` (a folder, a
/// pipe; [`security_with`]). The handle needs `READ_CONTROL`.
fn security_of(handle: HANDLE) -> io::Result<(Descriptor, String, *mut ACL)> {
    use windows_sys::Win32::Security::Authorization::{GetSecurityInfo, SE_KERNEL_OBJECT};
    // SAFETY: an open handle and places for what is asked; the descriptor
    // (which owner and dacl point into) is freed by its guard.
    security_with(|owner, dacl, sd| unsafe {
        GetSecurityInfo(
            handle,
            SE_KERNEL_OBJECT,
            OWNER_AND_LIST,
            owner,
            std::ptr::null_mut(),
            dacl,
            std::ptr::null_mut(),
            sd,
        )
    })
}

/// What [`security_with`] asks for.
const OWNER_AND_LIST: u32 = windows_sys::Win32::Security::OWNER_SECURITY_INFORMATION
    | windows_sys::Win32::Security::DACL_SECURITY_INFORMATION;

/// The account that owns the object behind `handle` (a file, a pipe), as
/// a SID string. The handle needs `READ_CONTROL`.
pub(crate) fn owner_of(handle: HANDLE) -> io::Result<String> {
    security_of(handle).map(|(_, owner, _)| owner)
}

/// Who, beyond the trusted, may change an object.
enum Untrusted {
    /// Its owner (who may always change its access list).
    Owner(String),
    /// An entry of its access list that grants some of the rights asked
    /// about: whom, and the rights.
    Entry(String, u32),
    /// It has no access list: everyone may do anything.
    NoList,
}

/// The entries of `dacl` that allow something now (not only to what is
/// made inside): whom (a SID string) and what.
fn allowed(dacl: *const ACL) -> Vec<(String, u32)> {
    use windows_sys::Win32::Security::{GetAce, ACCESS_ALLOWED_ACE, INHERIT_ONLY_ACE};
    let mut entries = Vec::new();
    if dacl.is_null() {
        return entries;
    }
    // SAFETY: a valid ACL inside a descriptor the caller holds.
    let count = unsafe { (*dacl).AceCount };
    for i in 0..u32::from(count) {
        let mut ace: *mut std::ffi::c_void = std::ptr::null_mut();
        // SAFETY: an index below the ACL's count.
        if unsafe { GetAce(dacl, i, &mut ace) } == 0 {
            continue;
        }
        // SAFETY: every ACE starts with a header; an access-allowed one
        // (type 0) is an ACCESS_ALLOWED_ACE whose SID starts at SidStart.
        let (kind, flags, mask, sid) = unsafe {
            let allowed = &*(ace as *const ACCESS_ALLOWED_ACE);
            (
                allowed.Header.AceType,
                u32::from(allowed.Header.AceFlags),
                allowed.Mask,
                &allowed.SidStart as *const u32 as PSID,
            )
        };
        if kind == 0 && flags & INHERIT_ONLY_ACE == 0 {
            entries.push((sid_string(sid).unwrap_or_default(), mask));
        }
    }
    entries
}

/// The first account other than those `trusted` accepts that owns the
/// object, or that `dacl` grants any of `writes`; `None` when there is
/// none.
fn untrusted(
    owner: &str,
    dacl: *const ACL,
    writes: u32,
    trusted: &dyn Fn(&str) -> bool,
) -> Option<Untrusted> {
    if !trusted(owner) {
        return Some(Untrusted::Owner(owner.to_string()));
    }
    if dacl.is_null() {
        return Some(Untrusted::NoList);
    }
    allowed(dacl)
        .into_iter()
        .find(|(who, mask)| mask & writes != 0 && !trusted(who))
        .map(|(who, mask)| Untrusted::Entry(who, mask))
}

/// Who could have made a file in the folder at `path`, as SID strings:
/// its owner, and whoever its access list lets add files (everyone, when
/// it has none). On Unix only they could have made a socket there.
pub(crate) fn makers_in(path: &Path) -> io::Result<Vec<String>> {
    let (_free, owner, dacl) = security_at(path)?;
    if dacl.is_null() {
        return Ok(vec![owner, "S-1-1-0".into()]);
    }
    let mut who = vec![owner];
    // FILE_ADD_FILE, and the generic rights that hold it.
    let adds = 0x2 | 0x1000_0000 | 0x4000_0000;
    who.extend(
        allowed(dacl)
            .into_iter()
            .filter(|(_, mask)| mask & adds != 0)
            .map(|(sid, _)| sid),
    );
    Ok(who)
}

/// Who may change `path` beyond the trusted accounts: `Ok(())`, or the
/// reason in words. `writes` are the rights that count.
fn only_trusted(path: &Path, writes: u32) -> Result<(), String> {
    let (_free, owner, dacl) = security_at(path)
        .map_err(|e| format!("cannot read who may change {}: {e}", path.display()))?;
    match untrusted(&owner, dacl, writes, &|sid| TRUSTED.contains(&sid)) {
        None => Ok(()),
        Some(Untrusted::Owner(owner)) => Err(format!(
            "{} belongs to {owner}, not to SYSTEM, Administrators or TrustedInstaller",
            path.display()
        )),
        Some(Untrusted::NoList) => Err(format!(
            "{} has no access list: everyone may change it",
            path.display()
        )),
        Some(Untrusted::Entry(who, mask)) => Err(format!(
            "{} can be changed by {who} (access mask {mask:#x})",
            path.display()
        )),
    }
}

/// Why someone other than an administrator could change `path` (a file a
/// system service runs or reads at every boot), or `Ok`: it and every
/// folder above it belong to SYSTEM, Administrators or TrustedInstaller,
/// and only they may write the file, or delete, rename or re-permission
/// it or a folder above it.
pub fn only_root_can_change(path: &Path) -> Result<(), String> {
    only_trusted(path, FILE_WRITES)?;
    let mut at = path.parent();
    while let Some(dir) = at.filter(|d| !d.as_os_str().is_empty()) {
        only_trusted(dir, DIR_WRITES)?;
        at = dir.parent();
    }
    Ok(())
}

/// `path` with every link resolved, as a plain path (`C:\dir\file`, not
/// the `\\?\C:\…` form `canonicalize` gives, which some programs and
/// the SCM's messages do not take well); a path that has no plain form
/// stays verbatim.
pub fn canonical(path: &Path) -> io::Result<PathBuf> {
    let full = path.canonicalize()?;
    let text = full.to_string_lossy();
    if let Some(rest) = text.strip_prefix(r"\\?\UNC\") {
        return Ok(PathBuf::from(format!(r"\\{rest}")));
    }
    if let Some(rest) = text.strip_prefix(r"\\?\") {
        let drive = rest.as_bytes();
        if drive.len() >= 3 && drive[0].is_ascii_alphabetic() && &drive[1..3] == b":\\" {
            return Ok(PathBuf::from(rest));
        }
    }
    Ok(full)
}

/// Whether `a` and `b` are on one volume.
pub fn same_filesystem(a: &Path, b: &Path) -> bool {
    let volume = |p: &Path| -> Option<u32> {
        let dir = open_dir_handle(p).ok()?;
        Some(
            info_of(dir.as_raw_handle() as HANDLE)
                .ok()?
                .dwVolumeSerialNumber,
        )
    };
    matches!((volume(a), volume(b)), (Some(x), Some(y)) if x == y)
}

/// A directory's handle, not through a link, shared for reading and
/// writing but not deletion: while it is open, the directory cannot be
/// renamed or removed.
fn open_dir_handle(path: &Path) -> io::Result<OwnedHandle> {
    let name = wide(path);
    // SAFETY: a NUL-terminated path.
    let raw = unsafe {
        CreateFileW(
            name.as_ptr(),
            FILE_LIST_DIRECTORY | READ_CONTROL,
            FILE_SHARE_READ | FILE_SHARE_WRITE,
            std::ptr::null(),
            OPEN_EXISTING,
            FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT,
            std::ptr::null_mut(),
        )
    };
    if raw == windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a handle just opened, owned by no one else.
    Ok(unsafe { OwnedHandle::from_raw_handle(raw as _) })
}

/// ward's account as a SID string (`S-1-5-18` for SYSTEM).
pub(crate) fn own_sid() -> io::Result<String> {
    // SAFETY: the pseudo-handle of this process needs no closing.
    sid_of(unsafe { GetCurrentProcess() })
}

/// The account process `pid` runs as, as a SID string.
pub(crate) fn process_sid(pid: u32) -> io::Result<String> {
    use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION};
    // SAFETY: plain arguments.
    let raw = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if raw.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a handle just opened, owned here.
    let process = unsafe { OwnedHandle::from_raw_handle(raw as _) };
    sid_of(process.as_raw_handle() as HANDLE)
}

fn sid_of(process: HANDLE) -> io::Result<String> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: a process handle and a place for the token.
    if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a handle just opened.
    let token = unsafe { OwnedHandle::from_raw_handle(token as _) };
    let mut buf = vec![0usize; 64];
    let mut len = 0u32;
    // SAFETY: a token handle and a buffer of the size given.
    if unsafe {
        GetTokenInformation(
            token.as_raw_handle() as HANDLE,
            TokenUser,
            buf.as_mut_ptr().cast(),
            (buf.len() * std::mem::size_of::<usize>()) as u32,
            &mut len,
        )
    } == 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call filled the buffer with a TOKEN_USER, whose SID
    // points into the same buffer.
    let user = unsafe { &*(buf.as_ptr() as *const TOKEN_USER) };
    sid_string(user.User.Sid).ok_or_else(io::Error::last_os_error)
}

/// A security descriptor made from SDDL, freed when dropped.
pub(crate) struct Descriptor(PSECURITY_DESCRIPTOR);

// SAFETY: the descriptor is read-only memory of its own once made.
unsafe impl Send for Descriptor {}
// SAFETY: as above.
unsafe impl Sync for Descriptor {}

impl Descriptor {
    pub(crate) fn from_sddl(sddl: &str) -> io::Result<Descriptor> {
        let text = wide(sddl);
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
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
            return Err(io::Error::last_os_error());
        }
        Ok(Descriptor(sd))
    }

    /// Security attributes pointing at this descriptor (not inheritable).
    pub(crate) fn attributes(&self) -> SECURITY_ATTRIBUTES {
        SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.0,
            bInheritHandle: 0,
        }
    }
}

impl Drop for Descriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by the conversion above, freed once.
        unsafe { LocalFree(self.0) };
    }
}

/// Full control for SYSTEM, Administrators and ward's account, inherited
/// by what is made inside; nothing from the parent (`P`, protected).
fn private_sddl() -> io::Result<String> {
    let me = own_sid()?;
    Ok(format!(
        "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;{me})"
    ))
}

/// The access list for a directory of Unix `mode`: full control for
/// SYSTEM, Administrators and ward's account; read (and enter) for
/// Authenticated Users when the mode lets others read. Protected: nothing
/// from the parent (`%ProgramData%` lets every user add files).
fn dir_sddl(mode: u32) -> io::Result<String> {
    let mut sddl = private_sddl()?;
    if mode & 0o005 != 0 {
        sddl.push_str("(A;OICI;GRGX;;;AU)");
    }
    Ok(sddl)
}

/// Gives the folder at `path` (held open by a [`Dir`], so it cannot be
/// swapped meanwhile) the access list of [`dir_sddl`], protected from its
/// parent's.
fn set_dir_list(path: &Path, mode: u32) -> io::Result<()> {
    use windows_sys::Win32::Security::{
        SetFileSecurityW, DACL_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION,
    };
    let sd = Descriptor::from_sddl(&dir_sddl(mode)?)?;
    let name = wide(path);
    // SAFETY: a NUL-terminated path and a descriptor that outlives the call.
    if unsafe {
        SetFileSecurityW(
            name.as_ptr(),
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            sd.0,
        )
    } == 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `path` and the folders above it that are missing, each with the
/// access list of a `0755` folder ([`dir_sddl`]), as Unix's umask would:
/// not the one their parent hands down (`%ProgramData%` lets every user
/// add files and folders, which in a folder of ward's would let them make
/// another service's folder before ward does).
fn create_parents(path: &Path) -> io::Result<()> {
    if path.as_os_str().is_empty() || std::fs::symlink_metadata(path).is_ok() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        create_parents(parent)?;
    }
    match create_dir_with(path, 0o755) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

fn create_dir_with(path: &Path, mode: u32) -> io::Result<()> {
    let sd = Descriptor::from_sddl(&dir_sddl(mode)?)?;
    let attrs = sd.attributes();
    let name = wide(path);
    // SAFETY: a NUL-terminated path and attributes that outlive the call.
    if unsafe { CreateDirectoryW(name.as_ptr(), &attrs) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn read_bounded(file: File, path: &Path, max: u64) -> io::Result<Vec<u8>> {
    ensure_regular(&file, path)?;
    super::read_at_most(file, path, max)
}

impl Dir {
    /// Opens the directory at `path`, creating it (and its parents) if it
    /// is missing, and keeps it open. A directory ward makes that others
    /// may not write to (the policy's mode) gets an access list of its own
    /// (see `dir_sddl`); one they may write to (a shared log dir the
    /// config allows) inherits its parent's. A link (a symbolic link or a
    /// junction) is refused. A directory that exists is checked as Unix
    /// checks its owner and mode (`check_existing`).
    pub fn open(path: &Path, policy: DirPolicy) -> io::Result<Dir> {
        let mut created = false;
        match std::fs::symlink_metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent() {
                    create_parents(parent).map_err(|e| {
                        context(e, || format!("cannot create {}", parent.display()))
                    })?;
                }
                let made = if policy.mode & 0o022 == 0 {
                    create_dir_with(path, policy.mode)
                } else {
                    std::fs::create_dir(path)
                };
                match made {
                    Ok(()) => created = true,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(context(e, || format!("cannot create {}", path.display())))
                    }
                }
            }
            Err(e) => return Err(context(e, || format!("cannot inspect {}", path.display()))),
        }
        let handle = open_dir_handle(path)
            .map_err(|e| context(e, || format!("cannot open {}", path.display())))?;
        let info = info_of(handle.as_raw_handle() as HANDLE)?;
        const DIRECTORY: u32 = 0x10;
        if info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            return Err(err(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is a link (a symbolic link or a junction); ward does not follow links \
                     for its directories (point the config at the real directory)",
                    path.display()
                ),
            ));
        }
        if info.dwFileAttributes & DIRECTORY == 0 {
            return Err(err(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} exists and is not a directory; remove it or choose another path",
                    path.display()
                ),
            ));
        }
        let dir = Dir {
            handle,
            path: path.to_path_buf(),
        };
        if !created {
            dir.check_existing(policy)?;
        }
        Ok(dir)
    }

    /// A folder that was there before: it must belong to ward's account,
    /// SYSTEM or Administrators. ward's own (`enforce_mode`) gets ward's
    /// access list back; any other must let nobody else add, delete or
    /// re-permission its entries, unless `allow_writable`. (Unix: the
    /// owner, then `chmod`, or the group and other write bits.)
    fn check_existing(&self, policy: DirPolicy) -> io::Result<()> {
        let me = own_sid()?;
        let (_free, owner, dacl) =
            security_of(self.handle.as_raw_handle() as HANDLE).map_err(|e| {
                context(e, || {
                    format!("cannot read who may change {}", self.path.display())
                })
            })?;
        let trusted = |sid: &str| sid == me || DIR_KEEPERS.contains(&sid);
        let checked = !policy.enforce_mode && !policy.allow_writable;
        let writes = if checked { DIR_CHANGES } else { 0 };
        let denied = |why: String| err(io::ErrorKind::PermissionDenied, why);
        match untrusted(&owner, dacl, writes, &trusted) {
            Some(Untrusted::Owner(owner)) => {
                return Err(denied(format!(
                    "{} belongs to {owner}; ward ({me}) uses only folders owned by its own \
                     account, SYSTEM or Administrators, so that no other user can swap its files",
                    self.path.display()
                )))
            }
            Some(Untrusted::Entry(who, mask)) => {
                return Err(denied(format!(
                    "{} can be changed by {who} (access mask {mask:#x}): another user could \
                     put files of their own in it or swap ward's. Take that right away \
                     (icacls), or use another folder",
                    self.path.display()
                )))
            }
            Some(Untrusted::NoList) if checked => {
                return Err(denied(format!(
                    "{} has no access list: every user may change it; use another folder",
                    self.path.display()
                )))
            }
            _ => {}
        }
        if policy.enforce_mode {
            set_dir_list(&self.path, policy.mode).map_err(|e| {
                context(e, || {
                    format!("cannot set the access list of {}", self.path.display())
                })
            })?;
        }
        Ok(())
    }

    /// Opens a directory a person named for output of their own: it must
    /// exist and be a directory.
    pub fn open_named(path: &Path) -> io::Result<Dir> {
        let handle = open_dir_handle(path)
            .map_err(|e| context(e, || format!("cannot open {}", path.display())))?;
        Ok(Dir {
            handle,
            path: path.to_path_buf(),
        })
    }

    /// `<dir>\<name>`.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Opens `name` relative to this directory's own handle (`NtCreateFile`
    /// with `RootDirectory`: the Windows `openat`), never through a link at
    /// `name` (`FILE_OPEN_REPARSE_POINT`), never a directory, shared for
    /// reading, writing and deletion. `regular`: refuse what is not a
    /// regular file (a link, a device).
    fn open_at(
        &self,
        name: &str,
        access: u32,
        disposition: u32,
        options: u32,
        regular: bool,
    ) -> io::Result<File> {
        use windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES;
        use windows_sys::Wdk::Storage::FileSystem::{
            NtCreateFile, FILE_NON_DIRECTORY_FILE, FILE_OPEN_REPARSE_POINT as OPEN_REPARSE_POINT,
            FILE_SYNCHRONOUS_IO_NONALERT,
        };
        use windows_sys::Win32::Foundation::{
            RtlNtStatusToDosError, OBJ_CASE_INSENSITIVE, UNICODE_STRING,
        };
        use windows_sys::Win32::Storage::FileSystem::{
            FILE_ATTRIBUTE_NORMAL, FILE_READ_ATTRIBUTES, FILE_SHARE_DELETE, SYNCHRONIZE,
        };
        use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;
        let name = self.name(name)?;
        let mut wname: Vec<u16> = name.encode_utf16().collect();
        let bytes = u16::try_from(wname.len() * 2)
            .map_err(|_| err(io::ErrorKind::InvalidInput, format!("{name:?} is too long")))?;
        let unicode = UNICODE_STRING {
            Length: bytes,
            MaximumLength: bytes,
            Buffer: wname.as_mut_ptr(),
        };
        let attributes = OBJECT_ATTRIBUTES {
            Length: std::mem::size_of::<OBJECT_ATTRIBUTES>() as u32,
            RootDirectory: self.handle.as_raw_handle() as HANDLE,
            ObjectName: &unicode,
            Attributes: OBJ_CASE_INSENSITIVE,
            ..OBJECT_ATTRIBUTES::default()
        };
        let mut raw: HANDLE = std::ptr::null_mut();
        // SAFETY: all-zero is a valid status block to be filled in.
        let mut status_block: IO_STATUS_BLOCK = unsafe { std::mem::zeroed() };
        // SAFETY: the attributes point at a name and a directory handle that
        // outlive the call; `raw` receives the new handle.
        let status = unsafe {
            NtCreateFile(
                &mut raw,
                access | SYNCHRONIZE | FILE_READ_ATTRIBUTES,
                &attributes,
                &mut status_block,
                std::ptr::null(),
                FILE_ATTRIBUTE_NORMAL,
                FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                disposition,
                FILE_NON_DIRECTORY_FILE
                    | FILE_SYNCHRONOUS_IO_NONALERT
                    | OPEN_REPARSE_POINT
                    | options,
                std::ptr::null(),
                0,
            )
        };
        if status < 0 {
            // SAFETY: a plain conversion of a status code.
            let code = unsafe { RtlNtStatusToDosError(status) };
            return Err(io::Error::from_raw_os_error(code as i32));
        }
        // SAFETY: a handle just opened, owned by no one else.
        let file = File::from(unsafe { OwnedHandle::from_raw_handle(raw as _) });
        if regular {
            ensure_regular(&file, &self.join(name))?;
        }
        Ok(file)
    }

    fn opened(&self, name: &str, access: u32, disposition: u32) -> io::Result<File> {
        self.open_at(name, access, disposition, 0, true)
            .map_err(|e| context(e, || format!("cannot open {}", self.join(name).display())))
    }

    /// A plain file name: no separator, no stream, no parent.
    fn name<'a>(&self, name: &'a str) -> io::Result<&'a str> {
        if name.is_empty() || name == "." || name == ".." || name.contains(['\\', '/', ':']) {
            return Err(err(
                io::ErrorKind::InvalidInput,
                format!("{name:?} is not a plain file name"),
            ));
        }
        Ok(name)
    }

    /// Opens `name` for appending, creating it. `bits` and `group` are
    /// Unix permissions: on Windows the file inherits the directory's
    /// access list.
    pub fn append(&self, name: &str, _bits: u32, _group: Option<u32>) -> io::Result<Appending> {
        use windows_sys::Wdk::Storage::FileSystem::FILE_OPEN_IF;
        use windows_sys::Win32::Storage::FileSystem::{FILE_APPEND_DATA, FILE_READ_DATA};
        // Append only (each write goes to the end), and read to see how the
        // file ends.
        let file = self.opened(name, FILE_APPEND_DATA | FILE_READ_DATA, FILE_OPEN_IF)?;
        let size = file.metadata()?.len();
        let mut last = [0u8; 1];
        let cut = size > 0
            && file.seek_read(&mut last, size - 1).is_ok_and(|n| n == 1)
            && last[0] != b'\n';
        Ok(Appending { file, size, cut })
    }

    /// Opens (creating) `name` for reading and writing, for a lock file.
    pub fn lock_file(&self, name: &str, _bits: u32) -> io::Result<File> {
        use windows_sys::Wdk::Storage::FileSystem::FILE_OPEN_IF;
        use windows_sys::Win32::Storage::FileSystem::{FILE_READ_DATA, FILE_WRITE_DATA};
        self.opened(name, FILE_READ_DATA | FILE_WRITE_DATA, FILE_OPEN_IF)
    }

    /// Opens the regular file `name` for reading.
    pub fn open_read(&self, name: &str) -> io::Result<File> {
        use windows_sys::Wdk::Storage::FileSystem::FILE_OPEN;
        use windows_sys::Win32::Storage::FileSystem::FILE_READ_DATA;
        self.opened(name, FILE_READ_DATA, FILE_OPEN)
    }

    /// Opens the existing regular file `name` for appending.
    pub fn open_append(&self, name: &str) -> io::Result<File> {
        use windows_sys::Wdk::Storage::FileSystem::FILE_OPEN;
        use windows_sys::Win32::Storage::FileSystem::FILE_APPEND_DATA;
        self.opened(name, FILE_APPEND_DATA, FILE_OPEN)
    }

    /// Reads all of `name` (a regular file), at most `max` bytes.
    pub fn read(&self, name: &str, max: u64) -> io::Result<Vec<u8>> {
        use windows_sys::Wdk::Storage::FileSystem::FILE_OPEN;
        use windows_sys::Win32::Storage::FileSystem::FILE_READ_DATA;
        let file = self.opened(name, FILE_READ_DATA, FILE_OPEN)?;
        read_bounded(file, &self.join(name), max)
    }

    /// Creates `name`; an existing file (or link) under that name is an
    /// `AlreadyExists` error and is left alone.
    pub fn create_exclusive(&self, name: &str, _bits: u32) -> io::Result<File> {
        use windows_sys::Wdk::Storage::FileSystem::FILE_CREATE;
        use windows_sys::Win32::Storage::FileSystem::FILE_WRITE_DATA;
        self.open_at(name, FILE_WRITE_DATA, FILE_CREATE, 0, true)
    }

    /// Makes the directory's entries durable (after a rename): NTFS
    /// journals them itself; flushing a directory would need it opened for
    /// writing.
    pub(super) fn sync_entries(&self) -> io::Result<()> {
        Ok(())
    }

    /// Renames `from` to `to` within this directory, replacing `to`: both
    /// names relative to the directory's handle (a link is renamed itself,
    /// never followed).
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        use windows_sys::Wdk::Storage::FileSystem::{
            FileRenameInformation, NtSetInformationFile, FILE_OPEN, FILE_RENAME_INFORMATION,
        };
        use windows_sys::Win32::Foundation::RtlNtStatusToDosError;
        use windows_sys::Win32::Storage::FileSystem::DELETE;
        use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;
        let file = self.open_at(from, DELETE, FILE_OPEN, 0, false)?;
        let target: Vec<u16> = self.name(to)?.encode_utf16().collect();
        let head = std::mem::offset_of!(FILE_RENAME_INFORMATION, FileName);
        let size = head + target.len() * 2;
        // usize-aligned room for the header and the name.
        let mut buf = vec![0usize; size.div_ceil(std::mem::size_of::<usize>()) + 1];
        let info = buf.as_mut_ptr() as *mut FILE_RENAME_INFORMATION;
        // SAFETY: `buf` holds at least `size` writable, aligned bytes: the
        // header, then the name where `FileName` starts.
        unsafe {
            (*info).Anonymous.ReplaceIfExists = true;
            (*info).RootDirectory = self.handle.as_raw_handle() as HANDLE;
            (*info).FileNameLength = (target.len() * 2) as u32;
            std::ptr::copy_nonoverlapping(
                target.as_ptr(),
                (info as *mut u8).add(head) as *mut u16,
                target.len(),
            );
        }
        // SAFETY: all-zero is a valid status block to be filled in.
        let mut status_block: IO_STATUS_BLOCK = unsafe { std::mem::zeroed() };
        // SAFETY: an open handle with DELETE access and the structure above.
        let status = unsafe {
            NtSetInformationFile(
                file.as_raw_handle() as HANDLE,
                &mut status_block,
                info as *const std::ffi::c_void,
                size as u32,
                FileRenameInformation,
            )
        };
        if status < 0 {
            // SAFETY: a plain conversion of a status code.
            let code = unsafe { RtlNtStatusToDosError(status) };
            return Err(io::Error::from_raw_os_error(code as i32));
        }
        Ok(())
    }

    /// Removes the file `name` (a link itself, never what it points to),
    /// relative to the directory's handle.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        use windows_sys::Wdk::Storage::FileSystem::{FILE_DELETE_ON_CLOSE, FILE_OPEN};
        use windows_sys::Win32::Storage::FileSystem::DELETE;
        // Deleted as this handle closes, at the end of this statement.
        self.open_at(name, DELETE, FILE_OPEN, FILE_DELETE_ON_CLOSE, false)
            .map(drop)
    }

    /// The identity of what is at `name` now (a link is not followed), or
    /// `None` when nothing is.
    pub fn id_of(&self, name: &str) -> io::Result<Option<FileId>> {
        use windows_sys::Wdk::Storage::FileSystem::FILE_OPEN;
        match self.open_at(name, 0, FILE_OPEN, 0, false) {
            Ok(file) => FileId::of_file(&file).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The directory's own handle.
    #[allow(dead_code)] // for tests and diagnostics
    pub fn handle(&self) -> &OwnedHandle {
        &self.handle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_a_user_owns_is_not_one_only_administrators_can_change() {
        // Under Wine (and for a test run by a user) the file is the
        // user's; on Windows an elevated test's file is Administrators'.
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("ward.toml");
        std::fs::write(&file, "").unwrap();
        match only_root_can_change(&file) {
            Ok(()) => {
                assert!(own_sid().unwrap() == "S-1-5-32-544" || own_sid().unwrap() == "S-1-5-18")
            }
            Err(why) => assert!(
                why.contains("belongs to S-1-") || why.contains("can be changed by S-1-"),
                "{why}"
            ),
        }
    }

    #[test]
    fn canonical_paths_are_plain_drive_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let plain = canonical(tmp.path()).unwrap();
        let text = plain.to_string_lossy();
        assert!(!text.starts_with(r"\\?\"), "{text}");
        assert_eq!(text.as_bytes()[1], b':', "{text}");
    }

    /// A folder given the access list of `sddl` (as a user could have
    /// made it before ward started). Wine keeps an access list as the
    /// folder's Unix mode, and gives it back from that mode.
    fn folder_with(path: &Path, sddl: &str) {
        use windows_sys::Win32::Security::{
            SetFileSecurityW, DACL_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION,
        };
        std::fs::create_dir(path).unwrap();
        let sd = Descriptor::from_sddl(sddl).unwrap();
        let name = wide(path);
        // SAFETY: a NUL-terminated path and a descriptor that outlives the call.
        let set = unsafe {
            SetFileSecurityW(
                name.as_ptr(),
                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                sd.0,
            )
        };
        assert_ne!(set, 0, "{}", io::Error::last_os_error());
    }

    fn open_error(path: &Path, policy: super::super::DirPolicy) -> String {
        match Dir::open(path, policy) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_folder_others_may_change_is_refused_or_made_wards_own() {
        use super::super::DirPolicy;
        let tmp = tempfile::tempdir().unwrap();
        let me = own_sid().unwrap();
        let logs = DirPolicy {
            mode: 0o755,
            enforce_mode: false,
            group: None,
            allow_writable: false,
        };
        // Everyone may add files: refused as a log folder, unless the
        // config allows it.
        let open = tmp.path().join("open");
        folder_with(&open, &format!("D:P(A;OICI;FA;;;{me})(A;OICI;FA;;;WD)"));
        let why = open_error(&open, logs);
        assert!(
            why.contains("can be changed by S-1-1-0 (access mask"),
            "{why}"
        );
        assert!(why.contains("icacls"), "{why}");
        Dir::open(
            &open,
            DirPolicy {
                allow_writable: true,
                ..logs
            },
        )
        .expect("allow_writable");
        // Who could have made a file there (whom the CLI believes holding
        // a pipe named after a socket in it): everyone.
        assert!(makers_in(&open).unwrap().contains(&"S-1-1-0".to_string()));
        // Reading and entering is no change.
        let readable = tmp.path().join("readable");
        folder_with(
            &readable,
            &format!("D:P(A;OICI;FA;;;{me})(A;OICI;0x1200a9;;;WD)"),
        );
        Dir::open(&readable, logs).expect("a folder others may only read");
        let makers = makers_in(&readable).unwrap();
        assert!(makers.contains(&me), "{makers:?}");
        assert!(!makers.contains(&"S-1-1-0".to_string()), "{makers:?}");
        // Folders ward makes above its own are made too. (Their access
        // list cannot be told from Wine's default, made from a 0755 mode.)
        let deep = tmp.path().join("a").join("b").join("state");
        Dir::open(&deep, DirPolicy::private()).expect("made with its parents");
        assert!(tmp.path().join("a").join("b").is_dir());
        // ward's own folder gets ward's access list back, as chmod does.
        let state = tmp.path().join("state");
        folder_with(&state, &format!("D:P(A;OICI;FA;;;{me})(A;OICI;FA;;;WD)"));
        assert!(open_error(&state, logs).contains("S-1-1-0"));
        Dir::open(&state, DirPolicy::private()).expect("ward's own folder");
        Dir::open(&state, logs).expect("now only ward may change it");
        // Someone else's folder, whatever its list: the owner comes first.
        // (Windows lets nobody give a folder an owner they are not, and
        // Wine has only the Unix owner, so this is checked on the list.)
        let (_sd, _, dacl) = security_at(&state).unwrap();
        let trusted = |sid: &str| sid == me || DIR_KEEPERS.contains(&sid);
        assert!(untrusted(&me, dacl, DIR_CHANGES, &trusted).is_none());
        assert!(matches!(
            untrusted("S-1-5-21-1-2-3-1002", dacl, 0, &trusted),
            Some(Untrusted::Owner(owner)) if owner == "S-1-5-21-1-2-3-1002"
        ));
        assert!(matches!(
            untrusted(&me, std::ptr::null(), 0, &trusted),
            Some(Untrusted::NoList)
        ));
    }

    #[test]
    fn a_private_directory_is_made_with_its_own_access_list_and_held_open() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state");
        let dir = Dir::open(&path, super::super::DirPolicy::private()).unwrap();
        dir.replace("state.json", b"{}", 0o600, true).unwrap();
        assert_eq!(dir.read("state.json", 10).unwrap(), b"{}");
        assert!(dir.read("state.json", 1).is_err(), "bounded");
        assert!(dir.append("../escape.log", 0o600, None).is_err());
        let appended = dir.append("w.log", 0o600, None).unwrap();
        drop(appended);
        assert!(dir.id_of("w.log").unwrap().is_some());
        assert!(dir.id_of("none.log").unwrap().is_none());
        // Names are reached through the directory's own handle: renamed
        // and removed there, and the directory cannot be moved away (and
        // replaced) while ward holds it.
        dir.rename("w.log", "w.log.1").unwrap();
        assert!(path.join("w.log.1").is_file() && !path.join("w.log").exists());
        dir.remove("w.log.1").unwrap();
        assert!(dir.id_of("w.log.1").unwrap().is_none());
        assert!(std::fs::rename(&path, tmp.path().join("moved")).is_err());
    }
}
