//! A disk's `<driver>` tuning, error policies and identity strings, spelled as libvirt 9.0
//! passes them; `disks.rs` calls these at the points libvirt's property order puts them.

use super::cmd::Props;
use super::{ArgvError, virtio};
use crate::xml::{Disk, DiskDevice};

/// Refuses settings the disk's bus does not have (libvirt's validation), and the ones this
/// builder does not translate. Two settings are read by nobody here, as in libvirt's command
/// line: `snapshot` (the default of the snapshot API) and `<target tray>` (the tray's state
/// last seen, which QEMU reports).
pub(super) fn check(d: &Disk, bus: &str, what: &str) -> Result<(), ArgvError> {
    let refuse =
        |setting: &str, why: &str| Err(ArgvError::invalid(format!("{setting} on {what}"), why));
    if let Some(drv) = &d.driver {
        let virtio_only = drv.ioeventfd.is_some()
            || drv.event_idx.is_some()
            || drv.queues.is_some()
            || drv.queue_size.is_some()
            || drv.virtio.items().iter().any(|(_, v)| v.is_some());
        if virtio_only && bus != "virtio" {
            return refuse("<driver> virtio settings", "only virtio disks have them");
        }
        if drv.iothread.is_some() {
            return Err(ArgvError::unsupported(format!(
                "<driver iothread=…> on {what} (I/O threads)"
            )));
        }
    }
    if let Some(wwn) = &d.wwn {
        if !matches!(bus, "ide" | "scsi") {
            return refuse("<wwn>", "only IDE and SCSI disks have a World Wide Name");
        }
        if wwn_value(wwn).is_none() {
            return refuse(&format!("<wwn>{wwn}</wwn>"), "16 hexadecimal digits");
        }
    }
    for (name, value, max) in [("vendor", &d.vendor, 8), ("product", &d.product, 16)] {
        if let Some(v) = value {
            if bus != "scsi" {
                return refuse(&format!("<{name}>"), "only SCSI disks have one");
            }
            if v.len() > max || !v.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
                return refuse(
                    &format!("<{name}>{v}</{name}>"),
                    &format!("at most {max} printable ASCII characters"),
                );
            }
        }
    }
    Ok(())
}

/// The format node's `discard` and `detect-zeroes`. Zero detection that unmaps needs
/// discarding to be passed on; libvirt otherwise falls back to `on`.
pub(super) fn format_node(d: &Disk, f: &mut Props) {
    let Some(drv) = &d.driver else {
        return;
    };
    f.set_opt("discard", drv.discard.as_deref());
    let zeroes = match drv.detect_zeroes.as_deref() {
        Some("unmap") if drv.discard.as_deref() != Some("unmap") => Some("on"),
        other => other,
    };
    f.set_opt("detect-zeroes", zeroes);
}

/// The node the device reads from: the format node, or a copy-on-read filter above it
/// (`<driver copy_on_read='on'>`), which libvirt names after the disk.
pub(super) fn top_node(d: &Disk, format_node: &str, blockdevs: &mut Vec<Props>) -> String {
    let cor = d.driver.as_ref().and_then(|x| x.copy_on_read.as_deref()) == Some("on");
    if !cor {
        return format_node.to_string();
    }
    let name = format!("libvirt-CoR-{}", d.target.dev);
    blockdevs.push(
        Props::driver("copy-on-read")
            .with("node-name", name.as_str())
            .with("file", format_node)
            .with("discard", "unmap"),
    );
    name
}

/// virtio-blk's own settings, right after its driver as libvirt passes them.
pub(super) fn virtio_blk(d: &Disk, p: &mut Props) {
    let Some(drv) = &d.driver else {
        return;
    };
    let on = |v: &Option<String>| v.as_deref().map(|v| v == "on");
    virtio::options(p, Some(&drv.virtio));
    p.set_opt("ioeventfd", on(&drv.ioeventfd));
    p.set_opt("event_idx", on(&drv.event_idx));
    p.set_opt("num-queues", drv.queues);
    p.set_opt("queue-size", drv.queue_size);
}

/// The identity a disk reports: World Wide Name, SCSI vendor and product (after the boot
/// index).
pub(super) fn identity(d: &Disk, p: &mut Props) {
    p.set_opt("wwn", d.wwn.as_deref().and_then(wwn_value));
    p.set_opt("vendor", d.vendor.as_deref());
    p.set_opt("product", d.product.as_deref());
}

/// What the guest sees on a write or read error (after the serial). `enospace` is QEMU's
/// `enospc` and exists for writes only; a read policy defaults to the write policy.
pub(super) fn error_policies(d: &Disk, p: &mut Props) {
    let Some(drv) = &d.driver else {
        return;
    };
    let write = drv.error_policy.as_deref();
    let read = drv.rerror_policy.as_deref();
    match write {
        Some("enospace") => p.set("werror", "enospc"),
        other => p.set_opt("werror", other),
    }
    let read = read.or(write.filter(|w| *w != "enospace"));
    p.set_opt("rerror", read);
}

/// A WWN as the number QEMU takes: 16 hex digits, `0x` optional.
fn wwn_value(wwn: &str) -> Option<u64> {
    let hex = wwn.strip_prefix("0x").unwrap_or(wwn);
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// What the disk reports about its hardware — block sizes, geometry (IDE), rotation rate —
/// right after the boot index, as libvirt passes them. A USB disk's `removable` is libvirt's
/// default `false` unless the target says `on`.
pub(super) fn hardware(d: &Disk, bus: &str, what: &str, p: &mut Props) -> Result<(), ArgvError> {
    if let Some(b) = &d.blockio {
        p.set_opt("logical_block_size", b.logical_block_size);
        p.set_opt("physical_block_size", b.physical_block_size);
    }
    if let Some(g) = &d.geometry {
        if !matches!(bus, "ide" | "sata" | "virtio" | "scsi") || d.device != DiskDevice::Disk {
            return Err(ArgvError::invalid(
                format!("<geometry> on {what}"),
                "only hard disks on IDE, SATA, SCSI or virtio report a geometry",
            ));
        }
        p.set("cyls", g.cyls);
        p.set("heads", g.heads);
        p.set("secs", g.secs);
        if let Some(trans) = &g.trans {
            if !matches!(bus, "ide" | "sata") {
                return Err(ArgvError::invalid(
                    format!("<geometry trans=…> on {what}"),
                    "only IDE disks have a BIOS translation",
                ));
            }
            p.set("bios-chs-trans", trans.as_str());
        }
    }
    if let Some(rate) = d.target.rotation_rate {
        if !matches!(bus, "ide" | "sata" | "scsi") || d.device != DiskDevice::Disk {
            return Err(ArgvError::invalid(
                format!("<target rotation_rate=…> on {what}"),
                "only IDE, SATA and SCSI hard disks report a rotation rate",
            ));
        }
        p.set("rotation_rate", rate);
    }
    match (bus, d.target.removable.as_deref()) {
        ("usb", removable) => p.set("removable", removable == Some("on")),
        (_, None) => {}
        (_, Some(_)) => {
            return Err(ArgvError::invalid(
                format!("<target removable=…> on {what}"),
                "only USB disks have it",
            ));
        }
    }
    Ok(())
}
