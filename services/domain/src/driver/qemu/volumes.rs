//! `<disk type='volume'>` on the qemu driver's hot-plug path (start and stop are in
//! `launch.rs` and `driver.rs`; the shared logic is `crate::driver::volumes`).
//!
//! A volume disk plugged into a running VM first gets its volume's lease, which says what
//! QEMU opens; the live definition keeps naming the volume. The lease goes again when the
//! plug fails, and when the disk is unplugged, unless another disk of the VM still uses the
//! same volume.

use super::driver::QemuDriver;
use super::vm::Vm;
use crate::driver::volumes::{self, ResolvedVolume, VolumeName};
use crate::error::{DomainError, Result};
use crate::xml::{Disk, DomainDef};

/// The lease a volume disk being hot-plugged holds, and what it opens.
pub(super) struct PluggedVolume {
    pub volume: VolumeName,
    pub resolved: ResolvedVolume,
}

impl QemuDriver {
    /// For `disk`, about to be plugged into `vm` (live definition `def`): the lease on its
    /// volume, with the volume's format filled into `disk`. `None` for other disks.
    pub(super) async fn lease_for_plug(
        &self,
        vm: &Vm,
        def: &DomainDef,
        disk: &mut Disk,
    ) -> Result<Option<PluggedVolume>> {
        let leased = self
            .volumes
            .acquire_one(def, vm.id, disk)
            .await
            .map_err(|e| {
                e.for_domain(&def.name, &format!("attach disk '{}' to", disk.target.dev))
            })?;
        Ok(leased.map(|(volume, resolved)| {
            volumes::with_format(disk, &resolved);
            PluggedVolume { volume, resolved }
        }))
    }

    /// The plug of `plugged` into `vm` (live definition `def`, without the disk) failed:
    /// its lease goes, unless another disk of the VM uses the volume.
    pub(super) async fn unlease_failed_plug(
        &self,
        vm: &Vm,
        def: &DomainDef,
        plugged: PluggedVolume,
    ) {
        self.volumes.release_one(def, vm.id, &plugged.volume).await;
    }

    /// `removed` was unplugged from the VM of run `id`, whose live definition is now `live`:
    /// the lease on its volume goes, unless another disk still uses it.
    pub(super) async fn unlease_unplugged(&self, id: i32, live: &DomainDef, removed: &Disk) {
        if let Ok(Some(volume)) = volumes::volume_of(removed) {
            self.volumes.release_one(live, id, &volume).await;
        }
    }
}

/// Disk `index` of the live definition `live` as QEMU opens it: with `plugged`, the volume
/// disk translated to its path; else the definition itself.
pub(super) fn opened_view<'a>(
    live: &'a DomainDef,
    index: usize,
    plugged: Option<&PluggedVolume>,
) -> Result<std::borrow::Cow<'a, DomainDef>> {
    let Some(plugged) = plugged else {
        return Ok(std::borrow::Cow::Borrowed(live));
    };
    let mut view = live.clone();
    let disk = view.devices.disks.get_mut(index).ok_or_else(|| {
        DomainError::Internal(format!("disk #{index} vanished from the definition"))
    })?;
    *disk = volumes::resolved_disk(disk, &plugged.resolved)
        .map_err(|e| e.for_domain(&live.name, "attach a disk to"))?;
    Ok(std::borrow::Cow::Owned(view))
}
