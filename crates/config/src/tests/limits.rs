//! Hostile or mistaken input: files that are not regular files, or too
//! large, or not UTF-8; names and paths too long for the system; durations
//! past the cap; a state_dir that is a file.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use super::{error, errors_on, explained, ok, places};
use crate::{load, parse, Config, Diagnostic, Diagnostics};
use ward_core::Signal;

fn s(text: &str) -> String {
    text.to_string()
}

/// `load` on a thread of its own: a reader that blocks fails the test
/// instead of hanging it.
fn load_bounded(path: &Path) -> Result<Config, Diagnostics> {
    let (tx, rx) = mpsc::channel();
    let owned = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(load(&owned));
    });
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("reading {} blocked", path.display()))
}

fn load_errors(path: &Path) -> Vec<Diagnostic> {
    match load_bounded(path) {
        Ok(c) => panic!("expected errors, got {c:#?}"),
        Err(d) => d.items,
    }
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// A folder holding `ward.toml` with `text`.
fn folder(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ward.toml");
    std::fs::write(&config, text).unwrap();
    (dir, config)
}

const ENV_FILE_CONFIG: &str = "[program.a]\ncommand = \"a\"\nenv_file = \"a.env\"\n";

#[cfg(unix)]
#[test]
fn a_fifo_env_file_is_refused_without_waiting_for_a_writer() {
    let (dir, config) = folder(ENV_FILE_CONFIG);
    let fifo = dir.path().join("a.env");
    mkfifo(&fifo);
    let all = load_errors(&config);
    assert_eq!(all.len(), 1, "{all:#?}");
    let d = &all[0];
    assert_eq!((d.file.as_path(), d.line, d.col), (config.as_path(), 3, 12));
    assert_eq!(
        d.message,
        format!("env_file {}: not a regular file (a FIFO)", fifo.display())
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_config_is_refused_without_waiting_for_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("ward.toml");
    mkfifo(&fifo);
    let all = load_errors(&fifo);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!((all[0].line, all[0].col), (0, 0));
    assert_eq!(
        all[0].message,
        format!("{}: not a regular file (a FIFO)", fifo.display())
    );
}

#[cfg(unix)]
#[test]
fn a_device_is_not_read_as_a_file() {
    // /dev/null reads as an empty file; /dev/zero and /dev/urandom never
    // end. Neither is a config or an env file.
    let all = load_errors(Path::new("/dev/null"));
    assert_eq!(
        all[0].message,
        "/dev/null: not a regular file (a character device)"
    );

    let (_dir, config) = folder("[program.a]\ncommand = \"a\"\nenv_file = \"/dev/null\"\n");
    let all = load_errors(&config);
    assert_eq!(
        (all[0].line, all[0].col, all[0].message.as_str()),
        (
            3,
            12,
            "env_file /dev/null: not a regular file (a character device)"
        )
    );
}

#[cfg(unix)]
#[test]
fn a_directory_is_not_a_regular_file_either() {
    let (dir, config) = folder(ENV_FILE_CONFIG);
    std::fs::create_dir(dir.path().join("a.env")).unwrap();
    let d = &load_errors(&config)[0];
    assert_eq!(
        d.message,
        format!(
            "env_file {}: not a regular file (a directory)",
            dir.path().join("a.env").display()
        )
    );
}

#[test]
fn files_of_up_to_1_mib_are_read_and_larger_ones_refused() {
    const MIB: usize = 1 << 20;
    // Exactly 1 MiB: comment lines, then one setting.
    let setting = "A=1\n";
    let mut text = "#".repeat(MIB - setting.len() - 1);
    text.push('\n');
    text.push_str(setting);
    assert_eq!(text.len(), MIB);
    let (dir, config) = folder(ENV_FILE_CONFIG);
    let env = dir.path().join("a.env");
    std::fs::write(&env, &text).unwrap();
    let c = load_bounded(&config).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(c.specs.programs["a"].launch.env, [(s("A"), s("1"))]);

    std::fs::write(&env, format!("#{text}")).unwrap();
    let d = &load_errors(&config)[0];
    assert_eq!((d.line, d.col), (3, 12));
    assert_eq!(
        d.message,
        format!(
            "env_file {}: larger than 1 MiB, the limit for a file ward reads",
            env.display()
        )
    );

    let big = format!("{}\n{ENV_FILE_CONFIG}", "#".repeat(MIB));
    std::fs::write(&config, big).unwrap();
    let d = &load_errors(&config)[0];
    assert_eq!(
        d.message,
        format!(
            "{}: larger than 1 MiB, the limit for a file ward reads",
            config.display()
        )
    );
}

#[test]
fn an_env_file_that_is_not_utf8_says_where() {
    let (dir, config) = folder(ENV_FILE_CONFIG);
    let env = dir.path().join("a.env");
    std::fs::write(&env, b"A=1\nB=caf\xe9\n").unwrap();
    let all = load_errors(&config);
    assert_eq!(all.len(), 1, "{all:#?}");
    let d = &all[0];
    assert_eq!((d.file.as_path(), d.line, d.col), (config.as_path(), 3, 12));
    assert_eq!(
        d.message,
        format!(
            "env_file {} is not valid UTF-8: byte 0xE9 at line 2, column 6 (byte offset 9)",
            env.display()
        )
    );
    assert_eq!(d.help.as_deref(), Some("save it as UTF-8"));

    // A character cut short at the end of the file.
    std::fs::write(&env, b"A=\xc3").unwrap();
    let d = &load_errors(&config)[0];
    assert!(
        d.message.ends_with(
            "is not valid UTF-8: an incomplete character at line 1, column 3 (byte offset 2)"
        ),
        "{}",
        d.message
    );
}

#[test]
fn a_config_that_is_not_utf8_is_reported_at_the_bad_byte() {
    let (_dir, config) = folder("");
    std::fs::write(&config, b"[program.a]\ncommand = \"caf\xe9\"\n").unwrap();
    let all = load_errors(&config);
    assert_eq!(all.len(), 1, "{all:#?}");
    let d = &all[0];
    assert_eq!((d.line, d.col), (2, 15));
    assert_eq!(
        d.message,
        format!(
            "{} is not valid UTF-8: byte 0xE9 at line 2, column 15 (byte offset 26)",
            config.display()
        )
    );
    assert_eq!(d.help.as_deref(), Some("save the file as UTF-8"));
}

#[test]
fn program_names_are_at_most_100_bytes() {
    let name = "a".repeat(100);
    ok(&format!("[program.{name}]\ncommand = \"a\"\n"));
    let name = "a".repeat(300);
    let d = error(&format!("[program.{name}]\ncommand = \"a\"\n"));
    assert_eq!((d.line, d.col, d.span_len), (1, 10, 300));
    assert_eq!(
        d.message,
        "program name of 300 bytes is too long: the limit is 100"
    );
    assert!(
        d.help
            .as_deref()
            .unwrap_or("")
            .contains("<name>.<index>.log"),
        "{:?}",
        d.help
    );
}

#[test]
fn non_ascii_program_names_say_which_characters_are_allowed() {
    let d = error("[program.\"café\"]\ncommand = \"a\"\n");
    assert_eq!((d.line, d.col), (1, 10));
    assert_eq!(
        d.message,
        "invalid program name \"café\": \"é\" is not allowed"
    );
    assert_eq!(
        d.help.as_deref(),
        Some(
            "a name holds only ASCII letters (A-Z, a-z), digits (0-9), \"_\", \"-\" and \".\"; \
             spell it in ASCII, e.g. [program.cafe]"
        )
    );
    // Where there is no ASCII spelling to offer, the examples stand in.
    let d = error("[program.\"名前\"]\ncommand = \"a\"\n");
    assert!(
        d.help
            .as_deref()
            .unwrap_or("")
            .ends_with("e.g. [program.api], [program.worker-1], [program.db_main]"),
        "{:?}",
        d.help
    );
    let d = error("[program.\"Straße 2\"]\ncommand = \"a\"\n");
    assert_eq!(
        d.message,
        "invalid program name \"Straße 2\": \"ß\" is not allowed"
    );
    assert!(
        d.help
            .as_deref()
            .unwrap_or("")
            .ends_with("e.g. [program.Strasse-2]"),
        "{:?}",
        d.help
    );
}

/// A path of exactly `len` bytes: `/` and `x`s.
#[cfg(unix)]
fn path_of(len: usize) -> String {
    format!("/{}", "x".repeat(len - 1))
}

#[cfg(unix)]
#[test]
fn a_socket_path_must_fit_a_unix_socket_address() {
    let limit = crate::settings::SOCKET_PATH_MAX.expect("a Unix system");
    // At the limit: accepted.
    ok(&format!("[ward]\nsocket = \"{}\"\n", path_of(limit)));
    // Set directly: reported at `socket`.
    let text = format!("[ward]\nsocket = \"{}\"\n", path_of(limit + 1));
    let d = error(&text);
    assert_eq!((d.line, d.col), (2, 10));
    assert_eq!(
        d.message,
        format!(
            "the control socket path {} is {} bytes long; a Unix socket path holds at most {limit} bytes here",
            path_of(limit + 1),
            limit + 1
        )
    );
    assert!(
        d.help
            .as_deref()
            .unwrap_or("")
            .starts_with("set [ward] socket to a shorter path"),
        "{:?}",
        d.help
    );
    // Derived from state_dir: reported there.
    let state_dir = path_of(limit);
    let text = format!("[ward]\nsocket_mode = \"0600\"\nstate_dir = \"{state_dir}\"\n");
    let d = error(&text);
    assert_eq!((d.line, d.col), (3, 13));
    assert!(
        d.message
            .starts_with(&format!("the control socket path {state_dir}/ward.sock is")),
        "{}",
        d.message
    );
    // A shorter socket set beside a long state_dir is fine.
    ok(&format!(
        "[ward]\nstate_dir = \"{state_dir}\"\nsocket = \"/run/ward.sock\"\n"
    ));
    // Derived from where the file is: the whole file.
    let file = format!("{}/ward.toml", path_of(limit));
    let d = &parse(Path::new(&file), "").unwrap_err().items[0];
    assert_eq!(
        (d.line, d.col, d.snippet.as_str(), d.span_len),
        (0, 0, "", 0)
    );
    assert!(
        d.message.starts_with("the control socket path "),
        "{}",
        d.message
    );
}

#[cfg(unix)]
#[test]
fn the_socket_directory_leaves_room_for_the_temporary_name() {
    // ward binds under a temporary name of up to 10 bytes beside the
    // socket, then renames it: a socket with a short name in a long
    // directory fits, but its temporary name would not.
    let limit = crate::settings::SOCKET_PATH_MAX.expect("a Unix system");
    let socket = format!("{}/s", path_of(limit - 2));
    let d = error(&format!("[ward]\nsocket = \"{socket}\"\n"));
    assert_eq!((d.line, d.col), (2, 10));
    assert!(d.message.contains("temporary name"), "{}", d.message);
}

const DURATION_KEYS: [(&str, &str); 7] = [
    ("min_uptime", "min_uptime = \"{}\""),
    ("stop_timeout", "stop_timeout = \"{}\""),
    ("backoff.initial", "backoff.initial = \"{}\""),
    ("backoff.max", "backoff.max = \"{}\""),
    ("backoff.reset_after", "backoff.reset_after = \"{}\""),
    ("start_limit.interval", "start_limit.interval = \"{}\""),
    ("start_limit.cooldown", "start_limit.cooldown = \"{}\""),
];

fn with_every_duration(value: &str) -> String {
    let mut text = String::from("[program.a]\ncommand = \"a\"\n");
    for (_, line) in DURATION_KEYS {
        text.push_str(&line.replace("{}", value));
        text.push('\n');
    }
    text
}

#[test]
fn every_duration_is_capped_at_365_days() {
    let c = ok(&with_every_duration("365d"));
    let a = &c.specs.programs["a"];
    let year = Duration::from_secs(365 * 86_400);
    assert_eq!(
        (
            a.min_uptime,
            a.stop_timeout,
            a.backoff.max,
            a.start_limit.cooldown
        ),
        (year, year, year, Some(year))
    );
    for too_long in [
        "366d",
        "365d1ms",
        "8761h",
        "200000d",
        "18446744073709551615ms",
    ] {
        let got = places(&with_every_duration(too_long));
        let lines: Vec<usize> = got.iter().map(|(line, _, _)| *line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 8, 9], "{too_long}: {got:#?}");
        for d in super::errors(&with_every_duration(too_long)) {
            assert!(
                d.message
                    .ends_with("too long a duration (the limit is 365d)"),
                "{too_long}: {}",
                d.message
            );
            assert_eq!(d.help, None, "the syntax was fine");
        }
    }
}

#[test]
fn a_state_dir_that_is_a_file_is_reported_at_state_dir() {
    let (dir, config) = folder("[ward]\nstate_dir = \"state\"\n");
    let state = dir.path().join("state");
    std::fs::write(&state, "").unwrap();
    let all = load_errors(&config);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!((all[0].line, all[0].col), (2, 13));
    assert_eq!(
        all[0].message,
        format!(
            "state_dir {} exists and is not a directory",
            state.display()
        )
    );

    // The default, .ward beside the file: about the whole file.
    std::fs::write(&config, "").unwrap();
    std::fs::write(dir.path().join(".ward"), "").unwrap();
    let d = &load_errors(&config)[0];
    assert_eq!((d.line, d.col, d.span_len), (0, 0, 0));
    assert_eq!(
        d.message,
        format!(
            "state_dir {} exists and is not a directory",
            dir.path().join(".ward").display()
        )
    );
}

/// Knows one user and one group, `app`; fails the test when asked about
/// a numeric id.
struct OneAccount;

impl crate::Host for OneAccount {
    fn check_user(&self, name: &str) -> Result<(), String> {
        assert!(name.parse::<u32>().is_err(), "asked about uid {name}");
        match name {
            "app" => Ok(()),
            _ => Err(format!("unknown user {name:?}")),
        }
    }

    fn check_group(&self, name: &str) -> Result<(), String> {
        assert!(name.parse::<u32>().is_err(), "asked about gid {name}");
        match name {
            "app" => Ok(()),
            _ => Err(format!("unknown group {name:?}")),
        }
    }
}

#[test]
fn users_and_groups_are_asked_of_the_host() {
    let text = r#"[program.a]
command = "a"
user = "app"
group = "app"
[program.b]
command = "b"
user = "nobody-here"
group = "staff-here"
[program.c]
command = "c"
user = "4000123"
group = "0"
"#;
    let all = errors_on(text, &OneAccount);
    let got = explained(&all);
    assert_eq!(
        got,
        [
            (
                7,
                8,
                "unknown user \"nobody-here\" for \"user\" in [program.b]",
                Some("ward runs the program as this user: fix the name, create it, or give a numeric uid")
            ),
            (
                8,
                9,
                "unknown group \"staff-here\" for \"group\" in [program.b]",
                Some("ward runs the program as this group: fix the name, create it, or give a numeric gid")
            ),
        ]
    );
    // The group that log files are given to is asked about too.
    let logs =
        "[ward.logs]\nmode = \"0640\"\ngroup = \"shippers-here\"\n[program.a]\ncommand = \"a\"\n";
    let all = errors_on(logs, &OneAccount);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!((all[0].line, all[0].col), (3, 9));
    assert_eq!(
        all[0].message,
        "unknown group \"shippers-here\" for \"group\" in [ward.logs]"
    );
    // Without a host, the file alone decides.
    let c = parse(Path::new(super::FILE), text).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        c.specs.programs["b"].launch.user.as_deref(),
        Some("nobody-here")
    );
}

