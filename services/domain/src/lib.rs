//! The domain service: libvirt's virDomain* API over a driver (`test` now, `qemu` next).
//!
//! Code map: `api/` (gRPC handlers and proto conversions) → `driver/` (the driver trait and
//! drivers) → `domains.rs` (the in-memory list and snapshots), `impact.rs` (libvirt's flag
//! semantics), `persist.rs` (files), `xml/` (the libvirt domain XML model).

pub mod addresses;
pub mod api;
pub mod console;
pub mod device_edit;
pub mod domains;
pub mod driver;
pub mod error;
pub mod guest_agent;
pub mod impact;
pub mod metrics;
pub mod model;
pub mod network_service;
pub mod passthrough;
pub mod persist;
pub mod service_call;
pub mod stats;
pub mod storage_service;
pub mod xml;
