//! An instance's log file, rotated by size with rename (never copy-truncate:
//! a reader holding the old file keeps reading whole lines, and a shipper
//! tailing by name sees a new file).
//!
//! Every open, rename and removal goes through the log directory's
//! descriptor without following links ([`crate::files`]): a program that
//! can write to its log dir cannot turn ward's writes into writes
//! elsewhere. A file or directory removed or renamed away while ward writes
//! is noticed (at most [`CHECK_EVERY`] later, and only while there is
//! output) and made again.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memchr::{memchr, memrchr};
use ward_core::LogSpec;

use crate::files::{Appending, Dir, DirPolicy, FileId};

/// While output flows, how often the file at the log path is compared with
/// the one ward writes to (a stat of the path: cheap, and never while the
/// program is quiet).
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(2);

/// A file of lines in one directory, rotated by size with rename: an
/// instance's log ([`InstanceLog`]), the event journal, ward's own log.
/// `P` says where the directory is and how new files are made.
pub struct Rotating<P: Place> {
    place: P,
    path: PathBuf,
    /// The file's name in the directory.
    name: String,
    /// Rotate before a write would make the file larger than this (unless
    /// the file is empty: a single larger line gets a file of its own).
    max_size: u64,
    /// Rotated files kept: `name.1` … `name.keep`.
    keep: u32,
    /// `None` after a rotation (or a failed reopen): the next write opens a
    /// fresh file at `path`.
    file: Option<Box<dyn Write + Send>>,
    /// What `file` is, to tell whether `path` still names it.
    id: Option<FileId>,
    /// When to compare `path` with `file` next.
    check_at: Option<Instant>,
    /// Bytes in the current file, as far as we know: what it had when opened
    /// plus what we wrote.
    size: u64,
    /// A failed write left a line cut short at the end of the file; the next
    /// write first ends it, so that the following line starts on its own.
    mid_line: bool,
    /// Why the file is not open, if opening failed.
    error: Option<io::Error>,
}

/// Where a [`Rotating`] file lives.
pub trait Place: Send {
    /// The directory, opened (and checked, made if missing) now.
    fn dir(&mut self) -> io::Result<Arc<Dir>>;
    /// Permission bits and group of a file made in it.
    fn access(&mut self) -> io::Result<(u32, Option<u32>)>;
}

/// A directory ward opened once and keeps (its state dir), where files are
/// private to ward.
pub struct Kept(pub Arc<Dir>);

impl Place for Kept {
    fn dir(&mut self) -> io::Result<Arc<Dir>> {
        Ok(Arc::clone(&self.0))
    }

    fn access(&mut self) -> io::Result<(u32, Option<u32>)> {
        Ok((crate::files::PRIVATE_FILE, None))
    }
}

/// One instance's log output: the rotating file shared by both streams of
/// every run of the instance. Lives across runs.
pub type InstanceLog = Rotating<LogDir>;

/// An instance's log directory, as its [`LogSpec`] says: opened anew for
/// each open and rotation (the directory may be removed or moved under
/// ward, and is made again then), with the spec's permissions and group.
pub struct LogDir {
    spec: LogSpec,
    /// The configured group's id, once looked up.
    gid: Option<u32>,
}

impl Place for LogDir {
    fn dir(&mut self) -> io::Result<Arc<Dir>> {
        let group = self.group()?;
        let access = &self.spec.access;
        // Who may read the files may list the directory too; nobody else.
        let mut mode = crate::files::PRIVATE_DIR;
        if access.mode & 0o040 != 0 {
            mode |= 0o050;
        }
        if access.mode & 0o004 != 0 {
            mode |= 0o005;
        }
        Dir::open(
            &self.spec.dir,
            DirPolicy {
                mode,
                enforce_mode: false,
                group,
                allow_writable: access.allow_writable_dir,
            },
        )
        .map(Arc::new)
    }

    fn access(&mut self) -> io::Result<(u32, Option<u32>)> {
        Ok((self.spec.access.mode, self.group()?))
    }
}

impl LogDir {
    /// The id of the configured group, looked up once (a lookup may ask a
    /// directory service).
    fn group(&mut self) -> io::Result<Option<u32>> {
        let Some(name) = &self.spec.access.group else {
            return Ok(None);
        };
        if self.gid.is_none() {
            let gid = crate::proc::group_id(name).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot use log group {name:?} for the logs in {}: {e}",
                        self.spec.dir.display()
                    ),
                )
            })?;
            self.gid = Some(gid);
        }
        Ok(self.gid)
    }
}

