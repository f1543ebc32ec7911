//! The one safe way to open ward's own files: the state dir (lock,
//! `state.json`, `events.jsonl`, `ward.log`) and the log dirs.
//!
//! ward runs as root and may run programs as other users, so a file in its
//! directories must never be a way to make ward write somewhere else:
//!
//! - a directory is opened once per use, without following a symlink, and
//!   refused unless it belongs to ward's user (or root) and is not writable
//!   by its group or by others (see [`DirPolicy`]);
//! - every file is opened relative to that directory's descriptor, with
//!   `O_NOFOLLOW` (a symlink is an error, never followed) and `O_NONBLOCK`
//!   (a FIFO cannot freeze ward), and used only if it is a regular file; a
//!   file named by its path ([`open_regular`], [`append_existing`]: a log
//!   that `ward logs` reads, the lock `ward down` waits on) is opened the
//!   same way, relative to its folder;
//! - new files are created with exact permissions (not left to the umask);
//!   replaced files are written under a temporary name created exclusively,
//!   then renamed in the same directory;
//! - reads are bounded.
//!
//! `docs/security.md` states the rules for users. The implementations are
//! `src/proc/fs/unix.rs` and `src/proc/fs/windows.rs` (`NtCreateFile`
//! with a root directory is its `openat`), with every other platform
//! difference of ward in `src/proc`; this module is their one door for the
//! rest of ward.

// Windows' tests use none of these fixtures.
#[cfg(test)]
#[allow(unused_imports)]
pub use crate::proc::fs::testing;
pub use crate::proc::fs::{
    append_existing, canonical, only_root_can_change, open_regular, same_filesystem, Appending,
    Dir, DirPolicy, FileId, PRIVATE_DIR, PRIVATE_FILE,
};
