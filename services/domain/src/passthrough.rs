//! Hypervisor passthrough vocabulary (proto-free): raw monitor events as a driver streams
//! them for `qemu-monitor-event`, and the filter a subscriber gives.

use std::pin::Pin;
use std::time::SystemTime;

use futures::Stream;

use crate::error::Result;
use crate::model::DomainRef;

/// One raw monitor event of one domain, as the hypervisor sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorEventRecord {
    pub domain_name: String,
    pub domain_uuid: String,
    /// The event name, e.g. `STOP`.
    pub event: String,
    /// The event's `data` member (`Null` when the hypervisor sent none).
    pub data: serde_json::Value,
    /// The hypervisor's own timestamp of the event.
    pub time: Option<SystemTime>,
}

/// Which events a subscriber wants (virConnectDomainQemuMonitorEventRegister's arguments).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitorEventFilter {
    /// Only this domain; `None` = every domain, also those started later.
    pub domain: Option<DomainRef>,
    /// Only events with this name; `None` = every event.
    pub event: Option<String>,
    /// Compare `event` case-insensitively.
    pub nocase: bool,
}

impl MonitorEventFilter {
    /// Whether an event named `name` passes the name filter (the domain filter is applied by
    /// choosing which VMs to listen to).
    pub fn wants(&self, name: &str) -> bool {
        match &self.event {
            None => true,
            Some(wanted) if self.nocase => wanted.eq_ignore_ascii_case(name),
            Some(wanted) => wanted == name,
        }
    }
}

/// A driver's raw event stream. It ends with an error when the subscriber fell too far behind
/// and events were lost, so a client never mistakes a gap for silence.
pub type MonitorEventStream = Pin<Box<dyn Stream<Item = Result<MonitorEventRecord>> + Send>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_filter() {
        let all = MonitorEventFilter::default();
        assert!(all.wants("STOP"));
        let stop = MonitorEventFilter {
            event: Some("STOP".into()),
            ..Default::default()
        };
        assert!(stop.wants("STOP"));
        assert!(!stop.wants("stop"));
        assert!(!stop.wants("RESUME"));
        let nocase = MonitorEventFilter {
            event: Some("stop".into()),
            nocase: true,
            ..Default::default()
        };
        assert!(nocase.wants("STOP"));
        assert!(!nocase.wants("STOPPED"));
    }
}
