//! Logging for a service: whether stderr is the systemd journal (so that
//! lines can carry a priority, `<3>` for an error), and journald's native
//! protocol, for records with fields of their own (`journalctl
//! MY_FIELD=value`).
//!
//! ```no_run
//! use ward_service::journal::{self, Priority};
//! let prefix = if journal::stderr_is_journal() { Priority::Warning.prefix() } else { "" };
//! eprintln!("{prefix}disk almost full");
//!
//! if let Ok(journal) = journal::Journal::connect() {
//!     let _ = journal.send(&[
//!         ("MESSAGE", b"hello".as_slice()),
//!         ("PRIORITY", b"6"),
//!         ("SYSLOG_IDENTIFIER", b"hello"),
//!     ]);
//! }
//! ```

use std::io;

/// A syslog priority, as journald keeps it (`PRIORITY=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Emergency = 0,
    Alert = 1,
    Critical = 2,
    Error = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

impl Priority {
    /// The prefix that gives a line written to a journal stream this
    /// priority: `<3>` for an error.
    pub fn prefix(self) -> &'static str {
        ["<0>", "<1>", "<2>", "<3>", "<4>", "<5>", "<6>", "<7>"][self as usize]
    }

    /// The value of a `PRIORITY=` field: `3` for an error.
    pub fn digit(self) -> &'static [u8] {
        &b"01234567"[self as usize..self as usize + 1]
    }
}

/// Whether this process's stderr is connected to the journal (systemd says
/// so in `$JOURNAL_STREAM`, the device and inode of the stream it gave;
/// a redirected stderr no longer matches them).
pub fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    #[cfg(unix)]
    {
        let Some((dev, ino)) = stream.to_str().and_then(parse_stream) else {
            return false;
        };
        // The field types differ between systems (u64 here, i32 there).
        #[allow(clippy::unnecessary_cast)]
        match rustix::fs::fstat(std::io::stderr()) {
            Ok(st) => st.st_dev as u64 == dev && st.st_ino as u64 == ino,
            Err(_) => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = stream;
        false
    }
}

/// `<device>:<inode>`, both decimal.
#[cfg(any(unix, test))]
fn parse_stream(s: &str) -> Option<(u64, u64)> {
    let (dev, ino) = s.split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// journald's socket for native records.
pub const SOCKET: &str = "/run/systemd/journal/socket";

/// A connection to journald's native protocol. Sending never blocks: when
/// journald is slow and the socket's buffer is full, a record is refused
/// (an error of kind `WouldBlock`) and the caller decides what that costs
/// (count it, drop it).
///
/// Each record goes to the socket's path anew (as libsystemd sends them):
/// a journald restarted meanwhile (a package upgrade) gets the next one.
#[derive(Debug)]
pub struct Journal {
    #[cfg(unix)]
    socket: std::os::unix::net::UnixDatagram,
    #[cfg(unix)]
    addr: std::os::unix::net::SocketAddr,
    /// The same address, for a record too large for one datagram (sent
    /// as a sealed memfd, as libsystemd does).
    #[cfg(target_os = "linux")]
    path: rustix::net::SocketAddrUnix,
    #[cfg(unix)]
    buf: std::sync::Mutex<Vec<u8>>,
}

impl Journal {
    /// Connects to journald's socket ([`SOCKET`]); an error when there is
    /// no journald here.
    pub fn connect() -> io::Result<Journal> {
        Journal::connect_to(std::path::Path::new(SOCKET))
    }

    /// Connects to a journald-compatible socket at `path`.
    pub fn connect_to(path: &std::path::Path) -> io::Result<Journal> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if !std::fs::metadata(path)?.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a socket", path.display()),
                ));
            }
            let socket = std::os::unix::net::UnixDatagram::unbound()?;
            socket.set_nonblocking(true)?;
            Ok(Journal {
                socket,
                addr: std::os::unix::net::SocketAddr::from_pathname(path)?,
                #[cfg(target_os = "linux")]
                path: rustix::net::SocketAddrUnix::new(path)?,
                buf: std::sync::Mutex::new(Vec::new()),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "there is no journald on this system",
            ))
        }
    }

    /// As [`Journal::send`], encoding into `buf` (the caller's, reused
    /// from record to record) instead of a shared buffer.
    pub fn send_with(&self, buf: &mut Vec<u8>, fields: &[(&str, &[u8])]) -> io::Result<()> {
        buf.clear();
        encode(buf, fields);
        self.send_record(buf)
    }

    /// Sends an encoded record: one datagram, or, on Linux, for a record
    /// larger than a datagram may be, a sealed memfd holding it.
    fn send_record(&self, record: &[u8]) -> io::Result<()> {
        #[cfg(unix)]
        {
            match self.socket.send_to_addr(record, &self.addr) {
                #[cfg(target_os = "linux")]
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::MSGSIZE.raw_os_error()) => {
                    self.send_memfd(record)
                }
                other => other.map(drop),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = record;
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "there is no journald on this system",
            ))
        }
    }

    /// A record too large for a datagram: written to a memfd, sealed (so
    /// that journald may map it as it is), and its descriptor sent.
    #[cfg(target_os = "linux")]
    fn send_memfd(&self, record: &[u8]) -> io::Result<()> {
        use rustix::fs::{fcntl_add_seals, memfd_create, MemfdFlags, SealFlags};
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
        use std::os::fd::AsFd;
        let fd = memfd_create(
            "journal-record",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        let mut rest = record;
        while !rest.is_empty() {
            let n = rustix::io::write(&fd, rest)?;
            rest = &rest[n..];
        }
        fcntl_add_seals(
            &fd,
            SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL,
        )?;
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds = [fd.as_fd()];
        if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(io::Error::other("no room for the descriptor"));
        }
        rustix::net::sendmsg_addr(
            &self.socket,
            &self.path,
            &[],
            &mut control,
            SendFlags::empty(),
        )?;
        Ok(())
    }

    /// Sends one record. Field names are upper case letters, digits and
    /// underscores, not starting with `_` (journald drops others); values
    /// may hold any bytes, newlines too.
    pub fn send(&self, fields: &[(&str, &[u8])]) -> io::Result<()> {
        #[cfg(unix)]
        {
            let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
            buf.clear();
            encode(&mut buf, fields);
            let sent = self.send_record(&buf);
            if buf.capacity() > 1 << 20 {
                // One huge record should not keep its buffer forever.
                *buf = Vec::new();
            }
            sent.map(drop)
        }
        #[cfg(not(unix))]
        {
            let _ = fields;
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "there is no journald on this system",
            ))
        }
    }
}

