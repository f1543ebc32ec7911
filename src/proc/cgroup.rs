//! cgroup v2 directories: ward's root below its own cgroup, one leaf per run.
//!
//! No controllers are needed: a bare v2 directory already gives exact
//! membership (`cgroup.procs`), emptiness (`cgroup.events`) and an atomic,
//! fork-proof kill of everything below it (`cgroup.kill`, Linux 5.14). On
//! this kernel a zombie is neither listed in `cgroup.procs` nor counted as
//! `populated`, so an unreaped leader does not keep a tree alive.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Creates ward's cgroup root `<ward's own cgroup>/<name>`. The error is the
/// reason cgroups are not used, in words, for the say-once fallback notice.
pub(crate) fn setup(name: &str) -> Result<PathBuf, String> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let own = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let own = own_v2_path(&own)
        .ok_or("ward is in no cgroup v2 hierarchy (/proc/self/cgroup has no 0:: line)")?;
    let (mount_point, mount_root) =
        v2_mount(&mountinfo, own).ok_or("no cgroup v2 hierarchy is mounted")?;
    let base = below_mount(&mount_point, &mount_root, own).ok_or_else(|| {
        format!(
            "ward's cgroup {own} is outside the cgroup2 mount at {}",
            mount_point.display()
        )
    })?;
    if delegated(&base) {
        // A service manager gave ward this cgroup to manage: on cgroup v2
        // a cgroup with children holds no processes of its own (once
        // controllers are on), so ward itself moves into a leaf beside the
        // instances' root. The sentinel, forked later, starts there too.
        let leaf = base.join(SUPERVISOR_LEAF);
        match fs::create_dir(&leaf) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(format!("cannot create {}: {e}", leaf.display()));
            }
            _ => {}
        }
        fs::write(leaf.join("cgroup.procs"), std::process::id().to_string()).map_err(|e| {
            format!(
                "cannot move ward into {} in its delegated cgroup: {e}",
                leaf.display()
            )
        })?;
    }
    sweep_dead_roots(&base);
    let root = base.join(name);
    make_dir(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    if !root.join("cgroup.kill").exists() {
        let _ = remove(&root);
        return Err("this kernel has no cgroup.kill (it needs Linux 5.14 or later)".into());
    }
    Ok(root)
}

/// In a delegated cgroup, the leaf ward itself (and its sentinel) runs in.
const SUPERVISOR_LEAF: &str = "supervisor";

/// Whether a service manager delegated `dir` (ward's own cgroup) to ward:
/// systemd marks a unit's cgroup so with `Delegate=yes` (the extended
/// attribute `trusted.delegate`, or `user.delegate` for a user manager,
/// set to `1`).
fn delegated(dir: &Path) -> bool {
    ["trusted.delegate", "user.delegate"].iter().any(|name| {
        let mut value = [0u8; 8];
        matches!(
            rustix::fs::getxattr(dir, *name, &mut value),
            Ok(n) if value[..n].starts_with(b"1")
        )
    })
}

/// Removes the empty `ward-<pid>` roots of wards that are gone: a ward
/// killed together with its sentinel (SIGKILL to both, the OOM killer)
/// leaves its root behind, and nothing else would ever remove it. A root
/// whose pid is alive, or that still holds a process, stays.
/// (A ward in another pid namespace sharing this cgroup would look dead;
/// its empty root would go, and its next spawn would fall back to process
/// groups with a notice.)
fn sweep_dead_roots(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| n.starts_with("ward-")) {
            remove_dead_root(&entry.path());
        }
    }
}

/// Removes `dir`, a `ward-<pid>` root, with its leaves, if that ward is
/// gone and nothing runs in it. Any live process with that pid keeps the
/// root: it may be that ward under another name (or this very ward, as PID
/// 1 of a container started again), and a reused pid only delays this.
pub(crate) fn remove_dead_root(dir: &Path) {
    let Some(pid) = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("ward-"))
        .and_then(|p| p.parse::<u32>().ok())
    else {
        return;
    };
    if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
        return;
    }
    if !populated(dir).unwrap_or(true) {
        remove_tree(dir);
    }
}

/// The v2 path from `/proc/self/cgroup` (`0::/some/path`).
fn own_v2_path(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(|p| p.trim_end_matches(" (deleted)"))
}

