//! A network definition → the [`HostPlan`] that `host::network` carries out: the bridge
//! (name, MAC, MTU, STP), the host's addresses on it, forwarding, the firewall table and
//! dnsmasq's rendered files. Pure; the files live in the network's run dir `DIR`, named
//! by a stem that is the network's name when it makes a safe file name.

use std::path::Path;

use super::{RenderError, dnsmasq, nft};
use crate::host::bridge::{BridgeConfig, IfAddress};
use crate::host::dnsmasq::DnsmasqFiles;
use crate::host::network::{DnsmasqPlan, Firewall, HostPlan};
use crate::host::nft::{Family, Table};
use crate::xml::{ForwardMode, NetworkDef};

/// libvirt's bridge defaults: STP on, no forward delay.
const DEFAULT_STP: bool = true;

/// The plan of `def` (bridge name assigned) with its files in `dir`.
pub fn host_plan(def: &NetworkDef, dir: &Path) -> Result<HostPlan, RenderError> {
    let bridge_name = def
        .bridge_name()
        .ok_or_else(|| RenderError::NoBridge(def.name.clone()))?
        .to_owned();
    if !def.has_own_bridge() {
        return Err(RenderError::NotOurs {
            network: def.name.clone(),
            mode: def.forward_mode().to_owned(),
        });
    }
    let bridge_def = def.bridge.clone().unwrap_or_default();
    let bridge = BridgeConfig {
        name: bridge_name.clone(),
        mac: def.mac.as_deref().and_then(parse_mac),
        mtu: def.mtu,
        stp: bridge_def.stp.unwrap_or(DEFAULT_STP),
        forward_delay_secs: u32::try_from(bridge_def.delay.unwrap_or(0)).unwrap_or(u32::MAX),
    };
    let addresses = def
        .ips
        .iter()
        .map(|ip| IfAddress {
            address: ip.address,
            prefix: ip.prefix_len(),
        })
        .collect::<Vec<_>>();
    let layer3 = matches!(def.mode(), Some(ForwardMode::Nat | ForwardMode::Route));
    let has = |v6: bool| addresses.iter().any(|a| a.address.is_ipv6() == v6);
    let stem = file_stem(&def.name);
    let firewall = if nft::needs_firewall(def) {
        let name = nft::table_name(&def.name);
        // `table_name` only makes names the host module accepts.
        let table = Table::new(Family::Inet, &name).map_err(|_| RenderError::Unsafe {
            network: def.name.clone(),
            what: "nftables table".into(),
            value: name.clone(),
            target: "an nftables table name",
        })?;
        Some(Firewall {
            ruleset: nft::render(def, &bridge_name, &name)?,
            tables: vec![table],
        })
    } else {
        None
    };
    let dnsmasq = if dnsmasq::needs_dnsmasq(def) {
        let paths = dnsmasq::DnsmasqPaths::in_dir(dir, &stem);
        let config = dnsmasq::render(def, &paths)?;
        Some(DnsmasqPlan {
            files: DnsmasqFiles::in_dir(dir, &stem),
            hosts_files: config.hosts_files(&paths),
            conf: config.conf,
        })
    } else {
        None
    };
    Ok(HostPlan {
        network: def.name.clone(),
        bridge,
        forward_ipv4: layer3 && has(false),
        forward_ipv6: layer3 && has(true),
        addresses,
        firewall,
        dnsmasq,
    })
}

/// The network's files are `STEM.conf`, `STEM.pid`, …: the name when it is a plain file
/// name, else `~` and a hash (network names may hold `/`).
pub fn file_stem(name: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with(['.', '~'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if plain {
        name.to_owned()
    } else {
        use sha2::Digest;
        format!(
            "~{}",
            &hex::encode(sha2::Sha256::digest(name.as_bytes()))[..32]
        )
    }
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT_NET: &str = "<network><name>default</name>\
        <uuid>9a05da11-e96b-47f3-8253-a3a482e445f5</uuid>\
        <forward mode='nat'/><bridge name='virbr0' stp='on' delay='0'/>\
        <mac address='52:54:00:0a:cd:21'/>\
        <ip address='192.168.122.1' netmask='255.255.255.0'>\
        <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp></ip></network>";

    #[test]
    fn the_default_network_becomes_a_nat_bridge_with_dnsmasq() {
        let def = crate::xml::parse_network(DEFAULT_NET).unwrap();
        let plan = host_plan(&def, Path::new("/run/vp/net")).unwrap();
        assert_eq!(plan.bridge.name, "virbr0");
        assert_eq!(plan.bridge.mac, Some([0x52, 0x54, 0x00, 0x0a, 0xcd, 0x21]));
        assert!(plan.bridge.stp);
        assert_eq!(
            plan.addresses,
            vec![IfAddress {
                address: "192.168.122.1".parse().unwrap(),
                prefix: 24
            }]
        );
        assert!(plan.forward_ipv4 && !plan.forward_ipv6);
        let firewall = plan.firewall.as_ref().unwrap();
        assert_eq!(firewall.tables[0].name(), "virtplane_default");
        assert!(
            firewall.ruleset.contains("masquerade"),
            "{}",
            firewall.ruleset
        );
        let dns = plan.dnsmasq.as_ref().unwrap();
        assert_eq!(dns.files.conf, Path::new("/run/vp/net/default.conf"));
        assert!(dns.conf.contains("interface=virbr0"), "{}", dns.conf);
    }

    #[test]
    fn an_isolated_network_forwards_nothing() {
        let def = crate::xml::parse_network(
            "<network><name>iso</name><bridge name='vpiso0'/>\
             <ip address='10.9.0.1' prefix='24'/></network>",
        )
        .unwrap();
        let plan = host_plan(&def, Path::new("/tmp")).unwrap();
        assert!(!plan.forward_ipv4 && !plan.forward_ipv6);
        assert!(plan.firewall.is_some(), "isolation is enforced by rules");
    }

    #[test]
    fn a_network_without_a_bridge_name_has_no_plan() {
        let mut def = crate::xml::parse_network(DEFAULT_NET).unwrap();
        def.bridge.as_mut().unwrap().name = None;
        assert!(matches!(
            host_plan(&def, Path::new("/tmp")),
            Err(RenderError::NoBridge(_))
        ));
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("default"), "default");
        assert!(file_stem("a/b").starts_with('~'));
        assert!(file_stem("..").starts_with('~'));
        assert_ne!(file_stem("a/b"), file_stem("a/c"));
    }
}
