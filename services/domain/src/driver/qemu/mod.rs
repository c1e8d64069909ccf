//! The qemu driver: real virtual machines over QMP. Being built (issue #3); its parts exist
//! and are tested against real QEMU, but no `DomainDriver` uses them yet:
//! - [`argv`]: the pure translation from a domain definition to a QEMU command line;
//! - [`monitor`]: the QMP client (request ids, a timeout on every command);
//! - [`process`]: starting QEMU so it outlives the service, and finding it again after a
//!   restart.

pub mod argv;
pub mod monitor;
pub mod process;
