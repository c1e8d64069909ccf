//! The gateway's startup and configuration errors. Per-call errors are gRPC statuses built in
//! proxy.rs and authz.rs.

use std::path::PathBuf;

/// Why the gateway could not start (or a tokens file could not be (re)loaded).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read tokens file {path}: {source}")]
    TokensRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    TokensLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("cannot open audit log {path}: {source}")]
    AuditLog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "invalid --backend '{0}': expected NAME=ADDR, e.g. domain=unix:/run/virtplane/domain.sock"
    )]
    BackendSpec(String),
    #[error("invalid --socket-mode '{0}': expected an octal mode such as 0660")]
    SocketMode(String),
    #[error("empty token on standard input")]
    EmptyToken,
    #[error("cannot read the token from standard input: {0}")]
    Stdin(#[source] std::io::Error),
    #[error("method table: {0}")]
    MethodTable(#[from] virtplane_proto::acl::AclError),
    #[error(transparent)]
    Serve(#[from] virtplane_common::server::ServeError),
    #[error(transparent)]
    Tls(#[from] virtplane_common::tls::TlsError),
    #[error(transparent)]
    Metrics(#[from] virtplane_common::metrics::MetricsError),
}
