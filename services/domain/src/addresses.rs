//! `domifaddr` (virDomainInterfaceAddresses): the IP addresses of a running domain's
//! interfaces, from the virtual networks' DHCP leases or from the host's ARP table. Derived
//! from the live definition, so it is the same for every driver. Interfaces without an
//! address are left out, as libvirt leaves them out.

use crate::error::DomainError;
use crate::network_service::NetworkService;
use crate::xml::{DomainDef, Interface};

/// Where an address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressSource {
    Lease,
    Agent,
    Arp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpAddress {
    pub ipv6: bool,
    pub address: String,
    /// 0 when the source does not know it (ARP).
    pub prefix: u32,
    pub source: AddressSource,
}

/// One interface and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddresses {
    /// The host-side device (the tap), empty when the definition names none.
    pub name: String,
    pub mac: String,
    pub addresses: Vec<IpAddress>,
}

/// The addresses the DHCP servers of the virtual networks gave to the `<interface
/// type='network'>` devices of `def` (libvirt's lease source looks at no other type).
pub async fn from_leases(
    def: &DomainDef,
    networks: Option<&NetworkService>,
) -> Result<Vec<InterfaceAddresses>, DomainError> {
    let mut found = Vec::new();
    for nic in def
        .devices
        .interfaces
        .iter()
        .filter(|nic| nic.iface_type == "network")
    {
        let (Some(network), Some(mac)) = (network_name(nic), nic.mac.as_deref()) else {
            continue;
        };
        let Some(service) = networks else {
            return Err(DomainError::OperationInvalid(format!(
                "cannot read the DHCP leases of domain '{}': this domain service runs without \
                 the network service (start virtplane-domaind with --network-service ADDR), \
                 or use --source arp",
                def.name
            )));
        };
        let leases = service
            .leases(network, mac)
            .await
            .map_err(|e| e.for_domain(&def.name, "read the DHCP leases of"))?;
        let addresses: Vec<IpAddress> = leases
            .into_iter()
            .filter(|lease| lease.mac.eq_ignore_ascii_case(mac))
            .map(|lease| IpAddress {
                ipv6: lease.ipv6,
                address: lease.address,
                prefix: lease.prefix,
                source: AddressSource::Lease,
            })
            .collect();
        push(&mut found, nic, mac, addresses);
    }
    Ok(found)
}

/// The addresses the host's ARP table (`/proc/net/arp`, as `arp_table`) holds for the MAC
/// addresses of `def`'s interfaces, of any type.
pub fn from_arp(def: &DomainDef, arp_table: &str) -> Vec<InterfaceAddresses> {
    let entries = parse_arp(arp_table);
    let mut found = Vec::new();
    for nic in &def.devices.interfaces {
        let Some(mac) = nic.mac.as_deref() else {
            continue;
        };
        let addresses = entries
            .iter()
            .filter(|(_, entry_mac)| entry_mac.eq_ignore_ascii_case(mac))
            .map(|(ip, _)| IpAddress {
                ipv6: false,
                address: ip.clone(),
                prefix: 0,
                source: AddressSource::Arp,
            })
            .collect();
        push(&mut found, nic, mac, addresses);
    }
    found
}

fn push(
    found: &mut Vec<InterfaceAddresses>,
    nic: &Interface,
    mac: &str,
    addresses: Vec<IpAddress>,
) {
    if addresses.is_empty() {
        return;
    }
    found.push(InterfaceAddresses {
        name: nic.target_dev.clone().unwrap_or_default(),
        mac: mac.to_ascii_lowercase(),
        addresses,
    });
}

fn network_name(nic: &Interface) -> Option<&str> {
    nic.source
        .as_ref()
        .and_then(|s| s.network.as_deref())
        .filter(|n| !n.is_empty())
}

/// (IP, MAC) of each complete entry of a `/proc/net/arp` table. Incomplete entries (flags
/// 0x0: asked, never answered) and the header line are skipped.
fn parse_arp(table: &str) -> Vec<(String, String)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [ip, _hw_type, flags, mac, ..] = fields.as_slice() else {
                return None;
            };
            let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
            (flags != 0 && *mac != "00:00:00:00:00:00").then(|| (ip.to_string(), mac.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(nics: &str) -> DomainDef {
        crate::xml::parse_domain(&format!(
            "<domain type='qemu'><name>web</name><memory>131072</memory>\
             <os><type>hvm</type></os><devices>{nics}</devices></domain>"
        ))
        .unwrap()
    }

    const ARP: &str = "\
IP address       HW type     Flags       HW address            Mask     Device
192.168.122.50   0x1         0x2         52:54:00:AA:00:01     *        virbr0
192.168.122.51   0x1         0x0         52:54:00:aa:00:02     *        virbr0
10.0.0.7         0x1         0x2         52:54:00:aa:00:01     *        br1
192.168.122.9    0x1         0x2         52:54:00:ff:ff:ff     *        virbr0
";

    #[test]
    fn arp_entries_are_matched_by_mac_and_incomplete_ones_skipped() {
        let d = def(
            "<interface type='network'><mac address='52:54:00:aa:00:01'/>\
             <source network='default'/><target dev='vnet0'/></interface>\
             <interface type='bridge'><mac address='52:54:00:aa:00:02'/>\
             <source bridge='br1'/><target dev='vnet1'/></interface>",
        );
        let found = from_arp(&d, ARP);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].name, "vnet0");
        assert_eq!(found[0].mac, "52:54:00:aa:00:01");
        let ips: Vec<&str> = found[0]
            .addresses
            .iter()
            .map(|a| a.address.as_str())
            .collect();
        assert_eq!(ips, ["192.168.122.50", "10.0.0.7"]);
        assert!(
            found[0]
                .addresses
                .iter()
                .all(|a| a.source == AddressSource::Arp)
        );
    }

    #[tokio::test]
    async fn leases_need_the_network_service_only_when_an_interface_is_on_a_network() {
        let bridged = def(
            "<interface type='bridge'><mac address='52:54:00:aa:00:02'/>\
             <source bridge='br1'/></interface>",
        );
        assert!(from_leases(&bridged, None).await.unwrap().is_empty());
        let networked = def(
            "<interface type='network'><mac address='52:54:00:aa:00:01'/>\
             <source network='default'/></interface>",
        );
        let error = from_leases(&networked, None).await.unwrap_err();
        assert!(
            matches!(error, DomainError::OperationInvalid(_)),
            "{error:?}"
        );
        assert!(error.to_string().contains("--network-service"), "{error}");
    }
}
