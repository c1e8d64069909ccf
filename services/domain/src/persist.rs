//! Where domains live on disk.
//!
//! - `STATE/domains/NAME.xml`: the persistent config (secure form: passwords kept).
//! - `STATE/autostart/NAME`: an empty marker, as libvirt's autostart symlink.
//! - `RUN/domains/NAME.status`: a running domain's runtime state: one header line
//!   (`state=running reason=running-booted id=3 persistent=yes`) and its live XML.
//! - `RUN/autostarted`: written once autostart ran, so a service restart does not start
//!   again what the user shut down (libvirt's marker file does the same).
//!
//! Every write is atomic and durable (virtplane_common::store).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use virtplane_common::store;

use crate::error::{DomainError, Result};

/// One domain as found on disk at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDomain {
    pub name: String,
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
}

impl Store {
    /// Creates the directories if needed and removes temp files a crash left behind.
    pub fn open(state_dir: &Path, run_dir: &Path) -> Result<Self> {
        let store = Self {
            config_dir: state_dir.join("domains"),
            autostart_dir: state_dir.join("autostart"),
            status_dir: run_dir.join("domains"),
            run_dir: run_dir.to_path_buf(),
        };
        for dir in [&store.config_dir, &store.autostart_dir, &store.status_dir] {
            fs::create_dir_all(dir).map_err(|e| DomainError::storage("create", dir, e))?;
            store::remove_stale_temp_files(dir)
                .map_err(|e| DomainError::storage("clean", dir, e))?;
        }
        Ok(store)
    }

    fn config_path(&self, name: &str) -> PathBuf {
        self.config_dir.join(format!("{name}.xml"))
    }

    fn status_path(&self, name: &str) -> PathBuf {
        self.status_dir.join(format!("{name}.status"))
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
        let path = self.autostart_dir.join(name);
        let result = if on {
            store::write_atomic(&path, b"")
        } else {
            store::remove_durable(&path).map(|_| ())
        };
        result.map_err(|e| DomainError::storage("update", &path, e))
    }

    pub fn save_status(&self, name: &str, status: &str) -> Result<()> {
        let path = self.status_path(name);
        store::write_atomic(&path, status.as_bytes())
            .map_err(|e| DomainError::storage("write", &path, e))
    }

    pub fn remove_status(&self, name: &str) -> Result<()> {
        let path = self.status_path(name);
        store::remove_durable(&path)
            .map(|_| ())
            .map_err(|e| DomainError::storage("remove", &path, e))
    }

    /// True the first time it is called for this run dir (i.e. after a host boot).
    pub fn claim_autostart(&self) -> Result<bool> {
        let marker = self.run_dir.join("autostarted");
        if marker.exists() {
            return Ok(false);
        }
        store::write_atomic(&marker, b"").map_err(|e| DomainError::storage("write", &marker, e))?;
        Ok(true)
    }

    /// Every domain with a config or a status file.
    pub fn load_all(&self) -> Result<Vec<StoredDomain>> {
        let mut found = std::collections::BTreeMap::<String, StoredDomain>::new();
        let entry = |found: &mut std::collections::BTreeMap<String, StoredDomain>, name: &str| {
            found
                .entry(name.to_owned())
                .or_insert_with(|| StoredDomain {
                    name: name.to_owned(),
                    config: None,
                    autostart: false,
                    status: None,
                })
                .clone()
        };
        for (name, text) in read_files(&self.config_dir, ".xml")? {
            let mut domain = entry(&mut found, &name);
            domain.config = Some(text);
            found.insert(name, domain);
        }
        for (name, text) in read_files(&self.status_dir, ".status")? {
            let mut domain = entry(&mut found, &name);
            domain.status = Some(text);
            found.insert(name, domain);
        }
        for (name, _) in read_files(&self.autostart_dir, "")? {
            if let Some(domain) = found.get_mut(&name) {
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
        assert_eq!(all[0].name, "tmp");
        assert!(all[0].config.is_none() && all[0].status.is_some());
        assert_eq!(all[1].name, "web");
        assert!(all[1].autostart && all[1].config.is_some());
        store.remove_config("web").unwrap();
        store.remove_status("tmp").unwrap();
        assert!(store.load_all().unwrap().is_empty());
    }

    #[test]
    fn autostart_is_claimed_once_per_run_dir() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), &dir.path().join("r")).unwrap();
        assert!(store.claim_autostart().unwrap());
        assert!(!store.claim_autostart().unwrap());
    }
}
