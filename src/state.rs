//! `state.json`: what must survive a restart of ward — the user's explicit
//! start/stop of each instance, the next run id, and the processes that are
//! alive (so that a ward that died by SIGKILL is cleaned up after by the
//! next one). Replaced atomically (write a temporary file, then rename).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use ward_core::{Desired, InstanceId, RunId};

use crate::files::{Dir, DirPolicy, PRIVATE_DIR, PRIVATE_FILE};

const VERSION: u32 = 1;
const STATE_FILE: &str = "state.json";
pub const LOCK_FILE: &str = "ward.lock";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    pub version: u32,
    pub next_run: u64,
    /// `"api:0" → "down"`: only instances the user started or stopped.
    pub desired: BTreeMap<String, Desired>,
    pub live: Vec<LiveRecord>,
    /// The start of ward that runs on this state dir, written before its
    /// first spawn and cleared at a clean exit: if that ward dies with its
    /// sentinel, the next start sweeps what it left (runs too young to be
    /// in `live` included).
    #[serde(default)]
    pub starts: Vec<StartRecord>,
}

/// One start of ward: its cgroup root and the prefix of its markers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartRecord {
    pub cgroup_root: Option<PathBuf>,
    pub marker_prefix: String,
}

/// One live run, enough to find its processes without mistaking a
/// recycled pid for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveRecord {
    pub instance: String,
    pub run: u64,
    /// Its processes, as `proc` records them (the same keys in the file).
    #[serde(flatten)]
    pub tree: crate::proc::TreeRecord,
}

/// state.json is small (a few hundred bytes an instance); a bigger file
/// is not ward's and is not read whole.
const STATE_MAX: u64 = 64 * 1024 * 1024;

/// Run ids above this are not ones ward made (it counts from 1, one per
/// spawn): a state file claiming one is corrupt. Far below `u64::MAX`, so
/// counting on never wraps or sticks (a stuck counter would give two runs
/// one id, and stale inputs could no longer be told apart).
const MAX_NEXT_RUN: u64 = 1 << 53;

impl StateFile {
    /// Reads `state.json` in the state dir. A missing file is an empty
    /// state; a corrupt one is set aside (renamed `state.json.corrupt`) and
    /// reported, so a bad file never keeps ward from starting.
    pub fn load(dir: &Dir) -> (StateFile, Option<String>) {
        let path = dir.join(STATE_FILE);
        let text = match dir.read(STATE_FILE, STATE_MAX) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return (StateFile::default(), None)
            }
            Err(e) => {
                return (
                    StateFile::default(),
                    Some(format!(
                        "cannot read {}: {e}; starting fresh",
                        path.display()
                    )),
                )
            }
        };
        let why = match serde_json::from_slice::<StateFile>(&text) {
            Ok(state) if state.version != VERSION => {
                return (
                    StateFile::default(),
                    Some(format!(
                        "{} has version {}, this ward reads version {VERSION}; starting fresh",
                        path.display(),
                        state.version
                    )),
                )
            }
            Ok(state) if state.next_run > MAX_NEXT_RUN => {
                format!("next_run {} is beyond any run ward makes", state.next_run)
            }
            Ok(state) => return (state, None),
            Err(e) => e.to_string(),
        };
        let aside = format!("{STATE_FILE}.corrupt");
        let _ = dir.rename(STATE_FILE, &aside);
        (
            StateFile::default(),
            Some(format!(
                "{} is corrupt ({why}); moved it to {} and started fresh",
                path.display(),
                dir.join(&aside).display()
            )),
        )
    }

    /// Replaces the file atomically. `durable`: also wait until the new
    /// content and the rename are on disk (for the user's start/stop
    /// choices, which must survive a power cut; the live records change at
    /// every restart and are only a backup of what the sentinel does).
    pub fn save(&self, dir: &Dir, durable: bool) -> std::io::Result<()> {
        let mut doc = self.clone();
        doc.version = VERSION;
        let mut bytes = serde_json::to_vec_pretty(&doc).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        dir.replace(STATE_FILE, &bytes, PRIVATE_FILE, durable)
    }

    pub fn desired_map(&self) -> BTreeMap<InstanceId, Desired> {
        self.desired
            .iter()
            .filter_map(|(key, desired)| Some((parse_instance(key)?, *desired)))
            .collect()
    }

    pub fn next_run(&self) -> RunId {
        RunId(self.next_run.max(1))
    }
}

