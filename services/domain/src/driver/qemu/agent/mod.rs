//! The guest agent client: how the qemu driver talks to qemu-guest-agent inside a VM.
//!
//! One [`GuestAgent`] per VM, on the unix socket of its `org.qemu.guest_agent.0` channel (in
//! the VM's run dir). Typed commands are qapi's generated guest agent types (`qapi::qga::*`);
//! [`GuestAgent::execute_raw`] passes any JSON command through for `qemu-agent-command`.
//!
//! The rules, from issue #6 and libvirt's experience with agents that hang or restart:
//! - every call is bounded by a timeout (libvirt's `guest-agent-timeout`), waiting for an
//!   earlier call included, so a missing or hung agent is an error, never a hang;
//! - one call at a time per VM: qemu-ga answers in order on a single stream;
//! - every connection starts with a sync handshake carrying a random id, so a late reply to an
//!   abandoned call is never taken for the answer to a new one (see `transport.rs`);
//! - after a timeout, an I/O error or a reply out of step, the connection is discarded and the
//!   next call opens and syncs a fresh one.
//!
//! Commands the agent answers only by acting (`guest-shutdown`, `guest-suspend-*`) give no
//! reply: they end in [`AgentError::NotResponding`] here; the caller watches the VM instead.

mod error;
mod transport;
mod wire;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

pub use error::AgentError;

use transport::Connection;

/// The socket name of the agent channel in a VM's run dir (the channel's target name).
pub const SOCKET_NAME: &str = "org.qemu.guest_agent.0";

/// The per-call timeout unless [`GuestAgent::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The agent socket of the VM whose run dir is `vm_dir`.
pub fn socket_path(vm_dir: &Path) -> PathBuf {
    vm_dir.join(SOCKET_NAME)
}

/// State shared by the clones of one VM's agent handle.
#[derive(Debug)]
struct Shared {
    socket: PathBuf,
    /// The synced connection, if one is open and in step. Taken out for the length of a call
    /// and put back only when the call ended cleanly, so a call abandoned at any point (its
    /// timeout, or its future dropped) leaves no connection behind.
    conn: Mutex<Option<Connection>>,
    /// Bytes of stale agent output skipped by sync handshakes, for diagnostics.
    discarded: AtomicU64,
}

/// The guest agent of one VM. Clones share the connection and its one-call-at-a-time lock;
/// each clone has its own timeout ([`GuestAgent::with_timeout`]).
#[derive(Debug, Clone)]
pub struct GuestAgent {
    shared: Arc<Shared>,
    timeout: Duration,
}

impl GuestAgent {
    /// A handle on the agent behind `socket` (see [`socket_path`]). Connects lazily: nothing
    /// happens until the first call.
    pub fn new(socket: PathBuf) -> Self {
        GuestAgent {
            shared: Arc::new(Shared {
                socket,
                conn: Mutex::new(None),
                discarded: AtomicU64::new(0),
            }),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A handle on the same agent whose calls time out after `timeout`.
    pub fn with_timeout(&self, timeout: Duration) -> GuestAgent {
        GuestAgent {
            shared: self.shared.clone(),
            timeout,
        }
    }

    /// This handle's per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The agent's socket.
    pub fn socket(&self) -> &Path {
        &self.shared.socket
    }

    /// How many bytes of stale agent output (late replies to abandoned calls) the sync
    /// handshakes have skipped so far.
    pub fn discarded_bytes(&self) -> u64 {
        self.shared.discarded.load(Ordering::Relaxed)
    }

    /// Runs one typed guest agent command (any `qapi::qga` command struct) and decodes its
    /// reply. A reply that does not fit qapi's schema is a `Protocol` error for this call only.
    pub async fn execute<C: qapi::qga::QgaCommand>(&self, command: C) -> Result<C::Ok, AgentError> {
        let arguments = serde_json::to_value(&command)
            .map_err(|e| AgentError::Invalid(format!("cannot encode {}: {e}", C::NAME)))?;
        let started = Instant::now();
        let reply = self.call(C::NAME, Some(arguments)).await;
        virtplane_common::metrics::observe_guest_agent_call(
            C::NAME,
            crate::metrics::agent_outcome(&reply),
            started.elapsed(),
        );
        let reply = reply?;
        serde_json::from_value(reply).map_err(|e| {
            AgentError::Protocol(format!(
                "the reply to {} does not match qapi's schema: {e}",
                C::NAME
            ))
        })
    }

    /// Raw passthrough for `qemu-agent-command`: takes `{"execute": …, "arguments": …}` and
    /// returns the `return` value as the agent sent it, so commands qapi does not know (a
    /// site's own agent extensions) work too.
    pub async fn execute_raw(&self, command: Value) -> Result<Value, AgentError> {
        let (name, arguments) = wire::split_raw(command)?;
        let started = Instant::now();
        let reply = self.call(&name, arguments).await;
        // One label for every raw command: their names are the caller's, not a fixed set.
        virtplane_common::metrics::observe_guest_agent_call(
            "passthrough",
            crate::metrics::agent_outcome(&reply),
            started.elapsed(),
        );
        reply
    }

    /// One exchange, all within the timeout: waiting for the previous call, connecting and
    /// syncing when no connection is open, sending, reading the reply.
    async fn call(&self, name: &str, arguments: Option<Value>) -> Result<Value, AgentError> {
        let deadline = Instant::now() + self.timeout;
        // Waiting behind another call is not the agent failing to answer: told apart, so a
        // slow call (fstrim, a long passthrough) does not mark a healthy agent hung.
        let Ok(mut slot) = tokio::time::timeout_at(deadline, self.shared.conn.lock()).await else {
            return Err(AgentError::Busy {
                command: name.to_owned(),
                after: self.timeout,
            });
        };
        let exchange = async {
            let mut conn = match slot.take() {
                Some(conn) => conn,
                None => Connection::open(&self.shared.socket, &self.shared.discarded).await?,
            };
            let result = conn.call(name, arguments).await;
            // An error reply leaves the stream in step; anything else may not have.
            if matches!(result, Ok(_) | Err(AgentError::Agent { .. })) {
                *slot = Some(conn);
            }
            result
        };
        tokio::time::timeout_at(deadline, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(AgentError::NotResponding {
                    command: name.to_owned(),
                    after: self.timeout,
                })
            })
    }
}
