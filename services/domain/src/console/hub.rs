//! One console of one running domain: a single connection to QEMU's chardev socket, shared by
//! every attached client.
//!
//! QEMU's socket chardev serves one connection at a time, so the hub is that connection: a
//! reader task appends the guest's output to the scrollback and broadcasts it, a writer task
//! sends the current writer's input. Clients attach through [`Hub::attach`]; at most one of
//! them is the writer, any number watch read-only. The hub ends when its socket closes (QEMU
//! exited: the domain stopped), when the domain's run it belongs to is over, or when the
//! service shuts down; every client then gets a [`Closed`] saying why.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prost::bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::AbortHandle;

use super::endpoint::ConsoleEndpoint;
use super::error::ConsoleError;
use super::scrollback::{Scrollback, overlap, read_log_tail};

/// The hub's limits and timeouts.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Scrollback kept and replayed on attach.
    pub scrollback_bytes: usize,
    /// Bound on connecting to QEMU's socket.
    pub connect_timeout: Duration,
    /// Bound on one write of input to QEMU's socket (a guest that stopped reading its serial
    /// port fills the socket); the input is dropped, with a warning, after it.
    pub write_timeout: Duration,
    /// After connecting, how long to wait for the first output before reading QEMU's log:
    /// QEMU accepts the connection in its main loop, and output written before that is only
    /// in the log. Output arriving ends the wait at once.
    pub settle: Duration,
    /// Output chunks a client may fall behind by before it is dropped (CLIENT_TOO_SLOW).
    pub client_backlog: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            scrollback_bytes: 64 * 1024,
            connect_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            settle: Duration::from_millis(200),
            client_backlog: 1024,
        }
    }
}

/// Size of one read from QEMU's socket.
const READ_CHUNK: usize = 16 * 1024;
/// Input messages queued for QEMU's socket; the writer's stream waits when it is full.
const INPUT_QUEUE: usize = 64;

/// Why a console ended for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    TakenOver,
    DomainStopped,
    ServiceShutdown,
    ClientTooSlow,
    Error,
}

/// The end of a console for one client: a reason and a sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub reason: CloseReason,
    pub message: String,
}

impl Closed {
    pub fn new(reason: CloseReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// How a client attaches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttachMode {
    pub read_only: bool,
    /// Take the writer role from another client.
    pub force: bool,
}

/// What a client receives next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Data(Bytes),
    Closed(Closed),
}

#[derive(Debug, Clone)]
enum Event {
    Data(Bytes),
    Closed(Closed),
}

/// The writer role: who holds it and how to tell them it was taken.
#[derive(Debug)]
struct Writer {
    id: u64,
    kick: oneshot::Sender<Closed>,
}

#[derive(Debug)]
struct State {
    scrollback: Scrollback,
    events: broadcast::Sender<Event>,
    writer: Option<Writer>,
    next_id: u64,
    closed: Option<Closed>,
    tasks: Vec<AbortHandle>,
}

/// One console connection and its clients.
#[derive(Debug)]
pub struct Hub {
    endpoint: ConsoleEndpoint,
    config: HubConfig,
    state: Mutex<State>,
    input: mpsc::Sender<(u64, Bytes)>,
}

