//! One connection to a VM's guest agent socket: connect, sync, then one call at a time.
//!
//! The socket is QEMU's end of the `org.qemu.guest_agent.0` virtio-serial port. QEMU accepts a
//! connection whether or not qemu-ga runs in the guest, and output the agent writes while no
//! host is connected is held in the guest and handed to the *next* connection. So a reply to a
//! call that was abandoned (timed out) can arrive on a later connection, where it would pass
//! for the answer to a new call. Every connection therefore starts with `guest-sync-delimited`
//! carrying a random id: everything before the 0xFF sentinel that precedes the matching
//! answer is discarded. After that the stream is in step, and each call's reply is the next
//! line (also checked against the request id qemu-ga echoes).
//!
//! Nothing here has a timeout: the caller ([`super::GuestAgent`]) bounds each whole exchange,
//! and drops the connection when a call did not finish cleanly.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tracing::{debug, trace};

use super::AgentError;
use super::wire::{self, SENTINEL};

/// Longest reply line accepted. The largest real replies are `guest-file-read` (up to 48 MiB
/// of data, base64-encoded: 64 MiB) and `guest-exec-status` output; a bound keeps a broken
/// agent from eating the service's memory.
const MAX_LINE: u64 = 80 << 20;

/// A synced connection to the agent.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: BufReader<UnixStream>,
    socket: PathBuf,
    next_id: u64,
}

impl Connection {
    /// Connects to `socket` and runs the sync handshake with a fresh random id. Bytes of older
    /// output skipped on the way are added to `discarded`.
    pub(crate) async fn open(socket: &Path, discarded: &AtomicU64) -> Result<Self, AgentError> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|e| AgentError::NotConnected {
                socket: socket.to_owned(),
                reason: match e.kind() {
                    io::ErrorKind::NotFound => {
                        "no such socket: the VM has no guest agent channel, or is not running"
                            .into()
                    }
                    io::ErrorKind::ConnectionRefused => {
                        "connection refused: QEMU is not listening (has it exited?)".into()
                    }
                    _ => e.to_string(),
                },
            })?;
        let mut conn = Connection {
            stream: BufReader::new(stream),
            socket: socket.to_owned(),
            next_id: 1,
        };
        // Random, so that no answer to an earlier connection's sync can match.
        let sync_id = rand::random::<u64>() >> 12;
        conn.send(&wire::sync_request(sync_id)).await?;
        loop {
            let skipped = skip_past_sentinel(&mut conn.stream)
                .await
                .map_err(|e| conn.io_error(e))?;
            let line = conn.read_line().await?;
            if wire::is_sync_reply(&line, sync_id) {
                let total = discarded.fetch_add(skipped, Ordering::Relaxed) + skipped;
                if skipped > 0 {
                    debug!(
                        skipped,
                        total, "discarded stale guest agent output while syncing"
                    );
                }
                return Ok(conn);
            }
            // A delimited answer to an older sync: stale too.
            discarded.fetch_add(skipped + 1 + line.len() as u64, Ordering::Relaxed);
        }
    }

    /// Sends one command and reads its reply. On any error but [`AgentError::Agent`] the
    /// connection is out of step or broken, and must be dropped.
    pub(crate) async fn call(
        &mut self,
        name: &str,
        arguments: Option<Value>,
    ) -> Result<Value, AgentError> {
        let id = self.next_id;
        self.next_id += 1;
        let line = wire::command_line(name, arguments, Some(id));
        trace!(qga_send = line.trim_end());
        self.send(line.as_bytes()).await?;
        let reply = self.read_line().await?;
        trace!(qga_recv = %String::from_utf8_lossy(&reply));
        wire::parse_reply(&reply, id)
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), AgentError> {
        let stream = self.stream.get_mut();
        let written = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        written.await.map_err(|e| self.io_error(e))
    }

    /// The next non-blank line, without its newline and without sentinel bytes (a raw
    /// `guest-sync-delimited` is refused, but an agent may still send one).
    async fn read_line(&mut self) -> Result<Vec<u8>, AgentError> {
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut self.stream)
                .take(MAX_LINE)
                .read_until(b'\n', &mut line)
                .await
                .map_err(|e| self.io_error(e))?;
            if n == 0 {
                return Err(self.closed());
            }
            if line.last() != Some(&b'\n') {
                if line.len() as u64 >= MAX_LINE {
                    return Err(AgentError::Protocol(format!(
                        "the agent sent a line longer than {MAX_LINE} bytes"
                    )));
                }
                return Err(self.closed());
            }
            line.retain(|b| *b != SENTINEL);
            let text = line.trim_ascii();
            if !text.is_empty() {
                return Ok(text.to_vec());
            }
        }
    }

    fn closed(&self) -> AgentError {
        AgentError::NotConnected {
            socket: self.socket.clone(),
            reason: "QEMU closed the agent channel (has the VM stopped?)".into(),
        }
    }

    fn io_error(&self, e: io::Error) -> AgentError {
        AgentError::NotConnected {
            socket: self.socket.clone(),
            reason: format!("the agent channel broke: {e}"),
        }
    }
}

/// Reads and drops bytes up to and including the next sentinel; returns how many were dropped
/// before it. Reads buffer by buffer, so no amount of stale output is held in memory.
async fn skip_past_sentinel(stream: &mut (impl AsyncBufRead + Unpin)) -> io::Result<u64> {
    let mut skipped = 0u64;
    loop {
        let buf = stream.fill_buf().await?;
        if buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed while waiting for the sync reply",
            ));
        }
        match buf.iter().position(|b| *b == SENTINEL) {
            Some(at) => {
                stream.consume(at + 1);
                return Ok(skipped + at as u64);
            }
            None => {
                let n = buf.len();
                stream.consume(n);
                skipped += n as u64;
            }
        }
    }
}
