//! What hot-plugging a network interface sends over QMP: `netdev_add` for its backend and
//! `device_add` for the card, made by the very code that writes the interface's `-netdev`
//! and `-device` on the command line (`nics.rs`), so a card plugged into a running guest is
//! the one it would have been at boot. Only the ids differ: a hot-plugged card is named by
//! its alias (`netN`, libvirt's), its backend `host` + alias (`hostnetN`), where the command
//! line numbers them by position.

use serde_json::{Map, Value};

use super::super::cmd::Cmd;
use super::super::{ArgvContext, ArgvError, nics};
use crate::xml::DomainDef;

/// One interface's QMP arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct NicHotplug {
    /// `netdev_add`'s arguments (the backend: `user`, or a tap opened by name).
    pub netdev: Value,
    /// `device_add`'s arguments (the card).
    pub device: Value,
    /// QEMU's id of the card: the alias it was given.
    pub device_id: String,
    /// QEMU's id of the backend: `host` + the card's id, as libvirt names it.
    pub netdev_id: String,
}

/// QEMU's id of the backend of the card with id `device_id` (libvirt: "host" + alias).
pub fn netdev_id(device_id: &str) -> String {
    format!("host{device_id}")
}

/// The QMP arguments for interface `index` of `def` (the live definition with the new
/// interface in it, its tap named), to be known to QEMU as `device_id`. Refuses what the
/// command line would refuse, including parts the XML model did not understand.
pub fn nic_hotplug(
    def: &DomainDef,
    index: usize,
    device_id: &str,
    ctx: &ArgvContext,
) -> Result<NicHotplug, ArgvError> {
    super::super::refuse_unknown(def)?;
    let nic =
        def.devices.interfaces.get(index).ok_or_else(|| {
            ArgvError::invalid("<interface>", "no such interface in the definition")
        })?;
    // The interface alone, as the command line would write it; the machine (chipset, PCI
    // buses) is the whole definition's.
    let mut cmd = Cmd::new(def, ctx)?;
    let mut single = def.clone();
    single.devices.interfaces = vec![nic.clone()];
    nics::nics(&single, &mut cmd)?;
    let args = cmd.finish();
    let (netdev, device) = match args.as_slice() {
        [n, netdev, d, device] if n == "-netdev" && d == "-device" => (netdev, device),
        other => {
            return Err(ArgvError::invalid(
                "<interface>",
                format!("unexpected command-line form {other:?}"),
            ));
        }
    };
    let netdev_id = netdev_id(device_id);
    let mut netdev = netdev_arguments(netdev)?;
    netdev.insert("id".into(), Value::from(netdev_id.as_str()));
    if netdev.get("type").and_then(Value::as_str) == Some("tap") {
        // The command line's default, said out loud: no vhost-net for taps (nic_driver.rs
        // refuses <driver name='vhost'> on them).
        netdev.insert("vhost".into(), Value::Bool(false));
    }
    let mut device: Map<String, Value> = serde_json::from_str(device).map_err(|e| {
        ArgvError::invalid("<interface>", format!("the -device value is not JSON: {e}"))
    })?;
    device.insert("netdev".into(), Value::from(netdev_id.as_str()));
    device.insert("id".into(), Value::from(device_id));
    // `<os><boot dev='network'>` numbers the cards QEMU starts with; a hot-plugged one has a
    // boot index only from its own `<boot order>` (libvirt's effectiveBootIndex).
    if nic.boot_order.is_none() {
        device.remove("bootindex");
    }
    Ok(NicHotplug {
        netdev: Value::Object(netdev),
        device: Value::Object(device),
        device_id: device_id.to_owned(),
        netdev_id,
    })
}

