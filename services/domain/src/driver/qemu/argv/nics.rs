//! Network interfaces: a `-netdev` backend plus a `-device` frontend each.
//!
//! `user` is QEMU's own NAT. `bridge` and `ethernet` become a tap device named by
//! `<target dev>`: the domain service creates the tap (and attaches it to the bridge) before
//! starting QEMU and fills in a generated name (`../net/`), so QEMU needs no helper scripts
//! and no privileges for it. A `network` interface is the same once the network service's
//! port has named the network's bridge (`<source bridge>` in the live definition).

use serde_json::Value;

use super::ArgvError;
use super::boot::boot_indexes;
use super::cmd::{Cmd, Props};
use super::{addr, nic_driver};
use crate::xml::DomainDef;

pub(super) fn nics(def: &DomainDef, cmd: &mut Cmd) -> Result<(), ArgvError> {
    let boot = boot_indexes(def)?;
    for (i, nic) in def.devices.interfaces.iter().enumerate() {
        let what = format!("<interface type='{}'>", nic.iface_type);
        let netdev = format!("hostnet{i}");
        match nic.iface_type.as_str() {
            "user" => cmd.flag(
                "-netdev",
                Props::new()
                    .with("type", "user")
                    .with("id", netdev.as_str())
                    .to_json(),
            ),
            "bridge" | "ethernet" => {
                let tap = nic.target_dev.as_deref().ok_or_else(|| {
                    ArgvError::invalid(
                        &what,
                        "needs <target dev='…'/>: the tap device the service creates for it",
                    )
                })?;
                if tap.is_empty() || tap.len() > 15 || tap.contains([',', '/', ' ']) {
                    return Err(ArgvError::invalid(
                        format!("<target dev='{tap}'>"),
                        "a network device name of 1 to 15 characters without ',', '/' or spaces",
                    ));
                }
                cmd.flag(
                    "-netdev",
                    format!("tap,id={netdev},ifname={tap},script=no,downscript=no"),
                );
            }
            // Before the command line is built, the network service's port named the
            // network's bridge and the service made the tap (`../net/`).
            "network" if nic.source.as_ref().is_some_and(|s| s.bridge.is_some()) => {
                let tap = nic.target_dev.as_deref().ok_or_else(|| {
                    ArgvError::invalid(&what, "has no tap: its port on the network was not made")
                })?;
                cmd.flag(
                    "-netdev",
                    format!("tap,id={netdev},ifname={tap},script=no,downscript=no"),
                );
            }
            "network" => {
                return Err(ArgvError::unsupported(format!(
                    "{what} here: it needs the network service"
                )));
            }
            _ => return Err(ArgvError::unsupported(what)),
        }
        // libvirt's default model on x86 PC machines is rtl8139.
        let driver = match nic.model.as_deref() {
            None | Some("rtl8139") => "rtl8139",
            Some("virtio") => "virtio-net-pci",
            Some("e1000") => "e1000",
            Some("e1000e") => "e1000e",
            Some(other) => {
                return Err(ArgvError::unsupported(format!(
                    "<model type='{other}'> on {what}"
                )));
            }
        };
        let mut p = Props::driver(driver);
        nic_driver::frontend(nic, driver == "virtio-net-pci", &what, &mut p)?;
        p.set("netdev", netdev.as_str());
        p.set("id", format!("net{i}"));
        // Without a MAC QEMU assigns 52:54:00:12:34:56 upward; libvirt fills one in at define.
        p.set_opt("mac", nic.mac.as_deref());
        p.set_opt("bootindex", boot.nics[i].map(Value::from));
        addr::pci(cmd, &nic.info, &what, &mut p)?;
        nic_driver::rom(nic, &what, &mut p)?;
        cmd.device(p);
    }
    Ok(())
}
