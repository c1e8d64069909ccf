//! One device element on its own (`<disk>`, `<interface>`, ...), as virDomainAttachDevice and
//! virDomainDetachDevice take it.
//!
//! The element is read under the same safety rules as a whole domain and then parsed by the
//! very parsers `<devices>` uses, placed where it would sit in a domain
//! (`domain/devices/disk`), so a hot-plugged disk reads, validates, keeps its unknown parts
//! and reports them exactly as one defined with the domain does.

use super::devices::{Devices, Disk, Interface};
use super::error::XmlError;
use super::read::read_document;
use super::scope::Scope;
use super::tree::{Element, Node};

/// Device elements libvirt's virDomainDeviceDefParse accepts; anything else is not a device.
const DEVICE_ELEMENTS: &[&str] = &[
    "disk",
    "lease",
    "filesystem",
    "interface",
    "input",
    "sound",
    "video",
    "hostdev",
    "watchdog",
    "controller",
    "graphics",
    "hub",
    "redirdev",
    "smartcard",
    "serial",
    "parallel",
    "console",
    "channel",
    "memballoon",
    "nvram",
    "rng",
    "shmem",
    "tpm",
    "panic",
    "memory",
    "iommu",
    "vsock",
    "audio",
    "crypto",
];

/// A parsed device element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceDef {
    Disk(Box<Disk>),
    Interface(Box<Interface>),
    /// A device the attach/detach code has no model for, by element name (`hostdev`, ...).
    Other(String),
}

impl DeviceDef {
    /// The element name, for messages: `disk`, `interface`, ...
    pub fn element(&self) -> &str {
        match self {
            DeviceDef::Disk(_) => "disk",
            DeviceDef::Interface(_) => "interface",
            DeviceDef::Other(name) => name,
        }
    }
}

/// Parses one device element (at most [`super::MAX_DOMAIN_XML_BYTES`]).
pub fn parse_device(xml: &str) -> Result<DeviceDef, XmlError> {
    if xml.len() > super::MAX_DOMAIN_XML_BYTES {
        return Err(XmlError::TooLarge {
            what: "device",
            size: xml.len(),
            limit: super::MAX_DOMAIN_XML_BYTES,
        });
    }
    let element = read_document(xml)?;
    let name = element.name.clone();
    if !DEVICE_ELEMENTS.contains(&name.as_str()) {
        return Err(XmlError::invalid(
            format!("<{name}>"),
            "not a device element: give one device such as <disk> or <interface>",
        ));
    }
    // Where it would sit in a domain, so locations read `<devices>/<disk>/<target>` and
    // unknown parts are filed under `domain/devices/disk`.
    let mut devices = Element::new("devices");
    devices.children.push(Node::Element(element));
    let mut domain = Element::new("domain");
    domain.children.push(Node::Element(devices));
    let mut root = Scope::root(&domain);
    let scope = root
        .child("devices")?
        .ok_or_else(|| XmlError::missing("<devices>"))?;
    let mut parsed = Devices::parse(scope)?;
    Ok(match name.as_str() {
        "disk" => match parsed.disks.pop() {
            Some(disk) => DeviceDef::Disk(Box::new(disk)),
            None => return Err(XmlError::missing("<disk>")),
        },
        "interface" => match parsed.interfaces.pop() {
            Some(nic) => DeviceDef::Interface(Box::new(nic)),
            None => return Err(XmlError::missing("<interface>")),
        },
        _ => DeviceDef::Other(name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_parses_as_in_a_domain() {
        let d = parse_device(
            "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
             <source file='/img/b.qcow2'/><target dev='vdb' bus='virtio'/></disk>",
        )
        .unwrap();
        let DeviceDef::Disk(disk) = d else {
            panic!("{d:?}")
        };
        assert_eq!(disk.target.dev, "vdb");
        assert_eq!(
            disk.source.as_ref().unwrap().file.as_deref(),
            Some("/img/b.qcow2")
        );
        assert_eq!(
            disk.driver.as_ref().unwrap().format.as_deref(),
            Some("qcow2")
        );
    }

    #[test]
    fn errors_name_the_element() {
        let err = parse_device("<disk type='file'><source file='/x'/></disk>").unwrap_err();
        assert!(
            err.to_string().contains("<devices>/<disk>/<target>"),
            "{err}"
        );
        let err = parse_device("<domain type='kvm'/>").unwrap_err();
        assert!(err.to_string().contains("not a device element"), "{err}");
        assert!(parse_device("<disk").is_err());
        assert!(
            parse_device("<!DOCTYPE x [<!ENTITY a 'b'>]><disk/>").is_err(),
            "no DOCTYPE"
        );
    }

    #[test]
    fn other_devices_are_named() {
        let d = parse_device("<hostdev mode='subsystem' type='pci'/>").unwrap();
        assert_eq!(d, DeviceDef::Other("hostdev".into()));
        let d = parse_device("<interface type='user'><model type='virtio'/></interface>").unwrap();
        assert_eq!(d.element(), "interface");
    }
}
