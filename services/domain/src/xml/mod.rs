//! libvirt-format domain XML: parse, validate, format.
//!
//! The text is first read into a small generic tree ([`Element`]) under the safety rules for
//! untrusted input (size bound, no DOCTYPE or entities, bounded depth), then mapped onto typed
//! structs. Whatever the structs do not model is kept in an [`Extra`] next to them and written
//! back by [`DomainDef::to_xml`], anchored after the known sibling it followed, so nothing a
//! user wrote is silently lost, and [`DomainDef::unknown_elements`] can tell a driver what it
//! would be ignoring. Formatting is built from the typed fields, so edits to them show up.

mod clock;
mod cpu;
mod device;
pub mod devices;
mod domain;
mod features;
mod lifecycle;
mod os;
mod pm;
mod qemu;
mod resources;
mod validate;

// The shared lossless XML layer, under the names this model's files use.
use virtplane_xml::{error, extra, read, scope, tree, units, values, write};

#[cfg(test)]
mod tests;

pub use clock::{Clock, Timer};
pub use cpu::{Cpu, CpuCache, CpuFeature, CpuMaxPhysAddr, CpuMode, CpuModel, CpuTopology};
pub use device::{DeviceDef, parse_device};
pub use devices::*;
pub use domain::{DOMAIN_TYPES, DomainDef, FormatOptions};
pub use error::XmlError;
pub use extra::Extra;
pub use features::{Enlightenment, Feature, Features, HYPERV_ENLIGHTENMENTS, KNOWN_FEATURES};
pub use lifecycle::{LifecycleAction, LifecycleEvent};
pub use os::{AcpiTable, Bios, BootDev, BootMenu, Loader, Nvram, NvramSource, Os};
pub use pm::Pm;
pub use qemu::{QEMU_NS, QemuCommandline};
pub use read::MAX_DEPTH;
pub use resources::{MaxMemory, Vcpu};
pub use tree::{Element, Node};
pub use units::unit_scale;

/// Largest domain document accepted, in bytes.
pub const MAX_DOMAIN_XML_BYTES: usize = 1024 * 1024;

/// Parses and validates a domain definition.
pub fn parse_domain(xml: &str) -> Result<DomainDef, XmlError> {
    if xml.len() > MAX_DOMAIN_XML_BYTES {
        return Err(XmlError::TooLarge {
            what: "domain",
            size: xml.len(),
            limit: MAX_DOMAIN_XML_BYTES,
        });
    }
    let root = read::read_document(xml)?;
    let def = DomainDef::from_root(&root)?;
    def.validate()?;
    Ok(def)
}
