//! The one way ward-config reads a file: the config itself and every
//! `env_file`.
//!
//! ward runs as root, and these paths come from people, or from a file
//! someone else may edit, so a read must end, soon, and in bounded memory:
//! only a regular file is read (a FIFO blocks its reader until a writer
//! comes; `/dev/zero` never ends), and only up to [`MAX_FILE_SIZE`].

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// The largest file read: far beyond any real config or env file, and
/// small enough that a mistaken path costs nothing.
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// [`MAX_FILE_SIZE`] as people write it, for messages.
pub(crate) const MAX_FILE_SIZE_TEXT: &str = "1 MiB";

/// Why a file was not read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// It could not be opened or read (missing, no permission, ...).
    Io(io::Error),
    /// It is not a regular file: what it is, `"a FIFO"`.
    NotRegular(&'static str),
    /// It holds more than [`MAX_FILE_SIZE`] bytes.
    TooLarge,
    /// Its bytes are not UTF-8.
    NotUtf8(BadUtf8),
}

impl ReadError {
    /// What is wrong, after the file's name: `"not a regular file (a
    /// FIFO)"`. [`ReadError::Io`] is left to the caller, who knows what
    /// to suggest.
    pub fn reason(&self) -> String {
        match self {
            ReadError::Io(e) => e.to_string(),
            ReadError::NotRegular(what) => format!("not a regular file ({what})"),
            ReadError::TooLarge => {
                format!("larger than {MAX_FILE_SIZE_TEXT}, the limit for a file ward reads")
            }
            ReadError::NotUtf8(bad) => format!("not valid UTF-8: {}", bad.describe()),
        }
    }
}

/// Where a file stops being UTF-8.
#[derive(Debug)]
pub(crate) struct BadUtf8 {
    /// The file's bytes read as UTF-8 with each bad sequence replaced by
    /// U+FFFD: up to `offset` it is the file itself.
    pub lossy: String,
    /// Byte offset of the first bad byte.
    pub offset: usize,
    /// 1-based line and column (in characters) of that byte.
    pub line: usize,
    pub col: usize,
    /// The bad byte, or `None` when the file ends inside a character.
    pub byte: Option<u8>,
}

impl BadUtf8 {
    /// `byte 0xE9 at line 2, column 6 (byte offset 9)`
    pub fn describe(&self) -> String {
        let what = match self.byte {
            Some(b) => format!("byte 0x{b:02X}"),
            None => "an incomplete character".to_string(),
        };
        format!(
            "{what} at line {}, column {} (byte offset {})",
            self.line, self.col, self.offset
        )
    }

    /// A likelier fix than "save it as UTF-8" when the file says what it is.
    pub fn utf16(&self) -> bool {
        self.offset == 0 && matches!(self.byte, Some(0xFF | 0xFE))
    }
}

/// The contents of the regular file at `path`, as UTF-8, if it holds at
/// most [`MAX_FILE_SIZE`] bytes. Never waits for a writer.
pub(crate) fn read_text(path: &Path) -> Result<String, ReadError> {
    let bytes = read_bytes(path)?;
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let byte = e.utf8_error().error_len().map(|_| e.as_bytes()[offset]);
        let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
        // Up to `offset` the lossy text is the file itself.
        let before = &lossy[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        ReadError::NotUtf8(BadUtf8 {
            line: before.matches('\n').count() + 1,
            col: before[line_start..].chars().count() + 1,
            offset,
            byte,
            lossy,
        })
    })
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, ReadError> {
    let file = open(path).map_err(ReadError::Io)?;
    // fstat of what was opened, not a stat of the path: the path may have
    // been swapped in between.
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind(&meta)));
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(ReadError::TooLarge);
    }
    // The size can change while it is read (or be reported as 0, as for
    // files under /proc): the bound is on what is read.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}

/// Opens for reading without waiting: without `O_NONBLOCK`, opening a
/// FIFO waits for a writer, before there is a descriptor to check. The
/// flag stays set for the reads: it changes nothing for a regular file on
/// disk, and makes a regular-looking file that would wait for data (as
/// some under /proc do) fail instead. `O_NOCTTY`: a terminal named here
/// must not become ward's controlling terminal.
#[cfg(unix)]
fn open(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

#[cfg(not(unix))]
fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).open(path)
}

/// What a file that is not a regular file is, for messages.
fn kind(meta: &Metadata) -> &'static str {
    if meta.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_utf8(bytes: &[u8]) -> BadUtf8 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, bytes).unwrap();
        match read_text(&path) {
            Err(ReadError::NotUtf8(bad)) => bad,
            other => panic!("{bytes:?}: {other:?}"),
        }
    }

    #[test]
    fn utf8_mistakes_are_placed_in_characters() {
        let mut bytes = "é\nàb\u{1F600}\u{80}".as_bytes().to_vec();
        bytes.push(0xFF);
        let bad = bad_utf8(&bytes);
        assert_eq!((bad.line, bad.col, bad.byte), (2, 5, Some(0xFF)));
        assert_eq!(bad.offset, "é\nàb\u{1F600}\u{80}".len());
        assert_eq!(
            bad.describe(),
            format!("byte 0xFF at line 2, column 5 (byte offset {})", bad.offset)
        );
        assert!(!bad.utf16());
        assert!(bad_utf8(b"\xff\xfeA\0").utf16());
    }

    #[test]
    fn a_regular_file_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "A=1\n").unwrap();
        assert_eq!(read_text(&path).unwrap(), "A=1\n");
        std::fs::write(&path, "").unwrap();
        assert_eq!(read_text(&path).unwrap(), "");
    }
}
