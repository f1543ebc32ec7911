//! Invalid files: each kind of mistake, where it is reported, and that every
//! mistake is reported at once.

use std::path::{Path, PathBuf};

use super::{error, errors, explained, places, FILE};
use crate::{load, parse};

fn s(text: &str) -> String {
    text.to_string()
}

fn help(text: &str) -> String {
    error(text).help.unwrap_or_default()
}

#[test]
fn a_syntax_error_stops_with_one_positioned_diagnostic() {
    let d = error("[program.a]\ncommand = \"x\nrestart = 1\n");
    assert_eq!((d.line, d.col), (2, 13));
    assert!(d.message.starts_with("invalid TOML: "), "{}", d.message);
    assert_eq!(d.file, PathBuf::from(FILE));

    let d = error("[program.a]\ncommand = \"x\"\ncommand = \"y\"\n");
    assert_eq!((d.line, d.col, d.span_len), (3, 1, 7));
    assert_eq!(d.message, "invalid TOML: duplicate key command");
}

#[test]
fn unknown_keys_point_at_the_key_and_suggest() {
    let text = "[program.api]\ncommand = \"x\"\nrestrat = \"always\"\n";
    let d = error(text);
    assert_eq!((d.line, d.col, d.span_len), (3, 1, 7));
    assert_eq!(d.message, "unknown key \"restrat\" in [program.api]");
    assert_eq!(d.help.as_deref(), Some("did you mean \"restart\"?"));
    assert_eq!(d.snippet, "restrat = \"always\"");
    assert_eq!(
        d.one_line(),
        "/srv/app/ward.toml:3:1: unknown key \"restrat\" in [program.api] (did you mean \"restart\"?)"
    );
}

#[test]
fn unknown_keys_everywhere() {
    let text = r#"[programs.api]
command = "x"
[ward]
sockt = "s"
[ward.logs]
kep = 1
[program.b]
command = "b"
backoff = { intial = "1s" }
start_limit = { bursts = 2 }
logs = { formats = "json" }
autorestart = true
zzz = 1
"#;
    assert_eq!(
        places(text),
        vec![
            (1, 2, s("unknown key \"programs\" at the top level")),
            (4, 1, s("unknown key \"sockt\" in [ward]")),
            (6, 1, s("unknown key \"kep\" in [ward.logs]")),
            (9, 13, s("unknown key \"intial\" in [program.b.backoff]")),
            (
                10,
                17,
                s("unknown key \"bursts\" in [program.b.start_limit]")
            ),
            (11, 10, s("unknown key \"formats\" in [program.b.logs]")),
            (12, 1, s("unknown key \"autorestart\" in [program.b]")),
            (13, 1, s("unknown key \"zzz\" in [program.b]")),
        ]
    );
    let helps: Vec<Option<String>> = errors(text).into_iter().map(|d| d.help).collect();
    assert_eq!(helps[0].as_deref(), Some("did you mean \"program\"?"));
    assert_eq!(helps[1].as_deref(), Some("did you mean \"socket\"?"));
    assert_eq!(helps[2].as_deref(), Some("did you mean \"keep\"?"));
    assert_eq!(helps[3].as_deref(), Some("did you mean \"initial\"?"));
    assert_eq!(helps[6].as_deref(), Some("did you mean \"restart\"?"));
    assert!(helps[7]
        .as_deref()
        .unwrap()
        .starts_with("known keys here: command, shell"));
}

