//! Unix: directory descriptors, `openat` with `O_NOFOLLOW`, and checks of
//! owner, mode and file type.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, CWD};

use super::{context, err, Appending, DirPolicy};

/// The identity of a file: the same (device, inode) is the same file,
/// whatever its name now is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(stat: &Stat) -> FileId {
        #[allow(clippy::unnecessary_cast)] // the widths differ between platforms
        FileId {
            dev: stat.st_dev as u64,
            ino: stat.st_ino as u64,
        }
    }

    /// The identity of an open file.
    pub fn of_file(file: &File) -> io::Result<FileId> {
        Ok(FileId::of(&rustix::fs::fstat(file)?))
    }
}

/// An open, checked directory: every file in it is reached through its
/// descriptor, so renaming or replacing a directory along its path after
/// the check changes nothing about where ward's files go.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

fn file_type_name(stat: &Stat) -> &'static str {
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "not a regular file",
    }
}

fn is_regular(stat: &Stat) -> bool {
    FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile
}

/// Refuses what is not a regular file, naming what it is.
fn ensure_regular(file: &File, path: &Path) -> io::Result<Stat> {
    let stat = rustix::fs::fstat(file)?;
    if !is_regular(&stat) {
        return Err(err(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is {}, not a regular file; ward uses only regular files there",
                path.display(),
                file_type_name(&stat)
            ),
        ));
    }
    Ok(stat)
}

/// Says what `ELOOP` from an `O_NOFOLLOW` open means.
fn explain_open(e: rustix::io::Errno, path: &Path) -> io::Error {
    if e == rustix::io::Errno::LOOP {
        return err(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is a symbolic link; ward does not follow links in its directories (remove it)",
                path.display()
            ),
        );
    }
    if e == rustix::io::Errno::NXIO {
        // O_WRONLY|O_NONBLOCK on a FIFO with no reader.
        return err(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is a FIFO, not a regular file; ward uses only regular files there",
                path.display()
            ),
        );
    }
    context(e.into(), || format!("cannot open {}", path.display()))
}

/// What tests of other modules need of the file system's Unix side: links
/// and permission bits.
#[cfg(test)]
pub mod testing {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    /// A symbolic link at `link` to `target`.
    pub fn symlink(target: &Path, link: &Path) {
        std::os::unix::fs::symlink(target, link).unwrap();
    }

    /// The permission bits of `path`.
    pub fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    /// A FIFO at `path`.
    pub fn fifo(path: &Path) {
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            path,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
    }
}

fn mode(bits: u32) -> Mode {
    Mode::from_raw_mode(bits as _)
}

fn perms(stat: &Stat) -> u32 {
    #[allow(clippy::unnecessary_cast)]
    let m = stat.st_mode as u32;
    m & 0o7777
}

