//! Where a new object goes. The rule, stated once: the node the caller names (`--node`),
//! else the node that already has an object of that name (a define of an existing name
//! updates it where it is, as on one host), else the reachable node with the most memory
//! available for guests (`GetNodeInfo.free_memory_kib`), ties to the first by name.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use prost::Message;
use quick_xml::events::Event;
use tonic::Status;
use virtplane_common::status::with_reason;
use virtplane_proto::v1 as pb;

use super::{Fleet, Node, call};
use crate::backends::Backend;

/// How long a node may take to say how much memory it has free.
pub const NODE_INFO_TIMEOUT: Duration = Duration::from_secs(3);

const NODE_INFO_PATH: &str = "/virtplane.v1.HostService/GetNodeInfo";

/// The name a libvirt-format definition gives its object: the root element's `<name>`
/// child, its text, character and predefined entity references and CDATA joined. None when
/// there is none, or it uses an entity the services would refuse anyway (their reader takes
/// no DOCTYPE): the service then refuses the XML in its own words.
pub fn defined_name(xml: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut depth = 0usize;
    let mut name: Option<String> = None;
    loop {
        match reader.read_event().ok()? {
            Event::Start(start) => {
                depth += 1;
                if depth == 2 && start.local_name().as_ref() == b"name" {
                    name = Some(String::new());
                }
            }
            Event::End(_) => {
                if let Some(text) = name.take() {
                    let text = text.trim().to_owned();
                    return (!text.is_empty()).then_some(text);
                }
                depth = depth.checked_sub(1)?;
            }
            Event::Text(text) => {
                if let Some(name) = name.as_mut() {
                    name.push_str(&text.decode().ok()?);
                }
            }
            Event::CData(text) => {
                if let Some(name) = name.as_mut() {
                    name.push_str(&text.decode().ok()?);
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(name) = name.as_mut() {
                    name.push(entity(&reference)?);
                }
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// A character reference or one of XML's five predefined entities.
fn entity(reference: &quick_xml::events::BytesRef<'_>) -> Option<char> {
    if let Some(c) = reference.resolve_char_ref().ok()? {
        return Some(c);
    }
    match reference.as_ref() {
        b"amp" => Some('&'),
        b"lt" => Some('<'),
        b"gt" => Some('>'),
        b"quot" => Some('"'),
        b"apos" => Some('\''),
        _ => None,
    }
}

/// The reachable node with the most free memory (ties: first by name).
pub async fn most_free_memory(fleet: &Fleet, headers: &HeaderMap) -> Result<Arc<Node>, Status> {
    let mut asks = tokio::task::JoinSet::new();
    for node in fleet.nodes() {
        let Some(backend) = node.backends.get("domain").cloned() else {
            continue;
        };
        let headers = headers.clone();
        asks.spawn(async move {
            let answer = node_info(&node.name, &backend, &headers).await;
            (node, answer)
        });
    }
    let mut candidates: Vec<(u64, Arc<Node>)> = Vec::new();
    let mut refusals = Vec::new();
    while let Some(joined) = asks.join_next().await {
        let Ok((node, answer)) = joined else { continue };
        match answer {
            Ok(info) => candidates.push((info.free_memory_kib, node)),
            Err(status) => refusals.push(format!("{}: {}", node.name, status.message())),
        }
    }
    pick(candidates, |node| &node.name).ok_or_else(|| {
        refusals.sort();
        with_reason(
            tonic::Code::Unavailable,
            format!(
                "no node can take a new object: none answered how much memory it has free ({})",
                if refusals.is_empty() {
                    "no node has a domain service".to_owned()
                } else {
                    refusals.join("; ")
                }
            ),
            "NO_NODE_AVAILABLE",
        )
    })
}

/// A node's `GetNodeInfo` (its free memory, its name), bounded by [`NODE_INFO_TIMEOUT`].
pub async fn node_info(
    node: &str,
    backend: &Backend,
    headers: &HeaderMap,
) -> Result<pb::GetNodeInfoResponse, Status> {
    let request = pb::GetNodeInfoRequest {}.encode_to_vec();
    let bytes = call::unary(
        node,
        backend,
        NODE_INFO_PATH,
        headers,
        &request,
        NODE_INFO_TIMEOUT,
    )
    .await?;
    pb::GetNodeInfoResponse::decode(bytes)
        .map_err(|e| Status::internal(format!("node {node} sent undecodable node info: {e}")))
}

/// Most free memory first, then the first name.
fn pick<T>(mut candidates: Vec<(u64, T)>, name: impl Fn(&T) -> &str) -> Option<T> {
    candidates
        .sort_by(|(free_a, a), (free_b, b)| free_b.cmp(free_a).then_with(|| name(a).cmp(name(b))));
    candidates.into_iter().next().map(|(_, node)| node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_root_elements_name_child() {
        let xml = "<domain type='kvm'><name>web</name><memory>1</memory></domain>";
        assert_eq!(defined_name(xml).as_deref(), Some("web"));
        let xml = "<network>\n  <name> lan </name>\n  <bridge name='virbr9'/>\n</network>";
        assert_eq!(defined_name(xml).as_deref(), Some("lan"));
        // A <name> deeper down (a disk's driver, a pool's source) is not the object's.
        let xml = "<pool type='dir'><source><name>x</name></source><name>p</name></pool>";
        assert_eq!(defined_name(xml).as_deref(), Some("p"));
        assert_eq!(defined_name("<domain><memory>1</memory></domain>"), None);
        assert_eq!(defined_name("<domain><name></name></domain>"), None);
        assert_eq!(defined_name("not xml <"), None);
        // References and CDATA are part of the name, as the services read it.
        assert_eq!(
            defined_name("<domain><name>db&amp;x</name></domain>").as_deref(),
            Some("db&x")
        );
        assert_eq!(
            defined_name("<domain><name>&#119;eb</name></domain>").as_deref(),
            Some("web")
        );
        assert_eq!(
            defined_name("<domain><name><![CDATA[web]]></name></domain>").as_deref(),
            Some("web")
        );
        assert_eq!(defined_name("<domain><name>&custom;</name></domain>"), None);
    }

    #[test]
    fn most_free_memory_wins_and_ties_go_to_the_first_name() {
        assert_eq!(pick(vec![(10, "b"), (20, "c"), (5, "a")], |n| n), Some("c"));
        assert_eq!(pick(vec![(20, "b"), (20, "a")], |n| n), Some("a"));
        assert_eq!(pick::<&str>(vec![], |n| n), None);
    }
}
