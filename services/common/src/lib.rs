//! Plumbing shared by every virtplane daemon.

pub mod names;
