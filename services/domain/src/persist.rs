//! Where domains live on disk.
//!
//! - `STATE/domains/NAME.xml`: the persistent config (secure form: passwords kept).
//! - `STATE/autostart/NAME`: an empty marker, as libvirt's autostart symlink.
//! - `RUN/domains/NAME.status`: a running domain's runtime state: one header line
//!   (`state=running reason=running-booted id=3 persistent=yes`) and its live XML.
//! - `RUN/autostarted`: written once autostart ran, so a service restart does not start
//!   again what the user shut down (libvirt's marker file does the same).
//!
//! Every write is atomic (virtplane_common::store). Config and autostart writes are durable
//! (fsynced); status files are runtime state, written without fsync: they only have to
//! survive a restart of the service, and a new boot discards them. A status file's padded
//! header may also be rewritten in place ([`Store::save_status_header`]).
//!
//! NAME above is the domain name when it makes a safe file name, else `~` and a hash of it
//! ([`file_stem`]): names may be up to 256 bytes and start with a dot, file names may not
//! exceed 255 bytes, and dot files are temp files. The XML inside is the truth for the name.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use virtplane_common::store;

use crate::error::{DomainError, Result};

/// Longest domain name used as a file name as it is.
const MAX_PLAIN_STEM: usize = 200;

/// The file name (without suffix) that holds a domain's files.
pub fn file_stem(name: &str) -> String {
    if name.len() <= MAX_PLAIN_STEM && !name.starts_with('.') && !name.starts_with('~') {
        return name.to_owned();
    }
    use sha2::Digest;
    format!(
        "~{}",
        &hex::encode(sha2::Sha256::digest(name.as_bytes()))[..40]
    )
}

/// One domain as found on disk at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDomain {
    /// The file stem the files were found under (see [`file_stem`]).
    pub stem: String,
    pub config: Option<String>,
    pub autostart: bool,
    pub status: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Store {
    config_dir: PathBuf,
    autostart_dir: PathBuf,
    status_dir: PathBuf,
    run_dir: PathBuf,
    /// Header length of each status file this process wrote whole, by domain name: only
    /// those may have their header rewritten in place (a file from an earlier run may have
    /// another layout).
    status_headers: Arc<Mutex<HashMap<String, usize>>>,
}

impl Store {
    /// Creates the directories if needed and removes temp files a crash left behind.
    pub fn open(state_dir: &Path, run_dir: &Path) -> Result<Self> {
        let store = Self {
            config_dir: state_dir.join("domains"),
            autostart_dir: state_dir.join("autostart"),
            status_dir: run_dir.join("domains"),
            run_dir: run_dir.to_path_buf(),
            status_headers: Arc::default(),
        };
        for dir in [&store.config_dir, &store.autostart_dir, &store.status_dir] {
            fs::create_dir_all(dir).map_err(|e| DomainError::storage("create", dir, e))?;
            store::remove_stale_temp_files(dir)
                .map_err(|e| DomainError::storage("clean", dir, e))?;
        }
        Ok(store)
    }

    fn config_path(&self, name: &str) -> PathBuf {
        self.config_dir.join(format!("{}.xml", file_stem(name)))
    }

    fn status_path(&self, name: &str) -> PathBuf {
        self.status_dir.join(format!("{}.status", file_stem(name)))
    }

    /// Moves a config this version cannot load to `STATE/domains/broken/`, so that nothing
    /// overwrites it and the user can repair it; returns where it went.
    pub fn quarantine(&self, stem: &str) -> Result<PathBuf> {
        let broken = self.config_dir.join("broken");
        fs::create_dir_all(&broken).map_err(|e| DomainError::storage("create", &broken, e))?;
        let from = self.config_dir.join(format!("{stem}.xml"));
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let to = broken.join(format!("{stem}.xml.{stamp}"));
        fs::rename(&from, &to).map_err(|e| DomainError::storage("move", &from, e))?;
        store::sync_dir(&self.config_dir)
            .map_err(|e| DomainError::storage("sync", &self.config_dir, e))?;
        Ok(to)
    }

    pub fn save_config(&self, name: &str, xml: &str) -> Result<()> {
        let path = self.config_path(name);
        store::write_atomic(&path, xml.as_bytes())
            .map_err(|e| DomainError::storage("write", &path, e))
    }

