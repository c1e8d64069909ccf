//! `guest-file-read` and `guest-file-write`: virtplane's additions (libvirt has only the raw
//! `guest-file-*` agent commands). Contents pass through as bytes: `guest-file-read` always
//! writes the raw file to stdout, whatever `-o` says.

use std::io::Read;

use clap::Args;
use serde::Serialize;
use virtplane_proto::v1 as pb;

use super::MAX_INPUT_BYTES;
use crate::commands::{Ctx, domain_ref};
use crate::error::Error;

/// `guest-file-read DOMAIN PATH [--offset N] [--length N]`.
#[derive(Debug, Args)]
pub struct GuestFileReadArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// The file in the guest
    #[arg(value_name = "PATH")]
    pub path: String,
    /// Start reading at this byte
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub offset: u64,
    /// Read at most this many bytes (default: to the end of the file)
    #[arg(long, value_name = "BYTES")]
    pub length: Option<u64>,
}

/// `guest-file-write DOMAIN PATH [--append] [--file FILE|-]`.
#[derive(Debug, Args)]
pub struct GuestFileWriteArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// The file in the guest (created if missing, else replaced)
    #[arg(value_name = "PATH")]
    pub path: String,
    /// Append to the file instead of replacing it
    #[arg(long)]
    pub append: bool,
    /// What to write: a local file, or '-' for stdin (the default)
    #[arg(long, value_name = "FILE", default_value = "-")]
    pub file: String,
}

/// Reads the guest file, written to stdout chunk by chunk as the stream brings them. The
/// global `--timeout` bounds a stall (no chunk for that long), not the whole read: a large
/// file through the agent takes a while.
pub async fn guest_file_read(ctx: &mut Ctx, a: GuestFileReadArgs) -> Result<(), Error> {
    if a.length == Some(0) {
        return Ok(());
    }
    let server = ctx.conn.server.clone();
    let stall = ctx.conn.timeout;
    let mut client = ctx.conn.guest();
    let request = tonic::Request::new(pb::ReadGuestFileRequest {
        domain: domain_ref(&a.domain),
        path: a.path.clone(),
        offset: a.offset,
        max_bytes: a.length.unwrap_or(0),
    });
    let stalled = || {
        Error::Other(format!(
            "reading {} from domain '{}' stalled: no data for {} s (raise the limit with \
             --timeout SECS)",
            a.path,
            a.domain,
            stall.as_secs()
        ))
    };
    let mut stream = tokio::time::timeout(stall, client.read_file(request))
        .await
        .map_err(|_| stalled())?
        .map_err(|s| Error::from_status(s, &server))?
        .into_inner();
    loop {
        match tokio::time::timeout(stall, stream.message()).await {
            Err(_) => return Err(stalled()),
            Ok(Err(status)) => return Err(Error::from_status(status, &server)),
            Ok(Ok(None)) => return ctx.out.flush(),
            Ok(Ok(Some(chunk))) => ctx.out.bytes(&chunk.data)?,
        }
    }
}

#[derive(Debug, Serialize)]
struct WrittenView {
    domain: String,
    path: String,
    written: u64,
}

/// Fills `buf` from `reader` up to its length or the end of input; returns the bytes read.
fn fill(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Writes the input in pieces of at most 3 MiB (the proto's limit per call): the first
/// replaces the file (or appends, with --append), the others append. Input that fails
/// half-way leaves the pieces already written in the guest, as `cat > file` would.
pub async fn guest_file_write(ctx: &mut Ctx, a: GuestFileWriteArgs) -> Result<(), Error> {
    let source_name = if a.file == "-" {
        "standard input".to_string()
    } else {
        a.file.clone()
    };
    let read_error = |source| Error::ReadFile {
        path: source_name.clone(),
        source,
    };
    let mut reader: Box<dyn Read> = if a.file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(&a.file).map_err(read_error)?)
    };
    let mut client = ctx.conn.guest();
    let mut buf = vec![0u8; MAX_INPUT_BYTES];
    let mut written: u64 = 0;
    let mut append = a.append;
    let mut first = true;
    loop {
        let n = fill(&mut reader, &mut buf).map_err(read_error)?;
        // An empty input still makes (or empties) the file: one call with no data.
        if n == 0 && !first {
            break;
        }
        first = false;
        let request = pb::WriteGuestFileRequest {
            domain: domain_ref(&a.domain),
            path: a.path.clone(),
            data: buf[..n].to_vec(),
            append,
        };
        written += ctx
            .conn
            .unary(client.write_file(ctx.conn.request(request)))
            .await?
            .written;
        append = true;
        if n < buf.len() {
            break;
        }
    }
    if !ctx.out.is_table() {
        return ctx.out.data(&WrittenView {
            domain: a.domain,
            path: a.path,
            written,
        });
    }
    ctx.out.line(format!(
        "Wrote {written} bytes to {} in domain '{}'",
        a.path, a.domain
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_reads_across_short_reads() {
        // A reader that hands out 3 bytes at a time.
        struct Trickle(Vec<u8>);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(3).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0.drain(..n);
                Ok(n)
            }
        }
        let mut r = Trickle(b"0123456789".to_vec());
        let mut buf = [0u8; 8];
        assert_eq!(fill(&mut r, &mut buf).unwrap(), 8);
        assert_eq!(&buf, b"01234567");
        assert_eq!(fill(&mut r, &mut buf).unwrap(), 2);
        assert_eq!(fill(&mut r, &mut buf).unwrap(), 0);
    }
}
