//! Plumbing shared by every virtplane daemon.

pub mod identity;
pub mod names;
pub mod server;
pub mod status;
