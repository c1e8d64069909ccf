//! Plumbing shared by every virtplane daemon.

pub mod events;
pub mod identity;
pub mod names;
pub mod server;
pub mod status;
pub mod store;
