//! Controllers: PCI bridges and ports, USB, SCSI, SATA, IDE, floppy, virtio-serial, spelled
//! as libvirt 9.0 spells them, and the ones the devices need but the XML left implicit (as
//! libvirt adds them while parsing).

use super::ArgvError;
use super::addr;
use super::cmd::{Chipset, Cmd, Props};
use super::disks::{bus, drive_addr};
use crate::xml::{Controller, DomainDef};

/// libvirt's default SCSI controller model on x86 (`qemuDomainDefaultSCSIControllerModel`):
/// a guest defined without one gets the LSI 53C895A, whose driver every OS ships.
const DEFAULT_SCSI_MODEL: &str = "lsilogic";

/// Each controller's index, in definition order. A controller without one gets, as in
/// libvirt's post-parse, the lowest index its type does not use yet.
pub(super) fn indexes(def: &DomainDef) -> Vec<u32> {
    let cs = &def.devices.controllers;
    let mut out: Vec<Option<u32>> = cs.iter().map(|c| c.index).collect();
    for i in 0..cs.len() {
        if out[i].is_none() {
            let used = |n: u32| {
                cs.iter()
                    .zip(&out)
                    .any(|(c, idx)| c.controller_type == cs[i].controller_type && *idx == Some(n))
            };
            out[i] = (0..).find(|&n| !used(n));
        }
    }
    out.into_iter().map(|i| i.unwrap_or(0)).collect()
}

/// The declared controller of type `kind` with index `index`, if any.
fn declared<'a>(def: &'a DomainDef, kind: &str, index: u32) -> Option<&'a Controller> {
    def.devices
        .controllers
        .iter()
        .zip(indexes(def))
        .find(|(c, i)| c.controller_type == kind && *i == index)
        .map(|(c, _)| c)
}

/// The order libvirt emits controller types in (`qemuBuildControllersCommandLine`); within a
/// type, by index. PCI controllers come first, so that every bus exists before a device
/// names it.
const TYPE_ORDER: &[&str] = &["pci", "usb", "scsi", "ide", "sata", "virtio-serial", "fdc"];

/// The explicit and the implied controllers, in libvirt's order.
pub(super) fn controllers(def: &DomainDef, cmd: &mut Cmd) -> Result<(), ArgvError> {
    check_unique(def, cmd)?;
    let implied: Vec<Controller> = implied(def, cmd)?
        .into_iter()
        .map(|(kind, index)| Controller {
            controller_type: kind.to_string(),
            index: Some(index),
            ..Default::default()
        })
        .collect();
    let mut all: Vec<(&Controller, u32)> =
        def.devices.controllers.iter().zip(indexes(def)).collect();
    all.extend(implied.iter().map(|c| (c, c.index.unwrap_or(0))));
    let rank = |c: &Controller| {
        TYPE_ORDER
            .iter()
            .position(|t| *t == c.controller_type)
            .unwrap_or(TYPE_ORDER.len())
    };
    all.sort_by_key(|(c, index)| (rank(c), *index));
    for (c, index) in all {
        controller(c, index, cmd)?;
    }
    Ok(())
}

