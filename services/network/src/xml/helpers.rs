//! Small conversions shared by the network model's files.

use virtplane_xml::{Scope, XmlError};

/// libvirt's tristate booleans (`virTristateBool`): an optional `yes` or `no`.
pub(crate) fn tristate(s: &mut Scope<'_>, name: &str) -> Result<Option<bool>, XmlError> {
    s.attr_parse(name, |v| match v {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("yes or no".to_string()),
    })
}

pub(crate) fn yes_no(v: bool) -> &'static str {
    if v { "yes" } else { "no" }
}

pub(crate) fn on_off(v: bool) -> &'static str {
    if v { "on" } else { "off" }
}
