//! Disks as `-blockdev` (storage node + format node) and `-device`, spelled as libvirt 9.0
//! spells them: virtio, SATA, IDE, SCSI, USB and floppy.
//!
//! Disks are taken in libvirt's order (see [`libvirt_order`]); node names follow libvirt:
//! `libvirt-N-storage` / `libvirt-N-format`, N counting down from the number of disks, so later
//! hotplugged disks get fresh, higher numbers.

use serde_json::Value;

use super::addr::{self, DriveAddr};
use super::boot::boot_indexes;
use super::cmd::{Chipset, Cmd, Props};
use super::controllers::{scsi_model, usb_id};
use super::{ArgvError, disk_tuning};
use crate::xml::{Disk, DiskDevice, DomainDef};

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

/// The disk's bus: `<target bus>`, or what its name implies, as libvirt does
/// ([`crate::device_edit::disk_bus`], shared with attach/detach).
pub(super) fn bus(d: &Disk) -> Result<&str, ArgvError> {
    crate::device_edit::disk_bus(d).ok_or_else(|| {
        ArgvError::invalid(
            format!("<disk><target dev='{}'>", d.target.dev),
            "give bus=… or a name like vda, sda or hda",
        )
    })
}

/// The disk's drive address: its `<address type='drive'>`, or the one libvirt assigns from
/// its name's index. SCSI uses libvirt's wide mapping (15 units per controller, skipping unit
/// 7, the controller's own).
pub(super) fn drive_addr(d: &Disk) -> Result<DriveAddr, ArgvError> {
    let (units, buses) = match bus(d)? {
        "scsi" if d.info.address.is_none() => {
            let idx = name_index(d)?;
            let unit = idx % 15;
            return Ok(DriveAddr {
                controller: idx / 15,
                bus: 0,
                target: 0,
                unit: if unit >= 7 { unit + 1 } else { unit },
            });
        }
        "ide" => (2, 2),
        "sata" => (6, 1),
        "fdc" => (2, 1),
        _ => (7, 1),
    };
    addr::drive_addr(&d.info, &d.target.dev, units, buses)
}

fn name_index(d: &Disk) -> Result<u32, ArgvError> {
    addr::disk_index(&d.target.dev).ok_or_else(|| {
        ArgvError::invalid(
            format!("<target dev='{}'>", d.target.dev),
            "a disk name like vda, sdb or hdc",
        )
    })
}

/// The order libvirt keeps disks in (`virDomainDiskInsert`, applied while parsing): grouped
/// by bus in order of first appearance, each bus's disks sorted by their name's index. The
/// node names, and which disk `<boot dev='hd'/>` means, follow this order.
pub(super) fn libvirt_order(def: &DomainDef) -> Result<Vec<usize>, ArgvError> {
    let disks = &def.devices.disks;
    let index = |i: usize| addr::disk_index(&disks[i].target.dev).map_or(-1, i64::from);
    let mut order: Vec<usize> = Vec::with_capacity(disks.len());
    for (new, d) in disks.iter().enumerate() {
        let new_bus = bus(d)?;
        let mut insert_at = None;
        for pos in (0..order.len()).rev() {
            if bus(&disks[order[pos]])? != new_bus {
                continue;
            }
            if index(order[pos]) > index(new) {
                insert_at = Some(pos);
            } else if insert_at.is_none() {
                insert_at = Some(pos + 1);
            }
        }
        order.insert(insert_at.unwrap_or(order.len()), new);
    }
    Ok(order)
}

pub(super) fn disks(def: &DomainDef, cmd: &mut Cmd) -> Result<(), ArgvError> {
    let boot = boot_indexes(def)?;
    let order = libvirt_order(def)?;
    floppy_controller(def, &boot.disks, cmd)?;
    let mut ids: Vec<(String, &str)> = Vec::new();
    for d in &def.devices.disks {
        let id = device_id(def, d)?;
        if let Some((_, other)) = ids.iter().find(|(i, _)| *i == id) {
            return Err(ArgvError::invalid(
                format!("disks '{other}' and '{}'", d.target.dev),
                "they have the same address",
            ));
        }
        ids.push((id, &d.target.dev));
    }
    let count = order.len();
    for (pos, &i) in order.iter().enumerate() {
        disk(def, &def.devices.disks[i], count - pos, boot.disks[i], cmd)?;
    }
    Ok(())
}

