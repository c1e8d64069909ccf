//! `<input>`: mice, tablets, keyboards.

use super::common::{DeviceInfo, VirtioOptions, parse_virtio_driver, push_virtio_driver};
use crate::xml::error::XmlError;
use crate::xml::extra::{Extra, FmtCtx};
use crate::xml::scope::Scope;
use crate::xml::tree::Element;

/// `<input type=… bus=…>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Input {
    /// mouse, tablet, keyboard, passthrough, evdev.
    pub input_type: String,
    /// ps2, usb, xen, parallels, virtio, none.
    pub bus: Option<String>,
    /// `<driver>`'s virtio options.
    pub driver: Option<VirtioOptions>,
    pub info: DeviceInfo,
    pub extra: Extra,
}

impl Input {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let input_type = s
            .attr_enum(
                "type",
                &["mouse", "tablet", "keyboard", "passthrough", "evdev"],
            )?
            .ok_or_else(|| XmlError::missing(s.attr_loc("type")))?;
        let bus = s.attr_enum("bus", &["ps2", "usb", "xen", "parallels", "virtio", "none"])?;
        let driver = parse_virtio_driver(&mut s)?;
        let info = DeviceInfo::parse(&mut s)?;
        Ok(Input {
            input_type,
            bus,
            driver,
            info,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("input");
        el.set("type", self.input_type.as_str());
        el.set_opt("bus", self.bus.as_deref());
        push_virtio_driver(&mut el, self.driver.as_ref(), &self.extra, ctx);
        self.info.push_to(&mut el, &self.extra, ctx);
        self.extra.apply(&mut el, ctx);
        el
    }
}
