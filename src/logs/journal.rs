//! Program output to journald (`logs = { journald = true }`): each line a
//! record of its own, sent from the drain that read it, never waiting. A
//! journald that is slow (its socket's buffer full) or gone costs the lines
//! it did not take, counted and reported as for files.

use std::sync::Arc;

use super::format::Stream;
use super::RunLabel;

/// One run's way to the journal: the connection, shared by every pump, and
/// the fields its records carry.
pub struct JournalSink {
    journal: Arc<ward_service::journal::Journal>,
    program: String,
    instance: String,
    run: String,
    pid: String,
}

impl JournalSink {
    pub fn new(journal: Arc<ward_service::journal::Journal>, label: &RunLabel) -> JournalSink {
        JournalSink {
            journal,
            program: label.program.to_string(),
            instance: label.index.to_string(),
            run: label.run.to_string(),
            pid: label.pid.to_string(),
        }
    }

    /// Sends one line (without its newline); false when journald did not
    /// take it. `buf` is the caller's, reused from line to line.
    pub fn line(&self, buf: &mut Vec<u8>, stream: Stream, line: &[u8]) -> bool {
        use ward_service::journal::Priority;
        let priority = match stream {
            Stream::Stdout => Priority::Info,
            Stream::Stderr => Priority::Warning,
        };
        self.journal
            .send_with(
                buf,
                &[
                    ("MESSAGE", line),
                    ("PRIORITY", priority.digit()),
                    ("SYSLOG_IDENTIFIER", self.program.as_bytes()),
                    ("SYSLOG_PID", self.pid.as_bytes()),
                    ("WARD_PROGRAM", self.program.as_bytes()),
                    ("WARD_INSTANCE", self.instance.as_bytes()),
                    ("WARD_RUN", self.run.as_bytes()),
                ],
            )
            .is_ok()
    }
}
