//! `<controller>`: buses devices hang off (PCI, USB, SCSI, virtio-serial, ...).

use super::common::{DeviceInfo, VirtioOptions, insert_before_address};
use crate::xml::error::XmlError;
use crate::xml::extra::{Extra, FmtCtx};
use crate::xml::resources::scaled_kib_in;
use crate::xml::scope::Scope;
use crate::xml::tree::Element;
use crate::xml::values::{ON_OFF, positive, uint, uint_hex};

const CONTROLLER_TYPES: &[&str] = &[
    "ide",
    "fdc",
    "scsi",
    "sata",
    "virtio-serial",
    "ccid",
    "usb",
    "pci",
    "xenbus",
    "isa",
];

/// `<controller type=… index=… model=…>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Controller {
    pub controller_type: String,
    pub index: Option<u32>,
    /// Depends on the type (`pcie-root`, `qemu-xhci`, `virtio-scsi`, ...), so not checked here.
    pub model: Option<String>,
    /// `ports`: a virtio-serial controller's port count, or a USB controller's.
    pub ports: Option<u32>,
    /// `vectors`: a virtio-serial controller's MSI-X vectors.
    pub vectors: Option<u32>,
    /// `<model name=…/>`: the emulated device that implements a PCI controller model.
    pub model_name: Option<String>,
    pub target: Option<ControllerTarget>,
    pub driver: Option<ControllerDriver>,
    /// `<master startport=…/>`: a USB companion controller's first port on its master.
    pub master_startport: Option<u32>,
    /// `<pcihole64>`: the size of a PCI root's 64-bit memory hole, in KiB.
    pub pcihole64_kib: Option<u64>,
    pub info: DeviceInfo,
    pub extra: Extra,
}

/// `<target chassisNr=… chassis=… port=… busNr=… index=… hotplug=…><node>N</node></target>`
/// of a PCI controller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ControllerTarget {
    /// A PCI bridge's chassis number.
    pub chassis_nr: Option<u32>,
    /// A PCIe port's chassis.
    pub chassis: Option<u32>,
    /// A PCIe port's number.
    pub port: Option<u32>,
    /// An expander bus's bus number.
    pub bus_nr: Option<u32>,
    /// A pSeries PHB's index.
    pub index: Option<u32>,
    /// A PCIe port's hotplug switch: on or off.
    pub hotplug: Option<String>,
    /// `<node>`: the guest NUMA node of an expander bus.
    pub node: Option<u32>,
    pub extra: Extra,
}

/// `<driver queues=… cmd_per_lun=… max_sectors=… ioeventfd=… iothread=…/>` and the virtio
/// options, of a SCSI or virtio-serial controller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ControllerDriver {
    pub queues: Option<u32>,
    pub cmd_per_lun: Option<u32>,
    pub max_sectors: Option<u32>,
    pub ioeventfd: Option<String>,
    pub iothread: Option<u32>,
    pub virtio: VirtioOptions,
    pub extra: Extra,
}

