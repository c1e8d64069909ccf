//! Device placement: `<address type='pci'>` → `bus`/`addr`, and disk names → indexes.

use super::ArgvError;
use super::cmd::{Cmd, Props};
use crate::xml::DeviceInfo;

/// Adds `bus`/`addr` for an explicit PCI address; without one QEMU picks a free slot on the
/// root bus. Other address kinds are not translated here.
pub(super) fn pci(
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
    let slot = num("slot")?;
    let function = num("function")?;
    props.set(
        "bus",
        if bus == 0 {
            cmd.root_bus().to_string()
        } else {
            format!("pci.{bus}")
        },
    );
    if a.get("multifunction") == Some("on") {
        props.set("multifunction", true);
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

fn parse_num(v: &str) -> Option<u32> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// libvirt's `virDiskNameToIndex`: `vda` → 0, `sdb` → 1, `hdaa` → 26.
pub(super) fn disk_index(dev: &str) -> Option<u32> {
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
