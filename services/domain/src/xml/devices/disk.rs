//! `<disk>`: block devices backed by files, host devices or the network.

use std::fmt;

use super::common::{DeviceInfo, VirtioOptions, parse_boot_order, push_boot_order};
use crate::xml::error::XmlError;
use crate::xml::extra::{Extra, FmtCtx};
use crate::xml::scope::Scope;
use crate::xml::tree::Element;
use crate::xml::values::{ON_OFF, YES_NO, positive};

const DISK_TYPES: &[&str] = &[
    "file",
    "block",
    "dir",
    "network",
    "volume",
    "nvme",
    "vhostuser",
];
/// A disk source's `startupPolicy` values.
pub const STARTUP_POLICIES: &[&str] = &["mandatory", "requisite", "optional"];
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
    /// `snapshot`: how snapshots treat the disk by default (no, internal, external, manual).
    pub snapshot: Option<String>,
    pub driver: Option<DiskDriver>,
    pub source: Option<DiskSource>,
    pub target: DiskTarget,
    pub readonly: bool,
    pub shareable: bool,
    /// `<transient shareBacking=…/>`: changes go to a temporary overlay libvirt creates at
    /// start and deletes at shutdown.
    pub transient: Option<DiskTransient>,
    pub serial: Option<String>,
    /// `<wwn>`: the World Wide Name an IDE or SCSI disk reports (16 hex digits).
    pub wwn: Option<String>,
    /// `<blockio logical_block_size=… physical_block_size=…/>`, bytes.
    pub blockio: Option<DiskBlockio>,
    /// `<geometry cyls=… heads=… secs=… trans=…/>`: the geometry an IDE disk reports.
    pub geometry: Option<DiskGeometry>,
    /// `<vendor>` and `<product>`: a SCSI disk's inquiry strings.
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub boot_order: Option<u32>,
    pub info: DeviceInfo,
    pub extra: Extra,
}

/// `<transient shareBacking='yes|no'/>` of a disk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskTransient {
    /// `yes`: the image is opened read-only and shared, each domain writing to its own
    /// overlay (libvirt then hot-plugs the disk after start).
    pub share_backing: Option<String>,
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
    /// What a write error does: stop, report, ignore, enospace.
    pub error_policy: Option<String>,
    /// What a read error does: stop, report, ignore.
    pub rerror_policy: Option<String>,
    pub ioeventfd: Option<String>,
    pub event_idx: Option<String>,
    pub copy_on_read: Option<String>,
    pub iothread: Option<u32>,
    /// off, on, unmap.
    pub detect_zeroes: Option<String>,
    pub queues: Option<u32>,
    pub queue_size: Option<u32>,
    pub virtio: VirtioOptions,
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
    /// `startupPolicy`: what starting the domain does when the source is missing — fail
    /// (`mandatory`, libvirt's default), drop it on a cold boot (`optional`: a CD-ROM or
    /// floppy becomes empty, a disk is removed), or only when restoring (`requisite`,
    /// CD-ROMs and floppies).
    pub startup_policy: Option<String>,
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

/// `<blockio>` of a disk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskBlockio {
    pub logical_block_size: Option<u32>,
    pub physical_block_size: Option<u32>,
    pub extra: Extra,
}

/// `<geometry>` of a disk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskGeometry {
    pub cyls: u32,
    pub heads: u32,
    pub secs: u32,
    /// none, lba, auto.
    pub trans: Option<String>,
    pub extra: Extra,
}

