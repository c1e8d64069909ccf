//! What every device may carry: `<alias>`, `<address>` and the per-device `<boot order>`.

use crate::xml::error::XmlError;
use crate::xml::extra::{Extra, FmtCtx};
use crate::xml::scope::Scope;
use crate::xml::tree::{Element, Node};
use crate::xml::values::{ON_OFF, positive};

/// `<alias name=…>` and `<address type=…>` of a device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceInfo {
    pub alias: Option<String>,
    /// `<acpi index='N'/>`: the index the guest's ACPI tables give a PCI device, from which
    /// guests name network interfaces (`enoN`) stably whatever the slot.
    pub acpi_index: Option<u32>,
    pub address: Option<Address>,
}

/// `<address type='pci' domain=… bus=… slot=… function=…/>` and its many siblings. The
/// attributes depend on the type, so they are kept as written (all are modelled: the driver
/// reads the ones it needs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    pub addr_type: String,
    /// Every attribute but `type`, in order.
    pub attrs: Vec<(String, String)>,
    pub extra: Extra,
}

impl Address {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl DeviceInfo {
    pub(crate) fn parse(s: &mut Scope<'_>) -> Result<Self, XmlError> {
        let alias = match s.child("alias")? {
            None => None,
            Some(mut a) => {
                let name = a.req_attr("name")?.to_string();
                s.keep("alias", a.finish());
                Some(name)
            }
        };
        let acpi_index = match s.child("acpi")? {
            None => None,
            Some(mut a) => {
                let index = a
                    .attr_parse("index", positive)?
                    .ok_or_else(|| XmlError::missing(a.attr_loc("index")))?;
                s.keep("acpi", a.finish());
                Some(index)
            }
        };
        let address = match s.child("address")? {
            None => None,
            Some(mut a) => {
                let addr_type = a.req_attr("type")?.to_string();
                let attrs = a
                    .element()
                    .attrs
                    .iter()
                    .filter(|(k, _)| k != "type")
                    .cloned()
                    .collect::<Vec<_>>();
                for (k, _) in &attrs {
                    a.attr(k);
                }
                Some(Address {
                    addr_type,
                    attrs,
                    extra: a.finish(),
                })
            }
        };
        Ok(DeviceInfo {
            alias,
            acpi_index,
            address,
        })
    }

    /// Appends `<alias>`, `<acpi>` and `<address>` (libvirt writes them last in a device).
    pub(crate) fn push_to(&self, el: &mut Element, extra: &Extra, ctx: &mut FmtCtx) {
        if let Some(alias) = &self.alias {
            let mut a = Element::new("alias");
            a.set("name", alias.as_str());
            extra.apply_sub("alias", &mut a, ctx);
            el.push(a);
        }
        if let Some(index) = self.acpi_index {
            let mut a = Element::new("acpi");
            a.set("index", index.to_string());
            extra.apply_sub("acpi", &mut a, ctx);
            el.push(a);
        }
        if let Some(addr) = &self.address {
            let mut a = Element::new("address");
            a.set("type", addr.addr_type.as_str());
            a.attrs.extend(addr.attrs.iter().cloned());
            addr.extra.apply(&mut a, ctx);
            el.push(a);
        }
    }
}

/// Reads a device's `<boot order='N'/>`.
pub(crate) fn parse_boot_order(s: &mut Scope<'_>) -> Result<Option<u32>, XmlError> {
    let Some(mut b) = s.child("boot")? else {
        return Ok(None);
    };
    let order = b
        .attr_parse("order", positive)?
        .ok_or_else(|| XmlError::missing(b.attr_loc("order")))?;
    s.keep("boot", b.finish());
    Ok(Some(order))
}

/// Appends `<boot order='N'/>`.
pub(crate) fn push_boot_order(
    el: &mut Element,
    order: Option<u32>,
    extra: &Extra,
    ctx: &mut FmtCtx,
) {
    if let Some(order) = order {
        let mut b = Element::new("boot");
        b.set("order", order.to_string());
        extra.apply_sub("boot", &mut b, ctx);
        el.push(b);
    }
}

/// Appends an empty element with the given attributes (skipping `None`s) when any is set,
/// re-applying its kept extras. Used for small modelled children like `<model type=…/>`.
pub(crate) fn push_leaf(
    el: &mut Element,
    name: &str,
    attrs: &[(&str, Option<&str>)],
    extra: &Extra,
    ctx: &mut FmtCtx,
) {
    if attrs.iter().all(|(_, v)| v.is_none()) {
        return;
    }
    let mut leaf = Element::new(name);
    for (k, v) in attrs {
        leaf.set_opt(k, *v);
    }
    extra.apply_sub(name, &mut leaf, ctx);
    el.push(leaf);
}

/// The virtio transport options any virtio device's `<driver>` may carry
/// (`virDomainVirtioOptions`): `iommu`, `ats`, `packed`, `page_per_vq`, each `on` or `off`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VirtioOptions {
    pub iommu: Option<String>,
    pub ats: Option<String>,
    pub packed: Option<String>,
    pub page_per_vq: Option<String>,
}