    pub fn remove_config(&self, name: &str) -> Result<()> {
        let path = self.config_path(name);
        store::remove_durable(&path).map_err(|e| DomainError::storage("remove", &path, e))?;
        self.set_autostart(name, false)
    }

    pub fn set_autostart(&self, name: &str, on: bool) -> Result<()> {
        let path = self.autostart_dir.join(file_stem(name));
        let result = if on {
            store::write_atomic(&path, b"")
        } else {
            store::remove_durable(&path).map(|_| ())
        };
        result.map_err(|e| DomainError::storage("update", &path, e))
    }

    /// Writes a whole status file (a header line, then the live XML) atomically.
    pub fn save_status(&self, name: &str, status: &str) -> Result<()> {
        let path = self.status_path(name);
        self.forget_header(name);
        store::write_runtime(&path, status.as_bytes())
            .map_err(|e| DomainError::storage("write", &path, e))?;
        if let Some(newline) = status.find('\n') {
            self.headers().insert(name.to_owned(), newline + 1);
        }
        Ok(())
    }

    /// Rewrites only the header of a status file this process wrote, in place: one
    /// `pwrite` of a few hundred bytes at offset 0 of the existing file, which the death of
    /// the process cannot tear (the kernel copies a write this small within one page in
    /// one go). Returns `false`, writing nothing, unless the file on disk has a header of
    /// exactly this length written by [`Store::save_status`]; the caller then writes the
    /// whole file.
    pub fn save_status_header(&self, name: &str, header: &str) -> Result<bool> {
        if self.headers().get(name) != Some(&header.len()) {
            return Ok(false);
        }
        let path = self.status_path(name);
        let written = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|file| file.write_all_at(header.as_bytes(), 0));
        match written {
            Ok(()) => Ok(true),
            Err(error) => {
                self.forget_header(name);
                Err(DomainError::storage("write", &path, error))
            }
        }
    }

    pub fn remove_status(&self, name: &str) -> Result<()> {
        self.forget_header(name);
        self.remove_status_file(&file_stem(name))
    }

    fn headers(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // The map holds plain lengths: a panic elsewhere cannot leave it half-updated.
        self.status_headers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn forget_header(&self, name: &str) {
        self.headers().remove(name);
    }

    /// Removes the status file found under `stem` at load time.
    pub fn remove_status_file(&self, stem: &str) -> Result<()> {
        let path = self.status_dir.join(format!("{stem}.status"));
        store::remove_runtime(&path)
            .map(|_| ())
            .map_err(|e| DomainError::storage("remove", &path, e))
    }

    /// True the first time it is called since the host booted (or for a new run dir): the
    /// marker `RUN/autostarted` holds the boot id, so autostart runs once per boot and a
    /// service restart does not start again what the user shut down.
    pub fn claim_boot(&self) -> Result<bool> {
        let marker = self.run_dir.join("autostarted");
        let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .unwrap_or_default()
            .trim()
            .to_owned();
        if fs::read_to_string(&marker).is_ok_and(|seen| seen.trim() == boot_id) {
            return Ok(false);
        }
        store::write_atomic(&marker, format!("{boot_id}\n").as_bytes())
            .map_err(|e| DomainError::storage("write", &marker, e))?;
        Ok(true)
    }

    /// Every domain with a config or a status file.
    pub fn load_all(&self) -> Result<Vec<StoredDomain>> {
        let mut found = std::collections::BTreeMap::<String, StoredDomain>::new();
        fn entry<'a>(
            found: &'a mut std::collections::BTreeMap<String, StoredDomain>,
            stem: &str,
        ) -> &'a mut StoredDomain {
            found
                .entry(stem.to_owned())
                .or_insert_with(|| StoredDomain {
                    stem: stem.to_owned(),
                    config: None,
                    autostart: false,
                    status: None,
                })
        }
        for (stem, text) in read_files(&self.config_dir, ".xml")? {
            entry(&mut found, &stem).config = Some(text);
        }
        for (stem, text) in read_files(&self.status_dir, ".status")? {
            entry(&mut found, &stem).status = Some(text);
        }
        for (stem, _) in read_files(&self.autostart_dir, "")? {
            if let Some(domain) = found.get_mut(&stem) {
                domain.autostart = true;
            }
        }
        Ok(found.into_values().collect())
    }
}

