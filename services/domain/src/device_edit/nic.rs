//! libvirt's rules for attaching and detaching `<interface>` devices, as pure edits of a
//! definition, shared by every driver.
//!
//! - Attach (`qemuDomainAttachDeviceConfig`, `virDomainNetInsert`): the interface is parsed
//!   as libvirt parses an inactive device — a MAC is generated when it has none (52:54:00 and
//!   three random bytes, `virDomainNetGenerateMAC`), an alias that is not a user alias
//!   (`ua-…`) is dropped, and so is a `<target dev>` with a generated name (`vnet…`,
//!   `macvtap…`, `macvlan…`), which belongs to a run, not to a definition. The port and
//!   bridge a running `network` interface was given (`portid`, `bridge`) are run state too.
//!   It is appended to the interfaces. A MAC address another interface of the domain has is
//!   refused. libvirt parses the element once per definition, so with `--live --config` and
//!   no `<mac>` its two copies get different MACs; here it is generated once, before the
//!   split, so both copies are the same interface.
//! - Detach (`virDomainNetFindIdx`): the interface is found by the MAC address, PCI address
//!   and alias the element gives (any of them, each narrows; one match is taken whatever its
//!   type, as libvirt does). Several matches are told apart by type and source; if that does
//!   not single one out, the detach is refused ("multiple matching devices found") rather
//!   than guessing — unless the element named nothing but a type and source that no
//!   interface has ("no matching network device was found").

use crate::error::{DomainError, Result};
use crate::xml::{DomainDef, Interface};

/// Prefixes of the tap and macvtap names libvirt generates; a `<target dev>` starting with
/// one is a run's, dropped from a definition.
const GENERATED_NAME_PREFIXES: &[&str] = &["vnet", "macvtap", "macvlan"];

/// What libvirt's parser does to an interface given to attach (see the module doc).
pub fn normalize_nic(nic: &mut Interface) {
    if nic.mac.is_none() {
        nic.mac = Some(generate_mac());
    }
    if nic
        .info
        .alias
        .as_deref()
        .is_some_and(|a| !a.starts_with(super::USER_ALIAS_PREFIX))
    {
        nic.info.alias = None;
    }
    if nic
        .target_dev
        .as_deref()
        .is_some_and(|dev| GENERATED_NAME_PREFIXES.iter().any(|p| dev.starts_with(p)))
    {
        nic.target_dev = None;
    }
    if nic.iface_type == "network"
        && let Some(source) = nic.source.as_mut()
    {
        source.portid = None;
        source.bridge = None;
    }
}

