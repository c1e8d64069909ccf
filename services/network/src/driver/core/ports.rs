//! Network ports (libvirt's virNetworkPort): a guest NIC's attachment to an active network.
//! The network chooses the plug (its bridge); the domain service plugs the NIC's tap into
//! it. Ports live with the active network: stopping or restarting it deletes them, as
//! libvirt's networkDestroy and networkStartNetwork do.

use std::sync::Arc;

use super::{Core, Outcome};
use crate::error::{NetworkError, Result};
use crate::model::NetworkRef;
use crate::xml::{ForwardMode, NetworkDef, PortDef, format_port, parse_port};

/// Fills in the plug of `port` for the network `def`, as libvirt's networkAllocatePort: a
/// bridge the network makes (`type='network'`), or the host bridge of a `bridge` network.
fn plug(def: &NetworkDef, port: &mut PortDef, driver: &'static str) -> Result<()> {
    let bridge = def.bridge_name().map(str::to_owned);
    let plug_type = match (def.has_own_bridge(), def.mode(), &bridge) {
        (true, _, Some(_)) => "network",
        (false, Some(ForwardMode::Bridge), Some(_)) => "bridge",
        _ => {
            return Err(NetworkError::Unsupported {
                driver,
                what: format!(
                    "ports on network '{}' (forward mode '{}'): only networks with a bridge \
                     have ports yet",
                    def.name,
                    def.forward_mode()
                ),
            });
        }
    };
    port.plug_type = Some(plug_type.to_owned());
    port.bridge = bridge;
    port.mac_table_manager = def
        .bridge
        .as_ref()
        .and_then(|b| b.mac_table_manager.clone());
    Ok(())
}

impl Core {
    pub(super) async fn create_network_port(
        &self,
        network: &NetworkRef,
        mut port: PortDef,
    ) -> Result<PortDef> {
        let locked = self.begin(network).await?;
        let old = &locked.old;
        if !old.active {
            return Err(NetworkError::not_active(old.name()));
        }
        plug(&old.def, &mut port, self.driver())?;
        // Formatted and parsed back: what is stored is exactly what a restart reads.
        let port = parse_port(&format_port(&port))?;
        if old.ports.contains_key(&port.uuid) {
            return Err(NetworkError::PortExists(port.uuid));
        }
        let mut next = (**old).clone();
        let mut ports = (*old.ports).clone();
        ports.insert(port.uuid.clone(), Arc::new(port.clone()));
        next.ports = Arc::new(ports);
        self.commit(&locked.object, old, Outcome::Update(next, Vec::new()))
            .await?;
        Ok(port)
    }

    pub(super) async fn delete_network_port(&self, network: &NetworkRef, uuid: &str) -> Result<()> {
        let locked = self.begin(network).await?;
        let old = &locked.old;
        let key = uuid.to_ascii_lowercase();
        if !old.ports.contains_key(&key) {
            return Err(NetworkError::PortNotFound(uuid.to_owned()));
        }
        let mut next = (**old).clone();
        let mut ports = (*old.ports).clone();
        ports.remove(&key);
        next.ports = Arc::new(ports);
        self.commit(&locked.object, old, Outcome::Update(next, Vec::new()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(xml: &str) -> NetworkDef {
        crate::xml::parse_network(xml).unwrap()
    }

    fn port() -> PortDef {
        PortDef {
            uuid: "7b1c7a30-5c1e-4a52-9b8a-0d5d0f0e9a11".into(),
            owner_name: "vm".into(),
            owner_uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f".into(),
            mac: "52:54:00:00:00:01".into(),
            ..Default::default()
        }
    }

    #[test]
    fn ports_plug_into_the_network_bridge() {
        let mut p = port();
        let nat = net("<network><name>n</name><bridge name='virbr3'/><forward/>\
             <ip address='10.0.3.1' prefix='24'/></network>");
        plug(&nat, &mut p, "test").unwrap();
        assert_eq!(p.plug_type.as_deref(), Some("network"));
        assert_eq!(p.bridge.as_deref(), Some("virbr3"));
        let host =
            net("<network><name>h</name><forward mode='bridge'/><bridge name='br0'/></network>");
        plug(&host, &mut p, "test").unwrap();
        assert_eq!(p.plug_type.as_deref(), Some("bridge"));
        assert_eq!(p.bridge.as_deref(), Some("br0"));
        let direct = net(
            "<network><name>d</name><forward mode='vepa'><interface dev='eth0'/></forward>\
             </network>",
        );
        let error = plug(&direct, &mut p, "test").unwrap_err();
        assert!(error.to_string().contains("forward mode 'vepa'"), "{error}");
    }
}
