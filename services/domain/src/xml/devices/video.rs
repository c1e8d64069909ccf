//! `<video>`: the guest's display adapter.

use super::common::{DeviceInfo, VirtioOptions};
use crate::xml::error::XmlError;
use crate::xml::extra::{Extra, FmtCtx};
use crate::xml::scope::Scope;
use crate::xml::tree::Element;
use crate::xml::values::{YES_NO, uint};

const VIDEO_MODELS: &[&str] = &[
    "vga",
    "cirrus",
    "vmvga",
    "xen",
    "vbox",
    "qxl",
    "parallels",
    "virtio",
    "gop",
    "none",
    "bochs",
    "ramfb",
];

/// `<video>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Video {
    pub driver: Option<VideoDriver>,
    pub model: Option<VideoModel>,
    pub info: DeviceInfo,
    pub extra: Extra,
}

/// `<model type=… vram=… heads=… primary=…/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VideoModel {
    pub model_type: String,
    /// KiB, qxl only.
    pub ram: Option<u32>,
    /// KiB.
    pub vram: Option<u32>,
    /// KiB, qxl only.
    pub vgamem: Option<u32>,
    /// KiB, qxl only: the 64-bit BAR.
    pub vram64: Option<u32>,
    pub heads: Option<u32>,
    pub primary: Option<String>,
    pub extra: Extra,
}

/// `<driver name=… iommu=… …/>`: who implements the device (`qemu` or `vhostuser`) and
/// its virtio options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VideoDriver {
    pub name: Option<String>,
    pub virtio: VirtioOptions,
    pub extra: Extra,
}

impl Video {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let driver = match s.child("driver")? {
            None => None,
            Some(mut d) => Some(VideoDriver {
                name: d.attr_enum("name", &["qemu", "vhostuser"])?,
                virtio: VirtioOptions::parse(&mut d)?,
                extra: d.finish(),
            }),
        };
        let model = match s.child("model")? {
            None => None,
            Some(mut m) => Some(VideoModel {
                model_type: m
                    .attr_enum("type", VIDEO_MODELS)?
                    .ok_or_else(|| XmlError::missing(m.attr_loc("type")))?,
                ram: m.attr_parse("ram", uint::<u32>)?,
                vram: m.attr_parse("vram", uint::<u32>)?,
                vgamem: m.attr_parse("vgamem", uint::<u32>)?,
                vram64: m.attr_parse("vram64", uint::<u32>)?,
                heads: m.attr_parse("heads", uint::<u32>)?,
                primary: m.attr_enum("primary", YES_NO)?,
                extra: m.finish(),
            }),
        };
        let info = DeviceInfo::parse(&mut s)?;
        Ok(Video {
            driver,
            model,
            info,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("video");
        if let Some(d) = &self.driver {
            let mut de = Element::new("driver");
            de.set_opt("name", d.name.as_deref());
            d.virtio.set_on(&mut de);
            d.extra.apply(&mut de, ctx);
            el.push(de);
        }
        if let Some(m) = &self.model {
            let mut me = Element::new("model");
            me.set("type", m.model_type.as_str());
            me.set_opt("ram", m.ram);
            me.set_opt("vram", m.vram);
            me.set_opt("vgamem", m.vgamem);
            me.set_opt("vram64", m.vram64);
            me.set_opt("heads", m.heads);
            me.set_opt("primary", m.primary.as_deref());
            m.extra.apply(&mut me, ctx);
            el.push(me);
        }
        self.info.push_to(&mut el, &self.extra, ctx);
        self.extra.apply(&mut el, ctx);
        el
    }
}
