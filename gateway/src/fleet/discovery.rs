//! Nodes from DNS: `--node-dns SERVICE=HOST:PORT`, typically the node services' headless
//! Service in Kubernetes, whose name resolves to one address per node. Every address is one
//! node, whose services listen on the ports given; the node is named by the name its domain
//! service reports (`GetNodeInfo.node_name`: its `--node-name`, else its host name), else by
//! its address.
//!
//! A node that drops out of DNS (its pod deleted, or not ready) is kept for
//! [`FORGET_AFTER`], so that its objects show as unreachable instead of vanishing from lists
//! while it restarts.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use virtplane_common::server::ListenAddr;

use super::spec::NodeDnsSpec;
use super::{Fleet, Node};
use crate::backends::{BackendSpec, Backends};

/// How often the names are resolved again.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(15);
/// How long one resolution may take.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a node that left DNS is still listed (as unreachable).
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// A discovered node's address and when DNS last named it.
struct Seen {
    node: Arc<Node>,
    last_seen: Instant,
}

/// Resolves the `--node-dns` names now and every [`REFRESH_INTERVAL`], updating the fleet.
/// The first round finishes before this returns, so the gateway starts with the nodes it
/// can find.
pub async fn spawn(fleet: Arc<Fleet>) {
    if fleet.dns().is_empty() {
        return;
    }
    let mut known: HashMap<IpAddr, Seen> = HashMap::new();
    refresh(&fleet, &mut known).await;
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(REFRESH_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            refresh(&fleet, &mut known).await;
        }
    });
}

async fn refresh(fleet: &Fleet, known: &mut HashMap<IpAddr, Seen>) {
    let mut services: BTreeMap<IpAddr, Vec<BackendSpec>> = BTreeMap::new();
    for spec in fleet.dns() {
        match resolve(spec).await {
            Ok(addresses) => {
                for ip in addresses {
                    services.entry(ip).or_default().push(BackendSpec {
                        name: spec.service.clone(),
                        addr: ListenAddr::Tcp(SocketAddr::new(ip, spec.port)),
                    });
                }
            }
            Err(why) => tracing::warn!(host = %spec.host, "node discovery: {why}"),
        }
    }
    let now = Instant::now();
    // New addresses, changed ones, and those still named by their address (their domain
    // service did not answer yet) are named now, all at once.
    let mut naming = tokio::task::JoinSet::new();
    for (ip, specs) in services {
        match known.get_mut(&ip) {
            Some(seen) if same_services(&seen.node, &specs) && seen.node.name != ip.to_string() => {
                seen.last_seen = now;
            }
            Some(seen) if same_services(&seen.node, &specs) => {
                let backends = seen.node.backends.clone();
                naming.spawn(async move { (ip, node_name(ip, &backends).await, backends) });
            }
            _ => {
                let backends = Backends::with_tls(&specs, fleet.tls());
                naming.spawn(async move { (ip, node_name(ip, &backends).await, backends) });
            }
        }
    }
    while let Some(Ok((ip, mut name, backends))) = naming.join_next().await {
        // A name another address has: the newer address wins if the other one left DNS
        // (a node that changed address), else this one goes by its address.
        let holder = known
            .iter()
            .find(|(other, seen)| **other != ip && seen.node.name == name)
            .map(|(other, seen)| (*other, seen.last_seen == now));
        match holder {
            Some((other, false)) => {
                tracing::info!(node = %name, old = %other, new = %ip, "node moved to a new address");
                known.remove(&other);
            }
            Some((_, true)) => {
                tracing::warn!(node = %name, address = %ip, "another node has this name: naming it by its address");
                name = ip.to_string();
            }
            None => {}
        }
        if fleet.is_configured(&name) {
            tracing::warn!(node = %name, address = %ip, "a configured node has this name: naming it by its address");
            name = ip.to_string();
        }
        let renamed = known.get(&ip).is_none_or(|seen| seen.node.name != name);
        if renamed {
            tracing::info!(node = %name, address = %ip, "node discovered");
        }
        known.insert(
            ip,
            Seen {
                node: Arc::new(Node { name, backends }),
                last_seen: now,
            },
        );
    }
    known.retain(|ip, seen| {
        let keep = now.duration_since(seen.last_seen) < FORGET_AFTER;
        if !keep {
            tracing::info!(node = %seen.node.name, address = %ip, "node forgotten: gone from DNS");
        }
        keep
    });
    fleet.set_discovered(
        known
            .values()
            .map(|seen| (seen.node.name.clone(), seen.node.clone()))
            .collect(),
    );
}

async fn resolve(spec: &NodeDnsSpec) -> Result<Vec<IpAddr>, String> {
    let lookup = tokio::net::lookup_host((spec.host.as_str(), spec.port));
    let addresses = tokio::time::timeout(RESOLVE_TIMEOUT, lookup)
        .await
        .map_err(|_| format!("no DNS answer for {} within {RESOLVE_TIMEOUT:?}", spec.host))?
        .map_err(|err| format!("cannot resolve {}: {err}", spec.host))?;
    let mut ips: Vec<IpAddr> = addresses.map(|a| a.ip()).collect();
    ips.sort();
    ips.dedup();
    Ok(ips)
}

fn same_services(node: &Node, specs: &[BackendSpec]) -> bool {
    specs.iter().all(|spec| {
        node.backends
            .get(&spec.name)
            .is_some_and(|b| b.addr == spec.addr.to_string())
    })
}

/// The host name the node's domain service reports, else the address.
async fn node_name(ip: IpAddr, backends: &Backends) -> String {
    let Some(domain) = backends.get("domain") else {
        return ip.to_string();
    };
    let answer = super::placement::node_info(&ip.to_string(), domain, &super::own_identity()).await;
    match answer {
        Ok(info) if super::spec::is_node_name(&info.node_name) => info.node_name,
        Ok(info) if super::spec::is_node_name(&info.hostname) => info.hostname,
        Ok(_) => ip.to_string(),
        Err(status) => {
            tracing::debug!(address = %ip, "node name: {}", status.message());
            ip.to_string()
        }
    }
}
