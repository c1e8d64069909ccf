//! Where networks live on disk.
//!
//! - `STATE/networks/NAME.xml`: a persistent network's config.
//! - `STATE/autostart/NAME`: an empty marker, as libvirt's autostart symlink.
//! - `RUN/networks/NAME.xml`: an active network's live definition; its presence is what
//!   makes the network active after a restart of the service.
//! - `RUN/ports/NAME/UUID.xml`: the ports (`<networkport>`) of an active network.
//! - `RUN/autostarted`: the boot id once autostart ran, so a service restart does not start
//!   again what the user stopped (libvirt keeps its marker on tmpfs for the same effect).
//!
//! Every write is atomic (virtplane_common::store). Config and autostart writes are durable
//! (fsynced); run-dir files are runtime state, written without fsync: they only have to
//! survive a restart of the service, and a new boot discards them.
//!
//! NAME is the network name when it makes a safe file name, else `~` and a hash of it
//! ([`file_stem`]): names may be up to 256 bytes and start with a dot, file names may not
//! exceed 255 bytes, and dot files are temp files. The XML inside is the truth for the name.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use virtplane_common::store;

use crate::error::{NetworkError, Result};

/// Longest network name used as a file name as it is.
const MAX_PLAIN_STEM: usize = 200;

/// The file name (without suffix) that holds a network's files.
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

/// One network as found on disk at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredNetwork {
    /// The file stem the files were found under (see [`file_stem`]).
    pub stem: String,
    pub config: Option<String>,
    pub autostart: bool,
    /// The live definition, when the network was active.
    pub status: Option<String>,
    /// (file stem, XML) of each port file.
    pub ports: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Store {
    config_dir: PathBuf,
    autostart_dir: PathBuf,
    status_dir: PathBuf,
    ports_dir: PathBuf,
    run_dir: PathBuf,
}

impl Store {
    /// Creates the directories if needed and removes temp files a crash left behind.
    pub fn open(state_dir: &Path, run_dir: &Path) -> Result<Self> {
        let store = Self {
            config_dir: state_dir.join("networks"),
            autostart_dir: state_dir.join("autostart"),
            status_dir: run_dir.join("networks"),
            ports_dir: run_dir.join("ports"),
            run_dir: run_dir.to_path_buf(),
        };
        for dir in [
            &store.config_dir,
            &store.autostart_dir,
            &store.status_dir,
            &store.ports_dir,
        ] {
            fs::create_dir_all(dir).map_err(|e| NetworkError::storage("create", dir, e))?;
            store::remove_stale_temp_files(dir)
                .map_err(|e| NetworkError::storage("clean", dir, e))?;
        }
        Ok(store)
    }

    fn config_path(&self, name: &str) -> PathBuf {
        self.config_dir.join(format!("{}.xml", file_stem(name)))
    }

    fn status_path(&self, name: &str) -> PathBuf {
        self.status_dir.join(format!("{}.xml", file_stem(name)))
    }

    fn port_dir(&self, network: &str) -> PathBuf {
        self.ports_dir.join(file_stem(network))
    }

    pub fn save_config(&self, name: &str, xml: &str) -> Result<()> {
        let path = self.config_path(name);
        store::write_atomic(&path, xml.as_bytes())
            .map_err(|e| NetworkError::storage("write", &path, e))
    }

    /// Removes the config and the autostart marker.
    pub fn remove_config(&self, name: &str) -> Result<()> {
        let path = self.config_path(name);
        store::remove_durable(&path).map_err(|e| NetworkError::storage("remove", &path, e))?;
        self.set_autostart(name, false)
    }

    pub fn set_autostart(&self, name: &str, on: bool) -> Result<()> {
        let path = self.autostart_dir.join(file_stem(name));
        let result = if on {
            store::write_atomic(&path, b"")
        } else {
            store::remove_durable(&path).map(|_| ())
        };
        result.map_err(|e| NetworkError::storage("update", &path, e))
    }

