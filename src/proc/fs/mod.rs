//! ward's own files, the platform's side: see `src/files` for the rules
//! and the names the rest of ward uses.

use std::path::Path;

#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

/// Fixtures for tests of ward's files elsewhere in ward: Unix's links,
/// FIFOs and permission bits. (Windows has none a test under Wine could
/// use: Wine 8 keeps no access lists and follows its symbolic links.)
#[cfg(test)]
pub mod testing {
    #[cfg(unix)]
    pub use super::unix::testing::*;
}
#[cfg(unix)]
pub use unix::{canonical, only_root_can_change, same_filesystem, Dir, FileId};
#[cfg(windows)]
pub use windows::{canonical, only_root_can_change, same_filesystem, Dir, FileId};

/// A file opened for appending.
#[derive(Debug)]
pub struct Appending {
    pub file: std::fs::File,
    /// Its size when opened.
    pub size: u64,
    /// It does not end in a newline: something cut its last line (a full
    /// disk, a crash); the next line must start on a line of its own.
    pub cut: bool,
}

/// For the named pipe's access list and its holder (`src/transport`).
#[cfg(windows)]
pub(crate) use windows::{makers_in, own_sid, owner_of, process_sid, Descriptor};

/// Opens `path` for reading if it is a regular file: relative to its
/// folder's handle, never through a link at its last component, never
/// blocking on a FIFO.
pub fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    let (dir, name) = folder_and_name(path)?;
    dir.open_read(name)
}

/// Opens the existing regular file at `path` for appending, as
/// [`open_regular`] opens it.
pub fn append_existing(path: &Path) -> std::io::Result<std::fs::File> {
    let (dir, name) = folder_and_name(path)?;
    dir.open_append(name)
}

/// The folder `path` is in (opened as a person named it) and the name of
/// the file in it.
fn folder_and_name(path: &Path) -> std::io::Result<(Dir, &str)> {
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        err(
            std::io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((Dir::open_named(folder)?, name))
}

impl Dir {
    /// Creates `name` anew with exactly `bits` (a stale file or link of
    /// that name is removed first; the new one is made exclusively).
    pub fn create_new(&self, name: &str, bits: u32) -> std::io::Result<std::fs::File> {
        match self.create_exclusive(name, bits) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                self.remove(name)?;
                self.create_exclusive(name, bits)
            }
            other => other,
        }
    }

    /// Replaces `name` with `contents` atomically: written to a temporary
    /// file created exclusively (a stale one is removed first), closed,
    /// then renamed over `name`. `durable`: on disk before this returns,
    /// rename included.
    pub fn replace(
        &self,
        name: &str,
        contents: &[u8],
        bits: u32,
        durable: bool,
    ) -> std::io::Result<()> {
        use std::io::Write;
        let tmp = format!(".{name}.tmp");
        let mut file = self.create_new(&tmp, bits)?;
        let written = (|| {
            file.write_all(contents)?;
            if durable {
                file.sync_data()?;
            }
            drop(file);
            self.rename(&tmp, name)
        })();
        if written.is_err() {
            let _ = self.remove(&tmp);
        }
        written?;
        if durable {
            self.sync_entries()?;
        }
        Ok(())
    }
}

fn err(kind: std::io::ErrorKind, msg: String) -> std::io::Error {
    std::io::Error::new(kind, msg)
}

/// `e` with what ward was doing and where, keeping its kind.
fn context(e: std::io::Error, what: impl FnOnce() -> String) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", what()))
}

/// All of `file` (checked regular by the caller), at most `max` bytes: a
/// bigger one is an error naming `path`.
pub(crate) fn read_at_most(
    file: std::fs::File,
    path: &std::path::Path,
    max: u64,
) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut data = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut data)?;
    if data.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} is larger than {max} bytes, the most ward reads of it",
                path.display()
            ),
        ));
    }
    Ok(data)
}

/// Files ward creates for itself: readable by ward's user only.
pub const PRIVATE_FILE: u32 = 0o600;

/// Directories ward creates for itself.
pub const PRIVATE_DIR: u32 = 0o700;

/// How a directory ward uses is created and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirPolicy {
    /// Permission bits of the directory when ward creates it.
    pub mode: u32,
    /// Also set `mode` on a directory that already exists (ward's own state
    /// dir); otherwise an existing directory keeps its mode and is only
    /// checked (a log dir the operator made).
    pub enforce_mode: bool,
    /// The group the directory is given when ward creates it (a log dir
    /// shared with a log shipper's group).
    pub group: Option<u32>,
    /// Accept a directory writable by its group or by others. Anyone who can
    /// write to a directory can swap ward's files in it for links, so this
    /// is off unless the config asks for it.
    pub allow_writable: bool,
}

impl DirPolicy {
    /// ward's own directory: created 0700, kept at `mode`.
    pub fn private() -> DirPolicy {
        DirPolicy {
            mode: PRIVATE_DIR,
            enforce_mode: true,
            group: None,
            allow_writable: false,
        }
    }
}
