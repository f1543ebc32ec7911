//! Users and groups, looked up before the fork: between fork and exec
//! nothing may allocate or take a lock, and NSS lookups do both.

use std::ffi::{CStr, CString};
use std::io;

/// Whom a child runs as, ready to apply in the child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    /// `None`: keep ward's user.
    pub uid: Option<libc::uid_t>,
    pub gid: Option<libc::gid_t>,
    /// The user's supplementary groups (with the primary one). `None` when
    /// only a group was given: the supplementary list is left alone.
    pub groups: Option<Vec<libc::gid_t>>,
    /// HOME, USER and LOGNAME of the target user.
    pub env: Vec<(String, String)>,
    /// `user "nobody"`, for messages.
    pub user_label: String,
    /// `group "nogroup"` or `the group of user "nobody" (65534)`, for
    /// messages.
    pub group_label: String,
}

struct Passwd {
    name: String,
    uid: libc::uid_t,
    gid: libc::gid_t,
    home: String,
}

/// Resolves `user` and `group` (names, or numeric ids) into credentials.
/// A numeric user with no passwd entry runs with that uid, the group of the
/// same number (unless `group` says otherwise) and HOME=/.
pub(crate) fn resolve(user: Option<&str>, group: Option<&str>) -> io::Result<Option<Credentials>> {
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    let group_gid = group.map(group_id).transpose()?;
    let group_label = |gid: libc::gid_t| match (group, user) {
        (Some(g), _) => format!("group {g:?}"),
        (None, Some(u)) => format!("the group of user {u:?} ({gid})"),
        (None, None) => format!("group {gid}"),
    };
    let Some(user) = user else {
        return Ok(Some(Credentials {
            uid: None,
            gid: group_gid,
            groups: None,
            env: Vec::new(),
            user_label: String::new(),
            group_label: group_label(group_gid.unwrap_or_default()),
        }));
    };
    let user_label = format!("user {user:?}");
    let numeric = user.parse::<libc::uid_t>().ok();
    let entry = match (lookup_user(user)?, numeric) {
        (Some(pw), _) => Some(pw),
        (None, Some(uid)) => lookup_uid(uid)?,
        (None, None) => None,
    };
    let (uid, gid, groups, name, home) = match (entry, numeric) {
        (Some(pw), _) => {
            let gid = group_gid.unwrap_or(pw.gid);
            let groups = supplementary_groups(&pw.name, gid)
                .map_err(|e| annotate(e, &format!("cannot list the groups of {user_label}")))?;
            (pw.uid, gid, groups, pw.name, pw.home)
        }
        (None, Some(uid)) => {
            let gid = group_gid.unwrap_or(uid as libc::gid_t);
            (uid, gid, vec![gid], user.to_string(), "/".to_string())
        }
        (None, None) => {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("unknown user {user:?}"),
            ))
        }
    };
    Ok(Some(Credentials {
        uid: Some(uid),
        gid: Some(gid),
        groups: Some(groups),
        env: vec![
            ("HOME".into(), home),
            ("USER".into(), name.clone()),
            ("LOGNAME".into(), name),
        ],
        user_label,
        group_label: group_label(gid),
    }))
}

/// Whether `user` (a name, or a numeric uid) is one `resolve` would
/// accept: for checking a config before anything runs. The error says
/// why not, for a person.
pub(crate) fn check_user(user: &str) -> Result<(), String> {
    match lookup_user(user) {
        Ok(Some(_)) => Ok(()),
        Ok(None) if user.parse::<libc::uid_t>().is_ok() => Ok(()),
        Ok(None) => Err(format!("unknown user {user:?}")),
        Err(e) => Err(format!("cannot look up user {user:?}: {e}")),
    }
}

/// As [`check_user`], for a group.
pub(crate) fn check_group(group: &str) -> Result<(), String> {
    match group_id(group) {
        Ok(_) => Ok(()),
        // group_id's own message says "unknown group".
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(e.to_string()),
        Err(e) => Err(format!("cannot look up group {group:?}: {e}")),
    }
}

fn annotate(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn c_name(kind: &str, name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{kind} name {name:?} contains a NUL byte"),
        )
    })
}

/// Runs a `get*_r` lookup with a buffer that grows on ERANGE. `call` gets
/// the buffer and returns (errno-style result, whether an entry was found).
fn with_buffer<T>(
    mut call: impl FnMut(&mut [u8]) -> (libc::c_int, Option<T>),
) -> io::Result<Option<T>> {
    let mut buf = vec![0u8; 1024];
    loop {
        match call(&mut buf) {
            (0, found) => return Ok(found),
            (libc::ERANGE, _) if buf.len() < (1 << 20) => buf.resize(buf.len() * 2, 0),
            // POSIX lets these mean "no such entry".
            (libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM, _) => return Ok(None),
            (rc, _) => return Err(io::Error::from_raw_os_error(rc)),
        }
    }
}

