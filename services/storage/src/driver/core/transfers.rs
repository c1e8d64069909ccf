//! Uploads and downloads of volume data (libvirt's virStorageVolUpload / Download), over the
//! backend's data file and `crate::transfer`. A volume has one upload at a time and is not
//! deleted, resized or wiped under it; the pool's job lock is not held for the length of a
//! transfer (it could take minutes), only while the result is published.
//!
//! An upload first marks the volume incomplete (durably), then streams; every 64 MiB the
//! data is synced and the marker moves on; only a matching checksum at the end clears it.
//! So a cut-off upload — client gone, network down, service killed — leaves a volume that
//! says it is incomplete and where to resume, never one that looks whole.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use super::Core;
use crate::error::{Result, StorageError};
use crate::model::{Lifecycle, PoolRef, VolRef, VolSummary};
use crate::transfer::download::{Outgoing, read_pieces};
use crate::transfer::upload::write_pieces;
use crate::transfer::{PIPELINE_DEPTH, Piece};

/// What an upload stream carries after its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadItem {
    Piece(Piece),
    /// The last message: the SHA-256 the client computed over the range.
    Finish {
        sha256: Vec<u8>,
    },
}

/// Volumes with a transfer that excludes changes (uploads), by (pool, volume).
#[derive(Debug, Default)]
pub struct Busy {
    set: Mutex<HashSet<(String, String)>>,
}

/// Held while a volume is being uploaded; releases it when dropped.
pub struct BusyGuard<'a> {
    busy: &'a Busy,
    key: (String, String),
}

impl Busy {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<(String, String)>> {
        self.set
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn claim(&self, pool: &str, volume: &str) -> Result<BusyGuard<'_>> {
        let key = (pool.to_owned(), volume.to_owned());
        if !self.lock().insert(key.clone()) {
            return Err(StorageError::InUse(format!(
                "volume '{volume}' in pool '{pool}' has an upload in progress"
            )));
        }
        Ok(BusyGuard { busy: self, key })
    }

    /// Refuses a change of a volume that has an upload in progress.
    pub fn check(&self, pool: &str, volume: &str) -> Result<()> {
        if self.lock().contains(&(pool.to_owned(), volume.to_owned())) {
            return Err(StorageError::InUse(format!(
                "volume '{volume}' in pool '{pool}' has an upload in progress"
            )));
        }
        Ok(())
    }
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.busy.lock().remove(&self.key);
    }
}

impl Core {
    /// A summary with the volume's upload state.
    pub fn with_upload_state(&self, mut summary: VolSummary) -> VolSummary {
        if let Some(offset) = self.markers.get(&summary.pool, &summary.name) {
            summary.upload_incomplete = true;
            summary.upload_offset = offset;
        }
        summary
    }

    /// Writes `items` into `volume` from `offset` (at most `length` bytes when given) and
    /// checks the client's checksum. Returns the bytes written and the volume after.
    pub async fn upload(
        &self,
        volume: &VolRef,
        offset: u64,
        length: Option<u64>,
        items: impl Stream<Item = Result<UploadItem>> + Send + Unpin,
    ) -> Result<(u64, VolSummary)> {
        let (pool, found) = self.find_volume(volume)?;
        let (pool_name, name) = (pool.name().to_owned(), found.def.name.clone());
        let _busy = self.busy.claim(&pool_name, &name)?;
        // Never under a domain that uses the volume (its lease refuses this).
        let _exclusive = self.exclusive(&pool_name, &name, "uploaded into")?;
        let limit = match length {
            Some(length) => Some(offset.checked_add(length).ok_or_else(|| {
                StorageError::InvalidArg(format!("offset {offset} + length {length} overflows"))
            })?),
            None => None,
        };
        if found.format() == "raw" {
            let end = limit.unwrap_or(offset);
            if offset > found.def.capacity || end > found.def.capacity {
                return Err(StorageError::InvalidArg(format!(
                    "upload range {offset}..{end} lies past the end of raw volume '{name}' \
                     ({} bytes): resize it first",
                    found.def.capacity
                )));
            }
        }
        let file = {
            let backend = self.backend.clone();
            let (pool_def, found) = (pool.def.clone(), found.clone());
            tokio::task::spawn_blocking(move || backend.open_data(&pool_def, &found, true))
                .await
                .map_err(|e| StorageError::Internal(format!("file task failed: {e}")))??
        };
        self.markers.set(&pool_name, &name, offset)?;
        let (tx, mut rx) = mpsc::channel::<Piece>(PIPELINE_DEPTH);
        let markers = self.markers.clone();
        let (marker_pool, marker_name) = (pool_name.clone(), name.clone());
        let writer = tokio::task::spawn_blocking(move || {
            write_pieces(&file, offset, &mut rx, &mut |committed| {
                markers.set(&marker_pool, &marker_name, committed)
            })
        });
        let received = forward(items, tx, offset, limit).await;
        let written = writer
            .await
            .map_err(|e| StorageError::Internal(format!("upload task failed: {e}")))?;
        let (written, expected) = match (written, received) {
            (Ok(written), Ok(expected)) => (written, expected),
            (Err(error), _) | (Ok(_), Err(error)) => {
                // Some bytes may have landed: the volume's figures show what is there now.
                if let Err(refresh) = self.refreshed_volume(&pool_name, &name).await {
                    tracing::warn!(volume = %name, %refresh, "cannot re-read a volume after a failed upload");
                }
                return Err(error);
            }
        };
        if written.sha256.as_slice() != expected.as_slice() {
            // The bytes on disk are not what the client meant: resume from the start.
            self.markers.set(&pool_name, &name, offset)?;
            return Err(StorageError::InvalidArg(format!(
                "upload into volume '{name}' failed its checksum: the service received bytes \
                 hashing to {}, the client sent {}; the volume stays marked incomplete — \
                 upload again from offset {offset}",
                hex::encode(written.sha256),
                hex::encode(&expected)
            )));
        }
        self.markers.clear(&pool_name, &name)?;
        let summary = self.refreshed_volume(&pool_name, &name).await?;
        Ok((written.end - offset, summary))
    }