impl VirtioOptions {
    /// Reads the options from a `<driver>` scope.
    pub(crate) fn parse(s: &mut Scope<'_>) -> Result<Self, XmlError> {
        Ok(VirtioOptions {
            iommu: s.attr_enum("iommu", ON_OFF)?,
            ats: s.attr_enum("ats", ON_OFF)?,
            packed: s.attr_enum("packed", ON_OFF)?,
            page_per_vq: s.attr_enum("page_per_vq", ON_OFF)?,
        })
    }

    /// Writes the options as attributes, in libvirt's order.
    pub(crate) fn set_on(&self, el: &mut Element) {
        el.set_opt("iommu", self.iommu.as_deref());
        el.set_opt("ats", self.ats.as_deref());
        el.set_opt("packed", self.packed.as_deref());
        el.set_opt("page_per_vq", self.page_per_vq.as_deref());
    }

    /// The options with their libvirt attribute names, for a driver to translate.
    pub fn items(&self) -> [(&'static str, Option<&str>); 4] {
        [
            ("iommu", self.iommu.as_deref()),
            ("ats", self.ats.as_deref()),
            ("packed", self.packed.as_deref()),
            ("page_per_vq", self.page_per_vq.as_deref()),
        ]
    }
}

/// Reads a device's `<driver>` that carries only virtio options (input, balloon, RNG);
/// its unknown content is kept under `driver`. `Some` when the element is present.
pub(crate) fn parse_virtio_driver(s: &mut Scope<'_>) -> Result<Option<VirtioOptions>, XmlError> {
    let Some(mut d) = s.child("driver")? else {
        return Ok(None);
    };
    let options = VirtioOptions::parse(&mut d)?;
    s.keep("driver", d.finish());
    Ok(Some(options))
}

/// Appends the `<driver>` read by [`parse_virtio_driver`].
pub(crate) fn push_virtio_driver(
    el: &mut Element,
    driver: Option<&VirtioOptions>,
    extra: &Extra,
    ctx: &mut FmtCtx,
) {
    if let Some(options) = driver {
        let mut d = Element::new("driver");
        options.set_on(&mut d);
        extra.apply_sub("driver", &mut d, ctx);
        el.push(d);
    }
}

/// Inserts `child` before the device's `<address>` (or last), where libvirt writes the
/// device-info children that follow `<alias>` (`<master>`, `<rom>`).
pub(crate) fn insert_before_address(el: &mut Element, child: Element) {
    let at = el
        .children
        .iter()
        .position(|n| matches!(n, Node::Element(e) if e.name == "address"))
        .unwrap_or(el.children.len());
    el.children.insert(at, Node::Element(child));
}
