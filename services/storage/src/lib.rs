//! virtplane's storage service: storage pools and volumes in libvirt's pool and volume XML,
//! run by a driver.
//!
//! - `xml/`: libvirt's pool and volume XML (lossless), units, validation.
//! - `host/`: what the dir driver does to the host, one concern per file: qemu-img, files
//!   (sparse-aware), names and paths confined to their pool, wiping.
//! - `api/` (gRPC handlers, proto conversions, error → status) → `driver/` (the
//!   `StorageDriver` trait; `core/`, what every driver shares; `backend.rs`, the seam to a
//!   pool type's host side; `test/`, the simulated driver; `dir/`, directory pools), with
//!   `model.rs` the service's own vocabulary.
//! - `transfer/`: volume data streams (upload, download), sparse-aware, hashed, resumable.

pub mod api;
pub mod driver;
pub mod error;
pub mod host;
pub mod metrics;
pub mod model;
pub mod transfer;
pub mod xml;
