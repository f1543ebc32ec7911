//! `state.json`: what must survive a restart of ward — the user's explicit
//! start/stop of each instance, the next run id, and the processes that are
//! alive (so that a ward that died by SIGKILL is cleaned up after by the
//! next one). Replaced atomically (write a temporary file, then rename).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ward_core::{Desired, InstanceId, RunId};

const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    pub version: u32,
    pub next_run: u64,
    /// `"api:0" → "down"`: only instances the user started or stopped.
    pub desired: BTreeMap<String, Desired>,
    pub live: Vec<LiveRecord>,
}

/// One live run, enough to find its processes without mistaking a
/// recycled pid for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveRecord {
    pub instance: String,
    pub run: u64,
    pub pid: u32,
    pub start_time: u64,
    pub pgid: i32,
    pub cgroup: Option<PathBuf>,
    pub marker: String,
}

impl StateFile {
    /// Reads the state file. A missing file is an empty state; a corrupt
    /// one is set aside (renamed `state.json.corrupt`) and reported, so a
    /// bad file never keeps ward from starting.
    pub fn load(path: &Path) -> (StateFile, Option<String>) {
        let text = match std::fs::read(path) {
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
        match serde_json::from_slice::<StateFile>(&text) {
            Ok(state) if state.version == VERSION => (state, None),
            Ok(state) => (
                StateFile::default(),
                Some(format!(
                    "{} has version {}, this ward reads version {VERSION}; starting fresh",
                    path.display(),
                    state.version
                )),
            ),
            Err(e) => {
                let aside = path.with_extension("json.corrupt");
                let _ = std::fs::rename(path, &aside);
                (
                    StateFile::default(),
                    Some(format!(
                        "{} is corrupt ({e}); moved it to {} and started fresh",
                        path.display(),
                        aside.display()
                    )),
                )
            }
        }
    }

    /// Replaces the file atomically. `durable`: also wait until the new
    /// content and the rename are on disk (for the user's start/stop
    /// choices, which must survive a power cut; the live records change at
    /// every restart and are only a backup of what the sentinel does).
    pub fn save(&self, path: &Path, durable: bool) -> std::io::Result<()> {
        let mut doc = self.clone();
        doc.version = VERSION;
        let bytes = serde_json::to_vec_pretty(&doc).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.write_all(b"\n")?;
            if durable {
                file.sync_data()?;
            }
        }
        std::fs::rename(&tmp, path)?;
        if durable {
            // The rename itself lives in the directory: sync it too.
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
        }
        Ok(())
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

/// The lock that keeps two daemons off one state dir. Held for the life of
/// the daemon (the OS drops it when the process dies, even by SIGKILL).
pub struct StateLock {
    _file: std::fs::File,
}

impl StateLock {
    pub fn acquire(state_dir: &Path) -> Result<StateLock, String> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| format!("cannot create the state dir {}: {e}", state_dir.display()))?;
        let path = state_dir.join("ward.lock");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Err(if holder.is_empty() {
                    format!("another ward is already running on {}", state_dir.display())
                } else {
                    format!(
                        "another ward (pid {holder}) is already running on {}",
                        state_dir.display()
                    )
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()))
            }
        }
        use std::io::{Seek, Write};
        let _ = file.set_len(0);
        let _ = file.seek(std::io::SeekFrom::Start(0));
        let _ = writeln!(file, "{}", std::process::id());
        Ok(StateLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_atomic_replace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut state = StateFile {
            next_run: 42,
            ..Default::default()
        };
        state.desired.insert("api:0".into(), Desired::Down);
        state.save(&path, true).unwrap();
        let (back, note) = StateFile::load(&path);
        assert!(note.is_none());
        assert_eq!(back.next_run(), RunId(42));
        assert_eq!(
            back.desired_map().get(&InstanceId::new("api", 0)),
            Some(&Desired::Down)
        );
        assert!(!path.with_extension("json.tmp").exists());
    }

    #[test]
    fn corrupt_file_is_set_aside_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"{not json").unwrap();
        let (state, note) = StateFile::load(&path);
        assert_eq!(state, StateFile::default());
        assert!(note.unwrap().contains("corrupt"));
        assert!(path.with_extension("json.corrupt").exists());
    }

    #[test]
    fn instance_keys() {
        assert_eq!(parse_instance("web:2"), Some(InstanceId::new("web", 2)));
        assert_eq!(parse_instance("web"), None);
        assert_eq!(parse_instance("web:x"), None);
    }
}
