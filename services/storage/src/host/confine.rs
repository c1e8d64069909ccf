//! Volume names and files that never leave their pool directory.
//!
//! A volume name is one path component: no `/`, no NUL, not `.` or `..`, no control
//! characters, at most 255 bytes. Files are opened relative to the pool directory with
//! `openat2(RESOLVE_BENEATH)`, so a symlink placed in the pool may point at another file in
//! the pool but never outside it; where the kernel lacks `openat2` (before 5.6, or filtered by
//! seccomp) symlinks are not followed at all (`O_NOFOLLOW`). New volumes are created with
//! `O_CREAT | O_EXCL`, which never follows a symlink and never clobbers a file.
//!
//! qemu-img takes paths, not descriptors: check the name with [`check_in_pool`] first. That
//! check and qemu-img's own open are two steps; the pool directory belongs to the service,
//! so only someone who can already write there could swap a file in between.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::files::VolumeFile;

/// Longest volume name, in bytes (a Linux file name's limit).
pub const MAX_NAME_BYTES: usize = 255;

/// Mode of new volume files, as libvirt's default (`VIR_STORAGE_DEFAULT_VOL_PERM_MODE`).
pub const DEFAULT_VOLUME_MODE: u32 = 0o600;

#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("invalid volume name '{name}': {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("pool target '{path}' is not an absolute path")]
    TargetNotAbsolute { path: PathBuf },
    #[error("pool target '{path}' does not exist: build the pool first")]
    TargetMissing { path: PathBuf },
    #[error("pool target '{path}' is {kind}, not a directory")]
    TargetNotADirectory { path: PathBuf, kind: &'static str },
    #[error(
        "'{path}' is a symbolic link that leads outside the pool directory '{pool}': refusing to follow it"
    )]
    EscapesPool { path: PathBuf, pool: PathBuf },
    #[error(
        "'{path}' is a symbolic link: this kernel cannot check where it leads (no openat2), so it is not followed"
    )]
    SymlinkNotFollowed { path: PathBuf },
    #[error("'{path}' is {kind}, not a regular file")]
    NotRegularFile { path: PathBuf, kind: &'static str },
    #[error("volume file '{path}' already exists")]
    AlreadyExists { path: PathBuf },
    #[error("volume file '{path}' does not exist")]
    NotFound { path: PathBuf },
    #[error("cannot {op} '{path}': {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_error(op: &'static str, path: &Path, source: impl Into<io::Error>) -> ConfineError {
    ConfineError::Io {
        op,
        path: path.to_path_buf(),
        source: source.into(),
    }
}

/// Checks that `name` can name a file directly inside a pool directory.
pub fn validate_name(name: &str) -> Result<(), ConfineError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name == "." || name == ".." {
        Some("'.' and '..' are not file names")
    } else if name.contains('/') {
        Some("it contains '/'")
    } else if name.contains('\0') {
        Some("it contains a NUL byte")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character")
    } else if name.len() > MAX_NAME_BYTES {
        Some("it is longer than 255 bytes")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(ConfineError::InvalidName {
            name: name.escape_debug().to_string(),
            reason,
        }),
    }
}

/// The path of volume `name` in `pool_dir`, after checking the name (nothing is opened).
pub fn resolve_in_pool(pool_dir: &Path, name: &str) -> Result<PathBuf, ConfineError> {
    validate_name(name)?;
    Ok(pool_dir.join(name))
}

/// How [`open_in_pool`] opens a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// Opens the existing regular file `name` in `pool_dir`; a symlink is followed only while it
/// stays inside the pool.
pub fn open_in_pool(
    pool_dir: &Path,
    name: &str,
    access: Access,
) -> Result<VolumeFile, ConfineError> {
    let path = resolve_in_pool(pool_dir, name)?;
    let dir = open_pool_dir(pool_dir)?;
    let mode = match access {
        Access::ReadOnly => OFlags::RDONLY,
        Access::ReadWrite => OFlags::RDWR,
    };
    // NONBLOCK so that a FIFO planted in the pool cannot hang the open; it is cleared below
    // once the file is known to be regular.
    let fd = open_beneath(&dir, pool_dir, name, mode | OFlags::NONBLOCK, Mode::empty())?;
    let file = File::from(fd);
    let metadata = file.metadata().map_err(|e| io_error("stat", &path, e))?;
    if !metadata.file_type().is_file() {
        return Err(ConfineError::NotRegularFile {
            kind: kind_of(metadata.file_type()),
            path,
        });
    }
    let flags =
        rustix::fs::fcntl_getfl(&file).map_err(|e| io_error("read the flags of", &path, e))?;
    rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK)
        .map_err(|e| io_error("set the flags of", &path, e))?;
    Ok(VolumeFile::new(file, path))
}

