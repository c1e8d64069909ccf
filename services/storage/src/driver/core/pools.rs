//! libvirt's pool lifecycle (`storage_driver.c`'s storagePoolDefineXML, storagePoolCreateXML,
//! storagePoolBuild, storagePoolCreate, storagePoolDestroy, storagePoolDelete,
//! storagePoolUndefine, storagePoolSetAutostart, storagePoolRefresh) over the shared list,
//! with the backend doing the host's part.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::list::Reserved;
use super::{Core, PoolObj, Snapshot};
use crate::driver::backend::Scan;
use crate::error::{Result, StorageError};
use crate::model::{BuildFlags, Lifecycle, PoolRef, PoolSummary};
use crate::xml::PoolDef;

impl Core {
    pub(super) async fn define(&self, mut def: PoolDef) -> Result<(PoolSummary, bool)> {
        self.prepare(&mut def)?;
        loop {
            match self.pools.reserve(&def)? {
                Reserved::New(object, _job) => {
                    let result = async {
                        self.check_target_free(&def)?;
                        let old = object.snapshot();
                        let mut next = (*old).clone();
                        next.def = Arc::new(def);
                        next.persistent = true;
                        next.visible = true;
                        self.persist(&old, &next).await?;
                        let summary = next.summary();
                        self.announce(&next, None, Lifecycle::Defined);
                        object.publish(next);
                        Ok((summary, false))
                    }
                    .await;
                    if result.is_err() {
                        self.pools.remove(&object);
                    }
                    return result;
                }
                Reserved::Existing(object) => {
                    let _job = object.begin_job().await;
                    let Some(old) = usable(&object) else {
                        continue;
                    };
                    same_uuid(&old, &def)?;
                    self.check_target_free(&def)?;
                    let mut next = (*old).clone();
                    let def = Arc::new(def);
                    if old.active {
                        // The running pool keeps its live definition until restarted.
                        next.next_def = Some(def);
                    } else {
                        next.def = def;
                    }
                    next.persistent = true;
                    self.persist(&old, &next).await?;
                    let summary = next.summary();
                    self.announce(&next, None, Lifecycle::Defined);
                    object.publish(next);
                    return Ok((summary, true));
                }
            }
        }
    }

    pub(super) async fn create(
        &self,
        mut def: PoolDef,
        build: Option<BuildFlags>,
    ) -> Result<PoolSummary> {
        self.prepare(&mut def)?;
        loop {
            match self.pools.reserve(&def)? {
                Reserved::New(object, _job) => {
                    let result = async {
                        self.check_target_free(&def)?;
                        let old = object.snapshot();
                        let mut next = (*old).clone();
                        next.def = Arc::new(def);
                        next.visible = true;
                        self.run(&object, &old, next, build).await
                    }
                    .await;
                    if result.is_err() {
                        self.pools.remove(&object);
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
                        return Err(StorageError::OperationInvalid(format!(
                            "storage pool '{}' is already active",
                            old.name()
                        )));
                    }
                    self.check_target_free(&def)?;
                    // An inactive persistent pool runs the given XML; its config stays.
                    let mut next = (*old).clone();
                    next.def = Arc::new(def);
                    next.next_def = Some(old.def.clone());
                    return self.run(&object, &old, next, build).await;
                }
            }
        }
    }

    pub(super) async fn build(&self, pool: &PoolRef, flags: BuildFlags) -> Result<()> {
        check_build_flags(flags)?;
        let locked = self.begin(pool).await?;
        if locked.old.active {
            return Err(StorageError::OperationInvalid(format!(
                "storage pool '{}' is already active",
                locked.old.name()
            )));
        }
        self.backend.build(&locked.old.def, flags).await
    }

    pub(super) async fn start(
        &self,
        pool: &PoolRef,
        build: Option<BuildFlags>,
    ) -> Result<PoolSummary> {
        let locked = self.begin(pool).await?;
        let old = &locked.old;
        if old.active {
            return Err(StorageError::OperationInvalid(format!(
                "storage pool '{}' is already active",
                old.name()
            )));
        }
        let next = (**old).clone();
        self.run(&locked.object, old, next, build).await
    }

    /// Builds (if asked) and starts `next` (inactive, its definition the one to run), then
    /// records it active with what the backend found.
    async fn run(
        &self,
        object: &Arc<PoolObj>,
        old: &Snapshot,
        mut next: Snapshot,
        build: Option<BuildFlags>,
    ) -> Result<PoolSummary> {
        if let Some(flags) = build {
            check_build_flags(flags)?;
            self.backend.build(&next.def, flags).await?;
        }
        let scan = self.backend.start(&next.def).await?;
        next.active = true;
        apply_scan(&mut next, scan);
        if let Err(error) = self.persist(old, &next).await {
            if let Err(undo) = self.backend.stop(&next.def).await {
                tracing::error!(pool = %next.name(), %undo, "could not undo a start");
            }
            return Err(error);
        }
        let summary = next.summary();
        self.announce(&next, None, Lifecycle::Started);
        object.publish(next);
        Ok(summary)
    }

