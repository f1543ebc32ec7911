//! Hostile or mistaken config input, through the real binary: files that
//! are not regular files (a FIFO, a device), too large or not UTF-8; what
//! `ward up` would fail on (names and socket paths too long, unknown users
//! and groups, a state_dir that is a file) reported by `ward check` with
//! `file:line:col`; absurd durations. Every run is bounded by the harness:
//! a reader that blocks fails the test.

use std::path::Path;
use std::process::{Command, Output};

use crate::harness::*;

/// `ward check` failed, and its stderr.
fn check_fails(ward: &Ward) -> String {
    check_fails_with(ward.command(&["check"]))
}

fn check_fails_with(cmd: Command) -> String {
    let out = run_bounded(cmd);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "check must fail; stdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    err
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// `ward ARGS` in the folder of `ward`, with no `--config` of the
/// harness's (ARGS name the config).
fn ward_cmd(ward: &Ward, program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(ward.path())
        .env_remove("WARD_SOCKET")
        .env_remove("WARD_CONFIG")
        .env("NO_COLOR", "1");
    cmd
}

/// `ward ARGS` under an address-space limit: were it to read a device that
/// never ends, it would fail to allocate instead of eating the machine.
fn ward_limited(ward: &Ward, args: &[&str]) -> Output {
    let mut cmd = ward_cmd(ward, "prlimit", &["--as=1073741824", "--", WARD]);
    cmd.args(args);
    run_bounded(cmd)
}

#[test]
fn check_refuses_a_fifo_env_file_without_waiting_for_a_writer() {
    let ward = Ward::new("[program.a]\ncommand = [\"{testee}\"]\nenv_file = \"pipe.env\"\n");
    let fifo = ward.path().join("pipe.env");
    mkfifo(&fifo);
    let err = check_fails(&ward);
    assert!(err.contains("ward.toml:3:12"), "{err}");
    assert!(
        err.contains(&format!("{}: not a regular file (a FIFO)", fifo.display())),
        "{err}"
    );
}

#[test]
fn a_fifo_config_is_refused_without_waiting_for_a_writer() {
    let ward = Ward::new("");
    let fifo = ward.path().join("pipe.toml");
    mkfifo(&fifo);
    let fifo_arg = fifo.display().to_string();
    for verb in ["check", "up"] {
        let err = check_fails_with(ward_cmd(&ward, WARD, &["--config", &fifo_arg, verb]));
        assert!(
            err.contains(&format!("{fifo_arg}: not a regular file (a FIFO)")),
            "{verb}: {err}"
        );
    }
}

#[test]
fn devices_that_never_end_are_refused_as_config_and_env_file() {
    let ward = Ward::new("[program.a]\ncommand = [\"{testee}\"]\nenv_file = \"/dev/zero\"\n");
    let config = ward.config().display().to_string();
    let out = ward_limited(&ward, &["--config", &config, "check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("ward.toml:3:12"), "{err}");
    assert!(
        err.contains("env_file /dev/zero: not a regular file (a character device)"),
        "{err}"
    );

    for device in ["/dev/zero", "/dev/urandom"] {
        let out = ward_limited(&ward, &["--config", device, "check"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains(&format!(
                "{device}: not a regular file (a character device)"
            )),
            "{err}"
        );
    }
}

#[test]
fn check_refuses_an_env_file_over_1_mib() {
    let ward = Ward::new("[program.a]\ncommand = [\"{testee}\"]\nenv_file = \"big.env\"\n");
    let big = ward.path().join("big.env");
    std::fs::write(&big, "#".repeat((1 << 20) + 1)).unwrap();
    let err = check_fails(&ward);
    assert!(err.contains("ward.toml:3:12"), "{err}");
    assert!(
        err.contains(&format!(
            "env_file {}: larger than 1 MiB, the limit for a file ward reads",
            big.display()
        )),
        "{err}"
    );
}

#[test]
fn check_says_where_an_env_file_is_not_utf8() {
    let ward = Ward::new("[program.a]\ncommand = [\"{testee}\"]\nenv_file = \".env\"\n");
    let env = ward.path().join(".env");
    std::fs::write(&env, b"A=1\nB=caf\xe9\n").unwrap();
    let err = check_fails(&ward);
    assert!(err.contains("ward.toml:3:12"), "{err}");
    assert!(
        err.contains(&format!(
            "env_file {} is not valid UTF-8: byte 0xE9 at line 2, column 6 (byte offset 9)",
            env.display()
        )),
        "{err}"
    );
}

#[test]
fn check_rejects_a_program_name_too_long_for_file_names() {
    // 300 bytes: its log file name and cgroup leaf would pass the 255-byte
    // limit of a path component, and `ward up` would fail at the spawn.
    let name = "n".repeat(300);
    let ward = Ward::new(&format!("[program.{name}]\ncommand = [\"{{testee}}\"]\n"));
    let err = check_fails(&ward);
    assert!(
        err.contains("ward.toml:1:10: program name of 300 bytes is too long: the limit is 100"),
        "{err}"
    );
    // At the limit, it starts.
    let name = "n".repeat(100);
    let ward = Ward::new(&format!("[program.{name}]\ncommand = [\"{{testee}}\"]\n"));
    ward.ok(&["check"]);
    let ward = ward.up();
    ward.wait_state(&name, 0, "running");
    ward.down();
}

#[test]
fn check_rejects_a_socket_path_too_long_for_a_unix_socket() {
    let long = format!("/tmp/{}", "d".repeat(110));
    let ward = Ward::new(&format!(
        "[ward]\nsocket_mode = \"0600\"\nstate_dir = \"{long}\"\n"
    ));
    let err = check_fails(&ward);
    assert!(err.contains("ward.toml:3:13"), "{err}");
    assert!(
        err.contains(&format!("the control socket path {long}/ward.sock is")),
        "{err}"
    );
    assert!(err.contains("set [ward] socket to a shorter path"), "{err}");
    assert!(!Path::new(&long).exists(), "check created the state dir");

    let ward = Ward::new(&format!("[ward]\nsocket = \"{long}/s.sock\"\n"));
    let err = check_fails(&ward);
    assert!(err.contains("ward.toml:2:10"), "{err}");
}

const UNKNOWN_ACCOUNTS: &str = r#"[program.a]
command = ["{testee}"]
user = "no-such-user-ward-it"
group = "no-such-group-ward-it"
"#;

#[test]
fn check_rejects_an_unknown_user_or_group() {
    let ward = Ward::new(UNKNOWN_ACCOUNTS);
    let err = check_fails(&ward);
    assert!(
        err.contains(
            "ward.toml:3:8: unknown user \"no-such-user-ward-it\" for \"user\" in [program.a]"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "ward.toml:4:9: unknown group \"no-such-group-ward-it\" for \"group\" in [program.a]"
        ),
        "{err}"
    );

    // Numeric ids need no entry in the user database.
    let ward = Ward::new(
        "[program.a]\ncommand = [\"{testee}\"]\nuser = \"4000123\"\ngroup = \"4000124\"\n",
    );
    ward.ok(&["check"]);
}

#[test]
fn reload_rejects_an_unknown_user_and_changes_nothing() {
    let ward = Ward::new("[program.a]\ncommand = [\"{testee}\"]\n").up();
    let before = ward.wait_state("a", 0, "running");
    ward.write_config(UNKNOWN_ACCOUNTS);
    let out = ward.ward(&["reload"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("ward.toml:3:8"), "{err}");
    assert!(err.contains("unknown user"), "{err}");
    let after = ward.instance("a", 0);
    assert_eq!(before["pid"], after["pid"], "a rejected reload restarted a");
    ward.down();
}

#[test]
fn check_says_which_characters_a_program_name_may_hold() {
    let ward = Ward::new("[program.\"café\"]\ncommand = [\"{testee}\"]\n");
    let err = check_fails(&ward);
    assert!(
        err.contains("ward.toml:1:10: invalid program name \"café\": \"é\" is not allowed"),
        "{err}"
    );
    assert!(
        err.contains(
            "a name holds only ASCII letters (A-Z, a-z), digits (0-9), \"_\", \"-\" and \".\"; \
             spell it in ASCII, e.g. [program.cafe]"
        ),
        "{err}"
    );
}

#[test]
fn check_rejects_durations_past_365_days() {
    let ward = Ward::new(
        "[program.a]\ncommand = [\"{testee}\"]\nstop_timeout = \"18446744073709551615ms\"\nmin_uptime = \"366d\"\nbackoff = { max = \"100000000d\" }\n",
    );
    let err = check_fails(&ward);
    for place in ["ward.toml:3:16", "ward.toml:4:14", "ward.toml:5:19"] {
        assert!(err.contains(place), "{place}: {err}");
    }
    assert_eq!(
        err.matches("too long a duration (the limit is 365d)")
            .count(),
        3,
        "{err}"
    );
}

#[test]
fn check_rejects_a_state_dir_that_is_a_file() {
    let ward = Ward::new("[ward]\nstate_dir = \"state\"\n");
    let state = ward.path().join("state");
    std::fs::write(&state, "").unwrap();
    let err = check_fails(&ward);
    assert!(
        err.contains(&format!(
            "ward.toml:2:13: state_dir {} exists and is not a directory",
            state.display()
        )),
        "{err}"
    );
}

#[test]
fn check_resolves_each_command_as_the_spawn_would() {
    use std::os::unix::fs::PermissionsExt;
    let ward = Ward::new(
        r#"
[program.typo]
command = ["tsetprog", "--serve"]
env = { PATH = "{dir}/tools" }
[program.missing]
command = ["./bin/job.sh"]
[program.plain]
command = ["./notexec.sh"]
[program.fine]
command = ["testprog"]
env = { PATH = "{dir}/tools" }
"#,
    );
    let tools = ward.path().join("tools");
    std::fs::create_dir(&tools).unwrap();
    let prog = tools.join("testprog");
    std::fs::write(&prog, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(ward.path().join("notexec.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        ward.path().join("notexec.sh"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = ward.ward(&["check"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let config = ward.config().display().to_string();
    assert!(
        err.contains(&format!(
            "{config}:3:11: cannot run tsetprog: not found in PATH"
        )),
        "{err}"
    );
    assert!(err.contains("did you mean \"testprog\"?"), "{err}");
    assert!(
        err.contains(&format!(
            "{config}:6:11: cannot run ./bin/job.sh: {}/bin/job.sh does not exist",
            ward.path().display()
        )),
        "{err}"
    );
    assert!(
        err.contains("cannot run ./notexec.sh: is not executable (mode 0644)"),
        "{err}"
    );
    assert!(!err.contains("cannot run testprog"), "{err}");
    assert!(err.contains("has 3 errors"), "{err}");
    // For a command an earlier step creates: the check can be turned off.
    let out = ward.ward(&["check", "--no-verify-commands"]);
    assert!(out.status.success(), "{out:?}");
    // `up` refuses the same file, and starts nothing.
    let out = run_bounded(ward.command(&["up"]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was started"));
}