/// Floppy drives take their boot index from the controller (`bootindexA`/`bootindexB`): the
/// PC's built-in one through `-global`, on q35 an `isa-fdc` device that only exists then.
fn floppy_controller(
    def: &DomainDef,
    boot: &[Option<u32>],
    cmd: &mut Cmd,
) -> Result<(), ArgvError> {
    let mut has_floppy = false;
    let mut index = [None, None];
    for (i, d) in def.devices.disks.iter().enumerate() {
        if bus(d)? != "fdc" {
            continue;
        }
        has_floppy = true;
        let a = drive_addr(d)?;
        if a.controller != 0 || a.bus != 0 || a.target != 0 || a.unit > 1 {
            return Err(ArgvError::invalid(
                format!("floppy '{}'", d.target.dev),
                "the floppy controller has units 0 and 1 only (fda, fdb)",
            ));
        }
        index[a.unit as usize] = boot[i];
    }
    if !has_floppy {
        return Ok(());
    }
    match cmd.chipset {
        Chipset::I440fx => {
            for (drive, i) in ["A", "B"].iter().zip(index) {
                if let Some(i) = i {
                    cmd.flag("-global", format!("isa-fdc.bootindex{drive}={i}"));
                }
            }
        }
        Chipset::Q35 => {
            let mut p = Props::driver("isa-fdc");
            p.set_opt("bootindexA", index[0]);
            p.set_opt("bootindexB", index[1]);
            cmd.device(p);
        }
    }
    Ok(())
}

/// (direct, no-flush, write-cache) per libvirt's `qemuDomainDiskCacheModeToQemu`.
type CacheMode = (bool, bool, bool);

fn cache_mode(d: &Disk, what: &str) -> Result<Option<CacheMode>, ArgvError> {
    let driver = d.driver.as_ref();
    Ok(match driver.and_then(|x| x.cache.as_deref()) {
        // libvirt's default for a shareable, writable disk: no host cache another host's
        // writes could hide behind.
        None | Some("default") if d.shareable && !d.readonly => Some((true, false, true)),
        None | Some("default") => None,
        Some("none") => Some((true, false, true)),
        Some("writethrough") => Some((false, false, false)),
        Some("writeback") => Some((false, false, true)),
        Some("directsync") => Some((true, false, false)),
        Some("unsafe") => Some((false, true, true)),
        Some(other) => {
            return Err(ArgvError::unsupported(format!("cache='{other}' on {what}")));
        }
    })
}

/// One disk's `-blockdev` objects (storage node, then format node; none for an empty
/// CD-ROM) and its `-device` object: what the command line gets, and what hot-plugging sends
/// over QMP (`blockdev-add`, `device_add`), so the two cannot drift apart.
pub(super) struct DiskParts {
    pub blockdevs: Vec<Props>,
    pub device: Props,
}

fn disk(
    def: &DomainDef,
    d: &Disk,
    n: usize,
    bootindex: Option<u32>,
    cmd: &mut Cmd,
) -> Result<(), ArgvError> {
    let parts = disk_parts(def, d, n, bootindex, cmd)?;
    for node in parts.blockdevs {
        cmd.blockdev(node);
    }
    cmd.device(parts.device);
    Ok(())
}

