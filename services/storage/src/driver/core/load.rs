//! Loading a driver's pools from disk at start-up, and re-adopting the active ones: an
//! active pool is scanned again (its volumes are the files that are there now); one whose
//! target is gone is recorded inactive, as libvirt's storagePoolUpdateState does.

use std::sync::Arc;

use super::pools::apply_scan;
use super::{Core, Snapshot};
use crate::error::Result;
use crate::model::PoolRef;
use crate::xml::{PoolDef, parse_pool};
use virtplane_common::object_files::file_stem;

impl Core {
    /// Reads every stored pool. A config that cannot be used (unparsable, stored under
    /// another name's file, or repeating another's UUID) is moved to `pools/broken/` and
    /// reported: nothing the user wrote is deleted or later overwritten. After a host reboot
    /// (`new_boot`) nothing is active any more: transient pools vanish.
    pub(super) async fn load(&self, new_boot: bool) -> Result<()> {
        for stored in self.files.load_all()? {
            let stem = stored.stem.clone();
            let config = match stored.config.as_deref().map(parse_stored).transpose() {
                Ok(config) => config.map(Arc::new),
                Err(why) => {
                    self.set_aside(&stem, &why);
                    continue;
                }
            };
            if let Some(def) = &config {
                if file_stem(&def.name) != stem {
                    self.set_aside(&stem, &format!("it names pool '{}'", def.name));
                    continue;
                }
                let uuid = def.uuid.clone().unwrap_or_default();
                if self.pools.find(&PoolRef::Uuid(uuid.clone())).is_ok() {
                    self.set_aside(&stem, &format!("uuid {uuid} is already used"));
                    continue;
                }
            }
            let live = match (&stored.status, new_boot) {
                (Some(xml), false) => match parse_stored(xml) {
                    Ok(live) => Some(Arc::new(live)),
                    Err(why) => {
                        tracing::error!(pool = %stem, %why, "cannot read the live definition; treating the pool as inactive");
                        None
                    }
                },
                _ => None,
            };
            let mut snapshot = match (&config, &live) {
                (config, Some(live)) => Snapshot {
                    def: live.clone(),
                    persistent: config.is_some(),
                    next_def: config.clone(),
                    autostart: stored.autostart,
                    ..Snapshot::reserved(live.clone())
                },
                (Some(config), None) => Snapshot {
                    persistent: true,
                    autostart: stored.autostart,
                    ..Snapshot::reserved(config.clone())
                },
                (None, None) => {
                    // A transient pool after a reboot, or one whose status cannot be read.
                    self.files.remove_status_file(&stem)?;
                    continue;
                }
            };
            snapshot.visible = true;
            if live.is_some() {
                match self.backend.start(&snapshot.def).await {
                    Ok(scan) => {
                        snapshot.active = true;
                        apply_scan(&mut snapshot, scan);
                    }
                    Err(error) => {
                        tracing::error!(pool = %stem, %error, "an active pool cannot be used any more: it is inactive");
                        self.files.remove_status_file(&stem)?;
                        if snapshot.persistent {
                            snapshot = snapshot.stopped();
                        } else {
                            continue;
                        }
                    }
                }
            } else if stored.status.is_some() {
                self.files.remove_status_file(&stem)?;
            }
            self.pools.insert_loaded(snapshot);
        }
        Ok(())
    }

    fn set_aside(&self, stem: &str, why: &str) {
        match self.files.quarantine(stem) {
            Ok(to) => {
                tracing::error!(pool = %stem, %why, moved_to = %to.display(), "a stored pool config cannot be used; it was moved aside")
            }
            Err(error) => {
                tracing::error!(pool = %stem, %why, %error, "a stored pool config cannot be used, nor moved aside")
            }
        }
    }
}

/// A stored definition: it was written by this service, so it has a UUID.
fn parse_stored(xml: &str) -> Result<PoolDef, String> {
    let def = parse_pool(xml).map_err(|e| e.to_string())?;
    if def.uuid.is_none() {
        return Err("it has no <uuid>".into());
    }
    Ok(def)
}
