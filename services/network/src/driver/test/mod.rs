//! The `test` driver: networks with libvirt's semantics and nothing done on the host. It is
//! the shared [`Core`] over a [`Simulated`] runtime, so everything but the host — the state
//! machine, refusals, files, ports, events, restarts — is the code the bridge driver runs
//! too. Seeded once per state dir with libvirt's `default` network, running and
//! autostarted. DHCP leases: none (nothing hands out addresses), never invented.

use std::sync::Arc;

use super::DriverConfig;
use super::core::{Core, Runtime};
use crate::error::{NetworkError, Result};
use crate::model::{Lease, NetworkRef};
use crate::xml::{NetworkDef, parse_network};

mod world;

pub use world::DEFAULT_NETWORK_XML;

const DRIVER: &str = "test";

/// The test driver's host: every start, stop and update succeeds at once; no interface
/// exists; no lease is ever given out.
#[derive(Debug, Default)]
pub struct Simulated;

#[tonic::async_trait]
impl Runtime for Simulated {
    fn driver(&self) -> &'static str {
        DRIVER
    }

    fn interface_exists(&self, _name: &str) -> bool {
        false
    }

    async fn start(&self, _def: &NetworkDef) -> Result<()> {
        Ok(())
    }

    async fn stop(&self, _def: &NetworkDef) -> Result<()> {
        Ok(())
    }

    async fn adopt(&self, _def: &NetworkDef) -> Result<()> {
        Ok(())
    }

    async fn update_live(&self, _old: &NetworkDef, _new: &NetworkDef) -> Result<()> {
        Ok(())
    }

    async fn leases(&self, _def: &NetworkDef) -> Result<Vec<Lease>> {
        Ok(Vec::new())
    }

    async fn warnings(&self, _def: &NetworkDef, _active: bool) -> Vec<String> {
        Vec::new()
    }
}

/// Opens the test driver on `config`'s directories: loads what is stored, seeds the
/// default world the first time, and runs autostart once per host boot.
pub async fn open(config: &DriverConfig) -> Result<Core> {
    let (core, new_boot) = Core::open(config, Arc::new(Simulated)).await?;
    let seeded = config.state_dir.join("seeded");
    if !seeded.exists() {
        seed_default_world(&core).await?;
        virtplane_common::store::write_atomic(&seeded, b"")
            .map_err(|e| NetworkError::storage("write", &seeded, e))?;
    }
    if new_boot {
        core.autostart().await;
    }
    Ok(core)
}

async fn seed_default_world(core: &Core) -> Result<()> {
    use crate::driver::NetworkDriver;
    let default = parse_network(DEFAULT_NETWORK_XML)?;
    let name = NetworkRef::Name(default.name.clone());
    if core.lookup(&name).is_ok() {
        // A network of that name is already there (the user's): it is left alone.
        return Ok(());
    }
    core.define(default).await?;
    core.set_autostart(&name, true).await?;
    core.start(&name).await?;
    Ok(())
}