    pub(super) async fn destroy(&self, pool: &PoolRef) -> Result<()> {
        let locked = self.begin(pool).await?;
        let old = &locked.old;
        if !old.active {
            return Err(StorageError::not_active(old.name()));
        }
        self.backend.stop(&old.def).await?;
        if old.persistent {
            let next = old.stopped();
            self.persist(old, &next).await?;
            self.announce(&next, None, Lifecycle::Stopped);
            locked.object.publish(next);
        } else {
            self.forget(old).await?;
            self.pools.remove(&locked.object);
            self.announce(old, None, Lifecycle::Stopped);
        }
        Ok(())
    }

    pub(super) async fn delete(&self, pool: &PoolRef) -> Result<()> {
        let locked = self.begin(pool).await?;
        let old = &locked.old;
        if old.active {
            return Err(StorageError::OperationInvalid(format!(
                "storage pool '{}' is still active",
                old.name()
            )));
        }
        self.backend.delete(&old.def).await?;
        self.announce(old, None, Lifecycle::Deleted);
        Ok(())
    }

    pub(super) async fn undefine(&self, pool: &PoolRef) -> Result<()> {
        let locked = self.begin(pool).await?;
        let old = &locked.old;
        if old.active {
            return Err(StorageError::OperationInvalid(format!(
                "storage pool '{}' is still active",
                old.name()
            )));
        }
        if !old.persistent {
            return Err(StorageError::OperationInvalid(format!(
                "can't undefine transient storage pool '{}'",
                old.name()
            )));
        }
        self.forget(old).await?;
        self.pools.remove(&locked.object);
        self.announce(old, None, Lifecycle::Undefined);
        Ok(())
    }

    pub(super) async fn set_autostart(&self, pool: &PoolRef, autostart: bool) -> Result<()> {
        let locked = self.begin(pool).await?;
        let old = &locked.old;
        if !old.persistent {
            return Err(StorageError::OperationInvalid(format!(
                "cannot set autostart for transient storage pool '{}'",
                old.name()
            )));
        }
        if old.autostart == autostart {
            return Ok(());
        }
        let mut next = (**old).clone();
        next.autostart = autostart;
        self.persist(old, &next).await?;
        locked.object.publish(next);
        Ok(())
    }

    pub(super) async fn refresh(&self, pool: &PoolRef) -> Result<()> {
        let locked = self.begin(pool).await?;
        let old = &locked.old;
        if !old.active {
            return Err(StorageError::not_active(old.name()));
        }
        let scan = self.backend.refresh(&old.def).await?;
        let mut next = (**old).clone();
        apply_scan(&mut next, scan);
        self.announce(&next, None, Lifecycle::Refreshed);
        locked.object.publish(next);
        Ok(())
    }

    /// Checks a new definition and gives it a UUID if it has none: the UUID of the pool of
    /// that name when there is one (a redefinition without `<uuid>`), else a new one.
    fn prepare(&self, def: &mut PoolDef) -> Result<()> {
        self.backend.check_pool(def)?;
        if def.uuid.is_none() {
            let existing = self
                .pools
                .find(&PoolRef::Name(def.name.clone()))
                .ok()
                .map(|object| object.snapshot().uuid().to_owned());
            def.uuid = Some(existing.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()));
        }
        Ok(())
    }

    /// libvirt's virStoragePoolObjSourceFindDuplicate for directory pools: two pools may not
    /// share a target directory.
    fn check_target_free(&self, def: &PoolDef) -> Result<()> {
        let Some(path) = def.target.as_ref().and_then(|t| t.path.as_deref()) else {
            return Ok(());
        };
        let path = path.trim_end_matches('/');
        for other in self.pools.snapshots() {
            if other.name() == def.name {
                continue;
            }
            let uses = std::iter::once(&other.def)
                .chain(other.next_def.as_ref())
                .filter_map(|d| d.target.as_ref().and_then(|t| t.path.as_deref()))
                .any(|p| p.trim_end_matches('/') == path);
            if uses {
                return Err(StorageError::TargetTaken {
                    pool: other.name().to_owned(),
                    path: path.to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// Records what a scan found in `next`.
pub(super) fn apply_scan(next: &mut Snapshot, scan: Scan) {
    next.sizes = scan.sizes;
    next.volumes = Arc::new(
        scan.volumes
            .into_iter()
            .map(|v| (v.def.name.clone(), Arc::new(v)))
            .collect::<BTreeMap<_, _>>(),
    );
}

fn check_build_flags(flags: BuildFlags) -> Result<()> {
    if flags.overwrite && flags.no_overwrite {
        return Err(StorageError::InvalidArg(
            "--overwrite and --no-overwrite are mutually exclusive".into(),
        ));
    }
    Ok(())
}

/// The snapshot of an object whose job lock we hold, unless it was removed meanwhile.
fn usable(object: &Arc<PoolObj>) -> Option<Arc<Snapshot>> {
    let snapshot = object.snapshot();
    (!snapshot.removed).then_some(snapshot)
}

/// A redefinition must keep the UUID (libvirt: "pool 'x' is already defined with uuid …").
fn same_uuid(old: &Snapshot, def: &PoolDef) -> Result<()> {
    if old.visible && def.uuid.as_deref() != Some(old.uuid()) {
        return Err(StorageError::NameTaken {
            name: def.name.clone(),
            uuid: old.uuid().to_owned(),
        });
    }
    Ok(())
}