#[test]
fn three_mistakes_give_three_diagnostics_in_file_order() {
    let text = r#"[program.api]
command = "./api"
stop_timeout = 10
restart = "sometimes"

[program.worker]
comand = "./worker"
"#;
    let all = errors(text);
    let got: Vec<(usize, usize)> = all.iter().map(|d| (d.line, d.col)).collect();
    assert_eq!(got, [(3, 16), (4, 11), (6, 1), (7, 1)]);
    assert_eq!(
        all[0].message,
        "wrong type for \"stop_timeout\" in [program.api]: expected a string like \"10s\", found an integer"
    );
    assert_eq!(
        all[0].help.as_deref(),
        Some("write it with a unit, e.g. \"10s\"")
    );
    assert_eq!(
        all[1].message,
        "invalid value \"sometimes\" for \"restart\" in [program.api]"
    );
    assert_eq!(
        all[1].help.as_deref(),
        Some("expected one of \"always\", \"on-failure\", or \"never\"")
    );
    // The misspelt command is both unknown and, so, missing.
    assert_eq!(
        all[2].message,
        "missing key \"command\" in [program.worker]"
    );
    assert_eq!(all[3].message, "unknown key \"comand\" in [program.worker]");
    assert_eq!(all[3].help.as_deref(), Some("did you mean \"command\"?"));

    let rendered = parse(Path::new("ward.toml"), text).unwrap_err().to_string();
    assert_eq!(rendered.matches("error: ward.toml:").count(), 4);
    assert!(rendered.starts_with(
        "error: ward.toml:3:16: wrong type for \"stop_timeout\" in [program.api]: expected a string like \"10s\", found an integer\n  |\n3 | stop_timeout = 10\n  |                ^^\n  = help: write it with a unit, e.g. \"10s\"\n"
    ));
}

#[test]
fn wrong_types_say_what_was_expected() {
    let text = r#"[program.a]
command = 5
instances = "2"
autostart = "true"
shell = 1
user = 1000
cwd = ["x"]
min_uptime = true
logs = "big"
"#;
    assert_eq!(
        places(text),
        vec![
            (2, 11, s("wrong type for \"command\" in [program.a]: expected an array of strings or a string, found an integer")),
            (3, 13, s("wrong type for \"instances\" in [program.a]: expected an integer, found a string")),
            (4, 13, s("wrong type for \"autostart\" in [program.a]: expected a boolean, found a string")),
            (5, 9, s("wrong type for \"shell\" in [program.a]: expected a boolean (true or false), found an integer")),
            (6, 8, s("wrong type for \"user\" in [program.a]: expected a string, found an integer")),
            (7, 7, s("wrong type for \"cwd\" in [program.a]: expected a string, found an array")),
            (8, 14, s("wrong type for \"min_uptime\" in [program.a]: expected a string like \"10s\", found a boolean")),
            (9, 8, s("wrong type for \"logs\" in [program.a]: expected a table, found a string")),
        ]
    );
    let helps: Vec<Option<String>> = errors(text).into_iter().map(|d| d.help).collect();
    assert_eq!(helps[1].as_deref(), Some("drop the quotes: instances = 2"));
    assert_eq!(
        helps[2].as_deref(),
        Some("drop the quotes: autostart = true")
    );
}

#[test]
fn bad_durations_and_sizes_point_at_the_value() {
    let text = r#"[program.a]
command = "a"
stop_timeout = "10x"
min_uptime = "1.5"
logs = { max_size = "50M", max_line = "2MiB", keep = 1001 }
[ward.logs]
max_size = "1KB"
"#;
    let all = errors(text);
    let got: Vec<(usize, usize, &str)> = all
        .iter()
        .map(|d| (d.line, d.col, d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (3, 16, "invalid duration for \"stop_timeout\" in [program.a]: unknown unit \"x\"; use ms, s, m, h or d"),
            (4, 14, "invalid duration for \"min_uptime\" in [program.a]: \"1.5\" has no unit; write it with one, e.g. \"1.5s\" (units: ms, s, m, h, d)"),
            (5, 21, "invalid size for \"max_size\" in [program.a.logs]: unknown unit \"M\"; use B, KB, KiB, MB, MiB, GB, GiB, TB or TiB"),
            (5, 39, "\"max_line\" in [program.a.logs] must be between 1KiB and 1MiB, found \"2MiB\""),
            (5, 54, "\"keep\" in [program.a.logs] must be between 0 and 1000, found 1001"),
            (7, 12, "\"max_size\" in [ward.logs] must be at least 4KiB, found \"1KB\""),
        ]
    );
    assert_eq!(all[0].span_len, 5);
}

