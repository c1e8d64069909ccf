//! `vol-upload` and `vol-download`: a volume's data streamed as ~1 MiB chunks, holes as holes,
//! with a SHA-256 of the range checked at the receiving end (storage.proto's
//! UploadVolumeRequest and DownloadVolumeResponse).
//!
//! - Memory stays bounded: the file is read (or written) by a blocking worker one chunk at a
//!   time, with a queue of a few chunks between it and the gRPC stream.
//! - No call deadline: an image of many GiB takes as long as it takes. The global
//!   `--timeout` instead bounds a stall: no progress on either the network or the disk side
//!   for that long fails the transfer (see `progress.rs`).
//! - `vol-upload --resume` asks where an interrupted upload stopped and sends only the rest.
//! - `vol-download` writes into FILE as virsh does (created, or truncated if it exists); a
//!   download that fails removes FILE only if this run created it.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use virtplane_proto::v1 as pb;

use super::progress::Progress;
use super::sizes::parse_bytes;
use super::sparse::{Region, Regions};
use super::view::{Transfer, Volume};
use super::{vol_ref, with_pool_hint};
use crate::commands::Ctx;
use crate::error::Error;
use crate::output::eprint_line;

/// Bytes of data per chunk message.
pub const CHUNK: usize = 1 << 20;
/// Chunks queued between the disk worker and the gRPC stream.
const QUEUE: usize = 4;
/// Zeros fed to the hash for holes, a block at a time.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// `vol-upload VOL FILE`.
#[derive(Debug, Args)]
pub struct VolUploadArgs {
    /// Volume name (with --pool), key or path
    #[arg(value_name = "VOL")]
    pub vol: String,
    /// File to upload
    #[arg(value_name = "FILE")]
    pub file: String,
    /// Pool name or UUID, for a volume given by name
    #[arg(long, value_name = "POOL")]
    pub pool: Option<String>,
    /// Volume offset to upload to (bytes)
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub offset: Option<u64>,
    /// Amount of data to upload (bytes; default, or 0: the whole file)
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub length: Option<u64>,
    /// Preserve sparseness: send the file's holes as holes
    #[arg(long)]
    pub sparse: bool,
    /// Continue an interrupted upload where the volume says it stopped
    #[arg(long)]
    pub resume: bool,
}

/// `vol-download VOL FILE`.
#[derive(Debug, Args)]
pub struct VolDownloadArgs {
    /// Volume name (with --pool), key or path
    #[arg(value_name = "VOL")]
    pub vol: String,
    /// File to write (created, or overwritten if it exists)
    #[arg(value_name = "FILE")]
    pub file: String,
    /// Pool name or UUID, for a volume given by name
    #[arg(long, value_name = "POOL")]
    pub pool: Option<String>,
    /// Volume offset to download from (bytes)
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub offset: Option<u64>,
    /// Amount of data to download (bytes; default, or 0: to the end of the volume)
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub length: Option<u64>,
    /// Preserve sparseness: holes stay holes in FILE
    #[arg(long)]
    pub sparse: bool,
}

/// What can go wrong in a transfer, apart from the server's own errors.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot create {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is empty: there is nothing to upload")]
    Empty { path: String },
    #[error(
        "the interrupted upload into volume '{volume}' stopped at byte {at}, outside this upload's range [{start}, {end}): check --offset and --length, or upload without --resume"
    )]
    ResumeOutside {
        volume: String,
        at: u64,
        start: u64,
        end: u64,
    },
    #[error(
        "the interrupted upload into volume '{volume}' already has all {length} bytes of this range; upload it again without --resume to have it checked and completed"
    )]
    ResumeNothingLeft { volume: String, length: u64 },
    #[error(
        "the transfer of volume '{volume}' stalled: no progress for {secs} s (raise the limit with --timeout SECS)"
    )]
    Stalled { volume: String, secs: u64 },
    #[error(
        "checksum mismatch in the download of volume '{volume}': the data received has SHA-256 {got}, the server sent {want}"
    )]
    Checksum {
        volume: String,
        got: String,
        want: String,
    },
    #[error("the server broke the download protocol for volume '{volume}': {what}")]
    Protocol { volume: String, what: String },
    #[error("the transfer's disk worker failed: {0}")]
    Worker(String),
    /// The gRPC stream went away under the worker; the call's own error says why.
    #[error("the transfer was cut off")]
    Cancelled,
}

