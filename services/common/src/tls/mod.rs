//! Transport security for TCP: TLS on the daemons' TCP listeners (optionally mutual: clients
//! must present a certificate from a given CA) and on the clients of those listeners (the
//! gateway's backends, the domain service's sibling services).
//!
//! Unix sockets stay plain: their file mode decides who may connect. On TCP, a node service
//! trusts its callers with everything (the identity headers they send included), so mutual
//! TLS is what makes a TCP listener safe; the gateway authenticates its callers by token and
//! may serve TLS without client certificates.
//!
//! rustls with the ring provider, set explicitly on every config, so that no process-wide
//! default provider is needed (and none can be picked up by accident).
//!
//! - [`args`]: the command-line flags, shared by every daemon.
//! - [`pem`]: reading certificates and keys, with errors that name the flag and file.
//! - [`server`]: the TLS acceptor and the stream of accepted connections.
//! - [`client`]: the TLS connector, with failures that name the address and say TLS failed.
//! - [`peer`]: a peer certificate's subject, for the logs.
//! - [`reload`]: certificates and keys re-read when their files change (Kubernetes Secrets,
//!   renewals) and on SIGHUP, for new connections; existing ones keep theirs.

pub mod args;
pub mod client;
pub mod peer;
pub mod pem;
pub mod reload;
#[cfg(test)]
mod reload_tests;
pub mod server;
#[cfg(test)]
mod test_pki;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

pub use args::{ClientTlsArgs, ServerTlsArgs};
pub use client::ClientTls;
pub use server::ServerTls;
use tokio_rustls::rustls;

/// Why a TLS configuration could not be loaded. Each names the flag and the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {flag} file {}: {source}", path.display())]
    Read {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{flag} file {} is not valid PEM: {reason}", path.display())]
    BadPem {
        flag: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "{flag} file {} holds no certificate (expected a PEM block \
         '-----BEGIN CERTIFICATE-----')", path.display()
    )]
    NoCertificate { flag: &'static str, path: PathBuf },
    #[error(
        "{flag} file {} holds no private key (expected a PEM block of a PKCS#8, PKCS#1 or \
         SEC1 key, e.g. '-----BEGIN PRIVATE KEY-----')", path.display()
    )]
    NoKey { flag: &'static str, path: PathBuf },
    #[error("{flag} file {}: certificate {index} cannot be a trust anchor: {reason}", path.display())]
    BadCa {
        flag: &'static str,
        path: PathBuf,
        index: usize,
        reason: String,
    },
    #[error("{what}: {reason}")]
    Config { what: String, reason: rustls::Error },
    #[error("{what}: {reason}")]
    Verifier {
        what: String,
        reason: rustls::server::VerifierBuilderError,
    },
    #[error(
        "invalid --client-tls-server-name '{0}': expected a DNS name (node1.example.org) or an \
         IP address"
    )]
    ServerName(String),
}

/// The crypto provider of every TLS config here. rustls 0.23.48 deprecates ring's provider
/// for lacking post-quantum key exchange (aws-lc-rs has it); aws-lc-rs needs cmake and a C
/// build on every machine that builds virtplane, so ring it stays, with classical X25519.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The ALPN protocol of gRPC: HTTP/2.
const ALPN_H2: &[u8] = b"h2";
