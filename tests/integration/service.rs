//! ward as an installed service, without a service manager: the unit `ward
//! install --dry-run` prints, put where a user's units go; `ward
//! service-run` as that unit runs it, telling a notification socket (the
//! test's, standing in for systemd's) how it goes; the CLI finding it from
//! any folder; `ward uninstall`. The real systemd runs these in the booted
//! container of `.ci/systemd`.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

/// A user's home with its XDG folders, and a config of one program.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::Builder::new()
            .prefix("ward-it-svc-")
            .tempdir()
            .unwrap();
        for sub in ["home", "config", "state", "run", "app", "elsewhere"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let home = Home { dir };
        home.write_config("api", &["--forever"]);
        home
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    fn config(&self) -> PathBuf {
        self.path("app/ward.toml")
    }

    fn write_config(&self, program: &str, args: &[&str]) {
        let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
        let text = format!(
            "[program.{program}]\ncommand = [{:?}, {}]\n",
            TESTEE,
            args.join(", ")
        );
        std::fs::write(self.config(), text).unwrap();
    }

    /// `ward ARGS` in `folder` of this home, as its user.
    fn command(&self, folder: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(WARD);
        cmd.args(args)
            .current_dir(self.path(folder))
            .env_remove("WARD_CONFIG")
            .env_remove("WARD_SOCKET")
            .env_remove("WARD_SERVICE")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .env("NO_COLOR", "1")
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("XDG_RUNTIME_DIR", self.path("run"));
        cmd
    }

    fn ward(&self, folder: &str, args: &[&str]) -> std::process::Output {
        run_bounded(self.command(folder, args))
    }

    /// Puts the user unit `ward install --user --name NAME --dry-run`
    /// prints where a user's units go, as `ward install` would.
    fn install_unit(&self, name: &str) -> PathBuf {
        let config = self.config().display().to_string();
        let out = self.ward(
            "app",
            &[
                "--config",
                &config,
                "install",
                "--user",
                "--name",
                name,
                "--dry-run",
            ],
        );
        assert!(out.status.success(), "{out:?}");
        let unit = String::from_utf8(out.stdout).unwrap();
        let dir = self.path("config/systemd/user");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.service"));
        std::fs::write(&path, unit).unwrap();
        path
    }
}

/// Datagrams the service sends, collected until one starting with `want`
/// is among them.
fn wait_message(socket: &UnixDatagram, seen: &mut Vec<String>, want: &str) {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 4096];
    while !seen.iter().any(|m| m.starts_with(want)) {
        assert!(
            Instant::now() < deadline,
            "no {want:?} within {WAIT:?}; got {seen:?}"
        );
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
}

