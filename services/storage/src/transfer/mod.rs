//! Volume data streams (`vol-upload`, `vol-download`): the pieces that travel — bytes, or
//! holes that are described instead of sent — and the blocking loops that write them into a
//! volume file or read them out of one, hashing as they go. Memory stays bounded: pieces
//! pass through a channel of a few chunks between the network side and the disk side.

use bytes::Bytes;
use sha2::{Digest, Sha256};

pub mod download;
pub mod markers;
pub mod upload;

/// Largest piece of data on a stream: big enough that per-message costs vanish, small
/// enough to keep a few in flight cheaply.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// How many pieces may wait between the network and the disk.
pub const PIPELINE_DEPTH: usize = 8;

/// One piece of a volume's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// The bytes at `offset` (shared, not copied, from the message they came in).
    Data { offset: u64, bytes: Bytes },
    /// `len` bytes of zeros at `offset`, not sent.
    Hole { offset: u64, len: u64 },
}

impl Piece {
    pub fn offset(&self) -> u64 {
        match self {
            Self::Data { offset, .. } | Self::Hole { offset, .. } => *offset,
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            Self::Data { bytes, .. } => bytes.len() as u64,
            Self::Hole { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Feeds `len` zero bytes to a hash (a hole reads as zeros).
pub fn hash_zeros(hash: &mut Sha256, mut len: u64) {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    while len > 0 {
        let n = len.min(ZEROS.len() as u64) as usize;
        hash.update(&ZEROS[..n]);
        len -= n as u64;
    }
}

/// Hashes a piece as its bytes read.
pub fn hash_piece(hash: &mut Sha256, piece: &Piece) {
    match piece {
        Piece::Data { bytes, .. } => hash.update(bytes),
        Piece::Hole { len, .. } => hash_zeros(hash, *len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hole_hashes_as_its_zeros() {
        let mut by_hole = Sha256::new();
        hash_piece(
            &mut by_hole,
            &Piece::Hole {
                offset: 0,
                len: 200_000,
            },
        );
        let mut by_bytes = Sha256::new();
        by_bytes.update(vec![0u8; 200_000]);
        assert_eq!(by_hole.finalize(), by_bytes.finalize());
    }
}
