//! Boot order → per-device `bootindex`.
//!
//! As libvirt 9.0 does, `<os><boot dev=…>` is not passed as `-boot order=`: each listed kind
//! gives its first device (first hard disk, first CD-ROM, first floppy, first NIC) the next
//! boot index, and `-boot strict=on` keeps the firmware from trying anything else.
//! Per-device `<boot order>` is used as written; libvirt forbids mixing the two.

use super::ArgvError;
use super::disks::libvirt_order;
use crate::xml::{BootDev, DiskDevice, DomainDef};

/// Boot indexes of the disks and the interfaces, in their definition order.
pub(super) struct BootIndexes {
    pub disks: Vec<Option<u32>>,
    pub nics: Vec<Option<u32>>,
}

pub(super) fn boot_indexes(def: &DomainDef) -> Result<BootIndexes, ArgvError> {
    let d = &def.devices;
    let mut out = BootIndexes {
        disks: d.disks.iter().map(|x| x.boot_order).collect(),
        nics: d.interfaces.iter().map(|x| x.boot_order).collect(),
    };
    let per_device = out.disks.iter().chain(&out.nics).any(Option::is_some);
    if def.os.boot.is_empty() {
        return Ok(out);
    }
    if per_device {
        return Err(ArgvError::invalid(
            "<boot order=…>",
            "per-device boot order cannot be combined with <os><boot dev=…>",
        ));
    }
    if def.os.kernel.is_some() {
        return Ok(out);
    }
    let mut next = 1;
    for dev in &def.os.boot {
        let slot = match dev {
            BootDev::Hd => first_disk(def, DiskDevice::Disk)?.map(|i| &mut out.disks[i]),
            BootDev::Cdrom => first_disk(def, DiskDevice::Cdrom)?.map(|i| &mut out.disks[i]),
            BootDev::Fd => first_disk(def, DiskDevice::Floppy)?.map(|i| &mut out.disks[i]),
            BootDev::Network => out.nics.first_mut(),
        };
        if let Some(slot) = slot {
            *slot = Some(next);
            next += 1;
        }
    }
    Ok(out)
}

/// The first disk of a kind in libvirt's disk order (grouped by bus, sorted by name), which
/// is not always the first one written.
fn first_disk(def: &DomainDef, kind: DiskDevice) -> Result<Option<usize>, ArgvError> {
    Ok(libvirt_order(def)?
        .into_iter()
        .find(|&i| def.devices.disks[i].device == kind))
}
