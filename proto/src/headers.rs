//! gRPC metadata names that are part of virtplane's wire contract, shared by the services,
//! the gateway and clients so each is spelled in one place.

/// Every header virtplane itself sets starts with this; the gateway strips all such headers
/// from client requests before adding its own.
pub const PREFIX: &str = "x-virtplane-";

/// Response header naming the object a call acted on when the request has no object-key
/// field (Define, Create: the name is inside the XML); the gateway's audit line reads it.
pub const OBJECT: &str = "x-virtplane-object";

/// Initial metadata of a watch stream: the sequence number the stream starts after, so a
/// client that watched from 0 can resume without a gap.
pub const SEQUENCE: &str = "x-virtplane-sequence";

/// Request header naming the node a call is for, when one gateway serves many (virtctl
/// `--node`). Not under [`PREFIX`]: the gateway strips those from client requests.
pub const NODE: &str = "virtplane-node";

/// Response header of a list merged over many nodes: the nodes that did not answer,
/// comma-separated (their objects are listed as last seen).
pub const UNREACHABLE_NODES: &str = "virtplane-unreachable-nodes";

/// A node name as the gateway, the domain service's `--node-name` and virtctl's `--node`
/// accept it: letters, digits, `-`, `_` and `.`, at most 253 characters (a Kubernetes node
/// name is one).
pub fn is_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