/// A host like Windows: no accounts, console events and KILL only,
/// Ctrl-Break by default.
struct ConsoleHost;

impl crate::Host for ConsoleHost {
    fn check_user(&self, _name: &str) -> Result<(), String> {
        panic!("no accounts here: check_accounts says so first")
    }

    fn check_group(&self, _name: &str) -> Result<(), String> {
        panic!("no accounts here: check_accounts says so first")
    }

    fn check_accounts(&self) -> Result<(), String> {
        Err("run ward's service under that account".into())
    }

    fn check_signal(&self, signal: Signal) -> Result<(), String> {
        match signal {
            Signal::CtrlC | Signal::CtrlBreak | Signal::Kill => Ok(()),
            _ => Err("use \"ctrl-break\"".into()),
        }
    }

    fn default_stop_signal(&self) -> Signal {
        Signal::CtrlBreak
    }
}

#[test]
fn what_a_host_cannot_do_is_an_error_at_its_key_and_its_defaults_apply() {
    let text = r#"[program.a]
command = "a"
[program.b]
command = "b"
stop_signal = "ctrl-c"
[program.c]
command = "c"
stop_signal = "TERM"
user = "1000"
[program.d]
command = "d"
stop_signal = "hup-ish"
"#;
    let all = errors_on(text, &ConsoleHost);
    let got = explained(&all);
    assert_eq!(
        got,
        [
            (
                8,
                15,
                "\"stop_signal\" in [program.c] cannot be SIGTERM on this system",
                Some("use \"ctrl-break\"")
            ),
            (
                9,
                8,
                "\"user\" in [program.c] cannot be set on this system",
                Some("run ward's service under that account")
            ),
            (
                12,
                15,
                "unknown signal \"hup-ish\" for \"stop_signal\" in [program.d]",
                Some("expected one of \"KILL\", \"CTRL_C\", or \"CTRL_BREAK\"")
            ),
        ]
    );
    let fine =
        "[program.a]\ncommand = \"a\"\n[program.b]\ncommand = \"b\"\nstop_signal = \"ctrl-c\"\n";
    let path = Path::new(super::FILE);
    let c = crate::parse_with(path, fine, &ConsoleHost).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(c.specs.programs["a"].stop_signal, Signal::CtrlBreak);
    assert_eq!(c.specs.programs["b"].stop_signal, Signal::CtrlC);
    // Without a host, the file alone decides, with the Unix default.
    assert_eq!(
        parse(path, fine).unwrap().specs.programs["a"].stop_signal,
        Signal::Term
    );
}