/// [`DiskParts`] of disk `d` of `def`, its nodes named `libvirt-{n}-storage` and
/// `libvirt-{n}-format`.
pub(super) fn disk_parts(
    def: &DomainDef,
    d: &Disk,
    n: usize,
    bootindex: Option<u32>,
    cmd: &Cmd,
) -> Result<DiskParts, ArgvError> {
    let dev = &d.target.dev;
    let what = format!("disk '{dev}'");
    let kind = d.device;
    match kind {
        DiskDevice::Disk | DiskDevice::Cdrom | DiskDevice::Floppy => {}
        other => return Err(ArgvError::unsupported(format!("<disk device='{other}'>"))),
    }
    let cdrom = kind == DiskDevice::Cdrom;
    let bus_name = bus(d)?;
    if (kind == DiskDevice::Floppy) != (bus_name == "fdc") {
        return Err(ArgvError::invalid(
            &what,
            "floppies go on bus='fdc', and only floppies do",
        ));
    }
    let driver = d.driver.as_ref();
    if let Some(name) = driver.and_then(|x| x.name.as_deref())
        && name != "qemu"
    {
        return Err(ArgvError::unsupported(format!(
            "<driver name='{name}'> on {what}"
        )));
    }
    // A directory is shown to the guest as a FAT file system QEMU builds from it (`vvfat`,
    // with a raw format node on top, as libvirt does); libvirt refuses other formats there
    // and write access, which QEMU's emulation handles badly.
    let vvfat = d.disk_type == "dir";
    let format = driver
        .and_then(|x| x.format.as_deref())
        .unwrap_or(if vvfat { "fat" } else { "raw" });
    if vvfat {
        if format != "fat" {
            return Err(ArgvError::invalid(
                &what,
                format!("a <disk type='dir'> is a FAT image (<driver type='fat'>), not {format}"),
            ));
        }
        if !d.readonly {
            return Err(ArgvError::invalid(
                &what,
                "a virtual FAT disk (<disk type='dir'>) must be <readonly/>",
            ));
        }
    } else if !FORMATS.contains(&format) {
        return Err(ArgvError::unsupported(format!(
            "<driver type='{format}'> on {what}"
        )));
    }
    disk_tuning::check(d, bus_name, &what)?;
    // libvirt creates the overlay over the image at start (`blockdev-create` over QMP
    // before the CPUs run; with shareBacking it hot-plugs the disk after start): no
    // command-line spelling exists, and this driver creates no image files.
    if d.transient.is_some() {
        return Err(ArgvError::unsupported(format!(
            "<transient/> on {what}: the temporary overlay libvirt creates at start"
        )));
    }
    let readonly = d.readonly || cdrom;
    // As libvirt: several guests may write one image only if its format has no metadata
    // of its own that they would overwrite.
    if d.shareable && !readonly && format != "raw" {
        return Err(ArgvError::invalid(
            &what,
            format!("a shareable, writable disk must be raw, not {format}"),
        ));
    }
    let cache = cache_mode(d, &what)?;
    let cache_json = cache
        .map(|(direct, no_flush, _)| serde_json::json!({"direct": direct, "no-flush": no_flush}));
    let source = source_node(d, &what)?;
    let format_node = format!("libvirt-{n}-format");
    let mut blockdevs = Vec::new();
    if let Some((driver_name, path)) = source {
        let storage = format!("libvirt-{n}-storage");
        let mut s = Props::driver(driver_name);
        if vvfat {
            s.set("dir", path);
            s.set("floppy", kind == DiskDevice::Floppy);
            s.set("rw", false);
        } else {
            s.set("filename", path);
        }
        s.set("node-name", storage.as_str());
        s.set_opt("cache", cache_json.clone());
        s.set_opt("aio", driver.and_then(|x| x.io.as_deref()));
        s.set("auto-read-only", true);
        s.set("discard", "unmap");
        blockdevs.push(s);
        let mut f = Props::new()
            .with("node-name", format_node.as_str())
            .with("read-only", readonly);
        disk_tuning::format_node(d, &mut f);
        f.set_opt("cache", cache_json);
        f.set("driver", if vvfat { "raw" } else { format });
        f.set("file", storage);
        blockdevs.push(f);
    } else if !cdrom {
        return Err(ArgvError::invalid(
            &what,
            "needs a <source>; only CD-ROMs may be empty",
        ));
    }
    let drive = source.map(|_| disk_tuning::top_node(d, &format_node, &mut blockdevs));
    let id = device_id(def, d)?;
    let mut p = frontend(def, d, &what, cmd)?;
    let mut bootindex = bootindex;
    match bus_name {
        "scsi" => {
            // QEMU used the -drive name in the disk's SCSI identification before -blockdev;
            // libvirt passes the same value on so the guest sees no change.
            let vpd = d.serial.clone().unwrap_or_else(|| format!("drive-{id}"));
            p.set("device_id", vpd);
        }
        "usb" if drive.is_none() => {
            return Err(ArgvError::invalid(
                &what,
                "a USB CD-ROM needs a <source>: QEMU's usb-storage cannot be empty",
            ));
        }
        // A floppy's boot index belongs to the controller.
        "fdc" => bootindex = None,
        _ => {}
    }
    if d.shareable {
        p.set("share-rw", true);
    }
    p.set_opt("drive", drive);
    p.set("id", id);
    p.set_opt("bootindex", bootindex.map(Value::from));
    disk_tuning::hardware(d, bus_name, &what, &mut p)?;
    disk_tuning::identity(d, &mut p);
    if let Some((_, _, wc)) = cache {
        p.set("write-cache", if wc { "on" } else { "off" });
    }
    if bus_name != "fdc" {
        p.set_opt("serial", d.serial.as_deref());
    } else if d.serial.is_some() {
        return Err(ArgvError::unsupported(format!(
            "<serial> on {what} (bus='{bus_name}')"
        )));
    }
    disk_tuning::error_policies(d, &mut p);
    Ok(DiskParts {
        blockdevs,
        device: p,
    })
}

