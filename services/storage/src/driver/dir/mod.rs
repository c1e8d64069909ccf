//! The `dir` driver: a pool is a directory, a volume is an image file in it (libvirt's
//! `dir` pool type, `storage_backend_fs.c`). The shared [`Core`] over a [`DirBackend`] that
//! makes directories and files with `crate::host`: qemu-img for images (create, info,
//! resize, convert), sparse-aware files, names confined to their pool.
//!
//! The truth is the directory: a start or refresh lists its files and asks qemu-img what
//! each one is, so files put there by hand appear, and a restart of the service loses
//! nothing (the pool list comes from the state dir, the volumes from the disk).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::DriverConfig;
use super::backend::{Backend, Scan, Volume};
use super::core::Core;
use crate::error::{Result, StorageError};
use crate::host::{self, QemuImg, VolumeFile};
use crate::model::{BuildFlags, PoolSizes, WipeAlgorithm};
use crate::xml::{PoolDef, VolDef};

mod errors;
mod inspect;
mod volumes;

use errors::DRIVER;

/// Directory pools on this host.
#[derive(Debug)]
pub struct DirBackend {
    qemu_img: QemuImg,
}

/// The target directory of a dir pool (checked at define to be absolute).
fn target_dir(def: &PoolDef) -> Result<PathBuf> {
    def.target
        .as_ref()
        .and_then(|t| t.path.as_deref())
        .map(PathBuf::from)
        .ok_or_else(|| {
            StorageError::InvalidArg(format!(
                "pool '{}': a dir pool needs <target><path>",
                def.name
            ))
        })
}

/// Runs blocking file work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StorageError::Internal(format!("file task failed: {e}")))?
}

impl DirBackend {
    async fn scan(&self, def: &PoolDef) -> Result<Scan> {
        let dir = target_dir(def)?;
        let listing = {
            let dir = dir.clone();
            blocking(move || {
                host::check_pool_target(&dir)?;
                Ok(host::list_pool_files(&dir)?)
            })
            .await?
        };
        for skipped in &listing.skipped {
            tracing::warn!(pool = %def.name, entry = %skipped.name, reason = %skipped.reason, "not a volume");
        }
        let mut volumes = Vec::with_capacity(listing.files.len());
        for file in &listing.files {
            match inspect::volume(&self.qemu_img, &file.path, &file.name).await {
                Ok(volume) => volumes.push(volume),
                Err(error) => {
                    tracing::warn!(pool = %def.name, volume = %file.name, %error, "cannot inspect a volume file; left out")
                }
            }
        }
        let usage = {
            let dir = dir.clone();
            blocking(move || Ok(host::capacity_of_fs(&dir)?)).await?
        };
        Ok(Scan {
            sizes: PoolSizes {
                capacity: usage.capacity,
                allocation: usage.allocation,
                available: usage.available,
            },
            volumes,
        })
    }
}

#[tonic::async_trait]
impl Backend for DirBackend {
    fn driver(&self) -> &'static str {
        DRIVER
    }

    fn check_pool(&self, def: &PoolDef) -> Result<()> {
        if def.pool_type != "dir" {
            return Err(StorageError::Unsupported {
                driver: DRIVER,
                what: format!(
                    "pool type '{}' (this driver runs directory pools, type='dir')",
                    def.pool_type
                ),
            });
        }
        let dir = target_dir(def)?;
        if !dir.is_absolute() {
            return Err(StorageError::InvalidArg(format!(
                "pool '{}': target path '{}' is not absolute",
                def.name,
                dir.display()
            )));
        }
        Ok(())
    }

    async fn build(&self, def: &PoolDef, _flags: BuildFlags) -> Result<()> {
        let dir = target_dir(def)?;
        let mode = def
            .target
            .as_ref()
            .and_then(|t| t.permissions.as_ref())
            .and_then(|p| p.mode)
            .unwrap_or(0o755);
        blocking(move || build_dir(&dir, mode)).await
    }

    async fn start(&self, def: &PoolDef) -> Result<Scan> {
        self.scan(def).await
    }

    async fn stop(&self, _def: &PoolDef) -> Result<()> {
        Ok(())
    }

    async fn delete(&self, def: &PoolDef) -> Result<()> {
        let dir = target_dir(def)?;
        blocking(move || {
            std::fs::remove_dir(&dir).map_err(|e| {
                StorageError::OperationFailed(format!(
                    "cannot remove pool directory '{}': {e}",
                    dir.display()
                ))
            })
        })
        .await
    }

    async fn refresh(&self, def: &PoolDef) -> Result<Scan> {
        self.scan(def).await
    }

    async fn create_volume(&self, pool: &PoolDef, vol: &VolDef, prealloc: bool) -> Result<Volume> {
        volumes::create(&self.qemu_img, &target_dir(pool)?, vol, prealloc).await
    }

    async fn create_volume_from(
        &self,
        pool: &PoolDef,
        vol: &VolDef,
        source: &Volume,
        prealloc: bool,
    ) -> Result<Volume> {
        volumes::create_from(&self.qemu_img, &target_dir(pool)?, vol, source, prealloc).await
    }

    async fn delete_volume(&self, pool: &PoolDef, vol: &Volume) -> Result<()> {
        let dir = target_dir(pool)?;
        let name = vol.def.name.clone();
        blocking(move || Ok(host::remove_in_pool(&dir, &name)?)).await
    }

    async fn resize_volume(
        &self,
        pool: &PoolDef,
        vol: &Volume,
        capacity: u64,
        allocate: bool,
    ) -> Result<Volume> {
        volumes::resize(&self.qemu_img, &target_dir(pool)?, vol, capacity, allocate).await
    }

    async fn wipe_volume(
        &self,
        pool: &PoolDef,
        vol: &Volume,
        algorithm: WipeAlgorithm,
    ) -> Result<Volume> {
        volumes::wipe(&self.qemu_img, &target_dir(pool)?, vol, algorithm).await
    }

    fn open_data(&self, pool: &PoolDef, vol: &Volume, write: bool) -> Result<VolumeFile> {
        let access = if write {
            host::Access::ReadWrite
        } else {
            host::Access::ReadOnly
        };
        Ok(host::open_in_pool(
            &target_dir(pool)?,
            &vol.def.name,
            access,
        )?)
    }

    async fn inspect_volume(&self, pool: &PoolDef, vol: &Volume) -> Result<Volume> {
        let path = host::check_in_pool(&target_dir(pool)?, &vol.def.name)?;
        inspect::volume(&self.qemu_img, &path, &vol.def.name).await
    }
}

/// libvirt's dir pool build: the directory (and its parents) made, its mode set. A file in
/// its place is an error that says so.
fn build_dir(dir: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if dir.exists() && !dir.is_dir() {
        return Err(StorageError::OperationInvalid(format!(
            "cannot build pool: '{}' exists and is not a directory",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        StorageError::OperationFailed(format!("cannot create directory '{}': {e}", dir.display()))
    })?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).map_err(|e| {
        StorageError::OperationFailed(format!(
            "cannot set mode {mode:o} on '{}': {e}",
            dir.display()
        ))
    })
}

/// Opens the dir driver on `config`'s directories; runs autostart once per host boot. It
/// makes no pool by itself.
pub async fn open(config: &DriverConfig) -> Result<Core> {
    let backend = Arc::new(DirBackend {
        qemu_img: QemuImg::new(),
    });
    let (core, new_boot) = Core::open(config, backend).await?;
    if new_boot {
        core.autostart().await;
    }
    Ok(core)
}
