//! The connection: one reader task, one writer task, and a table of calls waiting for replies.
//!
//! We own this layer instead of using qapi's `futures` transport because that one (0.15) sends
//! no request ids (so a timed-out command makes the next one panic), has no timeouts, stalls
//! replies when nobody polls events, and drops the connection on an event it cannot parse.
//! Here: every command gets a fresh numeric id; the reader routes each reply to its waiter and
//! drops replies nobody waits for (a late answer after a timeout); events are forwarded raw;
//! commands are whole lines handed to a writer task, so a caller that gives up (timeout, or its
//! future dropped) can never leave half a line on the socket.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tracing::{debug, trace, warn};

use super::MonitorError;
use super::event::{MonitorEvent, MonitorEvents};
use super::wire::{self, Incoming};

/// Longest line accepted from QEMU. Real replies stay far below (query-qmp-schema ≈ 200 KiB); a
/// bound keeps a broken peer from eating memory.
const MAX_LINE: u64 = 64 << 20;

/// Commands queued for the writer; callers wait (bounded by their timeout) when it is full.
const WRITE_QUEUE: usize = 64;

type Reply = Result<Value, (String, String)>;

/// Waiters by request id; `None` once the connection is closed, so no new call can register
/// after the reader has given up (it would otherwise wait for its full timeout).
type Pending = Mutex<Option<HashMap<u64, oneshot::Sender<Reply>>>>;

/// State shared by the handles and the two tasks.
#[derive(Debug)]
struct Shared {
    pending: Pending,
    next_id: AtomicU64,
}

impl Shared {
    /// Marks the connection closed and fails every waiting call with `Disconnected` (dropping
    /// their senders). Idempotent.
    fn close(&self) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }
}

/// One open QMP connection past the greeting. Dropping it stops both tasks and closes the socket.
#[derive(Debug)]
pub(crate) struct Conn {
    shared: Arc<Shared>,
    writer: mpsc::Sender<String>,
    tasks: [AbortHandle; 2],
}

impl Drop for Conn {
    fn drop(&mut self) {
        // No call is in flight (each borrows the Conn), so nothing queued is lost. Aborting the
        // writer too matters when QEMU stopped reading: it would sit in write_all forever.
        for task in &self.tasks {
            task.abort();
        }
        self.shared.close();
    }
}

/// Removes a call's waiter when the call ends in any way other than a reply (timeout, or the
/// caller's future dropped), so the table never keeps dead entries.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Some(map) = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            map.remove(&self.id);
        }
    }
}

impl Conn {
    /// Starts the tasks on a stream whose greeting was already read.
    pub(crate) fn start(
        reader: BufReader<OwnedReadHalf>,
        writer: OwnedWriteHalf,
    ) -> (Conn, MonitorEvents) {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Some(HashMap::new())),
            next_id: AtomicU64::new(1),
        });
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (write_tx, write_rx) = mpsc::channel(WRITE_QUEUE);
        let reader = tokio::spawn(read_loop(reader, shared.clone(), events_tx)).abort_handle();
        let writer = tokio::spawn(write_loop(writer, write_rx, shared.clone())).abort_handle();
        let conn = Conn {
            shared,
            writer: write_tx,
            tasks: [reader, writer],
        };
        (conn, MonitorEvents { rx: events_rx })
    }

    /// True until the socket closes.
    pub(crate) fn is_connected(&self) -> bool {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Sends one command and waits for its reply, all within `timeout`.
    pub(crate) async fn call(
        &self,
        name: &str,
        arguments: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, MonitorError> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .ok_or(MonitorError::Disconnected)?
            .insert(id, tx);
        let _guard = PendingGuard {
            shared: &self.shared,
            id,
        };
        let line = wire::command_line(name, arguments, id);
        trace!(qmp_send = line.trim_end());
        let exchange = async {
            self.writer
                .send(line)
                .await
                .map_err(|_| MonitorError::Disconnected)?;
            match rx.await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err((class, desc))) => Err(MonitorError::Qmp { class, desc }),
                Err(_) => Err(MonitorError::Disconnected),
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                debug!(command = name, id, "QMP command timed out");
                Err(MonitorError::Timeout {
                    command: name.to_owned(),
                    after: timeout,
                })
            })
    }
}

/// Reads lines until EOF or a broken stream, routing replies and forwarding events; then fails
/// all waiters and ends the event stream with `Disconnected`.
async fn read_loop(
    mut reader: BufReader<OwnedReadHalf>,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<MonitorEvent>,
) {
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) => break,
            Ok(_) if line.last() != Some(&b'\n') && line.len() as u64 >= MAX_LINE => {
                warn!("QMP line longer than {MAX_LINE} bytes; closing the monitor");
                break;
            }
            Ok(_) => {}
            Err(e) => {
                debug!("QMP socket read failed: {e}");
                break;
            }
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        trace!(qmp_recv = %String::from_utf8_lossy(&line).trim_end());
        match wire::parse_line(&line) {
            Ok(Incoming::Reply {
                id: Some(id),
                result,
            }) => {
                let waiter = shared
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_mut()
                    .and_then(|map| map.remove(&id));
                match waiter {
                    // The waiter may have just timed out; then the reply is dropped too.
                    Some(tx) => drop(tx.send(result)),
                    None => debug!(id, "dropping QMP reply nobody waits for (timed out)"),
                }
            }
            Ok(Incoming::Reply { id: None, result }) => {
                warn!(?result, "QMP reply without id; dropped");
            }
            Ok(Incoming::Event(event)) => {
                // A dropped MonitorEvents handle means nobody wants events: not an error.
                let _ = events.send(MonitorEvent::Qmp(event));
            }
            Ok(Incoming::Other(value)) => debug!(%value, "unexpected QMP message; ignored"),
            Err(e) => {
                warn!("{e}; closing the monitor");
                break;
            }
        }
    }
    shared.close();
    let _ = events.send(MonitorEvent::Disconnected);
}

/// Writes queued command lines whole. Ends on a write error (the reader then sees the close too)
/// or when aborted as the last handle goes.
async fn write_loop(
    mut writer: OwnedWriteHalf,
    mut lines: mpsc::Receiver<String>,
    shared: Arc<Shared>,
) {
    while let Some(line) = lines.recv().await {
        if let Err(e) = writer.write_all(line.as_bytes()).await {
            debug!("QMP socket write failed: {e}");
            shared.close();
            return;
        }
    }
}
