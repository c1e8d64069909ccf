//! Atomic file writes: a crash at any moment leaves either the old or the new file.
//!
//! Two strengths, because they cost very different amounts (an fsync pair is 1–2 ms on an idle
//! disk and far more on a busy one):
//! - durable ([`write_atomic`], [`remove_durable`]), for configuration that must survive a
//!   power loss: temp file in the same directory, fsync, rename over the target, fsync the
//!   directory; remove = unlink, fsync the directory;
//! - runtime ([`write_runtime`], [`remove_runtime`]), for run-dir files (a running VM's state)
//!   that only have to survive a crash or restart of the service: the same temp file and rename,
//!   without fsync. The page cache outlives the process, so a restarted service reads the new
//!   file; a power loss ends the VMs too, and a new boot discards the run dir's state anyway
//!   (as libvirt's /run/libvirt is a tmpfs).
//!
//! These block: async callers run them on `tokio::task::spawn_blocking`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `contents` atomically and durably.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    replace(path, contents, true)
}

/// Replaces `path` with `contents` atomically, not durably: for run-dir state (module docs).
pub fn write_runtime(path: &Path, contents: &[u8]) -> io::Result<()> {
    replace(path, contents, false)
}

fn replace(path: &Path, contents: &[u8], durable: bool) -> io::Result<()> {
    let dir = parent_dir(path)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let temp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(contents)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&temp, path)?;
        if durable {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Removes `path` durably. Returns false when it did not exist.
pub fn remove_durable(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_dir(parent_dir(path)?)?;
            Ok(true)
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Removes a run-dir file (no directory fsync, see the module docs). Returns false when it
/// did not exist.
pub fn remove_runtime(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Flushes a directory's entries (new, renamed or removed names) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes temp files a crash left behind in `dir` (written by [`write_atomic`]).
pub fn remove_stale_temp_files(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(".tmp-") {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn parent_dir(path: &Path) -> io::Result<&Path> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => Ok(parent),
        Some(_) => Ok(Path::new(".")),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path has no parent directory",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replaces_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.xml");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
        assert!(remove_durable(&path).unwrap());
        assert!(!remove_durable(&path).unwrap());
    }

    #[test]
    fn runtime_writes_replace_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.status");
        write_runtime(&path, b"one").unwrap();
        write_runtime(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
        assert!(remove_runtime(&path).unwrap());
        assert!(!remove_runtime(&path).unwrap());
    }

    #[test]
    fn stale_temp_files_are_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".a.xml.tmp-1-2"), b"partial").unwrap();
        fs::write(dir.path().join("b.xml"), b"kept").unwrap();
        assert_eq!(remove_stale_temp_files(dir.path()).unwrap(), 1);
        assert!(dir.path().join("b.xml").exists());
    }
}

/// Why a state dir could not be claimed for a driver.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "the state dir {dir} holds the {objects} of the {owner} driver, not the {driver} \
         driver's; use another --state-dir for the {driver} driver"
    )]
    OtherDriver {
        dir: String,
        objects: &'static str,
        owner: String,
        driver: &'static str,
    },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
}

/// A state dir belongs to the driver that first used it (the marker `STATE/driver`): a test
/// driver's simulated `default` network or pool must never be taken for a real one by a
/// host driver, which would then look for (and might adopt or delete) what it names.
pub fn claim_for_driver(
    state_dir: &Path,
    driver: &'static str,
    objects: &'static str,
) -> Result<(), ClaimError> {
    let marker = state_dir.join("driver");
    let io_error = |action, path: &Path| {
        let path = path.display().to_string();
        move |source| ClaimError::Io {
            action,
            path,
            source,
        }
    };
    match std::fs::read_to_string(&marker) {
        Ok(text) if text.trim() == driver => Ok(()),
        Ok(text) => Err(ClaimError::OtherDriver {
            dir: state_dir.display().to_string(),
            objects,
            owner: text.trim().to_owned(),
            driver,
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(state_dir).map_err(io_error("create", state_dir))?;
            write_atomic(&marker, driver.as_bytes()).map_err(io_error("write", &marker))
        }
        Err(error) => Err(io_error("read", &marker)(error)),
    }
}

#[cfg(test)]
mod claim_tests {
    use super::*;

    #[test]
    fn a_state_dir_stays_with_its_driver() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        claim_for_driver(&state, "test", "pools").unwrap();
        claim_for_driver(&state, "test", "pools").unwrap();
        let text = claim_for_driver(&state, "dir", "pools")
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("pools of the test driver") && text.contains("--state-dir"),
            "{text}"
        );
    }
}
