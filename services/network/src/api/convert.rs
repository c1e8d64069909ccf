//! proto ↔ model, in one place. Request conversions destructure every field so a new proto
//! field cannot be silently ignored.

use std::time::{SystemTime, UNIX_EPOCH};

use virtplane_proto::v1 as pb;

use crate::error::{NetworkError, Result};
use crate::model::{
    Event, Impact, Info, Lease, Lifecycle, ListFilter, NetworkRef, Summary, UpdateSpec,
};
use crate::xml::{PortDef, UpdateCommand, UpdateSection, format_port};

/// The network a request names; missing or empty is INVALID_ARGUMENT.
pub fn network_ref(reference: Option<pb::NetworkRef>) -> Result<NetworkRef> {
    match reference.and_then(|r| r.id) {
        Some(pb::network_ref::Id::Name(name)) if !name.is_empty() => Ok(NetworkRef::Name(name)),
        Some(pb::network_ref::Id::Uuid(uuid)) if !uuid.is_empty() => {
            let parsed = uuid::Uuid::parse_str(&uuid)
                .map_err(|_| NetworkError::InvalidArg(format!("'{uuid}' is not a valid UUID")))?;
            Ok(NetworkRef::Uuid(parsed.hyphenated().to_string()))
        }
        _ => Err(NetworkError::InvalidArg(
            "request names no network: set network.name or network.uuid".into(),
        )),
    }
}

/// A port UUID argument, canonical; INVALID_ARGUMENT when it is not one.
pub fn port_uuid(text: &str) -> Result<String> {
    uuid::Uuid::parse_str(text)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| NetworkError::InvalidArg(format!("'{text}' is not a valid port UUID")))
}

pub fn list_filter(request: &pb::ListNetworksRequest) -> ListFilter {
    let pb::ListNetworksRequest {
        active,
        inactive,
        persistent,
        transient,
        autostart,
        no_autostart,
    } = *request;
    ListFilter {
        active,
        inactive,
        persistent,
        transient,
        autostart,
        no_autostart,
    }
}

pub fn summary(summary: Summary) -> pb::NetworkSummary {
    let Summary {
        name,
        uuid,
        active,
        persistent,
        autostart,
        bridge,
    } = summary;
    pb::NetworkSummary {
        name,
        uuid,
        active,
        persistent,
        autostart,
        bridge: bridge.unwrap_or_default(),
        // Fleet fields: the gateway fills them in.
        node: String::new(),
        node_unreachable: false,
    }
}

pub fn info(info: Info) -> pb::GetNetworkInfoResponse {
    let Info {
        summary: s,
        warnings,
    } = info;
    pb::GetNetworkInfoResponse {
        network: Some(summary(s)),
        warnings,
    }
}

fn command(value: i32) -> Result<UpdateCommand> {
    use pb::NetworkUpdateCommand as C;
    match C::try_from(value) {
        Ok(C::Modify) => Ok(UpdateCommand::Modify),
        Ok(C::Delete) => Ok(UpdateCommand::Delete),
        Ok(C::AddLast) => Ok(UpdateCommand::AddLast),
        Ok(C::AddFirst) => Ok(UpdateCommand::AddFirst),
        Ok(C::Unspecified) | Err(_) => Err(NetworkError::InvalidArg(format!(
            "unknown update command {value}: use modify, delete, add-last or add-first"
        ))),
    }
}

fn section(value: i32) -> Result<UpdateSection> {
    use pb::NetworkUpdateSection as S;
    Ok(match S::try_from(value) {
        Ok(S::Bridge) => UpdateSection::Bridge,
        Ok(S::Domain) => UpdateSection::Domain,
        Ok(S::Ip) => UpdateSection::Ip,
        Ok(S::IpDhcpHost) => UpdateSection::IpDhcpHost,
        Ok(S::IpDhcpRange) => UpdateSection::IpDhcpRange,
        Ok(S::Forward) => UpdateSection::Forward,
        Ok(S::ForwardInterface) => UpdateSection::ForwardInterface,
        Ok(S::ForwardPf) => UpdateSection::ForwardPf,
        Ok(S::Portgroup) => UpdateSection::Portgroup,
        Ok(S::DnsHost) => UpdateSection::DnsHost,
        Ok(S::DnsTxt) => UpdateSection::DnsTxt,
        Ok(S::DnsSrv) => UpdateSection::DnsSrv,
        Ok(S::Unspecified) | Err(_) => {
            return Err(NetworkError::InvalidArg(format!(
                "unknown update section {value}"
            )));
        }
    })
}

/// The `net-update` a request asks for (the network is converted by the caller).
pub fn update_spec(
    command_value: i32,
    section_value: i32,
    parent_index: Option<u32>,
    xml: String,
    flags: Option<pb::ModifyFlags>,
) -> Result<UpdateSpec> {
    let pb::ModifyFlags { live, config } = flags.unwrap_or_default();
    let parent_index = parent_index
        .map(|i| {
            usize::try_from(i)
                .map_err(|_| NetworkError::InvalidArg(format!("parent index {i} is too large")))
        })
        .transpose()?;
    Ok(UpdateSpec {
        command: command(command_value)?,
        section: section(section_value)?,
        parent_index,
        xml,
        impact: Impact { live, config },
    })
}

