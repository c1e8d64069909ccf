//! The server side: a TLS acceptor built from the daemon's certificate, key and (for mutual
//! TLS) client CA bundle, and the stream of connections that completed the handshake.
//!
//! Handshakes run in tasks of their own, bounded by [`HANDSHAKE_TIMEOUT`], so a slow or
//! silent peer holds up no one else; a failed one is logged with the peer's address and
//! dropped (the server never sees it).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_stream::wrappers::ReceiverStream;

use super::reload::{Flags, ReloadingIdentity, ServerIdentity};
use super::{TlsError, pem};

/// The flags that name a listener's certificate and key.
const FLAGS: Flags = Flags {
    cert: "--tls-cert",
    key: "--tls-key",
};

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection that completed the handshake.
pub type ServerStream = tokio_rustls::server::TlsStream<TcpStream>;

/// A daemon's TLS identity and, for mutual TLS, the CAs its clients' certificates must come
/// from.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
    mutual: bool,
    /// The certificate and key, re-read when their files change.
    identity: Arc<ReloadingIdentity>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("mutual", &self.mutual)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads the certificate chain and key (`--tls-cert`, `--tls-key`) and, when given, the
    /// client CA bundle (`--tls-client-ca`), and checks that they make a working config
    /// (e.g. that the key belongs to the certificate). The certificate and key are re-read
    /// when their files change (see [`super::reload`]) once the server accepts connections.
    pub fn load(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Self, TlsError> {
        let identity = ReloadingIdentity::load(FLAGS, cert, key)?;
        Self::with_identity(identity, client_ca)
    }

    /// As [`ServerTls::load`], with the identity already loaded (tests choose its reload
    /// interval).
    pub fn with_identity(
        identity: Arc<ReloadingIdentity>,
        client_ca: Option<&Path>,
    ) -> Result<Self, TlsError> {
        let builder = ServerConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()
            .map_err(|reason| TlsError::Config {
                what: "TLS protocol versions".into(),
                reason,
            })?;
        let builder = match client_ca {
            Some(path) => {
                let roots = pem::trust_anchors("--tls-client-ca", path)?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), super::provider())
                        .build()
                        .map_err(|reason| TlsError::Verifier {
                            what: format!("--tls-client-ca file {}", path.display()),
                            reason,
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(Arc::new(ServerIdentity(identity.clone())));
        config.alpn_protocols = vec![super::ALPN_H2.to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            mutual: client_ca.is_some(),
            identity,
        })
    }

    /// Reads the certificate and key files again now (as SIGHUP does); `Ok(true)` when new
    /// handshakes now present a new certificate.
    pub fn reload(&self) -> Result<bool, TlsError> {
        self.identity.reload_if_changed()
    }

    /// Whether clients must present a certificate from the client CA bundle.
    pub fn is_mutual(&self) -> bool {
        self.mutual
    }

    /// The connections accepted on `listener` that completed the handshake. Accepting stops
    /// (and the listener closes) when the returned stream is dropped. Starts watching the
    /// certificate files (once per configuration).
    pub fn incoming(
        &self,
        listener: TcpListener,
    ) -> ReceiverStream<Result<ServerStream, std::io::Error>> {
        self.identity.watch();
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        let acceptor = self.acceptor.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = sender.closed() => return,
                    accepted = listener.accept() => accepted,
                };
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: wait a little rather than spin.
                        tracing::warn!(%error, "cannot accept a TCP connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    if let Some(stream) = handshake(&acceptor, stream, peer).await {
                        let _ = sender.send(Ok(stream)).await;
                    }
                });
            }
        });
        ReceiverStream::new(receiver)
    }
}

/// Runs the handshake with `peer`; logs who connected, or why the handshake failed.
async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<ServerStream> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => {
            let client = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| super::peer::describe(leaf));
            match client {
                Some(client) => tracing::info!(%peer, %client, "TLS client connected"),
                None => tracing::debug!(%peer, "TLS client connected (no client certificate)"),
            }
            Some(stream)
        }
        // A peer that closes without a word: a TCP port probe (load balancer, kubelet).
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            tracing::debug!(%peer, "TCP connection closed before the TLS handshake");
            None
        }
        Ok(Err(error)) => {
            tracing::warn!(%peer, "TLS handshake failed: {}", describe_error(&error));
            None
        }
        Err(_) => {
            tracing::warn!(%peer, "TLS handshake did not complete within {HANDSHAKE_TIMEOUT:?}");
            None
        }
    }
}

/// The rustls error inside an I/O error, where there is one (it says what was wrong with
/// the certificate).
fn describe_error(error: &std::io::Error) -> String {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls.to_string(),
        None => error.to_string(),
    }
}
