//! Where a service's named objects (networks, storage pools, …) live on disk, the layout
//! libvirt's drivers use:
//!
//! - `STATE/KIND/NAME.xml`: a persistent object's config.
//! - `STATE/autostart/NAME`: an empty marker, as libvirt's autostart symlink.
//! - `RUN/KIND/NAME.xml`: an active object's live definition; its presence is what makes
//!   the object active after a restart of the service.
//! - `RUN/autostarted`: the boot id once autostart ran, so a service restart does not start
//!   again what the user stopped (libvirt keeps its marker on tmpfs for the same effect).
//!
//! Every write is atomic ([`crate::store`]). Config and autostart writes are durable
//! (fsynced); run-dir files are runtime state, written without fsync: they only have to
//! survive a restart of the service, and a new boot discards them.
//!
//! NAME is the object's name when it makes a safe file name, else `~` and a hash of it
//! ([`file_stem`]): names may be longer than a file name may be and may start with a dot,
//! and dot files are temp files. The XML inside is the truth for the name.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::store;

/// Longest name used as a file name as it is.
const MAX_PLAIN_STEM: usize = 200;

/// A file operation that failed, with what was being done and to which path.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", .path.display())]
pub struct FileError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

fn failed(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FileError {
    let path = path.to_path_buf();
    move |source| FileError {
        action,
        path,
        source,
    }
}

/// The file name (without suffix) that holds an object's files.
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

/// One object as found on disk at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// The file stem the files were found under (see [`file_stem`]).
    pub stem: String,
    pub config: Option<String>,
    pub autostart: bool,
    /// The live definition, when the object was active.
    pub status: Option<String>,
}

/// The config, autostart and status files of one kind of object.
#[derive(Debug, Clone)]
pub struct ObjectFiles {
    config_dir: PathBuf,
    autostart_dir: PathBuf,
    status_dir: PathBuf,
    run_dir: PathBuf,
}

impl ObjectFiles {
    /// The files of objects of `kind` ("networks", "pools") below `state_dir` and `run_dir`.
    /// Creates the directories if needed and removes temp files a crash left behind.
    pub fn open(state_dir: &Path, run_dir: &Path, kind: &str) -> Result<Self, FileError> {
        let files = Self {
            config_dir: state_dir.join(kind),
            autostart_dir: state_dir.join("autostart"),
            status_dir: run_dir.join(kind),
            run_dir: run_dir.to_path_buf(),
        };
        for dir in [&files.config_dir, &files.autostart_dir, &files.status_dir] {
            fs::create_dir_all(dir).map_err(failed("create", dir))?;
            store::remove_stale_temp_files(dir).map_err(failed("clean", dir))?;
        }
        Ok(files)
    }

    fn config_path(&self, name: &str) -> PathBuf {
        self.config_dir.join(format!("{}.xml", file_stem(name)))
    }

    fn status_path(&self, name: &str) -> PathBuf {
        self.status_dir.join(format!("{}.xml", file_stem(name)))
    }

    pub fn save_config(&self, name: &str, xml: &str) -> Result<(), FileError> {
        let path = self.config_path(name);
        store::write_atomic(&path, xml.as_bytes()).map_err(failed("write", &path))
    }

    /// Removes the config and the autostart marker.
    pub fn remove_config(&self, name: &str) -> Result<(), FileError> {
        let path = self.config_path(name);
        store::remove_durable(&path).map_err(failed("remove", &path))?;
        self.set_autostart(name, false)
    }

    pub fn set_autostart(&self, name: &str, on: bool) -> Result<(), FileError> {
        let path = self.autostart_dir.join(file_stem(name));
        let result = if on {
            store::write_atomic(&path, b"")
        } else {
            store::remove_durable(&path).map(|_| ())
        };
        result.map_err(failed("update", &path))
    }

    /// Records an active object's live definition.
    pub fn save_status(&self, name: &str, live_xml: &str) -> Result<(), FileError> {
        let path = self.status_path(name);
        store::write_runtime(&path, live_xml.as_bytes()).map_err(failed("write", &path))
    }

    /// Forgets that an object is active.
    pub fn remove_status(&self, name: &str) -> Result<(), FileError> {
        self.remove_status_file(&file_stem(name))
    }

    /// [`ObjectFiles::remove_status`] by the stem found at load time.
    pub fn remove_status_file(&self, stem: &str) -> Result<(), FileError> {
        let path = self.status_dir.join(format!("{stem}.xml"));
        store::remove_runtime(&path)
            .map(|_| ())
            .map_err(failed("remove", &path))
    }