/// `"api:0"` → `InstanceId`.
pub fn parse_instance(key: &str) -> Option<InstanceId> {
    let (program, index) = key.rsplit_once(':')?;
    Some(InstanceId::new(program, index.parse().ok()?))
}

/// The lock that keeps two daemons off one state dir, and the state dir
/// itself, opened and checked once. Held for the life of the daemon (the
/// OS drops it when the process dies, even by SIGKILL).
pub struct StateLock {
    dir: Arc<Dir>,
    _file: std::fs::File,
}

impl StateLock {
    /// Opens (creating) the state dir with `mode`, then takes its lock.
    pub fn acquire(state_dir: &Path, mode: u32) -> Result<StateLock, String> {
        let dir = Dir::open(
            state_dir,
            DirPolicy {
                mode,
                ..DirPolicy::private()
            },
        )
        .map_err(|e| format!("cannot use the state dir: {e}"))?;
        let mut file = dir
            .lock_file(LOCK_FILE, PRIVATE_FILE)
            .map_err(|e| e.to_string())?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = dir.read(LOCK_FILE, 64).unwrap_or_default();
                let holder = String::from_utf8_lossy(&holder);
                let holder = holder.trim();
                let who = if holder.is_empty() || holder.parse::<u32>().is_err() {
                    "another ward".to_string()
                } else {
                    format!("another ward (pid {holder})")
                };
                return Err(format!(
                    "{who} is already running on {}; `ward status` talks to it, \
                     `ward down` stops it",
                    state_dir.display()
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!(
                    "cannot lock {}: {e}",
                    dir.join(LOCK_FILE).display()
                ))
            }
        }
        use std::io::{Seek, Write};
        let _ = file.set_len(0);
        let _ = file.seek(std::io::SeekFrom::Start(0));
        let _ = writeln!(file, "{}", std::process::id());
        Ok(StateLock {
            dir: Arc::new(dir),
            _file: file,
        })
    }

    /// The state dir, for every file ward keeps in it.
    pub fn dir(&self) -> Arc<Dir> {
        Arc::clone(&self.dir)
    }
}

