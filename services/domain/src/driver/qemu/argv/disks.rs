//! Disks as `-blockdev` (storage node + format node) and `-device`, and the controllers they
//! hang off (SCSI, SATA, USB, virtio-serial, PCI ports).
//!
//! Node names follow libvirt: `libvirt-N-storage` / `libvirt-N-format`, N counting down from
//! the number of disks, so later hotplugged disks get fresh, higher numbers.

use serde_json::Value;

use super::ArgvError;
use super::addr::{self, DriveAddr};
use super::boot::boot_indexes;
use super::cmd::{Chipset, Cmd, Props};
use crate::xml::{Controller, Disk, DiskDevice, DomainDef};

/// Image formats QEMU opens without extra secrets or setup.
const FORMATS: &[&str] = &[
    "raw",
    "qcow2",
    "qcow",
    "qed",
    "vmdk",
    "vdi",
    "vpc",
    "vhdx",
    "cloop",
    "dmg",
    "parallels",
];

/// The explicit controllers, then the ones the disks need but the XML left implicit (as
/// libvirt adds them while parsing).
pub(super) fn controllers(def: &DomainDef, cmd: &mut Cmd) -> Result<(), ArgvError> {
    for c in &def.devices.controllers {
        controller(c, cmd)?;
    }
    let declared = |t: &str, i: u32| {
        def.devices
            .controllers
            .iter()
            .any(|c| c.controller_type == t && c.index.unwrap_or(0) == i)
    };
    let mut implied: Vec<(&str, u32)> = Vec::new();
    for d in &def.devices.disks {
        let kind = match bus(d)? {
            "scsi" => "scsi",
            "sata" if cmd.chipset != Chipset::Q35 => "sata",
            "sata" => "sata-q35",
            _ => continue,
        };
        let a = drive_addr(d)?;
        if kind == "sata-q35" && a.controller == 0 {
            continue;
        }
        let kind = if kind == "sata-q35" { "sata" } else { kind };
        if !declared(kind, a.controller) && !implied.contains(&(kind, a.controller)) {
            implied.push((kind, a.controller));
        }
    }
    let usb_input = def
        .devices
        .inputs
        .iter()
        .any(|i| i.bus.as_deref() == Some("usb"));
    if usb_input {
        match def
            .devices
            .controllers
            .iter()
            .find(|c| c.controller_type == "usb" && c.index.unwrap_or(0) == 0)
        {
            None => implied.push(("usb", 0)),
            Some(c) if c.model.as_deref() == Some("none") => {
                return Err(ArgvError::invalid(
                    "<input bus='usb'>",
                    "needs a USB controller, but <controller type='usb' model='none'> removes it",
                ));
            }
            Some(_) => {}
        }
    }
    for (kind, index) in implied {
        controller(
            &Controller {
                controller_type: kind.to_string(),
                index: Some(index),
                model: None,
                info: Default::default(),
                extra: Default::default(),
            },
            cmd,
        )?;
    }
    Ok(())
}