    /// Moves a config this version cannot load to `STATE/KIND/broken/`, so that nothing
    /// overwrites it and the user can repair it; returns where it went.
    pub fn quarantine(&self, stem: &str) -> Result<PathBuf, FileError> {
        let broken = self.config_dir.join("broken");
        fs::create_dir_all(&broken).map_err(failed("create", &broken))?;
        let from = self.config_dir.join(format!("{stem}.xml"));
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let to = broken.join(format!("{stem}.xml.{stamp}"));
        fs::rename(&from, &to).map_err(failed("move", &from))?;
        store::sync_dir(&self.config_dir).map_err(failed("sync", &self.config_dir))?;
        Ok(to)
    }

    /// True the first time it is called since the host booted (or for a new run dir): the
    /// marker `RUN/autostarted` holds the boot id, so autostart runs once per boot.
    pub fn claim_boot(&self) -> Result<bool, FileError> {
        let marker = self.run_dir.join("autostarted");
        let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .unwrap_or_default()
            .trim()
            .to_owned();
        if fs::read_to_string(&marker).is_ok_and(|seen| seen.trim() == boot_id) {
            return Ok(false);
        }
        store::write_atomic(&marker, format!("{boot_id}\n").as_bytes())
            .map_err(failed("write", &marker))?;
        Ok(true)
    }

    /// Every object with a config or a status file, sorted by stem.
    pub fn load_all(&self) -> Result<Vec<StoredObject>, FileError> {
        let mut found = BTreeMap::<String, StoredObject>::new();
        fn entry<'a>(
            found: &'a mut BTreeMap<String, StoredObject>,
            stem: &str,
        ) -> &'a mut StoredObject {
            found
                .entry(stem.to_owned())
                .or_insert_with(|| StoredObject {
                    stem: stem.to_owned(),
                    config: None,
                    autostart: false,
                    status: None,
                })
        }
        for (stem, text) in read_files(&self.config_dir, ".xml")? {
            entry(&mut found, &stem).config = Some(text);
        }
        for (stem, text) in read_files(&self.status_dir, ".xml")? {
            entry(&mut found, &stem).status = Some(text);
        }
        for (stem, _) in read_files(&self.autostart_dir, "")? {
            if let Some(object) = found.get_mut(&stem) {
                object.autostart = true;
            }
        }
        Ok(found.into_values().collect())
    }
}

/// (name without suffix, contents) of every regular, non-dot file in `dir` ending in
/// `suffix` (contents read only when `suffix` is not empty).
pub fn read_files(dir: &Path, suffix: &str) -> Result<Vec<(String, String)>, FileError> {
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
    read().map_err(failed("read", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> ObjectFiles {
        ObjectFiles::open(&dir.join("state"), &dir.join("run"), "pools").unwrap()
    }

    #[test]
    fn configs_autostart_and_status_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        files.save_config("default", "<pool/>").unwrap();
        files.set_autostart("default", true).unwrap();
        files.save_status("default", "<pool>live</pool>").unwrap();
        files.save_status("transient", "<pool>t</pool>").unwrap();
        let loaded = files.load_all().unwrap();
        assert_eq!(
            loaded,
            vec![
                StoredObject {
                    stem: "default".into(),
                    config: Some("<pool/>".into()),
                    autostart: true,
                    status: Some("<pool>live</pool>".into()),
                },
                StoredObject {
                    stem: "transient".into(),
                    config: None,
                    autostart: false,
                    status: Some("<pool>t</pool>".into()),
                },
            ]
        );
        files.remove_config("default").unwrap();
        files.remove_status("default").unwrap();
        files.remove_status("transient").unwrap();
        assert!(files.load_all().unwrap().is_empty());
    }

    #[test]
    fn awkward_names_get_hashed_stems() {
        assert_eq!(file_stem("default"), "default");
        for name in [".hidden", "~tilde", &"x".repeat(201)] {
            let stem = file_stem(name);
            assert!(stem.starts_with('~') && stem.len() == 41, "{name}: {stem}");
        }
    }

    #[test]
    fn a_broken_config_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        files.save_config("bad", "<pool").unwrap();
        let moved = files.quarantine("bad").unwrap();
        assert!(moved.starts_with(dir.path().join("state/pools/broken")));
        assert!(files.load_all().unwrap().is_empty());
    }

    #[test]
    fn autostart_runs_once_per_boot() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        assert!(files.claim_boot().unwrap());
        assert!(!files.claim_boot().unwrap());
    }

    #[test]
    fn errors_name_the_action_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("state");
        std::fs::write(&blocker, "a file where a directory should be").unwrap();
        let error = ObjectFiles::open(&blocker, &dir.path().join("run"), "pools").unwrap_err();
        assert!(error.to_string().starts_with("cannot create "), "{error}");
        assert!(error.to_string().contains("state/pools"), "{error}");
    }
}
