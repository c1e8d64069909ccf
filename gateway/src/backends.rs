//! One node's services behind the gateway: lazily connected, multiplexed connections per
//! backend name (`domain`, `network`, `storage`). Their health is probed by
//! `fleet::health`, over every node.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use tonic::transport::Channel;
use virtplane_common::client::{CONNECT_TIMEOUT, connect_channel_tls};
use virtplane_common::dial::dial;
use virtplane_common::server::ListenAddr;
use virtplane_common::tls::ClientTls;

use crate::error::Error;

/// How often each backend's health is probed, and how long a probe may take.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// HTTP/2 connections to each backend; calls take them in turn. A few per core lets the
/// gateway's worker threads drive them in parallel.
pub const CONNECTIONS_PER_BACKEND: usize = 4;

/// The method a new backend connection is proven with (every service serves health).
const LIVENESS_PATH: &str = "/grpc.health.v1.Health/Check";

/// `--backend NAME=ADDR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    pub name: String,
    pub addr: ListenAddr,
}

impl std::str::FromStr for BackendSpec {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || Error::BackendSpec(text.to_owned());
        let (name, addr) = text.split_once('=').ok_or_else(bad)?;
        if name.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            name: name.to_owned(),
            addr: addr.parse().map_err(|_| bad())?,
        })
    }
}

/// One service daemon the gateway forwards to.
#[derive(Debug, Clone)]
pub struct Backend {
    pub name: String,
    /// The configured address, for error messages (`unix:/run/virtplane/domain.sock`).
    pub addr: String,
    /// A tonic channel, for the gateway's own calls (health probes).
    pub channel: Channel,
    /// The proxied calls' HTTP/2 connections (no buffer task between caller and
    /// connection), used in turn: one connection is driven by one task, so with a single
    /// one every call of every client would queue behind that task.
    links: Arc<[Link]>,
    next: Arc<AtomicUsize>,
}

impl Backend {
    /// Sends a request, unchanged but for its scheme and authority, on the shared HTTP/2
    /// connection (connecting or reconnecting first when needed).
    pub async fn send(
        &self,
        mut parts: http::request::Parts,
        body: Body,
    ) -> Result<http::Response<Body>, BoxError> {
        let link = &self.links[self.next.fetch_add(1, Ordering::Relaxed) % self.links.len()];
        let mut sender = link.sender().await?;
        let mut uri = std::mem::take(&mut parts.uri).into_parts();
        uri.scheme = Some(http::uri::Scheme::HTTP);
        uri.authority = Some(link.authority.clone());
        parts.uri = http::Uri::from_parts(uri)?;
        let response = sender
            .send_request(http::Request::from_parts(parts, body))
            .await?;
        Ok(response.map(Body::new))
    }
}

type Body = tonic::body::Body;
type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Sender = hyper::client::conn::http2::SendRequest<Body>;

/// One multiplexed HTTP/2 connection to a backend, made on first use and remade after it
/// closes.
#[derive(Debug)]
struct Link {
    addr: ListenAddr,
    /// TLS for a TCP address (unix sockets stay plain).
    tls: Option<ClientTls>,
    authority: http::uri::Authority,
    current: Mutex<Option<Sender>>,
    connecting: tokio::sync::Mutex<()>,
}