/// The state dir's mode: private, except that whoever the config lets use
/// the control socket or read log files kept inside it may pass through it
/// (search permission only: they cannot list it, and its files are 0600).
pub fn state_dir_mode(config: &ward_config::Config) -> u32 {
    let dir = &config.ward.state_dir;
    let mut reach = 0;
    if config.ward.socket.parent() == Some(dir.as_path()) {
        reach |= config.ward.socket_mode;
    }
    for program in config.specs.programs.values() {
        if program.logs.dir.starts_with(dir) {
            reach |= program.logs.access.mode;
        }
    }
    let mut mode = PRIVATE_DIR;
    if reach & 0o070 != 0 {
        mode |= 0o010;
    }
    if reach & 0o007 != 0 {
        mode |= 0o001;
    }
    mode
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_dir(tmp: &tempfile::TempDir) -> Dir {
        Dir::open(tmp.path(), DirPolicy::private()).unwrap()
    }

    #[test]
    fn round_trip_and_atomic_replace() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = state_dir(&tmp);
        let mut state = StateFile {
            next_run: 42,
            ..Default::default()
        };
        state.desired.insert("api:0".into(), Desired::Down);
        state.save(&dir, true).unwrap();
        let (back, note) = StateFile::load(&dir);
        assert!(note.is_none());
        assert_eq!(back.next_run(), RunId(42));
        assert_eq!(
            back.desired_map().get(&InstanceId::new("api", 0)),
            Some(&Desired::Down)
        );
        assert!(!tmp.path().join(".state.json.tmp").exists());
    }

    #[cfg(unix)] // permission bits
    #[test]
    fn the_state_file_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        StateFile::default().save(&state_dir(&tmp), true).unwrap();
        let mode = crate::files::testing::mode_of(&tmp.path().join("state.json"));
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn live_records_keep_their_keys_in_the_file() {
        // As every version of ward wrote them: the tree's keys beside the
        // instance's.
        let text = r#"{"version":1,"next_run":8,"desired":{},"live":[
            {"instance":"api:0","run":7,"pid":4242,"start_time":99,"pgid":4242,
             "cgroup":"/sys/fs/cgroup/ward-1/api.0.r7","marker":"1.2/api.0.r7"}],
            "starts":[]}"#;
        let doc: StateFile = serde_json::from_str(text).unwrap();
        assert_eq!(doc.live.len(), 1);
        let back = serde_json::to_value(&doc.live[0]).unwrap();
        let keys: Vec<&str> = back
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "cgroup",
                "instance",
                "marker",
                "pgid",
                "pid",
                "run",
                "start_time"
            ]
        );
        assert_eq!(back["pid"], 4242);
        assert_eq!(back["marker"], "1.2/api.0.r7");
    }

    #[test]
    fn corrupt_file_is_set_aside_not_fatal() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = state_dir(&tmp);
        let path = tmp.path().join("state.json");
        std::fs::write(&path, b"{not json").unwrap();
        let (state, note) = StateFile::load(&dir);
        assert_eq!(state, StateFile::default());
        assert!(note.unwrap().contains("corrupt"));
        assert!(tmp.path().join("state.json.corrupt").exists());
    }

    #[test]
    fn an_absurd_next_run_is_corrupt() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = state_dir(&tmp);
        let text = format!(
            r#"{{"version":1,"next_run":{},"desired":{{}},"live":[]}}"#,
            u64::MAX
        );
        std::fs::write(tmp.path().join("state.json"), text).unwrap();
        let (state, note) = StateFile::load(&dir);
        assert_eq!(state.next_run(), RunId(1));
        let note = note.unwrap();
        assert!(note.contains("beyond any run"), "{note}");
    }

    // Wine 8 makes a symbolic link a Unix one that its file calls follow.
    #[cfg(unix)]
    #[test]
    fn a_link_as_state_file_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = state_dir(&tmp);
        let target = tmp.path().join("elsewhere");
        std::fs::write(&target, "keep\n").unwrap();
        crate::files::testing::symlink(&target, &tmp.path().join("state.json"));
        let (_, note) = StateFile::load(&dir);
        assert!(note.unwrap().contains("symbolic link"));
        StateFile::default().save(&dir, false).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
    }

    #[test]
    fn the_lock_keeps_a_second_daemon_off() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state");
        let first = StateLock::acquire(&path, PRIVATE_DIR).unwrap();
        let e = StateLock::acquire(&path, PRIVATE_DIR).err().unwrap();
        assert!(e.contains("another ward"), "{e}");
        drop(first);
        StateLock::acquire(&path, PRIVATE_DIR).unwrap();
    }

    #[test]
    fn a_state_dir_that_is_a_file_is_refused_clearly() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state");
        std::fs::write(&path, "").unwrap();
        let e = StateLock::acquire(&path, PRIVATE_DIR).err().unwrap();
        assert!(e.contains("exists and is not a directory"), "{e}");
        assert!(e.contains(&path.display().to_string()), "{e}");
    }

    #[test]
    fn instance_keys() {
        assert_eq!(parse_instance("web:2"), Some(InstanceId::new("web", 2)));
        assert_eq!(parse_instance("web"), None);
        assert_eq!(parse_instance("web:x"), None);
    }
}
