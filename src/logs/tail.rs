//! Reading an instance's log back: the last lines, across rotated files.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use memchr::memrchr_iter;

use super::rotate::{log_path, rotated_path};

/// How much is read per step when walking a file backwards.
const BLOCK: usize = 64 * 1024;
/// Rotation keeps at most this many files (the configuration's limit).
const MAX_ROTATED: u32 = 1000;

/// The last `n` lines of an instance's log, as stored (formatted lines, each
/// ending in `\n`), oldest first. Reads `name.log`, then `name.log.1`, … for
/// as long as the newer files hold fewer than `n` lines. A file rotated while
/// this reads may make a line appear twice or not at all.
///
/// Fails with `NotFound` when the instance has no log file at all.
pub fn tail(dir: &Path, program: &str, index: u32, n: usize) -> io::Result<Vec<u8>> {
    tail_file(&log_path(dir, program, index), n)
}

/// The last `n` lines of the file at `path` and of its rotated siblings
/// (`path.1`, `path.2`, …), oldest first: any file of lines that rotates
/// by rename, the event journal too.
pub fn tail_file(path: &Path, n: usize) -> io::Result<Vec<u8>> {
    let path = path.to_path_buf();
    let mut newest_first: Vec<Vec<u8>> = Vec::new();
    let mut found = false;
    let mut need = n;
    for generation in 0..=MAX_ROTATED {
        if need == 0 {
            break;
        }
        let file_path = if generation == 0 {
            path.clone()
        } else {
            rotated_path(&path, generation)
        };
        let file = match crate::files::open_regular(&file_path) {
            Ok(file) => file,
            // A current file can be missing while older ones exist (between
            // a rotation and the next write); a missing rotated one ends the
            // chain.
            Err(e) if e.kind() == io::ErrorKind::NotFound && generation == 0 => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(e) => return Err(e),
        };
        found = true;
        let (lines, count) = last_lines(file, need)?;
        newest_first.push(lines);
        need -= count;
    }
    if !found && n > 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no log file at {}", path.display()),
        ));
    }
    Ok(newest_first.into_iter().rev().flatten().collect())
}

/// Up to `n` last lines of `file` and how many there were. A last line
/// without a newline (a write cut short) counts, and gets one.
fn last_lines(mut file: File, n: usize) -> io::Result<(Vec<u8>, usize)> {
    let len = file.metadata()?.len();
    if len == 0 || n == 0 {
        return Ok((Vec::new(), 0));
    }
    // Walk back from the end counting newlines. The file's final newline
    // ends the last line and does not start one.
    let mut block = vec![0u8; BLOCK];
    let mut pos = len;
    let mut seen = 0;
    let mut start = 0;
    'back: while pos > 0 {
        let step = BLOCK.min(usize::try_from(pos).unwrap_or(BLOCK));
        pos -= step as u64;
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut block[..step])?;
        for i in memrchr_iter(b'\n', &block[..step]) {
            let at = pos + i as u64;
            if at == len - 1 {
                continue;
            }
            seen += 1;
            if seen == n {
                start = at + 1;
                break 'back;
            }
        }
    }
    let count = if seen == n { n } else { seen + 1 };
    file.seek(SeekFrom::Start(start))?;
    let mut out = Vec::new();
    file.take(len - start).read_to_end(&mut out)?;
    if out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    Ok((out, count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn numbered(from: usize, to: usize) -> String {
        (from..to).map(|i| format!("line {i}\n")).collect()
    }

    fn tail_str(dir: &Path, n: usize) -> String {
        String::from_utf8(tail(dir, "api", 0, n).unwrap()).unwrap()
    }

    #[test]
    fn last_lines_of_one_file() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(log_path(tmp.path(), "api", 0), numbered(0, 10)).unwrap();
        assert_eq!(tail_str(tmp.path(), 3), numbered(7, 10));
        assert_eq!(tail_str(tmp.path(), 10), numbered(0, 10));
        assert_eq!(tail_str(tmp.path(), 50), numbered(0, 10));
        assert_eq!(tail_str(tmp.path(), 0), "");
    }

    #[test]
    fn reads_rotated_files_when_the_current_is_short() {
        let tmp = tempfile::tempdir().unwrap();
        let path = log_path(tmp.path(), "api", 0);
        fs::write(rotated_path(&path, 3), numbered(0, 5)).unwrap();
        fs::write(rotated_path(&path, 2), numbered(5, 10)).unwrap();
        fs::write(rotated_path(&path, 1), numbered(10, 15)).unwrap();
        fs::write(&path, numbered(15, 17)).unwrap();
        assert_eq!(tail_str(tmp.path(), 2), numbered(15, 17));
        assert_eq!(tail_str(tmp.path(), 4), numbered(13, 17));
        assert_eq!(tail_str(tmp.path(), 12), numbered(5, 17));
        assert_eq!(tail_str(tmp.path(), 100), numbered(0, 17));
        // A gap ends the chain.
        fs::remove_file(rotated_path(&path, 2)).unwrap();
        assert_eq!(tail_str(tmp.path(), 100), numbered(10, 17));
        // The current file missing (just rotated): the rotated ones still count.
        fs::remove_file(&path).unwrap();
        assert_eq!(tail_str(tmp.path(), 3), numbered(12, 15));
    }

    #[test]
    fn empty_and_missing_logs() {
        let tmp = tempfile::tempdir().unwrap();
        let err = tail(tmp.path(), "api", 0, 5).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("api.0.log"), "{err}");
        fs::write(log_path(tmp.path(), "api", 0), "").unwrap();
        assert_eq!(tail_str(tmp.path(), 5), "");
    }

    #[test]
    fn a_cut_last_line_counts_and_gets_a_newline() {
        let tmp = tempfile::tempdir().unwrap();
        let path = log_path(tmp.path(), "api", 0);
        fs::write(rotated_path(&path, 1), "a\nb\nc").unwrap();
        fs::write(&path, "d\n").unwrap();
        assert_eq!(tail_str(tmp.path(), 2), "c\nd\n");
        assert_eq!(tail_str(tmp.path(), 10), "a\nb\nc\nd\n");
    }

    #[test]
    fn lines_spanning_blocks_and_empty_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let long = "y".repeat(3 * BLOCK + 17);
        let content = format!("first\n{long}\n\n\nlast\n");
        fs::write(log_path(tmp.path(), "api", 0), &content).unwrap();
        assert_eq!(tail_str(tmp.path(), 3), "\n\nlast\n");
        assert_eq!(tail_str(tmp.path(), 4), format!("{long}\n\n\nlast\n"));
        assert_eq!(tail_str(tmp.path(), 5), content);
    }
}