#[test]
fn a_stop_command_is_words_and_not_with_a_stop_signal() {
    let path = Path::new(super::FILE);
    let text = r#"[program.a]
command = "a"
stop_command = "curl -X POST http://localhost:8080/shutdown"
[program.b]
command = "b"
stop_command = ["b-ctl", "stop"]
stop_signal = "INT"
[program.c]
command = "c"
stop_command = []
"#;
    assert_eq!(
        places(text),
        [
            (
                6,
                16,
                "both stop_signal and stop_command in [program.b]".into()
            ),
            (10, 16, "empty stop_command in [program.c]".into()),
        ]
    );
    let ok = "[program.a]\ncommand = \"a\"\nstop_command = \"curl -X POST 'http://x/shut down'\"\n";
    let c = crate::parse(path, ok).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        c.specs.programs["a"].stop_command.as_deref(),
        Some(&["curl", "-X", "POST", "http://x/shut down"].map(String::from)[..])
    );
}

#[cfg(unix)]
#[test]
fn the_socket_length_example_in_the_reference_is_right() {
    let doc = include_str!("../../../../docs/config.md");
    let at = doc.find("supervisor-state").expect("the example");
    let start = doc[..at].rfind("```toml\n").expect("its block") + "```toml\n".len();
    let example = &doc[start..start + doc[start..].find("```").expect("its end")];
    ok(example);
    let without: String = example
        .lines()
        .filter(|l| !l.starts_with("socket"))
        .map(|l| format!("{l}\n"))
        .collect();
    let d = error(&without);
    assert_eq!((d.line, d.col), (2, 13));
    assert!(d.message.contains("is 111 bytes long"), "{}", d.message);
}