/// A write that stopped early: `written` bytes of the data reached the file
/// (the last of them possibly a cut line), the rest did not.
#[derive(Debug)]
pub(crate) struct WriteFailure {
    pub(crate) written: usize,
    pub(crate) error: io::Error,
}

/// `<program>.<index>.log`
pub fn log_name(program: &str, index: u32) -> String {
    format!("{program}.{index}.log")
}

/// `<dir>/<program>.<index>.log`
pub fn log_path(dir: &Path, program: &str, index: u32) -> PathBuf {
    dir.join(log_name(program, index))
}

/// `<path>.<n>`: the n-th most recent rotated file.
pub(crate) fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn rotated_name(name: &str, n: u32) -> String {
    format!("{name}.{n}")
}

impl InstanceLog {
    /// The log of one instance, `<spec.dir>/<program>.<index>.log`. Touches
    /// no file: the first write (or [`Rotating::ensure_open`]) opens it,
    /// creating the directory and the file as needed.
    pub fn new(program: &str, index: u32, spec: &LogSpec) -> InstanceLog {
        let place = LogDir {
            spec: spec.clone(),
            gid: None,
        };
        let name = log_name(program, index);
        Rotating::at(place, spec.dir.join(&name), &name, spec.max_size, spec.keep)
    }

    /// [`InstanceLog::new`], then [`Rotating::ensure_open`] (whose error
    /// [`Rotating::error`] keeps).
    #[cfg(test)]
    pub fn open(program: &str, index: u32, spec: &LogSpec) -> InstanceLog {
        let mut log = InstanceLog::new(program, index, spec);
        let _ = log.ensure_open();
        log
    }

    pub(crate) fn spec(&self) -> &LogSpec {
        &self.place.spec
    }
}

