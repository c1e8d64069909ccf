//! Controllers: PCI bridges and ports, USB, SCSI, SATA, IDE, floppy, virtio-serial, spelled
//! as libvirt 9.0 spells them, and the ones the devices need but the XML left implicit (as
//! libvirt adds them while parsing).

use super::ArgvError;
use super::cmd::{Chipset, Cmd, Props};
use super::disks::{bus, drive_addr};
use super::{addr, pci_controllers, virtio};
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
    // A USB companion joins its master's bus, which must exist first.
    all.sort_by_key(|(c, index)| (rank(c), *index, companion_startport(c).is_some()));
    pci_controllers::root_globals(def, cmd)?;
    for (c, index) in all {
        controller(def, c, index, cmd)?;
    }
    Ok(())
}

/// One controller per type and index, and the root bus the chipset has.
fn check_unique(def: &DomainDef, cmd: &Cmd) -> Result<(), ArgvError> {
    let cs = &def.devices.controllers;
    let idx = indexes(def);
    for (i, c) in cs.iter().enumerate() {
        let index = idx[i];
        // USB companions share their master's index.
        let own_bus = |o: &Controller| companion_startport(o).is_none();
        if own_bus(c)
            && cs[..i]
                .iter()
                .zip(&idx)
                .any(|(o, &oi)| o.controller_type == c.controller_type && oi == index && own_bus(o))
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

fn controller(def: &DomainDef, c: &Controller, index: u32, cmd: &mut Cmd) -> Result<(), ArgvError> {
    let model = c.model.as_deref();
    let what = || {
        let m = model.map(|m| format!(" model='{m}'")).unwrap_or_default();
        format!("<controller type='{}'{m}>", c.controller_type)
    };
    check_settings(c, &what())?;
    let q35 = cmd.chipset == Chipset::Q35;
    let driver = c.driver.as_ref();
    let props = match (c.controller_type.as_str(), model) {
        ("pci", Some("pci-root" | "pcie-root")) => return Ok(()),
        ("pci", None) if index == 0 => return Ok(()),
        ("pci", _) => pci_controllers::props(c, index, cmd)?,
        ("usb", Some("none")) => return Ok(()),
        ("usb", m) => usb(def, c, m, index, q35, &what())?,
        ("scsi", m) => scsi(c, m.unwrap_or(DEFAULT_SCSI_MODEL), index, &what())?,
        // The chipset's own controllers are always there.
        ("sata", None | Some("ahci")) if q35 && index == 0 => return Ok(()),
        ("ide", None | Some("piix3" | "piix4")) if !q35 && index == 0 => return Ok(()),
        // libvirt's name for QEMU's ich9-ahci.
        ("sata", None | Some("ahci")) => Props::driver("ahci").with("id", format!("sata{index}")),
        // The PC's floppy controller is built in; q35 gets one with the first floppy drive.
        ("fdc", None) if index == 0 => return Ok(()),
        ("virtio-serial", m) => {
            let driver_name = match m {
                None | Some("virtio") => "virtio-serial-pci",
                Some("virtio-transitional") => "virtio-serial-pci-transitional",
                Some("virtio-non-transitional") => "virtio-serial-pci-non-transitional",
                Some(_) => return Err(ArgvError::unsupported(what())),
            };
            let mut p = Props::driver(driver_name);
            virtio::options(&mut p, driver.map(|d| &d.virtio));
            p.set("id", format!("virtio-serial{index}"));
            p.set_opt("max_ports", c.ports);
            p.set_opt("vectors", c.vectors);
            p
        }
        _ => return Err(ArgvError::unsupported(what())),
    };
    let mut props = props;
    addr::pci(cmd, &c.info, &what(), &mut props)?;
    cmd.device(props);
    Ok(())
}

/// A SCSI controller; virtio-scsi takes its `<driver>` tuning, as libvirt passes it.
fn scsi(c: &Controller, model: &str, index: u32, what: &str) -> Result<Props, ArgvError> {
    let id = format!("scsi{index}");
    let virtio_driver = match model {
        "virtio-scsi" => "virtio-scsi-pci",
        "virtio-transitional" => "virtio-scsi-pci-transitional",
        "virtio-non-transitional" => "virtio-scsi-pci-non-transitional",
        _ => {
            let driver = match model {
                "lsilogic" => "lsi",
                "lsisas1068" => "mptsas1068",
                "lsisas1078" => "megasas",
                "vmpvscsi" => "pvscsi",
                "am53c974" => "am53c974",
                "dc390" => "dc-390",
                _ => return Err(ArgvError::unsupported(what.to_string())),
            };
            return Ok(Props::driver(driver).with("id", id));
        }
    };
    let mut p = Props::driver(virtio_driver);
    let d = c.driver.clone().unwrap_or_default();
    virtio::options(&mut p, Some(&d.virtio));
    if d.iothread.is_some() {
        return Err(ArgvError::unsupported(format!(
            "<driver iothread=…> on {what} (I/O threads)"
        )));
    }
    p.set("id", id);
    p.set_opt("num_queues", d.queues);
    p.set_opt("cmd_per_lun", d.cmd_per_lun);
    p.set_opt("max_sectors", d.max_sectors);
    p.set_opt("ioeventfd", d.ioeventfd.map(|v| v == "on"));
    Ok(p)
}

/// The settings each controller type has; any other is refused rather than dropped.
fn check_settings(c: &Controller, what: &str) -> Result<(), ArgvError> {
    let kind = c.controller_type.as_str();
    let virtio_scsi = kind == "scsi"
        && matches!(
            c.model.as_deref(),
            Some("virtio-scsi" | "virtio-transitional" | "virtio-non-transitional")
        );
    let refuse = |setting: &str| {
        Err(ArgvError::invalid(
            format!("{setting} on {what}"),
            "this controller has no such setting",
        ))
    };
    if c.ports.is_some() && !matches!(kind, "virtio-serial" | "usb") {
        return refuse("ports=…");
    }
    if c.vectors.is_some() && kind != "virtio-serial" {
        return refuse("vectors=…");
    }
    if (c.model_name.is_some() || c.target.is_some()) && kind != "pci" {
        return refuse("<model name> or <target>");
    }
    if c.master_startport.is_some() && kind != "usb" {
        return refuse("<master>");
    }
    if let Some(d) = &c.driver {
        let virtio = virtio_scsi || kind == "virtio-serial";
        let has_virtio = d.virtio.items().iter().any(|(_, v)| v.is_some());
        let scsi_only = d.queues.is_some()
            || d.cmd_per_lun.is_some()
            || d.max_sectors.is_some()
            || d.ioeventfd.is_some()
            || d.iothread.is_some();
        if (has_virtio && !virtio) || (scsi_only && !virtio_scsi) {
            return refuse("this <driver> setting");
        }
    }
    Ok(())
}

/// A USB controller: libvirt's model names for QEMU's devices; a companion controller
/// (`<master startport>`, the UHCIs beside an EHCI) joins its master's bus instead of
/// opening its own.
fn usb(
    def: &DomainDef,
    c: &Controller,
    model: Option<&str>,
    index: u32,
    q35: bool,
    what: &str,
) -> Result<Props, ArgvError> {
    let driver = match model {
        None if q35 => "qemu-xhci",
        None | Some("piix3-uhci") => "piix3-usb-uhci",
        Some("piix4-uhci") => "piix4-usb-uhci",
        Some("ehci") => "usb-ehci",
        Some("ich9-ehci1") => "ich9-usb-ehci1",
        Some("ich9-uhci1") => "ich9-usb-uhci1",
        Some("ich9-uhci2") => "ich9-usb-uhci2",
        Some("ich9-uhci3") => "ich9-usb-uhci3",
        Some("vt82c686b-uhci") => "vt82c686b-usb-uhci",
        Some("pci-ohci") => "pci-ohci",
        Some("qemu-xhci") => "qemu-xhci",
        Some("nec-xhci") => "nec-usb-xhci",
        Some(_) => return Err(ArgvError::unsupported(what.to_string())),
    };
    let mut p = Props::driver(driver);
    if let Some(ports) = c.ports {
        if !matches!(driver, "qemu-xhci" | "nec-usb-xhci") {
            return Err(ArgvError::invalid(
                format!("ports=… on {what}"),
                "only the xHCI controllers have a port count",
            ));
        }
        if driver == "qemu-xhci" && ports > 15 {
            return Err(ArgvError::invalid(
                format!("ports='{ports}' on {what}"),
                "qemu-xhci has at most 15 ports",
            ));
        }
        // xHCI has as many USB 2 as USB 3 ports.
        p.set("p2", ports);
        p.set("p3", ports);
    }
    match companion_startport(c) {
        None => p.set("id", usb_id(index)),
        Some(port) => {
            let has_master = def
                .devices
                .controllers
                .iter()
                .zip(indexes(def))
                .any(|(m, i)| {
                    m.controller_type == "usb" && i == index && companion_startport(m).is_none()
                });
            if !has_master {
                return Err(ArgvError::invalid(
                    format!("<master> of {what}"),
                    format!("there is no USB controller with index {index} to be companion to"),
                ));
            }
            p.set("masterbus", format!("{}.0", usb_id(index)));
            p.set("firstport", port);
        }
    }
    Ok(p)
}

/// The first port of a USB companion controller on its master's bus: `<master startport>`,
/// or for ICH9's UHCIs the one libvirt fills in (uhci1 0, uhci2 2, uhci3 4).
fn companion_startport(c: &Controller) -> Option<u32> {
    if c.controller_type != "usb" {
        return None;
    }
    c.master_startport.or(match c.model.as_deref() {
        Some("ich9-uhci1") => Some(0),
        Some("ich9-uhci2") => Some(2),
        Some("ich9-uhci3") => Some(4),
        _ => None,
    })
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
