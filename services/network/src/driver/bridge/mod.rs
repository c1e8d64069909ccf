//! The `bridge` driver: networks made for real on the host, as libvirt's network driver
//! makes them. It is the shared [`Core`] over [`HostRuntime`], which turns a definition
//! into a host plan (`crate::render::plan`) and carries it out (`crate::host::network`):
//! the Linux bridge and its addresses, the network's own nftables table, forwarding, and
//! one dnsmasq. Unlike the test driver it creates no network by itself, and autostarts only
//! what the user marked autostart, once per host boot.
//!
//! A `forward mode='bridge'` network names a host bridge someone else made: starting it
//! checks that the bridge is there and changes nothing (ports plug into that bridge).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use super::DriverConfig;
use super::core::{Core, Runtime};
use crate::error::{NetworkError, Result};
use crate::host::bridge::{BridgeError, Netlink};
use crate::host::network::{self as host, HostError, HostPlan, RunningNetwork};
use crate::host::{leases, nft};
use crate::model::Lease;
use crate::render::plan::{file_stem, host_plan};
use crate::xml::{NetworkDef, in_subnet};

mod errors;
mod searchable;

const DRIVER: &str = "bridge";

/// The bridge driver's host: what it knows of the networks it runs.
pub struct HostRuntime {
    /// Where each network's dnsmasq files live (`RUN/dnsmasq`).
    dir: PathBuf,
    /// dnsmasq drops to `nobody` and re-reads its hosts files as that user on SIGHUP; when
    /// `dir` is not searchable by others (a state dir under a private home), a live
    /// `net-update` restarts dnsmasq instead, which reads them again as root.
    reload_by_signal: bool,
    /// The running networks by name, with their dnsmasq handles.
    running: Mutex<HashMap<String, RunningNetwork>>,
}

impl HostRuntime {
    /// Prepares the dnsmasq directory under `run_dir`.
    pub fn new(run_dir: &Path) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let dir = run_dir.join("dnsmasq");
        std::fs::create_dir_all(&dir).map_err(|e| NetworkError::storage("create", &dir, e))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| NetworkError::storage("set permissions of", &dir, e))?;
        let reload_by_signal = searchable::by_others(&dir);
        if !reload_by_signal {
            tracing::info!(
                dir = %dir.display(),
                "dnsmasq's directory is not searchable by others; live DHCP and DNS host \
                 changes restart dnsmasq instead of signalling it"
            );
        }
        Ok(Self {
            dir,
            reload_by_signal,
            running: Mutex::new(HashMap::new()),
        })
    }

    fn plan(&self, def: &NetworkDef) -> Result<HostPlan> {
        host_plan(def, &self.dir).map_err(|e| NetworkError::OperationFailed(e.to_string()))
    }

    fn take_running(&self, name: &str) -> Option<RunningNetwork> {
        self.running.lock().unwrap().remove(name)
    }

    fn keep_running(&self, name: &str, running: RunningNetwork) {
        self.running
            .lock()
            .unwrap()
            .insert(name.to_owned(), running);
    }

    /// The running network of `plan`: the handle kept since start, or found again.
    async fn running_of(&self, plan: &HostPlan) -> Result<RunningNetwork> {
        if let Some(running) = self.take_running(&plan.network) {
            return Ok(running);
        }
        host::reattach(plan)
            .await
            .map_err(|e| errors::host(&plan.network, "find", e))?
            .ok_or_else(|| {
                NetworkError::OperationFailed(format!(
                    "network '{}' is not running on the host: its bridge '{}' is gone",
                    plan.network, plan.bridge.name
                ))
            })
    }
}

/// The host bridge a `forward mode='bridge'` network plugs into must exist and be a bridge.
async fn check_host_bridge(def: &NetworkDef) -> Result<()> {
    let Some(name) = def.bridge_name() else {
        return Err(NetworkError::OperationFailed(format!(
            "network '{}' (forward mode 'bridge') names no host bridge",
            def.name
        )));
    };
    let found = async {
        let netlink = Netlink::open()?;
        netlink.device(name).await
    }
    .await
    .map_err(|e| errors::host(&def.name, "start", HostError::Bridge(e)))?;
    match found {
        Some(device) if device.is_bridge() => Ok(()),
        Some(device) => Err(errors::host(
            &def.name,
            "start",
            HostError::Bridge(BridgeError::NotABridge {
                name: name.to_owned(),
                kind: device.describe_kind(),
            }),
        )),
        None => Err(NetworkError::OperationFailed(format!(
            "cannot start network '{}': the host bridge '{name}' does not exist; create it \
             first (forward mode 'bridge' uses a bridge it does not make)",
            def.name
        ))),
    }
}

