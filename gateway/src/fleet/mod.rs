//! Many nodes behind one gateway.
//!
//! A node is one set of node services (domain, network, storage) on one virtualization host.
//! The gateway keeps no state of its own about them: it learns the nodes from its
//! configuration (`--backend NODE/SERVICE=ADDR`) or from DNS (`--node-dns`), and finds the
//! node that owns an object by asking the nodes, caching the answer.
//!
//! - [`spec`]: the command-line forms.
//! - [`call`]: the gateway's own unary calls to a node.
//! - [`owners`]: which node owns a named object (asked, then cached).
//! - [`merge`]: list answers of every node merged into one, through the descriptor set.
//! - [`placement`]: which node a new object goes to.
//! - [`discovery`]: nodes from DNS.
//! - [`route`]: the routing decision per call.
//!
//! With one node and no DNS (the one-host setup) nothing of this runs: calls go straight to
//! the node, as before there were fleets.

pub mod call;
pub mod discovery;
pub mod health;
pub mod merge;
pub mod owners;
pub mod placement;
pub mod route;
pub mod spec;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use virtplane_common::tls::ClientTls;

use crate::backends::{BackendSpec, Backends};
use spec::{NodeBackendSpec, NodeDnsSpec};

pub use virtplane_proto::headers::{
    NODE as NODE_HEADER, UNREACHABLE_NODES as UNREACHABLE_NODES_HEADER,
};

/// One node: its name and its services.
#[derive(Debug)]
pub struct Node {
    pub name: String,
    pub backends: Backends,
}

/// Every node the gateway knows, by name.
#[derive(Debug)]
pub struct Fleet {
    configured: BTreeMap<String, Arc<Node>>,
    discovered: RwLock<BTreeMap<String, Arc<Node>>>,
    dns: Vec<NodeDnsSpec>,
    tls: Option<ClientTls>,
    pub owners: owners::Owners,
    pub lists: merge::ListCache,
}

impl Fleet {
    /// The configured nodes (connecting lazily), and the DNS names to discover more from.
    pub fn new(specs: &[NodeBackendSpec], dns: Vec<NodeDnsSpec>, tls: Option<&ClientTls>) -> Self {
        let mut by_node: BTreeMap<String, Vec<BackendSpec>> = BTreeMap::new();
        for spec in specs {
            by_node
                .entry(spec.node.clone())
                .or_default()
                .push(spec.backend.clone());
        }
        let configured = by_node
            .into_iter()
            .map(|(name, specs)| {
                let node = Node {
                    backends: Backends::with_tls(&specs, tls),
                    name: name.clone(),
                };
                (name, Arc::new(node))
            })
            .collect();
        Self {
            configured,
            discovered: RwLock::new(BTreeMap::new()),
            dns,
            tls: tls.cloned(),
            owners: owners::Owners::default(),
            lists: merge::ListCache::default(),
        }
    }

    /// True for the one-host setup: a single configured node and no discovery. Calls then go
    /// straight to it, with no routing work.
    pub fn is_single(&self) -> bool {
        self.single().is_some()
    }

    /// The one node of the one-host setup (see [`Fleet::is_single`]), without the copying
    /// [`Fleet::nodes`] does: this is every call's path there.
    pub fn single(&self) -> Option<&Arc<Node>> {
        if self.dns.is_empty() && self.configured.len() == 1 {
            self.configured.values().next()
        } else {
            None
        }
    }

    /// Every node, sorted by name (configured ones win over a discovered one of the same
    /// name).
    pub fn nodes(&self) -> Vec<Arc<Node>> {
        let discovered = self.discovered.read().unwrap_or_else(|e| e.into_inner());
        let mut all = discovered.clone();
        all.extend(self.configured.clone());
        all.into_values().collect()
    }

    /// True when no node is configured or discovered (yet).
    pub fn is_empty(&self) -> bool {
        self.configured.is_empty()
            && self
                .discovered
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
    }

    pub fn node(&self, name: &str) -> Option<Arc<Node>> {
        self.configured.get(name).cloned().or_else(|| {
            self.discovered
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(name)
                .cloned()
        })
    }

    /// The names of every node, for error messages.
    pub fn names(&self) -> String {
        let names: Vec<String> = self.nodes().iter().map(|n| n.name.clone()).collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    }

    pub fn is_configured(&self, name: &str) -> bool {
        self.configured.contains_key(name)
    }

    pub fn dns(&self) -> &[NodeDnsSpec] {
        &self.dns
    }

    pub fn tls(&self) -> Option<&ClientTls> {
        self.tls.as_ref()
    }

    /// Replaces the discovered nodes (keeping the connections of those that stay).
    pub fn set_discovered(&self, nodes: BTreeMap<String, Arc<Node>>) {
        *self.discovered.write().unwrap_or_else(|e| e.into_inner()) = nodes;
    }

    pub fn discovered(&self) -> BTreeMap<String, Arc<Node>> {
        self.discovered
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The identity the gateway's own calls carry (node names, health): a reader of host facts,
/// never the trusted local peer a request without identity headers would be.
pub fn own_identity() -> http::HeaderMap {
    use virtplane_common::identity::{PERMISSIONS_HEADER, ROLE_HEADER, USER_HEADER};
    let mut headers = http::HeaderMap::new();
    headers.insert(
        USER_HEADER,
        http::HeaderValue::from_static("virtplane-gateway"),
    );
    headers.insert(ROLE_HEADER, http::HeaderValue::from_static("viewer"));
    headers.insert(
        PERMISSIONS_HEADER,
        http::HeaderValue::from_static("connect:read"),
    );
    headers
}
