//! Server bootstrap shared by every daemon: listen addresses (unix socket, TCP, or TCP with
//! TLS), the standard health and reflection services, graceful shutdown on SIGTERM/SIGINT.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use tokio::net::UnixListener;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::service::Routes;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;

use crate::dial::TcpPeer;
use crate::tls::ServerTls;

/// Where a daemon listens, or where a client connects: `unix:/path/to.sock`, `IP:port`,
/// `[IPv6]:port` or `host:port` with a DNS name (each optionally after `tcp://`).
///
/// A client resolves a host name on every connect (see [`crate::dial`]); a listener resolves
/// it once, when it binds, to the first of its addresses that can be bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Unix(PathBuf),
    Tcp(SocketAddr),
    /// A host name (a DNS name, not an IP address) and a port.
    Host {
        host: String,
        port: u16,
    },
}

impl ListenAddr {
    /// Whether this is a TCP address (by IP or by host name).
    pub fn is_tcp(&self) -> bool {
        self.tcp_peer().is_some()
    }

    /// The TCP peer to dial, or `None` for a unix socket.
    pub fn tcp_peer(&self) -> Option<TcpPeer> {
        match self {
            Self::Unix(_) => None,
            Self::Tcp(socket) => Some(TcpPeer::Ip(*socket)),
            Self::Host { host, port } => Some(TcpPeer::Host {
                host: host.clone(),
                port: *port,
            }),
        }
    }
}

