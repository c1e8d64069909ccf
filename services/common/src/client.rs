//! Client-side plumbing: a lazily connecting channel to a daemon's address (unix socket, TCP,
//! or TCP with TLS), for the gateway's backends and for service-to-service calls.

use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

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
pub fn connect_channel_tls(addr: &ListenAddr, tls: Option<&ClientTls>) -> Channel {
    match (addr, tls) {
        (ListenAddr::Tcp(socket), Some(tls)) => {
            let socket = *socket;
            let tls = tls.clone();
            tcp_endpoint(socket).connect_with_connector_lazy(tower::service_fn(move |_| {
                let tls = tls.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(tls.connect(socket).await?)) }
            }))
        }
        (addr, _) => plain_channel(addr),
    }
}

fn tcp_endpoint(socket: std::net::SocketAddr) -> Endpoint {
    let uri = format!("http://{socket}");
    // A SocketAddr always renders as a valid authority.
    Endpoint::from_shared(uri)
        .expect("socket address is a valid URI")
        .connect_timeout(CONNECT_TIMEOUT)
        .max_frame_size(crate::http2::MAX_FRAME_SIZE)
        .initial_stream_window_size(crate::http2::STREAM_WINDOW)
        .initial_connection_window_size(crate::http2::CONNECTION_WINDOW)
        .tcp_nodelay(true)
}

fn plain_channel(addr: &ListenAddr) -> Channel {
    match addr {
        ListenAddr::Unix(path) => {
            let path = path.clone();
            // The URI is required by the API but unused: the connector ignores it. Its
            // authority becomes the `:authority` of every request.
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
        ListenAddr::Tcp(socket) => tcp_endpoint(*socket).connect_lazy(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
