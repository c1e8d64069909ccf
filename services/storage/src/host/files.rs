//! Volume files on the host: sizes, sparse-aware reads and writes, holes, fsync.
//!
//! A dir pool's raw volumes are mostly sparse files, and uploads and downloads move them as
//! streams of data and hole chunks. Everything here keeps holes holes: a hole chunk never
//! allocates, reading skips holes via `SEEK_DATA`/`SEEK_HOLE`, and a pool's numbers come from
//! `statvfs` exactly as libvirt's dir pool computes them.
//!
//! These are blocking system calls; async callers run them in `tokio::task::spawn_blocking`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FallocateFlags, SeekFrom};
use rustix::io::Errno;

/// Size of the buffers used to write zeros: large enough that a gigabyte is a thousand
/// system calls, small enough to allocate per call.
pub const ZERO_CHUNK_BYTES: usize = 1024 * 1024;

/// A file operation that failed, naming the file and what was being done to it.
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} '{path}': {source}")]
pub struct FileError {
    /// What was being done, e.g. "read the size of".
    pub op: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl FileError {
    fn new(op: &'static str, path: &Path, source: impl Into<io::Error>) -> Self {
        FileError {
            op,
            path: path.to_path_buf(),
            source: source.into(),
        }
    }
}

/// Bytes a file really occupies on disk: `st_blocks * 512` (its holes take nothing).
pub fn allocation(path: &Path) -> Result<u64, FileError> {
    let metadata =
        std::fs::metadata(path).map_err(|e| FileError::new("read the allocation of", path, e))?;
    Ok(metadata.blocks().saturating_mul(512))
}

/// A pool's numbers from the filesystem that holds its directory, as libvirt's dir pool reports
/// them (`virStorageBackendRefreshLocal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsUsage {
    /// Size of the filesystem: `f_frsize * f_blocks`.
    pub capacity: u64,
    /// Bytes in use: `capacity - available`.
    pub allocation: u64,
    /// Free bytes, root's reserve included: `f_bfree * f_frsize` (libvirt's `available`).
    pub available: u64,
    /// Free bytes an unprivileged writer can use: `f_bavail * f_frsize` (the reserve left out).
    pub available_unprivileged: u64,
}

/// The numbers of the filesystem holding `dir` (see [`FsUsage`]).
pub fn capacity_of_fs(dir: &Path) -> Result<FsUsage, FileError> {
    let vfs = rustix::fs::statvfs(dir).map_err(|e| FileError::new("statvfs", dir, e))?;
    let capacity = vfs.f_frsize.saturating_mul(vfs.f_blocks);
    let available = vfs.f_bfree.saturating_mul(vfs.f_frsize);
    Ok(FsUsage {
        capacity,
        allocation: capacity.saturating_sub(available),
        available,
        available_unprivileged: vfs.f_bavail.saturating_mul(vfs.f_frsize),
    })
}

/// fsync a directory, so a file created, renamed or removed in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<(), FileError> {
    let handle = File::open(dir).map_err(|e| FileError::new("open directory", dir, e))?;
    handle
        .sync_all()
        .map_err(|e| FileError::new("fsync directory", dir, e))
}

/// One run of a file: data, or a hole that reads as zeros and occupies nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub offset: u64,
    pub len: u64,
    pub is_hole: bool,
}

impl Extent {
    /// The offset just past this extent.
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// An open volume file and its path, so every error names the file.
#[derive(Debug)]
pub struct VolumeFile {
    file: File,
    path: PathBuf,
}

impl VolumeFile {
    /// Wraps a file opened elsewhere (e.g. by `confine::open_in_pool`).
    pub fn new(file: File, path: impl Into<PathBuf>) -> Self {
        VolumeFile {
            file,
            path: path.into(),
        }
    }

    /// Opens an existing file for reading and writing. Pool volumes should be opened with
    /// `confine::open_in_pool` instead, which refuses symlinks that leave the pool.
    pub fn open_read_write(path: &Path) -> Result<Self, FileError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| FileError::new("open", path, e))?;
        Ok(VolumeFile::new(file, path))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn into_file(self) -> File {
        self.file
    }