#[test]
fn ranges_are_enforced() {
    let text = r#"[program.a]
command = "a"
instances = 0
success_exit_codes = [0, 256, -1, "3"]
backoff = { factor = 0.5, jitter = 1.5 }
start_limit = { burst = 0 }
[program.b]
command = "b"
instances = 10001
backoff = { initial = "1m" }
[program.c]
command = "c"
backoff = { factor = nan }
"#;
    assert_eq!(
        places(text),
        vec![
            (3, 13, s("\"instances\" in [program.a] must be between 1 and 10000, found 0")),
            (4, 26, s("invalid exit code 256 in \"success_exit_codes\" in [program.a]")),
            (4, 31, s("invalid exit code -1 in \"success_exit_codes\" in [program.a]")),
            (4, 35, s("invalid exit code \"3\" in \"success_exit_codes\" in [program.a]")),
            (5, 22, s("\"factor\" in [program.a.backoff] must be at least 1, found 0.5")),
            (5, 36, s("\"jitter\" in [program.a.backoff] must be between 0 and 1, found 1.5")),
            (6, 25, s("\"burst\" in [program.a.start_limit] must be between 1 and 4294967295, found 0")),
            (9, 13, s("\"instances\" in [program.b] must be between 1 and 10000, found 10001")),
            (10, 23, s("backoff initial (1m) is longer than max (30s) in [program.b.backoff]")),
            (13, 22, s("\"factor\" in [program.c.backoff] must be at least 1, found nan")),
        ]
    );
}

#[test]
fn initial_over_max_points_at_max_when_only_max_is_written() {
    let d = error("[program.a]\ncommand = \"a\"\nbackoff = { max = \"100ms\" }\n");
    assert_eq!((d.line, d.col), (3, 19));
    assert_eq!(
        d.message,
        "backoff initial (200ms) is longer than max (100ms) in [program.a.backoff]"
    );
}

#[test]
fn policies_signals_and_conditions_list_the_valid_words() {
    let text = r#"[program.a]
command = "a"
restart = "on_failure"
stop_signal = "TREM"
depends_on = { b = "startd", c = "healthy" }
logs = { format = "xml" }
[program.b]
command = "b"
stop_signal = 15
[program.c]
command = "c"
"#;
    let all = errors(text);
    let got = explained(&all);
    assert_eq!(
        got,
        [
            (3, 11, "invalid value \"on_failure\" for \"restart\" in [program.a]",
                Some("did you mean \"on-failure\"? (expected one of \"always\", \"on-failure\", or \"never\")")),
            (4, 15, "unknown signal \"TREM\" for \"stop_signal\" in [program.a]",
                Some("did you mean \"TERM\"? (expected one of \"HUP\", \"INT\", \"QUIT\", \"ABRT\", \"KILL\", \"USR1\", \"USR2\", \"ALRM\", \"TERM\", \"CONT\", \"STOP\", \"TSTP\", \"WINCH\", \"CTRL_C\", or \"CTRL_BREAK\")")),
            (5, 20, "invalid value \"startd\" for \"b\" in [program.a.depends_on]",
                Some("did you mean \"started\"? (expected one of \"started\", or \"completed\")")),
            (5, 34, "condition \"healthy\" needs health probes, which ward does not have yet; use \"started\"", None),
            (6, 19, "invalid value \"xml\" for \"format\" in [program.a.logs]",
                Some("expected one of \"text\", or \"json\"")),
            (9, 15, "wrong type for \"stop_signal\" in [program.b]: expected a signal name like \"TERM\", found an integer",
                Some("signal numbers differ between systems; write the name, e.g. \"TERM\"")),
        ]
    );
}

