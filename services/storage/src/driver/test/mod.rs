//! The `test` driver: pools and volumes with libvirt's semantics and nothing done on the
//! host. It is the shared [`Core`] over a [`Simulated`] backend, so everything but the host —
//! the state machine, refusals, files, events, restarts — is the code the dir driver runs
//! too. Seeded once per state dir with a running, autostarted `default` pool, as libvirt's
//! test:///default. Volumes are definitions only (no data), kept in the state dir so that
//! a restart loses none; every pool reports libvirt's test capacity of 100 GiB.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::DriverConfig;
use super::backend::{Backend, Scan, Volume};
use super::core::Core;
use crate::error::{Result, StorageError};
use crate::host::VolumeFile;
use crate::model::{BuildFlags, PoolRef, PoolSizes, VolType, WipeAlgorithm};
use crate::xml::{PoolDef, VolDef, format_volume, parse_pool, parse_volume};
use virtplane_common::object_files::{file_stem, read_files};
use virtplane_common::store;

const DRIVER: &str = "test";

/// libvirt's test driver gives every pool this capacity.
const TEST_POOL_CAPACITY: u64 = 100 * 1024 * 1024 * 1024;

/// The pool the test driver starts with.
pub const DEFAULT_POOL_XML: &str = "<pool type='dir'>
  <name>default</name>
  <uuid>dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566</uuid>
  <target>
    <path>/default-pool</path>
  </target>
</pool>
";

/// The test driver's host: volumes are definitions in `STATE/test-volumes/POOL/`.
#[derive(Debug)]
pub struct Simulated {
    volumes_dir: PathBuf,
}

impl Simulated {
    fn pool_dir(&self, pool: &PoolDef) -> PathBuf {
        self.volumes_dir.join(file_stem(&pool.name))
    }

    fn target(pool: &PoolDef) -> &str {
        pool.target
            .as_ref()
            .and_then(|t| t.path.as_deref())
            .unwrap_or("/")
    }

    /// The volume `vol` becomes in `pool`: libvirt's test driver keys volumes by path.
    fn made(pool: &PoolDef, vol: &VolDef) -> Volume {
        let mut def = vol.clone();
        let path = format!("{}/{}", Self::target(pool).trim_end_matches('/'), def.name);
        def.target.path = Some(path.clone());
        def.key = Some(path);
        if def.target.format.is_none() {
            def.target.format = Some("raw".into());
        }
        // libvirt: a volume without <allocation> allocates all of its capacity.
        def.allocation = Some(def.allocation.unwrap_or(def.capacity).min(def.capacity));
        def.capacity_given = true;
        Volume {
            def,
            vol_type: VolType::File,
        }
    }

