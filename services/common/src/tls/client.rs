//! The client side: a TLS connector that verifies the server against a CA bundle and, for
//! mutual TLS, presents a certificate of its own.
//!
//! A failure says that TLS failed and names the address. With TLS 1.3 a server that refuses
//! the client's certificate says so only after the client's side of the handshake is done,
//! so [`ClientTls::connect`] waits for the server's first bytes (an HTTP/2 server sends its
//! SETTINGS at once) before it calls the connection made: a refusal then fails the connect,
//! as an unknown server certificate does, and the caller reports UNAVAILABLE rather than
//! a call broken in flight. Later I/O errors from TLS carry the same words.

use std::io::ErrorKind;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig};

use super::reload::{ClientIdentity, Flags, ReloadingIdentity};
use super::{TlsError, pem};
use crate::dial::{TcpPeer, dial};

/// The flags that name a client's certificate and key.
const FLAGS: Flags = Flags {
    cert: "--client-tls-cert",
    key: "--client-tls-key",
};

/// Why a TLS connection failed, carried inside the `std::io::Error` the connection returns.
#[derive(Debug, thiserror::Error)]
#[error("TLS with {addr} failed{stage}: {reason}")]
pub struct TlsFailure {
    /// The address as configured: `IP:port` or `host:port`.
    pub addr: String,
    /// " in the handshake", or empty once connected.
    stage: &'static str,
    pub reason: String,
}

impl TlsFailure {
    /// `error` wrapped as a TLS failure at `addr` when it is one (rustls's own error inside),
    /// else unchanged.
    fn wrap(addr: &str, stage: &'static str, error: std::io::Error) -> std::io::Error {
        let reason = match error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            Some(tls) => tls.to_string(),
            None if stage.is_empty() => return error,
            None => error.to_string(),
        };
        std::io::Error::new(
            error.kind(),
            TlsFailure {
                addr: addr.to_owned(),
                stage,
                reason,
            },
        )
    }
}

/// What a client needs to connect to a TLS server: the CAs that may sign the server's
/// certificate, its own certificate for mutual TLS, and the name to check the server's
/// certificate against.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
    /// The client certificate and key (mutual TLS), re-read when their files change.
    identity: Option<Arc<ReloadingIdentity>>,
    /// `--client-tls-server-name`; else the host name or IP address connected to.
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Loads the CA bundle (`--client-tls-ca`) and, when given, the client's certificate
    /// chain and key (`--client-tls-cert`, `--client-tls-key`), which are re-read when their
    /// files change (see [`super::reload`]) once connections are made.
    pub fn load(
        ca: &Path,
        identity: Option<(&Path, &Path)>,
        server_name: Option<&str>,
    ) -> Result<Self, TlsError> {
        let roots = pem::trust_anchors("--client-tls-ca", ca)?;
        let builder = ClientConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()
            .map_err(|reason| TlsError::Config {
                what: "TLS protocol versions".into(),
                reason,
            })?
            .with_root_certificates(roots);
        let identity = identity
            .map(|(cert, key)| ReloadingIdentity::load(FLAGS, cert, key))
            .transpose()?;
        let mut config = match &identity {
            Some(identity) => {
                builder.with_client_cert_resolver(Arc::new(ClientIdentity(identity.clone())))
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![super::ALPN_H2.to_vec()];
        let server_name = server_name
            .map(|name| {
                ServerName::try_from(name.to_owned()).map_err(|_| TlsError::ServerName(name.into()))
            })
            .transpose()?;
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            identity,
            server_name,
        })
    }

    /// Reads the client certificate and key files again now (as SIGHUP does); `Ok(true)`
    /// when new connections now present a new certificate. `Ok(false)` without one.
    pub fn reload(&self) -> Result<bool, TlsError> {
        match &self.identity {
            Some(identity) => identity.reload_if_changed(),
            None => Ok(false),
        }
    }

    /// The name the server's certificate must carry: the configured one, else the host name
    /// of the address (a DNS SAN), else its IP (an IP SAN). An error when a host name cannot
    /// be a TLS server name (addresses parsed by [`crate::server::ListenAddr`] always can).
    pub fn server_name(&self, peer: &TcpPeer) -> std::io::Result<ServerName<'static>> {
        if let Some(name) = &self.server_name {
            return Ok(name.clone());
        }
        match peer {
            TcpPeer::Ip(socket) => Ok(ServerName::IpAddress(socket.ip().into())),
            TcpPeer::Host { host, .. } => ServerName::try_from(host.clone()).map_err(|_| {
                std::io::Error::new(
                    ErrorKind::InvalidInput,
                    format!("host name '{host}' cannot be a TLS server name"),
                )
            }),
        }
    }

    /// Connects to `peer` over TCP (resolving a host name now) and completes the TLS
    /// handshake.
    pub async fn connect(&self, peer: &TcpPeer) -> std::io::Result<TlsConnection> {
        if let Some(identity) = &self.identity {
            identity.watch();
        }
        let server_name = self.server_name(peer)?;
        let addr = peer.to_string();
        let tcp = dial(peer).await?;
        let mut stream = self
            .connector
            .connect(server_name, tcp)
            .await
            .map_err(|error| TlsFailure::wrap(&addr, " in the handshake", error))?;
        let mut first = vec![0; 16 * 1024];
        let pending = match tokio::time::timeout(VERDICT_WAIT, stream.read(&mut first)).await {
            Ok(Ok(0)) => {
                let failure = TlsFailure {
                    addr: addr.clone(),
                    stage: " in the handshake",
                    reason: "the server closed the connection".into(),
                };
                return Err(std::io::Error::new(ErrorKind::UnexpectedEof, failure));
            }
            Ok(Ok(read)) => {
                first.truncate(read);
                first
            }
            Ok(Err(error)) => return Err(TlsFailure::wrap(&addr, " in the handshake", error)),
            // A server that speaks only when spoken to: nothing to wait for.
            Err(_) => Vec::new(),
        };
        Ok(TlsConnection {
            stream,
            addr,
            pending,
            consumed: 0,
        })
    }
}

/// How long [`ClientTls::connect`] waits for the server's verdict on the handshake.
const VERDICT_WAIT: Duration = Duration::from_secs(1);

/// A client TLS connection whose I/O errors name the address and say TLS failed.
#[derive(Debug)]
pub struct TlsConnection {
    stream: tokio_rustls::client::TlsStream<TcpStream>,
    /// The address as configured, for error messages.
    addr: String,
    /// What the server sent while [`ClientTls::connect`] waited, handed out first.
    pending: Vec<u8>,
    consumed: usize,
}

impl TlsConnection {
    fn map<T>(&self, poll: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        poll.map(|result| result.map_err(|error| TlsFailure::wrap(&self.addr, "", error)))
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.consumed < self.pending.len() {
            let take = buf.remaining().min(self.pending.len() - self.consumed);
            let start = self.consumed;
            buf.put_slice(&self.pending[start..start + take]);
            self.consumed += take;
            if self.consumed == self.pending.len() {
                self.pending = Vec::new();
                self.consumed = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let poll = Pin::new(&mut self.stream).poll_read(cx, buf);
        self.map(poll)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.map(poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_flush(cx);
        self.map(poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_shutdown(cx);
        self.map(poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.map(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
