//! The monitor's one error type: each variant is a different thing the driver does next
//! (retry, report the guest gone, pass QEMU's message on to the user).

use std::io;
use std::time::Duration;

/// Why a monitor call failed.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The QMP socket could not be opened (QEMU not started yet, or gone).
    #[error("cannot connect to the QEMU monitor: {0}")]
    Connect(#[source] io::Error),
    /// QEMU did not answer in time. The connection stays usable: a late reply is dropped.
    #[error("QEMU monitor did not answer {command} within {after:?}")]
    Timeout { command: String, after: Duration },
    /// QEMU refused the command; `class` is QMP's error class (e.g. `CommandNotFound`,
    /// `GenericError`, `DeviceNotFound`) and `desc` its message for a human.
    #[error("QEMU refused the command ({class}): {desc}")]
    Qmp { class: String, desc: String },
    /// The monitor connection is closed: QEMU exited or crashed, or the stream broke.
    #[error("QEMU monitor connection closed (QEMU exited?)")]
    Disconnected,
    /// QEMU said something we could not understand (not JSON, or a reply that does not match
    /// the command's schema — qapi's types come from a newer QEMU than some hosts run).
    #[error("QEMU monitor protocol error: {0}")]
    Protocol(String),
    /// The caller's raw command is malformed; nothing was sent.
    #[error("invalid QMP command: {0}")]
    Invalid(String),
}
