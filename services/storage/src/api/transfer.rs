//! Upload and download messages ↔ the transfer pieces. A chunk is bytes or a hole, never
//! both; the checksum closes the stream.

use tonic::Status;
use virtplane_proto::v1 as pb;

use crate::driver::core::UploadItem;
use crate::error::{Result, StorageError};
use crate::transfer::Piece;
use crate::transfer::download::Outgoing;

/// One chunk as a piece; an empty chunk is nothing.
fn piece(chunk: pb::VolumeChunk) -> Result<Option<Piece>> {
    let pb::VolumeChunk {
        offset,
        data,
        hole_length,
    } = chunk;
    match (data.is_empty(), hole_length) {
        (true, 0) => Ok(None),
        (false, 0) => Ok(Some(Piece::Data {
            offset,
            bytes: data,
        })),
        (true, len) => Ok(Some(Piece::Hole { offset, len })),
        (false, _) => Err(StorageError::InvalidArg(format!(
            "upload chunk at offset {offset} has both data and a hole length; send one or the other"
        ))),
    }
}

/// The items of one message's chunk and checksum fields.
pub fn items_of(chunk: Option<pb::VolumeChunk>, sha256: Vec<u8>) -> Vec<Result<UploadItem>> {
    let mut items = Vec::new();
    if let Some(chunk) = chunk {
        match piece(chunk) {
            Ok(Some(piece)) => items.push(Ok(UploadItem::Piece(piece))),
            Ok(None) => {}
            Err(error) => items.push(Err(error)),
        }
    }
    if !sha256.is_empty() {
        items.push(Ok(UploadItem::Finish { sha256 }));
    }
    items
}

/// A message after the first: it may not name the volume or the range again.
pub fn message_items(message: pb::UploadVolumeRequest) -> Vec<Result<UploadItem>> {
    let pb::UploadVolumeRequest {
        volume,
        offset,
        length,
        chunk,
        sha256,
    } = message;
    if volume.is_some() || offset != 0 || length != 0 {
        return vec![Err(StorageError::InvalidArg(
            "only the first upload message names the volume, offset and length".into(),
        ))];
    }
    items_of(chunk, sha256)
}

/// The client's stream broke off.
pub fn cut_off(status: Status) -> StorageError {
    StorageError::InvalidArg(format!(
        "the upload stream broke off ({}): the volume stays marked incomplete; resume from \
         the offset vol-info shows",
        status.message()
    ))
}

/// A download piece (or the final checksum) as a message.
pub fn response(item: Result<Outgoing>) -> Result<pb::DownloadVolumeResponse, Status> {
    match item? {
        Outgoing::Piece(Piece::Data { offset, bytes }) => Ok(pb::DownloadVolumeResponse {
            length: 0,
            chunk: Some(pb::VolumeChunk {
                offset,
                data: bytes,
                hole_length: 0,
            }),
            sha256: Vec::new(),
        }),
        Outgoing::Piece(Piece::Hole { offset, len }) => Ok(pb::DownloadVolumeResponse {
            length: 0,
            chunk: Some(pb::VolumeChunk {
                offset,
                data: bytes::Bytes::new(),
                hole_length: len,
            }),
            sha256: Vec::new(),
        }),
        Outgoing::Done { sha256 } => Ok(pb::DownloadVolumeResponse {
            length: 0,
            chunk: None,
            sha256: sha256.to_vec(),
        }),
    }
}
