//! Serial consoles, proxied: `virtctl console` reaches a guest's serial port (or virtio
//! console) through the domain service, never through a host pty.
//!
//! - [`endpoint`]: where a console is — the socket QEMU listens on and its output log, by a
//!   path convention shared with the QEMU command-line builder;
//! - [`hub`]: one connection to one console, shared by its clients: scrollback replayed on
//!   attach, one writer (taken over with `force`), read-only viewers, end when QEMU goes;
//! - [`hubs`]: the registry of open hubs;
//! - [`scrollback`]: the ring buffer, and seeding it from QEMU's log after a restart.
//!
//! The hub knows nothing of drivers: a driver only answers `console_endpoint` (see
//! `crate::driver::DomainDriver`), and the gRPC side lives in `crate::api::console`.

pub mod endpoint;
pub mod error;
pub mod hub;
pub mod hubs;
pub mod scrollback;

pub use endpoint::{ConsoleEndpoint, log_path, socket_path};
pub use error::ConsoleError;
pub use hub::{AttachMode, Attachment, CloseReason, Closed, HubConfig, Output};
pub use hubs::ConsoleHubs;

#[cfg(test)]
mod tests;
