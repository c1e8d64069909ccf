//! Which node owns a named object. The gateway asks every node (the services' own Lookup
//! calls, with the caller's identity) and caches the answer; an answer that turns out stale
//! (the object is gone from that node) is dropped and asked again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderMap;
use prost::Message;
use tonic::Status;
use virtplane_proto::acl::{ObjectKey, ObjectKind};
use virtplane_proto::v1 as pb;

use super::call;
use super::{Fleet, Node};

/// How long a node may take to answer whether it has an object.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// The most owners remembered; past it the cache starts over (asking again costs one round).
const MAX_CACHED: usize = 65_536;

/// What an owner is cached under: volumes named `pool/volume` under their pool, so every
/// volume of a pool shares the pool's entry.
pub type OwnerKey = (ObjectKind, String);

/// The owner cache.
#[derive(Debug, Default)]
pub struct Owners {
    cache: Mutex<HashMap<OwnerKey, String>>,
}

/// Where an object is.
#[derive(Debug)]
pub enum Owner {
    Found {
        node: Arc<Node>,
        cached: bool,
    },
    /// No node that answered has it; `unreachable` names the nodes that did not answer.
    Missing {
        unreachable: Vec<String>,
    },
    /// More than one node has an object of that name (a node that joined with its own
    /// `default` pool, a volume path that exists on every host): the caller must say which.
    Ambiguous {
        nodes: Vec<String>,
    },
    /// A node refused the lookup itself (the caller may not look the object up).
    Refused(Status),
}

/// The Lookup call that finds an object: backend, path and encoded request.
#[derive(Debug, PartialEq)]
pub struct LookupCall {
    pub cache_key: OwnerKey,
    pub backend: &'static str,
    pub path: &'static str,
    pub request: Vec<u8>,
}

impl LookupCall {
    pub fn for_key(key: &ObjectKey) -> Self {
        let value = key.value.as_str();
        let by_uuid = value.strip_prefix("uuid:");
        match key.kind {
            ObjectKind::Domain => {
                let id = match by_uuid {
                    Some(uuid) => pb::domain_ref::Id::Uuid(uuid.to_owned()),
                    None => pb::domain_ref::Id::Name(value.to_owned()),
                };
                let request = pb::LookupDomainRequest {
                    domain: Some(pb::DomainRef { id: Some(id) }),
                };
                Self::new(key, "domain", "/virtplane.v1.DomainService/Lookup", request)
            }
            ObjectKind::Network => {
                let id = match by_uuid {
                    Some(uuid) => pb::network_ref::Id::Uuid(uuid.to_owned()),
                    None => pb::network_ref::Id::Name(value.to_owned()),
                };
                let request = pb::LookupNetworkRequest {
                    network: Some(pb::NetworkRef { id: Some(id) }),
                };
                Self::new(
                    key,
                    "network",
                    "/virtplane.v1.NetworkService/Lookup",
                    request,
                )
            }
            ObjectKind::StoragePool => pool_lookup(key.kind, value, by_uuid),
            ObjectKind::StorageVol => match value.split_once('/') {
                // `pool/volume`: the pool's node has it. A path starts with '/'.
                Some((pool, _)) if !pool.is_empty() => {
                    pool_lookup(ObjectKind::StoragePool, pool, None)
                }
                _ => {
                    let id = if value.starts_with('/') {
                        pb::storage_vol_ref::Id::Path(value.to_owned())
                    } else {
                        pb::storage_vol_ref::Id::Key(value.to_owned())
                    };
                    let request = pb::LookupVolumeRequest {
                        volume: Some(pb::StorageVolRef { id: Some(id) }),
                    };
                    Self::new(
                        key,
                        "storage",
                        "/virtplane.v1.StorageService/LookupVolume",
                        request,
                    )
                }
            },
        }
    }

    fn new(
        key: &ObjectKey,
        backend: &'static str,
        path: &'static str,
        request: impl Message,
    ) -> Self {
        Self {
            cache_key: (key.kind, key.value.clone()),
            backend,
            path,
            request: request.encode_to_vec(),
        }
    }
}

fn pool_lookup(kind: ObjectKind, name: &str, by_uuid: Option<&str>) -> LookupCall {
    let id = match by_uuid {
        Some(uuid) => pb::storage_pool_ref::Id::Uuid(uuid.to_owned()),
        None => pb::storage_pool_ref::Id::Name(name.to_owned()),
    };
    let request = pb::LookupPoolRequest {
        pool: Some(pb::StoragePoolRef { id: Some(id) }),
    };
    LookupCall {
        cache_key: (kind, name.to_owned()),
        backend: "storage",
        path: "/virtplane.v1.StorageService/LookupPool",
        request: request.encode_to_vec(),
    }
}

impl Owners {
    /// The node that owns `key`: from the cache, else by asking every node at once.
    pub async fn find(&self, fleet: &Fleet, key: &ObjectKey, headers: &HeaderMap) -> Owner {
        let lookup = LookupCall::for_key(key);
        if let Some(name) = self.cached(&lookup.cache_key) {
            match fleet.node(&name) {
                Some(node) => return Owner::Found { node, cached: true },
                None => self.forget_key(&lookup.cache_key),
            }
        }
        self.ask(fleet, lookup, headers).await
    }