/// Why no one but root could change `path` (a file root will run or read
/// at every boot), or `Ok`: it and every folder above it belong to root,
/// and none is writable by group or others (a folder with the sticky bit,
/// such as /tmp, may be: no one else can replace root's entries in it).
pub fn only_root_can_change(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let mut at = Some(path);
    while let Some(p) = at {
        let meta = std::fs::symlink_metadata(p)
            .map_err(|e| format!("cannot look at {}: {e}", p.display()))?;
        let sticky_dir = meta.is_dir() && meta.mode() & 0o1000 != 0;
        if meta.uid() != 0 {
            return Err(format!(
                "{} belongs to uid {}, not root",
                p.display(),
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 && !sticky_dir {
            return Err(format!(
                "{} can be written by its group or by others (mode {:o})",
                p.display(),
                meta.mode() & 0o7777
            ));
        }
        at = p.parent();
    }
    Ok(())
}

/// `path` with every link resolved.
pub fn canonical(path: &Path) -> io::Result<PathBuf> {
    path.canonicalize()
}

/// Whether `a` and `b` are on one file system (a search for a file up the
/// directory tree stops where this is false, as git's does).
pub fn same_filesystem(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => false,
    }
}

fn read_bounded(file: File, path: &Path, max: u64) -> io::Result<Vec<u8>> {
    ensure_regular(&file, path)?;
    super::read_at_most(file, path, max)
}

impl Dir {
    /// Opens the directory at `path`, creating it (and its parents) if it
    /// is missing, and checks it: a directory (not a link to one), owned by
    /// ward's user or root, not writable by group or others unless the
    /// policy allows it. Errors name the path and say what to do.
    pub fn open(path: &Path, policy: DirPolicy) -> io::Result<Dir> {
        let created = match std::fs::symlink_metadata(path) {
            Ok(_) => false,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        context(e, || format!("cannot create {}", parent.display()))
                    })?;
                }
                match rustix::fs::mkdirat(CWD, path, mode(policy.mode)) {
                    Ok(()) => true,
                    // Made meanwhile by someone else: checked below like any.
                    Err(rustix::io::Errno::EXIST) => false,
                    Err(e) => {
                        return Err(context(e.into(), || {
                            format!("cannot create {}", path.display())
                        }))
                    }
                }
            }
            Err(e) => return Err(context(e, || format!("cannot inspect {}", path.display()))),
        };
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            // With O_DIRECTORY, Linux reports a symlink as "not a directory".
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR
                if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) =>
            {
                err(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} is a symbolic link; ward does not follow links for its directories \
                     (point the config at the real directory)",
                        path.display()
                    ),
                )
            }
            rustix::io::Errno::NOTDIR => err(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} exists and is not a directory; remove it or choose another path",
                    path.display()
                ),
            ),
            e => context(e.into(), || format!("cannot open {}", path.display())),
        })?;
        let dir = Dir {
            fd,
            path: path.to_path_buf(),
        };
        let stat = rustix::fs::fstat(&dir.fd)?;
        if created {
            // mkdir's mode went through the umask: set it exactly.
            if let Some(gid) = policy.group {
                rustix::fs::fchown(&dir.fd, None, Some(rustix::fs::Gid::from_raw(gid))).map_err(
                    |e| {
                        context(e.into(), || {
                            format!("cannot set the group of {}", path.display())
                        })
                    },
                )?;
            }
            rustix::fs::fchmod(&dir.fd, mode(policy.mode))?;
            return Ok(dir);
        }
        dir.check_owner(&stat)?;
        if policy.enforce_mode && perms(&stat) != policy.mode {
            rustix::fs::fchmod(&dir.fd, mode(policy.mode)).map_err(|e| {
                context(e.into(), || {
                    format!("cannot set the mode of {}", path.display())
                })
            })?;
        } else if perms(&stat) & 0o022 != 0 && !policy.allow_writable {
            return Err(err(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is writable by {} (mode {:04o}); another user could replace ward's files \
                     in it with links. Run `chmod go-w {}`, or use another directory",
                    path.display(),
                    if perms(&stat) & 0o002 != 0 {
                        "every user"
                    } else {
                        "its group"
                    },
                    perms(&stat),
                    path.display()
                ),
            ));
        }
        Ok(dir)
    }

    /// Opens a directory a person named for output of their own (`ward
    /// init`'s folder, `ward man --dir`): it must exist and be a directory;
    /// whose it is, is theirs to choose. Files in it are still made only
    /// relative to its descriptor, never through a link.
    pub fn open_named(path: &Path) -> io::Result<Dir> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| context(e.into(), || format!("cannot open {}", path.display())))?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    fn check_owner(&self, stat: &Stat) -> io::Result<()> {
        let me = rustix::process::geteuid().as_raw();
        let owner = stat.st_uid;
        if owner != me && owner != 0 {
            return Err(err(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} belongs to uid {owner}; ward (uid {me}) uses only directories owned by \
                     itself or root, so that no other user can swap its files",
                    self.path.display()
                ),
            ));
        }
        Ok(())
    }

    /// `<dir>/<name>`, for messages.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn open_at(&self, name: &str, flags: OFlags, bits: u32) -> io::Result<File> {
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            flags | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            mode(bits),
        )
        .map_err(|e| explain_open(e, &self.join(name)))?;
        Ok(File::from(fd))
    }

    /// Opens `name` for appending, creating it with exactly `bits` (and
    /// `group`, if given). An existing file must be a regular file; it is
    /// given `bits` and `group` too, so a changed setting applies to the
    /// current file.
    pub fn append(&self, name: &str, bits: u32, group: Option<u32>) -> io::Result<Appending> {
        // Read as well, to see how the file ends.
        let file = self.open_at(name, OFlags::RDWR | OFlags::APPEND | OFlags::CREATE, bits)?;
        let stat = ensure_regular(&file, &self.join(name))?;
        self.settle(&file, &stat, name, bits, group)?;
        // A regular file never blocks; blocking mode is what writers expect.
        rustix::fs::fcntl_setfl(&file, OFlags::APPEND)?;
        #[allow(clippy::unnecessary_cast)]
        let size = stat.st_size as u64;
        let mut last = [0u8; 1];
        let cut = size > 0
            && rustix::io::pread(&file, &mut last, size - 1).is_ok_and(|n| n == 1)
            && last[0] != b'\n';
        Ok(Appending { file, size, cut })
    }

    /// Opens (creating) `name` for reading and writing, for a lock file.
    pub fn lock_file(&self, name: &str, bits: u32) -> io::Result<File> {
        let file = self.open_at(name, OFlags::RDWR | OFlags::CREATE, bits)?;
        let stat = ensure_regular(&file, &self.join(name))?;
        self.settle(&file, &stat, name, bits, None)?;
        rustix::fs::fcntl_setfl(&file, OFlags::empty())?;
        Ok(file)
    }

    /// Gives a file ward owns the mode and group it should have.
    fn settle(
        &self,
        file: &File,
        stat: &Stat,
        name: &str,
        bits: u32,
        group: Option<u32>,
    ) -> io::Result<()> {
        if let Some(gid) = group {
            if stat.st_gid != gid {
                rustix::fs::fchown(file, None, Some(rustix::fs::Gid::from_raw(gid))).map_err(
                    |e| {
                        context(e.into(), || {
                            format!("cannot give {} to group {gid}", self.join(name).display())
                        })
                    },
                )?;
            }
        }
        if perms(stat) != bits {
            rustix::fs::fchmod(file, mode(bits)).map_err(|e| {
                context(e.into(), || {
                    format!("cannot set the mode of {}", self.join(name).display())
                })
            })?;
        }
        Ok(())
    }

    /// Opens the regular file `name` for reading.
    pub fn open_read(&self, name: &str) -> io::Result<File> {
        let file = self.open_at(name, OFlags::RDONLY, 0)?;
        ensure_regular(&file, &self.join(name))?;
        Ok(file)
    }

    /// Opens the existing regular file `name` for appending.
    pub fn open_append(&self, name: &str) -> io::Result<File> {
        let file = self.open_at(name, OFlags::WRONLY | OFlags::APPEND, 0)?;
        ensure_regular(&file, &self.join(name))?;
        Ok(file)
    }

    /// Reads all of `name` (a regular file), at most `max` bytes.
    pub fn read(&self, name: &str, max: u64) -> io::Result<Vec<u8>> {
        let file = self.open_at(name, OFlags::RDONLY, 0)?;
        read_bounded(file, &self.join(name), max)
    }

    /// Creates `name` with exactly `bits`; an existing file (or a link)
    /// under that name is an `AlreadyExists` error and is left alone.
    pub fn create_exclusive(&self, name: &str, bits: u32) -> io::Result<File> {
        let file = self.open_at(name, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL, bits)?;
        rustix::fs::fchmod(&file, mode(bits))?;
        Ok(file)
    }

    /// Makes the directory's entries durable (after a rename).
    pub(super) fn sync_entries(&self) -> io::Result<()> {
        rustix::fs::fsync(&self.fd).map_err(io::Error::from)
    }

    /// Renames `from` to `to` within this directory (a link is renamed
    /// itself, never followed).
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        rustix::fs::renameat(&self.fd, from, &self.fd, to).map_err(io::Error::from)
    }

    /// Removes the file `name` (a link itself, never what it points to).
    pub fn remove(&self, name: &str) -> io::Result<()> {
        rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()).map_err(io::Error::from)
    }

    /// The identity of what is at `name` now (a link is not followed), or
    /// `None` when nothing is.
    pub fn id_of(&self, name: &str) -> io::Result<Option<FileId>> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(FileId::of(&stat))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The directory's own descriptor (to sync it, or to compare it).
    #[allow(dead_code)] // for tests and diagnostics
    pub fn fd(&self) -> impl AsFd + '_ {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DirPolicy, PRIVATE_FILE};
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn mode_of(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn creates_directories_and_files_with_exact_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a/state");
        let dir = Dir::open(&path, DirPolicy::private()).unwrap();
        assert_eq!(mode_of(&path), 0o700);
        let mut opened = dir.append("x.log", 0o640, None).unwrap();
        assert_eq!((opened.size, opened.cut), (0, false));
        opened.file.write_all(b"hello").unwrap();
        assert_eq!(mode_of(&path.join("x.log")), 0o640);
        // A changed setting applies to the existing file.
        let opened = dir.append("x.log", PRIVATE_FILE, None).unwrap();
        assert_eq!((opened.size, opened.cut), (5, true));
        assert_eq!(mode_of(&path.join("x.log")), 0o600);
    }

    #[test]
    fn an_existing_state_dir_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s");
        std::fs::create_dir(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Dir::open(&path, DirPolicy::private()).unwrap();
        assert_eq!(mode_of(&path), 0o700);
    }

    #[test]
    fn a_writable_directory_is_refused_unless_allowed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("logs");
        std::fs::create_dir(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let policy = DirPolicy {
            enforce_mode: false,
            ..DirPolicy::private()
        };
        let e = Dir::open(&path, policy).unwrap_err();
        assert!(e.to_string().contains("writable by every user"), "{e}");
        assert!(e.to_string().contains("chmod go-w"), "{e}");
        let allowed = DirPolicy {
            allow_writable: true,
            ..policy
        };
        Dir::open(&path, allowed).unwrap();
        assert_eq!(
            mode_of(&path),
            0o777,
            "an operator's directory keeps its mode"
        );
    }

    #[test]
    fn links_are_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let target = tmp.path().join("target");
        std::fs::write(&target, "precious\n").unwrap();
        // A link for a directory.
        let link = tmp.path().join("link");
        symlink(&real, &link).unwrap();
        let e = Dir::open(&link, DirPolicy::private()).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // A link where a file belongs: append, lock, read and replace refuse
        // or replace the link itself; the target is untouched.
        let dir = Dir::open(&real, DirPolicy::private()).unwrap();
        symlink(&target, real.join("api.0.log")).unwrap();
        let e = dir.append("api.0.log", 0o600, None).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert!(dir.lock_file("api.0.log", 0o600).is_err());
        assert!(dir.read("api.0.log", 100).is_err());
        symlink(&target, real.join("state.json")).unwrap();
        dir.replace("state.json", b"{}\n", 0o600, true).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
        assert!(std::fs::symlink_metadata(real.join("state.json"))
            .unwrap()
            .is_file());
        // A planted temporary file (or link) is replaced, not followed.
        symlink(&target, real.join(".state.json.tmp")).unwrap();
        dir.replace("state.json", b"{}\n", 0o600, false).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path(), DirPolicy::private()).unwrap();
        let fifo = tmp.path().join("w.0.log");
        rustix::fs::mkfifoat(CWD, &fifo, Mode::from_raw_mode(0o600)).unwrap();
        let e = dir.append("w.0.log", 0o600, None).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        let e = dir.read("w.0.log", 100).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        let e = super::super::open_regular(&fifo).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        let e = super::super::append_existing(&fifo).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        let e = super::super::open_regular(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
    }

    #[test]
    fn a_named_file_is_opened_in_its_folder_never_through_a_link() {
        use super::super::{append_existing, open_regular};
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("precious");
        std::fs::write(&target, "keep\n").unwrap();
        let link = tmp.path().join("ward.log");
        testing::symlink(&target, &link);
        for e in [
            open_regular(&link).unwrap_err(),
            append_existing(&link).unwrap_err(),
        ] {
            assert!(e.to_string().contains("symbolic link"), "{e}");
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
        // A plain file: read, and appended to.
        std::io::Write::write_all(&mut append_existing(&target).unwrap(), b"more\n").unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut open_regular(&target).unwrap(), &mut text).unwrap();
        assert_eq!(text, "keep\nmore\n");
        // A missing file is not made.
        let missing = tmp.path().join("none");
        assert_eq!(
            append_existing(&missing).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert!(!missing.exists());
        let e = open_regular(tmp.path()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    }

    #[test]
    fn reads_are_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path(), DirPolicy::private()).unwrap();
        std::fs::write(tmp.path().join("big"), vec![b'x'; 101]).unwrap();
        assert_eq!(dir.read("big", 101).unwrap().len(), 101);
        let e = dir.read("big", 100).unwrap_err();
        assert!(e.to_string().contains("larger than 100 bytes"), "{e}");
    }

    #[test]
    fn ids_tell_files_apart() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path(), DirPolicy::private()).unwrap();
        let file = dir.append("a", 0o600, None).unwrap().file;
        let id = FileId::of_file(&file).unwrap();
        assert_eq!(dir.id_of("a").unwrap(), Some(id));
        dir.remove("a").unwrap();
        assert_eq!(dir.id_of("a").unwrap(), None);
        dir.append("a", 0o600, None).unwrap();
        assert_ne!(dir.id_of("a").unwrap(), Some(id));
    }
}
