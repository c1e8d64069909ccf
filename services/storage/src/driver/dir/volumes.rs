//! Volume files of a directory pool: made (qemu-img create, then libvirt's allocation), made
//! from another volume (qemu-img convert, sparse), resized and wiped. A file this code made
//! is removed again when a later step fails, so a failed call leaves nothing behind.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::errors::DRIVER;
use super::inspect;
use crate::driver::backend::Volume;
use crate::error::{Result, StorageError};
use crate::host::{self, BackingFile, CreateOptions, ImageFormat, QemuImg, VolumeFile};
use crate::model::WipeAlgorithm;
use crate::xml::VolDef;

/// Mode of a new volume file when the definition gives none (libvirt's default).
const DEFAULT_MODE: u32 = 0o600;

/// The image format a definition asks for (default raw), if this driver makes it.
fn format_of(vol: &VolDef) -> Result<ImageFormat> {
    let name = vol.target.format.as_deref().unwrap_or("raw");
    name.parse::<ImageFormat>()
        .map_err(|_| StorageError::Unsupported {
            driver: DRIVER,
            what: format!(
                "volume '{}': format '{name}' (this driver makes raw and qcow2 volumes)",
                vol.name
            ),
        })
}

/// A new volume's path, reserved by creating it empty (never following or overwriting
/// anything), so qemu-img, which overwrites, only ever writes a file this call made.
fn new_path(dir: &Path, name: &str) -> Result<PathBuf> {
    match host::create_in_pool(dir, name, DEFAULT_MODE) {
        Ok(file) => Ok(file.path().to_path_buf()),
        Err(host::ConfineError::AlreadyExists { .. }) => {
            Err(StorageError::OperationInvalid(format!(
                "a file named '{name}' is already in the pool directory {}: refresh the pool \
                 to see it as a volume, or choose another name",
                dir.display()
            )))
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn create(
    qemu_img: &QemuImg,
    dir: &Path,
    vol: &VolDef,
    prealloc: bool,
) -> Result<Volume> {
    let format = format_of(vol)?;
    if vol.target.encryption.is_some() {
        return Err(StorageError::Unsupported {
            driver: DRIVER,
            what: format!("volume '{}': <encryption> (encrypted volumes)", vol.name),
        });
    }
    let backing = match &vol.backing_store {
        None => None,
        Some(_) if format == ImageFormat::Raw => {
            return Err(StorageError::InvalidArg(format!(
                "volume '{}': a raw volume cannot have a backing store; use format qcow2",
                vol.name
            )));
        }
        Some(store) => {
            let backing_path = PathBuf::from(&store.path);
            let backing_format = match store.format.as_deref() {
                Some(name) => name.parse::<ImageFormat>().map_err(|e| {
                    StorageError::InvalidArg(format!("volume '{}': backing store: {e}", vol.name))
                })?,
                None => qemu_img
                    .info_image(&backing_path, None)
                    .await?
                    .format
                    .parse::<ImageFormat>()
                    .map_err(|e| {
                        StorageError::InvalidArg(format!(
                            "volume '{}': backing store '{}': {e}",
                            vol.name, store.path
                        ))
                    })?,
            };
            Some(BackingFile {
                path: backing_path,
                format: backing_format,
            })
        }
    };
    let mut options = CreateOptions::new(format, vol.capacity);
    options.backing = backing;
    options.prealloc_metadata = prealloc && format == ImageFormat::Qcow2;
    if format == ImageFormat::Qcow2 {
        options.compat = vol
            .target
            .compat
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| StorageError::InvalidArg(format!("volume '{}': {e}", vol.name)))?;
        options.lazy_refcounts = vol
            .target
            .features
            .as_ref()
            .is_some_and(|f| f.iter().any(|name| name == "lazy_refcounts"));
    }
    let path = new_path(dir, &vol.name)?;
    if let Err(error) = qemu_img.create(&path, &options).await {
        // qemu-img makes the file before it sizes it: a failure can leave one behind.
        undo_on_error(&path, Err::<(), _>(error.into())).await?;
    }
    let finished = async {
        if format == ImageFormat::Raw {
            // libvirt allocates all of the capacity unless <allocation> says less.
            let allocation = vol.allocation.unwrap_or(vol.capacity).min(vol.capacity);
            allocate(&path, 0, allocation).await?;
        }
        set_mode(&path, vol).await?;
        inspect::volume(qemu_img, &path, &vol.name).await
    }
    .await;
    undo_on_error(&path, finished).await
}

pub async fn create_from(
    qemu_img: &QemuImg,
    dir: &Path,
    vol: &VolDef,
    source: &Volume,
    _prealloc: bool,
) -> Result<Volume> {
    let format = format_of(vol)?;
    let source_format =
        source
            .format()
            .parse::<ImageFormat>()
            .map_err(|_| StorageError::Unsupported {
                driver: DRIVER,
                what: format!(
                    "copying from volume '{}' of format '{}' (raw and qcow2 only)",
                    source.def.name,
                    source.format()
                ),
            })?;
    let path = new_path(dir, &vol.name)?;
    if let Err(error) = qemu_img
        .convert(Path::new(source.path()), source_format, &path, format, true)
        .await
    {
        undo_on_error(&path, Err::<(), _>(error.into())).await?;
    }
    let finished = async {
        if vol.capacity_given && vol.capacity > source.def.capacity {
            qemu_img.resize(&path, format, vol.capacity, false).await?;
        }
        set_mode(&path, vol).await?;
        inspect::volume(qemu_img, &path, &vol.name).await
    }
    .await;
    undo_on_error(&path, finished).await
}

pub async fn resize(
    qemu_img: &QemuImg,
    dir: &Path,
    vol: &Volume,
    capacity: u64,
    allocate_new: bool,
) -> Result<Volume> {
    let path = host::check_in_pool(dir, &vol.def.name)?;
    let format = format_of(&vol.def)?;
    let current = vol.def.capacity;
    qemu_img
        .resize(&path, format, capacity, capacity < current)
        .await?;
    if allocate_new && format == ImageFormat::Raw && capacity > current {
        allocate(&path, current, capacity - current).await?;
    }
    inspect::volume(qemu_img, &path, &vol.def.name).await
}

pub async fn wipe(
    qemu_img: &QemuImg,
    dir: &Path,
    vol: &Volume,
    algorithm: WipeAlgorithm,
) -> Result<Volume> {
    let path = host::check_in_pool(dir, &vol.def.name)?;
    let format = format_of(&vol.def)?;
    host::wipe(qemu_img, &path, format, algorithm).await?;
    inspect::volume(qemu_img, &path, &vol.def.name).await
}

async fn allocate(path: &Path, offset: u64, len: u64) -> Result<()> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let file = VolumeFile::open_read_write(&path)?;
        file.allocate(offset, len)?;
        Ok(())
    })
    .await
    .map_err(|e| StorageError::Internal(format!("file task failed: {e}")))?
}

/// The mode (and, when given, owner and group) the definition asks for.
async fn set_mode(path: &Path, vol: &VolDef) -> Result<()> {
    let permissions = vol.target.permissions.clone().unwrap_or_default();
    let mode = permissions.mode.unwrap_or(DEFAULT_MODE);
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .await
        .map_err(|e| {
            StorageError::OperationFailed(format!(
                "cannot set mode {mode:o} on '{}': {e}",
                path.display()
            ))
        })?;
    if permissions.owner.is_some() || permissions.group.is_some() {
        std::os::unix::fs::chown(path, permissions.owner, permissions.group).map_err(|e| {
            StorageError::OperationFailed(format!(
                "cannot give '{}' owner {:?} and group {:?}: {e}",
                path.display(),
                permissions.owner,
                permissions.group
            ))
        })?;
    }
    Ok(())
}

/// Removes a file this call made (if it is there) when a later step failed.
async fn undo_on_error<T>(path: &Path, result: Result<T>) -> Result<T> {
    if result.is_err()
        && let Err(error) = tokio::fs::remove_file(path).await
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::error!(path = %path.display(), %error, "could not remove a half-made volume");
    }
    result
}
