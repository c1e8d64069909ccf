//! `<disk type='volume'>`: disks that name a volume of a storage pool
//! (`<source pool='default' volume='web.qcow2'/>`) instead of a path.
//!
//! The storage service owns volumes, so the domain service asks it, over gRPC
//! (`crate::storage_service`), for a lease on each such disk's volume when a domain starts
//! or the disk is hot-plugged; the answer says where the volume is and what format it has.
//! While the lease is held the storage service refuses to delete, wipe or shrink the volume
//! ("volume 'web.qcow2' in pool 'default' is in use by domain 'web'"). Leases are given back
//! when the VM stops, when the disk is unplugged, and after a service restart for VMs that
//! ended meanwhile. A lease is identified by (volume, domain UUID), so asking again is
//! harmless and the live definition alone says what to give back.
//!
//! The live definition keeps `type='volume'` with its pool and volume, as libvirt's does
//! (with the volume's format filled into `<driver type>` when the XML gave none); what QEMU
//! opens is a translated copy ([`resolved_disk`]): a file volume becomes `<disk type='file'>`
//! with the volume's path.
//!
//! [`VolumeLeases`] is the seam, so the logic here is testable without a storage service.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::error::DomainError;
use crate::xml::{Disk, DiskDriver, DiskSource, DomainDef};

/// A volume by pool and name, as a disk's `<source pool volume>` names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VolumeName {
    pub pool: String,
    pub volume: String,
}

impl fmt::Display for VolumeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "volume '{}' in pool '{}'", self.volume, self.pool)
    }
}

/// Who a lease is for: the domain, by name and UUID.
#[derive(Debug, Clone, Copy)]
pub struct LeaseOwner<'a> {
    pub name: &'a str,
    pub uuid: &'a str,
}

/// What a volume is on the host (the storage service's volume type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeKind {
    File,
    Block,
    Dir,
    /// A type QEMU cannot open as a local path (network, ploop, ...): its name.
    Other(String),
}

/// A leased volume as QEMU opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedVolume {
    pub path: String,
    /// The image format: raw, qcow2, ...
    pub format: String,
    pub kind: VolumeKind,
    /// Bytes the guest sees.
    pub capacity: u64,
}

/// The storage service's lease calls, each bounded by a timeout.
#[tonic::async_trait]
pub trait VolumeLeases: Send + Sync + fmt::Debug + 'static {
    /// A lease on `volume` for `owner`, and where the volume is. Idempotent per owner.
    async fn acquire(
        &self,
        volume: &VolumeName,
        owner: LeaseOwner<'_>,
    ) -> Result<ResolvedVolume, VolumeError>;

    /// Ends the lease of the domain `owner_uuid` on `volume`. A lease (or volume) that no
    /// longer exists is not an error: the goal, no lease, is reached.
    async fn release(&self, volume: &VolumeName, owner_uuid: &str) -> Result<(), VolumeError>;
}

/// How a failed lease call reads for the caller of the domain call (the storage service is a
/// sibling service: its calls fail as any sibling's do).
pub use crate::service_call::CallErrorKind as LeaseErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The disk does not say which volume (→ INVALID_ARGUMENT).
    #[error("{what}: {why}")]
    Invalid { what: String, why: String },
    #[error(
        "<disk type='volume'> needs the storage service, and this domain service runs without \
         one (start virtplane-domaind with --storage-service ADDR)"
    )]
    NoStorageService,
    /// The storage service refused or failed a call about `volume`; `message` is its own
    /// words (which name the volume), or says why it could not be asked.
    #[error("{message}")]
    Lease {
        volume: VolumeName,
        message: String,
        kind: LeaseErrorKind,
    },
    /// The volume is of a type this service cannot hand to QEMU as a local path.
    #[error("disk '{dev}': {volume} is a {kind} volume, which cannot be used as a disk here")]
    UnsupportedKind {
        dev: String,
        volume: VolumeName,
        kind: String,
    },
}