/// Checks that `name` in `pool_dir` is a regular file inside the pool (following symlinks
/// only within it) and returns its path, e.g. to hand to qemu-img.
pub fn check_in_pool(pool_dir: &Path, name: &str) -> Result<PathBuf, ConfineError> {
    let path = resolve_in_pool(pool_dir, name)?;
    let dir = open_pool_dir(pool_dir)?;
    let fd = open_beneath(&dir, pool_dir, name, OFlags::PATH, Mode::empty())?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| io_error("stat", &path, e))?;
    let file_type = rustix::fs::FileType::from_raw_mode(stat.st_mode);
    if file_type != rustix::fs::FileType::RegularFile {
        return Err(ConfineError::NotRegularFile {
            kind: kind_of_raw(file_type),
            path,
        });
    }
    Ok(path)
}

/// Creates the new file `name` in `pool_dir` with exactly `mode` (umask aside), opened for
/// reading and writing. An existing file or symlink of that name is an error, never
/// overwritten or followed: this is how a volume's name is reserved before qemu-img writes it.
pub fn create_in_pool(pool_dir: &Path, name: &str, mode: u32) -> Result<VolumeFile, ConfineError> {
    let path = resolve_in_pool(pool_dir, name)?;
    let dir = open_pool_dir(pool_dir)?;
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
    let fd = open_beneath(&dir, pool_dir, name, flags, Mode::from_bits_truncate(mode))?;
    let file = File::from(fd);
    // The umask may have taken bits away; the volume's mode is what was asked for.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_error("set the mode of", &path, e))?;
    Ok(VolumeFile::new(file, path))
}

/// Removes the file `name` from `pool_dir` (a symlink is removed itself, never its target).
pub fn remove_in_pool(pool_dir: &Path, name: &str) -> Result<(), ConfineError> {
    let path = resolve_in_pool(pool_dir, name)?;
    let dir = open_pool_dir(pool_dir)?;
    rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty()).map_err(|e| match e {
        Errno::NOENT => ConfineError::NotFound { path: path.clone() },
        Errno::ISDIR => ConfineError::NotRegularFile {
            path: path.clone(),
            kind: "a directory",
        },
        e => io_error("remove", &path, e),
    })
}

/// Checks a pool's target directory: an absolute path to an existing directory (a symlink to
/// one is fine: the administrator put it there).
pub fn check_pool_target(path: &Path) -> Result<(), ConfineError> {
    if !path.is_absolute() {
        return Err(ConfineError::TargetNotAbsolute {
            path: path.to_path_buf(),
        });
    }
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(metadata) => Err(ConfineError::TargetNotADirectory {
            path: path.to_path_buf(),
            kind: kind_of(metadata.file_type()),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ConfineError::TargetMissing {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(io_error("stat pool target", path, e)),
    }
}

/// A volume file found by [`list_pool_files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolFile {
    pub name: String,
    pub path: PathBuf,
    /// The entry is a symlink to a regular file elsewhere in the pool.
    pub via_symlink: bool,
}

/// Why [`list_pool_files`] left an entry out; the driver logs these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The name is not UTF-8, or breaks [`validate_name`].
    InvalidName(String),
    /// A symlink leading outside the pool; `target` is what it points at.
    SymlinkOutsidePool { target: PathBuf },
    /// A symlink whose target does not exist.
    DanglingSymlink { target: PathBuf },
    /// A symlink, not followed because the kernel lacks openat2.
    SymlinkNotFollowed { target: PathBuf },
    /// A directory, FIFO, socket or device (or a symlink to one).
    NotRegularFile { kind: &'static str },
    /// The entry vanished or could not be examined.
    Unreadable(String),
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::InvalidName(reason) => write!(f, "invalid volume name: {reason}"),
            SkipReason::SymlinkOutsidePool { target } => {
                write!(
                    f,
                    "symbolic link to '{}' leads outside the pool: not followed",
                    target.display()
                )
            }
            SkipReason::DanglingSymlink { target } => {
                write!(
                    f,
                    "symbolic link to '{}', which does not exist",
                    target.display()
                )
            }
            SkipReason::SymlinkNotFollowed { target } => write!(
                f,
                "symbolic link to '{}': not followed (no openat2 on this kernel)",
                target.display()
            ),
            SkipReason::NotRegularFile { kind } => write!(f, "{kind}, not a regular file"),
            SkipReason::Unreadable(reason) => write!(f, "cannot be examined: {reason}"),
        }
    }
}

