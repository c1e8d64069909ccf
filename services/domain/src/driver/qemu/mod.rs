//! The qemu driver: real virtual machines over QMP.
//! - [`driver`]: the [`DomainDriver`](crate::driver::DomainDriver) implementation;
//!   `launch` (start paused, set up, `cont`), `watch` (QMP events and exits → state),
//!   `reattach` (after a service restart), `live` (vCPU hotplug, balloon), `vm` (one running
//!   QEMU), `host` (emulator, KVM, node info);
//! - [`argv`]: the pure translation from a domain definition to a QEMU command line;
//! - [`monitor`]: the QMP client (request ids, a timeout on every command);
//! - [`process`]: starting QEMU so it outlives the service, and finding it again after a
//!   restart.

pub mod argv;
pub mod driver;
mod errors;
pub mod host;
mod launch;
mod live;
pub mod monitor;
pub mod passthrough;
pub mod process;
mod reattach;
pub mod stats;
pub mod vm;
mod watch;

pub use driver::QemuDriver;

/// The driver's name in messages and `version`.
pub const DRIVER: &str = "qemu";