/// A `-netdev` value as `netdev_add` arguments: JSON as it is, or QEMU's `type,key=value,…`
/// form (the taps' form: ifnames never hold `,` or `=`).
fn netdev_arguments(value: &str) -> Result<Map<String, Value>, ArgvError> {
    if value.starts_with('{') {
        return serde_json::from_str(value).map_err(|e| {
            ArgvError::invalid("<interface>", format!("the -netdev value is not JSON: {e}"))
        });
    }
    let mut parts = value.split(',');
    let mut map = Map::new();
    let kind = parts.next().unwrap_or_default();
    map.insert("type".into(), Value::from(kind));
    for part in parts {
        let (key, val) = part.split_once('=').ok_or_else(|| {
            ArgvError::invalid("<interface>", format!("unexpected -netdev part '{part}'"))
        })?;
        map.insert(key.into(), Value::from(val));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;
    use crate::xml::parse_domain;

    fn ctx() -> ArgvContext {
        ArgvContext {
            emulator: PathBuf::from("/usr/bin/qemu-system-x86_64"),
            run_dir: PathBuf::from("/run/vp/1-t"),
            kvm_usable: false,
        }
    }

    fn def(os: &str, devices: &str) -> DomainDef {
        parse_domain(&format!(
            "<domain type='qemu'><name>t</name><memory>65536</memory>\
             <os><type arch='x86_64' machine='pc'>hvm</type>{os}</os>\
             <devices>{devices}</devices></domain>"
        ))
        .unwrap()
    }

    #[test]
    fn a_bridge_interface_becomes_a_tap_netdev_and_its_card() {
        let d = def(
            "",
            "<interface type='user'/>\
             <interface type='bridge'><mac address='52:54:00:aa:bb:cc'/><source bridge='br0'/>\
               <target dev='vnet4'/><model type='virtio'/>\
               <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></interface>",
        );
        let plug = nic_hotplug(&d, 1, "net2", &ctx()).unwrap();
        assert_eq!(plug.device_id, "net2");
        assert_eq!(plug.netdev_id, "hostnet2");
        assert_eq!(
            plug.netdev,
            json!({"type": "tap", "id": "hostnet2", "ifname": "vnet4", "script": "no",
                "downscript": "no", "vhost": false})
        );
        assert_eq!(
            plug.device,
            json!({"driver": "virtio-net-pci", "netdev": "hostnet2", "id": "net2",
                "mac": "52:54:00:aa:bb:cc", "bus": "pci.0", "addr": "0x5"})
        );
    }

    #[test]
    fn user_networking_and_boot_indexes() {
        let d = def(
            "<boot dev='network'/>",
            "<interface type='user'><mac address='52:54:00:00:00:01'/><model type='e1000'/></interface>",
        );
        let plug = nic_hotplug(&d, 0, "net0", &ctx()).unwrap();
        assert_eq!(plug.netdev, json!({"type": "user", "id": "hostnet0"}));
        assert_eq!(plug.device["driver"], "e1000");
        assert!(
            plug.device.get("bootindex").is_none(),
            "<os><boot> numbers only the cards QEMU starts with: {}",
            plug.device
        );
        let d = def("", "<interface type='user'><boot order='2'/></interface>");
        let plug = nic_hotplug(&d, 0, "net0", &ctx()).unwrap();
        assert_eq!(plug.device["bootindex"], 2);
    }

    #[test]
    fn what_the_command_line_refuses_is_refused() {
        let d = def(
            "",
            "<interface type='direct'><source dev='eth0'/></interface>",
        );
        let err = nic_hotplug(&d, 0, "net0", &ctx()).unwrap_err();
        assert!(matches!(err, ArgvError::Unsupported { .. }), "{err}");
        let d = def(
            "",
            "<interface type='user'><model type='ne2k_pci'/></interface>",
        );
        let err = nic_hotplug(&d, 0, "net0", &ctx()).unwrap_err();
        assert!(err.to_string().contains("ne2k_pci"), "{err}");
        let d = def(
            "",
            "<interface type='user'><bandwidth><inbound average='1'/></bandwidth></interface>",
        );
        let err = nic_hotplug(&d, 0, "net0", &ctx()).unwrap_err();
        assert!(err.to_string().contains("bandwidth"), "{err}");
        let err = nic_hotplug(&def("", ""), 0, "net0", &ctx()).unwrap_err();
        assert!(err.to_string().contains("no such interface"), "{err}");
    }
}
