//! Dialing a TCP peer given by IP address or by host name.
//!
//! In Kubernetes the services are reached by DNS names (`virtplane-node.virtplane.svc:7101`)
//! whose addresses change when pods move, so a name is resolved on every dial (each connect
//! and reconnect), never once at start. Resolution is bounded by [`RESOLVE_TIMEOUT`] and a
//! failure names the host and says it could not be resolved, so the caller's UNAVAILABLE
//! points at DNS rather than at the service.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::DnsName;

/// How long resolving a host name may take. Shorter than the connect timeout
/// ([`crate::client::CONNECT_TIMEOUT`]) that bounds the whole dial, so a slow DNS server is
/// reported as such and not as a bare timeout.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_millis(1500);

/// A TCP peer: an IP socket address, or a host name resolved on every dial.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TcpPeer {
    Ip(SocketAddr),
    Host { host: String, port: u16 },
}

impl fmt::Display for TcpPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(socket) => write!(f, "{socket}"),
            Self::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Why a host name gave no address to connect to. Carried inside the `std::io::Error` a
/// dial returns (so it reaches gRPC statuses and logs with its words intact).
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("host name '{host}' could not be resolved: {reason}")]
    Failed { host: String, reason: String },
    #[error("host name '{host}' could not be resolved within {timeout:?}")]
    TimedOut { host: String, timeout: Duration },
    #[error("host name '{host}' could not be resolved: it has no address")]
    NoAddress { host: String },
}

/// As an I/O error: HostUnreachable, for every cause. Not NotFound or TimedOut, which
/// callers read as a missing unix socket or a slow connect and word as such (the gateway
/// does), hiding that the name is at fault.
impl From<ResolveError> for std::io::Error {
    fn from(error: ResolveError) -> Self {
        std::io::Error::new(std::io::ErrorKind::HostUnreachable, error)
    }
}

/// Whether `host` can be used as a host name: a DNS name (which is also what a TLS server
/// name must be), not something that only looks like a mangled IP address.
pub fn is_host_name(host: &str) -> bool {
    let numeric = host.chars().all(|c| c.is_ascii_digit() || c == '.');
    !numeric && DnsName::try_from(host).is_ok()
}

/// The addresses `host` resolves to, with `port`; at least one.
pub async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
    let lookup = tokio::net::lookup_host((host, port));
    let found = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(found)) => found.collect::<Vec<_>>(),
        Ok(Err(error)) => {
            return Err(ResolveError::Failed {
                host: host.to_owned(),
                reason: error.to_string(),
            });
        }
        Err(_) => {
            return Err(ResolveError::TimedOut {
                host: host.to_owned(),
                timeout: RESOLVE_TIMEOUT,
            });
        }
    };
    if found.is_empty() {
        return Err(ResolveError::NoAddress {
            host: host.to_owned(),
        });
    }
    Ok(found)
}

/// Connects to `peer` with TCP_NODELAY set. A host name is resolved now and its addresses
/// tried in order; the error of the last one is returned, naming the host and the address.
pub async fn dial(peer: &TcpPeer) -> std::io::Result<TcpStream> {
    let stream = match peer {
        TcpPeer::Ip(socket) => TcpStream::connect(socket).await?,
        TcpPeer::Host { host, port } => {
            let mut last_error = None;
            let mut connected = None;
            for socket in resolve(host, *port).await? {
                match TcpStream::connect(socket).await {
                    Ok(stream) => {
                        connected = Some(stream);
                        break;
                    }
                    Err(error) => last_error = Some((socket, error)),
                }
            }
            match (connected, last_error) {
                (Some(stream), _) => stream,
                (None, Some((socket, error))) => {
                    let message = format!("cannot connect to {peer} (at {socket}): {error}");
                    return Err(std::io::Error::new(error.kind(), message));
                }
                // resolve() returns at least one address.
                (None, None) => return Err(ResolveError::NoAddress { host: host.clone() }.into()),
            }
        }
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_dns_names() {
        for good in [
            "localhost",
            "virtplane-node.virtplane.svc.cluster.local",
            "node-1",
            "svc.cluster.local.",
        ] {
            assert!(is_host_name(good), "{good}");
        }
        for bad in [
            "",
            "1.2.3.4.5",
            "::1",
            "[::1]",
            "a b",
            "host/x",
            "-lead",
            "a..b",
        ] {
            assert!(!is_host_name(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn localhost_resolves_and_dials() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer = TcpPeer::Host {
            host: "localhost".into(),
            port,
        };
        // localhost may also resolve to ::1, where nothing listens: the next address is tried.
        let stream = dial(&peer).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap().port(), port);
        assert_eq!(peer.to_string(), format!("localhost:{port}"));
    }

    #[tokio::test]
    async fn an_unresolvable_name_is_named_in_the_error() {
        let peer = TcpPeer::Host {
            host: "no-such-host.invalid".into(),
            port: 1,
        };
        let started = std::time::Instant::now();
        let error = dial(&peer).await.unwrap_err();
        assert!(started.elapsed() < RESOLVE_TIMEOUT + Duration::from_millis(500));
        assert_eq!(error.kind(), std::io::ErrorKind::HostUnreachable);
        let text = error.to_string();
        assert!(
            text.starts_with("host name 'no-such-host.invalid' could not be resolved"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_host_and_the_address() {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let peer = TcpPeer::Host {
            host: "localhost".into(),
            port,
        };
        let error = dial(&peer).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("cannot connect to localhost:{port} (at ")),
            "{text}"
        );
    }
}
