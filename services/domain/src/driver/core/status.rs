//! The runtime status file of an active domain: one header line of key=value words, padded
//! with spaces to [`HEADER_BLOCK`] bytes, then the live XML.
//!
//! The padding lets a change of state alone (suspend, resume: the live XML is the same)
//! rewrite the header in place with one small `pwrite` instead of writing a new file and
//! renaming it over the old one, which on ext4 costs a new inode and a journalled rename on
//! every pause (see `Store::save_status_header`).

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

/// Bytes the header line takes, newline included (more, in multiples of it, should a header
/// ever be longer): a single write this small within the file's first page is never torn by
/// the death of the process.
pub const HEADER_BLOCK: usize = 256;

impl Status {
    /// The whole file: [`Status::encode_header`] and the live XML.
    pub fn encode(&self) -> String {
        let mut text = self.encode_header();
        text.push_str(&self.live_xml);
        text
    }

    /// The header line, padded to a multiple of [`HEADER_BLOCK`] bytes; `live_xml` is not
    /// looked at, so a state change need not format the definition.
    pub fn encode_header(&self) -> String {
        let started = self
            .started_at
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis());
        let taints = if self.taints.is_empty() {
            String::new()
        } else {
            format!(" taints={}", self.taints.join(","))
        };
        let mut header = format!(
            "state={} reason={} id={} persistent={} started_ms={started}{taints}",
            word(STATES, self.state),
            word(REASONS, self.reason),
            self.id,
            if self.persistent { "yes" } else { "no" },
        );
        let block = (header.len() + 1).div_ceil(HEADER_BLOCK) * HEADER_BLOCK;
        header.extend(std::iter::repeat_n(' ', block - 1 - header.len()));
        header.push('\n');
        header
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
    fn headers_fill_whole_blocks() {
        let mut status = Status {
            state: State::Running,
            reason: Reason::RunningBooted,
            id: 1,
            persistent: false,
            started_at: None,
            taints: vec![],
            live_xml: "<domain/>".into(),
        };
        let header = status.encode_header();
        assert_eq!(header.len(), HEADER_BLOCK);
        assert!(header.ends_with(" \n") && header.starts_with("state=running "));
        assert!(status.encode().starts_with(&header));
        // A header longer than one block takes two, and still reads back.
        status.taints = vec!["x".repeat(300)];
        assert_eq!(status.encode_header().len(), 2 * HEADER_BLOCK);
        assert_eq!(Status::decode(&status.encode()).unwrap(), status);
    }

    #[test]
    fn reads_unpadded_headers_of_earlier_versions() {
        let status = Status::decode(
            "state=paused reason=paused-user id=2 persistent=yes started_ms=0\n<domain/>",
        )
        .unwrap();
        assert_eq!(
            (status.state, status.id, status.live_xml.as_str()),
            (State::Paused, 2, "<domain/>")
        );
    }

    #[test]
    fn refuses_garbage() {
        assert!(Status::decode("no newline").is_err());
        assert!(Status::decode("state=flying\n<domain/>").is_err());
    }
}
