//! The connection to the gateway (or, on a developer's machine, straight to a service).
//!
//! Addresses: `unix:/abs/path.sock` or `unix:rel/path.sock` (a unix socket, the default of
//! `deploy/local`), `http://host:port`, bare `host:port`, or `https://host:port` (TLS: the
//! gateway's certificate is verified against the `--tls-ca` bundle, for the host named in
//! the address, which may be an IP address).
//!
//! A connection failure is reported as "cannot reach server ADDR: cause", naming the address
//! the user gave, not as a bare UNAVAILABLE.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Response, Status};
use virtplane_proto::v1::console_service_client::ConsoleServiceClient;
use virtplane_proto::v1::domain_service_client::DomainServiceClient;
use virtplane_proto::v1::domain_stats_service_client::DomainStatsServiceClient;
use virtplane_proto::v1::guest_agent_service_client::GuestAgentServiceClient;
use virtplane_proto::v1::host_service_client::HostServiceClient;
use virtplane_proto::v1::network_service_client::NetworkServiceClient;
use virtplane_proto::v1::qemu_service_client::QemuServiceClient;
use virtplane_proto::v1::storage_service_client::StorageServiceClient;

use crate::error::{Error, root_cause};

/// Largest message virtctl accepts: domain XML is capped at 1 MiB by the services, but a
/// list of many thousand domains can exceed tonic's 4 MiB default.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Adds `authorization: Bearer <token>` to every call, streams included.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    header: Option<MetadataValue<Ascii>>,
}

impl Auth {
    pub fn new(token: Option<&str>) -> Result<Self, Error> {
        let header = match token {
            None => None,
            Some(t) => {
                let mut v: MetadataValue<Ascii> =
                    format!("Bearer {t}").parse().map_err(|_| Error::BadToken)?;
                // Keeps the token out of any debug output of the request.
                v.set_sensitive(true);
                Some(v)
            }
        };
        Ok(Auth { header })
    }
}

impl Interceptor for Auth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(h) = &self.header {
            req.metadata_mut().insert("authorization", h.clone());
        }
        Ok(req)
    }
}

/// The channel every client shares.
pub type AuthChannel = InterceptedService<Channel, Auth>;

/// A connected server plus what every call needs: the token interceptor and the deadline.
#[derive(Clone)]
pub struct Conn {
    channel: AuthChannel,
    /// The address as the user gave it, for error messages.
    pub server: String,
    /// Deadline of each unary call.
    pub timeout: Duration,
}

/// Parsed form of a server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// Path of a unix socket (absolute or relative to the working directory).
    Unix(String),
    /// `http://host:port`.
    Http(String),
    /// `https://host:port`.
    Https(String),
}

/// Reads a server address as the user wrote it.
pub fn parse_address(addr: &str) -> Result<Address, Error> {
    let bad = |why: &str| Error::BadServer {
        addr: addr.to_string(),
        why: why.to_string(),
    };
    if let Some(rest) = addr.strip_prefix("unix:") {
        // Accept unix:///abs/path too, the form grpcurl and gRPC's naming doc use.
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(bad("no socket path after 'unix:'"));
        }
        return Ok(Address::Unix(path.to_string()));
    }
    let url = if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else if addr.contains("://") {
        return Err(bad("use unix:PATH, http://HOST:PORT or HOST:PORT"));
    } else {
        format!("http://{addr}")
    };
    let uri: tonic::codegen::http::Uri = url
        .parse()
        .map_err(|e| bad(&format!("not a valid address ({e})")))?;
    if uri.port_u16().is_none() {
        return Err(bad("no port: use HOST:PORT"));
    }
    if uri.scheme_str() == Some("https") {
        return Ok(Address::Https(url));
    }
    Ok(Address::Http(url))
}