#[test]
fn stop_mode_lists_its_words_and_systemds_name_points_at_it() {
    let text = "[program.a]\ncommand = \"a\"\nstop_mode = \"mixed\"\n";
    let d = error(text);
    assert_eq!((d.line, d.col), (3, 13));
    assert_eq!(
        d.message,
        "invalid value \"mixed\" for \"stop_mode\" in [program.a]"
    );
    assert_eq!(
        d.help.as_deref(),
        Some("expected one of \"tree\", or \"main\"")
    );
    let text = "[program.a]\ncommand = \"a\"\nkill_mode = \"main\"\n";
    let d = error(text);
    assert_eq!(d.message, "unknown key \"kill_mode\" in [program.a]");
    assert!(
        d.help.as_deref().unwrap_or_default().contains("stop_mode"),
        "{:?}",
        d.help
    );
}

#[test]
fn unknown_dependencies_suggest_program_names() {
    let text = r#"[program.api]
command = "a"
depends_on = ["dbb", "cache"]
[program.db]
command = "d"
depends_on = { api2 = "started" }
"#;
    let all = errors(text);
    let got = explained(&all);
    assert_eq!(
        got,
        [
            (
                3,
                15,
                "unknown program \"dbb\" in depends_on of [program.api]",
                Some("did you mean \"db\"?")
            ),
            (
                3,
                22,
                "unknown program \"cache\" in depends_on of [program.api]",
                Some("programs in this file: api, db")
            ),
            (
                6,
                16,
                "unknown program \"api2\" in depends_on of [program.db]",
                Some("did you mean \"api\"?")
            ),
        ]
    );
}

#[test]
fn cycles_are_reported_at_the_first_programs_entry() {
    let text = r#"[program.c]
command = "c"
depends_on = ["a"]
[program.a]
command = "a"
depends_on = { b = "started" }
[program.b]
command = "b"
depends_on = ["c"]
[program.self]
command = "s"
depends_on = ["self"]
"#;
    assert_eq!(
        places(text),
        vec![
            (6, 16, s("dependency cycle: a → b → c → a")),
            (12, 15, s("dependency cycle: self → self")),
        ]
    );
}

#[test]
fn every_cycle_is_reported_once() {
    let text = r#"[program.a]
command = "a"
depends_on = ["b", "c"]
[program.b]
command = "b"
depends_on = ["a"]
[program.c]
command = "c"
depends_on = ["a"]
"#;
    assert_eq!(
        places(text),
        vec![
            (3, 15, s("dependency cycle: a → b → a")),
            (3, 20, s("dependency cycle: a → c → a")),
        ]
    );
}

#[test]
fn command_mistakes() {
    let text = r#"[program.empty]
command = ""
[program.blank_array]
command = []
[program.shell_array]
command = ["a", "b"]
shell = true
[program.quotes]
command = "echo 'unclosed"
[program.elements]
command = ["", 8080, true]
[program.missing]
cwd = "."
[program.shell_blank]
command = "  "
shell = true
"#;
    assert_eq!(
        places(text),
        vec![
            (2, 11, s("empty command in [program.empty]")),
            (4, 11, s("empty command in [program.blank_array]")),
            (6, 11, s("\"command\" in [program.shell_array] is an array, but shell = true runs one line with sh -c")),
            (9, 11, s("cannot split \"command\" in [program.quotes] into words")),
            (11, 12, s("the program to run, first in \"command\" in [program.elements], is empty")),
            (11, 16, s("wrong type for element 2 of \"command\" in [program.elements]: expected a string, found an integer")),
            (11, 22, s("wrong type for element 3 of \"command\" in [program.elements]: expected a string, found a boolean")),
            (12, 1, s("missing key \"command\" in [program.missing]")),
            (15, 11, s("empty command in [program.shell_blank]")),
        ]
    );
    let helps: Vec<Option<String>> = errors(text).into_iter().map(|d| d.help).collect();
    assert_eq!(helps[5].as_deref(), Some("quote it: \"8080\""));
}

