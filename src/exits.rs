//! How a run ended, in the one shape ward shows it everywhere (the
//! status, `waiting_on`, the journal's `exited` events, the instance
//! detail): the *exit object* of docs/api.md, and its words.

use serde::{Deserialize, Serialize};
use ward_core::RunEnd;

/// How the previous run ended: `{"kind": "exit", "code": 1}`,
/// `{"kind": "signal", "signal": "KILL"}` (with `"core_dumped": true` when
/// it dumped core), `{"kind": "spawn_failed", "error": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LastExit {
    /// It exited with a code.
    Exit { code: i32 },
    /// A signal ended it: its name without `SIG` (`"KILL"`), or its number
    /// when it has no name.
    Signal {
        signal: String,
        #[serde(skip_serializing_if = "std::ops::Not::not", default)]
        core_dumped: bool,
    },
    /// It could not be started: the OS error.
    SpawnFailed { error: String },
}

impl LastExit {
    pub fn from_end(end: &RunEnd) -> LastExit {
        match end {
            RunEnd::Exited {
                status: ward_core::ExitStatus::Code { code },
            } => LastExit::Exit { code: *code },
            RunEnd::Exited {
                status:
                    ward_core::ExitStatus::Signal {
                        signal,
                        core_dumped,
                    },
            } => LastExit::Signal {
                signal: signal_word(*signal),
                core_dumped: *core_dumped,
            },
            RunEnd::SpawnFailed { error } => LastExit::SpawnFailed {
                error: error.clone(),
            },
        }
    }

    /// The end an `exited` or `spawn_failed` event of the journal records
    /// (also the shape older versions of ward wrote: `{"kind": "code"}`,
    /// signal numbers).
    pub fn from_event(event: &serde_json::Value) -> Option<LastExit> {
        match event["event"].as_str()? {
            "spawn_failed" => Some(LastExit::SpawnFailed {
                error: event["error"].as_str().unwrap_or_default().to_string(),
            }),
            "exited" => {
                let status = &event["status"];
                match status["kind"].as_str()? {
                    "exit" | "code" => Some(LastExit::Exit {
                        code: i32::try_from(status["code"].as_i64()?).ok()?,
                    }),
                    "signal" => Some(LastExit::Signal {
                        signal: match &status["signal"] {
                            serde_json::Value::Number(n) => {
                                signal_word(i32::try_from(n.as_i64()?).ok()?)
                            }
                            other => other.as_str()?.to_string(),
                        },
                        core_dumped: status["core_dumped"].as_bool().unwrap_or(false),
                    }),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The OS error of a failed spawn.
    pub fn spawn_error(&self) -> Option<&str> {
        match self {
            LastExit::SpawnFailed { error } => Some(error),
            _ => None,
        }
    }

    /// What the status table says of it: `exit 1`, `SIGKILL`, or a failed
    /// spawn's error (`cannot run pyhton3: No such file or directory`).
    pub fn reason(&self) -> String {
        match self {
            // The words without what only a full report needs: the OS
            // error number, the PATH that was searched.
            LastExit::SpawnFailed { error } => {
                let words = error
                    .strip_suffix(')')
                    .and_then(|e| e.rsplit_once(" (os error "))
                    .map_or(error.as_str(), |(words, _)| words);
                match words.split_once("not found in PATH (") {
                    Some((head, _)) => format!("{head}not found in PATH"),
                    None => words.to_string(),
                }
            }
            _ => self.short(),
        }
    }

    /// Short words: `exit 1`, `SIGKILL`, `spawn failed`.
    pub fn short(&self) -> String {
        match self {
            LastExit::Exit { code } => format!("exit {code}"),
            LastExit::Signal { signal, .. } => format!("SIG{signal}"),
            LastExit::SpawnFailed { .. } => "spawn failed".into(),
        }
    }
}

/// A signal's name without `SIG`, or its number when it has none.
fn signal_word(number: i32) -> String {
    crate::proc::signal_name(number)
        .map(str::to_string)
        .unwrap_or_else(|| number.to_string())
}
