//! `ReadFile` and `WriteFile`: guest-file-open, -seek, -read / -write, -close.
//!
//! Data moves in pieces of at most [`PIECE`] per agent call (qemu-ga's reply is that in base64,
//! a third more, well inside a gRPC message and the agent transport's line limit), so other
//! calls on the agent get their turn between pieces. An opened handle is closed on every path,
//! errors and a client that goes away included: qemu-ga keeps handles until closed, and has a
//! limited number of them.

use qapi::qga;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use virtplane_proto::v1 as pb;

use crate::error::{DomainError, Result};
use crate::guest_agent::DomainAgent;

/// The most data one guest-file-read or guest-file-write moves.
pub const PIECE: usize = 1 << 20;
/// The most one WriteFile takes (a gRPC message is at most 4 MiB).
pub const MAX_WRITE: usize = 3 << 20;

pub type ReadStream = ReceiverStream<Result<pb::GuestFileChunk, Status>>;

/// How much the next read asks for, `left` bytes still wanted (`None` = to the end).
pub fn read_count(left: Option<u64>) -> usize {
    match left {
        Some(left) => usize::try_from(left).unwrap_or(usize::MAX).min(PIECE),
        None => PIECE,
    }
}

/// The piece of `data` the next write sends, `written` bytes of it already written.
pub fn next_piece(data: &[u8], written: usize) -> &[u8] {
    let rest = data.get(written..).unwrap_or_default();
    &rest[..rest.len().min(PIECE)]
}

/// A file to read or write: a path must be given.
pub fn check_path(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(DomainError::InvalidArg(
            "no file given: set path (an absolute path in the guest)".into(),
        ));
    }
    Ok(())
}

/// A file open in the guest; [`OpenFile::close`] must end every use.
struct OpenFile {
    agent: DomainAgent,
    handle: i64,
    path: String,
}

impl OpenFile {
    async fn open(agent: DomainAgent, path: String, mode: &str) -> Result<OpenFile> {
        let handle = agent
            .run(qga::guest_file_open {
                path: path.clone(),
                mode: Some(mode.to_owned()),
            })
            .await?;
        Ok(OpenFile {
            agent,
            handle,
            path,
        })
    }

    async fn close(self) -> Result<()> {
        self.agent
            .run(qga::guest_file_close {
                handle: self.handle,
            })
            .await
            .map(drop)
    }

    /// Closes after a failure: that failure is what the caller hears; a close that fails too
    /// is only logged.
    async fn close_after_failure(self) {
        let (domain, path) = (self.agent.domain().to_owned(), self.path.clone());
        if let Err(e) = self.close().await {
            tracing::warn!(domain, path, error = %e, "cannot close a guest file after a failure");
        }
    }

    async fn seek(&self, offset: u64) -> Result<()> {
        let offset = i64::try_from(offset).map_err(|_| {
            DomainError::InvalidArg(format!("offset {offset} is larger than a file can be"))
        })?;
        self.agent
            .run(qga::guest_file_seek {
                handle: self.handle,
                offset,
                whence: qga::GuestFileWhence::name(qga::QGASeek::set),
            })
            .await
            .map(drop)
    }

    /// Reads up to `max_bytes` (0 = to the end) into `tx`, chunk by chunk. Stops early, with
    /// Ok, when the receiver is gone.
    async fn pump(
        &self,
        max_bytes: u64,
        tx: &mpsc::Sender<Result<pb::GuestFileChunk, Status>>,
    ) -> Result<()> {
        let mut left = (max_bytes > 0).then_some(max_bytes);
        while left != Some(0) {
            let count = read_count(left);
            let qga::GuestFileRead {
                buf_b64,
                count: _,
                eof,
            } = self
                .agent
                .run(qga::guest_file_read {
                    handle: self.handle,
                    count: Some(i64::try_from(count).unwrap_or(i64::MAX)),
                })
                .await?;
            let got = buf_b64.len();
            // An agent that sends more than asked for is cut to what was asked for.
            let data = if got > count {
                buf_b64[..count].to_vec()
            } else {
                buf_b64
            };
            left = left.map(|l| l.saturating_sub(data.len() as u64));
            if !data.is_empty() && tx.send(Ok(pb::GuestFileChunk { data })).await.is_err() {
                return Ok(());
            }
            // Nothing read without eof (a pipe with no writer yet, say) also ends the read:
            // asking again would spin.
            if eof || got == 0 {
                break;
            }
        }
        Ok(())
    }
}

/// What one WriteFile may write: a path, and at most [`MAX_WRITE`] bytes.
pub fn check_write(path: &str, data: &[u8]) -> Result<()> {
    check_path(path)?;
    if data.len() > MAX_WRITE {
        return Err(DomainError::InvalidArg(format!(
            "{} bytes is more than one write takes ({MAX_WRITE} bytes, 3 MiB); write the rest \
             with append",
            data.len()
        )));
    }
    Ok(())
}