impl Hub {
    /// Connects to the console's socket, seeds the scrollback from QEMU's log and starts
    /// relaying.
    pub async fn start(
        endpoint: ConsoleEndpoint,
        config: HubConfig,
    ) -> Result<Arc<Hub>, ConsoleError> {
        let stream = tokio::time::timeout(
            config.connect_timeout,
            UnixStream::connect(&endpoint.socket),
        )
        .await
        .map_err(|_| ConsoleError::ConnectTimeout {
            domain: endpoint.domain.clone(),
            device: endpoint.device.clone(),
            after: config.connect_timeout,
        })?
        .map_err(|source| ConsoleError::Connect {
            domain: endpoint.domain.clone(),
            device: endpoint.device.clone(),
            path: endpoint.socket.clone(),
            source,
        })?;
        let _ = tokio::time::timeout(config.settle, stream.readable()).await;
        let mut scrollback = Scrollback::new(config.scrollback_bytes);
        if let Some(log) = endpoint.log.clone() {
            let limit = config.scrollback_bytes;
            let read = tokio::task::spawn_blocking(move || read_log_tail(&log, limit)).await;
            match read {
                Ok(Ok((tail, cut))) => scrollback.seed(&tail, cut),
                Ok(Err(e)) => tracing::warn!(
                    domain = %endpoint.domain,
                    device = %endpoint.device,
                    "console log unreadable, scrollback starts empty: {e}"
                ),
                Err(e) => tracing::warn!("reading the console log failed: {e}"),
            }
        }
        // Output that reached the socket before the log was read is in both: skip it once.
        let (fresh, ended) = drain(&stream);
        let tail = scrollback.contents();
        let skip = overlap(&tail, &fresh);
        scrollback.push(&fresh[skip..]);
        if ended {
            return Err(ConsoleError::Closed(stopped(&endpoint)));
        }

        let (events, _) = broadcast::channel(config.client_backlog.max(1));
        let (input, input_rx) = mpsc::channel(INPUT_QUEUE);
        let hub = Arc::new(Hub {
            endpoint,
            config,
            state: Mutex::new(State {
                scrollback,
                events,
                writer: None,
                next_id: 1,
                closed: None,
                tasks: Vec::new(),
            }),
            input,
        });
        let (read, write) = stream.into_split();
        let reader = tokio::spawn(read_loop(hub.clone(), read));
        let writer = tokio::spawn(write_loop(hub.clone(), write, input_rx));
        let mut state = hub.lock();
        state.tasks = vec![reader.abort_handle(), writer.abort_handle()];
        // A task that already ended closed the hub before its handle was stored.
        if state.closed.is_some() {
            state.tasks.iter().for_each(AbortHandle::abort);
        }
        drop(state);
        Ok(hub)
    }

    pub fn endpoint(&self) -> &ConsoleEndpoint {
        &self.endpoint
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }

    /// Attaches a client: its replay (the scrollback now) and its live output from here on,
    /// with nothing lost or repeated in between. A second writer is refused unless `force`,
    /// which ends the current writer's attachment with TAKEN_OVER.
    pub fn attach(self: &Arc<Self>, mode: AttachMode) -> Result<Attachment, ConsoleError> {
        let mut state = self.lock();
        if let Some(closed) = &state.closed {
            return Err(ConsoleError::Closed(closed.clone()));
        }
        let id = state.next_id;
        state.next_id += 1;
        let mut kicked = None;
        if !mode.read_only {
            if let Some(old) = state.writer.take() {
                if !mode.force {
                    state.writer = Some(old);
                    return Err(ConsoleError::Busy {
                        domain: self.endpoint.domain.clone(),
                    });
                }
                let _ = old.kick.send(Closed::new(
                    CloseReason::TakenOver,
                    format!(
                        "console of '{}' was taken over by another session (--force)",
                        self.endpoint.domain
                    ),
                ));
            }
            let (kick, rx) = oneshot::channel();
            state.writer = Some(Writer { id, kick });
            kicked = Some(rx);
        }
        Ok(Attachment {
            hub: self.clone(),
            id,
            writer: !mode.read_only,
            replay: state.scrollback.snapshot(),
            events: state.events.subscribe(),
            kicked,
        })
    }

    /// Ends the console for every client with `closed` (once; later calls do nothing).
    pub fn close(&self, closed: Closed) {
        let mut state = self.lock();
        if state.closed.is_some() {
            return;
        }
        tracing::debug!(domain = %self.endpoint.domain, device = %self.endpoint.device, "console closed: {}", closed.message);
        state.closed = Some(closed.clone());
        let _ = state.events.send(Event::Closed(closed));
        state.writer = None;
        state.scrollback.clear();
        state.tasks.iter().for_each(AbortHandle::abort);
    }

    fn publish(&self, data: Bytes) {
        let mut state = self.lock();
        if state.closed.is_some() {
            return;
        }
        state.scrollback.push(&data);
        // No receiver (nobody attached) is fine: the scrollback has it.
        let _ = state.events.send(Event::Data(data));
    }

    fn is_writer(&self, id: u64) -> bool {
        self.lock().writer.as_ref().is_some_and(|w| w.id == id)
    }

    fn release(&self, id: u64) {
        let mut state = self.lock();
        if state.writer.as_ref().is_some_and(|w| w.id == id) {
            state.writer = None;
        }
    }

