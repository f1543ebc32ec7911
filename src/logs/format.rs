//! How one line of a child's output is stored: the text and JSON line
//! formats, and the timestamp written in front of it.
//!
//! Everything here appends to a caller's reused buffer: no allocation and no
//! clock read per line.

use std::time::{SystemTime, UNIX_EPOCH};

use ward_core::{LogFormat, LogSpec};

use super::json;
use super::RunLabel;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// `2026-11-21T15:44:13.123Z`: RFC 3339, UTC, milliseconds.
pub(crate) const TIMESTAMP_LEN: usize = 24;

/// The formatted time of the last read, redone only when the millisecond
/// changes: a burst of reads within one millisecond formats once.
pub(crate) struct Timestamp {
    millis: Option<u64>,
    text: [u8; TIMESTAMP_LEN],
}

impl Timestamp {
    pub(crate) fn new() -> Timestamp {
        Timestamp {
            millis: None,
            text: *b"1970-01-01T00:00:00.000Z",
        }
    }

    pub(crate) fn set(&mut self, now: SystemTime) {
        // A clock before 1970 is a broken clock; the epoch is as good a lie
        // as any and keeps the field well-formed.
        let millis = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        if self.millis != Some(millis) {
            self.millis = Some(millis);
            format_millis(millis, &mut self.text);
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.text
    }
}

/// The current time as log lines carry it (`2026-11-21T15:44:13.123Z`), for
/// ward's own records, so that they sort and compare with log lines.
pub fn rfc3339_now() -> String {
    let mut ts = Timestamp::new();
    ts.set(SystemTime::now());
    ts.as_bytes().iter().map(|&b| char::from(b)).collect()
}

/// The latest instant with a four-digit year: 9999-12-31T23:59:59.999Z.
const MAX_MILLIS: u64 = 253_402_300_799_999;

fn format_millis(millis: u64, out: &mut [u8; TIMESTAMP_LEN]) {
    let millis = millis.min(MAX_MILLIS);
    let secs = millis / 1000;
    // Bounded by MAX_MILLIS, so the day count fits an i64 easily.
    let days = (secs / 86_400) as i64;
    let (year, month, day) = civil_from_days(days);
    let sod = secs % 86_400;
    put(&mut out[0..4], year as u64);
    out[4] = b'-';
    put(&mut out[5..7], u64::from(month));
    out[7] = b'-';
    put(&mut out[8..10], u64::from(day));
    out[10] = b'T';
    put(&mut out[11..13], sod / 3600);
    out[13] = b':';
    put(&mut out[14..16], sod / 60 % 60);
    out[16] = b':';
    put(&mut out[17..19], sod % 60);
    out[19] = b'.';
    put(&mut out[20..23], millis % 1000);
    out[23] = b'Z';
}

/// Writes `n` as zero-padded decimal filling `out`.
fn put(out: &mut [u8], mut n: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
/// Howard Hinnant's `civil_from_days`: exact for every day, no tables.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// How one stream's lines are stored. The part of a line before its text
/// (timestamp, stream, JSON fields) is the same for every line of a read, so
/// it is put together once per read ([`LineFormat::stamp`]) and copied whole
/// for each line.
pub(crate) struct LineFormat {
    format: LogFormat,
    timestamps: bool,
    /// Text: ` stdout `. JSON: the fields after `ts` up to and including
    /// `"line":`.
    middle: Vec<u8>,
    /// Text: ` stdout+ ` (a piece of a split line). JSON: same as `middle`.
    middle_partial: Vec<u8>,
    /// Everything before a line's text, for the current timestamp.
    head: Vec<u8>,
    head_partial: Vec<u8>,
    /// The timestamp `head` was made for.
    stamped: Option<u64>,
}

impl LineFormat {
    pub(crate) fn new(spec: &LogSpec, label: &RunLabel, stream: Stream) -> LineFormat {
        let (middle, middle_partial) = match spec.format {
            LogFormat::Text => (
                format!(" {} ", stream.name()).into_bytes(),
                format!(" {}+ ", stream.name()).into_bytes(),
            ),
            LogFormat::Json => {
                let mut m = Vec::new();
                if spec.timestamps {
                    m.extend_from_slice(b"\",");
                }
                m.extend_from_slice(b"\"program\":");
                json::push_string(&mut m, label.program.as_bytes());
                m.extend_from_slice(
                    format!(
                        ",\"instance\":{},\"run\":{},\"pid\":{},\"stream\":\"{}\",\"line\":",
                        label.index,
                        label.run,
                        label.pid,
                        stream.name()
                    )
                    .as_bytes(),
                );
                (m.clone(), m)
            }
        };
        let mut format = LineFormat {
            format: spec.format,
            timestamps: spec.timestamps,
            middle,
            middle_partial,
            head: Vec::new(),
            head_partial: Vec::new(),
            stamped: None,
        };
        format.stamp(&Timestamp::new());
        format
    }

    /// Sets the time for the lines that follow.
    pub(crate) fn stamp(&mut self, ts: &Timestamp) {
        if self.stamped.is_some() && self.stamped == ts.millis {
            return;
        }
        self.stamped = ts.millis;
        for (head, middle) in [
            (&mut self.head, &self.middle),
            (&mut self.head_partial, &self.middle_partial),
        ] {
            head.clear();
            match (self.format, self.timestamps) {
                (LogFormat::Text, false) => {}
                (LogFormat::Text, true) => {
                    head.extend_from_slice(ts.as_bytes());
                    head.extend_from_slice(middle);
                }
                (LogFormat::Json, false) => {
                    head.push(b'{');
                    head.extend_from_slice(middle);
                }
                (LogFormat::Json, true) => {
                    head.extend_from_slice(b"{\"ts\":\"");
                    head.extend_from_slice(ts.as_bytes());
                    head.extend_from_slice(middle);
                }
            }
        }
    }

    /// Whether lines are stored as text: then a line that needs no
    /// splitting can go through [`LineFormat::push_text`].
    pub(crate) fn is_text(&self) -> bool {
        self.format == LogFormat::Text
    }

    /// Text format, a whole line with its newline: the head, then the line
    /// as it is. The common case, kept to two copies.
    #[inline]
    pub(crate) fn push_text(&self, out: &mut Vec<u8>, line_with_newline: &[u8]) {
        out.extend_from_slice(&self.head);
        out.extend_from_slice(line_with_newline);
    }

    /// Appends one stored line for `line` (which holds no newline).
    /// `partial`: a piece of a longer line, more of it follows.
    #[inline]
    pub(crate) fn push(&self, out: &mut Vec<u8>, line: &[u8], partial: bool) {
        out.extend_from_slice(if partial {
            &self.head_partial
        } else {
            &self.head
        });
        if self.format == LogFormat::Text {
            out.extend_from_slice(line);
            out.push(b'\n');
            return;
        }
        let trimmed = line.trim_ascii();
        if !partial
            && trimmed.first() == Some(&b'{')
            && trimmed.last() == Some(&b'}')
            && json::is_object(trimmed)
        {
            out.extend_from_slice(trimmed);
        } else {
            json::push_string(out, line);
        }
        out.extend_from_slice(if partial {
            b",\"partial\":true}\n".as_slice()
        } else {
            b"}\n".as_slice()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    fn spec(format: LogFormat, timestamps: bool) -> LogSpec {
        LogSpec {
            dir: PathBuf::from("/nonexistent"),
            max_size: 1 << 20,
            keep: 1,
            format,
            timestamps,
            max_line: 16 * 1024,
            access: Default::default(),
            files: true,
            journald: false,
        }
    }

    fn label() -> RunLabel {
        RunLabel {
            program: Arc::from("api"),
            index: 0,
            run: 7,
            pid: 1234,
        }
    }

    fn at(millis: u64) -> Timestamp {
        let mut ts = Timestamp::new();
        ts.set(UNIX_EPOCH + Duration::from_millis(millis));
        ts
    }

    fn line(f: &mut LineFormat, ts: &Timestamp, text: &[u8], partial: bool) -> String {
        let mut out = Vec::new();
        f.stamp(ts);
        f.push(&mut out, text, partial);
        String::from_utf8(out).unwrap()
    }

    /// 2026-11-21T15:44:13.123Z
    const T: u64 = 1_795_275_853_123;

    #[test]
    fn timestamps_are_rfc3339_utc_millis() {
        assert_eq!(at(0).as_bytes(), b"1970-01-01T00:00:00.000Z");
        assert_eq!(at(T).as_bytes(), b"2026-11-21T15:44:13.123Z");
        assert_eq!(at(951_782_400_000).as_bytes(), b"2000-02-29T00:00:00.000Z");
        assert_eq!(
            at(4_107_542_399_999).as_bytes(),
            b"2100-02-28T23:59:59.999Z"
        );
        // Where the system's time reaches that far (not Windows').
        if UNIX_EPOCH
            .checked_add(Duration::from_millis(u64::MAX))
            .is_some()
        {
            assert_eq!(at(u64::MAX).as_bytes(), b"9999-12-31T23:59:59.999Z");
        }
        let mut ts = Timestamp::new();
        ts.set(UNIX_EPOCH - Duration::from_secs(5));
        assert_eq!(ts.as_bytes(), b"1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn now_is_a_timestamp() {
        let now = rfc3339_now();
        assert_eq!(now.len(), TIMESTAMP_LEN);
        assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
        assert_eq!(&now[10..11], "T");
    }

    #[test]
    fn civil_dates_walk_day_by_day() {
        // Every day from 1900 to 2400 follows the previous one.
        let mut prev = civil_from_days(-25_567);
        assert_eq!(prev, (1900, 1, 1));
        for days in -25_566..157_000 {
            let (y, m, d) = civil_from_days(days);
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let month_len = [
                31,
                28 + u32::from(leap),
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            let expected = if prev.2 < month_len[prev.1 as usize - 1] {
                (prev.0, prev.1, prev.2 + 1)
            } else if prev.1 < 12 {
                (prev.0, prev.1 + 1, 1)
            } else {
                (prev.0 + 1, 1, 1)
            };
            assert_eq!((y, m, d), expected, "day {days}");
            prev = (y, m, d);
        }
    }

    #[test]
    fn text_lines() {
        let ts = at(T);
        let mut out = LineFormat::new(&spec(LogFormat::Text, true), &label(), Stream::Stdout);
        let mut err = LineFormat::new(&spec(LogFormat::Text, true), &label(), Stream::Stderr);
        assert_eq!(
            line(&mut out, &ts, b"hello world", false),
            "2026-11-21T15:44:13.123Z stdout hello world\n"
        );
        assert_eq!(
            line(&mut err, &ts, b"oops", true),
            "2026-11-21T15:44:13.123Z stderr+ oops\n"
        );
        assert_eq!(
            line(&mut out, &ts, b"", false),
            "2026-11-21T15:44:13.123Z stdout \n"
        );
        // A new millisecond, a new head.
        assert_eq!(
            line(&mut out, &at(T + 1001), b"later", false),
            "2026-11-21T15:44:14.124Z stdout later\n"
        );
        assert_eq!(
            line(&mut err, &at(T + 1001), b"cut", true),
            "2026-11-21T15:44:14.124Z stderr+ cut\n"
        );
        let mut raw = LineFormat::new(&spec(LogFormat::Text, false), &label(), Stream::Stderr);
        assert_eq!(line(&mut raw, &ts, b"hello world", false), "hello world\n");
        assert_eq!(line(&mut raw, &ts, b"piece", true), "piece\n");
    }

    #[test]
    fn text_keeps_bytes_as_they_are() {
        let mut raw = LineFormat::new(&spec(LogFormat::Text, false), &label(), Stream::Stdout);
        let mut out = Vec::new();
        raw.stamp(&at(T));
        raw.push(&mut out, b"\xff\x1b[31mred\r", false);
        assert_eq!(out, b"\xff\x1b[31mred\r\n");
    }

    #[test]
    fn json_lines() {
        let ts = at(T);
        let mut f = LineFormat::new(&spec(LogFormat::Json, true), &label(), Stream::Stdout);
        assert_eq!(
            line(&mut f, &ts, b"hello", false),
            concat!(
                r#"{"ts":"2026-11-21T15:44:13.123Z","program":"api","instance":0,"run":7,"#,
                r#""pid":1234,"stream":"stdout","line":"hello"}"#,
                "\n"
            )
        );
        assert_eq!(
            line(&mut f, &ts, b"say \"hi\"\t\\", true),
            concat!(
                r#"{"ts":"2026-11-21T15:44:13.123Z","program":"api","instance":0,"run":7,"#,
                r#""pid":1234,"stream":"stdout","line":"say \"hi\"\t\\","partial":true}"#,
                "\n"
            )
        );
        let mut f = LineFormat::new(&spec(LogFormat::Json, false), &label(), Stream::Stderr);
        assert_eq!(
            line(&mut f, &ts, b"\xffx", false),
            concat!(
                r#"{"program":"api","instance":0,"run":7,"pid":1234,"stream":"stderr","#,
                "\"line\":\"\u{FFFD}x\"}\n"
            )
        );
    }

    #[test]
    fn json_embeds_object_lines_byte_for_byte() {
        let ts = at(T);
        let mut f = LineFormat::new(&spec(LogFormat::Json, false), &label(), Stream::Stdout);
        let prefix =
            r#"{"program":"api","instance":0,"run":7,"pid":1234,"stream":"stdout","line":"#;
        assert_eq!(
            line(&mut f, &ts, br#"  {"level":"info", "n":1.50}  "#, false),
            format!("{prefix}{{\"level\":\"info\", \"n\":1.50}}}}\n")
        );
        // Not an object, or not valid: a string.
        assert_eq!(
            line(&mut f, &ts, br#"{"level":}"#, false),
            format!("{prefix}\"{{\\\"level\\\":}}\"}}\n")
        );
        assert_eq!(
            line(&mut f, &ts, b"[1]", false),
            format!("{prefix}\"[1]\"}}\n")
        );
        // A piece of a split line is never embedded.
        assert_eq!(
            line(&mut f, &ts, b"{}", true),
            format!("{prefix}\"{{}}\",\"partial\":true}}\n")
        );
    }

    #[test]
    fn json_lines_parse() {
        let ts = at(T);
        for timestamps in [true, false] {
            let mut f =
                LineFormat::new(&spec(LogFormat::Json, timestamps), &label(), Stream::Stderr);
            let mut out = Vec::new();
            f.stamp(&ts);
            f.push(&mut out, b"\x00ctrl \xc3(", false);
            f.push(&mut out, br#"{"nested":{"a":[1,2]}}"#, false);
            f.push(&mut out, b"cut", true);
            let lines: Vec<serde_json::Value> = out
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).unwrap())
                .collect();
            assert_eq!(lines.len(), 3);
            assert_eq!(lines[0]["line"], "\u{0}ctrl \u{FFFD}(");
            assert_eq!(lines[0]["stream"], "stderr");
            assert_eq!(lines[0].get("ts").is_some(), timestamps);
            assert_eq!(lines[1]["line"]["nested"]["a"][1], 2);
            assert_eq!(lines[2]["partial"], true);
            assert!(lines[0].get("partial").is_none());
        }
    }

    #[test]
    fn json_escapes_the_program_name() {
        let label = RunLabel {
            program: Arc::from("we\"ird"),
            ..label()
        };
        let mut f = LineFormat::new(&spec(LogFormat::Json, false), &label, Stream::Stdout);
        let v: serde_json::Value =
            serde_json::from_str(&line(&mut f, &at(T), b"x", false)).unwrap();
        assert_eq!(v["program"], "we\"ird");
    }
}
