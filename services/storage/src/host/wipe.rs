//! Wiping a volume: overwriting its bytes on the host so the old data is gone.
//!
//! Two of libvirt's algorithms are supported:
//!
//! - `zero` overwrites every data run of the file with zeros. Holes are left alone: they hold
//!   no data and already read as zeros, so a sparse volume stays sparse (libvirt truncates a
//!   sparse file to 0 and back instead, which frees the blocks without overwriting them).
//! - `random` overwrites the whole file, holes included, with pseudo-random bytes from a fast
//!   seeded generator (libvirt runs `scrub -p random` for this).
//!
//! libvirt's other algorithms (nnsa, dod, bsi, gutmann, schneier, pfitzner7, pfitzner33) are
//! multi-pass patterns libvirt hands to `scrub`, and `trim` is refused by libvirt itself; all
//! of these are a typed [`WipeError::Unsupported`].
//!
//! A qcow2 volume: libvirt's `virStorageBackendVolWipeLocal` overwrites the file like a raw
//! one, which destroys the qcow2 header, so the volume turns up as a raw file of garbage or
//! zeros afterwards. Here the file is overwritten the same way, then re-created with qemu-img
//! as an empty qcow2 image of the same capacity and compat level, so the volume keeps its
//! format and stays usable, reading as zeros. A backing file is not kept: a wiped volume must
//! not show its backing image's data either.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

use super::files::{FileError, VolumeFile};
use super::qemu_img::{CreateOptions, ImageFormat, QemuImg, QemuImgError};

/// Size of the buffer each write uses.
const WIPE_CHUNK_BYTES: usize = 1024 * 1024;

/// libvirt's wipe algorithms (`virStorageVolWipeAlgorithm`), by their libvirt names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WipeAlgorithm {
    Zero,
    Nnsa,
    Dod,
    Bsi,
    Gutmann,
    Schneier,
    Pfitzner7,
    Pfitzner33,
    Random,
    Trim,
}

impl WipeAlgorithm {
    pub const ALL: [WipeAlgorithm; 10] = [
        WipeAlgorithm::Zero,
        WipeAlgorithm::Nnsa,
        WipeAlgorithm::Dod,
        WipeAlgorithm::Bsi,
        WipeAlgorithm::Gutmann,
        WipeAlgorithm::Schneier,
        WipeAlgorithm::Pfitzner7,
        WipeAlgorithm::Pfitzner33,
        WipeAlgorithm::Random,
        WipeAlgorithm::Trim,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WipeAlgorithm::Zero => "zero",
            WipeAlgorithm::Nnsa => "nnsa",
            WipeAlgorithm::Dod => "dod",
            WipeAlgorithm::Bsi => "bsi",
            WipeAlgorithm::Gutmann => "gutmann",
            WipeAlgorithm::Schneier => "schneier",
            WipeAlgorithm::Pfitzner7 => "pfitzner7",
            WipeAlgorithm::Pfitzner33 => "pfitzner33",
            WipeAlgorithm::Random => "random",
            WipeAlgorithm::Trim => "trim",
        }
    }

    /// Whether [`wipe`] implements it.
    pub fn is_supported(self) -> bool {
        matches!(self, WipeAlgorithm::Zero | WipeAlgorithm::Random)
    }
}

impl std::fmt::Display for WipeAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is none of libvirt's wipe algorithms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown wipe algorithm '{0}': libvirt's are zero, nnsa, dod, bsi, gutmann, schneier, pfitzner7, pfitzner33, random, trim"
)]
pub struct UnknownAlgorithm(pub String);

impl FromStr for WipeAlgorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WipeAlgorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.as_str() == s)
            .ok_or_else(|| UnknownAlgorithm(s.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WipeError {
    #[error(
        "wipe algorithm '{algorithm}' is not supported by the dir driver: use 'zero' or 'random'"
    )]
    Unsupported { algorithm: WipeAlgorithm },
    #[error(transparent)]
    File(#[from] FileError),
    #[error("cannot re-create '{path}' as an empty {format} image after wiping it: {source}")]
    Recreate {
        path: PathBuf,
        format: ImageFormat,
        #[source]
        source: QemuImgError,
    },
    #[error("cannot read the image '{path}' before wiping it: {source}")]
    Inspect {
        path: PathBuf,
        #[source]
        source: QemuImgError,
    },
    #[error("wiping '{path}' stopped unexpectedly: {reason}")]
    Interrupted { path: PathBuf, reason: String },
}

/// What [`wipe`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WipeOutcome {
    /// Bytes overwritten on the host.
    pub bytes_overwritten: u64,
    /// The file was re-created as an empty image of its format (qcow2).
    pub recreated: bool,
}

