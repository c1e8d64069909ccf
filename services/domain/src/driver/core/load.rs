//! Loading a driver's domains from disk at start-up.

use super::status::Status;
use super::*;
use crate::persist::file_stem;

impl Core {
    /// Reads every stored domain. A config that cannot be used (unparsable, stored under
    /// another name's file, or repeating another's UUID) is moved to `domains/broken/` and
    /// reported: nothing the user wrote is deleted or later overwritten. After a host reboot
    /// (`new_boot`) the guests are gone (they died with the host): runtime status is
    /// dropped, transient domains vanish and persistent ones are shut off.
    pub fn load(&self, new_boot: bool) -> Result<()> {
        let mut max_id = 0;
        for stored in self.store.load_all()? {
            let stem = stored.stem.clone();
            let config = match stored.config.as_deref().map(parse_domain).transpose() {
                Ok(config) => config.map(Arc::new),
                Err(error) => {
                    self.set_aside(&stem, &error.to_string());
                    continue;
                }
            };
            if let Some(def) = &config {
                if file_stem(&def.name) != stem {
                    self.set_aside(&stem, &format!("it names domain '{}'", def.name));
                    continue;
                }
                if self
                    .domains
                    .find(&DomainRef::Uuid(def.uuid.clone()))
                    .is_ok()
                {
                    self.set_aside(&stem, &format!("uuid {} is already used", def.uuid));
                    continue;
                }
            }
            // After a reboot a status file is not even read: it is runtime state written
            // without fsync, so a power loss may have left it empty.
            if new_boot && stored.status.is_some() {
                let name = config.as_ref().map_or(stem.as_str(), |d| d.name.as_str());
                tracing::info!(domain = %name, "host rebooted since the domain ran: it is shut off");
                self.store.remove_status_file(&stem)?;
            }
            let stored_status = stored.status.as_deref().filter(|_| !new_boot);
            let status = match stored_status.map(Status::decode).transpose() {
                Ok(status) => status,
                Err(error) => {
                    tracing::error!(domain = %stem, %error, "cannot read domain status; treating it as shut off");
                    None
                }
            };
            let live = match status
                .as_ref()
                .map(|s| parse_domain(&s.live_xml))
                .transpose()
            {
                Ok(live) => live.map(Arc::new),
                Err(error) => {
                    tracing::error!(domain = %stem, %error, "cannot read live XML; treating it as shut off");
                    None
                }
            };
            let snapshot = match (config, status, live) {
                (config, Some(status), Some(live)) if status.state.is_active() => {
                    max_id = max_id.max(status.id);
                    Snapshot {
                        def: live,
                        persistent: config.is_some(),
                        next_def: config,
                        state: status.state,
                        reason: status.reason,
                        id: status.id,
                        autostart: stored.autostart,
                        started_at: status.started_at,
                        run_taints: status.taints,
                        visible: true,
                        removed: false,
                    }
                }
                (Some(config), _, _) => Snapshot {
                    def: config,
                    next_def: None,
                    state: State::Shutoff,
                    reason: Reason::Unknown,
                    id: -1,
                    persistent: true,
                    autostart: stored.autostart,
                    started_at: None,
                    run_taints: Vec::new(),
                    visible: true,
                    removed: false,
                },
                _ => continue,
            };
            self.domains.insert_loaded(snapshot);
        }
        self.next_id.store(max_id + 1, Ordering::Relaxed);
        Ok(())
    }

    pub fn set_aside(&self, stem: &str, why: &str) {
        match self.store.quarantine(stem) {
            Ok(path) => {
                tracing::error!(file = %path.display(), "domain config cannot be loaded ({why}); moved aside for repair")
            }
            Err(error) => {
                tracing::error!(%error, "domain config {stem} cannot be loaded ({why}) nor moved aside")
            }
        }
    }
}