    fn closed(&self) -> Option<Closed> {
        self.lock().closed.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent under every panic point (plain field updates).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn stopped(endpoint: &ConsoleEndpoint) -> Closed {
    Closed::new(
        CloseReason::DomainStopped,
        format!(
            "console of '{}' closed: the domain stopped",
            endpoint.domain
        ),
    )
}

/// Reads whatever the socket holds right now, without waiting; `true` when it has closed.
fn drain(stream: &UnixStream) -> (Vec<u8>, bool) {
    let mut fresh = Vec::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match stream.try_read(&mut buf) {
            Ok(0) => return (fresh, true),
            Ok(n) => fresh.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return (fresh, false),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return (fresh, true),
        }
    }
}

/// Guest output → scrollback and clients, until QEMU closes the socket.
async fn read_loop(hub: Arc<Hub>, mut read: OwnedReadHalf) {
    let mut buf = vec![0u8; READ_CHUNK];
    // No timeout: an idle console is normal; the read ends when QEMU exits.
    let closed = loop {
        match read.read(&mut buf).await {
            Ok(0) => break stopped(&hub.endpoint),
            Ok(n) => hub.publish(Bytes::copy_from_slice(&buf[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                break stopped(&hub.endpoint);
            }
            Err(e) => {
                break Closed::new(
                    CloseReason::Error,
                    format!(
                        "console of '{}' closed: reading from QEMU failed: {e}",
                        hub.endpoint.domain
                    ),
                );
            }
        }
    };
    hub.close(closed);
}

/// The writer's input → QEMU. Input from a client that is no longer the writer (taken over)
/// is dropped here, so it never reaches the guest.
async fn write_loop(
    hub: Arc<Hub>,
    mut write: OwnedWriteHalf,
    mut input: mpsc::Receiver<(u64, Bytes)>,
) {
    while let Some((id, data)) = input.recv().await {
        if !hub.is_writer(id) {
            continue;
        }
        match tokio::time::timeout(hub.config.write_timeout, write.write_all(&data)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                hub.close(Closed::new(
                    CloseReason::Error,
                    format!(
                        "console of '{}' closed: writing to QEMU failed: {e}",
                        hub.endpoint.domain
                    ),
                ));
                return;
            }
            Err(_) => tracing::warn!(
                domain = %hub.endpoint.domain,
                device = %hub.endpoint.device,
                "console input dropped: the guest has not read its console for {:?}",
                hub.config.write_timeout
            ),
        }
    }
}

/// One client's view of a hub. Dropping it detaches the client (and frees the writer role).
#[derive(Debug)]
pub struct Attachment {
    hub: Arc<Hub>,
    id: u64,
    writer: bool,
    replay: Vec<u8>,
    events: broadcast::Receiver<Event>,
    kicked: Option<oneshot::Receiver<Closed>>,
}

impl Attachment {
    pub fn domain(&self) -> &str {
        &self.hub.endpoint.domain
    }

    pub fn device(&self) -> &str {
        &self.hub.endpoint.device
    }

    pub fn is_writer(&self) -> bool {
        self.writer
    }

    /// The scrollback at the moment of attaching (taken once).
    pub fn take_replay(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.replay)
    }

    /// The next live output, or why the console ended for this client. After a `Closed`, the
    /// attachment is done.
    pub async fn next(&mut self) -> Output {
        loop {
            let kicked = async {
                match self.kicked.as_mut() {
                    Some(rx) => rx.await.ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                closed = kicked => match closed {
                    Some(closed) => return Output::Closed(closed),
                    // The role was released without a kick: nothing to report.
                    None => self.kicked = None,
                },
                event = self.events.recv() => return match event {
                    Ok(Event::Data(data)) => Output::Data(data),
                    Ok(Event::Closed(closed)) => Output::Closed(closed),
                    Err(broadcast::error::RecvError::Lagged(missed)) => Output::Closed(Closed::new(
                        CloseReason::ClientTooSlow,
                        format!(
                            "console of '{}' closed for this client: it fell {missed} output \
                             chunks behind; attach again",
                            self.hub.endpoint.domain
                        ),
                    )),
                    Err(broadcast::error::RecvError::Closed) => Output::Closed(
                        self.hub.closed().unwrap_or_else(|| stopped(&self.hub.endpoint)),
                    ),
                },
            }
        }
    }

    /// Sends typed input to the guest. Only the writer may; input sent after the role was
    /// taken over is dropped (the client learns of the takeover from [`Attachment::next`]).
    pub async fn write(&self, data: Bytes) -> Result<(), ConsoleError> {
        if !self.writer {
            return Err(ConsoleError::ReadOnly {
                domain: self.hub.endpoint.domain.clone(),
            });
        }
        if data.is_empty() {
            return Ok(());
        }
        if self.hub.input.send((self.id, data)).await.is_err() {
            return Err(ConsoleError::Closed(
                self.hub
                    .closed()
                    .unwrap_or_else(|| stopped(&self.hub.endpoint)),
            ));
        }
        Ok(())
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if self.writer {
            self.hub.release(self.id);
        }
    }
}