/// A record in journald's native format: `NAME=value\n`, or, for a value
/// with a newline, `NAME\n` + its length (64-bit little endian) + the value
/// + `\n`.
pub fn encode(out: &mut Vec<u8>, fields: &[(&str, &[u8])]) {
    for (name, value) in fields {
        out.extend_from_slice(name.as_bytes());
        if value.contains(&b'\n') {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            out.push(b'=');
        }
        out.extend_from_slice(value);
        out.push(b'\n');
    }
}

/// Whether `name` is a field name journald keeps.
pub fn valid_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_encoded_as_journald_reads_them() {
        let mut out = Vec::new();
        encode(
            &mut out,
            &[
                ("MESSAGE", b"one line"),
                ("PRIORITY", Priority::Info.digit()),
            ],
        );
        assert_eq!(out, b"MESSAGE=one line\nPRIORITY=6\n");
        out.clear();
        encode(&mut out, &[("MESSAGE", b"two\nlines")]);
        let mut expect = b"MESSAGE\n".to_vec();
        expect.extend_from_slice(&9u64.to_le_bytes());
        expect.extend_from_slice(b"two\nlines\n");
        assert_eq!(out, expect);
    }

    #[test]
    fn priorities_and_names() {
        assert_eq!(Priority::Error.prefix(), "<3>");
        assert_eq!(Priority::Debug.prefix(), "<7>");
        assert_eq!(Priority::Warning.digit(), b"4");
        assert!(valid_field_name("WARD_PROGRAM"));
        assert!(!valid_field_name("_PID"));
        assert!(!valid_field_name("lower"));
        assert!(!valid_field_name("1ST"));
        assert_eq!(parse_stream("8:12345"), Some((8, 12345)));
        assert_eq!(parse_stream("8-12345"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_record_too_large_for_a_datagram_goes_as_a_sealed_memfd() {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        use std::os::unix::net::UnixDatagram;
        let path =
            std::env::temp_dir().join(format!("ward-service-journal-big-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let journal = Journal::connect_to(&path).unwrap();
        let big = vec![b'x'; 4 << 20];
        journal.send(&[("MESSAGE", &big)]).unwrap();
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut nothing = [0u8; 16];
        let got = rustix::net::recvmsg(
            &server,
            &mut [std::io::IoSliceMut::new(&mut nothing)],
            &mut control,
            RecvFlags::empty(),
        )
        .unwrap();
        assert_eq!(got.bytes, 0, "the datagram itself is empty");
        let fd = control
            .drain()
            .find_map(|m| match m {
                RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
                _ => None,
            })
            .expect("a descriptor came with it");
        // The sender's offset is at the end: journald maps the file; read
        // it from its start.
        let file = std::fs::File::from(fd);
        let mut expect = Vec::new();
        encode(&mut expect, &[("MESSAGE", &big)]);
        let mut text = vec![0u8; expect.len()];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut text, 0).unwrap();
        assert!(text == expect, "the memfd does not hold the record");
        assert_eq!(file.metadata().unwrap().len(), expect.len() as u64);
        let seals = rustix::fs::fcntl_get_seals(&file).unwrap();
        assert!(seals.contains(rustix::fs::SealFlags::WRITE | rustix::fs::SealFlags::SEAL));
        let _ = std::fs::remove_file(&path);
    }

    #[cfg(unix)]
    #[test]
    fn a_record_reaches_the_socket_and_a_full_one_is_refused_at_once() {
        use std::os::unix::net::UnixDatagram;
        let path =
            std::env::temp_dir().join(format!("ward-service-journal-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let journal = Journal::connect_to(&path).unwrap();
        journal
            .send(&[("MESSAGE", b"hi"), ("WARD_PROGRAM", b"api")])
            .unwrap();
        let mut buf = [0u8; 128];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"MESSAGE=hi\nWARD_PROGRAM=api\n");
        // Nobody reads: the buffer fills, and a send fails instead of
        // waiting.
        let refused = (0..100_000).find_map(|_| journal.send(&[("MESSAGE", &[b'x'; 1024])]).err());
        assert_eq!(refused.map(|e| e.kind()), Some(io::ErrorKind::WouldBlock));
        let _ = std::fs::remove_file(&path);
    }
}