#[tonic::async_trait]
impl Runtime for HostRuntime {
    fn driver(&self) -> &'static str {
        DRIVER
    }

    fn interface_exists(&self, name: &str) -> bool {
        // Asked of the kernel through a socket of the calling thread's network namespace;
        // /sys/class/net would show the namespace sysfs was mounted in instead.
        nix::net::if_::if_nametoindex(name).is_ok()
    }

    async fn start(&self, def: &NetworkDef) -> Result<()> {
        if !def.has_own_bridge() {
            return check_host_bridge(def).await;
        }
        let plan = self.plan(def)?;
        let running = host::start(&plan)
            .await
            .map_err(|e| errors::host(&def.name, "start", e))?;
        self.keep_running(&def.name, running);
        Ok(())
    }

    async fn stop(&self, def: &NetworkDef) -> Result<()> {
        if !def.has_own_bridge() {
            return Ok(());
        }
        let plan = self.plan(def)?;
        let running = self
            .take_running(&def.name)
            .unwrap_or(RunningNetwork { dnsmasq: None });
        host::stop(&plan, running)
            .await
            .map_err(|e| errors::host(&def.name, "stop", e))
    }

    async fn adopt(&self, def: &NetworkDef) -> Result<()> {
        if !def.has_own_bridge() {
            return check_host_bridge(def).await;
        }
        let plan = self.plan(def)?;
        match host::reattach(&plan).await {
            Ok(Some(running)) => {
                self.keep_running(&def.name, running);
                Ok(())
            }
            Ok(None) => {
                // The bridge is gone (deleted by hand, or the host rebooted): whatever is
                // left of the network (its table, its dnsmasq) goes too.
                let cleanup = host::stop(&plan, RunningNetwork { dnsmasq: None }).await;
                if let Err(error) = cleanup {
                    tracing::debug!(network = %def.name, %error, "leftovers of a vanished network");
                }
                Err(NetworkError::OperationFailed(format!(
                    "network '{}' is no longer running: its bridge '{}' is gone",
                    def.name, plan.bridge.name
                )))
            }
            Err(error) => Err(errors::host(&def.name, "re-adopt", error)),
        }
    }

    async fn update_live(&self, _old: &NetworkDef, new: &NetworkDef) -> Result<()> {
        if !new.has_own_bridge() {
            return Ok(());
        }
        let plan = self.plan(new)?;
        let Some(dns) = &plan.dnsmasq else {
            return Ok(());
        };
        let running = self.running_of(&plan).await?;
        if self.reload_by_signal {
            let reloaded = host::reload_hosts(&plan.network, &running, dns);
            self.keep_running(&plan.network, running);
            return reloaded.map_err(|e| errors::host(&new.name, "update", e));
        }
        let restarted = host::restart_dnsmasq(&plan.network, running, dns).await;
        match restarted {
            Ok(running) => {
                self.keep_running(&plan.network, running);
                Ok(())
            }
            Err(error) => Err(errors::host(&new.name, "update", error)),
        }
    }

    async fn leases(&self, def: &NetworkDef) -> Result<Vec<Lease>> {
        if !def.has_own_bridge() || def.bridge_name().is_none() {
            return Ok(Vec::new());
        }
        let stem = file_stem(&def.name);
        let path = self.dir.join(format!("{stem}.leases"));
        let file = leases::read_leases(&path)
            .await
            .map_err(|e| NetworkError::OperationFailed(e.to_string()))?;
        for line in &file.malformed {
            tracing::warn!(network = %def.name, %line, "skipping a line of the lease file");
        }
        let now = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let bridge = def.bridge_name().unwrap_or_default().to_owned();
        Ok(file
            .leases
            .into_iter()
            // libvirt hides expired leases dnsmasq has not cleaned out yet.
            .filter(|l| l.expiry.is_none_or(|expiry| expiry >= now))
            .map(|l| to_lease(def, &bridge, l))
            .collect())
    }

    async fn warnings(&self, def: &NetworkDef, _active: bool) -> Vec<String> {
        if !def.has_own_bridge() {
            return Vec::new();
        }
        let Ok(plan) = self.plan(def) else {
            return Vec::new();
        };
        let Some(firewall) = &plan.firewall else {
            return Vec::new();
        };
        match nft::conflicts(&firewall.tables).await {
            Ok(conflicts) => conflicts.iter().map(ToString::to_string).collect(),
            Err(error) => vec![format!(
                "cannot check the host's nftables ruleset for conflicts: {error}"
            )],
        }
    }
}

/// A lease of the file in the API's terms: the prefix is the one of the `<ip>` whose subnet
/// holds the address; an infinite lease expires at 0, as libvirt reports it.
fn to_lease(def: &NetworkDef, bridge: &str, lease: leases::Lease) -> Lease {
    let prefix = def
        .ips
        .iter()
        .find(|ip| in_subnet(lease.ip, ip.address, ip.prefix_len()))
        .map_or(0, |ip| ip.prefix_len());
    Lease {
        iface: bridge.to_owned(),
        expiry: UNIX_EPOCH + Duration::from_secs(lease.expiry.unwrap_or(0)),
        ip: lease.ip,
        prefix,
        mac: lease.mac,
        iaid: lease.iaid.map(|iaid| iaid.to_string()),
        hostname: lease.hostname,
        client_id: lease.client_id,
    }
}

/// Opens the bridge driver on `config`'s directories: loads what is stored, re-adopts the
/// running networks, and on the first start since the host booted starts the autostart
/// ones. It never defines a network of its own.
pub async fn open(config: &DriverConfig) -> Result<Core> {
    let runtime = HostRuntime::new(&config.run_dir)?;
    let (core, new_boot) = Core::open(config, Arc::new(runtime)).await?;
    if new_boot {
        core.autostart().await;
    }
    Ok(core)
}
