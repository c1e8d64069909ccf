//! `<pm>`: which ACPI sleep states the guest is offered.

use super::error::XmlError;
use super::extra::{Extra, FmtCtx};
use super::scope::Scope;
use super::tree::Element;
use super::values::YES_NO;

/// `<pm><suspend-to-mem enabled=…/><suspend-to-disk enabled=…/></pm>`. Absent means the
/// hypervisor's default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pm {
    /// S3: `yes` or `no`.
    pub suspend_to_mem: Option<String>,
    /// S4: `yes` or `no`.
    pub suspend_to_disk: Option<String>,
    pub extra: Extra,
}

const STATES: [&str; 2] = ["suspend-to-mem", "suspend-to-disk"];

impl Pm {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let mut values = [None, None];
        for (value, name) in values.iter_mut().zip(STATES) {
            if let Some(mut c) = s.child(name)? {
                *value = Some(
                    c.attr_enum("enabled", YES_NO)?
                        .ok_or_else(|| XmlError::missing(c.attr_loc("enabled")))?,
                );
                s.keep(name, c.finish());
            }
        }
        let [suspend_to_mem, suspend_to_disk] = values;
        Ok(Pm {
            suspend_to_mem,
            suspend_to_disk,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("pm");
        for (name, value) in STATES
            .iter()
            .zip([&self.suspend_to_mem, &self.suspend_to_disk])
        {
            if let Some(v) = value {
                let mut c = Element::new(*name);
                c.set("enabled", v.as_str());
                self.extra.apply_sub(name, &mut c, ctx);
                el.push(c);
            }
        }
        self.extra.apply(&mut el, ctx);
        el
    }
}
