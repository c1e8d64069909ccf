//! Loading a driver's networks from disk at start-up, and re-adopting the active ones.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Core, Snapshot};
use crate::error::Result;
use crate::model::NetworkRef;
use crate::persist::file_stem;
use crate::xml::{NetworkDef, parse_network, parse_port};

impl Core {
    /// Reads every stored network. A config that cannot be used (unparsable, stored under
    /// another name's file, or repeating another's UUID) is moved to `networks/broken/` and
    /// reported: nothing the user wrote is deleted or later overwritten. After a host
    /// reboot (`new_boot`) nothing runs any more: the run-dir state is dropped, transient
    /// networks vanish and persistent ones are inactive.
    pub(super) fn load(&self, new_boot: bool) -> Result<()> {
        let mut active_stems = Vec::new();
        for stored in self.store.load_all()? {
            let stem = stored.stem.clone();
            let config = match stored.config.as_deref().map(parse_network).transpose() {
                Ok(config) => config.map(Arc::new),
                Err(error) => {
                    self.set_aside(&stem, &error.to_string());
                    continue;
                }
            };
            if let Some(def) = &config {
                if file_stem(&def.name) != stem {
                    self.set_aside(&stem, &format!("it names network '{}'", def.name));
                    continue;
                }
                if self
                    .networks
                    .find(&NetworkRef::Uuid(def.uuid.clone()))
                    .is_ok()
                {
                    self.set_aside(&stem, &format!("uuid {} is already used", def.uuid));
                    continue;
                }
            }
            let live = if new_boot {
                if stored.status.is_some() {
                    tracing::info!(network = %stem, "host rebooted since the network ran: it is inactive");
                }
                None
            } else {
                stored.status.as_deref().and_then(|xml| {
                    parse_live(xml, &stem, config.as_deref())
                        .inspect_err(|why| {
                            tracing::error!(network = %stem, %why, "cannot read the live definition; treating the network as inactive")
                        })
                        .ok()
                })
            };
            let snapshot = match (config, live) {
                (config, Some(live)) => {
                    let ports = self.load_ports(&stem, &live, &stored.ports);
                    active_stems.push(stem.clone());
                    Snapshot {
                        def: live,
                        persistent: config.is_some(),
                        next_def: config,
                        active: true,
                        autostart: stored.autostart,
                        ports: Arc::new(ports),
                        visible: true,
                        removed: false,
                    }
                }
                (Some(config), None) => {
                    if stored.status.is_some() {
                        self.store.remove_status_files(&stem)?;
                    }
                    Snapshot {
                        def: config,
                        next_def: None,
                        active: false,
                        persistent: true,
                        autostart: stored.autostart,
                        ports: Arc::default(),
                        visible: true,
                        removed: false,
                    }
                }
                (None, None) => {
                    self.store.remove_status_files(&stem)?;
                    continue;
                }
            };
            self.networks.insert_loaded(snapshot);
        }
        self.store.remove_orphan_ports(&active_stems)?;
        Ok(())
    }

    /// The ports recorded for an active network; unreadable ones are dropped and logged.
    fn load_ports(
        &self,
        stem: &str,
        live: &NetworkDef,
        files: &[(String, String)],
    ) -> BTreeMap<String, Arc<crate::xml::PortDef>> {
        let mut ports = BTreeMap::new();
        for (file, xml) in files {
            match parse_port(xml) {
                Ok(port) if port.uuid == *file => {
                    ports.insert(port.uuid.clone(), Arc::new(port));
                }
                outcome => {
                    let why = match outcome {
                        Err(error) => error.to_string(),
                        Ok(port) => format!("it holds port {}", port.uuid),
                    };
                    tracing::error!(network = %live.name, port = %file, %why, "dropping an unreadable port record");
                    if let Err(error) = self.store.remove_port_file(stem, file) {
                        tracing::error!(%error, "cannot remove the port record");
                    }
                }
            }
        }
        ports
    }

    /// Asks the runtime to re-adopt each active network; one that cannot run any more is
    /// recorded stopped (with its event), as it is on the host.
    pub(super) async fn adopt_active(&self) {
        for snapshot in self.networks.snapshots() {
            if !snapshot.active {
                continue;
            }
            let Err(error) = self.runtime.adopt(&snapshot.def).await else {
                continue;
            };
            tracing::error!(network = %snapshot.name(), %error, "an active network could not be re-adopted; it is stopped");
            let result = async {
                let locked = self
                    .begin(&NetworkRef::Name(snapshot.name().to_owned()))
                    .await?;
                let outcome = super::lifecycle::stopped(&locked.old);
                self.commit(&locked.object, &locked.old, outcome).await
            }
            .await;
            if let Err(error) = result {
                tracing::error!(network = %snapshot.name(), %error, "cannot record the network stopped");
            }
        }
    }

    fn set_aside(&self, stem: &str, why: &str) {
        match self.store.quarantine(stem) {
            Ok(path) => {
                tracing::error!(file = %path.display(), "network config cannot be loaded ({why}); moved aside for repair")
            }
            Err(error) => {
                tracing::error!(%error, "network config {stem} cannot be loaded ({why}) nor moved aside")
            }
        }
    }
}

/// An active network's live definition, which must be the same network as its config.
fn parse_live(
    xml: &str,
    stem: &str,
    config: Option<&NetworkDef>,
) -> std::result::Result<Arc<NetworkDef>, String> {
    let live = parse_network(xml).map_err(|e| e.to_string())?;
    if file_stem(&live.name) != stem {
        return Err(format!("it names network '{}'", live.name));
    }
    if let Some(config) = config
        && config.uuid != live.uuid
    {
        return Err(format!(
            "its uuid {} is not the config's {}",
            live.uuid, config.uuid
        ));
    }
    Ok(Arc::new(live))
}
