//! `<controller>`: buses devices hang off (PCI, USB, SCSI, virtio-serial, ...).

use super::common::DeviceInfo;
use crate::xml::error::XmlError;
use crate::xml::extra::{Extra, FmtCtx};
use crate::xml::scope::Scope;
use crate::xml::tree::Element;
use crate::xml::values::uint;

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
    pub info: DeviceInfo,
    pub extra: Extra,
}

impl Controller {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let controller_type = s
            .attr_enum("type", CONTROLLER_TYPES)?
            .ok_or_else(|| XmlError::missing(s.attr_loc("type")))?;
        let index = s.attr_parse("index", uint::<u32>)?;
        let model = s.attr_string("model");
        let info = DeviceInfo::parse(&mut s)?;
        Ok(Controller {
            controller_type,
            index,
            model,
            info,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("controller");
        el.set("type", self.controller_type.as_str());
        el.set_opt("index", self.index);
        el.set_opt("model", self.model.as_deref());
        self.info.push_to(&mut el, &self.extra, ctx);
        self.extra.apply(&mut el, ctx);
        el
    }
}
