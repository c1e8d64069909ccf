//! Small devices: `<memballoon>`, `<watchdog>`, `<rng>`.

use super::common::DeviceInfo;
use crate::xml::error::XmlError;
use crate::xml::extra::{Extra, FmtCtx};
use crate::xml::scope::Scope;
use crate::xml::tree::Element;
use crate::xml::values::ON_OFF;

const VIRTIO_MODELS: &[&str] = &["virtio", "virtio-transitional", "virtio-non-transitional"];

/// `<memballoon model=…>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Memballoon {
    /// virtio, xen, none, virtio-transitional, virtio-non-transitional.
    pub model: String,
    pub autodeflate: Option<String>,
    pub info: DeviceInfo,
    pub extra: Extra,
}

/// `<watchdog model=… action=…>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Watchdog {
    pub model: String,
    pub action: Option<String>,
    pub info: DeviceInfo,
    pub extra: Extra,
}

/// `<rng model='virtio'>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rng {
    pub model: String,
    pub backend: Option<RngBackend>,
    pub info: DeviceInfo,
    pub extra: Extra,
}

/// `<backend model='random'>/dev/urandom</backend>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RngBackend {
    /// random, egd, builtin.
    pub model: String,
    /// The host device for `random`.
    pub path: Option<String>,
    pub extra: Extra,
}

fn required_model(s: &mut Scope<'_>, allowed: &[&str]) -> Result<String, XmlError> {
    s.attr_enum("model", allowed)?
        .ok_or_else(|| XmlError::missing(s.attr_loc("model")))
}

impl Memballoon {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let model = required_model(
            &mut s,
            &[
                "virtio",
                "xen",
                "none",
                "virtio-transitional",
                "virtio-non-transitional",
            ],
        )?;
        let autodeflate = s.attr_enum("autodeflate", ON_OFF)?;
        let info = DeviceInfo::parse(&mut s)?;
        Ok(Memballoon {
            model,
            autodeflate,
            info,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("memballoon");
        el.set("model", self.model.as_str());
        el.set_opt("autodeflate", self.autodeflate.as_deref());
        self.info.push_to(&mut el, &self.extra, ctx);
        self.extra.apply(&mut el, ctx);
        el
    }
}

impl Watchdog {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let model = required_model(&mut s, &["i6300esb", "ib700", "diag288", "itco"])?;
        let action = s.attr_enum(
            "action",
            &[
                "reset",
                "shutdown",
                "poweroff",
                "pause",
                "dump",
                "none",
                "inject-nmi",
            ],
        )?;
        let info = DeviceInfo::parse(&mut s)?;
        Ok(Watchdog {
            model,
            action,
            info,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("watchdog");
        el.set("model", self.model.as_str());
        el.set_opt("action", self.action.as_deref());
        self.info.push_to(&mut el, &self.extra, ctx);
        self.extra.apply(&mut el, ctx);
        el
    }
}

impl Rng {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let model = required_model(&mut s, VIRTIO_MODELS)?;
        let backend = match s.child("backend")? {
            None => None,
            Some(mut b) => {
                let model = required_model(&mut b, &["random", "egd", "builtin"])?;
                let text = b.text();
                let path = (!text.trim().is_empty()).then(|| text.trim().to_string());
                Some(RngBackend {
                    model,
                    path,
                    extra: b.finish(),
                })
            }
        };
        let info = DeviceInfo::parse(&mut s)?;
        Ok(Rng {
            model,
            backend,
            info,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("rng");
        el.set("model", self.model.as_str());
        if let Some(b) = &self.backend {
            let mut be = match &b.path {
                Some(p) => Element::with_text("backend", p.as_str()),
                None => Element::new("backend"),
            };
            be.set("model", b.model.as_str());
            b.extra.apply(&mut be, ctx);
            el.push(be);
        }
        self.info.push_to(&mut el, &self.extra, ctx);
        self.extra.apply(&mut el, ctx);
        el
    }
}