/// A MAC for a guest NIC given without one: QEMU/KVM's 52:54:00 prefix and three random
/// bytes (libvirt's `virDomainNetGenerateMAC` with the qemu driver's prefix).
pub fn generate_mac() -> String {
    let random = uuid::Uuid::new_v4();
    let b = random.as_bytes();
    format!("52:54:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

/// The config half of attach: a MAC must be the domain's only one; the interface goes last.
pub fn attach_nic_config(def: &mut DomainDef, nic: Interface) -> Result<()> {
    check_mac_free(def, &nic)?;
    def.devices.interfaces.push(nic);
    Ok(())
}

/// The live checks of attach every driver shares: the MAC must be free.
pub fn check_nic_attach_live(def: &DomainDef, nic: &Interface) -> Result<()> {
    check_mac_free(def, nic)
}

fn check_mac_free(def: &DomainDef, nic: &Interface) -> Result<()> {
    let Some(mac) = nic.mac.as_deref().and_then(mac_bytes) else {
        return Ok(());
    };
    let taken = def
        .devices
        .interfaces
        .iter()
        .any(|other| other.mac.as_deref().and_then(mac_bytes) == Some(mac));
    if taken {
        return Err(DomainError::OperationInvalid(format!(
            "the domain already has an interface with MAC address {}; give the new one \
             another <mac address=…> (or none, to have one generated)",
            format_mac(mac)
        )));
    }
    Ok(())
}

/// The config half of detach: removes the interface `wanted` names ([`find_nic`]).
pub fn detach_nic_config(def: &mut DomainDef, wanted: &Interface) -> Result<Interface> {
    let index = find_nic(def, wanted)?;
    Ok(def.devices.interfaces.remove(index))
}

/// The index of the interface of `def` that the detach element `wanted` names (see the
/// module doc for the rules and their errors).
pub fn find_nic(def: &DomainDef, wanted: &Interface) -> Result<usize> {
    let mac = match wanted.mac.as_deref() {
        None => None,
        Some(text) => Some(mac_bytes(text).ok_or_else(|| {
            DomainError::InvalidArg(format!("<mac address='{text}'>: not a MAC address"))
        })?),
    };
    let pci = wanted.info.address.as_ref().and_then(pci_address);
    let matches: Vec<usize> = def
        .devices
        .interfaces
        .iter()
        .enumerate()
        .filter(|(_, nic)| mac.is_none() || nic.mac.as_deref().and_then(mac_bytes) == mac)
        .filter(|(_, nic)| pci.is_none() || nic.info.address.as_ref().and_then(pci_address) == pci)
        .filter(|(_, nic)| wanted.info.alias.is_none() || nic.info.alias == wanted.info.alias)
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [] => Err(DomainError::DeviceMissing(match mac {
            Some(mac) => format!("no device matching MAC address {} found", format_mac(mac)),
            None => "no matching network device was found".into(),
        })),
        [one] => Ok(*one),
        several => {
            let same_kind: Vec<usize> = several
                .iter()
                .copied()
                .filter(|&i| same_type_and_source(&def.devices.interfaces[i], wanted))
                .collect();
            let identified = mac.is_some() || pci.is_some() || wanted.info.alias.is_some();
            match same_kind.as_slice() {
                [one] => Ok(*one),
                // Only type and source to go by, and no interface has them.
                [] if !identified => Err(DomainError::DeviceMissing(
                    "no matching network device was found".into(),
                )),
                _ => Err(DomainError::OperationFailed(match mac {
                    Some(mac) => format!(
                        "multiple devices matching MAC address {} found",
                        format_mac(mac)
                    ),
                    None => "multiple matching devices found".into(),
                })),
            }
        }
    }
}

/// How an interface is named in messages and device events: its alias, else its MAC.
pub fn nic_label(nic: &Interface) -> String {
    nic.info
        .alias
        .clone()
        .or_else(|| nic.mac.clone())
        .unwrap_or_else(|| format!("<interface type='{}'>", nic.iface_type))
}

/// Same type, and the same source where the type has one (bridge, network, device).
fn same_type_and_source(nic: &Interface, wanted: &Interface) -> bool {
    if nic.iface_type != wanted.iface_type {
        return false;
    }
    let source = |n: &Interface| {
        n.source.as_ref().and_then(|s| match n.iface_type.as_str() {
            "bridge" => s.bridge.clone(),
            "network" => s.network.clone(),
            _ => s.dev.clone(),
        })
    };
    match source(wanted) {
        None => true,
        Some(wanted_source) => source(nic).as_deref() == Some(wanted_source.as_str()),
    }
}

/// `aa:bb:cc:dd:ee:ff` in any case, one or two digits a byte (libvirt's virMacAddrParse).
fn mac_bytes(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut out {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A `<address type='pci'>` as numbers (domain, bus, slot, function); missing parts are 0.
fn pci_address(address: &crate::xml::Address) -> Option<[u32; 4]> {
    if address.addr_type != "pci" {
        return None;
    }
    let num = |name: &str| -> Option<u32> {
        match address.get(name) {
            None => Some(0),
            Some(v) => match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => v.parse().ok(),
            },
        }
    };
    Some([num("domain")?, num("bus")?, num("slot")?, num("function")?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{DeviceDef, parse_device, parse_domain};

    fn nic(xml: &str) -> Interface {
        match parse_device(xml).unwrap() {
            DeviceDef::Interface(n) => *n,
            other => panic!("{other:?}"),
        }
    }

    fn domain(nics: &str) -> DomainDef {
        parse_domain(&format!(
            "<domain type='test'><name>t</name><memory>1024</memory><os><type>hvm</type></os>\
             <devices>{nics}</devices></domain>"
        ))
        .unwrap()
    }

    fn macs(def: &DomainDef) -> Vec<String> {
        def.devices
            .interfaces
            .iter()
            .map(|n| n.mac.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn attach_parses_as_libvirt_does() {
        let mut n = nic("<interface type='bridge'><source bridge='br0'/>\
             <target dev='vnet7'/><alias name='net3'/></interface>");
        normalize_nic(&mut n);
        let mac = n.mac.clone().expect("a generated MAC");
        assert!(mac.starts_with("52:54:00:") && mac.len() == 17, "{mac}");
        assert_eq!(n.target_dev, None, "a generated tap name is a run's");
        assert_eq!(n.info.alias, None);
        let mut n = nic(
            "<interface type='bridge'><mac address='52:54:00:AA:bb:0c'/>\
             <source bridge='br0'/><target dev='mytap'/><alias name='ua-lan'/></interface>",
        );
        normalize_nic(&mut n);
        assert_eq!(n.mac.as_deref(), Some("52:54:00:aa:bb:0c"));
        assert_eq!(n.target_dev.as_deref(), Some("mytap"));
        assert_eq!(n.info.alias.as_deref(), Some("ua-lan"));
        let mut n = nic("<interface type='network'><source network='default' \
             portid='7b1c7a30-5c1e-4a52-9b8a-0d5d0f0e9a11' bridge='virbr0'/></interface>");
        normalize_nic(&mut n);
        let source = n.source.unwrap();
        assert_eq!(source.network.as_deref(), Some("default"));
        assert_eq!((source.portid, source.bridge), (None, None));
        assert_ne!(generate_mac(), generate_mac());
    }

    #[test]
    fn a_mac_is_the_domains_only_one() {
        let mut def =
            domain("<interface type='user'><mac address='52:54:00:00:00:01'/></interface>");
        let err = attach_nic_config(
            &mut def,
            nic("<interface type='bridge'><mac address='52:54:00:00:00:1'/>\
                 <source bridge='br0'/></interface>"),
        )
        .unwrap_err();
        assert!(matches!(err, DomainError::OperationInvalid(_)), "{err:?}");
        assert!(
            err.to_string().contains("MAC address 52:54:00:00:00:01"),
            "{err}"
        );
        let two = nic("<interface type='user'><mac address='52:54:00:00:00:02'/></interface>");
        check_nic_attach_live(&def, &two).unwrap();
        attach_nic_config(&mut def, two).unwrap();
        assert_eq!(macs(&def), ["52:54:00:00:00:01", "52:54:00:00:00:02"]);
    }

    #[test]
    fn detach_finds_by_mac_and_tells_apart_by_type_and_source() {
        let def = domain(
            "<interface type='user'><mac address='52:54:00:00:00:01'/></interface>\
             <interface type='bridge'><mac address='52:54:00:00:00:02'/><source bridge='br0'/></interface>\
             <interface type='bridge'><mac address='52:54:00:00:00:03'/><source bridge='br1'/></interface>",
        );
        let by_mac = nic("<interface type='bridge'><mac address='52:54:00:00:00:03'/></interface>");
        assert_eq!(find_nic(&def, &by_mac).unwrap(), 2);
        // The MAC decides, as in libvirt: the type written is not checked against it.
        let other_type =
            nic("<interface type='user'><mac address='52:54:00:00:00:02'/></interface>");
        assert_eq!(find_nic(&def, &other_type).unwrap(), 1);
        // Without a MAC, type and source single one out.
        let by_source = nic("<interface type='bridge'><source bridge='br1'/></interface>");
        assert_eq!(find_nic(&def, &by_source).unwrap(), 2);
        let by_type = nic("<interface type='user'/>");
        assert_eq!(find_nic(&def, &by_type).unwrap(), 0);
        let ambiguous = nic("<interface type='bridge'/>");
        let err = find_nic(&def, &ambiguous).unwrap_err();
        assert!(matches!(err, DomainError::OperationFailed(_)), "{err:?}");
        assert_eq!(err.to_string(), "multiple matching devices found");

        let missing =
            nic("<interface type='bridge'><mac address='52:54:00:00:00:09'/></interface>");
        let err = find_nic(&def, &missing).unwrap_err();
        assert!(matches!(err, DomainError::DeviceMissing(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "no device matching MAC address 52:54:00:00:00:09 found"
        );
        let nothing = nic("<interface type='ethernet'/>");
        let err = find_nic(&def, &nothing).unwrap_err();
        assert!(matches!(err, DomainError::DeviceMissing(_)), "{err:?}");
        assert_eq!(err.to_string(), "no matching network device was found");
        let one = domain("<interface type='user'/>");
        let err = find_nic(&one, &missing).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no device matching MAC address 52:54:00:00:00:09 found"
        );
        let none = domain("");
        let err = find_nic(&none, &nothing).unwrap_err();
        assert_eq!(err.to_string(), "no matching network device was found");
    }

    #[test]
    fn the_same_mac_twice_is_told_apart_by_source_or_refused() {
        let def = domain(
            "<interface type='bridge'><mac address='52:54:00:00:00:05'/><source bridge='br0'/></interface>\
             <interface type='bridge'><mac address='52:54:00:00:00:05'/><source bridge='br1'/></interface>",
        );
        let by_source = nic(
            "<interface type='bridge'><mac address='52:54:00:00:00:05'/><source bridge='br1'/></interface>",
        );
        assert_eq!(find_nic(&def, &by_source).unwrap(), 1);
        let err = find_nic(
            &def,
            &nic("<interface type='bridge'><mac address='52:54:00:00:00:05'/></interface>"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "multiple devices matching MAC address 52:54:00:00:00:05 found"
        );
    }

    #[test]
    fn pci_address_and_alias_narrow_the_match() {
        let def = domain(
            "<interface type='user'><mac address='52:54:00:00:00:01'/>\
               <alias name='net0'/><address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/></interface>\
             <interface type='user'><mac address='52:54:00:00:00:02'/>\
               <alias name='net1'/><address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/></interface>",
        );
        let by_pci =
            nic("<interface type='user'><address type='pci' bus='0' slot='4'/></interface>");
        assert_eq!(find_nic(&def, &by_pci).unwrap(), 1);
        let by_alias = nic("<interface type='user'><alias name='net0'/></interface>");
        assert_eq!(find_nic(&def, &by_alias).unwrap(), 0);
        let contradicting = nic(
            "<interface type='user'><mac address='52:54:00:00:00:01'/><alias name='net1'/></interface>",
        );
        assert!(matches!(
            find_nic(&def, &contradicting).unwrap_err(),
            DomainError::DeviceMissing(_)
        ));
        let mut config = def.clone();
        let removed = detach_nic_config(&mut config, &by_alias).unwrap();
        assert_eq!(removed.mac.as_deref(), Some("52:54:00:00:00:01"));
        assert_eq!(macs(&config), ["52:54:00:00:00:02"]);
        assert_eq!(nic_label(&def.devices.interfaces[0]), "net0");
        assert_eq!(
            nic_label(&nic(
                "<interface type='user'><mac address='52:54:00:00:00:07'/></interface>"
            )),
            "52:54:00:00:00:07"
        );
    }
}
