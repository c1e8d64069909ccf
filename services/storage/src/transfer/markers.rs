//! Which volumes have an unfinished upload, and how far it durably got: one small file per
//! volume under `STATE/uploads/POOL/VOLUME`, holding the offset up to which every byte is on
//! disk (fsynced before the marker moves). The marker is written before the first byte and
//! removed only after the checksum matched, so a volume whose upload was cut off — by the
//! client, the network, or a kill -9 of the service — shows as incomplete (never as a good
//! image) and says where a resumed upload starts. Kept in memory too, for listings.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use virtplane_common::object_files::file_stem;
use virtplane_common::store;

use crate::error::{Result, StorageError};

/// The unfinished uploads of one service.
#[derive(Debug)]
pub struct UploadMarkers {
    dir: PathBuf,
    /// (pool, volume) → committed offset.
    known: Mutex<HashMap<(String, String), u64>>,
}

impl UploadMarkers {
    /// Reads the markers below `state_dir/uploads`.
    pub fn open(state_dir: &Path) -> Result<Self> {
        let dir = state_dir.join("uploads");
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::storage("create", &dir, e))?;
        let mut known = HashMap::new();
        let pools = std::fs::read_dir(&dir).map_err(|e| StorageError::storage("read", &dir, e))?;
        for pool in pools.flatten() {
            if !pool.path().is_dir() {
                continue;
            }
            let entries = std::fs::read_dir(pool.path())
                .map_err(|e| StorageError::storage("read", &pool.path(), e))?;
            for entry in entries.flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                // "POOL\nVOLUME\nOFFSET\n": names are kept inside, the file names are stems.
                let mut lines = text.lines();
                if let (Some(pool), Some(volume), Some(Ok(offset))) = (
                    lines.next(),
                    lines.next(),
                    lines.next().map(str::parse::<u64>),
                ) {
                    known.insert((pool.to_owned(), volume.to_owned()), offset);
                } else if !entry.file_name().to_string_lossy().starts_with('.') {
                    tracing::warn!(file = %entry.path().display(), "unreadable upload marker; ignored");
                }
            }
        }
        Ok(Self {
            dir,
            known: Mutex::new(known),
        })
    }

    fn path(&self, pool: &str, volume: &str) -> PathBuf {
        self.dir.join(file_stem(pool)).join(file_stem(volume))
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), u64>> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The offset an unfinished upload of the volume got to durably, if it has one.
    pub fn get(&self, pool: &str, volume: &str) -> Option<u64> {
        self.known()
            .get(&(pool.to_owned(), volume.to_owned()))
            .copied()
    }

    /// Records (durably) that every byte before `offset` is on disk, and that the upload is
    /// not finished.
    pub fn set(&self, pool: &str, volume: &str, offset: u64) -> Result<()> {
        let path = self.path(pool, volume);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| StorageError::storage("create", parent, e))?;
        }
        store::write_atomic(&path, format!("{pool}\n{volume}\n{offset}\n").as_bytes())
            .map_err(|e| StorageError::storage("write", &path, e))?;
        self.known()
            .insert((pool.to_owned(), volume.to_owned()), offset);
        Ok(())
    }

    /// The upload finished (or the volume is gone): the marker goes.
    pub fn clear(&self, pool: &str, volume: &str) -> Result<()> {
        let path = self.path(pool, volume);
        store::remove_durable(&path).map_err(|e| StorageError::storage("remove", &path, e))?;
        self.known().remove(&(pool.to_owned(), volume.to_owned()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_survive_a_reopen_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let markers = UploadMarkers::open(dir.path()).unwrap();
        assert_eq!(markers.get("default", "a.img"), None);
        markers.set("default", "a.img", 4096).unwrap();
        markers.set("default", ".hidden", 1).unwrap();
        let reopened = UploadMarkers::open(dir.path()).unwrap();
        assert_eq!(reopened.get("default", "a.img"), Some(4096));
        assert_eq!(reopened.get("default", ".hidden"), Some(1));
        reopened.clear("default", "a.img").unwrap();
        assert_eq!(
            UploadMarkers::open(dir.path())
                .unwrap()
                .get("default", "a.img"),
            None
        );
    }
}