fn controller(c: &Controller, cmd: &mut Cmd) -> Result<(), ArgvError> {
    let index = c.index.unwrap_or(0);
    let model = c.model.as_deref();
    let what = || {
        let m = model.map(|m| format!(" model='{m}'")).unwrap_or_default();
        format!("<controller type='{}'{m}>", c.controller_type)
    };
    let q35 = cmd.chipset == Chipset::Q35;
    let props = match (c.controller_type.as_str(), model) {
        ("pci", Some("pci-root" | "pcie-root")) => return Ok(()),
        ("pci", Some("pcie-root-port")) => Props::driver("pcie-root-port")
            .with("port", 0x10 + index)
            .with("chassis", index)
            .with("id", format!("pci.{index}")),
        ("pci", Some("pci-bridge")) => Props::driver("pci-bridge")
            .with("chassis_nr", index)
            .with("id", format!("pci.{index}")),
        ("usb", Some("none")) => return Ok(()),
        ("usb", m) => {
            let driver = match m {
                None if q35 => "qemu-xhci",
                None | Some("piix3-uhci") => "piix3-usb-uhci",
                Some("qemu-xhci") => "qemu-xhci",
                Some("nec-xhci") => "nec-usb-xhci",
                Some("ich9-ehci1") => "ich9-usb-ehci1",
                Some(_) => return Err(ArgvError::unsupported(what())),
            };
            Props::driver(driver).with("id", usb_id(index))
        }
        ("scsi", None | Some("virtio-scsi")) => {
            Props::driver("virtio-scsi-pci").with("id", format!("scsi{index}"))
        }
        // The chipset's own controllers are always there.
        ("sata", None | Some("ahci")) if q35 && index == 0 => return Ok(()),
        ("ide", None | Some("piix3" | "piix4")) if !q35 && index == 0 => return Ok(()),
        ("sata", None | Some("ahci")) => {
            Props::driver("ich9-ahci").with("id", format!("sata{index}"))
        }
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

/// QEMU's id for USB controller `index` (libvirt's: `usb`, then `usb1`, ...).
pub(super) fn usb_id(index: u32) -> String {
    if index == 0 {
        "usb".into()
    } else {
        format!("usb{index}")
    }
}

/// The disk's bus: `<target bus>`, or what its name implies, as libvirt does.
fn bus(d: &Disk) -> Result<&str, ArgvError> {
    if let Some(b) = &d.target.bus {
        return Ok(b);
    }
    let dev = d.target.dev.as_str();
    Ok(if dev.starts_with("vd") {
        "virtio"
    } else if dev.starts_with("sd") {
        "scsi"
    } else if dev.starts_with("hd") {
        "ide"
    } else if dev.starts_with("fd") {
        "fdc"
    } else {
        return Err(ArgvError::invalid(
            format!("<disk><target dev='{dev}'>"),
            "give bus=… or a name like vda, sda or hda",
        ));
    })
}

fn drive_addr(d: &Disk) -> Result<DriveAddr, ArgvError> {
    let (units, buses) = match bus(d)? {
        "ide" => (2, 2),
        "sata" => (6, 1),
        _ => (7, 1),
    };
    addr::drive_addr(&d.info, &d.target.dev, units, buses)
}

pub(super) fn disks(def: &DomainDef, cmd: &mut Cmd) -> Result<(), ArgvError> {
    let boot = boot_indexes(def)?;
    let count = def.devices.disks.len();
    for (i, d) in def.devices.disks.iter().enumerate() {
        disk(d, count - i, boot.disks[i], cmd)?;
    }
    Ok(())
}

fn disk(d: &Disk, n: usize, bootindex: Option<u32>, cmd: &mut Cmd) -> Result<(), ArgvError> {
    let dev = &d.target.dev;
    let what = format!("disk '{dev}'");
    let cdrom = d.device == DiskDevice::Cdrom;
    match d.device {
        DiskDevice::Disk | DiskDevice::Cdrom => {}
        other => return Err(ArgvError::unsupported(format!("<disk device='{other}'>"))),
    }
    let driver = d.driver.as_ref();
    if let Some(name) = driver.and_then(|x| x.name.as_deref())
        && name != "qemu"
    {
        return Err(ArgvError::unsupported(format!(
            "<driver name='{name}'> on {what}"
        )));
    }
    let format = driver.and_then(|x| x.format.as_deref()).unwrap_or("raw");
    if !FORMATS.contains(&format) {
        return Err(ArgvError::unsupported(format!(
            "<driver type='{format}'> on {what}"
        )));
    }
    // (direct, no-flush, write-cache) per libvirt's qemuDomainDiskCacheModeToQemu.
    let cache = match driver.and_then(|x| x.cache.as_deref()) {
        None | Some("default") => None,
        Some("none") => Some((true, false, true)),
        Some("writethrough") => Some((false, false, false)),
        Some("writeback") => Some((false, false, true)),
        Some("directsync") => Some((true, false, false)),
        Some("unsafe") => Some((false, true, true)),
        Some(other) => return Err(ArgvError::unsupported(format!("cache='{other}'"))),
    };
    let cache_json = cache
        .map(|(direct, no_flush, _)| serde_json::json!({"direct": direct, "no-flush": no_flush}));
    let readonly = d.readonly || cdrom;
    let source = source_node(d, &what)?;
    let format_node = format!("libvirt-{n}-format");
    if let Some((driver_name, path)) = source {
        let storage = format!("libvirt-{n}-storage");
        let mut s = Props::driver(driver_name)
            .with("filename", path)
            .with("node-name", storage.as_str());
        s.set_opt("cache", cache_json.clone());
        s.set_opt("aio", driver.and_then(|x| x.io.as_deref()));
        s.set("auto-read-only", true);
        s.set("discard", "unmap");
        cmd.blockdev(s);
        let mut f = Props::new()
            .with("node-name", format_node.as_str())
            .with("read-only", readonly);
        if driver.and_then(|x| x.discard.as_deref()) == Some("unmap") {
            f.set("discard", "unmap");
        }
        f.set_opt("cache", cache_json);
        f.set("driver", format);
        f.set("file", storage);
        cmd.blockdev(f);
    } else if !cdrom {
        return Err(ArgvError::invalid(
            &what,
            "needs a <source>; only CD-ROMs may be empty",
        ));
    }
    let has_media = source.is_some();
    let mut p = match (bus(d)?, cdrom) {
        ("virtio", false) => {
            let mut p = Props::driver("virtio-blk-pci");
            addr::pci(cmd, &d.info, &what, &mut p)?;
            p
        }
        ("virtio", true) => {
            return Err(ArgvError::invalid(
                &what,
                "a CD-ROM cannot be on the virtio bus; use sata, scsi or ide",
            ));
        }
        ("sata", _) => {
            let a = drive_addr(d)?;
            let bus = if cmd.chipset == Chipset::Q35 && a.controller == 0 {
                format!("ide.{}", a.unit)
            } else {
                format!("sata{}.{}", a.controller, a.unit)
            };
            Props::driver(if cdrom { "ide-cd" } else { "ide-hd" }).with("bus", bus)
        }
        ("ide", _) => {
            let a = drive_addr(d)?;
            if cmd.chipset == Chipset::Q35 || a.controller != 0 {
                return Err(ArgvError::unsupported(format!(
                    "bus='ide' on {what} with this machine (q35 has SATA, not IDE)"
                )));
            }
            Props::driver(if cdrom { "ide-cd" } else { "ide-hd" })
                .with("bus", format!("ide.{}", a.bus))
                .with("unit", a.unit)
        }
        ("scsi", _) => {
            let a = drive_addr(d)?;
            Props::driver(if cdrom { "scsi-cd" } else { "scsi-hd" })
                .with("bus", format!("scsi{}.0", a.controller))
                .with("channel", a.bus)
                .with("scsi-id", a.target)
                .with("lun", a.unit)
        }
        (other, _) => {
            return Err(ArgvError::unsupported(format!(
                "<target bus='{other}'> on {what}"
            )));
        }
    };
    if has_media {
        p.set("drive", format_node);
    }
    p.set("id", device_id(d)?);
    if d.shareable {
        p.set("share-rw", true);
    }
    p.set_opt("serial", d.serial.as_deref());
    if let Some((_, _, wc)) = cache {
        p.set("write-cache", if wc { "on" } else { "off" });
    }
    p.set_opt("bootindex", bootindex.map(Value::from));
    cmd.device(p);
    Ok(())
}

/// The storage node's driver and path, or `None` for an empty CD-ROM.
fn source_node<'a>(d: &'a Disk, what: &str) -> Result<Option<(&'static str, &'a str)>, ArgvError> {
    let cdrom = d.device == DiskDevice::Cdrom;
    let src = d.source.as_ref();
    match d.disk_type.as_str() {
        "file" => Ok(src.and_then(|s| s.file.as_deref()).map(|p| ("file", p))),
        "block" => Ok(src
            .and_then(|s| s.dev.as_deref())
            .map(|p| (if cdrom { "host_cdrom" } else { "host_device" }, p))),
        "volume" => Err(ArgvError::unsupported(format!(
            "<disk type='volume'> ({what}): it needs the storage service"
        ))),
        other => Err(ArgvError::unsupported(format!(
            "<disk type='{other}'> ({what})"
        ))),
    }
}

/// libvirt's device ids: `virtio-disk0`, `sata0-0-1`, `ide0-1-0`, `scsi0-0-0-1`.
fn device_id(d: &Disk) -> Result<String, ArgvError> {
    Ok(match bus(d)? {
        "virtio" => format!(
            "virtio-disk{}",
            addr::disk_index(&d.target.dev).unwrap_or(0)
        ),
        "sata" => {
            let a = drive_addr(d)?;
            format!("sata{}-0-{}", a.controller, a.unit)
        }
        "ide" => {
            let a = drive_addr(d)?;
            format!("ide{}-{}-{}", a.controller, a.bus, a.unit)
        }
        _ => {
            let a = drive_addr(d)?;
            format!("scsi{}-{}-{}-{}", a.controller, a.bus, a.target, a.unit)
        }
    })
}
