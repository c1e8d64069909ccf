//! libvirt's network lifecycle (`bridge_driver.c`'s networkDefineXML, networkCreateXML,
//! networkUndefine, networkCreate, networkDestroy, networkSetAutostart) over the shared
//! list, with the runtime doing the host's part.

use std::sync::Arc;

use virtplane_common::names::validate_name;

use super::list::Reserved;
use super::{Core, NetworkObj, Outcome, Snapshot};
use crate::error::{NetworkError, Result};
use crate::model::{Lifecycle, NetworkRef, Summary};
use crate::xml::{NetworkDef, assign_bridge_name, assign_mac};

impl Core {
    pub(super) async fn define_network(&self, mut def: NetworkDef) -> Result<(Summary, bool)> {
        check_name(&def)?;
        let _placement = self.placement.lock().await;
        loop {
            match self.networks.reserve(&def)? {
                Reserved::New(object, _job) => {
                    self.assign_names(&mut def)?;
                    let old = object.snapshot();
                    let mut next = (*old).clone();
                    next.def = Arc::new(def);
                    next.persistent = true;
                    next.visible = true;
                    let summary = next.summary();
                    let outcome = Outcome::Update(next, vec![Lifecycle::Defined]);
                    return match self.commit(&object, &old, outcome).await {
                        Ok(()) => Ok((summary, false)),
                        Err(error) => {
                            self.networks.remove(&object);
                            Err(error)
                        }
                    };
                }
                Reserved::Existing(object) => {
                    let _job = object.begin_job().await;
                    let Some(old) = usable(&object) else {
                        continue;
                    };
                    same_uuid(&old, &def)?;
                    self.assign_names(&mut def)?;
                    let mut next = (*old).clone();
                    let def = Arc::new(def);
                    if old.active {
                        // The running network keeps its live definition until restarted.
                        next.next_def = Some(def);
                    } else {
                        next.def = def;
                    }
                    next.persistent = true;
                    let summary = next.summary();
                    self.commit(
                        &object,
                        &old,
                        Outcome::Update(next, vec![Lifecycle::Defined]),
                    )
                    .await?;
                    return Ok((summary, true));
                }
            }
        }
    }

    pub(super) async fn create_network(&self, mut def: NetworkDef) -> Result<Summary> {
        check_name(&def)?;
        let _placement = self.placement.lock().await;
        loop {
            match self.networks.reserve(&def)? {
                Reserved::New(object, _job) => {
                    let result = async {
                        self.assign_names(&mut def)?;
                        self.check_subnets(&def)?;
                        let old = object.snapshot();
                        let mut next = (*old).clone();
                        next.def = Arc::new(def);
                        next.visible = true;
                        self.started(&object, &old, next).await
                    }
                    .await;
                    if result.is_err() {
                        self.networks.remove(&object);
                    }
                    return result;
                }
                Reserved::Existing(object) => {
                    let _job = object.begin_job().await;
                    let Some(old) = usable(&object) else {
                        continue;
                    };
                    same_uuid(&old, &def)?;
                    if old.active {
                        return Err(NetworkError::OperationInvalid(format!(
                            "network is already active as '{}'",
                            old.name()
                        )));
                    }
                    self.assign_names(&mut def)?;
                    self.check_subnets(&def)?;
                    // An inactive persistent network runs the given XML; its config stays.
                    let mut next = (*old).clone();
                    next.def = Arc::new(def);
                    next.next_def = Some(old.def.clone());
                    return self.started(&object, &old, next).await;
                }
            }
        }
    }

    pub(super) async fn undefine_network(&self, network: &NetworkRef) -> Result<()> {
        let locked = self.begin(network).await?;
        let old = &locked.old;
        if !old.persistent {
            return Err(NetworkError::OperationInvalid(format!(
                "can't undefine transient network '{}'",
                old.name()
            )));
        }
        let outcome = if old.active {
            let mut next = (**old).clone();
            next.persistent = false;
            next.next_def = None;
            next.autostart = false;
            Outcome::Update(next, vec![Lifecycle::Undefined])
        } else {
            Outcome::Remove(vec![Lifecycle::Undefined])
        };
        self.commit(&locked.object, old, outcome).await
    }

    pub(super) async fn start_network(&self, network: &NetworkRef) -> Result<Summary> {
        let _placement = self.placement.lock().await;
        let locked = self.begin(network).await?;
        let old = &locked.old;
        if old.active {
            return Err(NetworkError::OperationInvalid(format!(
                "network '{}' is already active",
                old.name()
            )));
        }
        self.check_subnets(&old.def)?;
        let mut next = (**old).clone();
        next.next_def = old.persistent.then(|| old.def.clone());
        self.started(&locked.object, old, next).await
    }

