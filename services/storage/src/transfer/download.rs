//! The disk side of a download: the range is walked by its data and hole runs (SEEK_DATA /
//! SEEK_HOLE), data read in chunks, holes sent as holes when the client asked for a sparse
//! stream (else as zeros), all hashed as the bytes read. Blocks: run it on a blocking thread.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::Sender;

use super::{CHUNK_BYTES, Piece, hash_piece};
use crate::error::Result;
use crate::host::VolumeFile;

/// What the reader sends: pieces, then the hash of the whole range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Piece(Piece),
    Done { sha256: [u8; 32] },
}

/// Sends `[start, end)` of `file` to `out`. Stops early (without error) when the receiver
/// is gone: the client left.
pub fn read_pieces(
    file: &VolumeFile,
    start: u64,
    end: u64,
    sparse: bool,
    out: &Sender<Result<Outgoing>>,
) -> Result<()> {
    let mut hash = Sha256::new();
    let mut buffer = vec![0u8; CHUNK_BYTES];
    let extents: Vec<_> = file
        .data_extents(start, end)
        .collect::<std::result::Result<_, _>>()?;
    for extent in extents {
        let mut offset = extent.offset;
        let stop = extent.end();
        while offset < stop {
            let len = (stop - offset).min(CHUNK_BYTES as u64);
            let piece = if extent.is_hole && sparse {
                Piece::Hole {
                    offset,
                    len: stop - offset,
                }
            } else if extent.is_hole {
                Piece::Data {
                    offset,
                    bytes: Bytes::from(vec![0; len as usize]),
                }
            } else {
                let chunk = &mut buffer[..len as usize];
                file.read_exact_at(offset, chunk)?;
                Piece::Data {
                    offset,
                    bytes: Bytes::copy_from_slice(chunk),
                }
            };
            hash_piece(&mut hash, &piece);
            offset += piece.len();
            if out.blocking_send(Ok(Outgoing::Piece(piece))).is_err() {
                return Ok(());
            }
        }
    }
    let _ = out.blocking_send(Ok(Outgoing::Done {
        sha256: hash.finalize().into(),
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sparse_file_goes_out_as_data_and_holes() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.img");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(64 << 20).unwrap();
        file.write_all_at(&[5; 4096], 0).unwrap();
        file.write_all_at(&[6; 4096], 32 << 20).unwrap();
        drop(file);
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let reader_path = path.clone();
        let reader = tokio::task::spawn_blocking(move || {
            let file = VolumeFile::open_read_write(&reader_path).unwrap();
            read_pieces(&file, 0, 64 << 20, true, &tx)
        });
        let (mut data, mut holes, mut digest) = (0u64, 0u64, None);
        while let Some(item) = rx.recv().await {
            match item.unwrap() {
                Outgoing::Piece(Piece::Data { bytes, .. }) => data += bytes.len() as u64,
                Outgoing::Piece(Piece::Hole { len, .. }) => holes += len,
                Outgoing::Done { sha256 } => digest = Some(sha256),
            }
        }
        reader.await.unwrap().unwrap();
        assert_eq!(data + holes, 64 << 20);
        assert!(data <= 2 << 20, "only the data went as bytes: {data}");
        let whole = std::fs::read(&path).unwrap();
        assert_eq!(digest.unwrap(), <[u8; 32]>::from(Sha256::digest(&whole)));
    }
}