impl<P: Place> Rotating<P> {
    /// `name` in the directory `place` gives (`path` is where that is, for
    /// messages). Touches no file: the first write opens it.
    pub fn at(place: P, path: PathBuf, name: &str, max_size: u64, keep: u32) -> Rotating<P> {
        Rotating {
            place,
            path,
            name: name.to_string(),
            max_size,
            keep,
            file: None,
            id: None,
            check_at: None,
            size: 0,
            mid_line: false,
            error: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file is open: [`Rotating::ensure_open`] has nothing to do.
    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// Why the file could not be opened, while it cannot.
    pub fn error(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }

    /// Appends `data`, a run of whole lines (each ending in `\n`), rotating
    /// on line boundaries so that each file stays within `max_size` unless a
    /// single line is larger. One `write` per file touched.
    pub(crate) fn write_lines(&mut self, data: &[u8]) -> Result<(), WriteFailure> {
        self.check_still_there();
        let mut done = 0;
        while done < data.len() {
            let fail = |error| WriteFailure {
                written: done,
                error,
            };
            self.ensure_open().map_err(fail)?;
            let rest = &data[done..];
            let room = self.max_size.saturating_sub(self.size);
            let take = if rest.len() as u64 <= room {
                rest.len()
            } else {
                // room < rest.len(), so it fits a usize.
                match memrchr(b'\n', &rest[..room as usize]) {
                    Some(nl) => nl + 1,
                    // Not even one line fits: in an empty file, the line goes
                    // in alone (oversized); otherwise rotate first.
                    None if self.size == 0 => memchr(b'\n', rest).map_or(rest.len(), |nl| nl + 1),
                    None => 0,
                }
            };
            if take > 0 {
                self.append(&rest[..take])
                    .map_err(|(n, error)| WriteFailure {
                        written: done + n,
                        error,
                    })?;
                done += take;
            }
            if done < data.len() {
                self.rotate().map_err(|error| WriteFailure {
                    written: done,
                    error,
                })?;
            }
        }
        Ok(())
    }

    /// Opens the file if it is not open: the directory (made if missing,
    /// with the spec's permissions, and checked) and the file in it, never
    /// through a link, never anything but a regular file.
    pub(crate) fn ensure_open(&mut self) -> io::Result<()> {
        if self.file.is_some() {
            return Ok(());
        }
        match self.open_file() {
            Ok(opened) => {
                self.id = FileId::of_file(&opened.file).ok();
                self.file = Some(Box::new(opened.file));
                self.check_at = Some(Instant::now() + CHECK_EVERY);
                self.size = opened.size;
                // A line cut by a crash or a full disk is ended first.
                self.mid_line = opened.cut;
                self.error = None;
                Ok(())
            }
            Err(e) => {
                self.error = Some(io::Error::new(e.kind(), e.to_string()));
                Err(e)
            }
        }
    }

    fn open_file(&mut self) -> io::Result<Appending> {
        let dir = self.place.dir()?;
        let (mode, group) = self.place.access()?;
        dir.append(&self.name, mode, group)
    }

    /// While output flows, every [`CHECK_EVERY`]: if the path no longer
    /// names the open file (removed, renamed, its directory removed or
    /// moved), the next write opens a new one at the path.
    fn check_still_there(&mut self) {
        let Some(at) = self.check_at else {
            return;
        };
        let now = Instant::now();
        if now < at || self.file.is_none() {
            return;
        }
        self.check_at = Some(now + CHECK_EVERY);
        let current = match self.place.dir() {
            Ok(dir) => dir.id_of(&self.name).ok().flatten() == self.id,
            Err(_) => false,
        };
        if !current {
            self.close();
        }
    }

    fn close(&mut self) {
        self.file = None;
        self.id = None;
    }

    /// Writes all of `bytes` to the open file; on failure, how many made it.
    fn append(&mut self, bytes: &[u8]) -> Result<(), (usize, io::Error)> {
        let Some(file) = self.file.as_mut() else {
            return Err((0, io::Error::other("log file is not open")));
        };
        if self.mid_line {
            write_fully(file, b"\n").map_err(|(_, e)| (0, e))?;
            self.size += 1;
            self.mid_line = false;
        }
        let result = write_fully(file, bytes);
        let written = match &result {
            Ok(()) => bytes.len(),
            Err((n, _)) => *n,
        };
        self.size += written as u64;
        if written > 0 && bytes[written - 1] != b'\n' {
            self.mid_line = true;
        }
        result
    }

    /// `name.log.(keep-1)` → `name.log.keep`, …, `name.log` → `name.log.1`;
    /// with `keep = 0` the current file is removed. The new file is opened by
    /// the next write, so a failure to create it is retried then. Renames
    /// happen in the directory's descriptor: a link planted at a rotated
    /// name is moved or replaced itself, never followed.
    fn rotate(&mut self) -> io::Result<()> {
        // Closed before the renames: some platforms refuse to rename an open
        // file, and if a rename fails the next write reopens the same file.
        self.close();
        let dir = self.place.dir()?;
        if self.keep == 0 {
            ignore_missing(dir.remove(&self.name))?;
        } else {
            // Only the files there are move: up to the first number that is
            // free (a gap, or the end), which the one below it fills; when
            // none is free, the oldest (`keep`) is replaced. One look per
            // kept file, not `keep` renames each time: with `keep = 1000`
            // and a few files, that is what keeps rotation cheap.
            let free = (1..self.keep)
                .find(|&n| matches!(dir.id_of(&rotated_name(&self.name, n)), Ok(None)))
                .unwrap_or(self.keep);
            for n in (1..free).rev() {
                ignore_missing(dir.rename(
                    &rotated_name(&self.name, n),
                    &rotated_name(&self.name, n + 1),
                ))?;
            }
            ignore_missing(dir.rename(&self.name, &rotated_name(&self.name, 1)))?;
        }
        self.size = 0;
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn replace_writer(&mut self, writer: Box<dyn Write + Send>) {
        self.file = Some(writer);
    }
}

fn write_fully(w: &mut dyn Write, bytes: &[u8]) -> Result<(), (usize, io::Error)> {
    let mut off = 0;
    while off < bytes.len() {
        match w.write(&bytes[off..]) {
            Ok(0) => return Err((off, io::ErrorKind::WriteZero.into())),
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((off, e)),
        }
    }
    Ok(())
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::fs::{self, File, OpenOptions};
    use ward_core::LogFormat;

    pub(crate) fn spec(dir: &Path, max_size: u64, keep: u32) -> LogSpec {
        LogSpec {
            dir: dir.to_path_buf(),
            max_size,
            keep,
            format: LogFormat::Text,
            timestamps: false,
            max_line: 16 * 1024,
            access: Default::default(),
            files: true,
            journald: false,
        }
    }

    /// Accepts `budget` bytes, then fails like a full disk.
    pub(crate) struct Flaky {
        pub(crate) inner: File,
        pub(crate) budget: usize,
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::Error::from_raw_os_error(28));
            }
            let n = buf.len().min(self.budget);
            self.budget -= n;
            self.inner.write(&buf[..n])
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    fn lines(from: u32, to: u32) -> Vec<u8> {
        (from..to)
            .flat_map(|i| format!("line {i:04}\n").into_bytes())
            .collect()
    }

    #[test]
    fn open_creates_the_directory_and_appends() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        let mut log = InstanceLog::open("api", 2, &spec(&dir, 1000, 2));
        assert_eq!(log.path(), dir.join("api.2.log"));
        log.write_lines(b"one\n").unwrap();
        drop(log);
        let mut log = InstanceLog::open("api", 2, &spec(&dir, 1000, 2));
        assert_eq!(log.size, 4);
        log.write_lines(b"two\n").unwrap();
        assert_eq!(read(log.path()), "one\ntwo\n");
    }

    #[test]
    fn a_log_that_cannot_be_opened_keeps_trying() {
        let tmp = tempfile::tempdir().unwrap();
        // A directory under a regular file: creating it fails, even for root.
        let blocker = tmp.path().join("blocker");
        fs::write(&blocker, "").unwrap();
        let dir = blocker.join("logs");
        let mut log = InstanceLog::open("api", 0, &spec(&dir, 1000, 2));
        assert!(log.error().is_some());
        assert_eq!(log.path(), dir.join("api.0.log"));
        let failure = log.write_lines(b"lost\n").unwrap_err();
        assert_eq!(failure.written, 0);
        fs::remove_file(&blocker).unwrap();
        log.write_lines(b"kept\n").unwrap();
        assert!(log.error().is_none());
        assert_eq!(read(log.path()), "kept\n");
    }

    #[test]
    fn rotates_on_line_boundaries_and_keeps_n() {
        let tmp = tempfile::tempdir().unwrap();
        // 10 bytes a line; 35-byte files hold 3 lines.
        let mut log = InstanceLog::open("w", 0, &spec(tmp.path(), 35, 2));
        let path = log.path().to_path_buf();
        for chunk in [lines(0, 2), lines(2, 7), lines(7, 8), lines(8, 13)] {
            log.write_lines(&chunk).unwrap();
        }
        // 13 lines: files of 3 lines each, newest last; two rotated kept.
        assert_eq!(
            read(&rotated_path(&path, 2)),
            String::from_utf8(lines(6, 9)).unwrap()
        );
        assert_eq!(
            read(&rotated_path(&path, 1)),
            String::from_utf8(lines(9, 12)).unwrap()
        );
        assert_eq!(read(&path), String::from_utf8(lines(12, 13)).unwrap());
        assert!(!rotated_path(&path, 3).exists());
        for p in [path.clone(), rotated_path(&path, 1), rotated_path(&path, 2)] {
            assert!(fs::metadata(&p).unwrap().len() <= 35);
        }
    }

    #[test]
    fn a_gap_in_the_rotated_files_takes_the_shift_and_what_is_past_it_stays() {
        let tmp = tempfile::tempdir().unwrap();
        // 10 bytes a line; 25-byte files hold 2 lines; up to 5 kept.
        let mut log = InstanceLog::open("w", 0, &spec(tmp.path(), 25, 5));
        let path = log.path().to_path_buf();
        fs::write(rotated_path(&path, 1), "one\n").unwrap();
        fs::write(rotated_path(&path, 3), "three\n").unwrap();
        fs::write(rotated_path(&path, 7), "beyond keep\n").unwrap();
        log.write_lines(&lines(0, 3)).unwrap();
        // .1 moved into the gap at .2; .3 and what is past `keep` stay.
        assert_eq!(
            read(&rotated_path(&path, 1)),
            String::from_utf8(lines(0, 2)).unwrap()
        );
        assert_eq!(read(&rotated_path(&path, 2)), "one\n");
        assert_eq!(read(&rotated_path(&path, 3)), "three\n");
        assert!(!rotated_path(&path, 4).exists());
        assert_eq!(read(&rotated_path(&path, 7)), "beyond keep\n");
        // With every number taken, the oldest kept one goes.
        for n in 4..=5 {
            fs::write(rotated_path(&path, n), format!("{n}\n")).unwrap();
        }
        log.write_lines(&lines(3, 5)).unwrap();
        assert_eq!(read(&rotated_path(&path, 5)), "4\n");
        assert_eq!(read(&rotated_path(&path, 4)), "three\n");
        assert_eq!(
            read(&rotated_path(&path, 2)),
            String::from_utf8(lines(0, 2)).unwrap()
        );
        assert_eq!(read(&rotated_path(&path, 7)), "beyond keep\n");
    }

    #[test]
    fn fills_files_exactly_to_max_size() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = InstanceLog::open("w", 0, &spec(tmp.path(), 30, 1));
        log.write_lines(&lines(0, 4)).unwrap();
        let path = log.path().to_path_buf();
        assert_eq!(fs::metadata(rotated_path(&path, 1)).unwrap().len(), 30);
        assert_eq!(read(&path), "line 0003\n");
    }

