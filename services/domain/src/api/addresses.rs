//! `domifaddr` (GetInterfaceAddresses): checks the permission the source needs and that the
//! domain runs, then asks the source. The work is in [`crate::addresses`]; the agent source's
//! (guest-network-get-interfaces) in [`super::guest::convert::agent_addresses`].

use tonic::{Response, Status};
use virtplane_common::identity::Caller;
use virtplane_proto::v1 as pb;

use super::{DomainApi, convert};
use crate::addresses::{self, AddressSource, InterfaceAddresses};
use crate::error::DomainError;

/// Where the host's ARP table is read.
const ARP_TABLE: &str = "/proc/net/arp";

impl DomainApi {
    pub(super) async fn interface_addresses(
        &self,
        caller: &Caller,
        request: pb::GetInterfaceAddressesRequest,
    ) -> Result<Response<pb::GetInterfaceAddressesResponse>, Status> {
        let pb::GetInterfaceAddressesRequest { domain, source } = request;
        let source = pb::InterfaceAddressesSource::try_from(source).map_err(|_| {
            Status::invalid_argument(format!(
                "unknown address source {source} (lease, arp or agent)"
            ))
        })?;
        if source == pb::InterfaceAddressesSource::Agent {
            caller.require("domain:write", "to ask the guest agent")?;
        }
        let domain = convert::domain_ref(domain)?;
        let summary = self.driver.lookup(&domain)?;
        if !summary.state.is_active() {
            return Err(DomainError::OperationInvalid(format!(
                "domain '{}' is not running",
                summary.name
            ))
            .into());
        }
        let def = self.driver.definition(&domain, false)?;
        let found = match source {
            pb::InterfaceAddressesSource::Lease => {
                addresses::from_leases(&def, self.networks.as_ref()).await?
            }
            pb::InterfaceAddressesSource::Arp => {
                let table = std::fs::read_to_string(ARP_TABLE).map_err(|e| {
                    DomainError::OperationFailed(format!("cannot read {ARP_TABLE}: {e}"))
                })?;
                addresses::from_arp(&def, &table)
            }
            pb::InterfaceAddressesSource::Agent => {
                let agent = self.driver.guest_agent(&domain).await?;
                let interfaces = agent
                    .run(qapi::qga::guest_network_get_interfaces {})
                    .await?;
                super::guest::convert::agent_addresses(interfaces)
            }
        };
        Ok(Response::new(pb::GetInterfaceAddressesResponse {
            interfaces: found.into_iter().map(interface).collect(),
        }))
    }
}

fn interface(found: InterfaceAddresses) -> pb::DomainInterfaceAddresses {
    pb::DomainInterfaceAddresses {
        name: found.name,
        mac: found.mac,
        addresses: found
            .addresses
            .into_iter()
            .map(|a| pb::InterfaceAddress {
                r#type: if a.ipv6 {
                    pb::IpAddrType::Ipv6
                } else {
                    pb::IpAddrType::Ipv4
                } as i32,
                address: a.address,
                prefix: a.prefix,
                source: match a.source {
                    AddressSource::Lease => pb::InterfaceAddressesSource::Lease,
                    AddressSource::Agent => pb::InterfaceAddressesSource::Agent,
                    AddressSource::Arp => pb::InterfaceAddressesSource::Arp,
                } as i32,
            })
            .collect(),
    }
}