    /// Runs `next` (inactive, with the definition to start) on the host and commits it
    /// active; a failed commit stops it again.
    async fn started(
        &self,
        object: &Arc<NetworkObj>,
        old: &Snapshot,
        mut next: Snapshot,
    ) -> Result<Summary> {
        next.active = true;
        next.ports = Arc::default();
        self.runtime.start(&next.def).await?;
        let def = next.def.clone();
        let summary = next.summary();
        if let Err(error) = self
            .commit(object, old, Outcome::Update(next, vec![Lifecycle::Started]))
            .await
        {
            if let Err(stop) = self.runtime.stop(&def).await {
                tracing::error!(network = %def.name, error = %stop, "could not undo a start whose files failed");
            }
            return Err(error);
        }
        Ok(summary)
    }

    pub(super) async fn destroy_network(&self, network: &NetworkRef) -> Result<()> {
        let locked = self.begin(network).await?;
        let old = &locked.old;
        if !old.active {
            return Err(NetworkError::not_active(old.name()));
        }
        self.runtime.stop(&old.def).await?;
        self.commit(&locked.object, old, stopped(old)).await
    }

    pub(super) async fn set_network_autostart(
        &self,
        network: &NetworkRef,
        autostart: bool,
    ) -> Result<()> {
        let locked = self.begin(network).await?;
        let old = &locked.old;
        if !old.persistent {
            return Err(NetworkError::OperationInvalid(format!(
                "cannot set autostart for transient network '{}'",
                old.name()
            )));
        }
        let mut next = (**old).clone();
        next.autostart = autostart;
        self.commit(&locked.object, old, Outcome::Update(next, Vec::new()))
            .await
    }

    /// libvirt's define-time defaults and checks: a bridge name (`virbrN`) unless given,
    /// refused when another network has it; a bridge MAC.
    fn assign_names(&self, def: &mut NetworkDef) -> Result<()> {
        if !def.has_own_bridge() {
            return Ok(());
        }
        let taken = self.networks.bridges_in_use(&def.name);
        if let Some(bridge) = def.bridge_name()
            && taken.contains(bridge)
        {
            return Err(NetworkError::InUse(format!(
                "bridge name '{bridge}' already in use."
            )));
        }
        let runtime = self.runtime.clone();
        assign_bridge_name(def, &|name| {
            taken.contains(name) || runtime.interface_exists(name)
        });
        if def.bridge_name().is_none() {
            return Err(NetworkError::InUse(format!(
                "no free bridge name for network '{}': every name of its template is in use",
                def.name
            )));
        }
        assign_mac(def);
        Ok(())
    }

    /// Refuses to run `def` when one of its subnets overlaps an active network's: guests
    /// of both would share addresses and routes (libvirt's networkCheckRouteCollision sees
    /// the other network's route on the host).
    fn check_subnets(&self, def: &NetworkDef) -> Result<()> {
        for other in self.networks.snapshots() {
            if !other.active || other.name() == def.name {
                continue;
            }
            if let Some((ours, theirs)) = def.subnet_overlap(&other.def) {
                return Err(NetworkError::InUse(format!(
                    "network '{}' cannot start: its subnet {ours} overlaps {theirs} of active \
                     network '{}'",
                    def.name,
                    other.name()
                )));
            }
        }
        Ok(())
    }
}

/// The outcome of stopping: a persistent network goes back to its config without ports,
/// a transient one disappears.
pub(super) fn stopped(old: &Snapshot) -> Outcome {
    if !old.persistent {
        return Outcome::Remove(vec![Lifecycle::Stopped]);
    }
    let mut next = old.clone();
    next.def = old.next_def.clone().unwrap_or_else(|| old.def.clone());
    next.next_def = None;
    next.active = false;
    next.ports = Arc::default();
    Outcome::Update(next, vec![Lifecycle::Stopped])
}

/// The snapshot of a network whose job lock was just taken, unless it left the list or is
/// still only reserved (then the caller looks again).
fn usable(object: &NetworkObj) -> Option<Arc<Snapshot>> {
    let snapshot = object.snapshot();
    (!snapshot.removed && snapshot.visible).then_some(snapshot)
}

fn same_uuid(old: &Snapshot, def: &NetworkDef) -> Result<()> {
    if old.def.uuid != def.uuid {
        return Err(NetworkError::NameTaken {
            name: def.name.clone(),
            uuid: old.def.uuid.clone(),
        });
    }
    Ok(())
}

/// Network names become file names: the object name rules every service shares.
fn check_name(def: &NetworkDef) -> Result<()> {
    validate_name(&def.name)
        .map_err(|e| NetworkError::InvalidArg(format!("network name '{}': {e}", def.name)))
}
