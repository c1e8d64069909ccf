//! `<disk>`: block devices backed by files, host devices or the network.

use std::fmt;

use super::common::{DeviceInfo, parse_boot_order, push_boot_order};
use crate::xml::error::XmlError;
use crate::xml::extra::{Extra, FmtCtx};
use crate::xml::scope::Scope;
use crate::xml::tree::Element;

const DISK_TYPES: &[&str] = &[
    "file",
    "block",
    "dir",
    "network",
    "volume",
    "nvme",
    "vhostuser",
];
const DISK_BUSES: &[&str] = &[
    "ide", "fdc", "scsi", "virtio", "xen", "usb", "uml", "sata", "sd",
];

/// `<disk device=…>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiskDevice {
    #[default]
    Disk,
    Cdrom,
    Floppy,
    Lun,
}

impl DiskDevice {
    pub fn as_str(self) -> &'static str {
        match self {
            DiskDevice::Disk => "disk",
            DiskDevice::Cdrom => "cdrom",
            DiskDevice::Floppy => "floppy",
            DiskDevice::Lun => "lun",
        }
    }

    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "disk" => Ok(DiskDevice::Disk),
            "cdrom" => Ok(DiskDevice::Cdrom),
            "floppy" => Ok(DiskDevice::Floppy),
            "lun" => Ok(DiskDevice::Lun),
            _ => Err("one of disk, cdrom, floppy, lun".into()),
        }
    }
}

impl fmt::Display for DiskDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `<disk>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disk {
    /// `type`: file, block, dir, network, volume, nvme, vhostuser (libvirt's default: file).
    pub disk_type: String,
    pub device: DiskDevice,
    pub driver: Option<DiskDriver>,
    pub source: Option<DiskSource>,
    pub target: DiskTarget,
    pub readonly: bool,
    pub shareable: bool,
    pub serial: Option<String>,
    pub boot_order: Option<u32>,
    pub info: DeviceInfo,
    pub extra: Extra,
}

/// `<driver name='qemu' type='qcow2' cache=… io=… discard=…/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskDriver {
    pub name: Option<String>,
    /// The image format (`type` attribute): raw, qcow2, ...
    pub format: Option<String>,
    pub cache: Option<String>,
    pub io: Option<String>,
    pub discard: Option<String>,
    pub extra: Extra,
}

/// `<source file=…|dev=…|dir=…|protocol=… name=…|pool=… volume=…>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskSource {
    pub file: Option<String>,
    pub dev: Option<String>,
    pub dir: Option<String>,
    pub protocol: Option<String>,
    pub name: Option<String>,
    pub pool: Option<String>,
    pub volume: Option<String>,
    pub hosts: Vec<DiskHost>,
    pub extra: Extra,
}

/// `<host name=… port=… transport=… socket=…/>` of a network disk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskHost {
    pub name: Option<String>,
    pub port: Option<String>,
    pub transport: Option<String>,
    pub socket: Option<String>,
    pub extra: Extra,
}

/// `<target dev='vda' bus='virtio'/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskTarget {
    pub dev: String,
    pub bus: Option<String>,
    pub extra: Extra,
}

