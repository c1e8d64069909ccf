//! The qemu driver: real virtual machines over QMP.
//! - [`driver`]: the [`DomainDriver`](crate::driver::DomainDriver) implementation;
//!   `launch` (start paused, set up, `cont`), `watch` (QMP events and exits → state),
//!   `reattach` (after a service restart), `live` (vCPU hotplug, balloon), `hotplug` (disk
//!   attach/detach), `vm` (one running QEMU), `host` (emulator, KVM, node info);
//! - [`net`]: the taps of `bridge` and `ethernet` interfaces (made before QEMU starts,
//!   deleted when it is gone);
//! - `volumes`: leases on the volumes of `<disk type='volume'>` when disks are hot-plugged
//!   (at start and stop: `launch`, `driver`; the shared part is `crate::driver::volumes`);
//! - [`argv`]: the pure translation from a domain definition to a QEMU command line;
//! - [`monitor`]: the QMP client (request ids, a timeout on every command);
//! - [`process`]: starting QEMU so it outlives the service, and finding it again after a
//!   restart.

pub mod agent;
mod agent_calls;
pub mod agent_link;
pub mod argv;
pub mod driver;
mod errors;
pub mod host;
mod hotplug;
mod launch;
mod live;
pub mod monitor;
pub mod net;
pub mod passthrough;
pub mod process;
mod reattach;
pub mod stats;
pub mod vm;
mod volumes;
mod watch;

pub use driver::QemuDriver;

/// The driver's name in messages and `version`.
pub const DRIVER: &str = "qemu";