    /// Re-reads a volume after its data changed and publishes it, with a `changed` event.
    async fn refreshed_volume(&self, pool: &str, name: &str) -> Result<VolSummary> {
        let locked = self.begin(&PoolRef::Name(pool.to_owned())).await?;
        let old = &locked.old;
        let current =
            old.volumes.get(name).cloned().ok_or_else(|| {
                StorageError::VolNotFound(format!("name '{name}' in pool '{pool}'"))
            })?;
        let after = self.backend.inspect_volume(&old.def, &current).await?;
        let mut next = (**old).clone();
        let summary = after.summary(old.name());
        let mut volumes = (*next.volumes).clone();
        volumes.insert(name.to_owned(), Arc::new(after));
        next.volumes = Arc::new(volumes);
        self.announce(&next, Some(name), Lifecycle::Changed);
        locked.object.publish(next);
        Ok(summary)
    }

    /// Streams `[offset, offset + length)` of `volume` (to its end when `length` is None):
    /// the number of bytes that will follow, and the pieces then the checksum.
    pub async fn download(
        &self,
        volume: &VolRef,
        offset: u64,
        length: Option<u64>,
        sparse: bool,
    ) -> Result<(u64, mpsc::Receiver<Result<Outgoing>>)> {
        let (pool, found) = self.find_volume(volume)?;
        let backend = self.backend.clone();
        let (pool_def, vol) = (pool.def.clone(), found.clone());
        let file = tokio::task::spawn_blocking(move || backend.open_data(&pool_def, &vol, false))
            .await
            .map_err(|e| StorageError::Internal(format!("file task failed: {e}")))??;
        let size = file.size()?;
        if offset > size {
            return Err(StorageError::InvalidArg(format!(
                "download offset {offset} lies past the end of volume '{}' ({size} bytes)",
                found.def.name
            )));
        }
        let end = match length {
            Some(length) => offset.saturating_add(length).min(size),
            None => size,
        };
        let (tx, rx) = mpsc::channel(PIPELINE_DEPTH);
        tokio::task::spawn_blocking(move || {
            if let Err(error) = read_pieces(&file, offset, end, sparse, &tx) {
                let _ = tx.blocking_send(Err(error));
            }
        });
        Ok((end - offset, rx))
    }
}

/// Passes the stream's pieces to the writer, checking order and bounds; returns the
/// client's checksum. Closing `tx` (by returning) ends the writer.
async fn forward(
    mut items: impl Stream<Item = Result<UploadItem>> + Send + Unpin,
    tx: mpsc::Sender<Piece>,
    start: u64,
    limit: Option<u64>,
) -> Result<Vec<u8>> {
    let mut position = start;
    while let Some(item) = items.next().await {
        match item? {
            UploadItem::Piece(piece) => {
                if piece.offset() != position {
                    return Err(StorageError::InvalidArg(format!(
                        "upload chunk at offset {} where {position} was expected: chunks must \
                         follow each other without gaps",
                        piece.offset()
                    )));
                }
                let end = position.saturating_add(piece.len());
                if let Some(limit) = limit
                    && end > limit
                {
                    return Err(StorageError::InvalidArg(format!(
                        "upload chunk ending at {end} goes past the announced end {limit}"
                    )));
                }
                position = end;
                if tx.send(piece).await.is_err() {
                    // The writer stopped: its error is the one to report.
                    return Err(StorageError::Internal("the upload writer stopped".into()));
                }
            }
            UploadItem::Finish { sha256 } => {
                if let Some(limit) = limit
                    && position != limit
                {
                    return Err(StorageError::InvalidArg(format!(
                        "upload ended at {position}, short of the announced end {limit}"
                    )));
                }
                if sha256.len() != 32 {
                    return Err(StorageError::InvalidArg(format!(
                        "the upload's checksum must be a SHA-256 (32 bytes), not {} bytes",
                        sha256.len()
                    )));
                }
                return Ok(sha256);
            }
        }
    }
    Err(StorageError::InvalidArg(format!(
        "the upload stream ended at offset {position} without its checksum: the volume stays \
         marked incomplete; resume from the offset vol-info shows"
    )))
}