/// Opens `path` (checked with [`check_path`]) for reading and returns the stream of its
/// chunks from `offset`, at most `max_bytes` of them (0 = to the end). Failing to open or seek
/// fails the call itself. Everything from the open on runs in a task of its own, so a call
/// cancelled at any point (client gone, deadline) still closes the guest's file handle.
pub async fn read(
    agent: DomainAgent,
    path: String,
    offset: u64,
    max_bytes: u64,
) -> Result<ReadStream> {
    let (opened_tx, opened_rx) = tokio::sync::oneshot::channel();
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        let file = match OpenFile::open(agent, path, "r").await {
            Ok(file) => file,
            Err(e) => {
                let _ = opened_tx.send(Err(e));
                return;
            }
        };
        if offset > 0
            && let Err(e) = file.seek(offset).await
        {
            file.close_after_failure().await;
            let _ = opened_tx.send(Err(e));
            return;
        }
        let _ = opened_tx.send(Ok(()));
        match file.pump(max_bytes, &tx).await {
            Ok(()) => {
                if let Err(e) = file.close().await {
                    let _ = tx.send(Err(e.into())).await;
                }
            }
            Err(e) => {
                file.close_after_failure().await;
                let _ = tx.send(Err(e.into())).await;
            }
        }
    });
    opened_rx
        .await
        .map_err(|_| DomainError::Internal("the guest file read task ended early".into()))??;
    Ok(ReceiverStream::new(rx))
}

/// Writes `data` to `path` (both checked with [`check_write`]), replacing the file or
/// appending with `append`; returns the bytes written. The close is part of the write:
/// qemu-ga flushes there, so a failed close fails the call. Runs in a task of its own, so a
/// call cancelled midway still closes the guest's file handle.
pub async fn write(agent: DomainAgent, path: String, data: Vec<u8>, append: bool) -> Result<u64> {
    tokio::spawn(write_to_end(agent, path, data, append))
        .await
        .map_err(|e| DomainError::Internal(format!("the guest file write task failed: {e}")))?
}

async fn write_to_end(
    agent: DomainAgent,
    path: String,
    data: Vec<u8>,
    append: bool,
) -> Result<u64> {
    let file = OpenFile::open(agent, path, if append { "a" } else { "w" }).await?;
    let mut written = 0;
    while written < data.len() {
        let piece = next_piece(&data, written);
        let result = file
            .agent
            .run(qga::guest_file_write {
                handle: file.handle,
                buf_b64: piece.to_vec(),
                count: None,
            })
            .await;
        let count = match result {
            Ok(qga::GuestFileWrite { count, eof: _ }) => count,
            Err(e) => {
                file.close_after_failure().await;
                return Err(e);
            }
        };
        let count = usize::try_from(count).unwrap_or(0).min(piece.len());
        if count == 0 {
            let message = format!(
                "the guest agent of domain '{}' wrote nothing to '{}' after {written} bytes",
                file.agent.domain(),
                file.path
            );
            file.close_after_failure().await;
            return Err(DomainError::OperationFailed(message));
        }
        written += count;
    }
    file.close().await?;
    Ok(written as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_needs_a_path_and_at_most_3_mib() {
        assert!(check_write("/tmp/x", &[]).is_ok());
        assert!(check_write("/tmp/x", &vec![0; MAX_WRITE]).is_ok());
        let e = check_write("/tmp/x", &vec![0; MAX_WRITE + 1]).unwrap_err();
        assert!(
            matches!(&e, DomainError::InvalidArg(m) if m.contains("3145729 bytes") && m.contains("append")),
            "{e}"
        );
        let e = check_write("", b"data").unwrap_err();
        assert!(
            matches!(&e, DomainError::InvalidArg(m) if m.contains("no file given")),
            "{e}"
        );
    }

    #[test]
    fn reads_ask_for_at_most_a_piece_and_no_more_than_wanted() {
        assert_eq!(read_count(None), PIECE);
        assert_eq!(read_count(Some(10)), 10);
        assert_eq!(read_count(Some(PIECE as u64)), PIECE);
        assert_eq!(read_count(Some(PIECE as u64 + 1)), PIECE);
        assert_eq!(read_count(Some(u64::MAX)), PIECE);
    }

    #[test]
    fn writes_go_in_pieces_and_resume_after_a_short_write() {
        let data = vec![7u8; MAX_WRITE];
        let mut written = 0;
        let mut sizes = Vec::new();
        while written < data.len() {
            let piece = next_piece(&data, written);
            sizes.push(piece.len());
            written += piece.len();
        }
        assert_eq!(sizes, [PIECE, PIECE, PIECE]);

        // The agent took only 100 bytes of the first piece: the next starts right after them.
        let data: Vec<u8> = (0..=255).cycle().take(PIECE + 150).collect();
        let piece = next_piece(&data, 100);
        assert_eq!(piece.len(), PIECE);
        assert_eq!(piece[0], data[100]);
        let last = next_piece(&data, PIECE + 100);
        assert_eq!(last, &data[PIECE + 100..]);
        assert_eq!(last.len(), 50);
        assert!(next_piece(&data, data.len()).is_empty());
        assert!(next_piece(&data, data.len() + 1).is_empty());
    }
}
