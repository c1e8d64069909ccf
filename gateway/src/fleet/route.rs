//! Which node a call goes to, and the fan-out of lists.
//!
//! In order:
//! 1. the node the caller names in the `virtplane-node` header (virtctl `--node`);
//! 2. a call naming an object (the request's `object_key` field): the node that owns it;
//! 3. a list (`List…`, unary, naming no object): every node, answers merged;
//! 4. a definition (`Define…`/`Create…` with an `xml` field): the node that already has the
//!    name, else the one [`placement`](super::placement) picks;
//! 5. anything else is per node (host facts, event streams): with one node, that node; with
//!    more, the caller must name one.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::Status;
use virtplane_common::status::with_reason;
use virtplane_proto::acl::{MethodAcl, ObjectKey, ObjectKind};

use super::merge::{self, NodeAnswer};
use super::owners::Owner;
use super::{Fleet, NODE_HEADER, Node, call, placement};

/// How long each node may take to answer its part of a list.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a call goes.
#[derive(Debug)]
pub enum Route {
    /// To one node. `cached` is the object key when the node came from the owner cache,
    /// which may be stale: a NOT_FOUND from it is worth one more look.
    Node {
        node: Arc<Node>,
        cached: Option<ObjectKey>,
    },
    /// To every node, answers merged.
    FanOut,
    /// Nowhere: the status says why.
    Refuse(Status),
}

/// The object kind a service's definitions create.
fn defined_kind(backend: &str) -> Option<ObjectKind> {
    match backend {
        "domain" => Some(ObjectKind::Domain),
        "network" => Some(ObjectKind::Network),
        "storage" => Some(ObjectKind::StoragePool),
        _ => None,
    }
}

pub fn is_list(acl: &MethodAcl) -> bool {
    acl.method.starts_with("List") && !acl.client_streaming && !acl.server_streaming
}

/// A call that makes a new object from XML and names no existing one (CreateVolume, which
/// names its pool, is routed by the pool).
fn is_definition(acl: &MethodAcl) -> bool {
    (acl.method.starts_with("Define") || acl.method.starts_with("Create"))
        && !acl.is_keyed()
        && acl.input().get_field_by_name("xml").is_some()
}

/// Decides where a call goes. `message` is the request's first message (None when it could
/// not be read whole, e.g. over the inspection limit).
pub async fn decide(
    fleet: &Fleet,
    acl: &MethodAcl,
    message: Option<&Bytes>,
    headers: &HeaderMap,
) -> Route {
    if let Some(named) = headers.get(NODE_HEADER) {
        let name = named.to_str().unwrap_or_default();
        let Some(node) = fleet.node(name) else {
            return Route::Refuse(with_reason(
                tonic::Code::NotFound,
                format!("no node named '{name}' (nodes: {})", fleet.names()),
                "NODE_NOT_FOUND",
            ));
        };
        if is_definition(acl)
            && let Some(existing) = defined_elsewhere(fleet, acl, message, headers, &node).await
        {
            return Route::Refuse(existing);
        }
        return Route::Node { node, cached: None };
    }
    let key = message.and_then(|m| acl.object_key(m).ok().flatten());
    if let Some(key) = key {
        return by_owner(fleet, &key, headers).await;
    }
    if is_list(acl) && message.is_some() {
        return Route::FanOut;
    }
    if is_definition(acl) {
        return for_definition(fleet, acl, message, headers).await;
    }
    let nodes = fleet.nodes();
    match nodes.as_slice() {
        [only] => Route::Node {
            node: only.clone(),
            cached: None,
        },
        _ => Route::Refuse(with_reason(
            tonic::Code::FailedPrecondition,
            format!(
                "{}.{} is answered per node: name one with --node (the {NODE_HEADER} header); nodes: {}",
                acl.service.rsplit('.').next().unwrap_or(&acl.service),
                acl.method,
                fleet.names()
            ),
            "NODE_REQUIRED",
        )),
    }
}