impl VolumeError {
    /// The error as the domain service reports it for `action` ("start") on domain `name`.
    pub fn for_domain(self, name: &str, action: &str) -> DomainError {
        let message = format!("cannot {action} domain '{name}': {self}");
        match self {
            Self::Invalid { .. } => DomainError::InvalidArg(message),
            Self::NoStorageService => DomainError::OperationInvalid(message),
            Self::UnsupportedKind { .. } => DomainError::OperationInvalid(message),
            Self::Lease { kind, .. } => match kind {
                LeaseErrorKind::Refused => DomainError::OperationInvalid(message),
                LeaseErrorKind::Unavailable => DomainError::Unavailable(message),
                LeaseErrorKind::Timeout => DomainError::Timeout(message),
                LeaseErrorKind::Failed => DomainError::OperationFailed(message),
            },
        }
    }
}

/// The volume `disk` names, if it is a `<disk type='volume'>`; one without both `pool` and
/// `volume` is refused.
pub fn volume_of(disk: &Disk) -> Result<Option<VolumeName>, VolumeError> {
    if disk.disk_type != "volume" {
        return Ok(None);
    }
    let source = disk.source.as_ref();
    let named = |value: Option<&String>| value.filter(|v| !v.is_empty()).cloned();
    match (
        named(source.and_then(|s| s.pool.as_ref())),
        named(source.and_then(|s| s.volume.as_ref())),
    ) {
        (Some(pool), Some(volume)) => Ok(Some(VolumeName { pool, volume })),
        _ => Err(VolumeError::Invalid {
            what: format!("<disk type='volume'> '{}'", disk.target.dev),
            why: "needs <source pool='…' volume='…'/>: the storage pool and the volume in it"
                .into(),
        }),
    }
}

/// Every volume the disks of `def` name, each once (a definition the service keeps has
/// been checked, so unnamed ones are skipped).
pub fn volumes_of(def: &DomainDef) -> Vec<VolumeName> {
    let mut volumes = Vec::new();
    for disk in &def.devices.disks {
        if let Ok(Some(volume)) = volume_of(disk)
            && !volumes.contains(&volume)
        {
            volumes.push(volume);
        }
    }
    volumes
}

/// Whether a disk of `def` uses `volume` (then its lease must stay).
pub fn uses(def: &DomainDef, volume: &VolumeName) -> bool {
    volumes_of(def).contains(volume)
}

/// `disk` (a volume disk) as QEMU opens `volume`: a file, block or directory disk with its
/// path, and the volume's format when the disk gives none.
pub fn resolved_disk(disk: &Disk, volume: &ResolvedVolume) -> Result<Disk, VolumeError> {
    let mut opened = disk.clone();
    let mut source = DiskSource {
        startup_policy: disk.source.as_ref().and_then(|s| s.startup_policy.clone()),
        ..Default::default()
    };
    let path = Some(volume.path.clone());
    match &volume.kind {
        VolumeKind::File => {
            opened.disk_type = "file".into();
            source.file = path;
        }
        VolumeKind::Block => {
            opened.disk_type = "block".into();
            source.dev = path;
        }
        VolumeKind::Dir => {
            opened.disk_type = "dir".into();
            source.dir = path;
        }
        VolumeKind::Other(kind) => {
            return Err(VolumeError::UnsupportedKind {
                dev: disk.target.dev.clone(),
                volume: volume_of(disk)?.unwrap_or_else(|| VolumeName {
                    pool: String::new(),
                    volume: volume.path.clone(),
                }),
                kind: kind.clone(),
            });
        }
    }
    opened.source = Some(source);
    with_format(&mut opened, volume);
    Ok(opened)
}

/// Fills the volume's format into `<driver type>` when the disk gives none (a directory is
/// shown as a FAT image, which has its own default).
pub fn with_format(disk: &mut Disk, volume: &ResolvedVolume) {
    if volume.kind == VolumeKind::Dir || volume.format.is_empty() {
        return;
    }
    let driver = disk.driver.get_or_insert_with(|| DiskDriver {
        name: Some("qemu".into()),
        ..Default::default()
    });
    if driver.format.is_none() {
        driver.format = Some(volume.format.clone());
    }
}

