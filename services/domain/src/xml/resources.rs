//! `<memory>`, `<currentMemory>`, `<maxMemory>` and `<vcpu>`: the sizing the service edits.
//!
//! Amounts are held in KiB and always written back as `unit='KiB'`, as libvirt does.

use super::error::XmlError;
use super::extra::{Extra, FmtCtx};
use super::scope::Scope;
use super::tree::Element;
use super::units::{UnitError, to_kib};
use super::values::positive;

/// `<vcpu placement=… cpuset=… current=…>max</vcpu>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vcpu {
    /// Maximum vCPUs, at least 1.
    pub max: u32,
    /// vCPUs online at boot; at most `max`.
    pub current: Option<u32>,
    /// static or auto.
    pub placement: Option<String>,
    pub cpuset: Option<String>,
}

impl Default for Vcpu {
    /// libvirt's default when `<vcpu>` is absent: one vCPU.
    fn default() -> Self {
        Vcpu {
            max: 1,
            current: None,
            placement: None,
            cpuset: None,
        }
    }
}

impl Vcpu {
    /// vCPUs online at boot.
    pub fn effective_current(&self) -> u32 {
        self.current.unwrap_or(self.max)
    }
}

/// `<maxMemory slots=… unit=…>`: the memory hotplug ceiling.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MaxMemory {
    pub slots: u32,
    pub kib: u64,
}

const UNITS_HINT: &str = "b, KiB, MiB, GiB, TiB, PiB, EiB, KB, MB, GB, TB, PB, EB";

/// Reads the amount of a scaled element (`unit` attribute + integer text) in KiB.
fn scaled_kib(s: &mut Scope<'_>) -> Result<u64, XmlError> {
    scaled_kib_in(s, None)
}

/// Like [`scaled_kib`], with `default_unit` when the element has no `unit` (KiB if `None`).
pub(crate) fn scaled_kib_in(
    s: &mut Scope<'_>,
    default_unit: Option<&str>,
) -> Result<u64, XmlError> {
    let unit = s.attr("unit").or(default_unit);
    let text = s.text();
    let value = text.trim();
    to_kib(value, unit).map_err(|e| match e {
        UnitError::UnknownUnit => {
            let unit = unit.unwrap_or_default();
            XmlError::invalid(
                format!("<{} unit='{}'>", s.element().name, unit),
                format!("unknown unit '{unit}'; use one of {UNITS_HINT}"),
            )
        }
        UnitError::NotANumber => XmlError::value(s.loc(), value, "a non-negative integer"),
        UnitError::TooLarge => XmlError::invalid(s.loc(), format!("value {value} is too large")),
    })
}

/// Reads `<memory>` or `<currentMemory>` under the root, keeping its unknown content.
pub(crate) fn parse_memory(s: &mut Scope<'_>, name: &str) -> Result<Option<u64>, XmlError> {
    let Some(mut m) = s.child(name)? else {
        return Ok(None);
    };
    let kib = scaled_kib(&mut m)?;
    s.keep(name, m.finish());
    Ok(Some(kib))
}

pub(crate) fn parse_max_memory(s: &mut Scope<'_>) -> Result<Option<MaxMemory>, XmlError> {
    let Some(mut m) = s.child("maxMemory")? else {
        return Ok(None);
    };
    let slots = m
        .attr_parse("slots", super::values::uint::<u32>)?
        .ok_or_else(|| XmlError::missing(m.attr_loc("slots")))?;
    let kib = scaled_kib(&mut m)?;
    s.keep("maxMemory", m.finish());
    Ok(Some(MaxMemory { slots, kib }))
}

pub(crate) fn parse_vcpu(s: &mut Scope<'_>) -> Result<Vcpu, XmlError> {
    let Some(mut v) = s.child("vcpu")? else {
        return Ok(Vcpu::default());
    };
    let placement = v.attr_enum("placement", &["static", "auto"])?;
    let cpuset = v.attr_string("cpuset");
    let current = v.attr_parse("current", positive)?;
    let max = v.text_parse(positive)?;
    s.keep("vcpu", v.finish());
    Ok(Vcpu {
        max,
        current,
        placement,
        cpuset,
    })
}

/// `<name unit='KiB'>kib</name>`.
pub(crate) fn memory_element(name: &str, kib: u64, extra: &Extra, ctx: &mut FmtCtx) -> Element {
    let mut el = Element::with_text(name, kib.to_string());
    el.set("unit", "KiB");
    extra.apply_sub(name, &mut el, ctx);
    el
}

pub(crate) fn max_memory_element(m: &MaxMemory, extra: &Extra, ctx: &mut FmtCtx) -> Element {
    let mut el = Element::with_text("maxMemory", m.kib.to_string());
    el.set("slots", m.slots.to_string());
    el.set("unit", "KiB");
    extra.apply_sub("maxMemory", &mut el, ctx);
    el
}

pub(crate) fn vcpu_element(v: &Vcpu, extra: &Extra, ctx: &mut FmtCtx) -> Element {
    let mut el = Element::with_text("vcpu", v.max.to_string());
    el.set_opt("placement", v.placement.as_deref());
    el.set_opt("cpuset", v.cpuset.as_deref());
    el.set_opt("current", v.current);
    extra.apply_sub("vcpu", &mut el, ctx);
    el
}
