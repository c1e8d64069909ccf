//! What the dir driver does to the host: a pool is a directory, a volume is an image file in
//! it. One concern per file; no proto, no XML, plain Rust types:
//!
//! - [`qemu_img`]: qemu-img create/info/resize/convert as bounded child processes.
//! - [`files`]: sizes, allocation, the pool filesystem's numbers, sparse-aware reads and
//!   writes (data and hole runs), fsync.
//! - [`confine`]: volume names and files that never leave their pool directory.
//! - [`wipe`]: overwriting a volume (libvirt's `zero` and `random` algorithms).
//!
//! The file-level functions block; async callers run them in `spawn_blocking`. The qemu-img
//! functions and [`wipe::wipe`] are async.

pub mod confine;
pub mod files;
pub mod qemu_img;
pub mod wipe;

pub use confine::{
    Access, ConfineError, PoolFile, PoolListing, SkipReason, SkippedEntry, check_in_pool,
    check_pool_target, create_in_pool, list_pool_files, open_in_pool, remove_in_pool,
    resolve_in_pool, validate_name,
};
pub use files::{
    DataExtents, Extent, FileError, FsUsage, VolumeFile, allocation, capacity_of_fs, sync_dir,
};
pub use qemu_img::{
    BackingFile, CreateOptions, ImageFormat, ImageInfo, ImageLayer, Qcow2Compat, QemuImg,
    QemuImgError,
};
pub use wipe::{WipeAlgorithm, WipeError, WipeOutcome, wipe};