impl From<TransferError> for Error {
    fn from(e: TransferError) -> Self {
        Error::Other(e.to_string())
    }
}

/// Which bytes an upload sends: `length` bytes of the file from `file_start`, into the
/// volume at `vol_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadPlan {
    pub file_start: u64,
    pub vol_offset: u64,
    pub length: u64,
}

/// The range of an upload (virsh: `--offset` in the volume, `--length` of the file, 0 or none
/// = all of it, capped at the file's size), moved past what an interrupted upload already
/// wrote when `resume_at` is given.
pub fn plan_upload(
    volume: &str,
    path: &str,
    file_len: u64,
    offset: u64,
    length: Option<u64>,
    resume_at: Option<u64>,
) -> Result<UploadPlan, TransferError> {
    let whole = match length {
        None | Some(0) => file_len,
        Some(l) => l.min(file_len),
    };
    // The proto reads a length of 0 as "up to the volume's capacity": an empty range
    // cannot be said.
    if whole == 0 {
        return Err(TransferError::Empty {
            path: path.to_string(),
        });
    }
    let end = offset.saturating_add(whole);
    let Some(at) = resume_at else {
        return Ok(UploadPlan {
            file_start: 0,
            vol_offset: offset,
            length: whole,
        });
    };
    if at < offset || at > end {
        return Err(TransferError::ResumeOutside {
            volume: volume.to_string(),
            at,
            start: offset,
            end,
        });
    }
    let skip = at - offset;
    if skip == whole {
        return Err(TransferError::ResumeNothingLeft {
            volume: volume.to_string(),
            length: whole,
        });
    }
    Ok(UploadPlan {
        file_start: skip,
        vol_offset: at,
        length: whole - skip,
    })
}

/// Feeds `len` zeros to the hash (a hole reads as zeros), a block at a time, calling `each`
/// with every block's size: hashing a hole of many GiB takes a while, and that is progress,
/// not a stall.
fn hash_zeros(hasher: &mut Sha256, mut len: u64, mut each: impl FnMut(u64)) {
    while len > 0 {
        let n = len.min(ZEROS.len() as u64) as usize;
        hasher.update(&ZEROS[..n]);
        each(n as u64);
        len -= n as u64;
    }
}

/// Bytes of the range a message covers.
fn covered(chunk: Option<&pb::VolumeChunk>) -> u64 {
    chunk.map_or(0, |c| c.data.len() as u64 + c.hole_length)
}

/// What the upload worker sent.
struct Sent {
    data_bytes: u64,
    sha256: Vec<u8>,
}

/// The upload worker: the opening message, the file's chunks (holes as holes with
/// `sparse`), then the SHA-256 of the range. Runs on a blocking thread.
fn produce(
    file: File,
    path: String,
    plan: UploadPlan,
    sparse: bool,
    volume: pb::StorageVolRef,
    tx: mpsc::Sender<pb::UploadVolumeRequest>,
    progress: Arc<Progress>,
) -> Result<Sent, TransferError> {
    let send =
        |m: pb::UploadVolumeRequest| tx.blocking_send(m).map_err(|_| TransferError::Cancelled);
    let read_err = |source| TransferError::Read {
        path: path.clone(),
        source,
    };
    send(pb::UploadVolumeRequest {
        volume: Some(volume),
        offset: plan.vol_offset,
        length: plan.length,
        chunk: None,
        sha256: Vec::new(),
    })?;
    let to_volume = |pos: u64| plan.vol_offset + (pos - plan.file_start);
    let mut hasher = Sha256::new();
    let mut data_bytes = 0;
    let end = plan.file_start + plan.length;
    for region in Regions::new(&file, plan.file_start, end, sparse) {
        match region.map_err(read_err)? {
            Region::Data { offset, len } => {
                let mut pos = offset;
                while pos < offset + len {
                    let n = (offset + len - pos).min(CHUNK as u64) as usize;
                    let mut data = vec![0u8; n];
                    file.read_exact_at(&mut data, pos).map_err(read_err)?;
                    hasher.update(&data);
                    send(pb::UploadVolumeRequest {
                        chunk: Some(pb::VolumeChunk {
                            offset: to_volume(pos),
                            data: data.into(),
                            hole_length: 0,
                        }),
                        ..Default::default()
                    })?;
                    data_bytes += n as u64;
                    pos += n as u64;
                }
            }
            Region::Hole { offset, len } => {
                hash_zeros(&mut hasher, len, |_| progress.touch());
                send(pb::UploadVolumeRequest {
                    chunk: Some(pb::VolumeChunk {
                        offset: to_volume(offset),
                        data: bytes::Bytes::new(),
                        hole_length: len,
                    }),
                    ..Default::default()
                })?;
            }
        }
    }
    let sha256 = hasher.finalize().to_vec();
    send(pb::UploadVolumeRequest {
        sha256: sha256.clone(),
        ..Default::default()
    })?;
    Ok(Sent { data_bytes, sha256 })
}