/// (name without suffix, contents) of every regular file in `dir` ending in `suffix`.
fn read_files(dir: &Path, suffix: &str) -> Result<Vec<(String, String)>> {
    let read = || -> io::Result<Vec<(String, String)>> {
        let mut files = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name.starts_with('.') || !entry.file_type()?.is_file() {
                continue;
            }
            let Some(name) = file_name.strip_suffix(suffix) else {
                continue;
            };
            let text = if suffix.is_empty() {
                String::new()
            } else {
                fs::read_to_string(entry.path())?
            };
            files.push((name.to_owned(), text));
        }
        Ok(files)
    };
    read().map_err(|e| DomainError::storage("read", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_autostart_and_status_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state"), &dir.path().join("run")).unwrap();
        store.save_config("web", "<domain/>").unwrap();
        store.set_autostart("web", true).unwrap();
        store
            .save_status("tmp", "state=running\n<domain/>")
            .unwrap();
        let all = store.load_all().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].stem, "tmp");
        assert!(all[0].config.is_none() && all[0].status.is_some());
        assert_eq!(all[1].stem, "web");
        assert!(all[1].autostart && all[1].config.is_some());
        store.remove_config("web").unwrap();
        store.remove_status("tmp").unwrap();
        assert!(store.load_all().unwrap().is_empty());
    }

    #[test]
    fn status_headers_are_rewritten_in_place_only_over_our_own_layout() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), &dir.path().join("r")).unwrap();
        let header = |state: &str| format!("{:<31}\n", format!("state={state}"));
        // Nothing written by this store yet: refused, nothing created.
        assert!(!store.save_status_header("vm", &header("paused")).unwrap());
        assert!(store.load_all().unwrap().is_empty());
        store
            .save_status("vm", &format!("{}<domain/>", header("running")))
            .unwrap();
        let inode = |store: &Store| {
            use std::os::unix::fs::MetadataExt;
            fs::metadata(store.status_path("vm")).unwrap().ino()
        };
        let before = inode(&store);
        assert!(store.save_status_header("vm", &header("paused")).unwrap());
        let all = store.load_all().unwrap();
        assert_eq!(
            all[0].status.as_deref(),
            Some(format!("{}<domain/>", header("paused")).as_str())
        );
        assert_eq!(inode(&store), before, "the header is written in place");
        // Another length would overwrite the XML: refused.
        assert!(!store.save_status_header("vm", "state=running\n").unwrap());
        // A new store (a restarted service) knows nothing of the file's layout.
        let reopened = Store::open(&dir.path().join("s"), &dir.path().join("r")).unwrap();
        assert!(
            !reopened
                .save_status_header("vm", &header("running"))
                .unwrap()
        );
        store.remove_status("vm").unwrap();
        assert!(!store.save_status_header("vm", &header("paused")).unwrap());
        assert!(store.load_all().unwrap().is_empty());
    }

    #[test]
    fn long_and_dot_names_get_safe_file_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), &dir.path().join("r")).unwrap();
        let long = "n".repeat(256);
        for name in [long.as_str(), ".hidden", "~tilde", ".a.tmp-1-2"] {
            let stem = file_stem(name);
            assert!(
                stem.len() < 100 && !stem.starts_with('.'),
                "{name} → {stem}"
            );
            store.save_config(name, "<domain/>").unwrap();
            store.set_autostart(name, true).unwrap();
        }
        assert_eq!(file_stem("web"), "web");
        let reopened = Store::open(&dir.path().join("s"), &dir.path().join("r")).unwrap();
        let all = reopened.load_all().unwrap();
        assert_eq!(all.len(), 4, "every config survives a reopen: {all:?}");
        assert!(all.iter().all(|d| d.autostart && d.config.is_some()));
    }

    #[test]
    fn broken_configs_are_moved_aside_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), &dir.path().join("r")).unwrap();
        store.save_config("bad", "<not-a-domain/>").unwrap();
        let moved = store.quarantine("bad").unwrap();
        assert_eq!(fs::read_to_string(moved).unwrap(), "<not-a-domain/>");
        assert!(store.load_all().unwrap().is_empty());
    }

    #[test]
    fn boot_is_claimed_once_per_boot() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), &dir.path().join("r")).unwrap();
        assert!(store.claim_boot().unwrap());
        assert!(!store.claim_boot().unwrap());
        // A marker from another boot: this is a new boot.
        fs::write(dir.path().join("r/autostarted"), "some-other-boot\n").unwrap();
        assert!(store.claim_boot().unwrap());
    }
}
