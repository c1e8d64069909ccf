//! The domain service's client of the network service (service to service, gRPC): ports
//! for `<interface type='network'>` (libvirt's virNetworkPortCreateXML / Delete, which the
//! qemu driver asks for before it makes a tap) and DHCP leases (for `domifaddr`).
//!
//! The channel connects lazily and reconnects after a failure, so the domain service starts
//! whether or not the network service is up; a call while it is down fails with a message
//! that names its address. Every call is bounded by [`CALL_TIMEOUT`], on top of the
//! connect timeout, so a network service that hangs cannot hang a domain start.

use std::fmt;
use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;
use virtplane_common::client::connect_channel_tls;
use virtplane_common::server::ListenAddr;
use virtplane_common::tls::ClientTls;
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::network_service_client::NetworkServiceClient;

use crate::driver::qemu::net::error::NetError;
use crate::driver::qemu::net::ports::{NetworkPorts, Port, PortOwner};
pub use crate::service_call::CALL_TIMEOUT;
use crate::service_call::{CallErrorKind, Failure, Sibling};

/// A lease as `domifaddr` needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedAddress {
    pub mac: String,
    pub address: String,
    pub prefix: u32,
    pub ipv6: bool,
}

/// The network service at one address.
#[derive(Clone)]
pub struct NetworkService {
    sibling: Sibling,
    client: NetworkServiceClient<Channel>,
}

impl fmt::Debug for NetworkService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkService")
            .field("address", &self.sibling.address.to_string())
            .finish()
    }
}

impl NetworkService {
    /// A client of the network service at `address`; nothing is connected until the first call.
    pub fn new(address: ListenAddr) -> Self {
        Self::with_timeout(address, CALL_TIMEOUT)
    }

    /// As [`NetworkService::new`], over TLS when `tls` is given and the address is TCP.
    pub fn with_tls(address: ListenAddr, tls: Option<&ClientTls>) -> Self {
        Self::connect(address, CALL_TIMEOUT, tls)
    }

    /// As [`NetworkService::new`], with another bound on each call (tests).
    pub fn with_timeout(address: ListenAddr, timeout: Duration) -> Self {
        Self::connect(address, timeout, None)
    }

    fn connect(address: ListenAddr, timeout: Duration, tls: Option<&ClientTls>) -> Self {
        let client = NetworkServiceClient::new(connect_channel_tls(&address, tls));
        Self {
            sibling: Sibling {
                name: "network service",
                address,
                timeout,
            },
            client,
        }
    }

    /// The DHCP leases `network` has given out to `mac` (virNetworkGetDHCPLeases).
    pub async fn leases(&self, network: &str, mac: &str) -> Result<Vec<LeasedAddress>, NetError> {
        let request = pb::GetDhcpLeasesRequest {
            network: Some(network_ref(network)),
            mac: mac.to_owned(),
        };
        let mut client = self.client.clone();
        let response = self
            .sibling
            .bounded(client.get_dhcp_leases(request))
            .await
            .map_err(|f| self.port_error(network, "read the DHCP leases", f))?;
        Ok(response
            .leases
            .into_iter()
            .map(|lease| LeasedAddress {
                ipv6: lease.r#type == pb::IpAddrType::Ipv6 as i32,
                mac: lease.mac,
                address: lease.ip_address,
                prefix: lease.prefix,
            })
            .collect())
    }

    /// A failed call as a [`NetError::Port`] that says what was being done, on which
    /// network, and (when the service could not be reached) at which address.
    fn port_error(&self, network: &str, what: &str, failure: Failure) -> NetError {
        let (kind, message) = self
            .sibling
            .describe(&format!("cannot {what} on network '{network}'"), failure);
        NetError::Port {
            network: network.to_owned(),
            message,
            kind,
        }
    }
}

fn network_ref(name: &str) -> pb::NetworkRef {
    pb::NetworkRef {
        id: Some(pb::network_ref::Id::Name(name.to_owned())),
    }
}

#[tonic::async_trait]
impl NetworkPorts for NetworkService {
    async fn create(
        &self,
        network: &str,
        owner: PortOwner<'_>,
        mac: &str,
    ) -> Result<Port, NetError> {
        let request = pb::CreateNetworkPortRequest {
            network: Some(network_ref(network)),
            owner_name: owner.name.to_owned(),
            owner_uuid: owner.uuid.to_owned(),
            mac: mac.to_owned(),
            xml: String::new(),
        };
        let mut client = self.client.clone();
        let response = self
            .sibling
            .bounded(client.create_port(request))
            .await
            .map_err(|f| self.port_error(network, "create a port", f))?;
        let port = response.port.ok_or_else(|| NetError::Port {
            network: network.to_owned(),
            message: format!(
                "network '{network}': the network service answered a port creation without \
                 the port"
            ),
            kind: CallErrorKind::Failed,
        })?;
        if port.bridge.is_empty() {
            return Err(NetError::Port {
                network: network.to_owned(),
                message: format!(
                    "network '{network}': port {} has no bridge to attach the tap to",
                    port.uuid
                ),
                kind: CallErrorKind::Failed,
            });
        }
        Ok(Port {
            uuid: port.uuid,
            bridge: port.bridge,
        })
    }

    async fn delete(&self, network: &str, port: &str) -> Result<(), NetError> {
        let request = pb::DeleteNetworkPortRequest {
            network: Some(network_ref(network)),
            port_uuid: port.to_owned(),
        };
        let mut client = self.client.clone();
        match self.sibling.bounded(client.delete_port(request)).await {
            Ok(_) => Ok(()),
            // No such port, or no such network any more: the goal (no port) is reached.
            Err(Failure::Status(status)) if status.code() == Code::NotFound => Ok(()),
            Err(failure) => Err(self.port_error(network, "delete a port", failure)),
        }
    }
}
