//! Where volume leases live on disk: one small file per leased volume,
//! `RUN/leases/POOL/VOLUME`, holding the pool and volume names, the volume's path and one
//! `UUID NAME` line per domain that holds a lease on it. The file stems are
//! [`file_stem`]s; the names inside are the truth.
//!
//! Leases are runtime state, like a running VM: they sit in the run dir, are written
//! without fsync (they have to survive a restart of the service, not a power loss, which
//! ends the VMs too) and are discarded on a new boot, when no VM holds anything any more.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use virtplane_common::object_files::file_stem;
use virtplane_common::store;

use super::leases::{Held, LeaseOwner, VolumeKey};
use crate::error::{Result, StorageError};

/// The lease files of one service.
#[derive(Debug)]
pub struct LeaseFiles {
    dir: PathBuf,
}

impl LeaseFiles {
    /// The lease files below `run_dir/leases`; on a `new_boot` the old ones are discarded.
    pub fn open(run_dir: &Path, new_boot: bool) -> Result<Self> {
        let dir = run_dir.join("leases");
        if new_boot {
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(StorageError::storage("remove", &dir, e));
                }
                _ => {}
            }
        }
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::storage("create", &dir, e))?;
        Ok(Self { dir })
    }

    fn path(&self, key: &VolumeKey) -> PathBuf {
        self.dir
            .join(file_stem(&key.pool))
            .join(file_stem(&key.volume))
    }

    /// Every lease on disk. A file that cannot be read is reported and skipped.
    pub fn load(&self) -> Result<BTreeMap<VolumeKey, Held>> {
        let mut held = BTreeMap::new();
        let pools = std::fs::read_dir(&self.dir)
            .map_err(|e| StorageError::storage("read", &self.dir, e))?;
        for pool in pools.flatten() {
            if !pool.path().is_dir() {
                continue;
            }
            let entries = std::fs::read_dir(pool.path())
                .map_err(|e| StorageError::storage("read", &pool.path(), e))?;
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with('.') {
                    continue; // a temp file of an interrupted write
                }
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                match parse(&text) {
                    Some((key, lease)) => {
                        held.insert(key, lease);
                    }
                    None => {
                        tracing::warn!(file = %entry.path().display(), "unreadable volume lease file; ignored")
                    }
                }
            }
        }
        Ok(held)
    }

    /// Writes the leases of `key` (its file goes when nobody holds one).
    pub fn save(&self, key: &VolumeKey, lease: Option<&Held>) -> Result<()> {
        let path = self.path(key);
        let Some(lease) = lease.filter(|l| !l.owners.is_empty()) else {
            store::remove_runtime(&path).map_err(|e| StorageError::storage("remove", &path, e))?;
            return Ok(());
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| StorageError::storage("create", parent, e))?;
        }
        store::write_runtime(&path, format(key, lease).as_bytes())
            .map_err(|e| StorageError::storage("write", &path, e))
    }
}

/// "POOL\nVOLUME\nPATH\nUUID NAME\n…". Names carry no control characters (they are
/// validated), so lines are safe; a UUID has no space, so the first one ends it.
fn format(key: &VolumeKey, lease: &Held) -> String {
    let mut text = format!("{}\n{}\n{}\n", key.pool, key.volume, lease.path);
    for owner in &lease.owners {
        text.push_str(&format!("{} {}\n", owner.uuid, owner.name));
    }
    text
}

fn parse(text: &str) -> Option<(VolumeKey, Held)> {
    let mut lines = text.lines();
    let key = VolumeKey {
        pool: lines.next()?.to_owned(),
        volume: lines.next()?.to_owned(),
    };
    let path = lines.next()?.to_owned();
    let owners = lines
        .map(|line| {
            let (uuid, name) = line.split_once(' ')?;
            Some(LeaseOwner {
                name: name.to_owned(),
                uuid: uuid.to_owned(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some((key, Held { path, owners }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_file_reads_back() {
        let key = VolumeKey {
            pool: "default".into(),
            volume: "web disk.qcow2".into(),
        };
        let lease = Held {
            path: "/var/lib/virtplane/images/web disk.qcow2".into(),
            owners: vec![LeaseOwner {
                name: "web server".into(),
                uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f".into(),
            }],
        };
        assert_eq!(parse(&format(&key, &lease)), Some((key, lease)));
        assert_eq!(parse("default\nvol\n"), None);
        assert_eq!(parse("default\nvol\n/p\nno-space-here\n"), None);
    }
}
