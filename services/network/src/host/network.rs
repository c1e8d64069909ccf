//! One virtual network on the host, from the primitives next to this file: what starting,
//! stopping and re-adopting a network does, in libvirt's order
//! (`networkStartNetworkVirtual`): the bridge (down), its IPv6 settings, the firewall
//! table, the addresses, the bridge up, forwarding, then dnsmasq; stopping undoes it in
//! reverse. A start that fails at any step undoes what it did, so a failed `net-start`
//! leaves nothing behind.
//!
//! What to build comes in as a [`HostPlan`], already rendered (dnsmasq configuration and
//! nftables ruleset as text): this file knows nothing of network XML, which keeps it
//! testable on its own inside a namespace.

use std::path::PathBuf;

use super::bridge::{BridgeConfig, BridgeError, IfAddress, Netlink};
use super::dnsmasq::{Dnsmasq, DnsmasqError, DnsmasqFiles};
use super::nft::{self, NftError, Table};
use super::sysctl::{Sysctl, SysctlError};

/// Everything a running network needs on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPlan {
    /// The network's name, for messages and file names.
    pub network: String,
    pub bridge: BridgeConfig,
    /// The `<ip>` addresses of the host on the bridge.
    pub addresses: Vec<IfAddress>,
    /// IPv4 and IPv6 forwarding (nat and route networks need them).
    pub forward_ipv4: bool,
    pub forward_ipv6: bool,
    /// The network's own nftables table(s) and their ruleset; `None` for an `open`
    /// network, which has no firewall rules.
    pub firewall: Option<Firewall>,
    /// dnsmasq, when the network serves DHCP or DNS.
    pub dnsmasq: Option<DnsmasqPlan>,
}

/// The network's nftables tables, replaced as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firewall {
    pub tables: Vec<Table>,
    pub ruleset: String,
}

/// One dnsmasq: its files and configuration, and the hosts files the configuration names
/// (written before it starts; rewritten, then a SIGHUP, on a live `net-update`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsmasqPlan {
    pub files: DnsmasqFiles,
    pub conf: String,
    pub hosts_files: Vec<(PathBuf, String)>,
}

