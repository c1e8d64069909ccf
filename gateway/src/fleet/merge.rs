//! List calls over many nodes: every node answers the same request, and the gateway merges
//! the answers through the descriptor set, so a new list needs no gateway change.
//!
//! The rule, for a response with one repeated message field (the items):
//! - each item gets the node's name in its `node` field, and `node_unreachable` set when it
//!   comes from an unreachable node's last answer (kept per node and request, so a node that
//!   goes down does not make its objects vanish);
//! - items are sorted by `name` when they have one (every node sorts its own by name);
//! - paging (`page_size`/`page_token`/`next_page_token`) is by name, so the gateway passes the
//!   caller's page token to every node, keeps the first `page_size` merged items and names
//!   the last one as the next token;
//! - any other field (a node's event sequence number) means nothing across nodes and is left
//!   unset.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use prost::Message;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, Value,
};
use tonic::Status;

/// The most (node, method, request) answers kept for unreachable nodes.
const MAX_CACHED_LISTS: usize = 256;

/// One node's answer to a fanned-out list.
#[derive(Debug, Clone)]
pub struct NodeAnswer {
    pub node: String,
    /// The encoded response.
    pub response: Bytes,
    /// True when the node did not answer and `response` is its last answer.
    pub unreachable: bool,
}

/// The last answer of every node to every list request, for when the node is down.
#[derive(Debug, Default)]
pub struct ListCache {
    answers: Mutex<HashMap<(String, String, Bytes), Bytes>>,
}

impl ListCache {
    pub fn store(&self, node: &str, path: &str, request: &Bytes, response: &Bytes) {
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        if answers.len() >= MAX_CACHED_LISTS {
            answers.clear();
        }
        answers.insert(
            (node.to_owned(), path.to_owned(), request.clone()),
            response.clone(),
        );
    }

    pub fn last(&self, node: &str, path: &str, request: &Bytes) -> Option<Bytes> {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(node.to_owned(), path.to_owned(), request.clone()))
            .cloned()
    }
}

/// A merged list.
#[derive(Debug)]
pub struct Merged {
    /// The encoded response.
    pub message: Vec<u8>,
    /// (name, node) of every item a node answered with just now, for names only one node
    /// has: owners worth caching.
    pub owners: Vec<(String, String)>,
    /// Names more than one node answered with: no owner may be cached for them.
    pub shared: Vec<String>,
}

/// Merges the answers (in node order) into one response of type `output`. `request` is the
/// caller's decoded request, for its page size.
pub fn merge(
    output: &MessageDescriptor,
    request: &DynamicMessage,
    answers: &[NodeAnswer],
) -> Result<Merged, Status> {
    let items_field = items_field(output).ok_or_else(|| {
        Status::unimplemented(format!(
            "{} has no list of items, so the gateway cannot merge it over many nodes; name a node",
            output.full_name()
        ))
    })?;
    let mut items: Vec<DynamicMessage> = Vec::new();
    let mut owners = Vec::new();
    let mut more_on_some_node = false;
    for answer in answers {
        let response =
            DynamicMessage::decode(output.clone(), answer.response.clone()).map_err(|err| {
                Status::internal(format!(
                    "node {} sent an undecodable {}: {err}",
                    answer.node,
                    output.full_name()
                ))
            })?;
        if !answer.unreachable
            && response
                .get_field_by_name("next_page_token")
                .is_some_and(|token| token.as_str().is_some_and(|t| !t.is_empty()))
        {
            more_on_some_node = true;
        }
        if let Value::List(list) = response.get_field(&items_field).into_owned() {
            for value in list {
                if let Value::Message(mut item) = value {
                    mark(&mut item, &answer.node, answer.unreachable);
                    if let (false, Some(name)) = (answer.unreachable, name_of(&item)) {
                        owners.push((name, answer.node.clone()));
                    }
                    items.push(item);
                }
            }
        }
    }
    items.sort_by_key(name_of);
    // A name on two nodes has no one owner: the caller must name the node.
    let mut claims: HashMap<&str, usize> = HashMap::new();
    for (name, _) in &owners {
        *claims.entry(name.as_str()).or_default() += 1;
    }
    let shared: Vec<String> = claims
        .into_iter()
        .filter(|(_, count)| *count > 1)
        .map(|(name, _)| name.to_owned())
        .collect();
    owners.retain(|(name, _)| !shared.contains(name));
    let page_size = request
        .get_field_by_name("page_size")
        .and_then(|v| v.as_u32())
        .unwrap_or(0) as usize;
    let mut merged = DynamicMessage::new(output.clone());
    if page_size > 0 && (items.len() > page_size || more_on_some_node) {
        let truncated = items.len() > page_size;
        items.truncate(page_size);
        if (truncated || more_on_some_node)
            && let Some(last) = items.last().and_then(name_of)
            && output.get_field_by_name("next_page_token").is_some()
        {
            merged.set_field_by_name("next_page_token", Value::String(last));
        }
    }
    merged.set_field(
        &items_field,
        Value::List(items.into_iter().map(Value::Message).collect()),
    );
    Ok(Merged {
        message: merged.encode_to_vec(),
        owners,
        shared,
    })
}

/// The response's list of items: its one repeated message field.
fn items_field(output: &MessageDescriptor) -> Option<FieldDescriptor> {
    output
        .fields()
        .find(|field| field.is_list() && matches!(field.kind(), Kind::Message(_)))
}

