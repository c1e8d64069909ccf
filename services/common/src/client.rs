//! Client-side plumbing: a lazily connecting channel to a daemon's address (unix socket, TCP
//! by IP address or host name, either with TLS), for the gateway's backends and for
//! service-to-service calls.

use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

use crate::dial::{TcpPeer, dial};
use crate::server::ListenAddr;
use crate::tls::ClientTls;

/// How long establishing a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A channel to `addr` that connects on first use and reconnects after a failure. A call made
/// while the peer is down fails with the connection error (e.g. connection refused).
pub fn connect_channel(addr: &ListenAddr) -> Channel {
    connect_channel_tls(addr, None)
}

/// As [`connect_channel`], with TLS to a TCP address when `tls` is given (unix sockets stay
/// plain). A failed handshake fails the call with UNAVAILABLE, saying TLS failed at `addr`.
/// A host name is resolved on every connect; a name that does not resolve fails the call
/// with UNAVAILABLE, naming the host and saying it could not be resolved.
pub fn connect_channel_tls(addr: &ListenAddr, tls: Option<&ClientTls>) -> Channel {
    let peer = match addr {
        ListenAddr::Unix(path) => return unix_channel(path.clone()),
        ListenAddr::Tcp(socket) => TcpPeer::Ip(*socket),
        ListenAddr::Host { host, port } => TcpPeer::Host {
            host: host.clone(),
            port: *port,
        },
    };
    let endpoint = tcp_endpoint(&peer);
    match (tls, &peer) {
        (Some(tls), _) => {
            let tls = tls.clone();
            endpoint.connect_with_connector_lazy(tower::service_fn(move |_| {
                let tls = tls.clone();
                let peer = peer.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(tls.connect(&peer).await?)) }
            }))
        }
        // tonic's own connector, as before host names were accepted.
        (None, TcpPeer::Ip(_)) => endpoint.connect_lazy(),
        (None, TcpPeer::Host { .. }) => {
            endpoint.connect_with_connector_lazy(tower::service_fn(move |_| {
                let peer = peer.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(dial(&peer).await?)) }
            }))
        }
    }
}

/// The endpoint of a TCP peer; its URI's authority (`IP:port` or `host:port`) becomes the
/// `:authority` of every request.
fn tcp_endpoint(peer: &TcpPeer) -> Endpoint {
    let uri = format!("http://{peer}");
    // An IP socket address always renders as a valid authority, and a host name is a DNS
    // name (checked when the address was parsed); the fallback only guards a hand-built one.
    Endpoint::from_shared(uri)
        .unwrap_or_else(|_| Endpoint::from_static("http://localhost"))
        .connect_timeout(CONNECT_TIMEOUT)
        .max_frame_size(crate::http2::MAX_FRAME_SIZE)
        .initial_stream_window_size(crate::http2::STREAM_WINDOW)
        .initial_connection_window_size(crate::http2::CONNECTION_WINDOW)
        .tcp_nodelay(true)
}

fn unix_channel(path: std::path::PathBuf) -> Channel {
    // The URI is required by the API but unused: the connector ignores it. Its authority
    // becomes the `:authority` of every request.
    Endpoint::from_static("http://localhost")
        .connect_timeout(CONNECT_TIMEOUT)
        .max_frame_size(crate::http2::MAX_FRAME_SIZE)
        .initial_stream_window_size(crate::http2::STREAM_WINDOW)
        .initial_connection_window_size(crate::http2::CONNECTION_WINDOW)
        .connect_with_connector_lazy(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn health(addr: &ListenAddr) -> Result<i32, tonic::Status> {
        let mut client = tonic_health::pb::health_client::HealthClient::new(connect_channel(addr));
        let response = client
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await?;
        Ok(response.into_inner().status)
    }

    #[tokio::test]
    async fn connects_by_host_name_in_plain_tcp() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (routes, _reporter) = crate::server::standard_routes(&[]).await.unwrap();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_routes(routes)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let addr: ListenAddr = format!("localhost:{port}").parse().unwrap();
        let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
        assert_eq!(health(&addr).await.unwrap(), serving);
        server.abort();
    }

    #[tokio::test]
    async fn an_unresolvable_host_fails_each_call_naming_it() {
        let addr: ListenAddr = "no-such-host.invalid:1".parse().unwrap();
        // Twice: the name is resolved again on the reconnect.
        for _ in 0..2 {
            let started = std::time::Instant::now();
            let status = health(&addr).await.unwrap_err();
            assert!(started.elapsed() < CONNECT_TIMEOUT + Duration::from_secs(1));
            assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
            assert!(
                status
                    .message()
                    .contains("host name 'no-such-host.invalid' could not be resolved"),
                "{status:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_missing_socket_fails_the_call_not_the_channel() {
        let dir = tempfile::tempdir().unwrap();
        let addr = ListenAddr::Unix(dir.path().join("absent.sock"));
        let channel = connect_channel(&addr);
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        for _ in 0..2 {
            let err = client
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
        }
    }
}
