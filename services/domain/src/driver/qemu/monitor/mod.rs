//! The QMP monitor client: how the qemu driver talks to a running QEMU.
//!
//! One [`Monitor`] is one QMP connection, shared by every task that needs it (cloning is cheap),
//! with a timeout on every call so a hung QEMU never hangs the service. Typed commands are
//! qapi's generated types (`qapi::qmp::*`), checked against the installed QEMU by the tests in
//! `tests/qemu_monitor.rs`; the transport underneath is our own (see `conn.rs` for why).
//! Events arrive on the [`MonitorEvents`] returned by [`Monitor::connect`].

mod conn;
mod error;
mod event;
mod wire;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixStream;
use tokio::time::Instant;

pub use error::MonitorError;
pub use event::{MonitorEvent, MonitorEvents, QmpEvent};

use conn::Conn;

/// The per-command timeout unless [`Monitor::with_timeout`] says otherwise. Generous, because
/// some commands (e.g. `blockdev-add` on slow storage) legitimately take seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A QMP connection to one QEMU process. Clones share the connection (commands from several
/// tasks run concurrently; replies are matched by id); the connection closes when the last
/// clone is dropped.
#[derive(Debug, Clone)]
pub struct Monitor {
    conn: Arc<Conn>,
    greeting: Arc<qapi::qmp::QMP>,
    timeout: Duration,
}

impl Monitor {
    /// Connects to a QMP unix socket, reads the greeting and leaves capabilities-negotiation
    /// mode (`qmp_capabilities`), all within `timeout`. Commands then use [`DEFAULT_TIMEOUT`].
    pub async fn connect(
        path: &Path,
        timeout: Duration,
    ) -> Result<(Monitor, MonitorEvents), MonitorError> {
        let deadline = Instant::now() + timeout;
        let timed_out = |stage: &str| MonitorError::Timeout {
            command: stage.to_owned(),
            after: timeout,
        };
        let stream = tokio::time::timeout_at(deadline, UnixStream::connect(path))
            .await
            .map_err(|_| timed_out("connect"))?
            .map_err(MonitorError::Connect)?;
        let (read, write) = stream.into_split();
        let mut read = BufReader::new(read);
        let mut line = String::new();
        let n = tokio::time::timeout_at(deadline, read.read_line(&mut line))
            .await
            .map_err(|_| timed_out("the QMP greeting"))?
            .map_err(MonitorError::Connect)?;
        if n == 0 {
            return Err(MonitorError::Disconnected);
        }
        let greeting: qapi::qmp::QapiCapabilities = serde_json::from_str(&line).map_err(|e| {
            MonitorError::Protocol(format!("expected a QMP greeting ({e}): {}", line.trim()))
        })?;
        let (conn, events) = Conn::start(read, write);
        let monitor = Monitor {
            conn: Arc::new(conn),
            greeting: Arc::new(greeting.QMP),
            timeout,
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        monitor
            .with_timeout(remaining)
            .execute(qapi::qmp::qmp_capabilities { enable: None })
            .await?;
        Ok((monitor.with_timeout(DEFAULT_TIMEOUT), events))
    }

    /// A handle on the same connection whose calls time out after `timeout`.
    pub fn with_timeout(&self, timeout: Duration) -> Monitor {
        Monitor {
            timeout,
            ..self.clone()
        }
    }

    /// This handle's per-command timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// QEMU's version as its greeting announced it, e.g. (7, 2, 22).
    pub fn qemu_version(&self) -> (i64, i64, i64) {
        let v = &self.greeting.version.qemu;
        (v.major, v.minor, v.micro)
    }

    /// False once the socket closed (QEMU exited); every call then fails with `Disconnected`.
    pub fn is_connected(&self) -> bool {
        self.conn.is_connected()
    }

    /// Runs one typed command (any `qapi::qmp` command struct) and decodes its reply. A reply
    /// that does not fit qapi's schema (which comes from a newer QEMU) is a `Protocol` error for
    /// this call only; the connection is unaffected.
    pub async fn execute<C: qapi::Command>(&self, command: C) -> Result<C::Ok, MonitorError> {
        let arguments = serde_json::to_value(&command)
            .map_err(|e| MonitorError::Invalid(format!("cannot encode {}: {e}", C::NAME)))?;
        let started = Instant::now();
        let reply = self.conn.call(C::NAME, Some(arguments), self.timeout).await;
        virtplane_common::metrics::observe_qmp_command(
            C::NAME,
            crate::metrics::qmp_outcome(&reply),
            started.elapsed(),
        );
        let reply = reply?;
        serde_json::from_value(reply).map_err(|e| {
            MonitorError::Protocol(format!(
                "the reply to {} does not match qapi's schema: {e}",
                C::NAME
            ))
        })
    }

    /// Raw QMP for `qemu-monitor-command`: takes `{"execute": …, "arguments": …}` and returns
    /// the `return` value as QEMU sent it. A user's `"id"` is ignored (ids route replies).
    pub async fn execute_raw(&self, command: Value) -> Result<Value, MonitorError> {
        let (name, arguments) = wire::split_raw(command)?;
        let started = Instant::now();
        let reply = self.conn.call(&name, arguments, self.timeout).await;
        // One label for every raw command: their names are the caller's, not a fixed set.
        virtplane_common::metrics::observe_qmp_command(
            "passthrough",
            crate::metrics::qmp_outcome(&reply),
            started.elapsed(),
        );
        reply
    }

    /// Runs an HMP command line through `human-monitor-command` and returns its text output.
    pub async fn human(&self, command_line: &str) -> Result<String, MonitorError> {
        self.execute(qapi::qmp::human_monitor_command {
            command_line: command_line.to_owned(),
            cpu_index: None,
        })
        .await
    }
}