impl Link {
    fn new(addr: &ListenAddr, tls: Option<&ClientTls>) -> Self {
        // A TCP address (IP:port or host:port) is its own authority.
        let authority = match addr {
            ListenAddr::Unix(_) => http::uri::Authority::from_static("localhost"),
            ListenAddr::Tcp(_) | ListenAddr::Host { .. } => addr
                .to_string()
                .parse()
                .unwrap_or_else(|_| http::uri::Authority::from_static("localhost")),
        };
        Self {
            addr: addr.clone(),
            tls: tls.cloned(),
            authority,
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    fn open_sender(&self) -> Option<Sender> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current.as_ref().filter(|s| !s.is_closed()).cloned()
    }

    async fn sender(&self) -> Result<Sender, std::io::Error> {
        if let Some(sender) = self.open_sender() {
            return Ok(sender);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(sender) = self.open_sender() {
            return Ok(sender);
        }
        let sender = tokio::time::timeout(CONNECT_TIMEOUT, self.connect())
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender.clone());
        Ok(sender)
    }

    /// Connects, handshakes and proves the peer answers; [`Link::sender`] bounds all of it
    /// by [`CONNECT_TIMEOUT`].
    async fn connect(&self) -> Result<Sender, std::io::Error> {
        let mut sender = match &self.addr {
            ListenAddr::Unix(path) => {
                handshake(tokio::net::UnixStream::connect(path).await?).await?
            }
            // A host name is resolved here, on every (re)connect.
            ListenAddr::Tcp(_) | ListenAddr::Host { .. } => {
                let peer = self
                    .addr
                    .tcp_peer()
                    .ok_or_else(|| std::io::Error::other("not a TCP address"))?;
                match &self.tls {
                    Some(tls) => handshake(tls.connect(&peer).await?).await?,
                    None => handshake(dial(&peer).await?).await?,
                }
            }
        };
        self.prove_alive(&mut sender).await?;
        Ok(sender)
    }

    /// Waits for the response headers of a health check on a new connection. The HTTP/2
    /// handshake only writes the preface, so a backend whose socket accepts but which does
    /// not run (stopped, wedged) would pass it, and every call on the connection would then
    /// wait for headers that never come. Proving the peer answers here, under the connect
    /// timeout, makes that UNAVAILABLE; the calls themselves get no timeout from the gateway,
    /// so long unary calls and streams are never cut off. Any answer will do (even an error
    /// status): it shows the service's HTTP/2 server is there.
    async fn prove_alive(&self, sender: &mut Sender) -> Result<(), std::io::Error> {
        let uri = http::Uri::builder()
            .scheme(http::uri::Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(LIVENESS_PATH)
            .build()
            .map_err(std::io::Error::other)?;
        // An empty HealthCheckRequest: the overall status.
        let message = Bytes::from_static(&[0, 0, 0, 0, 0]);
        let request = http::Request::post(uri)
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .body(Body::new(http_body_util::Full::new(message)))
            .map_err(std::io::Error::other)?;
        sender.ready().await.map_err(std::io::Error::other)?;
        sender
            .send_request(request)
            .await
            .map_err(std::io::Error::other)?;
        Ok(())
    }
}

async fn handshake<S>(stream: S) -> Result<Sender, std::io::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30))
        .max_frame_size(virtplane_common::http2::MAX_FRAME_SIZE)
        .initial_stream_window_size(virtplane_common::http2::STREAM_WINDOW)
        .initial_connection_window_size(virtplane_common::http2::CONNECTION_WINDOW)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(%err, "backend connection closed");
        }
    });
    Ok(sender)
}

/// Every configured backend by name.
#[derive(Debug, Clone, Default)]
pub struct Backends {
    by_name: HashMap<String, Backend>,
}

impl Backends {
    /// Creates (lazy) channels for the configured backends; nothing connects yet. A name
    /// given twice keeps the last address.
    pub fn new(specs: &[BackendSpec]) -> Self {
        Self::with_tls(specs, None)
    }

    /// As [`Backends::new`], connecting to TCP addresses (by IP, or by host name resolved at
    /// each connect) with TLS when `tls` is given.
    pub fn with_tls(specs: &[BackendSpec], tls: Option<&ClientTls>) -> Self {
        let by_name = specs
            .iter()
            .map(|spec| {
                let backend = Backend {
                    name: spec.name.clone(),
                    addr: spec.addr.to_string(),
                    channel: connect_channel_tls(&spec.addr, tls),
                    links: (0..CONNECTIONS_PER_BACKEND)
                        .map(|_| Link::new(&spec.addr, tls))
                        .collect(),
                    next: Arc::new(AtomicUsize::new(0)),
                };
                (spec.name.clone(), backend)
            })
            .collect();
        Self { by_name }
    }

    pub fn get(&self, name: &str) -> Option<&Backend> {
        self.by_name.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_backend_specs() {
        let spec: BackendSpec = "domain=unix:/run/d.sock".parse().unwrap();
        assert_eq!(spec.name, "domain");
        assert_eq!(spec.addr, ListenAddr::Unix("/run/d.sock".into()));
        let spec: BackendSpec = "network=127.0.0.1:7001".parse().unwrap();
        assert_eq!(spec.addr.to_string(), "127.0.0.1:7001");
        for bad in ["domain", "=unix:/x", "domain=nowhere"] {
            let err = bad.parse::<BackendSpec>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
