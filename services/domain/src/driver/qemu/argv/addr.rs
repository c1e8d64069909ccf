//! Device placement: `<address type='pci'>` → `bus`/`addr`, `<address type='isa'>` →
//! `iobase`/`irq`, and disk names → indexes.

use super::ArgvError;
use super::cmd::{Cmd, Props};
use crate::xml::{DeviceInfo, DomainDef};

/// The `(bus, slot)` pairs where some device sits at a function other than 0: the device at
/// function 0 there must be multifunction, and libvirt marks it so unless told `off`.
pub(super) fn multifunction_slots(def: &DomainDef) -> Vec<(u32, u32)> {
    let d = &def.devices;
    let infos = d
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
        .chain(d.panics.iter().map(|x| &x.info));
    let mut slots = Vec::new();
    for a in infos.filter_map(|i| i.address.as_ref()) {
        let num = |n: &str| a.get(n).map_or(Some(0), parse_num);
        if a.addr_type == "pci"
            && let (Some(bus), Some(slot), Some(function)) =
                (num("bus"), num("slot"), num("function"))
            && function != 0
            && !slots.contains(&(bus, slot))
        {
            slots.push((bus, slot));
        }
    }
    slots
}

/// Adds `bus`/`addr` for an explicit PCI address; without one QEMU picks a free slot on the
/// root bus. Other address kinds are not translated here. A PCI device's `<acpi index>`
/// follows as `acpi-index` (recorded in `cmd`, so that one on a device that is not PCI is
/// refused: [`super::acpi_index::check`]).
pub(super) fn pci(
    cmd: &Cmd,
    info: &DeviceInfo,
    what: &str,
    props: &mut Props,
) -> Result<(), ArgvError> {
    pci_address(cmd, info, what, props)?;
    if let Some(index) = info.acpi_index {
        props.set("acpi-index", index);
        cmd.acpi_indexes.borrow_mut().push(index);
    }
    Ok(())
}

fn pci_address(
    cmd: &Cmd,
    info: &DeviceInfo,
    what: &str,
    props: &mut Props,
) -> Result<(), ArgvError> {
    let Some(a) = &info.address else {
        return Ok(());
    };
    if a.addr_type != "pci" {
        return Err(ArgvError::unsupported(format!(
            "<address type='{}'> on {what}",
            a.addr_type
        )));
    }
    let num = |name: &str| -> Result<u32, ArgvError> {
        match a.get(name) {
            None => Ok(0),
            Some(v) => parse_num(v).ok_or_else(|| {
                ArgvError::invalid(
                    format!("{what}: <address {name}='{v}'>"),
                    "a number (decimal or 0x hex)",
                )
            }),
        }
    };
    if num("domain")? != 0 {
        return Err(ArgvError::unsupported(format!(
            "PCI domains other than 0 ({what})"
        )));
    }
    let bus = num("bus")?;
    // libvirt adds the PCI controllers such addresses need; this builder does not guess
    // which kind (bridge, root port, ...) was meant.
    if bus != 0 && !cmd.pci_buses.contains(&bus) {
        return Err(ArgvError::invalid(
            format!("{what}: <address type='pci' bus='{bus:#04x}'>"),
            format!("there is no <controller type='pci' index='{bus}'> for it"),
        ));
    }
    let bus_id = if bus == 0 {
        cmd.root_bus().to_string()
    } else {
        format!("pci.{bus}")
    };
    // An address without a slot asks for one to be filled in (libvirt's autofill): QEMU
    // picks a free slot on the bus.
    if a.get("slot").is_none() {
        if a.get("function").is_some_and(|f| parse_num(f) != Some(0)) {
            return Err(ArgvError::invalid(
                format!("{what}: <address type='pci'>"),
                "a function needs a slot",
            ));
        }
        if a.get("bus").is_some() {
            props.set("bus", bus_id);
        }
        return Ok(());
    }
    let slot = num("slot")?;
    let function = num("function")?;
    props.set("bus", bus_id);
    match a.get("multifunction") {
        Some("on") => props.set("multifunction", true),
        Some("off") => props.set("multifunction", false),
        _ if function == 0 && cmd.multifunction_slots.contains(&(bus, slot)) => {
            props.set("multifunction", true)
        }
        _ => {}
    }
    props.set(
        "addr",
        if function == 0 {
            format!("{slot:#x}")
        } else {
            format!("{slot:#x}.{function:#x}")
        },
    );
    Ok(())
}