async fn by_owner(fleet: &Fleet, key: &ObjectKey, headers: &HeaderMap) -> Route {
    match fleet.owners.find(fleet, key, headers).await {
        Owner::Found { node, cached } => Route::Node {
            node,
            cached: cached.then(|| key.clone()),
        },
        Owner::Missing { unreachable } if unreachable.is_empty() => {
            // Nobody has it: the first node answers NOT_FOUND in the service's own words.
            match fleet.nodes().into_iter().next() {
                Some(node) => Route::Node { node, cached: None },
                None => Route::Refuse(no_nodes()),
            }
        }
        Owner::Missing { unreachable } => Route::Refuse(with_reason(
            tonic::Code::Unavailable,
            format!(
                "{} '{}' is on none of the nodes that answered; unreachable: {}",
                key.kind.as_str(),
                key.value,
                unreachable.join(", ")
            ),
            "NODE_UNREACHABLE",
        )),
        Owner::Ambiguous { nodes } => Route::Refuse(ambiguous(key, &nodes)),
        Owner::Refused(status) => Route::Refuse(status),
    }
}

/// More than one node has an object of that name: the caller must say which.
fn ambiguous(key: &ObjectKey, nodes: &[String]) -> Status {
    with_reason(
        tonic::Code::FailedPrecondition,
        format!(
            "{} '{}' exists on nodes {}: name one with --node",
            key.kind.as_str(),
            key.value,
            nodes.join(", ")
        ),
        "ON_MANY_NODES",
    )
}

/// The name a definition request's XML gives its object.
fn definition_name(acl: &MethodAcl, message: Option<&Bytes>) -> Option<String> {
    message
        .and_then(|m| DynamicMessage::decode(acl.input().clone(), m.clone()).ok())
        .and_then(|request| {
            request
                .get_field_by_name("xml")
                .and_then(|xml| xml.as_str().and_then(placement::defined_name))
        })
}

/// ALREADY_EXISTS when a definition sent to `node` names an object another node has: names
/// are unique across the fleet.
async fn defined_elsewhere(
    fleet: &Fleet,
    acl: &MethodAcl,
    message: Option<&Bytes>,
    headers: &HeaderMap,
    node: &Node,
) -> Option<Status> {
    let name = definition_name(acl, message)?;
    let kind = defined_kind(&acl.backend)?;
    let key = ObjectKey {
        kind,
        value: name.clone(),
    };
    // Asked afresh: a cached owner may have undefined it since.
    match fleet.owners.find_fresh(fleet, &key, headers).await {
        Owner::Found { node: owner, .. } if owner.name != node.name => Some(with_reason(
            tonic::Code::AlreadyExists,
            format!(
                "{} '{name}' already exists on node {}: names are unique across the nodes",
                kind.as_str(),
                owner.name
            ),
            "EXISTS_ON_ANOTHER_NODE",
        )),
        Owner::Ambiguous { nodes } if nodes.iter().any(|n| *n != node.name) => Some(with_reason(
            tonic::Code::AlreadyExists,
            format!(
                "{} '{name}' already exists on nodes {}: names are unique across the nodes",
                kind.as_str(),
                nodes.join(", ")
            ),
            "EXISTS_ON_ANOTHER_NODE",
        )),
        Owner::Refused(status) => Some(status),
        _ => None,
    }
}

