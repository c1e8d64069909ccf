//! Small devices: `<memballoon>`, `<watchdog>`, `<rng>`, `<panic>`.

use super::common::{DeviceInfo, VirtioOptions, parse_virtio_driver, push_virtio_driver};
use crate::xml::error::XmlError;
use crate::xml::extra::{Extra, FmtCtx};
use crate::xml::scope::Scope;
use crate::xml::tree::Element;
use crate::xml::values::{ON_OFF, positive, uint};

const VIRTIO_MODELS: &[&str] = &["virtio", "virtio-transitional", "virtio-non-transitional"];

/// `<memballoon model=…>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Memballoon {
    /// virtio, xen, none, virtio-transitional, virtio-non-transitional.
    pub model: String,
    pub autodeflate: Option<String>,
    /// `freePageReporting`: on or off.
    pub free_page_reporting: Option<String>,
    /// `<stats period=…/>`: seconds between the guest's memory statistics reports.
    pub stats_period: Option<u32>,
    /// `<driver>`'s virtio options.
    pub driver: Option<VirtioOptions>,
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

/// `<panic model=…>`: how the guest reports a crash to the host (`<on_crash>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Panic {
    /// isa, pci, hyperv, pseries, s390 (absent: the architecture's default, isa on x86).
    pub model: Option<String>,
    pub info: DeviceInfo,
    pub extra: Extra,
}

impl Panic {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let model = s.attr_enum("model", &["isa", "pseries", "hyperv", "s390", "pci"])?;
        let info = DeviceInfo::parse(&mut s)?;
        Ok(Panic {
            model,
            info,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("panic");
        el.set_opt("model", self.model.as_deref());
        self.info.push_to(&mut el, &self.extra, ctx);
        self.extra.apply(&mut el, ctx);
        el
    }
}

/// `<rng model='virtio'>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rng {
    pub model: String,
    pub rate: Option<RngRate>,
    pub backend: Option<RngBackend>,
    /// `<driver>`'s virtio options.
    pub driver: Option<VirtioOptions>,
    pub info: DeviceInfo,
    pub extra: Extra,
}

/// `<rate bytes=… period=…/>`: at most `bytes` of entropy per `period` milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RngRate {
    pub bytes: u32,
    pub period: Option<u32>,
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
        let free_page_reporting = s.attr_enum("freePageReporting", ON_OFF)?;
        let stats_period = match s.child("stats")? {
            None => None,
            Some(mut st) => {
                let period = st
                    .attr_parse("period", uint::<u32>)?
                    .ok_or_else(|| XmlError::missing(st.attr_loc("period")))?;
                s.keep("stats", st.finish());
                Some(period)
            }
        };
        let driver = parse_virtio_driver(&mut s)?;
        let info = DeviceInfo::parse(&mut s)?;
        Ok(Memballoon {
            model,
            autodeflate,
            free_page_reporting,
            stats_period,
            driver,
            info,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("memballoon");
        el.set("model", self.model.as_str());
        el.set_opt("autodeflate", self.autodeflate.as_deref());
        el.set_opt("freePageReporting", self.free_page_reporting.as_deref());
        if let Some(period) = self.stats_period {
            let mut st = Element::new("stats");
            st.set("period", period.to_string());
            self.extra.apply_sub("stats", &mut st, ctx);
            el.push(st);
        }
        self.info.push_to(&mut el, &self.extra, ctx);
        push_virtio_driver(&mut el, self.driver.as_ref(), &self.extra, ctx);
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
        let rate = match s.child("rate")? {
            None => None,
            Some(mut r) => Some(RngRate {
                bytes: r
                    .attr_parse("bytes", uint::<u32>)?
                    .ok_or_else(|| XmlError::missing(r.attr_loc("bytes")))?,
                period: r.attr_parse("period", positive)?,
                extra: r.finish(),
            }),
        };
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
        let driver = parse_virtio_driver(&mut s)?;
        let info = DeviceInfo::parse(&mut s)?;
        Ok(Rng {
            model,
            rate,
            backend,
            driver,
            info,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("rng");
        el.set("model", self.model.as_str());
        if let Some(r) = &self.rate {
            let mut re = Element::new("rate");
            re.set("bytes", r.bytes.to_string());
            re.set_opt("period", r.period);
            r.extra.apply(&mut re, ctx);
            el.push(re);
        }
        if let Some(b) = &self.backend {
            let mut be = match &b.path {
                Some(p) => Element::with_text("backend", p.as_str()),
                None => Element::new("backend"),
            };
            be.set("model", b.model.as_str());
            b.extra.apply(&mut be, ctx);
            el.push(be);
        }
        push_virtio_driver(&mut el, self.driver.as_ref(), &self.extra, ctx);
        self.info.push_to(&mut el, &self.extra, ctx);
        self.extra.apply(&mut el, ctx);
        el
    }
}