    /// Records an active network's live definition.
    pub fn save_status(&self, name: &str, live_xml: &str) -> Result<()> {
        let path = self.status_path(name);
        store::write_runtime(&path, live_xml.as_bytes())
            .map_err(|e| NetworkError::storage("write", &path, e))
    }

    /// Forgets that a network is active: its status and every port file.
    pub fn remove_status(&self, name: &str) -> Result<()> {
        self.remove_status_files(&file_stem(name))
    }

    /// [`Store::remove_status`] by the stem found at load time.
    pub fn remove_status_files(&self, stem: &str) -> Result<()> {
        let path = self.status_dir.join(format!("{stem}.xml"));
        store::remove_runtime(&path).map_err(|e| NetworkError::storage("remove", &path, e))?;
        let ports = self.ports_dir.join(stem);
        match fs::remove_dir_all(&ports) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(NetworkError::storage("remove", &ports, error)),
        }
    }

    /// Records one port of an active network; `uuid` is canonical (the parser's).
    pub fn save_port(&self, network: &str, uuid: &str, xml: &str) -> Result<()> {
        let dir = self.port_dir(network);
        fs::create_dir_all(&dir).map_err(|e| NetworkError::storage("create", &dir, e))?;
        let path = dir.join(format!("{uuid}.xml"));
        store::write_runtime(&path, xml.as_bytes())
            .map_err(|e| NetworkError::storage("write", &path, e))
    }

    pub fn remove_port(&self, network: &str, uuid: &str) -> Result<()> {
        let path = self.port_dir(network).join(format!("{uuid}.xml"));
        store::remove_runtime(&path)
            .map(|_| ())
            .map_err(|e| NetworkError::storage("remove", &path, e))
    }

    /// Removes a port file found at load time that cannot be used.
    pub fn remove_port_file(&self, stem: &str, file: &str) -> Result<()> {
        let path = self.ports_dir.join(stem).join(format!("{file}.xml"));
        store::remove_runtime(&path)
            .map(|_| ())
            .map_err(|e| NetworkError::storage("remove", &path, e))
    }

    /// Moves a config this version cannot load to `STATE/networks/broken/`, so that nothing
    /// overwrites it and the user can repair it; returns where it went.
    pub fn quarantine(&self, stem: &str) -> Result<PathBuf> {
        let broken = self.config_dir.join("broken");
        fs::create_dir_all(&broken).map_err(|e| NetworkError::storage("create", &broken, e))?;
        let from = self.config_dir.join(format!("{stem}.xml"));
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let to = broken.join(format!("{stem}.xml.{stamp}"));
        fs::rename(&from, &to).map_err(|e| NetworkError::storage("move", &from, e))?;
        store::sync_dir(&self.config_dir)
            .map_err(|e| NetworkError::storage("sync", &self.config_dir, e))?;
        Ok(to)
    }

    /// True the first time it is called since the host booted (or for a new run dir): the
    /// marker `RUN/autostarted` holds the boot id, so autostart runs once per boot.
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
            .map_err(|e| NetworkError::storage("write", &marker, e))?;
        Ok(true)
    }

    /// Every network with a config or a status file, sorted by stem.
    pub fn load_all(&self) -> Result<Vec<StoredNetwork>> {
        let mut found = BTreeMap::<String, StoredNetwork>::new();
        fn entry<'a>(
            found: &'a mut BTreeMap<String, StoredNetwork>,
            stem: &str,
        ) -> &'a mut StoredNetwork {
            found
                .entry(stem.to_owned())
                .or_insert_with(|| StoredNetwork {
                    stem: stem.to_owned(),
                    config: None,
                    autostart: false,
                    status: None,
                    ports: Vec::new(),
                })
        }
        for (stem, text) in read_files(&self.config_dir, ".xml")? {
            entry(&mut found, &stem).config = Some(text);
        }
        for (stem, text) in read_files(&self.status_dir, ".xml")? {
            entry(&mut found, &stem).status = Some(text);
        }
        for (stem, _) in read_files(&self.autostart_dir, "")? {
            if let Some(network) = found.get_mut(&stem) {
                network.autostart = true;
            }
        }
        for (stem, network) in &mut found {
            let dir = self.ports_dir.join(stem);
            if dir.is_dir() {
                store::remove_stale_temp_files(&dir)
                    .map_err(|e| NetworkError::storage("clean", &dir, e))?;
                network.ports = read_files(&dir, ".xml")?;
                network.ports.sort();
            }
        }
        Ok(found.into_values().collect())
    }

    /// Port directories of networks that have no status file (left by a crash between
    /// removing the status and the ports): removed at load.
    pub fn remove_orphan_ports(&self, active_stems: &[String]) -> Result<()> {
        let entries = fs::read_dir(&self.ports_dir)
            .map_err(|e| NetworkError::storage("read", &self.ports_dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !active_stems.contains(&name) {
                let path = entry.path();
                fs::remove_dir_all(&path).map_err(|e| NetworkError::storage("remove", &path, e))?;
            }
        }
        Ok(())
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
    read().map_err(|e| NetworkError::storage("read", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> Store {
        Store::open(&dir.join("state"), &dir.join("run")).unwrap()
    }

    #[test]
    fn configs_autostart_status_and_ports_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        store.save_config("default", "<network/>").unwrap();
        store.set_autostart("default", true).unwrap();
        store
            .save_status("default", "<network>live</network>")
            .unwrap();
        store.save_port("default", "u-1", "<networkport/>").unwrap();
        store.save_status("temp", "<network/>").unwrap();
        let all = self::store(dir.path()).load_all().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].stem, "default");
        assert!(all[0].autostart && all[0].config.is_some());
        assert_eq!(all[0].status.as_deref(), Some("<network>live</network>"));
        assert_eq!(
            all[0].ports,
            vec![("u-1".to_owned(), "<networkport/>".to_owned())]
        );
        assert!(all[1].config.is_none() && all[1].status.is_some());
        store.remove_port("default", "u-1").unwrap();
        store.remove_status("default").unwrap();
        store.remove_status("temp").unwrap();
        store.remove_config("default").unwrap();
        assert!(store.load_all().unwrap().is_empty());
    }

    #[test]
    fn stopping_drops_the_ports_with_the_status() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        store.save_status("n", "<network/>").unwrap();
        store.save_port("n", "a", "<networkport/>").unwrap();
        store.remove_status("n").unwrap();
        assert!(!dir.path().join("run/ports/n").exists());
    }

    #[test]
    fn orphan_port_dirs_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        store.save_port("gone", "a", "<networkport/>").unwrap();
        store.save_port("kept", "b", "<networkport/>").unwrap();
        store.remove_orphan_ports(&["kept".to_owned()]).unwrap();
        assert!(!dir.path().join("run/ports/gone").exists());
        assert!(dir.path().join("run/ports/kept/b.xml").exists());
    }

    #[test]
    fn long_and_dot_names_get_safe_file_names() {
        let long = "n".repeat(256);
        for name in [long.as_str(), ".hidden", "~tilde"] {
            let stem = file_stem(name);
            assert!(
                stem.len() < 100 && !stem.starts_with('.'),
                "{name} → {stem}"
            );
        }
        assert_eq!(file_stem("default"), "default");
    }

    #[test]
    fn broken_configs_are_moved_aside_and_boot_is_claimed_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        store.save_config("bad", "<not-a-network/>").unwrap();
        let moved = store.quarantine("bad").unwrap();
        assert_eq!(fs::read_to_string(moved).unwrap(), "<not-a-network/>");
        assert!(store.load_all().unwrap().is_empty());
        assert!(store.claim_boot().unwrap());
        assert!(!store.claim_boot().unwrap());
    }
}
