//! Character devices: `<serial>`, `<console>` and `<channel>` share one shape.

use super::common::DeviceInfo;
use crate::xml::error::XmlError;
use crate::xml::extra::{Extra, FmtCtx};
use crate::xml::scope::Scope;
use crate::xml::tree::Element;
use crate::xml::values::{ON_OFF, uint};

const CHR_TYPES: &[&str] = &[
    "null",
    "vc",
    "pty",
    "dev",
    "file",
    "pipe",
    "stdio",
    "udp",
    "tcp",
    "unix",
    "spicevmc",
    "spiceport",
    "nmdm",
    "qemu-vdagent",
    "dbus",
];

/// A `<serial>`, `<console>` or `<channel>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CharDevice {
    /// `type`: pty (libvirt's default), file, unix, tcp, ...
    pub dev_type: String,
    /// `tty=…`: the host pty of a running guest.
    pub tty: Option<String>,
    /// `<source>` elements (udp has two: bind and connect).
    pub sources: Vec<CharSource>,
    /// `<protocol type=…/>` of a TCP backend: raw (the default), telnet, telnets, tls.
    pub protocol: Option<String>,
    pub log: Option<CharLog>,
    pub target: Option<CharTarget>,
    pub info: DeviceInfo,
    pub extra: Extra,
}

/// `<source mode=… path=… host=… service=…/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CharSource {
    pub mode: Option<String>,
    pub path: Option<String>,
    pub host: Option<String>,
    pub service: Option<String>,
    /// `append='on'`: a file backend appends instead of truncating.
    pub append: Option<String>,
    pub extra: Extra,
}

/// `<log file=… append=…/>`: where QEMU copies what the guest writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CharLog {
    pub file: String,
    pub append: Option<String>,
    pub extra: Extra,
}

/// `<target type=… port=… name=…/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CharTarget {
    pub target_type: Option<String>,
    pub port: Option<u32>,
    /// Channel name such as `org.qemu.guest_agent.0`.
    pub name: Option<String>,
    pub extra: Extra,
}

impl CharDevice {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let dev_type = s
            .attr_enum("type", CHR_TYPES)?
            .unwrap_or_else(|| "pty".to_string());
        let tty = s.attr_string("tty");
        let mut sources = Vec::new();
        for mut src in s.children("source") {
            sources.push(CharSource {
                mode: src.attr_enum("mode", &["bind", "connect"])?,
                path: src.attr_string("path"),
                host: src.attr_string("host"),
                service: src.attr_string("service"),
                append: src.attr_enum("append", ON_OFF)?,
                extra: src.finish(),
            });
        }
        let protocol = match s.child("protocol")? {
            None => None,
            Some(mut p) => {
                let kind = p
                    .attr_enum("type", &["raw", "telnet", "telnets", "tls"])?
                    .ok_or_else(|| XmlError::missing(p.attr_loc("type")))?;
                s.keep("protocol", p.finish());
                Some(kind)
            }
        };
        let log = match s.child("log")? {
            None => None,
            Some(mut l) => Some(CharLog {
                file: l.req_attr("file")?.to_string(),
                append: l.attr_enum("append", ON_OFF)?,
                extra: l.finish(),
            }),
        };
        let target = match s.child("target")? {
            None => None,
            Some(mut t) => Some(CharTarget {
                target_type: t.attr_string("type"),
                port: t.attr_parse("port", uint::<u32>)?,
                name: t.attr_string("name"),
                extra: t.finish(),
            }),
        };
        let info = DeviceInfo::parse(&mut s)?;
        Ok(CharDevice {
            dev_type,
            tty,
            sources,
            protocol,
            log,
            target,
            info,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, name: &str, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new(name);
        el.set("type", self.dev_type.as_str());
        el.set_opt("tty", self.tty.as_deref());
        for src in &self.sources {
            let mut se = Element::new("source");
            se.set_opt("mode", src.mode.as_deref());
            se.set_opt("path", src.path.as_deref());
            se.set_opt("host", src.host.as_deref());
            se.set_opt("service", src.service.as_deref());
            se.set_opt("append", src.append.as_deref());
            src.extra.apply(&mut se, ctx);
            el.push(se);
        }
        if let Some(p) = &self.protocol {
            let mut pe = Element::new("protocol");
            pe.set("type", p.as_str());
            self.extra.apply_sub("protocol", &mut pe, ctx);
            el.push(pe);
        }
        if let Some(l) = &self.log {
            let mut le = Element::new("log");
            le.set("file", l.file.as_str());
            le.set_opt("append", l.append.as_deref());
            l.extra.apply(&mut le, ctx);
            el.push(le);
        }
        if let Some(t) = &self.target {
            let mut te = Element::new("target");
            te.set_opt("type", t.target_type.as_deref());
            te.set_opt("name", t.name.as_deref());
            te.set_opt("port", t.port);
            t.extra.apply(&mut te, ctx);
            el.push(te);
        }
        self.info.push_to(&mut el, &self.extra, ctx);
        self.extra.apply(&mut el, ctx);
        el
    }
}
