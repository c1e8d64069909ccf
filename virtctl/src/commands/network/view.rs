//! The typed data the `net-*` commands print with `-o json|yaml`, mapped from the proto
//! messages in this one place (as `crate::view` does for domains).

use serde::Serialize;
use virtplane_proto::v1 as pb;

/// One network, as `net-list`, `net-info` and the lifecycle commands report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    pub name: String,
    pub uuid: String,
    pub active: bool,
    pub persistent: bool,
    pub autostart: bool,
    /// `null` when the network has no bridge.
    pub bridge: Option<String>,
    /// The node it lives on, when the gateway serves many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Its node did not answer: the rest is the last known state.
    #[serde(skip_serializing_if = "crate::fleet_view::is_false")]
    pub node_unreachable: bool,
}

impl Network {
    pub fn from_proto(n: &pb::NetworkSummary) -> Self {
        let pb::NetworkSummary {
            name,
            uuid,
            active,
            persistent,
            autostart,
            bridge,
            node,
            node_unreachable,
        } = n;
        Network {
            name: name.clone(),
            uuid: uuid.clone(),
            active: *active,
            persistent: *persistent,
            autostart: *autostart,
            bridge: (!bridge.is_empty()).then(|| bridge.clone()),
            node: crate::fleet_view::node_of(node),
            node_unreachable: *node_unreachable,
        }
    }
}

/// What `net-info` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkInfo {
    #[serde(flatten)]
    pub network: Network,
    pub warnings: Vec<String>,
}

impl NetworkInfo {
    pub fn from_proto(r: &pb::GetNetworkInfoResponse) -> Self {
        NetworkInfo {
            network: Network::from_proto(&r.network.clone().unwrap_or_default()),
            warnings: r.warnings.clone(),
        }
    }
}

/// One DHCP lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub iface: String,
    /// Seconds since the epoch.
    pub expiry_time: i64,
    /// `ipv4` or `ipv6`.
    pub protocol: &'static str,
    pub mac: Option<String>,
    pub iaid: Option<String>,
    pub ip_address: String,
    pub prefix: u32,
    pub hostname: Option<String>,
    pub client_id: Option<String>,
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

impl Lease {
    pub fn from_proto(l: &pb::DhcpLease) -> Self {
        let pb::DhcpLease {
            iface,
            expiry_time,
            r#type,
            mac,
            iaid,
            ip_address,
            prefix,
            hostname,
            client_id,
        } = l;
        let protocol = match pb::IpAddrType::try_from(*r#type) {
            Ok(pb::IpAddrType::Ipv6) => "ipv6",
            _ => "ipv4",
        };
        Lease {
            iface: iface.clone(),
            expiry_time: expiry_time.map_or(0, |t| t.seconds),
            protocol,
            mac: non_empty(mac),
            iaid: non_empty(iaid),
            ip_address: ip_address.clone(),
            prefix: *prefix,
            hostname: non_empty(hostname),
            client_id: non_empty(client_id),
        }
    }
}

/// One network port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    pub uuid: String,
    pub network: String,
    pub owner_name: String,
    pub owner_uuid: String,
    pub mac: String,
    pub bridge: Option<String>,
}

impl Port {
    pub fn from_proto(p: &pb::NetworkPort) -> Self {
        Port {
            uuid: p.uuid.clone(),
            network: p.network.clone(),
            owner_name: p.owner_name.clone(),
            owner_uuid: p.owner_uuid.clone(),
            mac: p.mac.clone(),
            bridge: non_empty(&p.bridge),
        }
    }
}

/// The result of a command that only acts, for `-o json|yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkAction {
    pub network: String,
    pub result: &'static str,
}

/// What `net-update` changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Updated {
    pub network: String,
    pub live: bool,
    pub config: bool,
}

/// One network event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkEvent {
    pub sequence: u64,
    /// RFC 3339.
    pub time: Option<String>,
    pub network: String,
    pub uuid: String,
    /// `lifecycle`.
    pub event: &'static str,
    /// `defined`, `undefined`, `started`, `stopped` (or `unknown`).
    pub kind: &'static str,
}

impl NetworkEvent {
    pub fn from_proto(e: &pb::NetworkEvent) -> Self {
        let kind = match &e.body {
            Some(pb::network_event::Body::Lifecycle(l)) => {
                use pb::NetworkLifecycleType as T;
                match T::try_from(l.r#type) {
                    Ok(T::Defined) => "defined",
                    Ok(T::Undefined) => "undefined",
                    Ok(T::Started) => "started",
                    Ok(T::Stopped) => "stopped",
                    _ => "unknown",
                }
            }
            None => "unknown",
        };
        let time = e
            .time
            .as_ref()
            .and_then(crate::view::timestamp_utc)
            .map(|t| t.to_rfc3339());
        NetworkEvent {
            sequence: e.sequence,
            time,
            network: e.network_name.clone(),
            uuid: e.network_uuid.clone(),
            event: "lifecycle",
            kind,
        }
    }

    /// virsh's word (`virshNetworkEventToString`).
    pub fn virsh_word(&self) -> &'static str {
        match self.kind {
            "defined" => "Defined",
            "undefined" => "Undefined",
            "started" => "Started",
            "stopped" => "Stopped",
            _ => "unknown",
        }
    }
}
