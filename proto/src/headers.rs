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