/// The volumes of one start, by disk index: what the command line opens.
pub type Resolutions = Vec<(usize, ResolvedVolume)>;

/// The definition QEMU's command line is built from: `live` with every volume disk
/// translated ([`resolved_disk`]).
pub fn command_line_view(
    live: &Arc<DomainDef>,
    resolutions: &Resolutions,
) -> Result<Arc<DomainDef>, VolumeError> {
    if resolutions.is_empty() {
        return Ok(live.clone());
    }
    let mut view = (**live).clone();
    for (index, volume) in resolutions {
        if let Some(disk) = view.devices.disks.get_mut(*index) {
            *disk = resolved_disk(disk, volume)?;
        }
    }
    Ok(Arc::new(view))
}

/// The leases of a driver's running VMs. One per driver.
#[derive(Debug, Default)]
pub struct DiskVolumes {
    /// The storage service; `None` when the service runs without one, and then volume disks
    /// are refused.
    leases: Option<Arc<dyn VolumeLeases>>,
    /// The volumes each running VM holds, by (domain UUID, run id).
    held: std::sync::Mutex<HashMap<(String, i32), Vec<VolumeName>>>,
}

impl DiskVolumes {
    /// Volume disks resolved through `leases`.
    pub fn with_leases(leases: Arc<dyn VolumeLeases>) -> Self {
        Self {
            leases: Some(leases),
            ..Default::default()
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i32), Vec<VolumeName>>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn service(&self) -> Result<&Arc<dyn VolumeLeases>, VolumeError> {
        self.leases.as_ref().ok_or(VolumeError::NoStorageService)
    }

    /// Whether volume disks are resolved (the service has a storage service).
    pub fn has_storage_service(&self) -> bool {
        self.leases.is_some()
    }

    /// Acquires a lease on every volume `def` names, for its run `id`. Returns the live
    /// definition (formats filled in) and what each volume disk opens. On failure the
    /// leases this call acquired are given back. What was acquired belongs to (`def.uuid`,
    /// `id`) until [`Self::release`].
    pub async fn acquire(
        &self,
        def: Arc<DomainDef>,
        id: i32,
    ) -> Result<(Arc<DomainDef>, Resolutions), VolumeError> {
        let uuid = def.uuid.clone();
        let (live, resolutions, acquired) = self.lease_all(def).await?;
        if !acquired.is_empty() {
            self.held().insert((uuid, id), acquired);
        }
        Ok((live, resolutions))
    }

    /// [`Self::acquire`] without the bookkeeping (for a driver that keeps no VMs): also
    /// returns the volumes leased, each once.
    pub async fn lease_all(
        &self,
        def: Arc<DomainDef>,
    ) -> Result<(Arc<DomainDef>, Resolutions, Vec<VolumeName>), VolumeError> {
        let mut wanted = Vec::new();
        for (index, disk) in def.devices.disks.iter().enumerate() {
            if let Some(volume) = volume_of(disk)? {
                wanted.push((index, volume));
            }
        }
        if wanted.is_empty() {
            return Ok((def, Vec::new(), Vec::new()));
        }
        let service = self.service()?;
        let owner = LeaseOwner {
            name: &def.name,
            uuid: &def.uuid,
        };
        let mut acquired: Vec<VolumeName> = Vec::new();
        let mut resolutions = Vec::new();
        for (index, volume) in wanted {
            match service.acquire(&volume, owner).await {
                Ok(resolved) => {
                    if !acquired.contains(&volume) {
                        acquired.push(volume);
                    }
                    resolutions.push((index, resolved));
                }
                Err(error) => {
                    self.give_back(&acquired, &def.uuid, &def.name).await;
                    return Err(error);
                }
            }
        }
        let mut live = (*def).clone();
        for (index, resolved) in &resolutions {
            with_format(&mut live.devices.disks[*index], resolved);
        }
        // Checked now, so a volume QEMU cannot open fails before anything else is made.
        let live = Arc::new(live);
        if let Err(error) = command_line_view(&live, &resolutions) {
            self.give_back(&acquired, &def.uuid, &def.name).await;
            return Err(error);
        }
        Ok((live, resolutions, acquired))
    }

    /// For a volume disk about to be hot-plugged into the VM of run `id`, whose live
    /// definition is `live`: a lease on its volume, held by the VM from now on (give it back
    /// with [`Self::release_one`]), and what the disk opens. `None` for other disks.
    pub async fn acquire_one(
        &self,
        live: &DomainDef,
        id: i32,
        disk: &Disk,
    ) -> Result<Option<(VolumeName, ResolvedVolume)>, VolumeError> {
        let leased = self.lease_disk(live, disk).await?;
        if let Some((volume, _)) = &leased {
            let mut held = self.held();
            let volumes = held.entry((live.uuid.clone(), id)).or_default();
            if !volumes.contains(volume) {
                volumes.push(volume.clone());
            }
        }
        Ok(leased)
    }

    /// [`Self::acquire_one`] without the bookkeeping. On failure no lease is left that
    /// `live` does not already use.
    pub async fn lease_disk(
        &self,
        live: &DomainDef,
        disk: &Disk,
    ) -> Result<Option<(VolumeName, ResolvedVolume)>, VolumeError> {
        let Some(volume) = volume_of(disk)? else {
            return Ok(None);
        };
        let owner = LeaseOwner {
            name: &live.name,
            uuid: &live.uuid,
        };
        let resolved = self.service()?.acquire(&volume, owner).await?;
        if let Err(error) = resolved_disk(disk, &resolved) {
            self.release_unused(live, &volume).await;
            return Err(error);
        }
        Ok(Some((volume, resolved)))
    }

    /// The VM of run `id` no longer uses `volume` (`live`, its definition now, names it no
    /// more): the lease goes. Nothing happens while another disk of `live` still uses it.
    pub async fn release_one(&self, live: &DomainDef, id: i32, volume: &VolumeName) {
        if uses(live, volume) {
            return;
        }
        let key = (live.uuid.clone(), id);
        {
            let mut held = self.held();
            if let Some(volumes) = held.get_mut(&key) {
                volumes.retain(|v| v != volume);
                if volumes.is_empty() {
                    held.remove(&key);
                }
            }
        }
        self.release_unused(live, volume).await;
    }

    /// [`Self::release_one`] without the bookkeeping.
    pub async fn release_unused(&self, live: &DomainDef, volume: &VolumeName) {
        if !uses(live, volume) {
            self.give_back(std::slice::from_ref(volume), &live.uuid, &live.name)
                .await;
        }
    }

    /// After a service restart: the volumes of a VM that still runs are its own again.
    pub fn adopt(&self, live: &DomainDef, id: i32) {
        let volumes = volumes_of(live);
        if !volumes.is_empty() {
            self.held().insert((live.uuid.clone(), id), volumes);
        }
    }

    /// The VM of run `id` of the domain `uuid` is gone: its leases go. Failures are logged;
    /// nothing here can stop the VM from being forgotten.
    pub async fn release(&self, uuid: &str, id: i32, domain: &str) {
        let volumes = self.held().remove(&(uuid.to_owned(), id));
        if let Some(volumes) = volumes {
            self.give_back(&volumes, uuid, domain).await;
        }
    }

    /// The VM of `live` ended while the service was away: the leases its live definition
    /// names go.
    pub async fn remove_leftovers(&self, live: &DomainDef) {
        self.give_back(&volumes_of(live), &live.uuid, &live.name)
            .await;
    }

    /// Releases leases; failures are logged (the volume then stays marked in use, until the
    /// domain starts and stops again or the lease is released by hand).
    pub async fn give_back(&self, volumes: &[VolumeName], uuid: &str, domain: &str) {
        if volumes.is_empty() {
            return;
        }
        let Some(service) = &self.leases else {
            tracing::warn!(%domain, ?volumes, "no storage service to release the VM's volumes");
            return;
        };
        for volume in volumes {
            match service.release(volume, uuid).await {
                Ok(()) => {
                    tracing::info!(%domain, pool = %volume.pool, volume = %volume.volume, "released the VM's volume")
                }
                Err(error) => {
                    tracing::warn!(%domain, pool = %volume.pool, volume = %volume.volume, %error, "cannot release the VM's volume; it stays marked in use")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(disks: &str) -> DomainDef {
        crate::xml::parse_domain(&format!(
            "<domain type='qemu'><name>web</name>\
             <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid><memory>131072</memory>\
             <os><type>hvm</type></os><devices>{disks}</devices></domain>"
        ))
        .unwrap()
    }

    fn volume_disk(pool: &str, volume: &str, dev: &str) -> String {
        format!(
            "<disk type='volume'><source pool='{pool}' volume='{volume}'/>\
             <target dev='{dev}' bus='virtio'/></disk>"
        )
    }

    /// A storage service with pool `default` holding `web.qcow2` (a file) and `net.img` (a
    /// network volume); it records what it was asked.
    #[derive(Debug, Default)]
    struct FakeStorage {
        calls: std::sync::Mutex<Vec<String>>,
    }

    impl FakeStorage {
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[tonic::async_trait]
    impl VolumeLeases for FakeStorage {
        async fn acquire(
            &self,
            volume: &VolumeName,
            owner: LeaseOwner<'_>,
        ) -> Result<ResolvedVolume, VolumeError> {
            self.calls.lock().unwrap().push(format!(
                "acquire {}/{} {}",
                volume.pool, volume.volume, owner.name
            ));
            let kind = match (volume.pool.as_str(), volume.volume.as_str()) {
                ("default", "web.qcow2") => VolumeKind::File,
                ("default", "net.img") => VolumeKind::Other("network".into()),
                _ => {
                    return Err(VolumeError::Lease {
                        volume: volume.clone(),
                        message: format!(
                            "storage volume not found: no storage vol with matching name \
                             '{}' in pool '{}'",
                            volume.volume, volume.pool
                        ),
                        kind: LeaseErrorKind::Refused,
                    });
                }
            };
            Ok(ResolvedVolume {
                path: format!("/images/{}", volume.volume),
                format: "qcow2".into(),
                kind,
                capacity: 1 << 30,
            })
        }

        async fn release(&self, volume: &VolumeName, owner_uuid: &str) -> Result<(), VolumeError> {
            self.calls.lock().unwrap().push(format!(
                "release {}/{} {owner_uuid}",
                volume.pool, volume.volume
            ));
            Ok(())
        }
    }

    #[tokio::test]
    async fn volume_disks_need_the_storage_service() {
        let d = Arc::new(def(&volume_disk("default", "web.qcow2", "vda")));
        let error = DiskVolumes::default().acquire(d, 1).await.unwrap_err();
        assert!(matches!(error, VolumeError::NoStorageService), "{error:?}");
        let error = error.for_domain("web", "start");
        assert!(
            matches!(error, DomainError::OperationInvalid(_)),
            "{error:?}"
        );
        assert!(error.to_string().contains("--storage-service"), "{error}");
        // Definitions without volume disks need nothing.
        let plain = Arc::new(def(
            "<disk type='file'><source file='/a.img'/><target dev='vda'/></disk>",
        ));
        let (live, resolved) = DiskVolumes::default().acquire(plain, 1).await.unwrap();
        assert!(resolved.is_empty());
        assert_eq!(live.devices.disks[0].disk_type, "file");
    }

    #[tokio::test]
    async fn the_command_line_opens_the_path_and_the_live_xml_keeps_the_volume() {
        let fake = Arc::new(FakeStorage::default());
        let volumes = DiskVolumes::with_leases(fake.clone());
        let d = Arc::new(def(&format!(
            "{}<disk type='volume'><driver name='qemu' type='raw'/>\
             <source pool='default' volume='web.qcow2'/><target dev='vdb'/><readonly/></disk>",
            volume_disk("default", "web.qcow2", "vda")
        )));
        let (live, resolutions) = volumes.acquire(d, 7).await.unwrap();
        let disk = &live.devices.disks[0];
        assert_eq!(disk.disk_type, "volume");
        let source = disk.source.as_ref().unwrap();
        assert_eq!(source.volume.as_deref(), Some("web.qcow2"));
        assert_eq!(source.file, None);
        assert_eq!(
            disk.driver.as_ref().unwrap().format.as_deref(),
            Some("qcow2")
        );

        let view = command_line_view(&live, &resolutions).unwrap();
        let opened = &view.devices.disks[0];
        assert_eq!(opened.disk_type, "file");
        let source = opened.source.as_ref().unwrap();
        assert_eq!(source.file.as_deref(), Some("/images/web.qcow2"));
        assert_eq!((source.pool.as_ref(), source.volume.as_ref()), (None, None));
        // A format the XML gave wins over the volume's.
        let second = &view.devices.disks[1];
        assert_eq!(
            second.driver.as_ref().unwrap().format.as_deref(),
            Some("raw")
        );
        assert!(second.readonly);

        // Both disks share one volume: one lease, given back once with the VM.
        volumes.release(&live.uuid, 7, &live.name).await;
        volumes.release(&live.uuid, 7, &live.name).await;
        assert_eq!(
            fake.calls(),
            [
                "acquire default/web.qcow2 web",
                "acquire default/web.qcow2 web",
                "release default/web.qcow2 6695eb01-f6a4-8304-79aa-97f2502e193f",
            ]
        );
    }

    #[tokio::test]
    async fn a_refused_volume_gives_back_the_ones_before_it() {
        let fake = Arc::new(FakeStorage::default());
        let volumes = DiskVolumes::with_leases(fake.clone());
        let d = Arc::new(def(&format!(
            "{}{}",
            volume_disk("default", "web.qcow2", "vda"),
            volume_disk("default", "missing.img", "vdb")
        )));
        let error = volumes.acquire(d, 1).await.unwrap_err();
        assert!(error.to_string().contains("'missing.img'"), "{error}");
        let error = error.for_domain("web", "start");
        assert!(
            matches!(error, DomainError::OperationInvalid(_)),
            "{error:?}"
        );
        assert_eq!(
            fake.calls().last().unwrap(),
            "release default/web.qcow2 6695eb01-f6a4-8304-79aa-97f2502e193f"
        );

        // A volume QEMU cannot open as a path: refused, and its lease given back.
        let d = Arc::new(def(&volume_disk("default", "net.img", "vda")));
        let error = volumes.acquire(d, 2).await.unwrap_err();
        assert!(
            matches!(error, VolumeError::UnsupportedKind { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("network volume"), "{error}");
        assert_eq!(
            fake.calls().last().unwrap(),
            "release default/net.img 6695eb01-f6a4-8304-79aa-97f2502e193f"
        );
    }

    #[tokio::test]
    async fn an_unplugged_disk_keeps_a_volume_another_disk_uses() {
        let fake = Arc::new(FakeStorage::default());
        let volumes = DiskVolumes::with_leases(fake.clone());
        let both = def(&format!(
            "{}{}",
            volume_disk("default", "web.qcow2", "vda"),
            volume_disk("default", "web.qcow2", "vdb")
        ));
        volumes.adopt(&both, 3);
        let volume = volume_of(&both.devices.disks[1]).unwrap().unwrap();
        let mut one = both.clone();
        one.devices.disks.remove(1);
        volumes.release_one(&one, 3, &volume).await;
        assert!(fake.calls().is_empty(), "{:?}", fake.calls());
        one.devices.disks.clear();
        volumes.release_one(&one, 3, &volume).await;
        assert_eq!(fake.calls().len(), 1);
        // Nothing is left to give back with the VM.
        volumes.release(&both.uuid, 3, &both.name).await;
        assert_eq!(fake.calls().len(), 1);
    }

    #[test]
    fn a_volume_disk_must_name_pool_and_volume() {
        let d = def("<disk type='volume'><source pool='default'/><target dev='vda'/></disk>");
        let error = volume_of(&d.devices.disks[0]).unwrap_err();
        assert!(error.to_string().contains("needs <source pool="), "{error}");
        let d = def("<disk type='file'><source file='/a'/><target dev='vda'/></disk>");
        assert_eq!(volume_of(&d.devices.disks[0]).unwrap(), None);
    }
}