#[test]
fn env_values_must_be_strings() {
    let text = r#"[program.a]
command = "a"
env = { PORT = 8080, DEBUG = true, RATIO = 0.5, OK = "1", NESTED.X = "y", "A=B" = "c" }
"#;
    let all = errors(text);
    let got = explained(&all);
    assert_eq!(
        got,
        [
            (
                3,
                16,
                "wrong type for \"PORT\" in [program.a.env]: expected a string, found an integer",
                Some("quote it: PORT = \"8080\"")
            ),
            (
                3,
                30,
                "wrong type for \"DEBUG\" in [program.a.env]: expected a string, found a boolean",
                Some("quote it: DEBUG = \"true\"")
            ),
            (
                3,
                44,
                "wrong type for \"RATIO\" in [program.a.env]: expected a string, found a float",
                Some("quote it: RATIO = \"0.5\"")
            ),
            (
                3,
                59,
                "wrong type for \"NESTED\" in [program.a.env]: expected a string, found a table",
                None
            ),
            (
                3,
                75,
                "invalid environment variable name \"A=B\"",
                Some("a name is not empty and holds no \"=\"")
            ),
        ]
    );
}

#[test]
fn env_file_problems_are_reported_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "A=1\nthis is wrong\nB='open\n").unwrap();
    let config = dir.path().join("ward.toml");
    std::fs::write(
        &config,
        "[program.a]\ncommand = \"a\"\nenv_file = \".env\"\n[program.b]\ncommand = \"b\"\nenv_file = [\"missing.env\"]\n",
    )
    .unwrap();
    let all = load(&config).unwrap_err().items;
    let got: Vec<(PathBuf, usize, usize, &str)> = all
        .iter()
        .map(|d| (d.file.clone(), d.line, d.col, d.message.as_str()))
        .collect();
    let missing = dir.path().join("missing.env");
    let missing_message = format!(
        "cannot read env_file {}: {}",
        missing.display(),
        std::io::Error::from_raw_os_error(2)
    );
    assert_eq!(
        got,
        [
            (config.clone(), 6, 13, missing_message.as_str()),
            (dir.path().join(".env"), 2, 1, "expected KEY=VALUE"),
            (dir.path().join(".env"), 3, 3, "unterminated quoted value"),
        ]
    );
    assert_eq!(all[1].snippet, "this is wrong");
}

#[test]
fn program_names_are_checked() {
    let text = "[program.\"web:1\"]\ncommand = \"a\"\n[program.\"a b\"]\ncommand = \"a\"\n[program.\"..\"]\ncommand = \"a\"\n[program.-x]\ncommand = \"a\"\n";
    assert_eq!(
        places(text),
        vec![
            (1, 10, s("invalid program name \"web:1\"")),
            (
                3,
                10,
                s("invalid program name \"a b\": \" \" is not allowed")
            ),
            (5, 10, s("invalid program name \"..\"")),
            (7, 10, s("invalid program name \"-x\"")),
        ]
    );
    assert!(help(text.split("[program.\"a b\"]").next().unwrap())
        .starts_with("\":\" separates a program from its instance number"));
}

#[test]
fn jobs_are_not_supported_yet() {
    let text = "[job.vacuum]\nschedule = \"0 3 * * *\"\ncommand = \"x\"\n\n[[job.rotate]]\ncommand = \"y\"\n";
    assert_eq!(
        places(text),
        vec![
            (1, 1, s("scheduled jobs ([job.*]) are not supported yet")),
            (5, 1, s("scheduled jobs ([job.*]) are not supported yet")),
        ]
    );
}

#[test]
fn a_program_is_one_table() {
    let d = error("[[program.a]]\ncommand = \"a\"\n");
    assert_eq!((d.line, d.col), (1, 1));
    assert_eq!(
        d.message,
        "[[program.a]] makes a list; a program is one table"
    );
    let d = error("program = \"a\"\n");
    assert_eq!((d.line, d.col), (1, 11));
    assert_eq!(
        d.message,
        "wrong type for \"program\": expected a table, found a string"
    );
}