impl Disk {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let disk_type = s
            .attr_enum("type", DISK_TYPES)?
            .unwrap_or_else(|| "file".to_string());
        let device = s
            .attr_parse("device", DiskDevice::parse)?
            .unwrap_or_default();
        let driver = match s.child("driver")? {
            None => None,
            Some(mut d) => Some(DiskDriver {
                name: d.attr_string("name"),
                format: d.attr_string("type"),
                cache: d.attr_enum(
                    "cache",
                    &[
                        "default",
                        "none",
                        "writethrough",
                        "writeback",
                        "directsync",
                        "unsafe",
                    ],
                )?,
                io: d.attr_enum("io", &["threads", "native", "io_uring"])?,
                discard: d.attr_enum("discard", &["unmap", "ignore"])?,
                extra: d.finish(),
            }),
        };
        let source = s.child("source")?.map(DiskSource::parse).transpose()?;
        let mut t = s
            .child("target")?
            .ok_or_else(|| XmlError::missing(format!("{}/<target>", s.loc())))?;
        let dev = t.req_attr("dev")?.to_string();
        if dev.is_empty() {
            return Err(XmlError::value(
                t.attr_loc("dev"),
                "",
                "a device name like vda",
            ));
        }
        let target = DiskTarget {
            dev,
            bus: t.attr_enum("bus", DISK_BUSES)?,
            extra: t.finish(),
        };
        let readonly = flag(&mut s, "readonly")?;
        let shareable = flag(&mut s, "shareable")?;
        let serial = s.leaf("serial")?;
        let boot_order = parse_boot_order(&mut s)?;
        let info = DeviceInfo::parse(&mut s)?;
        Ok(Disk {
            disk_type,
            device,
            driver,
            source,
            target,
            readonly,
            shareable,
            serial,
            boot_order,
            info,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("disk");
        el.set("type", self.disk_type.as_str());
        el.set("device", self.device.as_str());
        if let Some(d) = &self.driver {
            let mut de = Element::new("driver");
            de.set_opt("name", d.name.as_deref());
            de.set_opt("type", d.format.as_deref());
            de.set_opt("cache", d.cache.as_deref());
            de.set_opt("io", d.io.as_deref());
            de.set_opt("discard", d.discard.as_deref());
            d.extra.apply(&mut de, ctx);
            el.push(de);
        }
        if let Some(src) = &self.source {
            el.push(src.to_element(ctx));
        }
        let mut te = Element::new("target");
        te.set("dev", self.target.dev.as_str());
        te.set_opt("bus", self.target.bus.as_deref());
        self.target.extra.apply(&mut te, ctx);
        el.push(te);
        for (name, on) in [("readonly", self.readonly), ("shareable", self.shareable)] {
            if on {
                let mut f = Element::new(name);
                self.extra.apply_sub(name, &mut f, ctx);
                el.push(f);
            }
        }
        if let Some(serial) = &self.serial {
            let mut se = Element::with_text("serial", serial.as_str());
            self.extra.apply_sub("serial", &mut se, ctx);
            el.push(se);
        }
        push_boot_order(&mut el, self.boot_order, &self.extra, ctx);
        self.info.push_to(&mut el, &self.extra, ctx);
        self.extra.apply(&mut el, ctx);
        el
    }
}

/// An empty marker child such as `<readonly/>`.
fn flag(s: &mut Scope<'_>, name: &str) -> Result<bool, XmlError> {
    match s.child(name)? {
        None => Ok(false),
        Some(f) => {
            s.keep(name, f.finish());
            Ok(true)
        }
    }
}

impl DiskSource {
    fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let mut src = DiskSource {
            file: s.attr_string("file"),
            dev: s.attr_string("dev"),
            dir: s.attr_string("dir"),
            protocol: s.attr_string("protocol"),
            name: s.attr_string("name"),
            pool: s.attr_string("pool"),
            volume: s.attr_string("volume"),
            ..Default::default()
        };
        for mut h in s.children("host") {
            src.hosts.push(DiskHost {
                name: h.attr_string("name"),
                port: h.attr_string("port"),
                transport: h.attr_string("transport"),
                socket: h.attr_string("socket"),
                extra: h.finish(),
            });
        }
        src.extra = s.finish();
        Ok(src)
    }

    fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("source");
        el.set_opt("file", self.file.as_deref());
        el.set_opt("dev", self.dev.as_deref());
        el.set_opt("dir", self.dir.as_deref());
        el.set_opt("protocol", self.protocol.as_deref());
        el.set_opt("name", self.name.as_deref());
        el.set_opt("pool", self.pool.as_deref());
        el.set_opt("volume", self.volume.as_deref());
        for h in &self.hosts {
            let mut he = Element::new("host");
            he.set_opt("name", h.name.as_deref());
            he.set_opt("port", h.port.as_deref());
            he.set_opt("transport", h.transport.as_deref());
            he.set_opt("socket", h.socket.as_deref());
            h.extra.apply(&mut he, ctx);
            el.push(he);
        }
        self.extra.apply(&mut el, ctx);
        el
    }
}
