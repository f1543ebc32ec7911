//! `ward init`: a commented starter `ward.toml`, never over an existing
//! file.

use std::io::Write;

use super::{Failure, Outcome};

/// The starter config: one program that runs as it is, and every other
/// key commented out with its default. It must pass `ward check` (a test
/// makes sure).
pub const STARTER: &str = r#"# ward.toml: the programs ward keeps running. Check it with `ward check`,
# run it with `ward up` (Ctrl-C stops everything) or `ward up --detach`.
# Every key and its default: docs/config.md.

# [ward]
# state_dir = ".ward"            # socket, state, events, logs (beside this file)
# socket_mode = "0600"           # who may use the control socket

[program.hello]
# What to run: an argv array (no shell), or a string with `shell = true`.
command = ["sh", "-c", "while true; do echo \"hello from $WARD_PROGRAM:$WARD_INSTANCE\"; sleep 5; done"]
# cwd = "."                      # relative to this file
# env = { PORT = "8080" }        # added to ward's own environment
# env_file = ".env"
# user = "www-data"              # when ward runs as root
# instances = 1                  # hello:0, hello:1, ... ($WARD_INSTANCE)
# autostart = true
# restart = "always"             # "on-failure", "never" (a one-shot step)
# success_exit_codes = [0]
# min_uptime = "1s"              # a run that ends sooner is a failed start
# backoff = { initial = "200ms", max = "30s", factor = 2.0, jitter = 0.1, reset_after = "30s" }
# start_limit = { burst = 5, interval = "60s", cooldown = "60s" }   # then `fatal`
# stop_signal = "TERM"
# stop_timeout = "10s"           # then every process of the tree is killed
# stop_mode = "tree"             # "main": signal the main process only
# logs = { max_size = "50MB", keep = 5 }

# A one-shot step, and a program that waits for it:
#
# [program.migrate]
# command = ["./migrate.sh"]
# restart = "on-failure"
#
# [program.web]
# command = ["./server", "--port", "8080"]
# depends_on = { migrate = "completed" }
"#;

/// Files ward writes for a person to read and edit (a config, manual
/// pages): `rw-r--r--`.
pub(crate) const SHARED_FILE: u32 = 0o644;

/// Writes the starter to `path`, created new relative to its folder's
/// descriptor: an existing file, or a link under that name, is left alone.
pub fn init(path: &std::path::Path) -> Outcome {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Failure::new(format!("{} names no file", path.display())))?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let dir = crate::files::Dir::open_named(folder)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", path.display())))?;
    let mut file = match dir.create_exclusive(name, SHARED_FILE) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Failure::new(format!(
                "{} already exists; ward init writes a new file only (pass --config FILE for \
                 another name)",
                path.display()
            )))
        }
        Err(e) => {
            return Err(Failure::new(format!(
                "cannot create {}: {e}",
                path.display()
            )))
        }
    };
    if let Err(e) = file.write_all(STARTER.as_bytes()) {
        drop(file);
        let _ = dir.remove(name);
        return Err(Failure::new(format!(
            "cannot write {}: {e}",
            path.display()
        )));
    }
    println!(
        "wrote {}: one program, `hello`; edit it, then `ward check` and `ward up`",
        path.display()
    );
    Ok(())
}