impl Conn {
    /// Prepares the connection to `server`, sending `token` on every call; an `https://`
    /// server is verified against the CA bundle `tls_ca` (required for it, unused otherwise).
    ///
    /// The connection itself is made by the first call (a missing socket or refused port
    /// then comes back as UNAVAILABLE with the cause attached, which [`Error::from_status`]
    /// turns into "cannot reach server …"), so a command can first check its own inputs,
    /// such as the XML file of `define`, and report those before any network problem.
    /// Must be called inside the tokio runtime (the channel spawns its worker task).
    pub fn new(
        server: &str,
        token: Option<&str>,
        tls_ca: Option<&Path>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let auth = Auth::new(token)?;
        let bad = |e: tonic::transport::Error| Error::BadServer {
            addr: server.to_string(),
            why: root_cause(&e),
        };
        let endpoint = match parse_address(server)? {
            Address::Unix(path) => Endpoint::from_shared(format!("unix:{path}")).map_err(bad)?,
            Address::Http(url) => Endpoint::from_shared(url).map_err(bad)?,
            Address::Https(url) => {
                let ca = tls_ca.ok_or_else(|| Error::BadServer {
                    addr: server.to_string(),
                    why: "https:// needs the CA that signed the server's certificate: give \
                          --tls-ca FILE or set VIRTPLANE_TLS_CA"
                        .into(),
                })?;
                let tls = ClientTlsConfig::new().ca_certificate(read_ca(ca)?);
                Endpoint::from_shared(url)
                    .and_then(|endpoint| endpoint.tls_config(tls))
                    .map_err(|e| Error::TlsCa {
                        path: ca.to_path_buf(),
                        why: root_cause(&e),
                    })?
            }
        }
        .connect_timeout(timeout)
        // Bulk streams (vol-upload, vol-download): big frames and windows, as the servers use.
        .max_frame_size(1 << 20)
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(16 << 20);
        Ok(Conn {
            channel: InterceptedService::new(endpoint.connect_lazy(), auth),
            server: server.to_string(),
            timeout,
        })
    }