async fn volume_info(ctx: &Ctx, reference: &pb::StorageVolRef) -> Result<Volume, Error> {
    let mut client = ctx.conn.storage();
    let req = pb::GetVolumeInfoRequest {
        volume: Some(reference.clone()),
    };
    let resp = ctx
        .conn
        .unary(client.get_volume_info(ctx.conn.request(req)))
        .await
        .map_err(|e| with_pool_hint(e, reference))?;
    Ok(Volume::from_proto(&resp.volume.unwrap_or_default()))
}

/// Why an upload failed: on this side, or in the service's words.
enum Failed {
    Local(TransferError),
    Server(tonic::Status),
}

/// Drives the upload call and its worker together until both are done, one fails, or
/// nothing moves for `stall`. Returning early drops the call, which resets the stream: the
/// service then sees a cut-off upload, never a finished one.
async fn run_upload(
    call: impl Future<Output = Result<tonic::Response<pb::UploadVolumeResponse>, tonic::Status>>,
    mut producer: tokio::task::JoinHandle<Result<Sent, TransferError>>,
    progress: &Progress,
    stall: Duration,
    volume: &str,
) -> Result<(pb::UploadVolumeResponse, Sent), Failed> {
    let stalled = || {
        Failed::Local(TransferError::Stalled {
            volume: volume.to_string(),
            secs: stall.as_secs(),
        })
    };
    let joined = |r: Result<Result<Sent, TransferError>, tokio::task::JoinError>| {
        r.unwrap_or_else(|e| Err(TransferError::Worker(e.to_string())))
    };
    tokio::pin!(call);
    let first = tokio::select! {
        r = &mut call => Err(r),
        p = &mut producer => Ok(joined(p)),
        _ = progress.stalled(stall) => return Err(stalled()),
    };
    match first {
        // Everything went out; the service checks the checksum and answers.
        Ok(Ok(sent)) => tokio::select! {
            r = &mut call => match r {
                Ok(resp) => Ok((resp.into_inner(), sent)),
                Err(status) => Err(Failed::Server(status)),
            },
            _ = progress.stalled(stall) => Err(stalled()),
        },
        Ok(Err(e)) => Err(Failed::Local(e)),
        // The call ended first: normally an error. A local failure, if there was one, says
        // more than the service's "stream ended early".
        Err(response) => {
            let sent = match tokio::time::timeout(Duration::from_secs(1), producer).await {
                Ok(p) => joined(p),
                Err(_) => Err(TransferError::Cancelled),
            };
            match (response, sent) {
                (Ok(resp), Ok(sent)) => Ok((resp.into_inner(), sent)),
                (Err(_), Err(e)) if !matches!(e, TransferError::Cancelled) => Err(Failed::Local(e)),
                (Err(status), _) => Err(Failed::Server(status)),
                (Ok(_), Err(_)) => Err(Failed::Local(TransferError::Protocol {
                    volume: volume.to_string(),
                    what: "it reported success before the upload was complete".into(),
                })),
            }
        }
    }
}

