//! What hot-plugging a disk sends over QMP, and where a hot-plugged PCI device goes
//! (network interfaces: `hotplug/nic.rs`).
//!
//! The `blockdev-add` and `device_add` arguments come from the very code that builds the
//! command line (`disks.rs`), so a disk plugged into a running guest is the device it would
//! have been at boot: same node names (`libvirt-N-storage`/`-format`), same properties, same
//! device id.

mod nic;

pub use nic::{NicHotplug, netdev_id, nic_hotplug};
use serde_json::Value;

use super::cmd::{Chipset, Cmd, Props};
use super::{ArgvContext, ArgvError, controllers, disks};
use crate::xml::{Address, DeviceInfo, Disk, DomainDef};

/// One disk's QMP arguments: `blockdev-add` for each node in order (storage, then format;
/// none for an empty CD-ROM), then `device_add`.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskHotplug {
    pub blockdevs: Vec<Value>,
    pub device: Value,
    /// QEMU's id of the device (libvirt's alias): `virtio-disk1`, `scsi0-0-0-1`, ...
    pub device_id: String,
}

/// The QMP arguments for disk `index` of `def` (the live definition with the new disk in
/// it), its nodes numbered `node_index`. Refuses what the command line would refuse,
/// including parts of the disk the XML model did not understand.
pub fn disk_hotplug(
    def: &DomainDef,
    index: usize,
    node_index: usize,
    ctx: &ArgvContext,
) -> Result<DiskHotplug, ArgvError> {
    super::refuse_unknown(def)?;
    let cmd = Cmd::new(def, ctx)?;
    let disk = def
        .devices
        .disks
        .get(index)
        .ok_or_else(|| ArgvError::invalid("<disk>", "no such disk in the definition"))?;
    let parts = disks::disk_parts(def, disk, node_index, disk.boot_order, &cmd)?;
    Ok(DiskHotplug {
        blockdevs: parts.blockdevs.iter().map(json).collect(),
        device: json(&parts.device),
        device_id: disks::device_id(def, disk)?,
    })
}

/// QEMU's id of disk `disk` of `def`: libvirt's alias for it, derived from its bus and
/// target or address (`virtio-disk1`, `sata0-0-1`, `scsi0-0-0-1`, `usb-disk2`).
pub fn disk_device_id(def: &DomainDef, disk: &Disk) -> Result<String, ArgvError> {
    disks::device_id(def, disk)
}

