//! virtplane's network service: virtual networks in libvirt's network XML, run by a driver.
//!
//! - `host`: what the bridge driver does to the host, one concern per file: the Linux bridge
//!   and its addresses (rtnetlink), one dnsmasq per network, the network's own nftables
//!   table, and the DHCP lease file.
//! - `api/` (gRPC handlers, proto conversions, error → status) → `driver/` (the
//!   `NetworkDriver` trait; `core/`, what every driver shares; `test/`, the simulated
//!   driver) → `persist.rs` (files), with `model.rs` the service's own vocabulary.

pub mod api;
pub mod driver;
pub mod error;
pub mod host;
pub mod metrics;
pub mod model;
pub mod persist;
pub mod render;
pub mod xml;