/// A step of starting or stopping a network failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    #[error(transparent)]
    Firewall(#[from] NftError),
    #[error(transparent)]
    Dnsmasq(#[from] DnsmasqError),
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    #[error("cannot write {path} for network '{network}': {source}")]
    Write {
        network: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What a running network has on the host, found or made.
#[derive(Debug)]
pub struct RunningNetwork {
    /// `None` when the network has no dnsmasq.
    pub dnsmasq: Option<Dnsmasq>,
}

/// Starts the network of `plan`; on failure what was done is undone (best effort, logged).
pub async fn start(plan: &HostPlan) -> Result<RunningNetwork, HostError> {
    let netlink = Netlink::open()?;
    let device = netlink.create_bridge(&plan.bridge).await?;
    match start_on_bridge(plan, &netlink, &device).await {
        Ok(running) => Ok(running),
        Err(error) => {
            undo(plan, &netlink).await;
            Err(error)
        }
    }
}

/// The steps after the bridge exists.
async fn start_on_bridge(
    plan: &HostPlan,
    netlink: &Netlink,
    device: &super::bridge::Device,
) -> Result<RunningNetwork, HostError> {
    let has_ipv6 = plan.addresses.iter().any(|a| a.address.is_ipv6());
    Sysctl::default().configure_bridge_ipv6(&plan.bridge.name, has_ipv6)?;
    if let Some(firewall) = &plan.firewall {
        nft::apply(&firewall.tables, &firewall.ruleset).await?;
    }
    for address in &plan.addresses {
        netlink
            .add_address(device, address.address, address.prefix)
            .await?;
    }
    netlink.set_up(device).await?;
    let sysctl = Sysctl::default();
    if plan.forward_ipv4 {
        sysctl.enable_ipv4_forwarding()?;
    }
    if plan.forward_ipv6 {
        sysctl.enable_ipv6_forwarding()?;
    }
    let dnsmasq = match &plan.dnsmasq {
        None => None,
        Some(dns) => {
            write_hosts_files(&plan.network, dns)?;
            Some(Dnsmasq::start(&plan.network, &dns.files, &dns.conf).await?)
        }
    };
    Ok(RunningNetwork { dnsmasq })
}

/// Undoes a failed start: dnsmasq (if it got that far), the firewall table, the bridge.
async fn undo(plan: &HostPlan, netlink: &Netlink) {
    if let Some(dns) = &plan.dnsmasq
        && let Ok(Some(running)) = Dnsmasq::reattach(&plan.network, &dns.files).await
        && let Err(error) = running.stop().await
    {
        tracing::warn!(network = %plan.network, %error, "cannot stop dnsmasq after a failed start");
    }
    remove_firewall(plan).await;
    if let Err(error) = netlink.delete_bridge(&plan.bridge.name).await {
        tracing::warn!(network = %plan.network, %error, "cannot delete the bridge after a failed start");
    }
}

async fn remove_firewall(plan: &HostPlan) {
    let Some(firewall) = &plan.firewall else {
        return;
    };
    for table in &firewall.tables {
        if let Err(error) = nft::delete(table).await {
            tracing::warn!(network = %plan.network, %table, %error, "cannot delete the network's nftables table");
        }
    }
}

/// Stops the network of `plan`: dnsmasq, the firewall table, the bridge (with its addresses
/// and any ports still on it). Every step is tried; the first failure is returned.
pub async fn stop(plan: &HostPlan, running: RunningNetwork) -> Result<(), HostError> {
    let mut first: Option<HostError> = None;
    let dnsmasq = match running.dnsmasq {
        Some(dnsmasq) => Some(dnsmasq),
        None => match &plan.dnsmasq {
            Some(dns) => Dnsmasq::reattach(&plan.network, &dns.files).await?,
            None => None,
        },
    };
    if let Some(dnsmasq) = dnsmasq
        && let Err(error) = dnsmasq.stop().await
    {
        first.get_or_insert(error.into());
    }
    if let Some(firewall) = &plan.firewall {
        for table in &firewall.tables {
            if let Err(error) = nft::delete(table).await {
                first.get_or_insert(error.into());
            }
        }
    }
    match Netlink::open() {
        Ok(netlink) => {
            if let Err(error) = netlink.delete_bridge(&plan.bridge.name).await {
                first.get_or_insert(error.into());
            }
        }
        Err(error) => {
            first.get_or_insert(error.into());
        }
    }
    first.map_or(Ok(()), Err)
}

/// After a restart of the service: finds the network of `plan` on the host. `None` when
/// its bridge is gone (someone deleted it, or the host rebooted): the network is not
/// running any more. A missing firewall table is put back and a dead dnsmasq started
/// again, so a network the service believes running really serves.
pub async fn reattach(plan: &HostPlan) -> Result<Option<RunningNetwork>, HostError> {
    let netlink = Netlink::open()?;
    match netlink.device(&plan.bridge.name).await? {
        Some(device) if device.is_bridge() => {}
        _ => return Ok(None),
    }
    if let Some(firewall) = &plan.firewall {
        let mut complete = true;
        for table in &firewall.tables {
            complete &= nft::exists(table).await?;
        }
        if !complete {
            tracing::warn!(network = %plan.network, "the network's nftables table was gone; putting it back");
            nft::apply(&firewall.tables, &firewall.ruleset).await?;
        }
    }
    let dnsmasq = match &plan.dnsmasq {
        None => None,
        Some(dns) => match Dnsmasq::reattach(&plan.network, &dns.files).await? {
            Some(running) => Some(running),
            None => {
                tracing::warn!(network = %plan.network, "the network's dnsmasq was not running; starting it again");
                write_hosts_files(&plan.network, dns)?;
                Some(Dnsmasq::start(&plan.network, &dns.files, &dns.conf).await?)
            }
        },
    };
    Ok(Some(RunningNetwork { dnsmasq }))
}

/// A live change of DHCP or DNS hosts: rewrites the hosts files and tells dnsmasq to read
/// them again (SIGHUP; dnsmasq re-reads hosts files but not its configuration).
pub fn reload_hosts(
    network: &str,
    running: &RunningNetwork,
    dns: &DnsmasqPlan,
) -> Result<(), HostError> {
    write_hosts_files(network, dns)?;
    if let Some(dnsmasq) = &running.dnsmasq {
        dnsmasq.reload()?;
    }
    Ok(())
}

/// A live change of DHCP or DNS hosts where dnsmasq cannot read its hosts files again by
/// itself (they lie under a directory `nobody` cannot search): dnsmasq is stopped and
/// started again, reading them as root. Leases survive in its lease file.
pub async fn restart_dnsmasq(
    network: &str,
    running: RunningNetwork,
    dns: &DnsmasqPlan,
) -> Result<RunningNetwork, HostError> {
    let old = match running.dnsmasq {
        Some(dnsmasq) => Some(dnsmasq),
        None => Dnsmasq::reattach(network, &dns.files).await?,
    };
    if let Some(old) = old {
        old.stop().await?;
    }
    write_hosts_files(network, dns)?;
    let dnsmasq = Dnsmasq::start(network, &dns.files, &dns.conf).await?;
    Ok(RunningNetwork {
        dnsmasq: Some(dnsmasq),
    })
}

/// Writes the hosts files readable by dnsmasq, which drops to `nobody` and reads them again
/// as that user on SIGHUP.
fn write_hosts_files(network: &str, dns: &DnsmasqPlan) -> Result<(), HostError> {
    use std::os::unix::fs::PermissionsExt;
    for (path, text) in &dns.hosts_files {
        let written = virtplane_common::store::write_runtime(path, text.as_bytes())
            .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)));
        written.map_err(|source| HostError::Write {
            network: network.to_owned(),
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(())
}
