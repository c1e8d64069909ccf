//! The disk side of an upload: pieces arrive in order from the network side; bytes are
//! written, holes punched (or left, past the end), everything hashed as it reads; every
//! [`COMMIT_BYTES`] the data is synced and the caller records how far the upload durably got.

use sha2::{Digest, Sha256};
use tokio::sync::mpsc::Receiver;

use super::{Piece, hash_piece};
use crate::error::{Result, StorageError};
use crate::host::VolumeFile;

/// The size of each write into the page cache: measured in bench/ (storage transfers),
/// writes of 1 MiB cost several times more per byte than writes of 256 KiB on this kind of
/// VM, whose host reclaims free memory.
const WRITE_BYTES: usize = 256 * 1024;

/// How much is written between two durable commits of the upload's progress.
pub const COMMIT_BYTES: u64 = 64 * 1024 * 1024;

/// What an upload wrote: where it ended and the hash of what it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub end: u64,
    pub sha256: [u8; 32],
}

/// Writes the pieces `pieces` brings into `file`, the first at `start`, until the channel
/// closes. `commit(offset)` is called (after a data sync) each time another
/// [`COMMIT_BYTES`] are written, and once at the end, with the offset before which every
/// byte is on disk. Blocks: run it on a blocking thread.
pub fn write_pieces(
    file: &VolumeFile,
    start: u64,
    pieces: &mut Receiver<Piece>,
    commit: &mut dyn FnMut(u64) -> Result<()>,
) -> Result<Written> {
    let mut hash = Sha256::new();
    let mut position = start;
    let mut committed = start;
    while let Some(piece) = pieces.blocking_recv() {
        if piece.offset() != position {
            return Err(StorageError::InvalidArg(format!(
                "upload chunk at offset {} where {position} was expected: chunks must follow \
                 each other without gaps",
                piece.offset()
            )));
        }
        match &piece {
            Piece::Data { offset, bytes } => {
                for (i, part) in bytes.chunks(WRITE_BYTES).enumerate() {
                    file.write_at(offset + (i * WRITE_BYTES) as u64, part)?;
                }
            }
            Piece::Hole { offset, len } => file.write_hole(*offset, *len)?,
        }
        hash_piece(&mut hash, &piece);
        position += piece.len();
        if position - committed >= COMMIT_BYTES {
            file.sync_data()?;
            commit(position)?;
            committed = position;
        }
    }
    file.sync_data()?;
    if position != committed {
        commit(position)?;
    }
    Ok(Written {
        end: position,
        sha256: hash.finalize().into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pieces_land_at_their_offsets_and_holes_stay_holes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.img");
        std::fs::write(&path, vec![9u8; 8192]).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let writer = tokio::task::spawn_blocking(move || {
            let file = VolumeFile::open_read_write(&path).unwrap();
            let mut commits = Vec::new();
            let written = write_pieces(&file, 0, &mut rx, &mut |offset| {
                commits.push(offset);
                Ok(())
            });
            (written, commits, std::fs::read(&path).unwrap())
        });
        tx.send(Piece::Data {
            offset: 0,
            bytes: vec![1; 100].into(),
        })
        .await
        .unwrap();
        tx.send(Piece::Hole {
            offset: 100,
            len: 1 << 20,
        })
        .await
        .unwrap();
        tx.send(Piece::Data {
            offset: 100 + (1 << 20),
            bytes: vec![2; 10].into(),
        })
        .await
        .unwrap();
        drop(tx);
        let (written, commits, bytes) = writer.await.unwrap();
        let written = written.unwrap();
        assert_eq!(written.end, 110 + (1 << 20));
        assert_eq!(commits, [written.end]);
        assert_eq!(bytes.len() as u64, written.end);
        assert!(bytes[..100].iter().all(|b| *b == 1));
        assert!(
            bytes[100..100 + (1 << 20)].iter().all(|b| *b == 0),
            "the old 9s were punched"
        );
        assert_eq!(&bytes[100 + (1 << 20)..], &[2; 10]);
        assert_eq!(written.sha256, <[u8; 32]>::from(Sha256::digest(&bytes)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_gap_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.img");
        std::fs::write(&path, b"").unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        tx.send(Piece::Data {
            offset: 10,
            bytes: vec![1].into(),
        })
        .await
        .unwrap();
        drop(tx);
        let error = tokio::task::spawn_blocking(move || {
            let file = VolumeFile::open_read_write(&path).unwrap();
            write_pieces(&file, 0, &mut rx, &mut |_| Ok(())).unwrap_err()
        })
        .await
        .unwrap();
        assert!(error.to_string().contains("without gaps"), "{error}");
    }
}
