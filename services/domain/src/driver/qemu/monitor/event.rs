//! QMP events as the driver sees them: raw (name, data, time), so events that qapi's schema does
//! not know (older or newer QEMUs) still arrive, with typed parsing on demand.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use serde_json::Value;
use tokio::sync::mpsc;

/// One QMP event as QEMU sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct QmpEvent {
    /// The event name, e.g. `STOP`, `SHUTDOWN`, `DEVICE_DELETED`.
    pub name: String,
    /// The event's `data` member (`{}` when QEMU sent none).
    pub data: Value,
    /// When QEMU emitted it (QEMU's clock), if it said.
    pub timestamp: Option<SystemTime>,
}

impl QmpEvent {
    /// The event as qapi's generated type, or `None` if qapi's schema does not know it or its
    /// data does not match (the raw fields are still there for those).
    pub fn typed(&self) -> Option<qapi::qmp::Event> {
        let mut obj = serde_json::Map::new();
        obj.insert("event".into(), Value::String(self.name.clone()));
        obj.insert("data".into(), self.data.clone());
        let (seconds, microseconds) = self
            .timestamp
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or((0, 0), |d| (d.as_secs(), d.subsec_micros()));
        obj.insert(
            "timestamp".into(),
            serde_json::json!({"seconds": seconds, "microseconds": microseconds}),
        );
        serde_json::from_value(Value::Object(obj)).ok()
    }
}

/// What the event stream yields.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorEvent {
    /// An event from QEMU.
    Qmp(QmpEvent),
    /// The socket closed (QEMU exited or crashed). Always the last item; the stream ends after it.
    Disconnected,
}

/// The events of one monitor connection, in arrival order. Buffered without bound so that a
/// slow consumer never stalls command replies; drop it if events are not wanted.
#[derive(Debug)]
pub struct MonitorEvents {
    pub(crate) rx: mpsc::UnboundedReceiver<MonitorEvent>,
}

impl MonitorEvents {
    /// The next event; `None` once the connection is gone and everything was delivered (also
    /// when every [`super::Monitor`] handle was dropped, which closes the connection).
    pub async fn next(&mut self) -> Option<MonitorEvent> {
        self.rx.recv().await
    }
}

impl futures::Stream for MonitorEvents {
    type Item = MonitorEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<MonitorEvent>> {
        self.rx.poll_recv(cx)
    }
}
