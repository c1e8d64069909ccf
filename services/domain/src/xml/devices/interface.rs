//! `<interface>`: network cards.

use super::common::{DeviceInfo, parse_boot_order, push_boot_order, push_leaf};
use crate::xml::error::XmlError;
use crate::xml::extra::{Extra, FmtCtx};
use crate::xml::scope::Scope;
use crate::xml::tree::Element;
use crate::xml::values::mac;

const NET_TYPES: &[&str] = &[
    "user",
    "ethernet",
    "vhostuser",
    "server",
    "client",
    "mcast",
    "network",
    "bridge",
    "internal",
    "direct",
    "hostdev",
    "udp",
    "vdpa",
    "null",
    "vds",
];

/// `<interface type=…>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interface {
    pub iface_type: String,
    /// `<mac address=…>`, canonical lowercase.
    pub mac: Option<String>,
    pub source: Option<InterfaceSource>,
    /// `<target dev=…>`: the host-side device name.
    pub target_dev: Option<String>,
    /// `<model type=…>`: virtio, e1000, ...
    pub model: Option<String>,
    pub boot_order: Option<u32>,
    pub info: DeviceInfo,
    pub extra: Extra,
}

/// `<source network=…|bridge=…|dev=… mode=…>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceSource {
    pub network: Option<String>,
    pub bridge: Option<String>,
    pub dev: Option<String>,
    pub mode: Option<String>,
    pub extra: Extra,
}

impl Interface {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let iface_type = s
            .attr_enum("type", NET_TYPES)?
            .ok_or_else(|| XmlError::missing(s.attr_loc("type")))?;
        let mac = match s.child("mac")? {
            None => None,
            Some(mut m) => {
                let address = m
                    .attr_parse("address", mac)?
                    .ok_or_else(|| XmlError::missing(m.attr_loc("address")))?;
                s.keep("mac", m.finish());
                Some(address)
            }
        };
        let source = s.child("source")?.map(|mut src| InterfaceSource {
            network: src.attr_string("network"),
            bridge: src.attr_string("bridge"),
            dev: src.attr_string("dev"),
            mode: src.attr_string("mode"),
            extra: src.finish(),
        });
        let target_dev = attr_leaf(&mut s, "target", "dev")?;
        let model = attr_leaf(&mut s, "model", "type")?;
        let boot_order = parse_boot_order(&mut s)?;
        let info = DeviceInfo::parse(&mut s)?;
        Ok(Interface {
            iface_type,
            mac,
            source,
            target_dev,
            model,
            boot_order,
            info,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("interface");
        el.set("type", self.iface_type.as_str());
        push_leaf(
            &mut el,
            "mac",
            &[("address", self.mac.as_deref())],
            &self.extra,
            ctx,
        );
        if let Some(src) = &self.source {
            let mut se = Element::new("source");
            se.set_opt("network", src.network.as_deref());
            se.set_opt("bridge", src.bridge.as_deref());
            se.set_opt("dev", src.dev.as_deref());
            se.set_opt("mode", src.mode.as_deref());
            src.extra.apply(&mut se, ctx);
            el.push(se);
        }
        push_leaf(
            &mut el,
            "target",
            &[("dev", self.target_dev.as_deref())],
            &self.extra,
            ctx,
        );
        push_leaf(
            &mut el,
            "model",
            &[("type", self.model.as_deref())],
            &self.extra,
            ctx,
        );
        push_boot_order(&mut el, self.boot_order, &self.extra, ctx);
        self.info.push_to(&mut el, &self.extra, ctx);
        self.extra.apply(&mut el, ctx);
        el
    }
}

/// Reads one attribute of a single child such as `<model type=…/>`, keeping the rest.
pub(crate) fn attr_leaf(
    s: &mut Scope<'_>,
    name: &str,
    attr: &str,
) -> Result<Option<String>, XmlError> {
    let Some(mut c) = s.child(name)? else {
        return Ok(None);
    };
    let value = c.req_attr(attr)?.to_string();
    s.keep(name, c.finish());
    Ok(Some(value))
}
