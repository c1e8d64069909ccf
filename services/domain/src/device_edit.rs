//! libvirt's rules for attaching and detaching devices, as pure edits of a definition, shared
//! by every driver (the qemu driver adds the QMP side in `driver/qemu/hotplug.rs` and
//! `driver/qemu/hotplug_nic.rs`).
//!
//! The config edits follow `qemuDomainAttachDeviceConfig` / `qemuDomainDetachDeviceConfig`,
//! the live checks `qemuDomainAttachDeviceDiskLiveInternal` / `qemuDomainDetachPrepDisk`,
//! and disks are kept in libvirt's order (`virDomainDiskInsert`). Network interfaces have
//! their own rules in `device_edit/nic.rs`.

mod nic;

pub use nic::{
    attach_nic_config, check_nic_attach_live, detach_nic_config, find_nic, generate_mac, nic_label,
    normalize_nic,
};

use crate::error::{DomainError, Result};
use crate::xml::{DeviceDef, Disk, DiskDevice, DomainDef, Interface};

/// User aliases (`<alias name='ua-…'/>`) are kept; others are the hypervisor's to assign,
/// and libvirt drops them from input.
pub const USER_ALIAS_PREFIX: &str = "ua-";

/// A device the attach/detach rules have a model for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Editable {
    Disk(Box<Disk>),
    Interface(Box<Interface>),
}

/// The device to attach or detach, if it is one the rules know; other devices are refused
/// with UNIMPLEMENTED naming their element.
pub fn editable(device: DeviceDef, driver: &'static str, action: &str) -> Result<Editable> {
    match device {
        DeviceDef::Disk(disk) => Ok(Editable::Disk(disk)),
        DeviceDef::Interface(nic) => Ok(Editable::Interface(nic)),
        other => Err(DomainError::Unsupported {
            driver,
            what: format!(
                "{action}ing <{}> devices (only <disk> and <interface> devices can be \
                 {action}ed for now)",
                other.element()
            ),
        }),
    }
}

/// The disk's bus: `<target bus>`, or what its name implies (`vd*` virtio, `sd*` scsi, `hd*`
/// ide, `fd*` fdc), as libvirt fills it in after parsing.
pub fn disk_bus(disk: &Disk) -> Option<&str> {
    if let Some(bus) = &disk.target.bus {
        return Some(bus);
    }
    let dev = disk.target.dev.as_str();
    [
        ("vd", "virtio"),
        ("sd", "scsi"),
        ("hd", "ide"),
        ("fd", "fdc"),
    ]
    .iter()
    .find(|(prefix, _)| dev.starts_with(prefix))
    .map(|(_, bus)| *bus)
}

/// libvirt's `virDiskNameToIndex`: `vda` → 0, `sdb` → 1, `hdaa` → 26.
pub fn disk_index(dev: &str) -> Option<u32> {
    let letters = ["vd", "sd", "hd", "xvd", "fd", "ubd"]
        .iter()
        .find_map(|p| dev.strip_prefix(p))?;
    if letters.is_empty() {
        return None;
    }
    let mut idx: u32 = 0;
    for (i, c) in letters.chars().enumerate() {
        if !c.is_ascii_lowercase() {
            return None;
        }
        let d = u32::from(c as u8 - b'a');
        idx = if i == 0 {
            d
        } else {
            (idx + 1).checked_mul(26)?.checked_add(d)?
        };
    }
    Some(idx)
}

/// What libvirt's parser does to a disk given to attach: the bus is filled in from the name,
/// and an alias that is not a user alias is dropped.
pub fn normalize_disk(disk: &mut Disk) -> Result<()> {
    if disk.target.bus.is_none() {
        let bus = disk_bus(disk).ok_or_else(|| {
            DomainError::InvalidArg(format!(
                "disk '{}': give <target bus=…> or a name like vdb, sdb or hda",
                disk.target.dev
            ))
        })?;
        disk.target.bus = Some(bus.to_owned());
    }
    if disk
        .info
        .alias
        .as_deref()
        .is_some_and(|a| !a.starts_with(USER_ALIAS_PREFIX))
    {
        disk.info.alias = None;
    }
    Ok(())
}