impl Controller {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let controller_type = s
            .attr_enum("type", CONTROLLER_TYPES)?
            .ok_or_else(|| XmlError::missing(s.attr_loc("type")))?;
        let index = s.attr_parse("index", uint::<u32>)?;
        let model = s.attr_string("model");
        let ports = s.attr_parse("ports", uint::<u32>)?;
        let vectors = s.attr_parse("vectors", uint::<u32>)?;
        let model_name = match s.child("model")? {
            None => None,
            Some(mut m) => {
                let name = m.req_attr("name")?.to_string();
                s.keep("model", m.finish());
                Some(name)
            }
        };
        let target = s.child("target")?.map(parse_target).transpose()?;
        let driver = match s.child("driver")? {
            None => None,
            Some(mut d) => Some(ControllerDriver {
                queues: d.attr_parse("queues", positive)?,
                cmd_per_lun: d.attr_parse("cmd_per_lun", positive)?,
                max_sectors: d.attr_parse("max_sectors", positive)?,
                ioeventfd: d.attr_enum("ioeventfd", ON_OFF)?,
                iothread: d.attr_parse("iothread", positive)?,
                virtio: VirtioOptions::parse(&mut d)?,
                extra: d.finish(),
            }),
        };
        let master_startport = match s.child("master")? {
            None => None,
            Some(mut m) => {
                let port = m
                    .attr_parse("startport", uint::<u32>)?
                    .ok_or_else(|| XmlError::missing(m.attr_loc("startport")))?;
                s.keep("master", m.finish());
                Some(port)
            }
        };
        let pcihole64_kib = match s.child("pcihole64")? {
            None => None,
            Some(mut h) => {
                let kib = scaled_kib_in(&mut h, None)?;
                s.keep("pcihole64", h.finish());
                Some(kib)
            }
        };
        let info = DeviceInfo::parse(&mut s)?;
        Ok(Controller {
            controller_type,
            index,
            model,
            ports,
            vectors,
            model_name,
            target,
            driver,
            master_startport,
            pcihole64_kib,
            info,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("controller");
        el.set("type", self.controller_type.as_str());
        el.set_opt("index", self.index);
        el.set_opt("model", self.model.as_deref());
        el.set_opt("ports", self.ports);
        el.set_opt("vectors", self.vectors);
        if let Some(name) = &self.model_name {
            let mut m = Element::new("model");
            m.set("name", name.as_str());
            self.extra.apply_sub("model", &mut m, ctx);
            el.push(m);
        }
        if let Some(t) = &self.target {
            el.push(target_element(t, ctx));
        }
        if let Some(d) = &self.driver {
            let mut de = Element::new("driver");
            de.set_opt("queues", d.queues);
            de.set_opt("cmd_per_lun", d.cmd_per_lun);
            de.set_opt("max_sectors", d.max_sectors);
            de.set_opt("ioeventfd", d.ioeventfd.as_deref());
            de.set_opt("iothread", d.iothread);
            d.virtio.set_on(&mut de);
            d.extra.apply(&mut de, ctx);
            el.push(de);
        }
        self.info.push_to(&mut el, &self.extra, ctx);
        if let Some(port) = self.master_startport {
            // libvirt writes it between <alias> and <address>.
            let mut m = Element::new("master");
            m.set("startport", port.to_string());
            self.extra.apply_sub("master", &mut m, ctx);
            insert_before_address(&mut el, m);
        }
        if let Some(kib) = self.pcihole64_kib {
            let mut h = Element::with_text("pcihole64", kib.to_string());
            h.set("unit", "KiB");
            self.extra.apply_sub("pcihole64", &mut h, ctx);
            el.push(h);
        }
        self.extra.apply(&mut el, ctx);
        el
    }
}

fn parse_target(mut t: Scope<'_>) -> Result<ControllerTarget, XmlError> {
    let mut target = ControllerTarget {
        chassis_nr: t.attr_parse("chassisNr", uint_hex)?,
        chassis: t.attr_parse("chassis", uint_hex)?,
        port: t.attr_parse("port", uint_hex)?,
        bus_nr: t.attr_parse("busNr", uint_hex)?,
        index: t.attr_parse("index", uint_hex)?,
        hotplug: t.attr_enum("hotplug", ON_OFF)?,
        ..Default::default()
    };
    if let Some(mut n) = t.child("node")? {
        target.node = Some(n.text_parse(uint::<u32>)?);
        t.keep("node", n.finish());
    }
    target.extra = t.finish();
    Ok(target)
}

fn target_element(t: &ControllerTarget, ctx: &mut FmtCtx) -> Element {
    let mut te = Element::new("target");
    te.set_opt("chassisNr", t.chassis_nr);
    te.set_opt("chassis", t.chassis);
    te.set_opt("port", t.port.map(|p| format!("{p:#x}")));
    te.set_opt("busNr", t.bus_nr);
    te.set_opt("index", t.index);
    te.set_opt("hotplug", t.hotplug.as_deref());
    if let Some(node) = t.node {
        let mut n = Element::with_text("node", node.to_string());
        t.extra.apply_sub("node", &mut n, ctx);
        te.push(n);
    }
    t.extra.apply(&mut te, ctx);
    te
}
