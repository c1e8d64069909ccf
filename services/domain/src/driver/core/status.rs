//! The runtime status file of an active test-driver domain: one header line of key=value
//! words, then the live XML.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::model::{Reason, State};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub reason: Reason,
    pub id: i32,
    pub persistent: bool,
    pub started_at: Option<SystemTime>,
    /// The run's taints (`Snapshot::run_taints`); written only when there are any.
    pub taints: Vec<String>,
    pub live_xml: String,
}

const STATES: &[(State, &str)] = &[
    (State::NoState, "nostate"),
    (State::Running, "running"),
    (State::Blocked, "blocked"),
    (State::Paused, "paused"),
    (State::Shutdown, "shutdown"),
    (State::Shutoff, "shutoff"),
    (State::Crashed, "crashed"),
    (State::PmSuspended, "pmsuspended"),
];

const REASONS: &[(Reason, &str)] = &[
    (Reason::Unknown, "unknown"),
    (Reason::RunningBooted, "running-booted"),
    (Reason::RunningUnpaused, "running-unpaused"),
    (Reason::RunningCrashed, "running-crashed"),
    (Reason::PausedUser, "paused-user"),
    (Reason::PausedStartingUp, "paused-starting-up"),
    (Reason::PausedShuttingDown, "paused-shutting-down"),
    (Reason::ShutdownUser, "shutdown-user"),
    (Reason::ShutoffShutdown, "shutoff-shutdown"),
    (Reason::ShutoffDestroyed, "shutoff-destroyed"),
    (Reason::ShutoffCrashed, "shutoff-crashed"),
    (Reason::ShutoffFailed, "shutoff-failed"),
    (Reason::ShutoffDaemon, "shutoff-daemon"),
    (Reason::CrashedPanicked, "crashed-panicked"),
];

fn word<T: PartialEq + Copy>(table: &[(T, &'static str)], value: T) -> &'static str {
    table
        .iter()
        .find(|(v, _)| *v == value)
        .map_or("unknown", |(_, w)| w)
}

fn value<T: Copy>(table: &[(T, &'static str)], text: &str) -> Option<T> {
    table.iter().find(|(_, w)| *w == text).map(|(v, _)| *v)
}

impl Status {
    pub fn encode(&self) -> String {
        let started = self
            .started_at
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis());
        let taints = if self.taints.is_empty() {
            String::new()
        } else {
            format!(" taints={}", self.taints.join(","))
        };
        format!(
            "state={} reason={} id={} persistent={} started_ms={started}{taints}\n{}",
            word(STATES, self.state),
            word(REASONS, self.reason),
            self.id,
            if self.persistent { "yes" } else { "no" },
            self.live_xml
        )
    }

    pub fn decode(text: &str) -> Result<Self, String> {
        let (header, live_xml) = text
            .split_once('\n')
            .ok_or_else(|| "status file has no header line".to_owned())?;
        let mut status = Status {
            state: State::NoState,
            reason: Reason::Unknown,
            id: -1,
            persistent: false,
            started_at: None,
            taints: Vec::new(),
            live_xml: live_xml.to_owned(),
        };
        for pair in header.split_whitespace() {
            let (key, val) = pair
                .split_once('=')
                .ok_or_else(|| format!("bad status word '{pair}'"))?;
            match key {
                "state" => {
                    status.state =
                        value(STATES, val).ok_or_else(|| format!("unknown state '{val}'"))?;
                }
                "reason" => status.reason = value(REASONS, val).unwrap_or(Reason::Unknown),
                "id" => status.id = val.parse().map_err(|_| format!("bad id '{val}'"))?,
                "persistent" => status.persistent = val == "yes",
                "taints" => status.taints = val.split(',').map(str::to_owned).collect(),
                "started_ms" => {
                    let ms: u64 = val.parse().map_err(|_| format!("bad start time '{val}'"))?;
                    status.started_at = (ms > 0).then(|| UNIX_EPOCH + Duration::from_millis(ms));
                }
                _ => {}
            }
        }
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let status = Status {
            state: State::Paused,
            reason: Reason::PausedUser,
            id: 7,
            persistent: true,
            started_at: Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)),
            taints: vec!["custom-monitor".into()],
            live_xml: "<domain type='test'>\n</domain>\n".into(),
        };
        assert_eq!(Status::decode(&status.encode()).unwrap(), status);
    }

    #[test]
    fn refuses_garbage() {
        assert!(Status::decode("no newline").is_err());
        assert!(Status::decode("state=flying\n<domain/>").is_err());
    }
}