fn lookup_user(name: &str) -> io::Result<Option<Passwd>> {
    let c = c_name("user", name)?;
    with_buffer(|buf| {
        // SAFETY: passwd is a plain C struct; zeroed is a valid value.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; the strings it
        // returns point into buf, which outlives their use in `copy`.
        let rc = unsafe {
            libc::getpwnam_r(
                c.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        (rc, (!result.is_null()).then(|| copy_passwd(&pwd)))
    })
}

fn lookup_uid(uid: libc::uid_t) -> io::Result<Option<Passwd>> {
    with_buffer(|buf| {
        // SAFETY: as in lookup_user.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        // SAFETY: as in lookup_user.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        (rc, (!result.is_null()).then(|| copy_passwd(&pwd)))
    })
}

fn copy_passwd(pwd: &libc::passwd) -> Passwd {
    Passwd {
        name: c_string(pwd.pw_name),
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
        home: c_string(pwd.pw_dir),
    }
}

fn c_string(ptr: *const libc::c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: a non-null string field of an entry filled by get*_r is a
    // NUL-terminated string inside the caller's live buffer.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// A group by name, else by number.
pub(crate) fn group_id(group: &str) -> io::Result<libc::gid_t> {
    let c = c_name("group", group)?;
    let found = with_buffer(|buf| {
        // SAFETY: group is a plain C struct; zeroed is a valid value.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call.
        let rc = unsafe {
            libc::getgrnam_r(
                c.as_ptr(),
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        (rc, (!result.is_null()).then_some(grp.gr_gid))
    })?;
    found
        .or_else(|| group.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("unknown group {group:?}")))
}

/// The user's groups as the system lists them (primary `gid` included).
fn supplementary_groups(user: &str, gid: libc::gid_t) -> io::Result<Vec<libc::gid_t>> {
    let c = c_name("user", user)?;
    let mut capacity: libc::c_int = 32;
    loop {
        let mut groups: Vec<GroupListItem> = vec![0; capacity as usize];
        let mut count = capacity;
        // SAFETY: groups has room for `count` entries and count is a valid
        // int; getgrouplist writes at most that many and updates count.
        let rc = unsafe {
            libc::getgrouplist(
                c.as_ptr(),
                gid as GroupListItem,
                groups.as_mut_ptr(),
                &mut count,
            )
        };
        if rc >= 0 {
            groups.truncate(count.max(0) as usize);
            return Ok(groups.into_iter().map(|g| g as libc::gid_t).collect());
        }
        if capacity >= 65536 {
            return Err(io::Error::other("more than 65536 groups"));
        }
        capacity = if count > capacity {
            count
        } else {
            capacity * 2
        };
    }
}

#[cfg(any(target_os = "macos", target_os = "ios"))]
type GroupListItem = libc::c_int;
#[cfg(not(any(target_os = "macos", target_os = "ios")))]
type GroupListItem = libc::gid_t;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_asked_nothing_changed() {
        assert_eq!(resolve(None, None).unwrap(), None);
    }

    #[test]
    fn root_resolves_with_home_and_groups() {
        let c = resolve(Some("root"), None).unwrap().unwrap();
        assert_eq!(c.uid, Some(0));
        assert_eq!(c.gid, Some(0));
        assert!(c.groups.as_ref().unwrap().contains(&0));
        assert!(c.env.contains(&("USER".into(), "root".into())));
        assert!(c.env.iter().any(|(k, _)| k == "HOME"));
    }

    #[test]
    fn unknown_names_are_errors_that_say_so() {
        let err = resolve(Some("no-such-user-ward"), None).unwrap_err();
        assert_eq!(err.to_string(), "unknown user \"no-such-user-ward\"");
        let err = resolve(None, Some("no-such-group-ward")).unwrap_err();
        assert_eq!(err.to_string(), "unknown group \"no-such-group-ward\"");
        assert!(resolve(Some("a\0b"), None).is_err());
    }

    #[test]
    fn checks_agree_with_resolve() {
        assert_eq!(check_user("root"), Ok(()));
        assert_eq!(check_user("4000123"), Ok(()));
        assert_eq!(
            check_user("no-such-user-ward"),
            Err("unknown user \"no-such-user-ward\"".into())
        );
        assert!(check_user("a\0b").is_err());
        assert_eq!(check_group("root"), Ok(()));
        assert_eq!(check_group("4000124"), Ok(()));
        assert_eq!(
            check_group("no-such-group-ward"),
            Err("unknown group \"no-such-group-ward\"".into())
        );
    }

    #[test]
    fn numeric_ids_need_no_entry() {
        let c = resolve(Some("4000123"), None).unwrap().unwrap();
        assert_eq!(c.uid, Some(4000123));
        assert_eq!(c.gid, Some(4000123));
        assert_eq!(c.groups, Some(vec![4000123]));
        let c = resolve(None, Some("4000124")).unwrap().unwrap();
        assert_eq!((c.uid, c.gid, c.groups), (None, Some(4000124), None));
    }
}