fn exit_within(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("service-run did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn dev_ino(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).unwrap();
    format!("{}:{}", meta.dev(), meta.ino())
}

#[test]
fn service_run_tells_the_manager_and_the_cli_finds_it_from_any_folder() {
    let home = Home::new();
    let unit = home.install_unit("t");
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(text.contains("Type=notify"), "{text}");
    assert!(text.contains("X-Ward-Config="), "{text}");

    let notify_path = home.path("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let err_path = home.path("service.err");
    let err = std::fs::File::create(&err_path).unwrap();
    let config = home.config().display().to_string();
    let mut cmd = home.command(
        "/",
        &["service-run", "--name", "t", "--config", &config, "--user"],
    );
    cmd.current_dir("/")
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "400000")
        // stderr is "the journal": its lines carry priorities.
        .env("JOURNAL_STREAM", dev_ino(&err_path))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    let mut service = KillOnDrop(cmd.spawn().unwrap());
    let mut seen = Vec::new();
    wait_message(&notify, &mut seen, "READY=1");
    wait_message(&notify, &mut seen, "STATUS=1/1 running");
    // The watchdog is pinged at half its interval, by the driver loop.
    seen.retain(|m| m != "WATCHDOG=1");
    wait_message(&notify, &mut seen, "WATCHDOG=1");

    // From a folder without a ward.toml: the only installed service.
    let out = home.ward("elsewhere", &["status", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status[0]["name"], "api");
    assert_eq!(status[0]["state"], "running");
    // `check` (like `up` and `install`) never takes it unasked.
    let out = home.ward("elsewhere", &["check"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ward.toml in"));
    // Its files are in the service's places, not beside the config.
    assert!(home.path("run/ward/t/ward.sock").exists());
    assert!(home.path("state/ward/t/state.json").exists());
    assert!(home.path("state/log/ward/t/api.0.log").exists());
    assert!(!home.path("app/.ward").exists());

    // What `systemctl reload` runs: the unit's ExecReload.
    home.write_config("api", &["--echo", "v2", "--forever"]);
    let out = home.ward("elsewhere", &["--service", "t", "reload"]);
    assert!(out.status.success(), "{out:?}");
    wait_message(&notify, &mut seen, "RELOADING=1");
    assert!(
        seen.iter()
            .any(|m| m.starts_with("RELOADING=1\nMONOTONIC_USEC=")),
        "{seen:?}"
    );

    signal(service.0.id(), "TERM");
    wait_message(&notify, &mut seen, "STOPPING=1");
    let status = exit_within(&mut service.0, WAIT);
    assert!(status.success(), "{status}");
    let said = std::fs::read_to_string(&err_path).unwrap();
    assert!(said.contains("<6>api:0 started (pid "), "{said}");
    assert!(said.contains("<5>reloaded: restarted api"), "{said}");
    assert!(said.contains("<6>api:0 stopped"), "{said}");

    // Not running: the CLI says so, and how to start the service.
    let out = home.ward("elsewhere", &["status"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("the ward service \"t\" is not running")
            && said.contains("`systemctl --user start t`"),
        "{said}"
    );

    let out = home.ward("elsewhere", &["uninstall"]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("removed the ward service \"t\""), "{said}");
    assert!(said.contains("its logs are kept in"), "{said}");
    assert!(said.contains("its config is yours and stays"), "{said}");
    assert!(!unit.exists());
    assert!(!home.path("state/ward/t").exists());
    assert!(home.path("state/log/ward/t/api.0.log").exists());
    assert!(home.config().exists());
}

#[test]
fn several_services_are_told_apart_by_name() {
    let home = Home::new();
    home.install_unit("one");
    home.install_unit("two");
    let out = home.ward("elsewhere", &["status"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("several ward services are installed (one (user), two (user))"),
        "{said}"
    );
    assert!(said.contains("--service NAME"), "{said}");
    // Named: its socket, in its runtime folder (nothing runs there).
    let mut cmd = home.command("elsewhere", &["status"]);
    cmd.env("WARD_SERVICE", "two");
    let out = run_bounded(cmd);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("run/ward/two/ward.sock"), "{said}");
    let out = home.ward("elsewhere", &["--service", "three", "status"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("no ward service \"three\" is installed"),
        "{said}"
    );
    let out = home.ward("elsewhere", &["uninstall"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // A ward.toml in the folder still comes first.
    let out = home.ward("app", &["check"]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn install_checks_the_config_and_the_command_before_writing_anything() {
    let home = Home::new();
    std::fs::write(home.config(), "[program.api]\ncommand = []\n").unwrap();
    let config = home.config().display().to_string();
    let out = home.ward(
        "app",
        &["--config", &config, "install", "--user", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("ward.toml:2:"), "{said}");
    assert!(said.contains("nothing was installed"), "{said}");
    // A command that cannot run, for the one-program wrapper.
    let out = home.ward(
        "app",
        &[
            "install",
            "--user",
            "--name",
            "x",
            "--dry-run",
            "--",
            "no-such-program-here",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("no-such-program-here"), "{said}");
    // A bad name, and a config beside a command.
    let out = home.ward("app", &["install", "--user", "--name", "a b", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = home.ward(
        "app",
        &[
            "--config",
            &config,
            "install",
            "--user",
            "--dry-run",
            "--",
            "/bin/true",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!home.path("config/systemd").exists());
    assert!(!home.path("config/ward").exists());
    // The wrapper's config and unit, as they would be written.
    let out = home.ward(
        "app",
        &[
            "install",
            "--user",
            "--name",
            "app",
            "--dry-run",
            "--restart",
            "on-failure",
            "--env",
            "PORT=8080",
            "--",
            TESTEE,
            "--forever",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("[program.app]"), "{said}");
    assert!(said.contains("env = { PORT = \"8080\" }"), "{said}");
    assert!(said.contains("X-Ward-Generated=yes"), "{said}");
    assert!(
        !home.path("config/ward").exists(),
        "a dry run writes nothing"
    );
}

#[test]
fn without_a_service_manager_install_says_what_to_do_instead() {
    let home = Home::new();
    let config = home.config().display().to_string();
    // No user manager answers in this home's runtime folder.
    let out = home.ward("app", &["--config", &config, "install", "--user"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("no systemd user manager answers"), "{said}");
    assert!(
        said.contains("`ward up --config FILE` its entrypoint"),
        "{said}"
    );
    assert!(!home.path("config/systemd").exists(), "nothing was written");
    // The one-program wrapper's config, written first, goes again.
    let out = home.ward(
        "app",
        &[
            "install",
            "--user",
            "--name",
            "w",
            "--",
            TESTEE,
            "--forever",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        !home.path("config/ward/w.toml").exists(),
        "the config it wrote was left behind"
    );
}

#[test]
fn the_unit_ward_writes_passes_systemds_own_linter() {
    let home = Home::new();
    // Stop timeouts and a path with a space and a percent sign.
    let dir = home.path("my app 100%");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("ward.toml");
    std::fs::write(
        &config,
        format!(
            "[program.db]\ncommand = [{TESTEE:?}]\nstop_timeout = \"40s\"\n\
             [program.api]\ncommand = [{TESTEE:?}]\nstop_timeout = \"20s\"\ndepends_on = [\"db\"]\n"
        ),
    )
    .unwrap();
    for scope in ["--system", "--user"] {
        let out = home.ward(
            "app",
            &[
                "--config",
                &config.display().to_string(),
                "install",
                scope,
                "--name",
                "lint",
                "--dry-run",
            ],
        );
        assert!(out.status.success(), "{out:?}");
        let unit = String::from_utf8(out.stdout).unwrap();
        // db's 40s, then api's 20s, then 15s to spare.
        assert!(unit.contains("TimeoutStopSec=75s"), "{unit}");
        assert!(unit.contains("ward.toml"), "{unit}");
        let path = home.path("lint.service");
        std::fs::write(&path, &unit).unwrap();
        let lint = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&path)
            .output()
            .expect("systemd-analyze runs (.ci/run installs systemd)");
        if !Path::new("/run/systemd/system").exists() {
            let _ = std::fs::remove_file("/run/systemd/systemd-units-load");
        }
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&lint.stdout),
            String::from_utf8_lossy(&lint.stderr)
        );
        assert!(
            lint.status.success() && said.is_empty(),
            "{scope}: {said}\n{unit}"
        );
    }
}

#[test]
fn a_link_planted_where_the_wrappers_config_goes_is_not_written_through() {
    let home = Home::new();
    let victim = home.path("home/victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let dir = home.path("config/ward");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("app.toml")).unwrap();
    let out = home.ward(
        "app",
        &[
            "install",
            "--user",
            "--name",
            "app",
            "--",
            TESTEE,
            "--forever",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("app.toml is in the way"), "{said}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    // Nor is it removed or followed by an install that then fails: the
    // link is as it was.
    assert!(dir.join("app.toml").is_symlink());
}

#[test]
fn a_system_service_needs_root_and_says_so() {
    if !is_root() {
        // The test runs ward as another user, which takes root.
        return;
    }
    let home = Home::new();
    // nobody may read the config (and reach it).
    use std::os::unix::fs::PermissionsExt;
    for dir in [home.dir.path().to_path_buf(), home.path("app")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(home.config(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(WARD)
        .arg("--config")
        .arg(home.config())
        .args(["install", "--system"])
        .current_dir("/")
        .env_remove("WARD_CONFIG")
        .env_remove("WARD_SOCKET")
        .env("HOME", home.path("home"));
    let out = run_bounded(cmd);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(
            "installing a system service needs root (sudo), or install it for your user (--user)"
        ),
        "{said}"
    );
}

#[test]
fn a_system_service_refuses_a_config_others_could_change() {
    if !is_root() {
        // Only root installs system services.
        return;
    }
    let home = Home::new();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(home.path("app"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let config = home.config().display().to_string();
    let out = home.ward(
        "app",
        &["--config", &config, "install", "--system", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("can be written by its group or by others (mode 777)"),
        "{said}"
    );
    assert!(said.contains("could act as root"), "{said}");
    // Closed again, it is accepted.
    std::fs::set_permissions(home.path("app"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = home.ward(
        "app",
        &["--config", &config, "install", "--system", "--dry-run"],
    );
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn uninstall_leaves_foreign_and_edited_units_alone_unless_forced() {
    let home = Home::new();
    let units = home.path("config/systemd/user");
    std::fs::create_dir_all(&units).unwrap();
    let foreign = units.join("other.service");
    std::fs::write(&foreign, "[Service]\nExecStart=/bin/true\n").unwrap();
    let out = home.ward("elsewhere", &["uninstall", "--name", "other"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(foreign.exists());
    let out = home.ward("elsewhere", &["uninstall", "--name", "other", "--force"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!foreign.exists(), "--force removes it");

    let unit = home.install_unit("mine");
    let text = std::fs::read_to_string(&unit).unwrap();
    std::fs::write(&unit, text.replace("RestartSec=1s", "RestartSec=9s")).unwrap();
    let out = home.ward("elsewhere", &["uninstall", "--name", "mine"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("was edited by hand"), "{said}");
    assert!(unit.exists());
    let out = home.ward("elsewhere", &["uninstall", "--name", "mine", "--force"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!unit.exists());
}
