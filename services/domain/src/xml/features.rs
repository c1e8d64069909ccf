//! `<features>`: hypervisor features such as ACPI.
//!
//! Features are mostly flags; the model keeps the name and the common `state='on|off'`
//! attribute. Sub-structure (hyperv enlightenments, kvm hidden state, ...) stays in each
//! feature's [`Extra`], so it is kept and reported as not understood.

use super::error::XmlError;
use super::extra::{Extra, FmtCtx};
use super::resources::scaled_kib_in;
use super::scope::Scope;
use super::tree::Element;
use super::values::{ON_OFF, uint};

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

/// One feature, e.g. `<acpi/>` or `<vmport state='off'/>`, with the few settings of
/// particular features that are modelled (each only read on its feature).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Feature {
    pub name: String,
    pub state: Option<String>,
    /// `<apic eoi='on|off'/>`: KVM's paravirtual end-of-interrupt.
    pub eoi: Option<String>,
    /// `<ioapic driver='kvm|qemu'/>`: where the I/O APIC is emulated.
    pub driver: Option<String>,
    /// `<smm><tseg unit=…>size</tseg></smm>`: the SMRAM size, in KiB.
    pub tseg_kib: Option<u64>,
    /// `<tcg><tb-cache unit=…>size</tb-cache></tcg>`: TCG's translation cache, in KiB.
    pub tb_cache_kib: Option<u64>,
    /// `<hyperv mode=…>`: custom (the listed enlightenments) or passthrough (the host's).
    pub hyperv_mode: Option<String>,
    /// The Hyper-V enlightenments listed under `<hyperv>`.
    pub enlightenments: Vec<Enlightenment>,
    pub extra: Extra,
}

/// The Hyper-V enlightenments libvirt knows (`virDomainHyperv`), in its order.
pub const HYPERV_ENLIGHTENMENTS: &[&str] = &[
    "relaxed",
    "vapic",
    "spinlocks",
    "vpindex",
    "runtime",
    "synic",
    "stimer",
    "reset",
    "vendor_id",
    "frequencies",
    "reenlightenment",
    "tlbflush",
    "ipi",
    "evmcs",
    "avic",
];

/// One Hyper-V enlightenment such as `<relaxed state='on'/>`, `<spinlocks state='on'
/// retries='8191'/>`, `<vendor_id state='on' value='KVM Hv'/>` or `<stimer state='on'><direct
/// state='on'/></stimer>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Enlightenment {
    pub name: String,
    pub state: Option<String>,
    /// spinlocks: attempts before the guest notifies the hypervisor.
    pub retries: Option<u32>,
    /// vendor_id: the vendor string the guest sees.
    pub value: Option<String>,
    /// stimer: `<direct state=…/>`, direct-mode synthetic timers.
    pub direct: Option<String>,
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
            let mut feature = Feature {
                name: el.name.clone(),
                state,
                ..Default::default()
            };
            match el.name.as_str() {
                "apic" => feature.eoi = f.attr_enum("eoi", ON_OFF)?,
                "ioapic" => feature.driver = f.attr_enum("driver", &["kvm", "qemu"])?,
                "smm" => {
                    if let Some(mut tseg) = f.child("tseg")? {
                        // libvirt's default unit here is MiB.
                        feature.tseg_kib = Some(scaled_kib_in(&mut tseg, Some("MiB"))?);
                        f.keep("tseg", tseg.finish());
                    }
                }
                "hyperv" => {
                    feature.hyperv_mode = f.attr_enum("mode", &["custom", "passthrough"])?;
                    for (el, mut e) in
                        f.matching(|e| HYPERV_ENLIGHTENMENTS.contains(&e.name.as_str()))
                    {
                        let mut item = Enlightenment {
                            name: el.name.clone(),
                            state: e.attr_enum("state", ON_OFF)?,
                            ..Default::default()
                        };
                        match el.name.as_str() {
                            "spinlocks" => item.retries = e.attr_parse("retries", uint::<u32>)?,
                            "vendor_id" => item.value = e.attr_string("value"),
                            "stimer" => {
                                if let Some(mut d) = e.child("direct")? {
                                    item.direct =
                                        Some(d.attr_enum("state", ON_OFF)?.ok_or_else(|| {
                                            XmlError::missing(d.attr_loc("state"))
                                        })?);
                                    e.keep("direct", d.finish());
                                }
                            }
                            _ => {}
                        }
                        item.extra = e.finish();
                        feature.enlightenments.push(item);
                    }
                }
                "tcg" => {
                    if let Some(mut tb) = f.child("tb-cache")? {
                        feature.tb_cache_kib = Some(scaled_kib_in(&mut tb, None)?);
                        f.keep("tb-cache", tb.finish());
                    }
                }
                _ => {}
            }
            feature.extra = f.finish();
            items.push(feature);
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
            fe.set_opt("eoi", f.eoi.as_deref());
            fe.set_opt("driver", f.driver.as_deref());
            if let Some(kib) = f.tseg_kib {
                let mut tseg = Element::with_text("tseg", kib.to_string());
                tseg.set("unit", "KiB");
                f.extra.apply_sub("tseg", &mut tseg, ctx);
                fe.push(tseg);
            }
            fe.set_opt("mode", f.hyperv_mode.as_deref());
            for e in &f.enlightenments {
                let mut ee = Element::new(e.name.as_str());
                ee.set_opt("state", e.state.as_deref());
                ee.set_opt("retries", e.retries);
                ee.set_opt("value", e.value.as_deref());
                if let Some(direct) = &e.direct {
                    let mut d = Element::new("direct");
                    d.set("state", direct.as_str());
                    e.extra.apply_sub("direct", &mut d, ctx);
                    ee.push(d);
                }
                e.extra.apply(&mut ee, ctx);
                fe.push(ee);
            }
            if let Some(kib) = f.tb_cache_kib {
                let mut tb = Element::with_text("tb-cache", kib.to_string());
                tb.set("unit", "KiB");
                f.extra.apply_sub("tb-cache", &mut tb, ctx);
                fe.push(tb);
            }
            f.extra.apply(&mut fe, ctx);
            el.push(fe);
        }
        self.extra.apply(&mut el, ctx);
        el
    }
}
