//! `<acpi index>`: QEMU's `acpi-index` property exists only on PCI devices, where
//! [`super::addr::pci`] sets it; one on any other device (an IDE disk, an ISA serial port) is
//! refused here, as libvirt refuses it ("ACPI index is only supported for PCI devices").

use super::ArgvError;
use super::cmd::Cmd;
use crate::xml::DomainDef;
use crate::xml::devices::DeviceInfo;

/// Every device's `<alias>`/`<acpi>`/`<address>` in the definition.
fn infos(def: &DomainDef) -> impl Iterator<Item = &DeviceInfo> {
    let d = &def.devices;
    d.disks
        .iter()
        .map(|x| &x.info)
        .chain(d.controllers.iter().map(|x| &x.info))
        .chain(d.interfaces.iter().map(|x| &x.info))
        .chain(
            [&d.serials, &d.parallels, &d.consoles, &d.channels]
                .into_iter()
                .flatten()
                .map(|x| &x.info),
        )
        .chain(d.inputs.iter().map(|x| &x.info))
        .chain(d.videos.iter().map(|x| &x.info))
        .chain(d.watchdogs.iter().map(|x| &x.info))
        .chain(d.memballoon.iter().map(|x| &x.info))
        .chain(d.rngs.iter().map(|x| &x.info))
        .chain(d.panics.iter().map(|x| &x.info))
}

/// Called once every device is on the command line: each `<acpi index>` of the definition
/// must have become a PCI device's `acpi-index`, and no two devices may share one (the guest
/// names devices by it; QEMU refuses duplicates).
pub(super) fn check(def: &DomainDef, cmd: &Cmd) -> Result<(), ArgvError> {
    let mut wanted: Vec<u32> = infos(def).filter_map(|i| i.acpi_index).collect();
    wanted.sort_unstable();
    if let Some(w) = wanted.windows(2).find(|w| w[0] == w[1]) {
        return Err(ArgvError::invalid(
            format!("<acpi index='{}'>", w[0]),
            "used by more than one device",
        ));
    }
    let mut given = cmd.acpi_indexes.borrow().clone();
    given.sort_unstable();
    given.dedup();
    match wanted.iter().find(|i| given.binary_search(i).is_err()) {
        None => Ok(()),
        Some(i) => Err(ArgvError::invalid(
            format!("<acpi index='{i}'>"),
            "only PCI devices have an ACPI index",
        )),
    }
}