/// The controller a hot-plugged disk (disk `index` of `def`) hangs off must already be in
/// QEMU: declared in the definition, or added at boot for another disk (or input) on it, as
/// libvirt adds implied controllers. Hot-plugging a controller is not supported.
pub fn check_controller(def: &DomainDef, index: usize) -> Result<(), ArgvError> {
    let Some(disk) = def.devices.disks.get(index) else {
        return Ok(());
    };
    let others = || {
        def.devices
            .disks
            .iter()
            .enumerate()
            .filter(move |(i, _)| *i != index)
            .map(|(_, d)| d)
    };
    let declared = |kind: &str, n: u32| {
        def.devices
            .controllers
            .iter()
            .zip(controllers::indexes(def))
            .any(|(c, i)| c.controller_type == kind && i == n && c.model.as_deref() != Some("none"))
    };
    let what = format!("disk '{}'", disk.target.dev);
    match disks::bus(disk)? {
        "scsi" => {
            let controller = disks::drive_addr(disk)?.controller;
            let implied = others().any(|d| {
                disks::bus(d) == Ok("scsi")
                    && disks::drive_addr(d).is_ok_and(|a| a.controller == controller)
            });
            if !declared("scsi", controller) && !implied {
                return Err(ArgvError::invalid(
                    what,
                    format!(
                        "the domain has no SCSI controller {controller}, and hot-plugging one is \
                         not supported: add <controller type='scsi' index='{controller}' \
                         model='virtio-scsi'/> to its config and restart it"
                    ),
                ));
            }
        }
        "usb" => {
            let implied = others().any(|d| disks::bus(d) == Ok("usb"))
                || def
                    .devices
                    .inputs
                    .iter()
                    .any(|i| i.bus.as_deref() == Some("usb"));
            if !declared("usb", 0) && !implied {
                return Err(ArgvError::invalid(
                    what,
                    "the domain has no USB controller, and hot-plugging one is not supported: \
                     add <controller type='usb' model='qemu-xhci'/> to its config and restart it",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

fn json(props: &Props) -> Value {
    // Props writes valid JSON by construction.
    serde_json::from_str(&props.to_json()).unwrap_or(Value::Null)
}

/// A PCI slot: bus index (`0` the root bus, else the `<controller type='pci' index=…>` it
/// hangs off) and slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciSlot {
    pub bus: u32,
    pub slot: u32,
}

impl PciSlot {
    /// The `<address type='pci'>` that names this slot (function 0).
    pub fn address(self) -> Address {
        Address {
            addr_type: "pci".into(),
            attrs: vec![
                ("domain".into(), "0x0000".into()),
                ("bus".into(), format!("{:#04x}", self.bus)),
                ("slot".into(), format!("{:#04x}", self.slot)),
                ("function".into(), "0x0".into()),
            ],
            extra: Default::default(),
        }
    }
}

/// Why no slot was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error(
        "no free PCIe root port to hot-plug into: q35 machines hot-plug PCI devices only into \
         an empty PCIe root port; add <controller type='pci' model='pcie-root-port'/> (one per \
         device to hot-plug) to the domain's config and restart it"
    )]
    NoRootPort,
    #[error("no free PCI slot on the root bus or any pci-bridge")]
    Full,
    #[error(transparent)]
    Argv(#[from] ArgvError),
}

/// A free slot for a hot-plugged PCI device, as libvirt's address set would give one: on
/// `pc` machines the lowest free slot of the root bus (which is hotplug-capable), then of
/// any pci-bridge; on q35, where the root bus is not hotplug-capable, the first
/// `pcie-root-port` nothing is plugged into.
///
/// `root_in_use`: the root-bus slots QEMU reports in use (`query-pci`) — devices without an
/// `<address>` are placed there by QEMU itself, so only QEMU knows where. Buses behind
/// controllers only ever carry devices with explicit addresses, so the definition tells.
pub fn free_pci_slot(
    def: &DomainDef,
    ctx: &ArgvContext,
    root_in_use: &[u32],
) -> Result<PciSlot, SlotError> {
    let cmd = Cmd::new(def, ctx)?;
    let used = pci_addresses(def);
    let pci_controllers: Vec<(Option<&str>, u32)> = def
        .devices
        .controllers
        .iter()
        .zip(controllers::indexes(def))
        .filter(|(c, index)| c.controller_type == "pci" && *index != 0)
        .map(|(c, index)| (c.model.as_deref(), index))
        .collect();
    match cmd.chipset {
        Chipset::Q35 => pci_controllers
            .iter()
            .filter(|(model, _)| *model == Some("pcie-root-port"))
            .map(|(_, index)| *index)
            .find(|index| !used.iter().any(|s| s.bus == *index))
            .map(|bus| PciSlot { bus, slot: 0 })
            .ok_or(SlotError::NoRootPort),
        Chipset::I440fx => {
            let root = (1..32).find(|slot| {
                !root_in_use.contains(slot) && !used.iter().any(|s| s.bus == 0 && s.slot == *slot)
            });
            if let Some(slot) = root {
                return Ok(PciSlot { bus: 0, slot });
            }
            // A pci-bridge's slot 0 is reserved (libvirt never assigns it).
            pci_controllers
                .iter()
                .filter(|(model, _)| *model == Some("pci-bridge"))
                .find_map(|(_, bus)| {
                    (1..32)
                        .find(|slot| !used.iter().any(|s| s.bus == *bus && s.slot == *slot))
                        .map(|slot| PciSlot { bus: *bus, slot })
                })
                .ok_or(SlotError::Full)
        }
    }
}

/// Every explicit PCI address in the definition.
fn pci_addresses(def: &DomainDef) -> Vec<PciSlot> {
    let d = &def.devices;
    let infos: Vec<&DeviceInfo> = d
        .disks
        .iter()
        .map(|x| &x.info)
        .chain(d.controllers.iter().map(|x| &x.info))
        .chain(d.interfaces.iter().map(|x| &x.info))
        .chain(d.inputs.iter().map(|x| &x.info))
        .chain(d.videos.iter().map(|x| &x.info))
        .chain(d.watchdogs.iter().map(|x| &x.info))
        .chain(d.rngs.iter().map(|x| &x.info))
        .chain(d.memballoon.iter().map(|x| &x.info))
        .collect();
    infos
        .into_iter()
        .filter_map(|i| i.address.as_ref())
        .filter(|a| a.addr_type == "pci")
        .filter_map(|a| {
            let num = |n: &str| a.get(n).map_or(Some(0), super::addr::parse_num);
            Some(PciSlot {
                bus: num("bus")?,
                slot: num("slot")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::xml::parse_domain;

    fn ctx() -> ArgvContext {
        ArgvContext {
            emulator: PathBuf::from("/usr/bin/qemu-system-x86_64"),
            run_dir: PathBuf::from("/run/vp/1-t"),
            kvm_usable: false,
        }
    }

    fn def(machine: &str, devices: &str) -> DomainDef {
        parse_domain(&format!(
            "<domain type='qemu'><name>t</name><memory>65536</memory>\
             <os><type arch='x86_64' machine='{machine}'>hvm</type></os>\
             <devices>{devices}</devices></domain>"
        ))
        .unwrap()
    }

    #[test]
    fn a_virtio_disk_becomes_blockdevs_and_a_device() {
        let d = def(
            "pc",
            "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
             <source file='/img/b.qcow2'/><target dev='vdb' bus='virtio'/>\
             <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></disk>",
        );
        let plug = disk_hotplug(&d, 0, 3, &ctx()).unwrap();
        assert_eq!(plug.device_id, "virtio-disk1");
        assert_eq!(
            plug.blockdevs,
            [
                serde_json::json!({"driver": "file", "filename": "/img/b.qcow2",
                    "node-name": "libvirt-3-storage", "auto-read-only": true, "discard": "unmap"}),
                serde_json::json!({"node-name": "libvirt-3-format", "read-only": false,
                    "driver": "qcow2", "file": "libvirt-3-storage"}),
            ]
        );
        assert_eq!(
            plug.device,
            serde_json::json!({"driver": "virtio-blk-pci", "bus": "pci.0", "addr": "0x5",
                "drive": "libvirt-3-format", "id": "virtio-disk1"})
        );
    }

    #[test]
    fn unknown_parts_are_refused() {
        let d = def(
            "pc",
            "<disk><source file='/b'/><target dev='vdb'/><iotune><total_bytes_sec>1</total_bytes_sec></iotune></disk>",
        );
        let err = disk_hotplug(&d, 0, 1, &ctx()).unwrap_err();
        assert!(err.to_string().contains("iotune"), "{err}");
    }

    #[test]
    fn slots_on_pc_skip_what_is_used() {
        let d = def(
            "pc",
            "<disk><source file='/b'/><target dev='vdb'/>\
             <address type='pci' bus='0x00' slot='0x03'/></disk>",
        );
        assert_eq!(
            free_pci_slot(&d, &ctx(), &[0, 1, 2]).unwrap(),
            PciSlot { bus: 0, slot: 4 }
        );
        let all: Vec<u32> = (0..32).collect();
        assert_eq!(
            free_pci_slot(&d, &ctx(), &all).unwrap_err(),
            SlotError::Full
        );
        let bridged = def(
            "pc",
            "<controller type='pci' index='1' model='pci-bridge'/>",
        );
        assert_eq!(
            free_pci_slot(&bridged, &ctx(), &all).unwrap(),
            PciSlot { bus: 1, slot: 1 }
        );
    }

    #[test]
    fn controllers_must_exist() {
        let d = def("pc", "<disk><source file='/b'/><target dev='sdb'/></disk>");
        let err = check_controller(&d, 0).unwrap_err();
        assert!(err.to_string().contains("no SCSI controller 0"), "{err}");
        let d = def(
            "pc",
            "<disk><source file='/a'/><target dev='sda'/></disk>\
             <disk><source file='/b'/><target dev='sdb'/></disk>",
        );
        check_controller(&d, 1).unwrap();
        let d = def(
            "pc",
            "<controller type='scsi' index='0' model='virtio-scsi'/>\
             <disk><source file='/b'/><target dev='sdb'/></disk>",
        );
        check_controller(&d, 0).unwrap();
        let d = def(
            "pc",
            "<disk><source file='/b'/><target dev='sdb' bus='usb'/></disk>",
        );
        assert!(check_controller(&d, 0).is_err());
        let d = def("pc", "<disk><source file='/b'/><target dev='vdb'/></disk>");
        check_controller(&d, 0).unwrap();
    }

    #[test]
    fn q35_needs_an_empty_root_port() {
        let none = def("q35", "");
        let err = free_pci_slot(&none, &ctx(), &[]).unwrap_err();
        assert_eq!(err, SlotError::NoRootPort);
        assert!(
            err.to_string()
                .contains("<controller type='pci' model='pcie-root-port'/>"),
            "{err}"
        );
        let ports = def(
            "q35",
            "<controller type='pci' index='1' model='pcie-root-port'/>\
             <controller type='pci' index='2' model='pcie-root-port'/>\
             <disk><source file='/b'/><target dev='vdb'/>\
             <address type='pci' bus='0x01' slot='0x00'/></disk>",
        );
        let slot = free_pci_slot(&ports, &ctx(), &[]).unwrap();
        assert_eq!(slot, PciSlot { bus: 2, slot: 0 });
        assert_eq!(slot.address().get("bus"), Some("0x02"));
    }
}
