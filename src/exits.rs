//! How a run ended, in the one shape ward shows it everywhere (the
//! status, `waiting_on`, the journal's `exited` events, the instance
//! detail): the *exit object* of docs/api.md, and its words.

use serde::{Deserialize, Serialize};
use ward_core::RunEnd;

/// How the previous run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExit {
    /// `exit`, `signal` or `spawn_failed`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<i32>,
    /// Signal name without `SIG` (`"KILL"`), or its number when unnamed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub signal: Option<String>,
    /// The OS error of a failed spawn.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// A signal that left a core dump (present only then, as `true`).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub core_dumped: bool,
}

impl LastExit {
    pub fn from_end(end: &RunEnd) -> LastExit {
        match end {
            RunEnd::Exited {
                status: ward_core::ExitStatus::Code { code },
            } => LastExit {
                kind: "exit".into(),
                code: Some(*code),
                signal: None,
                error: None,
                core_dumped: false,
            },
            RunEnd::Exited {
                status:
                    ward_core::ExitStatus::Signal {
                        signal,
                        core_dumped,
                    },
            } => LastExit {
                kind: "signal".into(),
                code: None,
                signal: Some(
                    crate::proc::signal_name(*signal)
                        .map(str::to_string)
                        .unwrap_or_else(|| signal.to_string()),
                ),
                error: None,
                core_dumped: *core_dumped,
            },
            RunEnd::SpawnFailed { error } => LastExit {
                kind: "spawn_failed".into(),
                code: None,
                signal: None,
                error: Some(error.clone()),
                core_dumped: false,
            },
        }
    }

    /// The end an `exited` or `spawn_failed` event of the journal records
    /// (also the shape older versions of ward wrote: `{"kind": "code"}`,
    /// signal numbers).
    pub fn from_event(event: &serde_json::Value) -> Option<LastExit> {
        match event["event"].as_str()? {
            "spawn_failed" => Some(LastExit {
                kind: "spawn_failed".into(),
                code: None,
                signal: None,
                error: Some(event["error"].as_str().unwrap_or_default().to_string()),
                core_dumped: false,
            }),
            "exited" => {
                let status = &event["status"];
                match status["kind"].as_str()? {
                    "exit" | "code" => Some(LastExit {
                        kind: "exit".into(),
                        code: Some(i32::try_from(status["code"].as_i64()?).ok()?),
                        signal: None,
                        error: None,
                        core_dumped: false,
                    }),
                    "signal" => Some(LastExit {
                        kind: "signal".into(),
                        code: None,
                        signal: Some(match &status["signal"] {
                            serde_json::Value::Number(n) => {
                                let n = i32::try_from(n.as_i64()?).ok()?;
                                crate::proc::signal_name(n)
                                    .map(str::to_string)
                                    .unwrap_or_else(|| n.to_string())
                            }
                            other => other.as_str()?.to_string(),
                        }),
                        error: None,
                        core_dumped: status["core_dumped"].as_bool().unwrap_or(false),
                    }),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// What the status table says of it: `exit 1`, `SIGKILL`, or a failed
    /// spawn's error (`cannot run pyhton3: No such file or directory`).
    pub fn reason(&self) -> String {
        match &self.error {
            // The words without what only a full report needs: the OS
            // error number, the PATH that was searched.
            Some(error) => {
                let words = error
                    .strip_suffix(')')
                    .and_then(|e| e.rsplit_once(" (os error "))
                    .map_or(error.as_str(), |(words, _)| words);
                match words.split_once("not found in PATH (") {
                    Some((head, _)) => format!("{head}not found in PATH"),
                    None => words.to_string(),
                }
            }
            None => self.short(),
        }
    }

    /// Short words: `exit 1`, `SIGKILL`, `spawn failed`.
    pub fn short(&self) -> String {
        match (self.kind.as_str(), self.code, &self.signal) {
            ("exit", Some(code), _) => format!("exit {code}"),
            ("signal", _, Some(sig)) => format!("SIG{sig}"),
            _ => "spawn failed".into(),
        }
    }
}