/// An entry of the pool directory that is not listed as a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEntry {
    /// The name as found (lossily decoded, control characters escaped).
    pub name: String,
    pub reason: SkipReason,
}

/// What a pool refresh finds in its directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolListing {
    /// Regular files (and symlinks to regular files inside the pool), sorted by name.
    pub files: Vec<PoolFile>,
    /// Everything else, sorted by name.
    pub skipped: Vec<SkippedEntry>,
}

/// Lists the volume files of a pool directory, without following any symlink out of it.
pub fn list_pool_files(pool_dir: &Path) -> Result<PoolListing, ConfineError> {
    let dir = open_pool_dir(pool_dir)?;
    let entries =
        std::fs::read_dir(pool_dir).map_err(|e| io_error("list pool directory", pool_dir, e))?;
    let mut listing = PoolListing::default();
    for entry in entries {
        let entry = entry.map_err(|e| io_error("list pool directory", pool_dir, e))?;
        let raw_name = entry.file_name();
        let Some(name) = raw_name.to_str() else {
            listing.skipped.push(SkippedEntry {
                name: raw_name.to_string_lossy().escape_debug().to_string(),
                reason: SkipReason::InvalidName("it is not valid UTF-8".into()),
            });
            continue;
        };
        match classify_entry(&dir, pool_dir, name, &entry) {
            Ok(via_symlink) => listing.files.push(PoolFile {
                name: name.to_string(),
                path: pool_dir.join(name),
                via_symlink,
            }),
            Err(reason) => listing.skipped.push(SkippedEntry {
                name: name.escape_debug().to_string(),
                reason,
            }),
        }
    }
    listing.files.sort_by(|a, b| a.name.cmp(&b.name));
    listing.skipped.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(listing)
}

/// Ok(via_symlink) for a volume file, Err(why not) otherwise.
fn classify_entry(
    dir: &File,
    pool_dir: &Path,
    name: &str,
    entry: &std::fs::DirEntry,
) -> Result<bool, SkipReason> {
    if let Err(e) = validate_name(name) {
        let reason = match e {
            ConfineError::InvalidName { reason, .. } => reason.to_string(),
            other => other.to_string(),
        };
        return Err(SkipReason::InvalidName(reason));
    }
    let file_type = entry
        .file_type()
        .map_err(|e| SkipReason::Unreadable(e.to_string()))?;
    if file_type.is_file() {
        return Ok(false);
    }
    if !file_type.is_symlink() {
        return Err(SkipReason::NotRegularFile {
            kind: kind_of(file_type),
        });
    }
    let target = std::fs::read_link(entry.path()).unwrap_or_default();
    match open_beneath(dir, pool_dir, name, OFlags::PATH, Mode::empty()) {
        Ok(fd) => {
            let stat = rustix::fs::fstat(&fd).map_err(|e| SkipReason::Unreadable(e.to_string()))?;
            match rustix::fs::FileType::from_raw_mode(stat.st_mode) {
                rustix::fs::FileType::RegularFile => Ok(true),
                other => Err(SkipReason::NotRegularFile {
                    kind: kind_of_raw(other),
                }),
            }
        }
        Err(ConfineError::EscapesPool { .. }) => Err(SkipReason::SymlinkOutsidePool { target }),
        Err(ConfineError::NotFound { .. }) => Err(SkipReason::DanglingSymlink { target }),
        Err(ConfineError::SymlinkNotFollowed { .. }) => {
            Err(SkipReason::SymlinkNotFollowed { target })
        }
        Err(other) => Err(SkipReason::Unreadable(other.to_string())),
    }
}

fn open_pool_dir(pool_dir: &Path) -> Result<File, ConfineError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(pool_dir)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => ConfineError::TargetMissing {
                path: pool_dir.to_path_buf(),
            },
            Some(libc::ENOTDIR) => ConfineError::TargetNotADirectory {
                path: pool_dir.to_path_buf(),
                kind: "not a directory",
            },
            _ => io_error("open pool directory", pool_dir, e),
        })
}

/// Opens `name` relative to `dir`, never resolving outside it.
fn open_beneath(
    dir: &File,
    pool_dir: &Path,
    name: &str,
    flags: OFlags,
    mode: Mode,
) -> Result<rustix::fd::OwnedFd, ConfineError> {
    open_beneath_with(dir, pool_dir, name, flags, mode, true)
}

