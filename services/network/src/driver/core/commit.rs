//! How a change becomes durable and visible: the files written for the difference between
//! two snapshots (rolled back on failure), then the snapshot and its events.

use std::sync::Arc;
use std::time::SystemTime;

use super::{Core, NetworkObj, Outcome, Snapshot};
use crate::error::{NetworkError, Result};
use crate::model::{Event, Lifecycle};
use crate::persist::Store;
use crate::xml::{format_network, format_port};

/// The file operations one commit needs, computed before any is made.
#[derive(Debug, Default)]
struct Writes {
    config: Option<String>,
    drop_config: bool,
    autostart: Option<bool>,
    status: Option<String>,
    drop_status: bool,
    ports_saved: Vec<(String, String)>,
    ports_removed: Vec<String>,
}

impl Writes {
    fn between(old: &Snapshot, next: &Snapshot) -> Self {
        let mut writes = Writes::default();
        let config_changed = match (old.persistent_def(), next.persistent_def()) {
            (Some(a), Some(b)) => !Arc::ptr_eq(a, b) || !old.visible,
            (None, Some(_)) => true,
            _ => false,
        };
        if config_changed {
            writes.config = next.persistent_def().map(|def| format_network(def));
        }
        writes.drop_config = old.persistent && old.visible && !next.persistent;
        if next.persistent && old.autostart != next.autostart {
            writes.autostart = Some(next.autostart);
        }
        if next.active && (!old.active || !Arc::ptr_eq(&old.def, &next.def)) {
            writes.status = Some(format_network(&next.def));
        }
        writes.drop_status = old.active && !next.active;
        if next.active {
            let before = if old.active {
                old.ports.clone()
            } else {
                Arc::default()
            };
            for (uuid, port) in next.ports.iter() {
                if before.get(uuid).is_none_or(|p| !Arc::ptr_eq(p, port)) {
                    writes.ports_saved.push((uuid.clone(), format_port(port)));
                }
            }
            writes.ports_removed = before
                .keys()
                .filter(|uuid| !next.ports.contains_key(*uuid))
                .cloned()
                .collect();
        }
        writes
    }

    fn is_empty(&self) -> bool {
        self.config.is_none()
            && !self.drop_config
            && self.autostart.is_none()
            && self.status.is_none()
            && !self.drop_status
            && self.ports_saved.is_empty()
            && self.ports_removed.is_empty()
    }

    fn apply(self, store: &Store, name: &str) -> Result<()> {
        if let Some(xml) = &self.config {
            store.save_config(name, xml)?;
        }
        if self.drop_config {
            store.remove_config(name)?;
        }
        if let Some(on) = self.autostart {
            store.set_autostart(name, on)?;
        }
        if let Some(xml) = &self.status {
            store.save_status(name, xml)?;
        }
        if self.drop_status {
            store.remove_status(name)?;
        }
        for (uuid, xml) in &self.ports_saved {
            store.save_port(name, uuid, xml)?;
        }
        for uuid in &self.ports_removed {
            store.remove_port(name, uuid)?;
        }
        Ok(())
    }
}

impl Core {
    /// Writes what changed between `old` and the outcome, then makes it visible and
    /// announces its events. On a storage failure the files are put back as `old` had them
    /// and nothing is published.
    pub async fn commit(
        &self,
        object: &Arc<NetworkObj>,
        old: &Snapshot,
        outcome: Outcome,
    ) -> Result<()> {
        let store = self.store.clone();
        let name = old.def.name.clone();
        let uuid = old.def.uuid.clone();
        match outcome {
            Outcome::Remove(events) => {
                let (was_persistent, was_active) = (old.persistent && old.visible, old.active);
                let file_name = name.clone();
                run_blocking(move || {
                    if was_persistent {
                        store.remove_config(&file_name)?;
                    }
                    if was_active {
                        store.remove_status(&file_name)?;
                    }
                    Ok(())
                })
                .await
                .inspect_err(|_| self.restore(old))?;
                self.networks.remove(object);
                self.announce(&name, &uuid, events);
            }
            Outcome::Update(next, events) => {
                let writes = Writes::between(old, &next);
                if !writes.is_empty() {
                    let file_name = name.clone();
                    run_blocking(move || writes.apply(&store, &file_name))
                        .await
                        .inspect_err(|_| self.restore(old))?;
                }
                object.publish(next);
                self.announce(&name, &uuid, events);
            }
        }
        Ok(())
    }

    /// After a failed commit, puts the files back as `old` had them (best effort, logged),
    /// so disk and memory agree and a restart does not resurrect a change that was refused.
    pub fn restore(&self, old: &Snapshot) {
        let name = old.name();
        let result = (|| {
            match old.persistent_def().filter(|_| old.visible) {
                Some(def) => self.store.save_config(name, &format_network(def))?,
                None => self.store.remove_config(name)?,
            }
            self.store
                .set_autostart(name, old.autostart && old.persistent && old.visible)?;
            self.store.remove_status(name)?;
            if old.active && old.visible {
                self.store.save_status(name, &format_network(&old.def))?;
                for (uuid, port) in old.ports.iter() {
                    self.store.save_port(name, uuid, &format_port(port))?;
                }
            }
            Ok::<(), NetworkError>(())
        })();
        if let Err(error) = result {
            tracing::error!(network = %name, %error, "could not restore the files of a failed change");
        }
    }

    pub fn announce(&self, name: &str, uuid: &str, events: Vec<Lifecycle>) {
        for lifecycle in events {
            self.events.publish(|sequence| Event {
                sequence,
                time: SystemTime::now(),
                name: name.to_owned(),
                uuid: uuid.to_owned(),
                lifecycle,
            });
        }
    }
}

pub async fn run_blocking(work: impl FnOnce() -> Result<()> + Send + 'static) -> Result<()> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| NetworkError::Internal(format!("storage task failed: {e}")))?
}