    fn save(&self, pool: &PoolDef, volume: &Volume) -> Result<()> {
        let dir = self.pool_dir(pool);
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::storage("create", &dir, e))?;
        let path = dir.join(format!("{}.xml", file_stem(&volume.def.name)));
        store::write_atomic(&path, format_volume(&volume.def).as_bytes())
            .map_err(|e| StorageError::storage("write", &path, e))
    }

    fn scan(&self, pool: &PoolDef) -> Result<Scan> {
        let dir = self.pool_dir(pool);
        let mut volumes = Vec::new();
        if dir.is_dir() {
            for (stem, xml) in read_files(&dir, ".xml")? {
                match parse_volume(&xml) {
                    Ok(def) => volumes.push(Volume {
                        def,
                        vol_type: VolType::File,
                    }),
                    Err(error) => {
                        tracing::error!(pool = %pool.name, volume = %stem, %error, "a stored test volume cannot be read; skipped");
                    }
                }
            }
        }
        volumes.sort_by(|a, b| a.def.name.cmp(&b.def.name));
        let allocation: u64 = volumes.iter().map(|v| v.def.allocation.unwrap_or(0)).sum();
        Ok(Scan {
            sizes: PoolSizes {
                capacity: TEST_POOL_CAPACITY,
                allocation,
                available: TEST_POOL_CAPACITY.saturating_sub(allocation),
            },
            volumes,
        })
    }

    fn check_space(&self, pool: &PoolDef, allocation: u64) -> Result<()> {
        let used = self.scan(pool)?.sizes.allocation;
        if used.saturating_add(allocation) > TEST_POOL_CAPACITY {
            return Err(StorageError::OperationInvalid(format!(
                "not enough free space in pool '{}' for a volume allocating {allocation} bytes",
                pool.name
            )));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl Backend for Simulated {
    fn driver(&self) -> &'static str {
        DRIVER
    }

    fn check_pool(&self, def: &PoolDef) -> Result<()> {
        if def.pool_type != "dir" {
            return Err(StorageError::Unsupported {
                driver: DRIVER,
                what: format!(
                    "pool type '{}' (the test driver simulates directory pools)",
                    def.pool_type
                ),
            });
        }
        Ok(())
    }

    async fn build(&self, _def: &PoolDef, _flags: BuildFlags) -> Result<()> {
        Ok(())
    }

    async fn start(&self, def: &PoolDef) -> Result<Scan> {
        self.scan(def)
    }

    async fn stop(&self, _def: &PoolDef) -> Result<()> {
        Ok(())
    }

    async fn delete(&self, def: &PoolDef) -> Result<()> {
        let dir = self.pool_dir(def);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(StorageError::storage("remove", &dir, error)),
        }
    }

    async fn refresh(&self, def: &PoolDef) -> Result<Scan> {
        self.scan(def)
    }

    async fn create_volume(&self, pool: &PoolDef, vol: &VolDef, _prealloc: bool) -> Result<Volume> {
        let volume = Self::made(pool, vol);
        self.check_space(pool, volume.def.allocation.unwrap_or(0))?;
        self.save(pool, &volume)?;
        Ok(volume)
    }

    async fn create_volume_from(
        &self,
        pool: &PoolDef,
        vol: &VolDef,
        source: &Volume,
        _prealloc: bool,
    ) -> Result<Volume> {
        let mut def = vol.clone();
        def.capacity = def.capacity.max(source.def.capacity);
        def.allocation = Some(source.def.allocation.unwrap_or(0));
        let volume = Self::made(pool, &def);
        self.check_space(pool, volume.def.allocation.unwrap_or(0))?;
        self.save(pool, &volume)?;
        Ok(volume)
    }

    async fn delete_volume(&self, pool: &PoolDef, vol: &Volume) -> Result<()> {
        let path = self
            .pool_dir(pool)
            .join(format!("{}.xml", file_stem(&vol.def.name)));
        store::remove_durable(&path)
            .map(|_| ())
            .map_err(|e| StorageError::storage("remove", &path, e))
    }

    async fn resize_volume(
        &self,
        pool: &PoolDef,
        vol: &Volume,
        capacity: u64,
        allocate: bool,
    ) -> Result<Volume> {
        let mut resized = vol.clone();
        resized.def.capacity = capacity;
        let allocation = resized.def.allocation.unwrap_or(0);
        resized.def.allocation = Some(if allocate {
            capacity
        } else {
            allocation.min(capacity)
        });
        self.save(pool, &resized)?;
        Ok(resized)
    }

    async fn wipe_volume(
        &self,
        _pool: &PoolDef,
        vol: &Volume,
        algorithm: WipeAlgorithm,
    ) -> Result<Volume> {
        match algorithm {
            WipeAlgorithm::Trim => Err(StorageError::Unsupported {
                driver: DRIVER,
                what: "wiping with trim".into(),
            }),
            _ => Ok(vol.clone()),
        }
    }

    async fn inspect_volume(&self, _pool: &PoolDef, vol: &Volume) -> Result<Volume> {
        Ok(vol.clone())
    }

    fn open_data(&self, _pool: &PoolDef, _vol: &Volume, _write: bool) -> Result<VolumeFile> {
        Err(StorageError::Unsupported {
            driver: DRIVER,
            what: "volume data (the test driver keeps definitions only: use the dir driver \
                   to upload and download)"
                .into(),
        })
    }
}

/// Opens the test driver on `config`'s directories: loads what is stored, seeds the
/// default world the first time, and runs autostart once per host boot.
pub async fn open(config: &DriverConfig) -> Result<Core> {
    let backend = Arc::new(Simulated {
        volumes_dir: config.state_dir.join("test-volumes"),
    });
    let (core, new_boot) = Core::open(config, backend).await?;
    let seeded = config.state_dir.join("seeded");
    if !seeded.exists() {
        seed_default_world(&core).await?;
        store::write_atomic(&seeded, b"")
            .map_err(|e| StorageError::storage("write", &seeded, e))?;
    }
    if new_boot {
        core.autostart().await;
    }
    Ok(core)
}

async fn seed_default_world(core: &Core) -> Result<()> {
    use crate::driver::StorageDriver;
    let default = parse_pool(DEFAULT_POOL_XML)?;
    let name = PoolRef::Name(default.name.clone());
    if core.lookup_pool(&name).is_ok() {
        // A pool of that name is already there (the user's): it is left alone.
        return Ok(());
    }
    core.define_pool(default).await?;
    core.set_pool_autostart(&name, true).await?;
    core.start_pool(&name, None).await?;
    Ok(())
}

/// For tests: where the simulated volumes of `pool` are kept below `state_dir`.
pub fn volumes_dir(state_dir: &Path, pool: &str) -> PathBuf {
    state_dir.join("test-volumes").join(file_stem(pool))
}