/// The `-device` driver and placement of a disk.
fn frontend(def: &DomainDef, d: &Disk, what: &str, cmd: &Cmd) -> Result<Props, ArgvError> {
    let cdrom = d.device == DiskDevice::Cdrom;
    Ok(match bus(d)? {
        "virtio" if cdrom => {
            return Err(ArgvError::invalid(
                what,
                "a CD-ROM cannot be on the virtio bus; use sata, scsi or ide",
            ));
        }
        "virtio" => {
            let mut p = Props::driver("virtio-blk-pci");
            disk_tuning::virtio_blk(d, &mut p);
            addr::pci(cmd, &d.info, what, &mut p)?;
            p
        }
        "sata" => {
            let a = drive_addr(d)?;
            if a.bus != 0 || a.unit > 5 || a.target != 0 {
                return Err(ArgvError::invalid(
                    what,
                    "a SATA controller has one bus with units 0-5",
                ));
            }
            let bus = if cmd.chipset == Chipset::Q35 && a.controller == 0 {
                format!("ide.{}", a.unit)
            } else {
                format!("sata{}.{}", a.controller, a.unit)
            };
            Props::driver(if cdrom { "ide-cd" } else { "ide-hd" }).with("bus", bus)
        }
        "ide" => {
            let a = drive_addr(d)?;
            if cmd.chipset == Chipset::Q35 || a.controller != 0 {
                return Err(ArgvError::unsupported(format!(
                    "bus='ide' on {what} with this machine (q35 has SATA, not IDE)"
                )));
            }
            if a.bus > 1 || a.unit > 1 || a.target != 0 {
                return Err(ArgvError::invalid(
                    what,
                    "the PC's IDE controller has buses 0-1 with units 0-1 (hda to hdd)",
                ));
            }
            Props::driver(if cdrom { "ide-cd" } else { "ide-hd" })
                .with("bus", format!("ide.{}", a.bus))
                .with("unit", a.unit)
        }
        "scsi" => {
            let a = drive_addr(d)?;
            let p = Props::driver(if cdrom { "scsi-cd" } else { "scsi-hd" });
            // The LSI controller has one bus of narrow SCSI ids, no channels or LUNs.
            if scsi_model(def, a.controller) == "lsilogic" {
                if a.target != 0 {
                    return Err(ArgvError::invalid(
                        what,
                        "the lsilogic SCSI controller needs <address target='0'>",
                    ));
                }
                // Id 7 is the controller's own; QEMU refuses more (libvirt passes them on).
                if a.unit > 6 {
                    return Err(ArgvError::invalid(
                        what,
                        format!(
                            "SCSI id {} is beyond the lsilogic controller's 0-6; \
                             use another controller or model='virtio-scsi'",
                            a.unit
                        ),
                    ));
                }
                p.with("bus", format!("scsi{}.{}", a.controller, a.bus))
                    .with("scsi-id", a.unit)
            } else {
                p.with("bus", format!("scsi{}.0", a.controller))
                    .with("channel", a.bus)
                    .with("scsi-id", a.target)
                    .with("lun", a.unit)
            }
        }
        "usb" => {
            let mut p = Props::driver("usb-storage");
            match &d.info.address {
                None => p.set("bus", "usb.0"),
                Some(a) if a.addr_type == "usb" => {
                    let bus = a.get("bus").unwrap_or("0");
                    let index: u32 = bus.parse().map_err(|_| {
                        ArgvError::invalid(format!("{what}: <address bus='{bus}'>"), "a number")
                    })?;
                    p.set("bus", format!("{}.0", usb_id(index)));
                    p.set_opt("port", a.get("port"));
                }
                Some(a) => {
                    return Err(ArgvError::unsupported(format!(
                        "<address type='{}'> on {what}",
                        a.addr_type
                    )));
                }
            }
            p
        }
        "fdc" => Props::driver("floppy").with("unit", drive_addr(d)?.unit),
        other => {
            return Err(ArgvError::unsupported(format!(
                "<target bus='{other}'> on {what}"
            )));
        }
    })
}