/// `use_openat2 = false` forces the `O_NOFOLLOW` fallback of kernels without openat2 (tests
/// use it to cover them).
fn open_beneath_with(
    dir: &File,
    pool_dir: &Path,
    name: &str,
    flags: OFlags,
    mode: Mode,
    use_openat2: bool,
) -> Result<rustix::fd::OwnedFd, ConfineError> {
    let path = pool_dir.join(name);
    // openat2 refuses O_PATH combined with flags other than CLOEXEC, DIRECTORY and NOFOLLOW.
    let flags = if flags.contains(OFlags::PATH) {
        flags | OFlags::CLOEXEC
    } else {
        flags | OFlags::CLOEXEC | OFlags::NOCTTY
    };
    let beneath = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    let opened = if use_openat2 {
        match rustix::fs::openat2(dir, name, flags, mode, beneath) {
            Err(Errno::NOSYS) => open_no_follow(dir, name, flags, mode),
            other => other.map(Some),
        }
    } else {
        open_no_follow(dir, name, flags, mode)
    };
    match opened {
        Ok(Some(fd)) => Ok(fd),
        Ok(None) => Err(ConfineError::SymlinkNotFollowed { path }),
        Err(Errno::XDEV) => Err(ConfineError::EscapesPool {
            path,
            pool: pool_dir.to_path_buf(),
        }),
        Err(Errno::NOENT) => Err(ConfineError::NotFound { path }),
        Err(Errno::EXIST) => Err(ConfineError::AlreadyExists { path }),
        // O_NOFOLLOW met a symlink.
        Err(Errno::LOOP) => Err(ConfineError::SymlinkNotFollowed { path }),
        Err(e) => Err(io_error("open", &path, e)),
    }
}

/// The fallback: `O_NOFOLLOW`, and `None` where `O_PATH` opened a symlink itself.
fn open_no_follow(
    dir: &File,
    name: &str,
    flags: OFlags,
    mode: Mode,
) -> rustix::io::Result<Option<rustix::fd::OwnedFd>> {
    let fd = rustix::fs::openat(dir, name, flags | OFlags::NOFOLLOW, mode)?;
    if flags.contains(OFlags::PATH) {
        let stat = rustix::fs::fstat(&fd)?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Symlink {
            return Ok(None);
        }
    }
    Ok(Some(fd))
}

fn kind_of(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_file() {
        "a file"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_char_device() {
        "a character device"
    } else {
        "an unknown kind of file"
    }
}

fn kind_of_raw(file_type: rustix::fs::FileType) -> &'static str {
    use rustix::fs::FileType;
    match file_type {
        FileType::RegularFile => "a file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::BlockDevice => "a block device",
        FileType::CharacterDevice => "a character device",
        FileType::Unknown => "an unknown kind of file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_one_plain_component_pass() {
        for name in [
            "disk.qcow2",
            ".hidden",
            "a b",
            "...",
            "ü-ñ",
            &"x".repeat(255),
        ] {
            validate_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn names_that_could_leave_the_pool_are_refused() {
        let cases = [
            ("", "empty"),
            (".", "'.' and '..'"),
            ("..", "'.' and '..'"),
            ("../etc/passwd", "'/'"),
            ("a/b", "'/'"),
            ("/abs", "'/'"),
            ("nul\0byte", "NUL"),
            ("line\nbreak", "control character"),
        ];
        for (name, expected) in cases {
            let err = validate_name(name).unwrap_err().to_string();
            assert!(err.contains(expected), "{name:?}: {err}");
        }
        let long = "x".repeat(256);
        assert!(
            validate_name(&long)
                .unwrap_err()
                .to_string()
                .contains("255 bytes")
        );
    }

    #[test]
    fn invalid_name_error_escapes_the_name() {
        let err = validate_name("a\nb").unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid volume name 'a\\nb': it contains a control character"
        );
    }

    #[test]
    fn fallback_without_openat2_refuses_every_symlink() {
        let pool = tempfile::tempdir().unwrap();
        std::fs::write(pool.path().join("real.img"), b"x").unwrap();
        std::os::unix::fs::symlink("real.img", pool.path().join("link.img")).unwrap();
        let dir = open_pool_dir(pool.path()).unwrap();
        for flags in [OFlags::RDONLY, OFlags::RDWR, OFlags::PATH] {
            let err = open_beneath_with(&dir, pool.path(), "link.img", flags, Mode::empty(), false)
                .unwrap_err();
            assert!(
                matches!(err, ConfineError::SymlinkNotFollowed { .. }),
                "{flags:?}: {err}"
            );
            open_beneath_with(&dir, pool.path(), "real.img", flags, Mode::empty(), false).unwrap();
            // openat2 follows the same link, which stays in the pool.
            open_beneath_with(&dir, pool.path(), "link.img", flags, Mode::empty(), true).unwrap();
        }
    }
}
