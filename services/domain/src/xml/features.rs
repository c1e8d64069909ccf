//! `<features>`: hypervisor features such as ACPI.
//!
//! Features are mostly flags; the model keeps the name and the common `state='on|off'`
//! attribute. Sub-structure (hyperv enlightenments, kvm hidden state, ...) stays in each
//! feature's [`Extra`], so it is kept and reported as not understood.

use super::error::XmlError;
use super::extra::{Extra, FmtCtx};
use super::scope::Scope;
use super::tree::Element;
use super::values::ON_OFF;

/// Feature names libvirt defines (`virDomainFeature`).
pub const KNOWN_FEATURES: &[&str] = &[
    "acpi",
    "apic",
    "pae",
    "hap",
    "viridian",
    "privnet",
    "hyperv",
    "kvm",
    "pvspinlock",
    "capabilities",
    "pmu",
    "vmport",
    "gic",
    "smm",
    "ioapic",
    "hpt",
    "vmcoreinfo",
    "htm",
    "nested-hv",
    "msrs",
    "ccf-assist",
    "xen",
    "cfpc",
    "sbbc",
    "ibs",
    "tcg",
    "async-teardown",
];

/// `<features>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Features {
    pub items: Vec<Feature>,
    pub extra: Extra,
}

/// One feature, e.g. `<acpi/>` or `<vmport state='off'/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Feature {
    pub name: String,
    pub state: Option<String>,
    pub extra: Extra,
}

impl Features {
    /// Whether a feature is present and not switched off.
    pub fn enabled(&self, name: &str) -> bool {
        self.items
            .iter()
            .any(|f| f.name == name && f.state.as_deref() != Some("off"))
    }

    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let mut items = Vec::new();
        for (el, mut f) in s.matching(|e| KNOWN_FEATURES.contains(&e.name.as_str())) {
            let state = f.attr_enum("state", ON_OFF)?;
            items.push(Feature {
                name: el.name.clone(),
                state,
                extra: f.finish(),
            });
        }
        Ok(Features {
            items,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("features");
        for f in &self.items {
            let mut fe = Element::new(f.name.as_str());
            fe.set_opt("state", f.state.as_deref());
            f.extra.apply(&mut fe, ctx);
            el.push(fe);
        }
        self.extra.apply(&mut el, ctx);
        el
    }
}