/// One controller per type and index, and the root bus the chipset has.
fn check_unique(def: &DomainDef, cmd: &Cmd) -> Result<(), ArgvError> {
    let cs = &def.devices.controllers;
    let idx = indexes(def);
    for (i, c) in cs.iter().enumerate() {
        let index = idx[i];
        if cs[..i]
            .iter()
            .zip(&idx)
            .any(|(o, &oi)| o.controller_type == c.controller_type && oi == index)
        {
            return Err(ArgvError::invalid(
                format!("<controller type='{}' index='{index}'>", c.controller_type),
                "defined more than once",
            ));
        }
        let root = match cmd.chipset {
            Chipset::I440fx => "pci-root",
            Chipset::Q35 => "pcie-root",
        };
        match (c.controller_type.as_str(), c.model.as_deref()) {
            ("pci", Some(m @ ("pci-root" | "pcie-root"))) => {
                if m != root {
                    return Err(ArgvError::invalid(
                        format!("<controller type='pci' model='{m}'>"),
                        format!("machine type '{}' has a {root}", cmd.machine),
                    ));
                }
                if index != 0 || c.info.address.is_some() {
                    return Err(ArgvError::invalid(
                        format!("<controller type='pci' model='{m}'>"),
                        "the root bus has index 0 and no address",
                    ));
                }
            }
            // libvirt fills in the root's model.
            ("pci", None) if index == 0 => {}
            ("pci", _) if index == 0 => {
                return Err(ArgvError::invalid(
                    "<controller type='pci' index='0'>",
                    format!("index 0 is the root bus, a {root}"),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Controllers the disks and inputs need that the XML does not declare.
fn implied(def: &DomainDef, cmd: &Cmd) -> Result<Vec<(&'static str, u32)>, ArgvError> {
    let is_declared = |t: &str, i: u32| declared(def, t, i).is_some();
    let mut implied: Vec<(&str, u32)> = Vec::new();
    let mut usb_needed = None;
    for d in &def.devices.disks {
        let kind = match bus(d)? {
            "scsi" => "scsi",
            // q35's own AHCI is controller 0.
            "sata" if cmd.chipset == Chipset::Q35 && drive_addr(d)?.controller == 0 => continue,
            "sata" => "sata",
            "usb" => {
                usb_needed.get_or_insert(format!("<disk bus='usb'> ('{}')", d.target.dev));
                continue;
            }
            _ => continue,
        };
        let a = drive_addr(d)?;
        if !is_declared(kind, a.controller) && !implied.contains(&(kind, a.controller)) {
            implied.push((kind, a.controller));
        }
    }
    if def
        .devices
        .inputs
        .iter()
        .any(|i| i.bus.as_deref() == Some("usb"))
    {
        usb_needed.get_or_insert("<input bus='usb'>".to_string());
    }
    if let Some(what) = usb_needed {
        match declared(def, "usb", 0) {
            None => implied.push(("usb", 0)),
            Some(c) if c.model.as_deref() == Some("none") => {
                return Err(ArgvError::invalid(
                    what,
                    "needs a USB controller, but <controller type='usb' model='none'> removes it",
                ));
            }
            Some(_) => {}
        }
    }
    Ok(implied)
}

fn controller(c: &Controller, index: u32, cmd: &mut Cmd) -> Result<(), ArgvError> {
    let model = c.model.as_deref();
    let what = || {
        let m = model.map(|m| format!(" model='{m}'")).unwrap_or_default();
        format!("<controller type='{}'{m}>", c.controller_type)
    };
    let q35 = cmd.chipset == Chipset::Q35;
    let pci_id = format!("pci.{index}");
    let props = match (c.controller_type.as_str(), model) {
        ("pci", Some("pci-root" | "pcie-root")) => return Ok(()),
        ("pci", None) if index == 0 => return Ok(()),
        // libvirt numbers a port after its own slot and function.
        ("pci", Some("pcie-root-port")) => Props::driver("pcie-root-port")
            .with("port", root_port_number(c, index)?)
            .with("chassis", index)
            .with("id", pci_id),
        ("pci", Some("pci-bridge")) => Props::driver("pci-bridge")
            .with("chassis_nr", index)
            .with("id", pci_id),
        ("pci", Some("dmi-to-pci-bridge")) if q35 => {
            Props::driver("i82801b11-bridge").with("id", pci_id)
        }
        ("pci", Some("pcie-to-pci-bridge")) if q35 => {
            Props::driver("pcie-pci-bridge").with("id", pci_id)
        }
        ("pci", Some("pcie-switch-upstream-port")) if q35 => {
            Props::driver("x3130-upstream").with("id", pci_id)
        }
        ("usb", Some("none")) => return Ok(()),
        ("usb", m) => {
            let driver = match m {
                None if q35 => "qemu-xhci",
                None | Some("piix3-uhci") => "piix3-usb-uhci",
                Some("piix4-uhci") => "piix4-usb-uhci",
                Some("pci-ohci") => "pci-ohci",
                Some("qemu-xhci") => "qemu-xhci",
                Some("nec-xhci") => "nec-usb-xhci",
                Some("ich9-ehci1") => "ich9-usb-ehci1",
                Some(_) => return Err(ArgvError::unsupported(what())),
            };
            Props::driver(driver).with("id", usb_id(index))
        }
        ("scsi", m) => {
            let driver = match m.unwrap_or(DEFAULT_SCSI_MODEL) {
                "lsilogic" => "lsi",
                "virtio-scsi" => "virtio-scsi-pci",
                "virtio-transitional" => "virtio-scsi-pci-transitional",
                "virtio-non-transitional" => "virtio-scsi-pci-non-transitional",
                "lsisas1068" => "mptsas1068",
                "lsisas1078" => "megasas",
                "vmpvscsi" => "pvscsi",
                _ => return Err(ArgvError::unsupported(what())),
            };
            Props::driver(driver).with("id", format!("scsi{index}"))
        }
        // The chipset's own controllers are always there.
        ("sata", None | Some("ahci")) if q35 && index == 0 => return Ok(()),
        ("ide", None | Some("piix3" | "piix4")) if !q35 && index == 0 => return Ok(()),
        // libvirt's name for QEMU's ich9-ahci.
        ("sata", None | Some("ahci")) => Props::driver("ahci").with("id", format!("sata{index}")),
        // The PC's floppy controller is built in; q35 gets one with the first floppy drive.
        ("fdc", None) if index == 0 => return Ok(()),
        ("virtio-serial", None) => {
            Props::driver("virtio-serial-pci").with("id", format!("virtio-serial{index}"))
        }
        _ => return Err(ArgvError::unsupported(what())),
    };
    let mut props = props;
    addr::pci(cmd, &c.info, &what(), &mut props)?;
    cmd.device(props);
    Ok(())
}

/// A PCIe root port's `port`: `slot << 3 | function` of its address, as libvirt assigns it;
/// without an address (QEMU picks the slot) `0x10 + index`.
fn root_port_number(c: &Controller, index: u32) -> Result<u32, ArgvError> {
    let Some(a) = c.info.address.as_ref().filter(|a| a.addr_type == "pci") else {
        return Ok(0x10 + index);
    };
    let num = |name: &str| a.get(name).map_or(Some(0), addr::parse_num);
    match (num("slot"), num("function")) {
        (Some(slot), Some(function)) => Ok((slot << 3) | function),
        _ => Err(ArgvError::invalid(
            "<controller model='pcie-root-port'><address>",
            "slot and function must be numbers",
        )),
    }
}

/// QEMU's id for USB controller `index` (libvirt's: `usb`, then `usb1`, ...).
pub(super) fn usb_id(index: u32) -> String {
    if index == 0 {
        "usb".into()
    } else {
        format!("usb{index}")
    }
}

/// The model of SCSI controller `index`: declared, or libvirt's default.
pub(super) fn scsi_model(def: &DomainDef, index: u32) -> &str {
    declared(def, "scsi", index)
        .and_then(|c| c.model.as_deref())
        .unwrap_or(DEFAULT_SCSI_MODEL)
}