/// The cgroup2 mount (mount point, root of the hierarchy it shows) that
/// contains `own`. In a container without a cgroup namespace the mount may
/// show only a subtree, so its root is not always `/`.
fn v2_mount(mountinfo: &str, own: &str) -> Option<(PathBuf, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            if right.split(' ').next()? != "cgroup2" {
                return None;
            }
            let mut fields = left.split(' ');
            let root = unescape(fields.nth(3)?);
            let point = unescape(fields.next()?);
            Some((PathBuf::from(point), root))
        })
        .find(|(_, root)| below_mount(Path::new("/"), root, own).is_some())
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let s = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(s, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn below_mount(mount_point: &Path, mount_root: &str, own: &str) -> Option<PathBuf> {
    let rel = if mount_root == "/" {
        own
    } else {
        let rest = own.strip_prefix(mount_root)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest
    };
    Some(mount_point.join(rel.trim_start_matches('/')))
}

/// mkdir; a leftover directory of the same name is removed first when it is
/// empty (rmdir of a populated cgroup fails, so nothing alive is touched).
fn make_dir(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            remove_tree(dir);
            fs::create_dir(dir)
        }
        other => other,
    }
}

/// Creates the leaf for one run below ward's root.
pub(crate) fn create_leaf(root: &Path, name: &str) -> io::Result<PathBuf> {
    let leaf = root.join(name);
    make_dir(&leaf)?;
    Ok(leaf)
}

/// `cgroup.procs` of a leaf, opened write-only and close-on-exec, for the
/// child to write "0" into between fork and exec.
pub(crate) fn open_procs(leaf: &Path) -> io::Result<OwnedFd> {
    let file = fs::OpenOptions::new()
        .write(true)
        .open(leaf.join("cgroup.procs"))?;
    Ok(OwnedFd::from(file))
}

/// SIGKILLs every process in `dir` and every cgroup below it.
pub(crate) fn kill(dir: &Path) -> io::Result<()> {
    fs::write(dir.join("cgroup.kill"), b"1")
}

pub(crate) fn populated(dir: &Path) -> io::Result<bool> {
    let events = fs::read_to_string(dir.join("cgroup.events"))?;
    events
        .lines()
        .find_map(|line| line.strip_prefix("populated "))
        .map(|v| v.trim() != "0")
        .ok_or_else(|| io::Error::other("cgroup.events has no populated line"))
}

pub(crate) fn procs(dir: &Path) -> io::Result<Vec<u32>> {
    let text = fs::read_to_string(dir.join("cgroup.procs"))?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// rmdir; already gone is fine. Fails (EBUSY) while the cgroup is populated.
pub(crate) fn remove(dir: &Path) -> io::Result<()> {
    match fs::remove_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Removes the leaves below `dir`, then `dir`. Best effort: a populated
/// cgroup stays.
pub(crate) fn remove_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    let _ = remove(dir);
}

/// Whether `path` is a directory of a cgroup v2 file system: a sweep acts on
/// a recorded path only if it is one, so a corrupt state file cannot make it
/// write into some other file.
pub(crate) fn is_cgroup2_dir(path: &Path) -> bool {
    let Ok(fs) = rustix::fs::statfs(path) else {
        return false;
    };
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between libcs
    let magic = fs.f_type as i64;
    magic == CGROUP2_SUPER_MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_the_v2_mount_on_a_hybrid_system() {
        let (point, root) = v2_mount(HYBRID, "/").unwrap();
        assert_eq!(point, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(root, "/");
        assert_eq!(
            below_mount(&point, &root, "/system.slice/ward.service").unwrap(),
            Path::new("/sys/fs/cgroup/unified/system.slice/ward.service")
        );
    }

    #[test]
    fn maps_a_mount_that_shows_a_subtree() {
        let info = "50 40 0:30 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let (point, root) = v2_mount(info, "/docker/abc/inner").unwrap();
        assert_eq!(root, "/docker/abc");
        assert_eq!(
            below_mount(&point, &root, "/docker/abc/inner").unwrap(),
            Path::new("/sys/fs/cgroup/inner")
        );
        assert_eq!(below_mount(&point, &root, "/docker/abcdef"), None);
        assert_eq!(v2_mount(info, "/elsewhere"), None);
    }

    #[test]
    fn no_v2_mount_on_pure_v1() {
        let info = "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(v2_mount(info, "/"), None);
    }

    #[test]
    fn reads_own_path_and_unescapes() {
        assert_eq!(own_v2_path("1:cpu:/\n0::/a/b\n"), Some("/a/b"));
        assert_eq!(own_v2_path("1:cpu:/\n"), None);
        assert_eq!(unescape(r"/mnt/with\040space"), "/mnt/with space");
        assert_eq!(unescape(r"/plain\"), r"/plain\");
    }
}
