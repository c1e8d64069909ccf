//! libvirt-format storage pool and volume XML (`virStoragePoolDef`, `virStorageVolDef`):
//! parse, validate, format, libvirt's units and defaults.
//!
//! Built on the shared lossless layer (`virtplane-xml`), like the domain and network XML:
//! the text is read into a generic tree under the safety rules for untrusted input (size
//! bound here, no DOCTYPE or entities, bounded depth), then mapped onto typed structs;
//! whatever they do not model (namespaced mount or Ceph options, unknown elements and
//! attributes) is kept in an [`Extra`] next to them and written back, anchored after the
//! known sibling it followed, so nothing a user wrote is silently lost. Formatting follows
//! libvirt's layout (`pool-dumpxml`, `vol-dumpxml`): sizes in bytes with `unit='bytes'`,
//! modes in octal, libvirt's element order and defaults.
//!
//! What libvirt itself does not read from a definition is live state and is not read here
//! either: a pool's capacity figures, a volume's `<source>` extents, `<physical>` and
//! timestamps. The driver fills the typed fields for them before formatting.
//! docs/storage-xml-compat.md compares the model with libvirt 9.0's own test corpus.

mod helpers;
mod names;
mod perms;
mod pool;
mod pool_source;
mod pool_types;
mod size;
mod validate;
mod volume;

#[cfg(test)]
mod tests;

pub use names::{MAX_NAME_BYTES, check_name};
pub use perms::{MAX_MODE, Permissions};
pub use pool::{PoolDef, PoolTarget};
pub use pool_source::{PoolSource, SourceAuth, SourceDevice, SourceHost};
pub use pool_types::{POOL_TYPES, default_volume_format};
pub use size::{MAX_SIZE, SizeError, parse_size};
pub use virtplane_xml::{Element, Extra, Node, XmlError};
pub use volume::{
    BackingStore, Timestamp, VOLUME_FEATURES, VOLUME_TYPES, VolDef, VolTarget, VolTimestamps,
};

/// Largest pool document accepted, in bytes: real ones are under a few KiB.
pub const MAX_POOL_XML_BYTES: usize = 1024 * 1024;
/// Largest volume document accepted, in bytes.
pub const MAX_VOLUME_XML_BYTES: usize = 1024 * 1024;

/// Parses and validates a pool definition.
pub fn parse_pool(xml: &str) -> Result<PoolDef, XmlError> {
    check_size("pool", xml, MAX_POOL_XML_BYTES)?;
    let root = virtplane_xml::read_document(xml)?;
    let def = PoolDef::from_root(&root)?;
    def.validate()?;
    Ok(def)
}

/// Formats a pool in libvirt's layout (what `pool-dumpxml` prints).
pub fn format_pool(def: &PoolDef) -> String {
    def.to_xml()
}

/// Parses and validates a volume definition. A missing `<capacity>` is not an error here
/// ([`VolDef::capacity_given`] says so; libvirt accepts it only when cloning), nor is a
/// format the driver does not know.
pub fn parse_volume(xml: &str) -> Result<VolDef, XmlError> {
    check_size("volume", xml, MAX_VOLUME_XML_BYTES)?;
    let root = virtplane_xml::read_document(xml)?;
    let def = VolDef::from_root(&root)?;
    def.validate()?;
    Ok(def)
}

/// Formats a volume in libvirt's layout (what `vol-dumpxml` prints).
pub fn format_volume(def: &VolDef) -> String {
    def.to_xml()
}

fn check_size(what: &'static str, xml: &str, limit: usize) -> Result<(), XmlError> {
    if xml.len() > limit {
        return Err(XmlError::TooLarge {
            what,
            size: xml.len(),
            limit,
        });
    }
    Ok(())
}
