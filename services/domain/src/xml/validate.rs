//! Whole-definition rules, checked after parsing and available to the service after it edits
//! a definition (vCPUs, memory), so an edit cannot produce what parsing would refuse.

use std::collections::HashMap;

use virtplane_common::names::validate_name;

use super::devices::{Disk, DiskDevice};
use super::domain::DomainDef;
use super::error::XmlError;

impl DomainDef {
    /// Checks the cross-field rules; the error names the element at fault.
    pub fn validate(&self) -> Result<(), XmlError> {
        validate_name(&self.name).map_err(|e| {
            XmlError::invalid(
                "<name>",
                format!("invalid domain name '{}': {e}", self.name),
            )
        })?;
        match super::values::uuid(&self.uuid) {
            Ok(canon) if canon == self.uuid => {}
            _ => {
                return Err(XmlError::value(
                    "<uuid>",
                    self.uuid.as_str(),
                    "a canonical lowercase hyphenated UUID",
                ));
            }
        }
        if self.title.as_deref().is_some_and(|t| t.contains('\n')) {
            return Err(XmlError::invalid("<title>", "must not contain newlines"));
        }
        self.validate_sizing()?;
        self.validate_devices()
    }

    fn validate_sizing(&self) -> Result<(), XmlError> {
        if self.memory_kib == 0 {
            return Err(XmlError::value(
                "<memory>",
                "0",
                "an amount greater than zero",
            ));
        }
        if let Some(cur) = self.current_memory_kib
            && cur > self.memory_kib
        {
            return Err(XmlError::invalid(
                "<currentMemory>",
                format!(
                    "current memory ({cur} KiB) must not exceed <memory> ({} KiB)",
                    self.memory_kib
                ),
            ));
        }
        if let Some(max) = &self.max_memory
            && max.kib < self.memory_kib
        {
            return Err(XmlError::invalid(
                "<maxMemory>",
                format!(
                    "maximum memory ({} KiB) must not be less than <memory> ({} KiB)",
                    max.kib, self.memory_kib
                ),
            ));
        }
        if self.vcpu.max == 0 {
            return Err(XmlError::value("<vcpu>", "0", "a positive integer"));
        }
        if let Some(cur) = self.vcpu.current
            && (cur == 0 || cur > self.vcpu.max)
        {
            return Err(XmlError::invalid(
                "<vcpu> attribute 'current'",
                format!(
                    "current vCPUs ({cur}) must be between 1 and the maximum ({})",
                    self.vcpu.max
                ),
            ));
        }
        Ok(())
    }

    fn validate_devices(&self) -> Result<(), XmlError> {
        let mut targets = HashMap::new();
        for disk in &self.devices.disks {
            let dev = disk.target.dev.as_str();
            if targets.insert(dev, ()).is_some() {
                return Err(XmlError::invalid(
                    format!("<devices>/<disk>/<target dev='{dev}'>"),
                    format!("target dev '{dev}' is used by more than one disk"),
                ));
            }
            validate_startup_policy(disk)?;
        }
        let orders = self
            .devices
            .disks
            .iter()
            .filter_map(|d| d.boot_order.map(|o| (o, "disk")))
            .chain(
                self.devices
                    .interfaces
                    .iter()
                    .filter_map(|i| i.boot_order.map(|o| (o, "interface"))),
            );
        let mut used = HashMap::new();
        for (order, kind) in orders {
            if !self.os.boot.is_empty() {
                return Err(XmlError::invalid(
                    "<os>/<boot>",
                    "per-device <boot order> elements cannot be used together with <os><boot dev>",
                ));
            }
            if used.insert(order, kind).is_some() {
                return Err(XmlError::invalid(
                    format!("<devices>/<{kind}>/<boot order='{order}'>"),
                    format!("boot order {order} is used by more than one device"),
                ));
            }
        }
        Ok(())
    }
}

/// libvirt's rules for a disk source's `startupPolicy`: only local storage (a file, a block
/// device, a directory) or a storage pool volume can be missing at start, and `requisite`
/// (drop it only when restoring) is for removable media.
fn validate_startup_policy(disk: &Disk) -> Result<(), XmlError> {
    let Some(policy) = disk
        .source
        .as_ref()
        .and_then(|s| s.startup_policy.as_deref())
    else {
        return Ok(());
    };
    let loc = || {
        format!(
            "<devices>/<disk>/<source startupPolicy='{policy}'> (disk '{}')",
            disk.target.dev
        )
    };
    if !matches!(disk.disk_type.as_str(), "file" | "block" | "dir" | "volume") {
        return Err(XmlError::invalid(
            loc(),
            format!("not allowed for a disk of type '{}'", disk.disk_type),
        ));
    }
    if policy == "requisite" && !matches!(disk.device, DiskDevice::Cdrom | DiskDevice::Floppy) {
        return Err(XmlError::invalid(
            loc(),
            "'requisite' is only for a cdrom or floppy",
        ));
    }
    Ok(())
}