/// Wipes the volume file at `path`, which holds an image of `format`. The size of a raw file
/// is kept; a qcow2 image keeps its capacity and compat level (see the module doc).
///
/// `path` must already be confined to its pool (`confine::check_in_pool`). The overwrite runs
/// on a blocking thread; it is not bounded by a timeout, as its duration is the volume's size
/// over the disk's speed.
pub async fn wipe(
    qemu_img: &QemuImg,
    path: &Path,
    format: ImageFormat,
    algorithm: WipeAlgorithm,
) -> Result<WipeOutcome, WipeError> {
    if !algorithm.is_supported() {
        return Err(WipeError::Unsupported { algorithm });
    }
    // Read what the new image needs before anything is destroyed.
    let recreate = match format {
        ImageFormat::Raw => None,
        ImageFormat::Qcow2 => {
            let layer = qemu_img
                .info_image(path, Some(ImageFormat::Qcow2))
                .await
                .map_err(|source| WipeError::Inspect {
                    path: path.to_path_buf(),
                    source,
                })?;
            let mut options = CreateOptions::new(ImageFormat::Qcow2, layer.virtual_size);
            options.compat = layer.compat.as_deref().and_then(|c| c.parse().ok());
            options.lazy_refcounts = layer.lazy_refcounts.unwrap_or(false)
                && options.compat != Some(super::qemu_img::Qcow2Compat::V0_10);
            Some(options)
        }
    };

    let owned_path = path.to_path_buf();
    let truncate_after = recreate.is_some();
    let bytes_overwritten =
        tokio::task::spawn_blocking(move || overwrite_file(&owned_path, algorithm, truncate_after))
            .await
            .map_err(|e| WipeError::Interrupted {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })??;

    if let Some(options) = recreate {
        qemu_img
            .create(path, &options)
            .await
            .map_err(|source| WipeError::Recreate {
                path: path.to_path_buf(),
                format,
                source,
            })?;
    }
    Ok(WipeOutcome {
        bytes_overwritten,
        recreated: truncate_after,
    })
}

/// Overwrites the file per `algorithm`, syncs it, and, if `truncate_after`, empties it.
/// Returns the bytes written.
fn overwrite_file(
    path: &Path,
    algorithm: WipeAlgorithm,
    truncate_after: bool,
) -> Result<u64, WipeError> {
    let volume = VolumeFile::open_read_write(path)?;
    let size = volume.size()?;
    let written = match algorithm {
        WipeAlgorithm::Zero => overwrite_data_with_zeros(&volume, size)?,
        WipeAlgorithm::Random => overwrite_with_random(&volume, size)?,
        other => return Err(WipeError::Unsupported { algorithm: other }),
    };
    volume.sync_data()?;
    if truncate_after {
        volume.set_len(0)?;
        volume.sync_all()?;
    }
    Ok(written)
}

fn overwrite_data_with_zeros(volume: &VolumeFile, size: u64) -> Result<u64, WipeError> {
    let data: Vec<_> = volume
        .data_extents(0, size)
        .filter(|extent| !matches!(extent, Ok(e) if e.is_hole))
        .collect::<Result<_, _>>()?;
    let mut written = 0;
    for extent in data {
        volume.write_zeros(extent.offset, extent.len)?;
        written += extent.len;
    }
    Ok(written)
}

fn overwrite_with_random(volume: &VolumeFile, size: u64) -> Result<u64, WipeError> {
    let mut rng = SmallRng::from_os_rng();
    let mut buf = vec![0u8; WIPE_CHUNK_BYTES];
    let mut pos = 0;
    while pos < size {
        let n = usize::try_from(size - pos)
            .unwrap_or(WIPE_CHUNK_BYTES)
            .min(WIPE_CHUNK_BYTES);
        rng.fill_bytes(&mut buf[..n]);
        volume.write_at(pos, &buf[..n])?;
        pos += n as u64;
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_round_trip() {
        for algorithm in WipeAlgorithm::ALL {
            assert_eq!(
                algorithm.as_str().parse::<WipeAlgorithm>().unwrap(),
                algorithm
            );
        }
        assert!(
            "shred"
                .parse::<WipeAlgorithm>()
                .unwrap_err()
                .to_string()
                .contains("'shred'")
        );
    }

    #[tokio::test]
    async fn unsupported_algorithms_are_refused_before_touching_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.raw");
        std::fs::write(&path, b"keep me").unwrap();
        for algorithm in WipeAlgorithm::ALL.into_iter().filter(|a| !a.is_supported()) {
            let err = wipe(&QemuImg::new(), &path, ImageFormat::Raw, algorithm)
                .await
                .unwrap_err();
            assert!(matches!(err, WipeError::Unsupported { .. }), "{err}");
            assert!(err.to_string().contains(&format!("'{algorithm}'")), "{err}");
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    }
}
