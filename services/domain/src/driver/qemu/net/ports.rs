//! Ports on the network service's virtual networks (libvirt's virNetworkPort).
//!
//! An `<interface type='network'>` asks the network service for a port on `<source
//! network>` before its tap is made: the port says which bridge the tap joins, and the
//! network service counts it (a network with ports in use is not torn down under a VM, and
//! `net-port-list` shows who uses it). The live definition records the answer as libvirt
//! does, `<source network='default' portid='…' bridge='virbr0'/>`, so after a service
//! restart the domain service still knows which ports its VMs hold and deletes them when the
//! VMs end. The port calls go to the network service over gRPC ([`NetworkPorts`] is the
//! seam, so the host-side logic is testable without one).

use std::fmt::Debug;

use super::error::NetError;
use crate::xml::{DomainDef, Interface};

/// A port the network service created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub uuid: String,
    /// The Linux bridge of the network, which the interface's tap joins.
    pub bridge: String,
}

/// Who a port is for: the domain, by name and UUID (libvirt's `<owner>`).
#[derive(Debug, Clone, Copy)]
pub struct PortOwner<'a> {
    pub name: &'a str,
    pub uuid: &'a str,
}

/// The network service's port calls, each bounded by a timeout.
#[tonic::async_trait]
pub trait NetworkPorts: Send + Sync + Debug + 'static {
    /// virNetworkPortCreateXML: a port on `network` for the interface with `mac`.
    async fn create(
        &self,
        network: &str,
        owner: PortOwner<'_>,
        mac: &str,
    ) -> Result<Port, NetError>;

    /// virNetworkPortDelete. A port (or network) that no longer exists is not an error:
    /// the goal, no port, is reached.
    async fn delete(&self, network: &str, port: &str) -> Result<(), NetError>;
}

/// A port a VM holds, as named in its live definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPort {
    pub network: String,
    pub uuid: String,
}

/// The network and port of one `<interface type='network'>` that has a port.
pub fn held_port(nic: &Interface) -> Option<HeldPort> {
    if nic.iface_type != "network" {
        return None;
    }
    let source = nic.source.as_ref()?;
    Some(HeldPort {
        network: source.network.clone()?,
        uuid: source.portid.clone()?,
    })
}

/// Every port the live definition `def` holds.
pub fn held_ports(def: &DomainDef) -> Vec<HeldPort> {
    def.devices
        .interfaces
        .iter()
        .filter_map(held_port)
        .collect()
}

/// The network an `<interface type='network'>` names (`index` for messages).
pub fn network_of(nic: &Interface, index: usize) -> Result<&str, NetError> {
    nic.source
        .as_ref()
        .and_then(|s| s.network.as_deref())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| NetError::Invalid {
            what: format!("<interface type='network'> #{}", index + 1),
            why: "needs <source network='…'/>: the virtual network it joins".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(nics: &str) -> DomainDef {
        crate::xml::parse_domain(&format!(
            "<domain type='qemu'><name>t</name><memory>131072</memory>\
             <os><type>hvm</type></os><devices>{nics}</devices></domain>"
        ))
        .unwrap()
    }

    #[test]
    fn held_ports_are_read_from_the_live_definition() {
        let live = def("<interface type='network'><source network='default' \
             portid='7b1c7a30-5c1e-4a52-9b8a-0d5d0f0e9a11' bridge='virbr0'/></interface>\
             <interface type='network'><source network='other'/></interface>\
             <interface type='bridge'><source bridge='br0'/></interface>");
        assert_eq!(
            held_ports(&live),
            vec![HeldPort {
                network: "default".into(),
                uuid: "7b1c7a30-5c1e-4a52-9b8a-0d5d0f0e9a11".into(),
            }]
        );
    }

    /// A network service that hands out ports on `default` and knows no other network.
    #[derive(Debug, Default)]
    struct FakeNetworks {
        created: std::sync::Mutex<Vec<String>>,
        deleted: std::sync::Mutex<Vec<String>>,
    }

    #[tonic::async_trait]
    impl NetworkPorts for FakeNetworks {
        async fn create(
            &self,
            network: &str,
            owner: PortOwner<'_>,
            mac: &str,
        ) -> Result<Port, NetError> {
            if network != "default" {
                return Err(NetError::Port {
                    network: network.into(),
                    message: format!("network '{network}' not found"),
                    kind: super::super::error::PortErrorKind::Refused,
                });
            }
            let mut created = self.created.lock().unwrap();
            let uuid = format!("00000000-0000-4000-8000-{:012}", created.len());
            created.push(format!("{}/{mac}", owner.name));
            Ok(Port {
                uuid,
                bridge: "virbr9".into(),
            })
        }

        async fn delete(&self, network: &str, port: &str) -> Result<(), NetError> {
            self.deleted
                .lock()
                .unwrap()
                .push(format!("{network}/{port}"));
            Ok(())
        }
    }

    #[tokio::test]
    async fn network_interfaces_need_the_network_service() {
        let d = std::sync::Arc::new(def(
            "<interface type='network'><source network='default'/></interface>",
        ));
        let error = super::super::HostNet::default()
            .plug(d, 1)
            .await
            .unwrap_err();
        assert!(matches!(error, NetError::NoNetworkService), "{error:?}");
        assert!(error.to_string().contains("--network-service"), "{error}");
    }

    #[tokio::test]
    async fn a_refused_port_undoes_the_ports_made_before_it() {
        let fake = std::sync::Arc::new(FakeNetworks::default());
        let net = super::super::HostNet::with_ports(fake.clone());
        let d = std::sync::Arc::new(def(
            "<interface type='network'><mac address='52:54:00:00:00:01'/>\
             <source network='default'/></interface>\
             <interface type='network'><source network='missing'/></interface>",
        ));
        let error = net.plug(d, 1).await.unwrap_err();
        assert_eq!(error.to_string(), "network 'missing' not found");
        assert_eq!(*fake.created.lock().unwrap(), vec!["t/52:54:00:00:00:01"]);
        assert_eq!(
            *fake.deleted.lock().unwrap(),
            vec!["default/00000000-0000-4000-8000-000000000000"]
        );
    }

    #[test]
    fn a_network_interface_must_name_its_network() {
        let d = def("<interface type='network'/>");
        let error = network_of(&d.devices.interfaces[0], 0).unwrap_err();
        assert!(
            error.to_string().contains("needs <source network"),
            "{error}"
        );
        let d = def("<interface type='network'><source network='default'/></interface>");
        assert_eq!(network_of(&d.devices.interfaces[0], 0).unwrap(), "default");
    }
}