#[test]
fn socket_mode_mistakes() {
    let text = "[ward]\nsocket_mode = 660\n";
    let d = error(text);
    assert_eq!((d.line, d.col), (2, 15));
    assert_eq!(d.help.as_deref(), Some("quote it: socket_mode = \"0660\""));
    assert_eq!(
        places("[ward]\nsocket_mode = \"0999\"\n"),
        [(
            2,
            15,
            s("invalid mode \"0999\" for \"socket_mode\" in [ward]")
        )]
    );
    assert_eq!(
        places("[ward]\nsocket_mode = \"1777\"\n"),
        [(
            2,
            15,
            s("invalid mode \"1777\" for \"socket_mode\" in [ward]")
        )]
    );
    assert_eq!(
        places("[ward]\nsocket_mode = \"0200\"\n"),
        [(2, 15, s("\"socket_mode\" in [ward] \"0200\" would keep ward's own user from using the socket"))]
    );
}

#[test]
fn empty_paths_are_rejected() {
    assert_eq!(
        places("[ward]\nstate_dir = \"\"\n[program.a]\ncommand = \"a\"\ncwd = \"\"\n"),
        [
            (2, 13, s("\"state_dir\" in [ward] must not be empty")),
            (5, 7, s("\"cwd\" in [program.a] must not be empty")),
        ]
    );
}

#[test]
fn a_missing_file_is_one_plain_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.toml");
    let all = load(&path).unwrap_err();
    assert_eq!(all.items.len(), 1);
    let d = &all.items[0];
    // About the whole file: no line and column to point at.
    assert_eq!((d.line, d.col), (0, 0));
    assert!(!d.to_string().contains(":1:1"), "{d}");
    assert_eq!(d.file, path);
    assert_eq!(
        d.message,
        format!(
            "cannot read {}: {}",
            path.display(),
            std::io::Error::from_raw_os_error(2)
        )
    );
    assert_eq!(
        d.help.as_deref(),
        Some("create one with `ward init`, or pass --config FILE")
    );
    assert_eq!(
        all.to_string(),
        format!(
            "error: {}: {}\n  = help: create one with `ward init`, or pass --config FILE\n",
            path.display(),
            d.message
        )
    );
}

#[test]
fn messages_name_the_file_as_given() {
    let d = parse(Path::new("conf/ward.toml"), "[program.a]\n").unwrap_err();
    assert_eq!(d.items[0].file, PathBuf::from("conf/ward.toml"));
    assert!(d.items[0]
        .one_line()
        .starts_with("conf/ward.toml:1:1: missing key"));
}

#[test]
fn the_reference_error_example_is_what_ward_prints() {
    let text = "[program.api]\ncommand = \"x\"\nrestrat = \"always\"\nstop_timeout = 10\n";
    let rendered = parse(Path::new("ward.toml"), text).unwrap_err().to_string();
    let doc = include_str!("../../../../docs/config.md");
    let start = doc.find("```text\n").expect("a text block") + "```text\n".len();
    let example = &doc[start..start + doc[start..].find("```").expect("its end")];
    assert_eq!(rendered, example);
}

#[test]
fn a_command_line_whose_first_word_is_empty_is_refused() {
    // Found while fuzzing: shlex splits `'' x` into ["", "x"], which the
    // array form refuses but the string form let through.
    let text = "[program.a]\ncommand = \"'' x\"\n[program.b]\ncommand = '\"\"'\n";
    assert_eq!(
        places(text),
        vec![
            (
                2,
                11,
                "the program to run, first in \"command\" in [program.a], is empty".to_string()
            ),
            (
                4,
                11,
                "the program to run, first in \"command\" in [program.b], is empty".to_string()
            ),
        ]
    );
}

#[test]
fn api_limit_mistakes() {
    assert_eq!(
        places("[ward.api]\nheader_timeout = \"0s\"\n"),
        [(
            2,
            18,
            s("\"header_timeout\" in [ward.api] must be longer than 0s")
        )]
    );
    assert_eq!(
        places("[ward.api]\nmax_connections_per_user = 0\n"),
        [(
            2,
            28,
            s("\"max_connections_per_user\" in [ward.api] must be between 1 and 100000, found 0")
        )]
    );
    let d = error("[ward.api]\nidle_timout = \"1s\"\n");
    assert_eq!((d.line, d.col), (2, 1));
    assert_eq!(d.help.as_deref(), Some("did you mean \"idle_timeout\"?"));
}