/// Why a listen address could not be parsed or served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "invalid address '{0}': expected unix:/path/to.sock, IP:port, [IPv6]:port or \
         host:port (a DNS name)"
    )]
    BadAddress(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("another server is already listening on {0}")]
    InUse(String),
    #[error("server on {addr} failed: {source}")]
    Transport {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

impl FromStr for ListenAddr {
    type Err = ServeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(ServeError::BadAddress(text.into()));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        let bare = text
            .strip_prefix("tcp://")
            .or_else(|| text.strip_prefix("http://"))
            .unwrap_or(text);
        if let Ok(socket) = bare.parse() {
            return Ok(Self::Tcp(socket));
        }
        let (host, port) = bare
            .rsplit_once(':')
            .ok_or_else(|| ServeError::BadAddress(text.into()))?;
        match port.parse() {
            Ok(port) if crate::dial::is_host_name(host) => Ok(Self::Host {
                host: host.to_owned(),
                port,
            }),
            _ => Err(ServeError::BadAddress(text.into())),
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
            Self::Tcp(addr) => write!(f, "{addr}"),
            Self::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Health and reflection, as every virtplane server offers them. `serving` lists the fully
/// qualified service names to report as SERVING (the overall "" status always is).
pub async fn standard_routes(serving: &[&str]) -> Result<(Routes, HealthReporter), ServeError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in serving {
        reporter
            .set_service_status(*name, tonic_health::ServingStatus::Serving)
            .await;
    }
    let sets: [&[u8]; 3] = [
        virtplane_proto::FILE_DESCRIPTOR_SET,
        tonic_types::pb::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ];
    let mut v1 = tonic_reflection::server::Builder::configure();
    let mut v1alpha = tonic_reflection::server::Builder::configure();
    for set in sets {
        v1 = v1.register_encoded_file_descriptor_set(set);
        v1alpha = v1alpha.register_encoded_file_descriptor_set(set);
    }
    let routes = Routes::new(health)
        .add_service(v1.build_v1()?)
        .add_service(v1alpha.build_v1alpha()?);
    Ok((routes, reporter))
}

/// Serves `routes` on every address until `shutdown` completes.
pub async fn serve(
    listen: &[ListenAddr],
    routes: Routes,
    unix_mode: u32,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_with_tls(listen, None, routes, unix_mode, shutdown).await
}

/// As [`serve`], with TLS on the TCP addresses when `tls` is given (unix sockets stay plain:
/// their file mode guards them).
pub async fn serve_with_tls(
    listen: &[ListenAddr],
    tls: Option<&ServerTls>,
    routes: Routes,
    unix_mode: u32,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    for addr in listen {
        let routes = routes.clone();
        let mut stop = stop_rx.clone();
        let until = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        let label = addr.to_string();
        let mut builder = Server::builder()
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
            .max_frame_size(Some(crate::http2::MAX_FRAME_SIZE))
            .initial_stream_window_size(Some(crate::http2::STREAM_WINDOW))
            .initial_connection_window_size(Some(crate::http2::CONNECTION_WINDOW))
            // Metrics, the trace context and the per-call log line of every call.
            .layer(crate::request_observer::ObserveLayer);
        // The two listener kinds differ only in their incoming stream.
        let serving: futures::future::BoxFuture<'static, Result<(), tonic::transport::Error>> =
            match addr {
                ListenAddr::Unix(path) => {
                    let incoming = UnixListenerStream::new(bind_unix(path, unix_mode)?);
                    Box::pin(
                        builder
                            .add_routes(routes)
                            .serve_with_incoming_shutdown(incoming, until),
                    )
                }
                ListenAddr::Tcp(_) | ListenAddr::Host { .. } => {
                    let listener = bind_tcp(addr).await.map_err(|source| ServeError::Listen {
                        addr: label.clone(),
                        source,
                    })?;
                    match tls {
                        // The TLS acceptor sets TCP_NODELAY on each connection itself.
                        Some(tls) => Box::pin(
                            builder
                                .add_routes(routes)
                                .serve_with_incoming_shutdown(tls.incoming(listener), until),
                        ),
                        None => Box::pin(
                            builder
                                .tcp_nodelay(true)
                                .add_routes(routes)
                                .serve_with_incoming_shutdown(
                                    TcpListenerStream::new(listener),
                                    until,
                                ),
                        ),
                    }
                }
            };
        servers.spawn(async move { (label, serving.await) });
        match tls {
            Some(tls) if addr.is_tcp() => {
                tracing::info!(address = %addr, mutual = tls.is_mutual(), "listening with TLS")
            }
            _ => tracing::info!(address = %addr, "listening"),
        }
    }
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut first_error = None;
    while let Some(joined) = servers.join_next().await {
        if let Ok((addr, Err(source))) = joined {
            first_error.get_or_insert(ServeError::Transport { addr, source });
        }
    }
    for addr in listen {
        if let ListenAddr::Unix(path) = addr {
            let _ = std::fs::remove_file(path);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Binds a TCP listener on `addr`: an IP address as given; a host name resolved now, on the
/// first of its addresses that can be bound (resolution errors name the host).
async fn bind_tcp(addr: &ListenAddr) -> std::io::Result<tokio::net::TcpListener> {
    let candidates = match addr.tcp_peer() {
        Some(TcpPeer::Ip(socket)) => vec![socket],
        Some(TcpPeer::Host { host, port }) => crate::dial::resolve(&host, port).await?,
        None => return Err(std::io::Error::other("not a TCP address")),
    };
    let mut last_error = None;
    for socket in candidates {
        match tokio::net::TcpListener::bind(socket).await {
            Ok(listener) => {
                if matches!(addr, ListenAddr::Host { .. }) {
                    tracing::debug!(address = %addr, %socket, "host name resolved for listening");
                }
                return Ok(listener);
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no address to bind")))
}

/// Binds a unix socket with `mode`, replacing a stale socket file but refusing to steal one
/// that a live server still answers on.
fn bind_unix(path: &Path, mode: u32) -> Result<UnixListener, ServeError> {
    let label = || format!("unix:{}", path.display());
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServeError::InUse(label()));
        }
        std::fs::remove_file(path).map_err(|source| ServeError::Listen {
            addr: label(),
            source,
        })?;
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| ServeError::Listen {
            addr: label(),
            source,
        })?;
    }
    let listener = UnixListener::bind(path).map_err(|source| ServeError::Listen {
        addr: label(),
        source,
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        ServeError::Listen {
            addr: label(),
            source,
        }
    })?;
    Ok(listener)
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the daemon still runs; it just cannot stop gracefully.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listen_addresses() {
        assert_eq!(
            "unix:/run/x.sock".parse::<ListenAddr>().unwrap(),
            ListenAddr::Unix("/run/x.sock".into())
        );
        assert_eq!(
            "unix://run/x.sock".parse::<ListenAddr>().unwrap(),
            ListenAddr::Unix("run/x.sock".into())
        );
        assert_eq!(
            "127.0.0.1:7000".parse::<ListenAddr>().unwrap(),
            ListenAddr::Tcp("127.0.0.1:7000".parse().unwrap())
        );
        assert_eq!(
            "tcp://[::1]:7000".parse::<ListenAddr>().unwrap(),
            ListenAddr::Tcp("[::1]:7000".parse().unwrap())
        );
        assert_eq!(
            "virtplane-node.virtplane.svc.cluster.local:7101"
                .parse::<ListenAddr>()
                .unwrap(),
            ListenAddr::Host {
                host: "virtplane-node.virtplane.svc.cluster.local".into(),
                port: 7101
            }
        );
        assert_eq!(
            "tcp://localhost:7000".parse::<ListenAddr>().unwrap(),
            ListenAddr::Host {
                host: "localhost".into(),
                port: 7000
            }
        );
        for bad in [
            "unix:",
            "nonsense",
            "127.0.0.1",
            "localhost:",
            "localhost:70000",
            "localhost:x",
            "::1:7000",
            "[::1]",
            "1.2.3.4.5:80",
            "bad name:80",
            ":80",
        ] {
            let err = bad.parse::<ListenAddr>().unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "invalid address '{bad}': expected unix:/path/to.sock, IP:port, \
                     [IPv6]:port or host:port (a DNS name)"
                )
            );
        }
    }

    #[test]
    fn addresses_print_as_they_parse() {
        for text in [
            "unix:/run/x.sock",
            "127.0.0.1:7000",
            "[::1]:7000",
            "node1.example:7101",
        ] {
            let addr: ListenAddr = text.parse().unwrap();
            assert_eq!(addr.to_string(), text);
            assert_eq!(addr.is_tcp(), !text.starts_with("unix:"));
        }
    }

    #[tokio::test]
    async fn listens_on_a_host_name_resolved_at_bind() {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let addr: ListenAddr = format!("localhost:{port}").parse().unwrap();
        let listener = bind_tcp(&addr).await.unwrap();
        assert!(listener.local_addr().unwrap().ip().is_loopback());
        let addr: ListenAddr = "no-such-host.invalid:1".parse().unwrap();
        let error = bind_tcp(&addr).await.unwrap_err().to_string();
        assert!(
            error.starts_with("host name 'no-such-host.invalid' could not be resolved"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn refuses_a_socket_a_live_server_holds_and_replaces_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let live = bind_unix(&path, 0o600).unwrap();
        assert!(matches!(bind_unix(&path, 0o600), Err(ServeError::InUse(_))));
        drop(live);
        // The file is still there but nobody answers: it is replaced.
        let again = bind_unix(&path, 0o600).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(again);
    }
}
