//! Helpers of the container image test: the image (built once per test run by
//! deploy/container/build.sh, or the one `$VIRTPLANE_CONTAINER_IMAGE` names), its OCI config,
//! and containers run from it by runc, each removed by id when dropped.

pub mod image;
pub mod runc;

pub use virtplane_e2e::command::{Ran, run};