pub async fn vol_upload(ctx: &mut Ctx, a: VolUploadArgs) -> Result<(), Error> {
    let reference = vol_ref(ctx, &a.vol, a.pool.as_deref()).await?;
    let read_err = |source| TransferError::Read {
        path: a.file.clone(),
        source,
    };
    let mut file = File::open(&a.file).map_err(read_err)?;
    // Seeking to the end sizes block devices too, where the metadata says 0.
    let file_len = file.seek(SeekFrom::End(0)).map_err(read_err)?;
    let resume_at = if a.resume {
        let info = volume_info(ctx, &reference).await?;
        if info.upload_incomplete {
            Some(info.upload_offset)
        } else {
            eprint_line(format!(
                "volume '{}' has no interrupted upload: uploading all of {}",
                a.vol, a.file
            ));
            None
        }
    } else {
        None
    };
    let offset = a.offset.unwrap_or(0);
    let plan = plan_upload(&a.vol, &a.file, file_len, offset, a.length, resume_at)?;

    let progress = Arc::new(Progress::new(plan.length, format!("uploading {}", a.vol)));
    let (tx, rx) = mpsc::channel(QUEUE);
    let counter = progress.clone();
    let outbound = ReceiverStream::new(rx).map(move |m: pb::UploadVolumeRequest| {
        counter.advance(covered(m.chunk.as_ref()));
        m
    });
    let (path, sparse, volume) = (a.file.clone(), a.sparse, reference.clone());
    let worker_progress = progress.clone();
    let producer = tokio::task::spawn_blocking(move || {
        produce(file, path, plan, sparse, volume, tx, worker_progress)
    });
    let mut client = ctx.conn.storage();
    // No deadline (see the module doc): the stall watchdog guards the transfer.
    let call = client.upload_volume(tonic::Request::new(outbound));
    let stall = ctx.conn.timeout;
    let (resp, sent) = match run_upload(call, producer, &progress, stall, &a.vol).await {
        Ok(done) => done,
        Err(failed) => {
            progress.abandon();
            return Err(match failed {
                Failed::Local(e) => e.into(),
                Failed::Server(status) => {
                    with_pool_hint(Error::from_status(status, &ctx.conn.server), &reference)
                }
            });
        }
    };
    progress.finish();
    if !ctx.out.is_table() {
        return ctx.out.data(&Transfer {
            volume: resp
                .volume
                .map(|v| v.name)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| a.vol.clone()),
            file: a.file.clone(),
            offset: plan.vol_offset,
            length: plan.length,
            data_bytes: sent.data_bytes,
            sha256: hex::encode(&sent.sha256),
        });
    }
    // virsh prints nothing on success.
    Ok(())
}

/// One step of the download worker.
enum WriteOp {
    Data {
        pos: u64,
        bytes: bytes::Bytes,
    },
    /// Holes need no position: a regular file is sized at the end, a stream gets zeros.
    Hole {
        len: u64,
    },
}

/// What the download worker wrote.
struct Written {
    data_bytes: u64,
    sha256: Vec<u8>,
}

/// The download worker: writes chunks at their place in FILE (relative to the range's
/// start) and hashes them. In a regular file holes are left unwritten and the file is sized
/// at the end, so it stays sparse; anything else (a block device, a pipe) gets the zeros.
/// The size of each write into the page cache: measured in bench/ (storage transfers),
/// writes of 1 MiB cost several times more per byte than writes of 256 KiB on a VM whose
/// host reclaims free memory.
const WRITE_BYTES: usize = 256 * 1024;

fn consume(
    mut file: File,
    path: String,
    regular: bool,
    total: u64,
    mut rx: mpsc::Receiver<WriteOp>,
    progress: Arc<Progress>,
) -> Result<Written, TransferError> {
    let write_err = |source| TransferError::Write {
        path: path.clone(),
        source,
    };
    let mut hasher = Sha256::new();
    let mut data_bytes = 0;
    while let Some(op) = rx.blocking_recv() {
        match op {
            WriteOp::Data { pos, bytes } => {
                if regular {
                    // In pieces: see WRITE_BYTES.
                    for (i, part) in bytes.chunks(WRITE_BYTES).enumerate() {
                        file.write_all_at(part, pos + (i * WRITE_BYTES) as u64)
                            .map_err(write_err)?;
                    }
                } else {
                    file.write_all(&bytes).map_err(write_err)?;
                }
                hasher.update(&bytes);
                data_bytes += bytes.len() as u64;
                progress.advance(bytes.len() as u64);
            }
            WriteOp::Hole { len } => {
                hash_zeros(&mut hasher, len, |n| progress.advance(n));
                if !regular {
                    let mut left = len;
                    while left > 0 {
                        let n = left.min(ZEROS.len() as u64) as usize;
                        file.write_all(&ZEROS[..n]).map_err(write_err)?;
                        progress.touch();
                        left -= n as u64;
                    }
                }
            }
        }
    }
    if regular {
        file.set_len(total).map_err(write_err)?;
    }
    file.flush().map_err(write_err)?;
    Ok(Written {
        data_bytes,
        sha256: hasher.finalize().to_vec(),
    })
}