/// `<target dev='vda' bus='virtio'/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskTarget {
    pub dev: String,
    pub bus: Option<String>,
    /// open or closed: a removable medium's tray as last seen.
    pub tray: Option<String>,
    /// on or off: whether a USB disk says its medium is removable.
    pub removable: Option<String>,
    /// The rotation rate a disk reports (1: a solid-state disk).
    pub rotation_rate: Option<u32>,
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
        let snapshot = s.attr_enum("snapshot", &["no", "internal", "external", "manual"])?;
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
                error_policy: d
                    .attr_enum("error_policy", &["stop", "report", "ignore", "enospace"])?,
                rerror_policy: d.attr_enum("rerror_policy", &["stop", "report", "ignore"])?,
                ioeventfd: d.attr_enum("ioeventfd", ON_OFF)?,
                event_idx: d.attr_enum("event_idx", ON_OFF)?,
                copy_on_read: d.attr_enum("copy_on_read", ON_OFF)?,
                iothread: d.attr_parse("iothread", positive)?,
                detect_zeroes: d.attr_enum("detect_zeroes", &["off", "on", "unmap"])?,
                queues: d.attr_parse("queues", positive)?,
                queue_size: d.attr_parse("queue_size", positive)?,
                virtio: VirtioOptions::parse(&mut d)?,
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
            tray: t.attr_enum("tray", &["open", "closed"])?,
            removable: t.attr_enum("removable", ON_OFF)?,
            rotation_rate: t.attr_parse("rotation_rate", positive)?,
            extra: t.finish(),
        };
        let readonly = flag(&mut s, "readonly")?;
        let shareable = flag(&mut s, "shareable")?;
        let transient = match s.child("transient")? {
            None => None,
            Some(mut t) => Some(DiskTransient {
                share_backing: t.attr_enum("shareBacking", YES_NO)?,
                extra: t.finish(),
            }),
        };
        let serial = s.leaf("serial")?;
        let wwn = s.leaf("wwn")?;
        let blockio = match s.child("blockio")? {
            None => None,
            Some(mut b) => Some(DiskBlockio {
                logical_block_size: b.attr_parse("logical_block_size", positive)?,
                physical_block_size: b.attr_parse("physical_block_size", positive)?,
                extra: b.finish(),
            }),
        };
        let geometry = match s.child("geometry")? {
            None => None,
            Some(mut g) => {
                let mut req = |name: &str| -> Result<u32, XmlError> {
                    g.attr_parse(name, positive)?
                        .ok_or_else(|| XmlError::missing(g.attr_loc(name)))
                };
                let (cyls, heads, secs) = (req("cyls")?, req("heads")?, req("secs")?);
                Some(DiskGeometry {
                    cyls,
                    heads,
                    secs,
                    trans: g.attr_enum("trans", &["none", "lba", "auto"])?,
                    extra: g.finish(),
                })
            }
        };
        let vendor = s.leaf("vendor")?;
        let product = s.leaf("product")?;
        let boot_order = parse_boot_order(&mut s)?;
        let info = DeviceInfo::parse(&mut s)?;
        Ok(Disk {
            disk_type,
            device,
            snapshot,
            driver,
            source,
            target,
            readonly,
            shareable,
            transient,
            serial,
            wwn,
            blockio,
            geometry,
            vendor,
            product,
            boot_order,
            info,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("disk");
        el.set("type", self.disk_type.as_str());
        el.set("device", self.device.as_str());
        el.set_opt("snapshot", self.snapshot.as_deref());
        if let Some(d) = &self.driver {
            let mut de = Element::new("driver");
            de.set_opt("name", d.name.as_deref());
            de.set_opt("type", d.format.as_deref());
            de.set_opt("cache", d.cache.as_deref());
            de.set_opt("io", d.io.as_deref());
            de.set_opt("error_policy", d.error_policy.as_deref());
            de.set_opt("rerror_policy", d.rerror_policy.as_deref());
            de.set_opt("ioeventfd", d.ioeventfd.as_deref());
            de.set_opt("event_idx", d.event_idx.as_deref());
            de.set_opt("copy_on_read", d.copy_on_read.as_deref());
            de.set_opt("discard", d.discard.as_deref());
            de.set_opt("iothread", d.iothread);
            de.set_opt("detect_zeroes", d.detect_zeroes.as_deref());
            de.set_opt("queues", d.queues);
            de.set_opt("queue_size", d.queue_size);
            d.virtio.set_on(&mut de);
            d.extra.apply(&mut de, ctx);
            el.push(de);
        }
        if let Some(src) = &self.source {
            el.push(src.to_element(ctx));
        }
        if let Some(g) = &self.geometry {
            let mut ge = Element::new("geometry");
            ge.set("cyls", g.cyls.to_string());
            ge.set("heads", g.heads.to_string());
            ge.set("secs", g.secs.to_string());
            ge.set_opt("trans", g.trans.as_deref());
            g.extra.apply(&mut ge, ctx);
            el.push(ge);
        }
        if let Some(b) = &self.blockio {
            let mut be = Element::new("blockio");
            be.set_opt("logical_block_size", b.logical_block_size);
            be.set_opt("physical_block_size", b.physical_block_size);
            b.extra.apply(&mut be, ctx);
            el.push(be);
        }
        let mut te = Element::new("target");
        te.set("dev", self.target.dev.as_str());
        te.set_opt("bus", self.target.bus.as_deref());
        te.set_opt("tray", self.target.tray.as_deref());
        te.set_opt("removable", self.target.removable.as_deref());
        te.set_opt("rotation_rate", self.target.rotation_rate);
        self.target.extra.apply(&mut te, ctx);
        el.push(te);
        for (name, on) in [("readonly", self.readonly), ("shareable", self.shareable)] {
            if on {
                let mut f = Element::new(name);
                self.extra.apply_sub(name, &mut f, ctx);
                el.push(f);
            }
        }
        if let Some(t) = &self.transient {
            let mut te = Element::new("transient");
            te.set_opt("shareBacking", t.share_backing.as_deref());
            t.extra.apply(&mut te, ctx);
            el.push(te);
        }
        for (name, text) in [
            ("serial", &self.serial),
            ("wwn", &self.wwn),
            ("vendor", &self.vendor),
            ("product", &self.product),
        ] {
            if let Some(text) = text {
                let mut te = Element::with_text(name, text.as_str());
                self.extra.apply_sub(name, &mut te, ctx);
                el.push(te);
            }
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
            startup_policy: s.attr_enum("startupPolicy", STARTUP_POLICIES)?,
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
        el.set_opt("startupPolicy", self.startup_policy.as_deref());
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
