//! Which host device each `<interface>` needs, read from the definition (pure).
//!
//! - `bridge`: a tap the service creates, named by `<target dev>` or generated (`vnetN`),
//!   attached to `<source bridge>`, deleted when the VM stops.
//! - `ethernet`: a tap the service creates and deletes the same way, attached to nothing (the
//!   host's own routing takes it from there).
//! - everything else (`user`, ...) has no host device the service makes.
//!
//! A `<target dev>` name that already exists is refused, tap or not: the service deletes the
//! taps it made when the VM stops, so it must never adopt a device that someone else made.
//! libvirt's exceptions — `ethernet` with `<target managed='no'>` using an existing tap as it
//! is, and `<mtu size>` — are not in the domain XML model yet, so the command-line builder
//! refuses them as unknown content (UNIMPLEMENTED) rather than ignoring them; a tap's MTU is
//! its bridge's (libvirt's rule without `<mtu>`), so joining it never lowers the bridge's.

use super::error::NetError;
use crate::xml::{DomainDef, Interface};

/// What the service does on the host for one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSide {
    /// Nothing (user networking, or a type the command line refuses anyway).
    Nothing,
    /// A tap the service creates at start and deletes at stop.
    Managed(ManagedTap),
}

/// A tap to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedTap {
    /// `<target dev>`; `None`: generate one.
    pub name: Option<String>,
    /// `<source bridge>` for `bridge` interfaces.
    pub bridge: Option<String>,
    /// The tap carries virtio-net headers (libvirt: for virtio models only).
    pub vnet_hdr: bool,
}

/// The host side of `nic` (the `index`-th interface, for messages).
pub fn host_side(nic: &Interface, index: usize) -> Result<HostSide, NetError> {
    let bridge = match nic.iface_type.as_str() {
        "bridge" => {
            let bridge = nic
                .source
                .as_ref()
                .and_then(|s| s.bridge.clone())
                .filter(|b| !b.is_empty())
                .ok_or_else(|| NetError::Invalid {
                    what: format!("<interface type='bridge'> #{}", index + 1),
                    why: "needs <source bridge='…'/>: the bridge its tap joins".into(),
                })?;
            check_name("source bridge", &bridge)?;
            Some(bridge)
        }
        // Joined through a port of the network service, which named the bridge.
        "network" => match nic.source.as_ref().and_then(|s| s.bridge.clone()) {
            Some(bridge) => {
                check_name("source bridge", &bridge)?;
                Some(bridge)
            }
            None => return Ok(HostSide::Nothing),
        },
        "ethernet" => None,
        _ => return Ok(HostSide::Nothing),
    };
    if let Some(name) = &nic.target_dev {
        check_name("target dev", name)?;
    }
    Ok(HostSide::Managed(ManagedTap {
        name: nic.target_dev.clone(),
        bridge,
        vnet_hdr: vnet_compatible(nic.model.as_deref()),
    }))
}

/// The taps a running definition's VM owns: its managed taps (after a start every one has
/// its name). What the service deletes when the VM is gone.
pub fn owned_taps(def: &DomainDef) -> Vec<String> {
    def.devices
        .interfaces
        .iter()
        .enumerate()
        .filter_map(|(i, nic)| match host_side(nic, i) {
            Ok(HostSide::Managed(tap)) => tap.name,
            _ => None,
        })
        .collect()
}

/// `<source bridge>` / `<target dev>` must be device names.
fn check_name(what: &str, name: &str) -> Result<(), NetError> {
    match super::names::invalid_name(name) {
        None => Ok(()),
        Some(why) => {
            let (element, attr) = what.split_once(' ').unwrap_or((what, "name"));
            Err(NetError::Invalid {
                what: format!("<{element} {attr}='{name}'>"),
                why: format!("not a network device name: {why}"),
            })
        }
    }
}

/// libvirt's `qemuInterfaceIsVnetCompatModel`.
fn vnet_compatible(model: Option<&str>) -> bool {
    matches!(
        model,
        Some("virtio" | "virtio-transitional" | "virtio-non-transitional")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nics(xml: &str) -> DomainDef {
        crate::xml::parse_domain(&format!(
            "<domain type='qemu'><name>t</name><memory>131072</memory>\
             <os><type>hvm</type></os><devices>{xml}</devices></domain>"
        ))
        .unwrap()
    }

    fn side(xml: &str) -> Result<HostSide, NetError> {
        let def = nics(xml);
        host_side(&def.devices.interfaces[0], 0)
    }

    #[test]
    fn a_bridge_interface_gets_a_managed_tap_on_its_bridge() {
        assert_eq!(
            side(
                "<interface type='bridge'><source bridge='br0'/><model type='virtio'/></interface>"
            )
            .unwrap(),
            HostSide::Managed(ManagedTap {
                name: None,
                bridge: Some("br0".into()),
                vnet_hdr: true,
            })
        );
        assert_eq!(
            side(
                "<interface type='bridge'><source bridge='br0'/><target dev='tap7'/>\
                  <model type='e1000'/></interface>"
            )
            .unwrap(),
            HostSide::Managed(ManagedTap {
                name: Some("tap7".into()),
                bridge: Some("br0".into()),
                vnet_hdr: false,
            })
        );
    }

    #[test]
    fn ethernet_gets_a_managed_tap_on_no_bridge() {
        assert_eq!(
            side("<interface type='ethernet'><target dev='t0'/></interface>").unwrap(),
            HostSide::Managed(ManagedTap {
                name: Some("t0".into()),
                bridge: None,
                vnet_hdr: false,
            })
        );
    }

    #[test]
    fn bad_definitions_are_refused_with_the_element_named() {
        let err = side("<interface type='bridge'/>").unwrap_err();
        assert_eq!(
            err.to_string(),
            "<interface type='bridge'> #1: needs <source bridge='…'/>: the bridge its tap joins"
        );
        let err =
            side("<interface type='bridge'><source bridge='br0'/><target dev='a,b'/></interface>")
                .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("<target dev='a,b'>: not a network device name"),
            "{err}"
        );
        let err =
            side("<interface type='bridge'><source bridge='my bridge'/></interface>").unwrap_err();
        assert!(
            err.to_string().starts_with("<source bridge='my bridge'>"),
            "{err}"
        );
    }

    #[test]
    fn user_networking_has_no_host_side_and_owned_taps_are_the_named_managed_ones() {
        assert_eq!(side("<interface type='user'/>").unwrap(), HostSide::Nothing);
        let def = nics(
            "<interface type='user'/>\
             <interface type='bridge'><source bridge='br0'/><target dev='vnet3'/></interface>\
             <interface type='ethernet'><target dev='vnet4'/></interface>\
             <interface type='bridge'><source bridge='br0'/></interface>",
        );
        assert_eq!(owned_taps(&def), vec!["vnet3".to_string(), "vnet4".into()]);
    }
}