/// Opens FILE as virsh does: created if missing (then `true`), else truncated.
fn open_output(path: &str) -> Result<(File, bool), TransferError> {
    let create_err = |source| TransferError::Create {
        path: path.to_string(),
        source,
    };
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(f) => Ok((f, true)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .map(|f| (f, false))
            .map_err(create_err),
        Err(e) => Err(create_err(e)),
    }
}

/// What became of FILE, for cleaning up after a failure.
#[derive(Default)]
struct Output {
    /// Set once FILE is open.
    opened: Option<Opened>,
}

#[derive(Clone, Copy)]
struct Opened {
    /// This run created FILE (so removing it loses nothing of the user's).
    created: bool,
    /// FILE is a regular file (not a device or a pipe).
    regular: bool,
}

pub async fn vol_download(ctx: &mut Ctx, a: VolDownloadArgs) -> Result<(), Error> {
    let mut output = Output::default();
    let progress = Arc::new(Progress::new(0, format!("downloading {}", a.vol)));
    let stall = ctx.conn.timeout;
    let result = tokio::select! {
        r = download(ctx, &a, &progress, &mut output) => r,
        _ = progress.stalled(stall) => Err(TransferError::Stalled {
            volume: a.vol.clone(),
            secs: stall.as_secs(),
        }
        .into()),
    };
    let transfer = match result {
        Ok(t) => t,
        Err(e) => {
            progress.abandon();
            return Err(match output.opened {
                Some(Opened { created: true, .. }) => {
                    let _ = std::fs::remove_file(&a.file);
                    e
                }
                Some(Opened { regular: true, .. }) => {
                    Error::Other(format!("{e} ({} holds a partial download)", a.file))
                }
                _ => e,
            });
        }
    };
    progress.finish();
    if !ctx.out.is_table() {
        return ctx.out.data(&transfer);
    }
    Ok(())
}