    /// The node that owns `key` now, asking every node whatever the cache says: for
    /// decisions a stale answer would get wrong, such as refusing a name as taken.
    pub async fn find_fresh(&self, fleet: &Fleet, key: &ObjectKey, headers: &HeaderMap) -> Owner {
        let lookup = LookupCall::for_key(key);
        self.forget_key(&lookup.cache_key);
        self.ask(fleet, lookup, headers).await
    }

    /// Asks every node at once; exactly one claim is an owner (and cached).
    async fn ask(&self, fleet: &Fleet, lookup: LookupCall, headers: &HeaderMap) -> Owner {
        let mut asks = tokio::task::JoinSet::new();
        for node in fleet.nodes() {
            let Some(backend) = node.backends.get(lookup.backend).cloned() else {
                continue;
            };
            let (path, request, headers) = (lookup.path, lookup.request.clone(), headers.clone());
            asks.spawn(async move {
                let answer = call::unary(
                    &node.name,
                    &backend,
                    path,
                    &headers,
                    &request,
                    LOOKUP_TIMEOUT,
                )
                .await;
                (node, answer)
            });
        }
        let mut found: Vec<Arc<Node>> = Vec::new();
        let mut unreachable = Vec::new();
        let mut refused = None;
        while let Some(joined) = asks.join_next().await {
            let Ok((node, answer)) = joined else { continue };
            match answer {
                Ok(_) => found.push(node),
                Err(status) if is_absent(&status) => {}
                Err(status) if is_refusal(&status) => refused = Some(status),
                Err(status) => {
                    tracing::debug!(node = %node.name, "owner lookup failed: {}", status.message());
                    unreachable.push(node.name.clone());
                }
            }
        }
        if let Some(status) = refused {
            return Owner::Refused(status);
        }
        if found.len() > 1 {
            let mut nodes: Vec<String> = found.iter().map(|n| n.name.clone()).collect();
            nodes.sort();
            return Owner::Ambiguous { nodes };
        }
        match found.pop() {
            Some(node) => {
                self.remember(lookup.cache_key, &node.name);
                Owner::Found {
                    node,
                    cached: false,
                }
            }
            None => {
                unreachable.sort();
                Owner::Missing { unreachable }
            }
        }
    }

    fn cached(&self, key: &OwnerKey) -> Option<String> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Records that `node` owns `key`.
    pub fn remember(&self, key: OwnerKey, node: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(key, node.to_owned());
    }

    /// Drops the cached owner of `key` (the node said it does not have it).
    pub fn forget(&self, key: &ObjectKey) {
        self.forget_key(&LookupCall::for_key(key).cache_key);
    }

    /// Drops the cached owner of a cache key.
    pub fn forget_key(&self, key: &OwnerKey) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// The node refused the caller's lookup: every node would.
fn is_refusal(status: &Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::PermissionDenied | tonic::Code::Unauthenticated
    )
}

/// The node answered, and does not have the object.
fn is_absent(status: &Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::NotFound | tonic::Code::InvalidArgument
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: ObjectKind, value: &str) -> ObjectKey {
        ObjectKey {
            kind,
            value: value.to_owned(),
        }
    }

    #[test]
    fn lookups_use_each_services_own_call() {
        let call = LookupCall::for_key(&key(ObjectKind::Domain, "web"));
        assert_eq!(call.path, "/virtplane.v1.DomainService/Lookup");
        let request = pb::LookupDomainRequest::decode(&call.request[..]).unwrap();
        assert_eq!(
            request.domain.unwrap().id,
            Some(pb::domain_ref::Id::Name("web".into()))
        );
        let call = LookupCall::for_key(&key(ObjectKind::Network, "uuid:1234"));
        assert_eq!(call.backend, "network");
        let request = pb::LookupNetworkRequest::decode(&call.request[..]).unwrap();
        assert_eq!(
            request.network.unwrap().id,
            Some(pb::network_ref::Id::Uuid("1234".into()))
        );
    }

    #[test]
    fn volumes_by_pool_share_the_pools_entry_and_paths_are_looked_up_themselves() {
        let by_name = LookupCall::for_key(&key(ObjectKind::StorageVol, "default/disk.qcow2"));
        assert_eq!(by_name.path, "/virtplane.v1.StorageService/LookupPool");
        assert_eq!(
            by_name.cache_key,
            (ObjectKind::StoragePool, "default".to_owned())
        );
        let pool = LookupCall::for_key(&key(ObjectKind::StoragePool, "default"));
        assert_eq!(pool, by_name);
        let by_path = LookupCall::for_key(&key(ObjectKind::StorageVol, "/var/lib/a.img"));
        assert_eq!(by_path.path, "/virtplane.v1.StorageService/LookupVolume");
        let request = pb::LookupVolumeRequest::decode(&by_path.request[..]).unwrap();
        assert_eq!(
            request.volume.unwrap().id,
            Some(pb::storage_vol_ref::Id::Path("/var/lib/a.img".into()))
        );
    }

    #[test]
    fn the_cache_remembers_and_forgets() {
        let owners = Owners::default();
        let web = key(ObjectKind::Domain, "web");
        let cache_key = LookupCall::for_key(&web).cache_key;
        assert_eq!(owners.cached(&cache_key), None);
        owners.remember(cache_key.clone(), "node-a");
        assert_eq!(owners.cached(&cache_key).as_deref(), Some("node-a"));
        owners.forget(&web);
        assert_eq!(owners.cached(&cache_key), None);
    }
}