async fn for_definition(
    fleet: &Fleet,
    acl: &MethodAcl,
    message: Option<&Bytes>,
    headers: &HeaderMap,
) -> Route {
    let name = definition_name(acl, message);
    let kind = defined_kind(&acl.backend);
    if let (Some(name), Some(kind)) = (&name, kind) {
        let key = ObjectKey {
            kind,
            value: name.clone(),
        };
        // Asked afresh: placing by a stale answer would put a second one elsewhere.
        match fleet.owners.find_fresh(fleet, &key, headers).await {
            Owner::Found { node, .. } => return Route::Node { node, cached: None },
            Owner::Ambiguous { nodes } => return Route::Refuse(ambiguous(&key, &nodes)),
            Owner::Refused(status) => return Route::Refuse(status),
            Owner::Missing { unreachable } if !unreachable.is_empty() => {
                tracing::warn!(
                    object = %name,
                    unreachable = %unreachable.join(", "),
                    "placing a new object while some nodes are unreachable: its name may exist there"
                );
            }
            Owner::Missing { .. } => {}
        }
    }
    // Not cached here: the definition may yet fail; the next call asks.
    match placement::most_free_memory(fleet, headers).await {
        Ok(node) => Route::Node { node, cached: None },
        Err(status) => Route::Refuse(status),
    }
}

fn no_nodes() -> Status {
    with_reason(
        tonic::Code::Unavailable,
        "the gateway knows no nodes yet (check --backend / --node-dns)",
        "NO_NODE_AVAILABLE",
    )
}

/// A list answered by every node and merged; nodes that do not answer contribute their last
/// answer, marked unreachable, and are named in the `virtplane-unreachable-nodes` header.
pub async fn fan_out(
    fleet: &Fleet,
    acl: &MethodAcl,
    output: &MessageDescriptor,
    request: Bytes,
    headers: &HeaderMap,
) -> Result<(Vec<u8>, Vec<String>), Status> {
    let decoded = DynamicMessage::decode(acl.input().clone(), request.clone()).map_err(|e| {
        Status::invalid_argument(format!("undecodable {}: {e}", acl.input().full_name()))
    })?;
    let mut asks = tokio::task::JoinSet::new();
    for node in fleet.nodes() {
        let Some(backend) = node.backends.get(&acl.backend).cloned() else {
            continue;
        };
        let (path, request, headers) = (acl.path.clone(), request.clone(), headers.clone());
        asks.spawn(async move {
            let answer = call::unary(
                &node.name,
                &backend,
                &path,
                &headers,
                &request,
                LIST_TIMEOUT,
            )
            .await;
            (node.name.clone(), answer)
        });
    }
    let mut answers = Vec::new();
    let mut unreachable = Vec::new();
    while let Some(joined) = asks.join_next().await {
        let Ok((node, answer)) = joined else { continue };
        match answer {
            Ok(response) => {
                fleet.lists.store(&node, &acl.path, &request, &response);
                answers.push(NodeAnswer {
                    node,
                    response,
                    unreachable: false,
                });
            }
            // The request itself is refused (a bad filter, a permission): every node would
            // say the same.
            Err(status) if is_request_refusal(&status) => return Err(status),
            // Any other failure is the node's: its objects are shown as last seen.
            Err(status) => {
                tracing::debug!(%node, "list: node did not answer: {}", status.message());
                if let Some(response) = fleet.lists.last(&node, &acl.path, &request) {
                    answers.push(NodeAnswer {
                        node: node.clone(),
                        response,
                        unreachable: true,
                    });
                }
                unreachable.push(node);
            }
        }
    }
    if answers.is_empty() && !unreachable.is_empty() {
        unreachable.sort();
        return Err(with_reason(
            tonic::Code::Unavailable,
            format!(
                "no node answered the list; unreachable: {}",
                unreachable.join(", ")
            ),
            "NODE_UNREACHABLE",
        ));
    }
    answers.sort_by(|a, b| a.node.cmp(&b.node));
    unreachable.sort();
    let merged = merge::merge(output, &decoded, &answers)?;
    if let Some(kind) = defined_kind(&acl.backend) {
        for (name, node) in merged.owners {
            fleet.owners.remember((kind, name), &node);
        }
        for name in merged.shared {
            fleet.owners.forget_key(&(kind, name));
        }
    }
    Ok((merged.message, unreachable))
}

/// The caller's request is refused as such (every node would refuse it), rather than one
/// node failing.
fn is_request_refusal(status: &Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::InvalidArgument | tonic::Code::PermissionDenied | tonic::Code::Unauthenticated
    )
}