/// `virDomainDiskInsert`: grouped by bus, each bus's disks sorted by their name's index.
pub fn insert_disk(def: &mut DomainDef, disk: Disk) {
    let disks = &mut def.devices.disks;
    let bus = disk_bus(&disk).map(str::to_owned);
    let index = disk_index(&disk.target.dev).map_or(-1, i64::from);
    let mut insert_at = None;
    for (pos, other) in disks.iter().enumerate().rev() {
        if disk_bus(other).map(str::to_owned) != bus {
            continue;
        }
        if disk_index(&other.target.dev).map_or(-1, i64::from) > index {
            insert_at = Some(pos);
        } else if insert_at.is_none() {
            insert_at = Some(pos + 1);
        }
    }
    let at = insert_at.unwrap_or(disks.len());
    disks.insert(at, disk);
}

/// The config half of attach: the target must be free ("target vdb already exists").
pub fn attach_disk_config(def: &mut DomainDef, disk: Disk) -> Result<()> {
    if def
        .devices
        .disks
        .iter()
        .any(|d| d.target.dev == disk.target.dev)
    {
        return Err(DomainError::OperationInvalid(format!(
            "target {} already exists",
            disk.target.dev
        )));
    }
    insert_disk(def, disk);
    Ok(())
}

/// The live checks of attach every driver shares: a CD-ROM or floppy whose target exists
/// means a media change (not supported yet), and a target may be used once
/// (`virDomainDiskDefCheckDuplicateInfo`).
pub fn check_disk_attach_live(def: &DomainDef, disk: &Disk, driver: &'static str) -> Result<()> {
    let Some(existing) = def
        .devices
        .disks
        .iter()
        .find(|d| d.target.dev == disk.target.dev)
    else {
        return Ok(());
    };
    if matches!(disk.device, DiskDevice::Cdrom | DiskDevice::Floppy)
        && existing.device == disk.device
    {
        return Err(DomainError::Unsupported {
            driver,
            what: format!(
                "changing the medium of {} '{}' (virsh change-media / update-device)",
                disk.device, disk.target.dev
            ),
        });
    }
    Err(DomainError::OperationInvalid(format!(
        "target '{}' duplicated for disk sources '{}' and '{}'",
        disk.target.dev,
        source_text(existing),
        source_text(disk)
    )))
}

/// The config half of detach: removes the disk with the same target ("no target device vdb").
pub fn detach_disk_config(def: &mut DomainDef, dev: &str) -> Result<Disk> {
    let pos = def
        .devices
        .disks
        .iter()
        .position(|d| d.target.dev == dev)
        .ok_or_else(|| DomainError::DeviceMissing(format!("no target device {dev}")))?;
    Ok(def.devices.disks.remove(pos))
}

/// The live disk a detach means, by target ("disk vdb not found").
pub fn find_disk_live(def: &DomainDef, dev: &str) -> Result<usize> {
    def.devices
        .disks
        .iter()
        .position(|d| d.target.dev == dev)
        .ok_or_else(|| DomainError::DeviceMissing(format!("disk {dev} not found")))
}

