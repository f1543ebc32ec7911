//! Valid files: every key's happy path, and every default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ward_core::{
    BackoffSpec, Condition, LogFormat, LogSpec, RestartPolicy, Signal, SpecSet, StartLimit,
    StopMode,
};

use super::{ok, program};
use crate::{load, parse};

/// A path as the config makes it absolute on this system (`/srv/app` is
/// `C:\srv\app`, or whichever drive is current, on Windows).
fn abs(path: &str) -> PathBuf {
    std::path::absolute(path).unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn an_empty_file_is_valid_and_has_every_default() {
    let c = ok("");
    assert_eq!(c.path, abs("/srv/app/ward.toml"));
    assert_eq!(c.specs, SpecSet::default());
    assert_eq!(c.ward.state_dir, abs("/srv/app/.ward"));
    assert_eq!(c.ward.socket, abs("/srv/app/.ward/ward.sock"));
    assert_eq!(c.ward.socket_mode, 0o600);
    assert_eq!(
        c.ward.api,
        crate::ApiSettings {
            header_timeout: secs(5),
            idle_timeout: secs(30),
            max_connections_per_user: 64,
        }
    );
    assert_eq!(
        c.ward.logs,
        LogSpec {
            dir: abs("/srv/app/.ward/logs"),
            max_size: 50_000_000,
            keep: 5,
            format: LogFormat::Text,
            timestamps: true,
            max_line: 16 * 1024,
            access: Default::default(),
            files: true,
            journald: false,
        }
    );
}

#[test]
fn a_program_with_only_a_command_gets_every_default() {
    let c = ok("[program.api]\ncommand = \"./bin/api --port 8080\"\n");
    let p = program(&c, "api");
    assert_eq!(p.name, "api");
    assert_eq!(p.launch.argv, ["./bin/api", "--port", "8080"]);
    assert!(!p.launch.shell);
    assert_eq!(p.launch.cwd, abs("/srv/app"));
    assert!(p.launch.env.is_empty());
    assert_eq!((&p.launch.user, &p.launch.group), (&None, &None));
    assert_eq!(p.instances, 1);
    assert!(p.autostart);
    assert_eq!(p.restart, RestartPolicy::Always);
    assert_eq!(p.success_exit_codes, [0]);
    assert_eq!(
        p.backoff,
        BackoffSpec {
            initial: Duration::from_millis(200),
            max: secs(30),
            factor: 2.0,
            jitter: 0.1,
            reset_after: secs(30),
        }
    );
    assert_eq!(
        p.start_limit,
        StartLimit {
            burst: 5,
            interval: secs(60),
            cooldown: Some(secs(60)),
        }
    );
    assert_eq!(p.min_uptime, secs(1));
    assert_eq!(p.stop_signal, Signal::Term);
    assert_eq!(p.stop_timeout, secs(10));
    assert_eq!(p.stop_mode, StopMode::Tree);
    assert!(p.depends_on.is_empty());
    assert_eq!(*p.logs, c.ward.logs);
}

#[test]
fn every_program_key_in_its_inline_form() {
    let c = ok(r#"
[program.db]
command = ["postgres"]

[program.migrate]
command = "migrate up"
restart = "never"

[program.api]
command      = ["./bin/api", "--port", "8080"]
shell        = false
cwd          = "srv"
env          = { PORT = "8080", MODE = "prod" }
user         = "www-data"
group        = "www"
instances    = 3
autostart    = false
restart      = "on-failure"
success_exit_codes = [0, 2]
backoff      = { initial = "500ms", max = "1m", factor = 1.5, jitter = 0.25, reset_after = "2m" }
start_limit  = { burst = 3, interval = "30s", cooldown = "5m" }
min_uptime   = "1.5s"
stop_signal  = "SIGINT"
stop_timeout = "20s"
stop_mode    = "main"
depends_on   = { db = "started", migrate = "completed" }
logs         = { max_size = "10MB", keep = 3, format = "json", timestamps = false, dir = "logs", max_line = "32KiB" }
"#);
    assert_eq!(c.specs.programs.len(), 3);
    let p = program(&c, "api");
    assert_eq!(p.launch.argv, ["./bin/api", "--port", "8080"]);
    assert_eq!(p.launch.cwd, abs("/srv/app/srv"));
    assert_eq!(
        p.launch.env,
        [
            ("PORT".to_string(), "8080".to_string()),
            ("MODE".to_string(), "prod".to_string())
        ]
    );
    assert_eq!(p.launch.user.as_deref(), Some("www-data"));
    assert_eq!(p.launch.group.as_deref(), Some("www"));
    assert_eq!(p.instances, 3);
    assert!(!p.autostart);
    assert_eq!(p.restart, RestartPolicy::OnFailure);
    assert_eq!(p.success_exit_codes, [0, 2]);
    assert_eq!(
        p.backoff,
        BackoffSpec {
            initial: Duration::from_millis(500),
            max: secs(60),
            factor: 1.5,
            jitter: 0.25,
            reset_after: secs(120),
        }
    );
    assert_eq!(
        p.start_limit,
        StartLimit {
            burst: 3,
            interval: secs(30),
            cooldown: Some(secs(300)),
        }
    );
    assert_eq!(p.min_uptime, Duration::from_millis(1500));
    assert_eq!(p.stop_signal, Signal::Int);
    assert_eq!(p.stop_timeout, secs(20));
    assert_eq!(p.stop_mode, StopMode::Main);
    assert_eq!(
        p.depends_on.iter().collect::<Vec<_>>(),
        [
            (&"db".to_string(), &Condition::Started),
            (&"migrate".to_string(), &Condition::Completed)
        ]
    );
    assert_eq!(
        *p.logs,
        LogSpec {
            dir: abs("/srv/app/logs"),
            max_size: 10_000_000,
            keep: 3,
            format: LogFormat::Json,
            timestamps: false,
            max_line: 32 * 1024,
            access: Default::default(),
            files: true,
            journald: false,
        }
    );
    assert_eq!(program(&c, "migrate").restart, RestartPolicy::Never);
}

#[test]
fn table_forms_read_like_inline_ones() {
    let inline = ok(r#"
[program.api]
command = "api"
backoff = { initial = "1s", max = "10s" }
start_limit = { burst = 2 }
env = { A = "1" }
logs = { keep = 2 }
depends_on = { db = "started" }
[program.db]
command = "db"
"#);
    let tables = ok(r#"
[program.api]
command = "api"
[program.api.backoff]
initial = "1s"
max = "10s"
[program.api.start_limit]
burst = 2
[program.api.env]
A = "1"
[program.api.logs]
keep = 2
[program.api.depends_on]
db = "started"
[program.db]
command = "db"
"#);
    let dotted = ok(r#"
program.db.command = "db"
[program.api]
command = "api"
backoff.initial = "1s"
backoff.max = "10s"
start_limit.burst = 2
env.A = "1"
logs.keep = 2
depends_on.db = "started"
"#);
    assert_eq!(inline.specs, tables.specs);
    assert_eq!(inline.specs, dotted.specs);
}

#[test]
fn ward_settings_and_log_defaults_merge_per_key() {
    let c = ok(r#"
[ward]
state_dir = "/var/lib/ward"
socket = "run/ward.sock"
socket_mode = "0660"
[ward.logs]
max_size = "1MiB"
keep = 9
format = "json"

[program.a]
command = "a"
logs = { keep = 1 }

[program.b]
command = "b"
"#);
    assert_eq!(c.ward.state_dir, abs("/var/lib/ward"));
    assert_eq!(c.ward.socket, abs("/srv/app/run/ward.sock"));
    assert_eq!(c.ward.socket_mode, 0o660);
    let want = LogSpec {
        dir: abs("/var/lib/ward/logs"),
        max_size: 1 << 20,
        keep: 9,
        format: LogFormat::Json,
        timestamps: true,
        max_line: 16 * 1024,
        access: Default::default(),
        files: true,
        journald: false,
    };
    assert_eq!(c.ward.logs, want);
    assert_eq!(*program(&c, "b").logs, want);
    assert_eq!(*program(&c, "a").logs, LogSpec { keep: 1, ..want });
}

#[test]
fn socket_defaults_follow_state_dir_and_octal_integers_work() {
    let c = ok("[ward]\nstate_dir = \"state\"\nsocket_mode = 0o640\n");
    assert_eq!(c.ward.state_dir, abs("/srv/app/state"));
    assert_eq!(c.ward.socket, abs("/srv/app/state/ward.sock"));
    assert_eq!(c.ward.logs.dir, abs("/srv/app/state/logs"));
    assert_eq!(c.ward.socket_mode, 0o640);
}

#[test]
fn commands_split_like_a_shell_or_go_to_sh_with_shell_true() {
    let c = ok(r#"
[program.split]
command = "./run --name 'two words' \"x y\" a\\ b"
[program.shell]
command = "echo $HOME && sleep 1"
shell = true
[program.array]
command = ["echo", "$HOME", ""]
"#);
    assert_eq!(
        program(&c, "split").launch.argv,
        ["./run", "--name", "two words", "x y", "a b"]
    );
    let shell = program(&c, "shell");
    assert!(shell.launch.shell);
    assert_eq!(shell.launch.argv, ["sh", "-c", "echo $HOME && sleep 1"]);
    assert_eq!(program(&c, "array").launch.argv, ["echo", "$HOME", ""]);
}

#[test]
fn depends_on_as_a_list_means_started() {
    let c = ok(r#"
[program.a]
command = "a"
depends_on = ["b", "c", "b"]
[program.b]
command = "b"
[program.c]
command = "c"
depends_on = { b = "completed" }
"#);
    let a = program(&c, "a");
    assert_eq!(a.depends_on.len(), 2);
    assert_eq!(a.depends_on["b"], Condition::Started);
    assert_eq!(a.depends_on["c"], Condition::Started);
    assert_eq!(program(&c, "c").depends_on["b"], Condition::Completed);
}

#[test]
fn cooldown_never_and_signal_spellings() {
    let c = ok(r#"
[program.a]
command = "a"
start_limit = { cooldown = "never" }
stop_signal = "hup"
[program.b]
command = "b"
stop_signal = "SIGQUIT"
backoff = { factor = 1, jitter = 0 }
"#);
    assert_eq!(program(&c, "a").start_limit.cooldown, None);
    assert_eq!(program(&c, "a").stop_signal, Signal::Hup);
    assert_eq!(program(&c, "b").stop_signal, Signal::Quit);
    assert_eq!(program(&c, "b").backoff.factor, 1.0);
    assert_eq!(program(&c, "b").backoff.jitter, 0.0);
}

#[test]
fn range_edges_are_accepted() {
    let c = ok(r#"
[program.a]
command = "a"
instances = 10000
success_exit_codes = [0, 255]
logs = { keep = 1000, max_size = "4KiB", max_line = "1MiB" }
[program.b]
command = "b"
logs = { keep = 0, max_size = 4096, max_line = "1KiB" }
backoff = { initial = "30s", jitter = 1.0 }
"#);
    let a = program(&c, "a");
    assert_eq!(a.instances, 10_000);
    assert_eq!(a.success_exit_codes, [0, 255]);
    assert_eq!(
        (a.logs.keep, a.logs.max_size, a.logs.max_line),
        (1000, 4096, 1 << 20)
    );
    let b = program(&c, "b");
    assert_eq!(
        (b.logs.keep, b.logs.max_size, b.logs.max_line),
        (0, 4096, 1024)
    );
    assert_eq!(b.backoff.initial, b.backoff.max);
}

#[test]
fn env_file_comes_first_and_env_overrides_in_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "# shared\nexport PORT=1\nNAME='api'\n\nDEBUG=\"yes\" # on\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("local.env"), "DEBUG=no\nEXTRA=1\n").unwrap();
    let config = dir.path().join("ward.toml");
    std::fs::write(
        &config,
        r#"
[program.a]
command = "a"
env_file = ".env"
env = { ZED = "z", PORT = "8080" }

[program.b]
command = "b"
env_file = [".env", "local.env"]
"#,
    )
    .unwrap();
    let c = load(&config).unwrap_or_else(|d| panic!("{d}"));
    let pairs = |name: &str| -> Vec<(String, String)> { program(&c, name).launch.env.clone() };
    let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(
        pairs("a"),
        [
            kv("PORT", "8080"),
            kv("NAME", "api"),
            kv("DEBUG", "yes"),
            kv("ZED", "z")
        ]
    );
    assert_eq!(
        pairs("b"),
        [
            kv("PORT", "1"),
            kv("NAME", "api"),
            kv("DEBUG", "no"),
            kv("EXTRA", "1")
        ]
    );
}

#[test]
fn load_anchors_relative_paths_at_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ward.toml");
    std::fs::write(
        &config,
        "[ward]\nstate_dir = \"st\"\n[program.a]\ncommand = \"a\"\ncwd = \"./sub/.\"\nlogs = { dir = \"l\" }\n",
    )
    .unwrap();
    let c = load(&config).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(c.path, config);
    assert_eq!(c.ward.state_dir, dir.path().join("st"));
    let a = program(&c, "a");
    assert_eq!(a.launch.cwd, dir.path().join("sub"));
    assert_eq!(a.logs.dir, dir.path().join("l"));
}

#[test]
fn a_relative_config_path_becomes_absolute() {
    let c = parse(Path::new("ward.toml"), "").unwrap();
    assert!(c.path.is_absolute());
    assert_eq!(c.path, std::env::current_dir().unwrap().join("ward.toml"));
    assert_eq!(
        c.ward.state_dir,
        std::env::current_dir().unwrap().join(".ward")
    );
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let c = ok("\u{feff}[program.a]\ncommand = \"a\"\n");
    assert_eq!(program(&c, "a").launch.argv, ["a"]);
}

#[test]
fn program_names_may_use_dots_dashes_and_underscores() {
    let c = ok("[program.\"web.v2\"]\ncommand = \"a\"\n[program.worker-1]\ncommand = \"b\"\n[program.db_main]\ncommand = \"c\"\n");
    let names: Vec<&str> = c.specs.programs.keys().map(String::as_str).collect();
    assert_eq!(names, ["db_main", "web.v2", "worker-1"]);
}

#[test]
fn the_reference_example_is_valid() {
    let doc = include_str!("../../../../docs/config.md");
    let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let example = &doc[start..start + doc[start..].find("```").expect("its end")];
    let c = ok(example);
    assert_eq!(c.specs.programs.len(), 4);
    let api = program(&c, "api");
    assert_eq!(api.instances, 2);
    assert_eq!(api.depends_on["migrate"], Condition::Completed);
    assert_eq!(api.logs.format, LogFormat::Json);
    assert_eq!(program(&c, "report").launch.argv[..2], ["sh", "-c"]);
    assert_eq!(c.ward.socket_mode, 0o660);
}

#[test]
fn socket_path_reads_through_errors_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.toml");
    std::fs::write(
        &path,
        "[ward]\nsocket = \"run/w.sock\"\n[program.api]\ncommand = 42\nbogus = 1\n",
    )
    .unwrap();
    assert!(crate::load(&path).is_err());
    assert_eq!(crate::socket_path(&path), dir.path().join("run/w.sock"));
    // Not TOML at all, or no file: the default beside it.
    std::fs::write(&path, "[[[").unwrap();
    assert_eq!(
        crate::socket_path(&path),
        dir.path().join(".ward").join("ward.sock")
    );
    assert_eq!(
        crate::socket_path(&dir.path().join("missing.toml")),
        dir.path().join(".ward").join("ward.sock")
    );
}

#[test]
fn api_limits_replace_the_defaults_key_by_key() {
    let c = ok("[ward.api]\nheader_timeout = \"1.5s\"\nmax_connections_per_user = 8\n");
    assert_eq!(c.ward.api.header_timeout, Duration::from_millis(1500));
    assert_eq!(c.ward.api.idle_timeout, secs(30));
    assert_eq!(c.ward.api.max_connections_per_user, 8);
    let c = ok("[ward]\napi = { idle_timeout = \"2m\" }\n");
    assert_eq!(c.ward.api.idle_timeout, secs(120));
    assert_eq!(c.ward.api.header_timeout, secs(5));
}