pub fn timestamp(time: SystemTime) -> prost_types::Timestamp {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
    }
}

pub fn lease(lease: Lease) -> pb::DhcpLease {
    let Lease {
        iface,
        expiry,
        ip,
        prefix,
        mac,
        iaid,
        hostname,
        client_id,
    } = lease;
    let kind = if ip.is_ipv4() {
        pb::IpAddrType::Ipv4
    } else {
        pb::IpAddrType::Ipv6
    };
    pb::DhcpLease {
        iface,
        expiry_time: Some(timestamp(expiry)),
        r#type: kind.into(),
        mac: mac.unwrap_or_default(),
        iaid: iaid.unwrap_or_default(),
        ip_address: ip.to_string(),
        prefix: prefix.into(),
        hostname: hostname.unwrap_or_default(),
        client_id: client_id.unwrap_or_default(),
    }
}

pub fn port(network: &str, port: &PortDef) -> pb::NetworkPort {
    pb::NetworkPort {
        uuid: port.uuid.clone(),
        network: network.to_owned(),
        owner_name: port.owner_name.clone(),
        owner_uuid: port.owner_uuid.clone(),
        mac: port.mac.clone(),
        bridge: port.bridge.clone().unwrap_or_default(),
        xml: format_port(port),
    }
}

fn lifecycle(kind: Lifecycle) -> pb::NetworkLifecycleType {
    match kind {
        Lifecycle::Defined => pb::NetworkLifecycleType::Defined,
        Lifecycle::Undefined => pb::NetworkLifecycleType::Undefined,
        Lifecycle::Started => pb::NetworkLifecycleType::Started,
        Lifecycle::Stopped => pb::NetworkLifecycleType::Stopped,
    }
}

pub fn event(event: Event) -> pb::NetworkEvent {
    let Event {
        sequence,
        time,
        name,
        uuid,
        lifecycle: kind,
    } = event;
    pb::NetworkEvent {
        sequence,
        time: Some(timestamp(time)),
        network_name: name,
        network_uuid: uuid,
        body: Some(pb::network_event::Body::Lifecycle(
            pb::NetworkLifecycleEvent {
                r#type: lifecycle(kind).into(),
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_refs_are_validated_and_uuids_canonical() {
        let by_name = pb::NetworkRef {
            id: Some(pb::network_ref::Id::Name("default".into())),
        };
        assert_eq!(
            network_ref(Some(by_name)).unwrap(),
            NetworkRef::Name("default".into())
        );
        let by_uuid = pb::NetworkRef {
            id: Some(pb::network_ref::Id::Uuid(
                "DD8FE8846C02601E7551CCA97DF1C5DF".into(),
            )),
        };
        assert_eq!(
            network_ref(Some(by_uuid)).unwrap(),
            NetworkRef::Uuid("dd8fe884-6c02-601e-7551-cca97df1c5df".into())
        );
        assert!(network_ref(None).is_err());
        let bad = pb::NetworkRef {
            id: Some(pb::network_ref::Id::Uuid("nope".into())),
        };
        assert!(
            network_ref(Some(bad))
                .unwrap_err()
                .to_string()
                .contains("nope")
        );
    }

    #[test]
    fn update_requests_need_a_known_command_and_section() {
        let ok = update_spec(
            pb::NetworkUpdateCommand::AddLast as i32,
            pb::NetworkUpdateSection::IpDhcpHost as i32,
            Some(0),
            "<host/>".into(),
            Some(pb::ModifyFlags {
                live: true,
                config: false,
            }),
        )
        .unwrap();
        assert_eq!(ok.command, UpdateCommand::AddLast);
        assert_eq!(ok.section, UpdateSection::IpDhcpHost);
        assert_eq!(ok.parent_index, Some(0));
        assert!(ok.impact.live && !ok.impact.config);
        assert!(update_spec(0, 4, None, String::new(), None).is_err());
        assert!(update_spec(1, 0, None, String::new(), None).is_err());
        assert!(update_spec(1, 99, None, String::new(), None).is_err());
    }

    #[test]
    fn leases_carry_their_family() {
        let v6 = lease(Lease {
            iface: "virbr0".into(),
            expiry: UNIX_EPOCH + std::time::Duration::from_secs(100),
            ip: "fd00::5".parse().unwrap(),
            prefix: 64,
            mac: None,
            iaid: Some("1".into()),
            hostname: None,
            client_id: Some("00:01".into()),
        });
        assert_eq!(v6.r#type, pb::IpAddrType::Ipv6 as i32);
        assert_eq!(v6.expiry_time.unwrap().seconds, 100);
        assert_eq!(v6.ip_address, "fd00::5");
    }
}