#[test]
fn log_files_may_be_shared_for_reading_only() {
    let path = Path::new(super::FILE);
    let text = "[ward.logs]\nmode = \"0640\"\ngroup = \"4\"\nallow_writable_dir = true\n\
                [program.a]\ncommand = \"a\"\n";
    let c = parse(Path::new(super::FILE), text).unwrap_or_else(|d| panic!("{d}"));
    let access = &c.specs.programs["a"].logs.access;
    assert_eq!(access.mode, 0o640);
    assert_eq!(access.group.as_deref(), Some("4"));
    assert!(access.allow_writable_dir);
    for bad in ["0666", "0700", "0400", "0604x"] {
        let text = format!("[program.a]\ncommand = \"a\"\nlogs = {{ mode = \"{bad}\" }}\n");
        let err = parse(path, &text).unwrap_err().to_string();
        assert!(err.contains("3:"), "{bad}: {err}");
        assert!(
            err.contains("not a mode for log files") || err.contains("invalid mode"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn output_goes_to_files_the_journal_or_both_but_somewhere() {
    let c = ok(
        "[ward.logs]\njournald = true\n[program.a]\ncommand = \"a\"\n\
                [program.b]\ncommand = \"b\"\nlogs = { files = false }\n",
    );
    let (a, b) = (&c.specs.programs["a"].logs, &c.specs.programs["b"].logs);
    assert!(a.files && a.journald);
    assert!(!b.files && b.journald);
    let plain = ok("[program.a]\ncommand = \"a\"\n");
    assert!(plain.specs.programs["a"].logs.files);
    assert!(!plain.specs.programs["a"].logs.journald, "off unless asked");
    let d = error("[program.a]\ncommand = \"a\"\nlogs = { files = false }\n");
    assert_eq!((d.line, d.col), (3, 18));
    assert!(
        d.message.contains("the output goes nowhere"),
        "{}",
        d.message
    );
    // Turned off in [ward.logs], the journal turned off by the program.
    let d = error(
        "[ward.logs]\nfiles = false\njournald = true\n\
         [program.a]\ncommand = \"a\"\nlogs = { journald = false }\n",
    );
    assert_eq!(d.line, 6);
}
