//! libvirt-format network XML (`virNetworkDef`): parse, validate, format, the defaults the
//! driver applies at define, `net-update` on the model, and network port XML.
//!
//! Built on the shared lossless layer (`virtplane-xml`), like domain XML: the text is read
//! into a generic tree under the safety rules for untrusted input (size bound here, no
//! DOCTYPE or entities, bounded depth), then mapped onto typed structs; whatever they do
//! not model (routes, port groups, bandwidth, vlan, `dnsmasq:options`, …) is kept in an
//! [`Extra`] next to them and written back, anchored after the known sibling it followed,
//! so nothing a user wrote is silently lost. Formatting follows libvirt's layout and
//! defaults (`<bridge stp='on' delay='0'/>`, `<forward dev>` mirrored as `<interface>`), so
//! `net-dumpxml` looks like libvirt's.

mod addr;
mod dns;
mod forward;
mod helpers;
mod ip;
mod network;
mod port;
mod update;
mod validate;

#[cfg(test)]
mod tests;

use std::net::IpAddr;

pub use addr::{broadcast, in_subnet, network_address, prefix_netmask, ptr_domain, range_size};
pub use dns::{DnsDef, DnsForwarder, DnsHost, DnsSrv, DnsTxt};
pub use forward::{ForwardDef, ForwardInterface, ForwardMode, NatDef};
pub use ip::{Bootp, DhcpDef, DhcpHost, DhcpRange, IpDef, Lease, LeaseUnit};
pub use network::{BridgeDef, NetDomain, NetworkDef};
pub use port::{MAX_PORT_XML_BYTES, PortDef, format_port, parse_port};
pub use update::{UpdateCommand, UpdateError, UpdateSection, apply_update};
pub use validate::{MAX_IFNAME, check_ifname};
pub use virtplane_xml::{Element, Extra, Node, XmlError};

/// Largest network document accepted, in bytes: room for thousands of static DHCP and
/// DNS hosts, small enough that a hostile upload costs little.
pub const MAX_NETWORK_XML_BYTES: usize = 4 * 1024 * 1024;

/// libvirt's bridge name template, and how many numbers it tries (`MAX_BRIDGE_ID`).
const BRIDGE_TEMPLATE: &str = "virbr%d";
const MAX_BRIDGE_ID: u32 = 256;

/// Parses and validates a network definition.
pub fn parse_network(xml: &str) -> Result<NetworkDef, XmlError> {
    if xml.len() > MAX_NETWORK_XML_BYTES {
        return Err(XmlError::TooLarge {
            what: "network",
            size: xml.len(),
            limit: MAX_NETWORK_XML_BYTES,
        });
    }
    let root = virtplane_xml::read_document(xml)?;
    let def = NetworkDef::from_root(&root)?;
    def.validate()?;
    Ok(def)
}

/// Formats a definition in libvirt's layout (what `net-dumpxml` prints).
pub fn format_network(def: &NetworkDef) -> String {
    def.to_xml()
}

/// Gives a network whose bridge the driver makes (isolated, nat, route, open) a bridge
/// name when it has none or only a `%d` template (`br%d`), as libvirt's
/// `networkFindUnusedBridgeName`: the first of `virbr0`, `virbr1`, … (or the template's
/// numbers) up to 256 for which `taken` says no. `taken` should cover other networks'
/// bridges and the host's existing interfaces. A name given in full is left alone (the
/// driver checks it is free); when every number is taken the name stays unassigned and
/// [`NetworkDef::bridge_name`] remains `None`.
pub fn assign_bridge_name(def: &mut NetworkDef, taken: &dyn Fn(&str) -> bool) {
    if !def.has_own_bridge() {
        return;
    }
    let bridge = def.bridge.get_or_insert_with(BridgeDef::default);
    let template = match bridge.name.as_deref() {
        Some(n) if n.matches("%d").count() == 1 => n.to_string(),
        Some(_) => return,
        None => BRIDGE_TEMPLATE.to_string(),
    };
    for id in 0..=MAX_BRIDGE_ID {
        let candidate = template.replacen("%d", &id.to_string(), 1);
        if candidate.len() > MAX_IFNAME {
            break;
        }
        if !taken(&candidate) {
            bridge.name = Some(candidate);
            return;
        }
    }
}

/// Gives a network whose bridge the driver makes a random MAC address in QEMU's
/// `52:54:00` range when it has none (libvirt's `virNetworkSetBridgeMacAddr`), so the
/// bridge's address stays the same across restarts.
pub fn assign_mac(def: &mut NetworkDef) {
    if def.mac.is_some() || !def.has_own_bridge() {
        return;
    }
    let b: [u8; 3] = rand::random();
    def.mac = Some(format!("52:54:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2]));
}

impl NetworkDef {
    /// The first subnet of `self` that overlaps one of `other`'s, as
    /// `(ours, theirs)` in `address/prefix` form: two networks on the same host must not
    /// share addresses (libvirt's `networkCheckRouteCollision` checks the host's routes).
    pub fn subnet_overlap(&self, other: &NetworkDef) -> Option<(String, String)> {
        for a in &self.ips {
            for b in &other.ips {
                if addr::subnets_overlap(a.address, a.prefix_len(), b.address, b.prefix_len()) {
                    return Some((
                        format!("{}/{}", a.network_address(), a.prefix_len()),
                        format!("{}/{}", b.network_address(), b.prefix_len()),
                    ));
                }
            }
        }
        None
    }

    /// The `<ip>` whose DHCP service serves `family` (the first with ranges or hosts).
    pub fn dhcp_ip(&self, ipv4: bool) -> Option<&IpDef> {
        self.ips
            .iter()
            .find(|i| i.is_ipv4() == ipv4 && i.has_dhcp())
    }

    /// Whether `ip` is an address of one of the network's subnets.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.ips
            .iter()
            .any(|i| addr::in_subnet(ip, i.address, i.prefix_len()))
    }
}