/// The download proper; FILE is opened once the service has accepted the request, so a
/// refused download leaves no file behind.
async fn download(
    ctx: &Ctx,
    a: &VolDownloadArgs,
    progress: &Arc<Progress>,
    output: &mut Output,
) -> Result<Transfer, Error> {
    let reference = vol_ref(ctx, &a.vol, a.pool.as_deref()).await?;
    let offset = a.offset.unwrap_or(0);
    let protocol = |what: String| TransferError::Protocol {
        volume: a.vol.clone(),
        what,
    };
    let status_err = |s| with_pool_hint(Error::from_status(s, &ctx.conn.server), &reference);
    let mut client = ctx.conn.storage();
    let req = pb::DownloadVolumeRequest {
        volume: Some(reference.clone()),
        offset,
        length: a.length.unwrap_or(0),
        sparse: a.sparse,
    };
    // No deadline (see the module doc): the caller's stall watchdog guards the transfer.
    let mut stream = client
        .download_volume(tonic::Request::new(req))
        .await
        .map_err(status_err)?
        .into_inner();
    progress.touch();
    let first =
        stream.message().await.map_err(status_err)?.ok_or_else(|| {
            protocol("the stream ended before it said the download's length".into())
        })?;
    let total = first.length;
    progress.set_total(total);
    let end = offset.checked_add(total).ok_or_else(|| {
        protocol(format!(
            "a length of {total} bytes from offset {offset} overflows"
        ))
    })?;

    let (file, created) = open_output(&a.file)?;
    let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    output.opened = Some(Opened { created, regular });
    let (tx, rx) = mpsc::channel(QUEUE);
    let (path, worker_progress) = (a.file.clone(), progress.clone());
    let writer = tokio::task::spawn_blocking(move || {
        consume(file, path, regular, total, rx, worker_progress)
    });

    let mut next = offset;
    let mut want_sha = None;
    let mut message = Some(first);
    while let Some(m) = message.take() {
        if let Some(chunk) = m.chunk {
            if want_sha.is_some() {
                return Err(protocol("a chunk came after the checksum".into()).into());
            }
            if chunk.offset != next {
                return Err(protocol(format!(
                    "a chunk starts at byte {}, where byte {next} was due",
                    chunk.offset
                ))
                .into());
            }
            let len = chunk.data.len() as u64 + chunk.hole_length;
            if !chunk.data.is_empty() && chunk.hole_length != 0 {
                return Err(
                    protocol(format!("the chunk at byte {next} is both data and hole")).into(),
                );
            }
            if next.checked_add(len).is_none_or(|e| e > end) {
                return Err(protocol(format!(
                    "the chunk at byte {next} ({len} bytes) runs past the announced end at byte {end}"
                ))
                .into());
            }
            let op = if chunk.data.is_empty() {
                WriteOp::Hole { len }
            } else {
                WriteOp::Data {
                    pos: next - offset,
                    bytes: chunk.data,
                }
            };
            next += len;
            if tx.send(op).await.is_err() {
                // The writer stopped: its error says why.
                break;
            }
        }
        if !m.sha256.is_empty() {
            want_sha = Some(m.sha256);
        }
        if want_sha.is_none() {
            message = stream.message().await.map_err(status_err)?;
        }
    }
    drop(tx);
    let written = writer
        .await
        .map_err(|e| Error::from(TransferError::Worker(e.to_string())))??;
    if next != end {
        return Err(protocol(format!(
            "the stream ended after {} of {total} bytes",
            next - offset
        ))
        .into());
    }
    let want = want_sha.ok_or_else(|| protocol("the stream ended without the checksum".into()))?;
    if want != written.sha256 {
        return Err(TransferError::Checksum {
            volume: a.vol.clone(),
            got: hex::encode(&written.sha256),
            want: hex::encode(&want),
        }
        .into());
    }
    Ok(Transfer {
        volume: a.vol.clone(),
        file: a.file.clone(),
        offset,
        length: total,
        data_bytes: written.data_bytes,
        sha256: hex::encode(&written.sha256),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_upload_plans() {
        let p = plan_upload("v", "f", 1000, 0, None, None).unwrap();
        assert_eq!(
            p,
            UploadPlan {
                file_start: 0,
                vol_offset: 0,
                length: 1000
            }
        );
        let p = plan_upload("v", "f", 1000, 4096, Some(100), None).unwrap();
        assert_eq!(
            p,
            UploadPlan {
                file_start: 0,
                vol_offset: 4096,
                length: 100
            }
        );
        // --length 0 or past the file: the whole file, as virsh sends it.
        assert_eq!(
            plan_upload("v", "f", 1000, 0, Some(0), None)
                .unwrap()
                .length,
            1000
        );
        assert_eq!(
            plan_upload("v", "f", 1000, 0, Some(5000), None)
                .unwrap()
                .length,
            1000
        );
        let err = plan_upload("v", "empty.img", 0, 0, None, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "empty.img is empty: there is nothing to upload"
        );
    }

    #[test]
    fn resumed_upload_plans() {
        let p = plan_upload("v", "f", 1000, 0, None, Some(600)).unwrap();
        assert_eq!(
            p,
            UploadPlan {
                file_start: 600,
                vol_offset: 600,
                length: 400
            }
        );
        let p = plan_upload("v", "f", 1000, 4096, None, Some(4096 + 10)).unwrap();
        assert_eq!(
            p,
            UploadPlan {
                file_start: 10,
                vol_offset: 4106,
                length: 990
            }
        );
        let err = plan_upload("v", "f", 1000, 4096, None, Some(10)).unwrap_err();
        assert!(
            err.to_string()
                .contains("stopped at byte 10, outside this upload's range [4096, 5096)"),
            "{err}"
        );
        let err = plan_upload("v", "f", 1000, 0, None, Some(1000)).unwrap_err();
        assert!(matches!(
            err,
            TransferError::ResumeNothingLeft { length: 1000, .. }
        ));
    }

    #[test]
    fn holes_hash_as_zeros() {
        let mut a = Sha256::new();
        let mut seen = 0;
        hash_zeros(&mut a, 200_000, |n| seen += n);
        let b = Sha256::digest(vec![0u8; 200_000]);
        assert_eq!(a.finalize(), b);
        assert_eq!(seen, 200_000);
    }
}