/// An `<address type='usb' bus=… port=…>` becomes the USB device's `bus` (the controller
/// with that index) and `port`; without one the device goes on the first controller and QEMU
/// picks the port.
pub(super) fn usb(info: &DeviceInfo, what: &str, props: &mut Props) -> Result<(), ArgvError> {
    let Some(a) = &info.address else {
        props.set("bus", "usb.0");
        return Ok(());
    };
    if a.addr_type != "usb" {
        return Err(ArgvError::unsupported(format!(
            "<address type='{}'> on {what}",
            a.addr_type
        )));
    }
    let bus = a.get("bus").unwrap_or("0");
    let index = parse_num(bus)
        .ok_or_else(|| ArgvError::invalid(format!("{what}: <address bus='{bus}'>"), "a number"))?;
    props.set("bus", format!("{}.0", super::controllers::usb_id(index)));
    props.set_opt("port", a.get("port"));
    Ok(())
}

/// An `<address type='isa' iobase=… irq=…>` becomes the ISA device's `iobase`/`irq`; without
/// one QEMU uses the device's standard resources. Other address kinds are refused.
pub(super) fn isa(info: &DeviceInfo, what: &str, props: &mut Props) -> Result<(), ArgvError> {
    let Some(a) = &info.address else {
        return Ok(());
    };
    if a.addr_type != "isa" {
        return Err(ArgvError::unsupported(format!(
            "<address type='{}'> on {what}",
            a.addr_type
        )));
    }
    for name in ["iobase", "irq"] {
        if let Some(v) = a.get(name) {
            let n = parse_num(v).ok_or_else(|| {
                ArgvError::invalid(
                    format!("{what}: <address {name}='{v}'>"),
                    "a number (decimal or 0x hex)",
                )
            })?;
            props.set(name, n);
        }
    }
    Ok(())
}

pub(super) fn parse_num(v: &str) -> Option<u32> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// libvirt's `virDiskNameToIndex`: `vda` → 0, `sdb` → 1, `hdaa` → 26 (shared with the
/// attach/detach rules, `crate::device_edit`).
pub(super) fn disk_index(dev: &str) -> Option<u32> {
    crate::device_edit::disk_index(dev)
}

/// A drive address `controller`/`bus`/`target`/`unit`, read from `<address type='drive'>`.
pub(super) struct DriveAddr {
    pub controller: u32,
    pub bus: u32,
    pub target: u32,
    pub unit: u32,
}

/// The drive address of a disk, from its `<address type='drive'>` or, as libvirt assigns it,
/// from its name's index (`units` units per bus, `buses` buses per controller).
pub(super) fn drive_addr(
    info: &DeviceInfo,
    dev: &str,
    units: u32,
    buses: u32,
) -> Result<DriveAddr, ArgvError> {
    if let Some(a) = &info.address {
        if a.addr_type != "drive" {
            return Err(ArgvError::unsupported(format!(
                "<address type='{}'> on disk '{dev}'",
                a.addr_type
            )));
        }
        let num = |name: &str| a.get(name).and_then(parse_num).unwrap_or(0);
        return Ok(DriveAddr {
            controller: num("controller"),
            bus: num("bus"),
            target: num("target"),
            unit: num("unit"),
        });
    }
    let idx = disk_index(dev).ok_or_else(|| {
        ArgvError::invalid(
            format!("<target dev='{dev}'>"),
            "a disk name like vda, sdb or hdc",
        )
    })?;
    let per_controller = units * buses;
    Ok(DriveAddr {
        controller: idx / per_controller,
        bus: (idx % per_controller) / units,
        target: 0,
        unit: idx % units,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_names_index_like_libvirt() {
        assert_eq!(disk_index("vda"), Some(0));
        assert_eq!(disk_index("sdb"), Some(1));
        assert_eq!(disk_index("hdz"), Some(25));
        assert_eq!(disk_index("sdaa"), Some(26));
        assert_eq!(disk_index("sdba"), Some(52));
        assert_eq!(disk_index("sd"), None);
        assert_eq!(disk_index("nvme0n1"), None);
    }
}