    pub fn domains(&self) -> DomainServiceClient<AuthChannel> {
        DomainServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    pub fn networks(&self) -> NetworkServiceClient<AuthChannel> {
        NetworkServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// Storage pools and volumes. Volume uploads and downloads go through this client too:
    /// their chunks are ~1 MiB, well under the message limit.
    pub fn storage(&self) -> StorageServiceClient<AuthChannel> {
        StorageServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    pub fn console(&self) -> ConsoleServiceClient<AuthChannel> {
        ConsoleServiceClient::new(self.channel.clone())
    }

    pub fn stats(&self) -> DomainStatsServiceClient<AuthChannel> {
        DomainStatsServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }

    pub fn qemu(&self) -> QemuServiceClient<AuthChannel> {
        QemuServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }

    /// The guest agent. Exec input and file writes are at most a few MiB per message, file
    /// reads and exec output come back in chunks, so the usual limit is plenty.
    pub fn guest(&self) -> GuestAgentServiceClient<AuthChannel> {
        GuestAgentServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    pub fn health(&self) -> tonic_health::pb::health_client::HealthClient<AuthChannel> {
        tonic_health::pb::health_client::HealthClient::new(self.channel.clone())
    }

    pub fn host(&self) -> HostServiceClient<AuthChannel> {
        HostServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }

    /// Wraps a message with the call deadline, which the server sees as `grpc-timeout` and
    /// the gateway passes on to the service.
    pub fn request<T>(&self, msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        req.set_timeout(self.timeout);
        req
    }

    /// Awaits a unary call, enforcing the deadline on this side too (the server's
    /// `grpc-timeout` does not help when the server itself hangs), and maps the error.
    pub async fn unary<T>(
        &self,
        call: impl Future<Output = Result<Response<T>, Status>>,
    ) -> Result<T, Error> {
        // A little grace so the server's own DEADLINE_EXCEEDED, which says more, wins.
        let limit = self.timeout + Duration::from_millis(500);
        match tokio::time::timeout(limit, call).await {
            Err(_) => Err(Error::Timeout {
                server: self.server.clone(),
                secs: self.timeout.as_secs(),
            }),
            Ok(Err(status)) => Err(Error::from_status(status, &self.server)),
            Ok(Ok(resp)) => Ok(resp.into_inner()),
        }
    }
}

/// The `--tls-ca` bundle, which must hold at least one PEM certificate (tonic would take a
/// file without one and fail every handshake later).
fn read_ca(path: &Path) -> Result<Certificate, Error> {
    let pem = std::fs::read(path).map_err(|e| Error::TlsCa {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    let marker: &[u8] = b"-----BEGIN CERTIFICATE-----";
    if !pem.windows(marker.len()).any(|w| w == marker) {
        return Err(Error::TlsCa {
            path: path.to_path_buf(),
            why: "no PEM certificate in it (expected '-----BEGIN CERTIFICATE-----')".into(),
        });
    }
    Ok(Certificate::from_pem(pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("unix:/run/vp/gw.sock").unwrap(),
            Address::Unix("/run/vp/gw.sock".into())
        );
        assert_eq!(
            parse_address("unix:///run/vp/gw.sock").unwrap(),
            Address::Unix("/run/vp/gw.sock".into())
        );
        assert_eq!(
            parse_address("unix:state/gw.sock").unwrap(),
            Address::Unix("state/gw.sock".into())
        );
        assert_eq!(
            parse_address("http://127.0.0.1:7070").unwrap(),
            Address::Http("http://127.0.0.1:7070".into())
        );
        assert_eq!(
            parse_address("localhost:7070").unwrap(),
            Address::Http("http://localhost:7070".into())
        );
        assert_eq!(
            parse_address("https://gw.example:7443").unwrap(),
            Address::Https("https://gw.example:7443".into())
        );
        for bad in ["unix:", "https://h", "ftp://h:1", "localhost", "http://h"] {
            let e = parse_address(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")), "{bad}: {e}");
        }
    }

    #[test]
    fn https_needs_a_usable_ca() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let timeout = Duration::from_secs(2);
        let server = "https://127.0.0.1:7443";
        let err = Conn::new(server, None, None, timeout).err().unwrap();
        assert!(err.to_string().contains("--tls-ca"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.pem");
        let err = Conn::new(server, None, Some(&missing), timeout)
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("cannot use --tls-ca file "), "{err}");
        assert!(err.contains("absent.pem"), "{err}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let err = Conn::new(server, None, Some(&junk), timeout)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
        // A CA is not needed, and not read, for a plain address.
        assert!(Conn::new("http://127.0.0.1:7443", None, Some(&missing), timeout).is_ok());
    }

    #[test]
    fn auth_header() {
        let mut auth = Auth::new(Some("abc")).unwrap();
        let req = auth.call(Request::new(())).unwrap();
        assert_eq!(
            req.metadata()
                .get("authorization")
                .unwrap()
                .to_str()
                .unwrap(),
            "Bearer abc"
        );
        let mut none = Auth::new(None).unwrap();
        let req = none.call(Request::new(())).unwrap();
        assert!(req.metadata().get("authorization").is_none());
        assert!(matches!(Auth::new(Some("a\nb")), Err(Error::BadToken)));
    }

    #[test]
    fn missing_socket_names_server() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let server = "unix:/nonexistent/virtctl-test.sock";
        let err = rt
            .block_on(async {
                // The channel spawns its worker task, so it is made inside the runtime.
                let conn = Conn::new(server, None, None, Duration::from_secs(2)).unwrap();
                let mut host = conn.host();
                let req = conn.request(virtplane_proto::v1::GetVersionRequest {});
                conn.unary(host.get_version(req)).await
            })
            .unwrap_err();
        assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with("cannot reach server unix:/nonexistent/virtctl-test.sock: "),
            "{text}"
        );
    }
}
