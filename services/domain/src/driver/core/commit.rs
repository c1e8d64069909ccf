//! How a change becomes durable and visible: the job lock, the files written for the
//! difference between two snapshots (rolled back on failure), then the snapshot and
//! its events.

use super::status::Status;
use super::*;

impl Core {
    /// Runs one change under the domain's job lock: decide, persist, publish, announce.
    pub async fn job<T>(
        &self,
        domain: &DomainRef,
        decide: impl FnOnce(&Snapshot) -> Result<(Outcome, T)>,
    ) -> Result<T> {
        let object = self.domains.find(domain)?;
        let _job = object.begin_job().await;
        let old = object.snapshot();
        if old.removed {
            return Err(DomainError::NotFound(domain.to_string()));
        }
        let (outcome, value) = decide(&old)?;
        self.commit(&object, &old, outcome).await?;
        Ok(value)
    }

    /// Writes what changed between `old` and the outcome, then makes it visible.
    pub async fn commit(
        &self,
        object: &Arc<DomainObj>,
        old: &Snapshot,
        outcome: Outcome,
    ) -> Result<()> {
        let store = self.store.clone();
        let name = old.def.name.clone();
        let uuid = old.def.uuid.clone();
        match outcome {
            Outcome::Remove(events) => {
                let (was_persistent, was_active) = (old.persistent && old.visible, old.is_active());
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
                self.domains.remove(object);
                self.announce(&name, &uuid, events);
            }
            Outcome::Update(next, events) => {
                let config_changed = match (old.persistent_def(), next.persistent_def()) {
                    (Some(a), Some(b)) => !Arc::ptr_eq(a, b) || !old.visible,
                    (None, Some(_)) => true,
                    _ => false,
                };
                let config: Option<String> = if config_changed {
                    next.persistent_def().map(|def| secure_xml(def))
                } else {
                    None
                };
                let drop_config = old.persistent && old.visible && !next.persistent;
                let autostart = (old.autostart != next.autostart).then_some(next.autostart);
                let status = if next.is_active() {
                    let changed = !old.is_active()
                        || old.state != next.state
                        || old.reason != next.reason
                        || old.persistent != next.persistent
                        || old.started_at != next.started_at
                        || old.run_taints != next.run_taints
                        || !Arc::ptr_eq(&old.def, &next.def);
                    changed.then_some(())
                } else {
                    None
                };
                let drop_status = old.is_active() && !next.is_active();
                // A change of state alone (suspend, resume) rewrites the status header in
                // place, here: a write of 256 bytes to the page cache costs less than the
                // hand-off to the blocking pool, and formatting the live XML is skipped.
                let header_only = config.is_none()
                    && !drop_config
                    && autostart.is_none()
                    && status.is_some()
                    && old.is_active()
                    && Arc::ptr_eq(&old.def, &next.def);
                if header_only
                    && self
                        .store
                        .save_status_header(&name, &status_header(&next))
                        .inspect_err(|_| self.restore(old))?
                {
                    object.publish(next);
                    self.announce(&name, &uuid, events);
                    return Ok(());
                }
                let status = status.map(|()| status_file(&next));
                let file_name = name.clone();
                run_blocking(move || {
                    if let Some(xml) = config {
                        store.save_config(&file_name, &xml)?;
                    }
                    if drop_config {
                        store.remove_config(&file_name)?;
                    }
                    if let Some(on) = autostart {
                        store.set_autostart(&file_name, on)?;
                    }
                    if let Some(status) = status {
                        store.save_status(&file_name, &status)?;
                    }
                    if drop_status {
                        store.remove_status(&file_name)?;
                    }
                    Ok(())
                })
                .await
                .inspect_err(|_| self.restore(old))?;
                object.publish(next);
                self.announce(&name, &uuid, events);
            }
        }
        Ok(())
    }

    /// After a failed commit, puts the files back as `old` had them (best effort, logged),
    /// so disk and memory agree and a restart does not resurrect a change that was refused.
    pub fn restore(&self, old: &Snapshot) {
        let name = &old.def.name;
        let result = (|| {
            match old.persistent_def().filter(|_| old.visible) {
                Some(def) => self.store.save_config(name, &secure_xml(def))?,
                None => self.store.remove_config(name)?,
            }
            self.store
                .set_autostart(name, old.autostart && old.persistent)?;
            if old.is_active() {
                self.store.save_status(name, &status_file(old))
            } else {
                self.store.remove_status(name)
            }
        })();
        if let Err(error) = result {
            tracing::error!(domain = %name, %error, "could not restore the files of a failed change");
        }
    }

    pub fn announce(&self, name: &str, uuid: &str, events: Vec<EventBody>) {
        for body in events {
            self.events.publish(|sequence| Event {
                sequence,
                time: SystemTime::now(),
                name: name.to_owned(),
                uuid: uuid.to_owned(),
                body,
            });
        }
    }
}

pub async fn run_blocking(work: impl FnOnce() -> Result<()> + Send + 'static) -> Result<()> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| DomainError::Internal(format!("storage task failed: {e}")))?
}

/// The runtime status file of an active domain's snapshot.
fn status_file(snapshot: &Snapshot) -> String {
    status_of(snapshot, secure_xml(&snapshot.def)).encode()
}

/// Only the header of [`status_file`], without formatting the live XML.
fn status_header(snapshot: &Snapshot) -> String {
    status_of(snapshot, String::new()).encode_header()
}

fn status_of(snapshot: &Snapshot, live_xml: String) -> Status {
    Status {
        state: snapshot.state,
        reason: snapshot.reason,
        id: snapshot.id,
        persistent: snapshot.persistent,
        started_at: snapshot.started_at,
        taints: snapshot.run_taints.clone(),
        live_xml,
    }
}
