//! The service's own vocabulary (proto-free): how a network is named, what lists, info,
//! leases and events carry, and the flags of `net-update`. Definitions themselves are
//! `crate::xml::NetworkDef` and ports `crate::xml::PortDef`; `api/convert.rs` maps all of
//! these to and from protobuf.

use std::net::IpAddr;
use std::time::SystemTime;

use crate::xml::{UpdateCommand, UpdateSection};

/// A network named by name or UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkRef {
    Name(String),
    Uuid(String),
}

impl std::fmt::Display for NetworkRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Name(name) => write!(f, "name '{name}'"),
            Self::Uuid(uuid) => write!(f, "uuid '{uuid}'"),
        }
    }
}

/// What `net-list` and lookups return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub name: String,
    pub uuid: String,
    pub active: bool,
    pub persistent: bool,
    pub autostart: bool,
    /// The Linux bridge (of the live definition while active).
    pub bridge: Option<String>,
}

/// What `net-info` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub summary: Summary,
    /// Host conflicts the driver sees, one sentence each.
    pub warnings: Vec<String>,
}

/// virConnectListAllNetworks filter groups: within a group flags are OR'ed, groups AND'ed,
/// an empty group does not filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub active: bool,
    pub inactive: bool,
    pub persistent: bool,
    pub transient: bool,
    pub autostart: bool,
    pub no_autostart: bool,
}

impl ListFilter {
    pub fn matches(&self, summary: &Summary) -> bool {
        let group = |a: bool, b: bool, is_a: bool| (!a && !b) || (a && is_a) || (b && !is_a);
        group(self.active, self.inactive, summary.active)
            && group(self.persistent, self.transient, summary.persistent)
            && group(self.autostart, self.no_autostart, summary.autostart)
    }
}

/// Which of a network's definitions a change affects (virNetworkUpdateFlags); neither means
/// "current": live if the network is active, else config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Impact {
    pub live: bool,
    pub config: bool,
}

/// One `net-update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateSpec {
    pub command: UpdateCommand,
    pub section: UpdateSection,
    /// The `<ip>` by position for `ip-dhcp-*`; `None` is libvirt's -1.
    pub parent_index: Option<usize>,
    pub xml: String,
    pub impact: Impact,
}

/// What a `net-update` changed, for virsh's message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Updated {
    pub live: bool,
    pub config: bool,
}

/// One DHCP lease (virNetworkDHCPLease).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The bridge it was given out on.
    pub iface: String,
    pub expiry: SystemTime,
    pub ip: IpAddr,
    pub prefix: u8,
    pub mac: Option<String>,
    /// DHCPv6 identity association id.
    pub iaid: Option<String>,
    pub hostname: Option<String>,
    /// DHCPv4 client id or DHCPv6 DUID.
    pub client_id: Option<String>,
}

/// virNetworkEventLifecycleType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Defined,
    Undefined,
    Started,
    Stopped,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Defined => "defined",
            Self::Undefined => "undefined",
            Self::Started => "started",
            Self::Stopped => "stopped",
        }
    }
}

/// One event on the service's watch stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub sequence: u64,
    pub time: SystemTime,
    pub name: String,
    pub uuid: String,
    pub lifecycle: Lifecycle,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(active: bool, persistent: bool, autostart: bool) -> Summary {
        Summary {
            name: "n".into(),
            uuid: "u".into(),
            active,
            persistent,
            autostart,
            bridge: None,
        }
    }

    #[test]
    fn filter_groups_are_ored_inside_and_anded_across() {
        let all = ListFilter::default();
        let active = ListFilter {
            active: true,
            ..Default::default()
        };
        let both = ListFilter {
            active: true,
            inactive: true,
            ..Default::default()
        };
        let inactive_autostart = ListFilter {
            inactive: true,
            autostart: true,
            ..Default::default()
        };
        let transient = ListFilter {
            transient: true,
            ..Default::default()
        };
        let running = summary(true, true, true);
        let stopped = summary(false, true, true);
        let stopped_manual = summary(false, true, false);
        let temp = summary(true, false, false);
        assert!(all.matches(&running) && all.matches(&stopped));
        assert!(active.matches(&running) && !active.matches(&stopped));
        assert!(both.matches(&running) && both.matches(&stopped));
        assert!(inactive_autostart.matches(&stopped));
        assert!(!inactive_autostart.matches(&stopped_manual));
        assert!(!inactive_autostart.matches(&running));
        assert!(transient.matches(&temp) && !transient.matches(&running));
    }
}
