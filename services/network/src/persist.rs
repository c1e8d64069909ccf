//! Where networks live on disk (the shared layout of `virtplane_common::object_files`,
//! plus the ports).
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

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use virtplane_common::object_files::{FileError, ObjectFiles, read_files};
use virtplane_common::store;

pub use virtplane_common::object_files::file_stem;

use crate::error::{NetworkError, Result};

impl From<FileError> for NetworkError {
    fn from(error: FileError) -> Self {
        Self::storage(error.action, &error.path, error.source)
    }
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

/// The networks' files: the shared config/autostart/status layout, plus the ports.
#[derive(Debug, Clone)]
pub struct Store {
    files: ObjectFiles,
    ports_dir: PathBuf,
}

impl Store {
    /// Creates the directories if needed and removes temp files a crash left behind.
    pub fn open(state_dir: &Path, run_dir: &Path) -> Result<Self> {
        let files = ObjectFiles::open(state_dir, run_dir, "networks")?;
        let ports_dir = run_dir.join("ports");
        fs::create_dir_all(&ports_dir)
            .map_err(|e| NetworkError::storage("create", &ports_dir, e))?;
        store::remove_stale_temp_files(&ports_dir)
            .map_err(|e| NetworkError::storage("clean", &ports_dir, e))?;
        Ok(Self { files, ports_dir })
    }

    fn port_dir(&self, network: &str) -> PathBuf {
        self.ports_dir.join(file_stem(network))
    }

    pub fn save_config(&self, name: &str, xml: &str) -> Result<()> {
        Ok(self.files.save_config(name, xml)?)
    }

    /// Removes the config and the autostart marker.
    pub fn remove_config(&self, name: &str) -> Result<()> {
        Ok(self.files.remove_config(name)?)
    }

    pub fn set_autostart(&self, name: &str, on: bool) -> Result<()> {
        Ok(self.files.set_autostart(name, on)?)
    }

    /// Records an active network's live definition.
    pub fn save_status(&self, name: &str, live_xml: &str) -> Result<()> {
        Ok(self.files.save_status(name, live_xml)?)
    }

    /// Forgets that a network is active: its status and every port file.
    pub fn remove_status(&self, name: &str) -> Result<()> {
        self.remove_status_files(&file_stem(name))
    }

    /// [`Store::remove_status`] by the stem found at load time.
    pub fn remove_status_files(&self, stem: &str) -> Result<()> {
        self.files.remove_status_file(stem)?;
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
        Ok(self.files.quarantine(stem)?)
    }

    /// True the first time it is called since the host booted (or for a new run dir).
    pub fn claim_boot(&self) -> Result<bool> {
        Ok(self.files.claim_boot()?)
    }

    /// Every network with a config or a status file, sorted by stem, with its ports.
    pub fn load_all(&self) -> Result<Vec<StoredNetwork>> {
        let mut networks = Vec::new();
        for object in self.files.load_all()? {
            let dir = self.ports_dir.join(&object.stem);
            let mut ports = Vec::new();
            if dir.is_dir() {
                store::remove_stale_temp_files(&dir)
                    .map_err(|e| NetworkError::storage("clean", &dir, e))?;
                ports = read_files(&dir, ".xml")?;
                ports.sort();
            }
            networks.push(StoredNetwork {
                stem: object.stem,
                config: object.config,
                autostart: object.autostart,
                status: object.status,
                ports,
            });
        }
        Ok(networks)
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