/// A disk's source for messages: its path, or `(null)` as libvirt writes an empty one.
fn source_text(disk: &Disk) -> String {
    disk.source
        .as_ref()
        .and_then(|s| {
            s.file
                .clone()
                .or_else(|| s.dev.clone())
                .or_else(|| s.dir.clone())
                .or_else(|| s.name.clone())
        })
        .unwrap_or_else(|| "(null)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_device, parse_domain};

    fn disk(xml: &str) -> Disk {
        match parse_device(xml).unwrap() {
            DeviceDef::Disk(d) => *d,
            other => panic!("{other:?}"),
        }
    }

    fn domain(disks: &str) -> DomainDef {
        parse_domain(&format!(
            "<domain type='test'><name>t</name><memory>1024</memory><os><type>hvm</type></os>\
             <devices>{disks}</devices></domain>"
        ))
        .unwrap()
    }

    fn targets(def: &DomainDef) -> Vec<&str> {
        def.devices
            .disks
            .iter()
            .map(|d| d.target.dev.as_str())
            .collect()
    }

    #[test]
    fn disks_are_inserted_in_libvirt_order() {
        let mut def = domain(
            "<disk><source file='/a'/><target dev='vda'/></disk>\
             <disk><source file='/c'/><target dev='vdc'/></disk>\
             <disk device='cdrom'><target dev='hdc'/></disk>",
        );
        let mut d = disk("<disk><source file='/b'/><target dev='vdb'/></disk>");
        normalize_disk(&mut d).unwrap();
        assert_eq!(d.target.bus.as_deref(), Some("virtio"));
        attach_disk_config(&mut def, d).unwrap();
        let mut s = disk("<disk><source file='/s'/><target dev='sda'/></disk>");
        normalize_disk(&mut s).unwrap();
        attach_disk_config(&mut def, s).unwrap();
        assert_eq!(targets(&def), ["vda", "vdb", "vdc", "hdc", "sda"]);
    }

    #[test]
    fn config_errors_name_the_target() {
        let mut def = domain("<disk><source file='/a'/><target dev='vda'/></disk>");
        let err = attach_disk_config(
            &mut def,
            disk("<disk><source file='/z'/><target dev='vda'/></disk>"),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "target vda already exists");
        let err = detach_disk_config(&mut def, "vdq").unwrap_err();
        assert!(matches!(err, DomainError::DeviceMissing(_)));
        assert_eq!(err.to_string(), "no target device vdq");
        assert_eq!(
            detach_disk_config(&mut def, "vda").unwrap().target.dev,
            "vda"
        );
        assert!(def.devices.disks.is_empty());
    }

    #[test]
    fn live_checks() {
        let def = domain(
            "<disk><source file='/a'/><target dev='vda'/></disk>\
             <disk device='cdrom'><target dev='hdc'/></disk>",
        );
        let err = check_disk_attach_live(
            &def,
            &disk("<disk><source file='/b'/><target dev='vda'/></disk>"),
            "test",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "target 'vda' duplicated for disk sources '/a' and '/b'"
        );
        let err = check_disk_attach_live(
            &def,
            &disk("<disk device='cdrom'><source file='/i.iso'/><target dev='hdc'/></disk>"),
            "test",
        )
        .unwrap_err();
        assert!(matches!(err, DomainError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("cdrom 'hdc'"), "{err}");
        let err = find_disk_live(&def, "vdz").unwrap_err();
        assert_eq!(err.to_string(), "disk vdz not found");
        assert_eq!(find_disk_live(&def, "hdc").unwrap(), 1);
    }

    #[test]
    fn aliases_and_buses() {
        let mut d =
            disk("<disk><source file='/b'/><target dev='sdb'/><alias name='scsi0-0-0-1'/></disk>");
        normalize_disk(&mut d).unwrap();
        assert_eq!(d.info.alias, None);
        assert_eq!(d.target.bus.as_deref(), Some("scsi"));
        let mut d =
            disk("<disk><source file='/b'/><target dev='vdb'/><alias name='ua-data'/></disk>");
        normalize_disk(&mut d).unwrap();
        assert_eq!(d.info.alias.as_deref(), Some("ua-data"));
        let mut d = disk("<disk><source file='/b'/><target dev='nvme0n1'/></disk>");
        assert!(normalize_disk(&mut d).is_err());
        assert_eq!(disk_index("vdb"), Some(1));
        assert_eq!(disk_index("sdaa"), Some(26));
        assert_eq!(disk_index("sd"), None);
        let err = editable(parse_device("<hostdev/>").unwrap(), "qemu", "attach").unwrap_err();
        assert!(matches!(err, DomainError::Unsupported { .. }), "{err:?}");
        assert!(err.to_string().contains("<hostdev>"), "{err}");
        let nic = parse_device("<interface type='user'/>").unwrap();
        assert!(matches!(
            editable(nic, "qemu", "attach").unwrap(),
            Editable::Interface(_)
        ));
    }
}