    /// The file's size in bytes (its capacity, for a raw volume).
    pub fn size(&self) -> Result<u64, FileError> {
        Ok(self.metadata("read the size of")?.len())
    }

    /// Bytes the file occupies on disk (`st_blocks * 512`).
    pub fn allocation(&self) -> Result<u64, FileError> {
        Ok(self
            .metadata("read the allocation of")?
            .blocks()
            .saturating_mul(512))
    }

    /// Whether fewer bytes are allocated than the size (some of it is holes).
    pub fn is_sparse(&self) -> Result<bool, FileError> {
        let metadata = self.metadata("read the allocation of")?;
        Ok(metadata.blocks().saturating_mul(512) < metadata.len())
    }

    fn metadata(&self, op: &'static str) -> Result<std::fs::Metadata, FileError> {
        self.file
            .metadata()
            .map_err(|e| FileError::new(op, &self.path, e))
    }

    /// Sets the size: growing adds a hole (nothing is allocated), shrinking drops the tail.
    pub fn set_len(&self, size: u64) -> Result<(), FileError> {
        self.file
            .set_len(size)
            .map_err(|e| FileError::new("set the size of", &self.path, e))
    }

    /// Allocates `len` bytes from `offset` (fallocate mode 0), growing the file if needed, so
    /// later writes cannot fail for lack of space.
    pub fn allocate(&self, offset: u64, len: u64) -> Result<(), FileError> {
        if len == 0 {
            return Ok(());
        }
        rustix::fs::fallocate(&self.file, FallocateFlags::empty(), offset, len)
            .map_err(|e| FileError::new("allocate space in", &self.path, e))
    }

    /// Writes all of `data` at `offset`, growing the file if it ends past its size.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), FileError> {
        self.file
            .write_all_at(data, offset)
            .map_err(|e| FileError::new("write to", &self.path, e))
    }

    /// Reads exactly `buf.len()` bytes at `offset`.
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), FileError> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| FileError::new("read from", &self.path, e))
    }

    /// Writes explicit zeros over `len` bytes from `offset` (they end up allocated).
    pub fn write_zeros(&self, offset: u64, len: u64) -> Result<(), FileError> {
        let end = checked_end(offset, len, &self.path)?;
        let chunk = usize::try_from(len)
            .unwrap_or(ZERO_CHUNK_BYTES)
            .min(ZERO_CHUNK_BYTES);
        let zeros = vec![0u8; chunk];
        let mut pos = offset;
        while pos < end {
            let n = usize::try_from(end - pos).unwrap_or(chunk).min(chunk);
            self.write_at(pos, &zeros[..n])?;
            pos += n as u64;
        }
        Ok(())
    }

    /// Makes `len` bytes from `offset` a hole: they read as zeros and, where the filesystem
    /// can punch holes, occupy nothing.
    ///
    /// This is how an upload stores a hole chunk. Past the current end the file is only
    /// extended (`ftruncate`, which allocates nothing); over existing bytes a hole is punched
    /// (`fallocate(PUNCH_HOLE | KEEP_SIZE)`), or, on a filesystem that cannot punch holes,
    /// zeros are written so the bytes still read as zeros.
    pub fn write_hole(&self, offset: u64, len: u64) -> Result<(), FileError> {
        let end = checked_end(offset, len, &self.path)?;
        let size = self.size()?;
        if offset < size {
            self.punch_hole(offset, end.min(size) - offset)?;
        }
        if end > size {
            self.set_len(end)?;
        }
        Ok(())
    }

    /// Deallocates `len` bytes from `offset` inside the file, keeping its size; falls back to
    /// writing zeros where the filesystem does not support punching holes.
    pub fn punch_hole(&self, offset: u64, len: u64) -> Result<(), FileError> {
        if len == 0 {
            return Ok(());
        }
        match rustix::fs::fallocate(
            &self.file,
            FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            offset,
            len,
        ) {
            Ok(()) => Ok(()),
            Err(Errno::OPNOTSUPP | Errno::NOSYS) => self.write_zeros(offset, len),
            Err(e) => Err(FileError::new("punch a hole in", &self.path, e)),
        }
    }

    /// The data and hole runs between `start` and `end`, in order, adjacent runs never of the
    /// same kind. Bytes past the end of the file are reported as a hole. On a filesystem
    /// without `SEEK_DATA` the whole range is reported as data.
    ///
    /// Iterating moves the file's shared offset; use the `*_at` methods alongside.
    pub fn data_extents(&self, start: u64, end: u64) -> DataExtents<'_> {
        DataExtents {
            file: &self.file,
            path: &self.path,
            pos: start,
            end,
            seek_supported: true,
            failed: false,
        }
    }

    /// fsync: data and metadata reach the disk.
    pub fn sync_all(&self) -> Result<(), FileError> {
        self.file
            .sync_all()
            .map_err(|e| FileError::new("fsync", &self.path, e))
    }

    /// fdatasync: data (and the size) reach the disk.
    pub fn sync_data(&self) -> Result<(), FileError> {
        self.file
            .sync_data()
            .map_err(|e| FileError::new("fdatasync", &self.path, e))
    }
}