/// The storage node's driver and path (a directory for `vvfat`), or `None` for an empty
/// CD-ROM.
///
/// A source's `startupPolicy` leaves no trace here, as in libvirt's command line: libvirt
/// applies it before building one, dropping an `optional` source that is missing. This
/// builder opens nothing, so the path is passed as written and a missing file fails the
/// start as with `mandatory` (docs/xml-compat.md, deliberate differences).
fn source_node<'a>(d: &'a Disk, what: &str) -> Result<Option<(&'static str, &'a str)>, ArgvError> {
    let cdrom = d.device == DiskDevice::Cdrom;
    let src = d.source.as_ref();
    match d.disk_type.as_str() {
        "file" => Ok(src.and_then(|s| s.file.as_deref()).map(|p| ("file", p))),
        "block" => Ok(src
            .and_then(|s| s.dev.as_deref())
            .map(|p| (if cdrom { "host_cdrom" } else { "host_device" }, p))),
        "dir" => Ok(src.and_then(|s| s.dir.as_deref()).map(|p| ("vvfat", p))),
        "volume" => Err(ArgvError::unsupported(format!(
            "<disk type='volume'> ({what}): it needs the storage service"
        ))),
        other => Err(ArgvError::unsupported(format!(
            "<disk type='{other}'> ({what})"
        ))),
    }
}

/// libvirt's device ids: `virtio-disk0`, `sata0-0-1`, `ide0-1-0`, `scsi0-0-0-1` (`scsi0-0-1`
/// on an LSI controller), `usb-disk1`, `fdc0-0-1`.
pub(super) fn device_id(def: &DomainDef, d: &Disk) -> Result<String, ArgvError> {
    let bus = bus(d)?;
    if matches!(bus, "virtio" | "usb") {
        let prefix = if bus == "usb" {
            "usb-disk"
        } else {
            "virtio-disk"
        };
        return Ok(format!("{prefix}{}", name_index(d)?));
    }
    let a = drive_addr(d)?;
    Ok(match bus {
        "sata" => format!("sata{}-0-{}", a.controller, a.unit),
        "ide" => format!("ide{}-{}-{}", a.controller, a.bus, a.unit),
        "fdc" => format!("fdc{}-{}-{}", a.controller, a.bus, a.unit),
        _ if scsi_model(def, a.controller) == "lsilogic" => {
            format!("scsi{}-{}-{}", a.controller, a.bus, a.unit)
        }
        _ => format!("scsi{}-{}-{}-{}", a.controller, a.bus, a.target, a.unit),
    })
}
