//! A second look at a failed TLS connection, to say why the server refused it.
//!
//! With TLS 1.3 the client finishes its side of the handshake before the server has judged
//! the client's certificate; a server that refuses it (none given, or one from a CA it does
//! not trust) says so in an alert after that, and closes. tonic's client has by then handed
//! the connection to HTTP/2, so the failed call says only "transport error" or "operation
//! was canceled", depending on timing. When a call to an `https://` server fails that way,
//! virtctl makes one handshake of its own with the same CA and certificate, waits for the
//! server's first bytes, and reports the server's alert.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// How long the probe may take in all.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the probe waits for the server's verdict after the handshake (an HTTP/2 server
/// sends its SETTINGS at once; a refusing one its alert).
const VERDICT_WAIT: Duration = Duration::from_secs(2);

/// What a handshake with the server needs: the same trust and identity as the calls.
#[derive(Clone)]
pub struct TlsProbe {
    config: Arc<ClientConfig>,
    host: String,
    port: u16,
}

impl std::fmt::Debug for TlsProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsProbe")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl TlsProbe {
    /// The probe of `host:port` with the PEM CA bundle and, when given, the PEM certificate
    /// chain and key. `None` when they do not make a config (the calls' own TLS setup has
    /// reported that already).
    pub fn new(host: &str, port: u16, ca: &[u8], identity: Option<(&[u8], &[u8])>) -> Option<Self> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca) {
            roots.add(cert.ok()?).ok()?;
        }
        #[allow(deprecated)] // ring: see services/common/src/tls/mod.rs
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .with_root_certificates(roots);
        let mut config = match identity {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .ok()?;
                let key = PrivateKeyDer::from_pem_slice(key).ok()?;
                builder.with_client_auth_cert(chain, key).ok()?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Some(Self {
            config: Arc::new(config),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
        })
    }

    /// Why the server refuses a TLS connection: the TLS error it caused (its alert, or a
    /// certificate this side rejects). `None` when the server accepts, or when it cannot be
    /// reached at all (the call's own error says that better).
    pub async fn refusal(&self) -> Option<String> {
        tokio::time::timeout(PROBE_TIMEOUT, self.handshake())
            .await
            .ok()
            .flatten()
    }

    async fn handshake(&self) -> Option<String> {
        let name = ServerName::try_from(self.host.clone()).ok()?;
        let address = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .ok()?
            .next()?;
        let tcp = tokio::net::TcpStream::connect(address).await.ok()?;
        let mut stream = match TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
        {
            Ok(stream) => stream,
            Err(error) => return tls_error(&error),
        };
        let mut first = [0u8; 1];
        match tokio::time::timeout(VERDICT_WAIT, stream.read(&mut first)).await {
            Ok(Ok(0)) => Some("the server closed the connection after the handshake".into()),
            Ok(Err(error)) => tls_error(&error),
            // It sent something (HTTP/2 SETTINGS), or waits to be spoken to: accepted.
            Ok(Ok(_)) | Err(_) => None,
        }
    }
}

/// The rustls error inside an I/O error, as text.
fn tls_error(error: &std::io::Error) -> Option<String> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .map(ToString::to_string)
}
