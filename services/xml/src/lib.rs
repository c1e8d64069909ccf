//! The XML layer shared by virtplane's libvirt-format documents (domain, network, storage
//! pool and volume XML).
//!
//! Text is first read into a small generic tree ([`Element`]) under the safety rules for
//! untrusted input (no DOCTYPE or entities, bounded depth; each document type bounds the
//! size), then a typed model is built from it through a [`Scope`], which records what the
//! model consumed: the rest becomes an [`Extra`] kept next to the typed fields and written
//! back when formatting, anchored after the known sibling it followed. So nothing a user
//! wrote is silently lost, and one place, not every parser, enforces it.

pub mod error;
pub mod extra;
pub mod read;
pub mod scope;
pub mod tree;
pub mod units;
pub mod values;
pub mod write;

pub use error::XmlError;
pub use extra::{Extra, FmtCtx};
pub use read::{MAX_DEPTH, read_document};
pub use scope::Scope;
pub use tree::{Element, Node};
pub use write::write_document;
