//! `<qemu:commandline>`: raw QEMU arguments and environment, libvirt's passthrough escape
//! hatch (namespace `http://libvirt.org/schemas/domain/qemu/1.0`). Using it needs the
//! `domain:passthrough` permission, which is why [`super::DomainDef::has_qemu_commandline`]
//! exists.

use super::error::XmlError;
use super::extra::{Extra, FmtCtx};
use super::scope::Scope;
use super::tree::{Element, split_qname};

/// The namespace URI of libvirt's QEMU extensions.
pub const QEMU_NS: &str = "http://libvirt.org/schemas/domain/qemu/1.0";

/// `<qemu:commandline>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QemuCommandline {
    /// `<qemu:arg value=…/>` in order.
    pub args: Vec<String>,
    /// `<qemu:env name=… value=…/>` in order.
    pub envs: Vec<(String, Option<String>)>,
    pub extra: Extra,
}

/// Whether `el` (a child of `root`) is in the QEMU namespace: its prefix (or the default
/// namespace) is bound to [`QEMU_NS`] on the element itself or on the root.
pub(crate) fn in_qemu_ns(el: &Element, scopes: &[&Element]) -> bool {
    let key = match split_qname(&el.name).0 {
        Some(p) => format!("xmlns:{p}"),
        None => "xmlns".to_string(),
    };
    std::iter::once(el)
        .chain(scopes.iter().copied())
        .find_map(|e| e.attr(&key))
        == Some(QEMU_NS)
}

impl QemuCommandline {
    pub(crate) fn parse(mut s: Scope<'_>, root: &Element) -> Result<Self, XmlError> {
        let own = s.element();
        // Declarations of our namespace are implied by the model and written as needed.
        for (k, v) in &own.attrs {
            if (k == "xmlns" || k.starts_with("xmlns:")) && v == QEMU_NS {
                s.attr(k);
            }
        }
        let in_ns = |e: &Element| in_qemu_ns(e, &[own, root]);
        let mut args = Vec::new();
        let mut envs = Vec::new();
        for (el, mut c) in s.matching(|e| in_ns(e) && matches!(e.local_name(), "arg" | "env")) {
            if el.local_name() == "arg" {
                args.push(c.req_attr("value")?.to_string());
                s.keep(&format!("arg#{}", args.len() - 1), c.finish());
            } else {
                let name = c.req_attr("name")?;
                if !valid_env_name(name) {
                    return Err(XmlError::value(
                        c.attr_loc("name"),
                        name,
                        "an environment variable name: a letter or '_', then letters, digits or '_'",
                    ));
                }
                envs.push((name.to_string(), c.attr_string("value")));
                s.keep(&format!("env#{}", envs.len() - 1), c.finish());
            }
        }
        Ok(QemuCommandline {
            args,
            envs,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("qemu:commandline");
        for (i, a) in self.args.iter().enumerate() {
            let mut ae = Element::new("qemu:arg");
            ae.set("value", a.as_str());
            self.extra.apply_sub(&format!("arg#{i}"), &mut ae, ctx);
            el.push(ae);
        }
        for (i, (name, value)) in self.envs.iter().enumerate() {
            let mut ee = Element::new("qemu:env");
            ee.set("name", name.as_str());
            ee.set_opt("value", value.as_deref());
            self.extra.apply_sub(&format!("env#{i}"), &mut ee, ctx);
            el.push(ee);
        }
        self.extra.apply(&mut el, ctx);
        el
    }
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