fn mark(item: &mut DynamicMessage, node: &str, unreachable: bool) {
    if item.descriptor().get_field_by_name("node").is_some() {
        item.set_field_by_name("node", Value::String(node.to_owned()));
    }
    if unreachable
        && item
            .descriptor()
            .get_field_by_name("node_unreachable")
            .is_some()
    {
        item.set_field_by_name("node_unreachable", Value::Bool(true));
    }
}

fn name_of(item: &DynamicMessage) -> Option<String> {
    item.get_field_by_name("name")
        .and_then(|v| v.as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use prost_reflect::DescriptorPool;
    use virtplane_proto::v1 as pb;

    use super::*;

    fn pool() -> DescriptorPool {
        DescriptorPool::decode(virtplane_proto::FILE_DESCRIPTOR_SET).unwrap()
    }

    fn domains(names: &[&str], next: &str) -> Bytes {
        let response = pb::ListDomainsResponse {
            domains: names
                .iter()
                .map(|name| pb::DomainSummary {
                    name: (*name).to_owned(),
                    ..Default::default()
                })
                .collect(),
            next_page_token: next.to_owned(),
            event_sequence: 7,
        };
        Bytes::from(response.encode_to_vec())
    }

    fn answer(node: &str, response: Bytes, unreachable: bool) -> NodeAnswer {
        NodeAnswer {
            node: node.to_owned(),
            response,
            unreachable,
        }
    }

    fn run(request: pb::ListDomainsRequest, answers: &[NodeAnswer]) -> pb::ListDomainsResponse {
        let pool = pool();
        let output = pool
            .get_message_by_name("virtplane.v1.ListDomainsResponse")
            .unwrap();
        let input = pool
            .get_message_by_name("virtplane.v1.ListDomainsRequest")
            .unwrap();
        let request = DynamicMessage::decode(input, &request.encode_to_vec()[..]).unwrap();
        let merged = merge(&output, &request, answers).unwrap();
        pb::ListDomainsResponse::decode(&merged.message[..]).unwrap()
    }

    #[test]
    fn items_are_merged_by_name_with_their_node() {
        let merged = run(
            pb::ListDomainsRequest::default(),
            &[
                answer("a", domains(&["db", "web"], ""), false),
                answer("b", domains(&["cache", "zeta"], ""), true),
            ],
        );
        let rows: Vec<(&str, &str, bool)> = merged
            .domains
            .iter()
            .map(|d| (d.name.as_str(), d.node.as_str(), d.node_unreachable))
            .collect();
        assert_eq!(
            rows,
            [
                ("cache", "b", true),
                ("db", "a", false),
                ("web", "a", false),
                ("zeta", "b", true)
            ]
        );
        assert_eq!(merged.next_page_token, "");
        assert_eq!(
            merged.event_sequence, 0,
            "per-node sequences are not merged"
        );
    }

    #[test]
    fn owners_are_named_only_for_names_one_reachable_node_has() {
        let pool = pool();
        let output = pool
            .get_message_by_name("virtplane.v1.ListDomainsResponse")
            .unwrap();
        let input = pool
            .get_message_by_name("virtplane.v1.ListDomainsRequest")
            .unwrap();
        let merged = merge(
            &output,
            &DynamicMessage::new(input),
            &[
                answer("a", domains(&["default", "web"], ""), false),
                answer("b", domains(&["default", "db"], ""), false),
                answer("c", domains(&["old"], ""), true),
            ],
        )
        .unwrap();
        assert_eq!(merged.shared, ["default"]);
        let mut owners = merged.owners;
        owners.sort();
        assert_eq!(
            owners,
            [
                ("db".to_owned(), "b".to_owned()),
                ("web".to_owned(), "a".to_owned())
            ]
        );
    }

    #[test]
    fn pages_are_cut_by_name_across_nodes() {
        let request = pb::ListDomainsRequest {
            page_size: 2,
            ..Default::default()
        };
        let merged = run(
            request.clone(),
            &[
                answer("a", domains(&["a1", "a3"], "a3"), false),
                answer("b", domains(&["a2", "b9"], ""), false),
            ],
        );
        let names: Vec<&str> = merged.domains.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["a1", "a2"]);
        assert_eq!(merged.next_page_token, "a2");
        // The last page: nothing more anywhere.
        let merged = run(
            request.clone(),
            &[
                answer("a", domains(&["x"], ""), false),
                answer("b", domains(&["y"], ""), false),
            ],
        );
        assert_eq!(merged.domains.len(), 2);
        assert_eq!(merged.next_page_token, "");
        // Exactly a page here, but a node has more: the caller must ask again.
        let merged = run(
            request,
            &[
                answer("a", domains(&["x", "z"], "z"), false),
                answer("b", domains(&[], ""), false),
            ],
        );
        assert_eq!(merged.next_page_token, "z");
    }

    #[test]
    fn a_response_without_items_cannot_be_merged() {
        let pool = pool();
        let output = pool
            .get_message_by_name("virtplane.v1.GetNodeInfoResponse")
            .unwrap();
        let input = pool
            .get_message_by_name("virtplane.v1.GetNodeInfoRequest")
            .unwrap();
        let err = merge(&output, &DynamicMessage::new(input), &[]).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unimplemented);
        assert!(
            err.message().contains("GetNodeInfoResponse"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn the_last_answers_are_kept_per_node_and_request() {
        let cache = ListCache::default();
        let request = Bytes::from_static(b"r");
        cache.store("a", "/p", &request, &Bytes::from_static(b"answer"));
        assert_eq!(cache.last("a", "/p", &request).unwrap(), &b"answer"[..]);
        assert!(cache.last("b", "/p", &request).is_none());
        assert!(
            cache
                .last("a", "/p", &Bytes::from_static(b"other"))
                .is_none()
        );
    }
}
