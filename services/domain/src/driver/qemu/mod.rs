//! The qemu driver: real virtual machines over QMP. Being built (issue #3); so far only the
//! pure translation from a domain definition to a QEMU command line exists.

pub mod argv;
pub mod monitor;
