//! virtplane's gRPC API.
//!
//! - [`v1`]: the prost/tonic code generated from `proto/virtplane/v1/*.proto`.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptor set, custom options included, used for
//!   server reflection and by [`acl::MethodTable`].
//! - [`acl`]: the method → permission / object-key table read from the `acl` and `object_key`
//!   options, so the gateway needs no per-method code.

pub mod acl;
pub mod headers;

/// Generated messages, clients and servers of package `virtplane.v1`.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("virtplane.v1");
}

/// The encoded `FileDescriptorSet` of every virtplane proto file (and its imports).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/virtplane_descriptor.bin"));