fn checked_end(offset: u64, len: u64, path: &Path) -> Result<u64, FileError> {
    offset.checked_add(len).ok_or_else(|| {
        FileError::new(
            "address a range in",
            path,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("offset {offset} plus length {len} overflows"),
            ),
        )
    })
}

/// Iterator over a file's data and hole runs; see [`VolumeFile::data_extents`].
#[derive(Debug)]
pub struct DataExtents<'a> {
    file: &'a File,
    path: &'a Path,
    pos: u64,
    end: u64,
    seek_supported: bool,
    failed: bool,
}

impl DataExtents<'_> {
    fn emit(&mut self, until: u64, is_hole: bool) -> Extent {
        let extent = Extent {
            offset: self.pos,
            len: until - self.pos,
            is_hole,
        };
        self.pos = until;
        extent
    }
}

impl Iterator for DataExtents<'_> {
    type Item = Result<Extent, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.end {
            return None;
        }
        if !self.seek_supported {
            return Some(Ok(self.emit(self.end, false)));
        }
        match rustix::fs::seek(self.file, SeekFrom::Data(self.pos)) {
            Ok(data_start) if data_start > self.pos => {
                Some(Ok(self.emit(data_start.min(self.end), true)))
            }
            Ok(_) => match rustix::fs::seek(self.file, SeekFrom::Hole(self.pos)) {
                Ok(hole_start) => Some(Ok(self.emit(hole_start.clamp(self.pos, self.end), false))),
                Err(e) => {
                    self.failed = true;
                    Some(Err(FileError::new("find holes in", self.path, e)))
                }
            },
            // No data at or after pos: the rest is a hole (or past the end of the file).
            Err(Errno::NXIO) => Some(Ok(self.emit(self.end, true))),
            Err(Errno::INVAL | Errno::OPNOTSUPP) => {
                self.seek_supported = false;
                Some(Ok(self.emit(self.end, false)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(FileError::new("find data in", self.path, e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_volume(size: u64) -> (tempfile::TempDir, VolumeFile) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.raw");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        let volume = VolumeFile::new(file, &path);
        volume.set_len(size).unwrap();
        (dir, volume)
    }

    #[test]
    fn empty_range_has_no_extents() {
        let (_dir, volume) = temp_volume(4096);
        assert_eq!(volume.data_extents(10, 10).count(), 0);
        assert_eq!(volume.data_extents(10, 5).count(), 0);
    }

    #[test]
    fn range_past_end_of_file_is_a_hole() {
        let (_dir, volume) = temp_volume(0);
        let extents: Vec<_> = volume
            .data_extents(0, 8192)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            extents,
            vec![Extent {
                offset: 0,
                len: 8192,
                is_hole: true
            }]
        );
    }

    #[test]
    fn write_zeros_rejects_an_overflowing_range() {
        let (_dir, volume) = temp_volume(0);
        let err = volume.write_zeros(u64::MAX, 2).unwrap_err();
        assert!(err.to_string().contains("overflows"), "{err}");
        assert!(err.to_string().contains("v.raw"), "{err}");
    }

    #[test]
    fn errors_name_the_file() {
        let err = allocation(Path::new("/nonexistent/virtplane-x")).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("cannot read the allocation of '/nonexistent/virtplane-x': "),
            "{message}"
        );
        assert_eq!(err.source.kind(), io::ErrorKind::NotFound);
    }
}
