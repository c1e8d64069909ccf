//! The run-dir record that lets a restarted service find its QEMU processes again.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ProcessError;

/// What is persisted to find a QEMU process again after the service restarts: the pid alone
/// could name an unrelated process by then, so the start time and the domain name (checked
/// against the command line) come with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub pid: i32,
    /// Field 22 of `/proc/PID/stat`: clock ticks after boot at which the process started.
    pub start_ticks: u64,
    pub domain_name: String,
    pub qmp_socket: PathBuf,
}

impl ProcessRecord {
    /// Writes the record as JSON, atomically (a crash leaves the old or the new record, never
    /// half of one) but without fsync: it is run-dir state, which only has to outlive the
    /// service, not the host (see `virtplane_common::store`). Blocking: async callers use
    /// `spawn_blocking`.
    pub fn save(&self, path: &Path) -> Result<(), ProcessError> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| ProcessError::BadRecord(format!("{}: {e}", path.display())))?;
        virtplane_common::store::write_runtime(path, &json)
            .map_err(|e| ProcessError::io(format!("writing {}", path.display()), e))
    }

    /// Reads a record written by [`ProcessRecord::save`].
    pub fn load(path: &Path) -> Result<ProcessRecord, ProcessError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ProcessError::io(format!("reading {}", path.display()), e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ProcessError::BadRecord(format!("{}: {e}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("process.json");
        let rec = ProcessRecord {
            pid: 4242,
            start_ticks: 987_654,
            domain_name: "web \"1\"".into(),
            qmp_socket: dir.path().join("qmp.sock"),
        };
        rec.save(&path).unwrap();
        assert_eq!(ProcessRecord::load(&path).unwrap(), rec);
        std::fs::write(&path, b"{\"pid\": 1}").unwrap();
        assert!(matches!(
            ProcessRecord::load(&path),
            Err(ProcessError::BadRecord(_))
        ));
    }
}