    #[test]
    fn an_oversized_line_gets_a_file_of_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = InstanceLog::open("w", 0, &spec(tmp.path(), 20, 3));
        let big = format!("{}\n", "x".repeat(50));
        let data = format!("a\n{big}b\n");
        log.write_lines(data.as_bytes()).unwrap();
        let path = log.path().to_path_buf();
        assert_eq!(read(&rotated_path(&path, 2)), "a\n");
        assert_eq!(read(&rotated_path(&path, 1)), big);
        assert_eq!(read(&path), "b\n");
        // An empty file takes an oversized line without rotating first.
        let mut log = InstanceLog::open("v", 0, &spec(tmp.path(), 20, 3));
        log.write_lines(big.as_bytes()).unwrap();
        assert_eq!(read(log.path()), big);
        assert!(!rotated_path(log.path(), 1).exists());
    }

    #[test]
    fn keep_zero_removes_the_full_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = InstanceLog::open("w", 0, &spec(tmp.path(), 25, 0));
        log.write_lines(&lines(0, 5)).unwrap();
        let path = log.path().to_path_buf();
        assert_eq!(read(&path), String::from_utf8(lines(4, 5)).unwrap());
        assert!(!rotated_path(&path, 1).exists());
    }

    #[test]
    fn reopening_an_oversized_file_rotates_before_writing() {
        let tmp = tempfile::tempdir().unwrap();
        let s = spec(tmp.path(), 25, 1);
        let path = log_path(tmp.path(), "w", 0);
        fs::write(&path, lines(0, 5)).unwrap();
        let mut log = InstanceLog::open("w", 0, &s);
        log.write_lines(b"new\n").unwrap();
        assert_eq!(
            read(&rotated_path(&path, 1)),
            String::from_utf8(lines(0, 5)).unwrap()
        );
        assert_eq!(read(&path), "new\n");
    }

    #[test]
    fn a_failed_rotation_is_a_failed_write_and_is_retried() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = InstanceLog::open("w", 0, &spec(tmp.path(), 25, 1));
        let path = log.path().to_path_buf();
        // A non-empty directory where the rotated file goes: rename fails
        // even for root.
        fs::create_dir_all(rotated_path(&path, 1).join("x")).unwrap();
        let data = lines(0, 3);
        let failure = log.write_lines(&data).unwrap_err();
        assert_eq!(failure.written, 20, "two lines fit before the rotation");
        assert_eq!(read(&path), String::from_utf8(lines(0, 2)).unwrap());
        let failure = log.write_lines(b"next line\n").unwrap_err();
        assert_eq!(failure.written, 0);
        fs::remove_dir_all(rotated_path(&path, 1)).unwrap();
        log.write_lines(b"next line\n").unwrap();
        assert_eq!(
            read(&rotated_path(&path, 1)),
            String::from_utf8(lines(0, 2)).unwrap()
        );
        assert_eq!(read(&path), "next line\n");
    }

    #[test]
    fn a_cut_line_is_ended_before_the_next_write() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = InstanceLog::open("w", 0, &spec(tmp.path(), 1000, 1));
        let file = OpenOptions::new().append(true).open(log.path()).unwrap();
        log.replace_writer(Box::new(Flaky {
            inner: file,
            budget: 14,
        }));
        let failure = log.write_lines(b"first\nsecond\nthird\n").unwrap_err();
        assert_eq!(failure.written, 14);
        assert_eq!(failure.error.raw_os_error(), Some(28));
        let file = OpenOptions::new().append(true).open(log.path()).unwrap();
        log.replace_writer(Box::new(file));
        log.write_lines(b"fourth\n").unwrap();
        assert_eq!(read(log.path()), "first\nsecond\nt\nfourth\n");
        assert_eq!(log.size, 22);
    }

    #[cfg(unix)]
    fn due(log: &mut InstanceLog) {
        log.check_at = Some(Instant::now());
    }

    // Wine 8 makes a symbolic link a Unix one that its file calls follow.
    #[cfg(unix)]
    #[test]
    fn a_link_at_the_log_path_is_refused_and_its_target_untouched() {
        use crate::files::testing::symlink;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("logs");
        fs::create_dir(&dir).unwrap();
        let target = tmp.path().join("passwd");
        fs::write(&target, "root:x:0:0\n").unwrap();
        symlink(&target, &dir.join("api.0.log"));
        let mut log = InstanceLog::open("api", 0, &spec(&dir, 1000, 2));
        let e = log.error().expect("refused").to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(log.write_lines(b"evil\n").is_err());
        assert_eq!(read(&target), "root:x:0:0\n");
        // Once the link is gone, logging resumes.
        fs::remove_file(dir.join("api.0.log")).unwrap();
        log.write_lines(b"good\n").unwrap();
        assert_eq!(read(&dir.join("api.0.log")), "good\n");
    }

    // Wine 8 makes a symbolic link a Unix one that its file calls follow.
    #[cfg(unix)]
    #[test]
    fn rotation_moves_links_instead_of_following_them() {
        use crate::files::testing::symlink;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("logs");
        let target = tmp.path().join("shadow");
        fs::write(&target, "secret\n").unwrap();
        let mut log = InstanceLog::open("w", 0, &spec(&dir, 25, 2));
        // Links planted at the rotated names, as a program owning the
        // directory could between two rotations.
        symlink(&target, &dir.join("w.0.log.1"));
        symlink(&target, &dir.join("w.0.log.2"));
        log.write_lines(&lines(0, 7)).unwrap();
        assert_eq!(read(&target), "secret\n");
        assert_eq!(
            read(&dir.join("w.0.log")),
            String::from_utf8(lines(6, 7)).unwrap()
        );
    }

    #[cfg(unix)] // permission bits
    #[test]
    fn files_and_directories_are_private_by_default() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("logs");
        let mut log = InstanceLog::open("w", 0, &spec(&dir, 1000, 2));
        log.write_lines(b"x\n").unwrap();
        let mode = |p: &Path| crate::files::testing::mode_of(p) & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(log.path()), 0o600);
        // Shared with the group: the files say so, and the group may enter.
        let shared_dir = tmp.path().join("shared");
        let mut shared = spec(&shared_dir, 1000, 2);
        shared.access.mode = 0o640;
        let mut log = InstanceLog::open("w", 0, &shared);
        log.write_lines(b"x\n").unwrap();
        assert_eq!(mode(&shared_dir), 0o750);
        assert_eq!(mode(log.path()), 0o640);
    }

    // Windows keeps a file removed while open under its name until it is
    // closed (before POSIX delete semantics, and under Wine), and a
    // directory ward holds open cannot be removed or renamed at all.
    #[cfg(unix)]
    #[test]
    fn a_removed_file_is_made_again() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = InstanceLog::open("w", 0, &spec(tmp.path(), 1000, 2));
        log.write_lines(b"one\n").unwrap();
        fs::remove_file(log.path()).unwrap();
        // Before the check is due, lines go to the open (removed) file.
        log.write_lines(b"lost\n").unwrap();
        due(&mut log);
        log.write_lines(b"two\n").unwrap();
        assert_eq!(read(log.path()), "two\n");
    }

    #[cfg(unix)]
    #[test]
    fn a_removed_or_moved_directory_is_made_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("logs");
        let mut log = InstanceLog::open("w", 0, &spec(&dir, 1000, 2));
        log.write_lines(b"one\n").unwrap();
        fs::remove_dir_all(&dir).unwrap();
        due(&mut log);
        log.write_lines(b"two\n").unwrap();
        assert_eq!(read(log.path()), "two\n");
        fs::rename(&dir, tmp.path().join("old")).unwrap();
        due(&mut log);
        log.write_lines(b"three\n").unwrap();
        assert_eq!(read(log.path()), "three\n");
        assert_eq!(read(&tmp.path().join("old/w.0.log")), "two\n");
    }

    #[cfg(unix)] // Windows has no FIFOs in its file systems
    #[test]
    fn a_fifo_at_the_log_path_is_an_error_not_a_hang() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("w.0.log");
        crate::files::testing::fifo(&path);
        let mut log = InstanceLog::open("w", 0, &spec(tmp.path(), 1000, 2));
        let e = log.error().expect("refused").to_string();
        assert!(e.contains("FIFO"), "{e}");
        assert!(log.write_lines(b"x\n").is_err());
    }
}
