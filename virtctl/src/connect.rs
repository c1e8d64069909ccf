//! The connection to the gateway (or, on a developer's machine, straight to a service).
//!
//! Addresses: `unix:/abs/path.sock` or `unix:rel/path.sock` (a unix socket, the default of
//! `deploy/local`), `http://host:port`, bare `host:port`, or `https://host:port` (TLS: the
//! gateway's certificate is verified against the `--tls-ca` bundle, for the host named in
//! the address, which may be an IP address). The host may be a DNS name (a Kubernetes
//! Service name, say): it is resolved when the connection is made. A gateway that asks for
//! client certificates gets `--tls-cert` and `--tls-key`.
//!
//! A connection failure is reported as "cannot reach server ADDR: cause", naming the address
//! the user gave, not as a bare UNAVAILABLE.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Response, Status};
use virtplane_proto::headers::{
    NODE as NODE_HEADER, UNREACHABLE_NODES as UNREACHABLE_NODES_HEADER,
};
use virtplane_proto::v1::console_service_client::ConsoleServiceClient;
use virtplane_proto::v1::domain_service_client::DomainServiceClient;
use virtplane_proto::v1::domain_stats_service_client::DomainStatsServiceClient;
use virtplane_proto::v1::guest_agent_service_client::GuestAgentServiceClient;
use virtplane_proto::v1::host_service_client::HostServiceClient;
use virtplane_proto::v1::network_service_client::NetworkServiceClient;
use virtplane_proto::v1::qemu_service_client::QemuServiceClient;
use virtplane_proto::v1::storage_service_client::StorageServiceClient;

use crate::error::{Error, root_cause};
use crate::tls_probe::TlsProbe;

/// Largest message virtctl accepts: domain XML is capped at 1 MiB by the services, but a
/// list of many thousand domains can exceed tonic's 4 MiB default.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Adds `authorization: Bearer <token>` to every call, streams included.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    header: Option<MetadataValue<Ascii>>,
    /// `--node`: the `virtplane-node` header, which a gateway serving many nodes routes by.
    node: Option<MetadataValue<Ascii>>,
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
        Ok(Auth { header, node: None })
    }

    /// Sends `--node NAME` with every call.
    pub fn on_node(mut self, node: Option<&str>) -> Result<Self, Error> {
        self.node = match node {
            None => None,
            Some(name) => {
                let valid = virtplane_proto::headers::is_node_name(name);
                let value = name.parse().ok().filter(|_| valid);
                Some(value.ok_or_else(|| Error::BadNode(name.to_owned()))?)
            }
        };
        Ok(self)
    }
}

impl Interceptor for Auth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(h) = &self.header {
            req.metadata_mut().insert("authorization", h.clone());
        }
        if let Some(node) = &self.node {
            req.metadata_mut().insert(NODE_HEADER, node.clone());
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
    /// For an `https://` server: asks it why it refuses TLS, when a call could not say.
    probe: Option<TlsProbe>,
}

/// The TLS files of an `https://` server: the CA bundle that verifies it (`--tls-ca`) and
/// the client certificate and key to present when it asks for one (`--tls-cert`,
/// `--tls-key`). Unused, and not read, for other addresses.
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsFiles<'a> {
    pub ca: Option<&'a Path>,
    pub cert: Option<&'a Path>,
    pub key: Option<&'a Path>,
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

/// The host named in a TCP server address (a DNS name or an IP address), for messages.
pub fn host_of(server: &str) -> Option<String> {
    match parse_address(server).ok()? {
        Address::Unix(_) => None,
        Address::Http(url) | Address::Https(url) => url
            .parse::<tonic::codegen::http::Uri>()
            .ok()?
            .host()
            .map(str::to_owned),
    }
}

impl Conn {
    /// Prepares the connection to `server`, sending `token` on every call; an `https://`
    /// server is verified against the CA bundle `tls.ca` (required for it, unused otherwise)
    /// and is shown the client certificate `tls.cert` with its key `tls.key` when given.
    ///
    /// The connection itself is made by the first call (a missing socket or refused port
    /// then comes back as UNAVAILABLE with the cause attached, which [`Error::from_status`]
    /// turns into "cannot reach server …"), so a command can first check its own inputs,
    /// such as the XML file of `define`, and report those before any network problem.
    /// Must be called inside the tokio runtime (the channel spawns its worker task).
    #[cfg(test)]
    pub fn new(
        server: &str,
        token: Option<&str>,
        tls: TlsFiles<'_>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        Self::on_node(server, token, tls, timeout, None)
    }

    /// As [`Conn::new`], every call naming the node `node` (`--node`) to a gateway that
    /// serves many.
    pub fn on_node(
        server: &str,
        token: Option<&str>,
        tls: TlsFiles<'_>,
        timeout: Duration,
        node: Option<&str>,
    ) -> Result<Self, Error> {
        let auth = Auth::new(token)?.on_node(node)?;
        let bad = |e: tonic::transport::Error| Error::BadServer {
            addr: server.to_string(),
            why: root_cause(&e),
        };
        let (endpoint, probe) = match parse_address(server)? {
            Address::Unix(path) => (
                Endpoint::from_shared(format!("unix:{path}")).map_err(bad)?,
                None,
            ),
            Address::Http(url) => (Endpoint::from_shared(url).map_err(bad)?, None),
            Address::Https(url) => https_endpoint(server, url, tls)?,
        };
        let endpoint = endpoint
            .connect_timeout(timeout)
            // Bulk streams (vol-upload, vol-download): big frames and windows, as the servers use.
            .max_frame_size(1 << 20)
            .initial_stream_window_size(8 << 20)
            .initial_connection_window_size(16 << 20);
        Ok(Conn {
            channel: InterceptedService::new(endpoint.connect_lazy(), auth),
            server: server.to_string(),
            timeout,
            probe,
        })
    }

    /// `error`, with the server's reason when it is an `https://` server that could not be
    /// reached and the call's own error did not say why (see [`crate::tls_probe`]).
    pub async fn explain(&self, error: Error) -> Error {
        match (error, &self.probe) {
            (Error::Unreachable { server, detail }, Some(probe))
                if !detail.starts_with("TLS failed") =>
            {
                let detail = match probe.refusal().await {
                    Some(tls) => crate::error::tls_detail(&tls),
                    None => detail,
                };
                Error::Unreachable { server, detail }
            }
            (error, _) => error,
        }
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
            Ok(Ok(resp)) => {
                warn_of_unreachable_nodes(resp.metadata());
                Ok(resp.into_inner())
            }
        }
    }
}

/// The endpoint of an `https://` server, with its CA bundle and, when given, the client
/// certificate; and the probe that asks the server why it refuses (see [`crate::tls_probe`]).
fn https_endpoint(
    server: &str,
    url: String,
    tls: TlsFiles<'_>,
) -> Result<(Endpoint, Option<TlsProbe>), Error> {
    let ca = tls.ca.ok_or_else(|| Error::BadServer {
        addr: server.to_string(),
        why: "https:// needs the CA that signed the server's certificate: give --tls-ca FILE \
              or set VIRTPLANE_TLS_CA"
            .into(),
    })?;
    let ca_pem = read_ca(ca)?;
    let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca_pem));
    let endpoint = Endpoint::from_shared(url).map_err(|e| Error::BadServer {
        addr: server.to_string(),
        why: root_cause(&e),
    })?;
    // The CA alone first, so that a failure is blamed on the right file.
    let with_ca = endpoint
        .clone()
        .tls_config(config.clone())
        .map_err(|e| Error::TlsCa {
            path: ca.to_path_buf(),
            why: root_cause(&e),
        })?;
    let identity = read_identity(tls)?;
    let uri = endpoint.uri();
    let probe = uri.host().zip(uri.port_u16()).and_then(|(host, port)| {
        let pems = identity.as_ref().map(|i| (&i.cert_pem[..], &i.key_pem[..]));
        TlsProbe::new(host, port, &ca_pem, pems)
    });
    let endpoint = match identity {
        None => with_ca,
        Some(files) => endpoint
            .tls_config(config.identity(Identity::from_pem(&files.cert_pem, &files.key_pem)))
            .map_err(|e| Error::TlsIdentity {
                cert: files.cert.to_path_buf(),
                key: files.key.to_path_buf(),
                why: root_cause(&e),
            })?,
    };
    Ok((endpoint, probe))
}

/// A list from a gateway serving many nodes, some of which did not answer: their objects are
/// shown as last seen, marked unreachable (or not at all, if the gateway never saw them).
fn warn_of_unreachable_nodes(metadata: &tonic::metadata::MetadataMap) {
    if let Some(nodes) = metadata
        .get(UNREACHABLE_NODES_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        eprintln!(
            "warning: node(s) {nodes} did not answer: their objects are listed as last seen, marked unreachable"
        );
    }
}

/// The `--tls-ca` bundle, which must hold at least one PEM certificate (tonic would take a
/// file without one and fail every handshake later).
fn read_ca(path: &Path) -> Result<Vec<u8>, Error> {
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
    Ok(pem)
}

/// The client certificate and key files, read.
struct IdentityFiles<'a> {
    cert: &'a Path,
    key: &'a Path,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

/// The client certificate and key (`--tls-cert`, `--tls-key`), both or neither; each file
/// must hold the PEM block it is for.
fn read_identity(tls: TlsFiles<'_>) -> Result<Option<IdentityFiles<'_>>, Error> {
    let (cert, key) = match (tls.cert, tls.key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            return Err(Error::TlsPair {
                given: "--tls-cert",
                missing: "--tls-key",
            });
        }
        (None, Some(_)) => {
            return Err(Error::TlsPair {
                given: "--tls-key",
                missing: "--tls-cert",
            });
        }
    };
    let cert_pem = read_pem(
        "--tls-cert",
        cert,
        "CERTIFICATE-----",
        "'-----BEGIN CERTIFICATE-----'",
    )?;
    let key_pem = read_pem(
        "--tls-key",
        key,
        "PRIVATE KEY-----",
        "a PEM private key, e.g. '-----BEGIN PRIVATE KEY-----'",
    )?;
    Ok(Some(IdentityFiles {
        cert,
        key,
        cert_pem,
        key_pem,
    }))
}

/// A PEM file that must hold a block whose BEGIN line ends with `marker`.
fn read_pem(
    flag: &'static str,
    path: &Path,
    marker: &str,
    expected: &str,
) -> Result<Vec<u8>, Error> {
    let file = |why: String| Error::TlsFile {
        flag,
        path: PathBuf::from(path),
        why,
    };
    let pem = std::fs::read(path).map_err(|e| file(e.to_string()))?;
    let found = String::from_utf8_lossy(&pem)
        .lines()
        .any(|line| line.starts_with("-----BEGIN ") && line.trim_end().ends_with(marker));
    if !found {
        return Err(file(format!("no PEM block in it (expected {expected})")));
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_go_in_a_header_and_bad_ones_are_refused() {
        let mut auth = Auth::new(Some("t"))
            .unwrap()
            .on_node(Some("node-a"))
            .unwrap();
        let request = auth.call(Request::new(())).unwrap();
        assert_eq!(request.metadata().get(NODE_HEADER).unwrap(), "node-a");
        let mut auth = Auth::new(None).unwrap();
        let request = auth.call(Request::new(())).unwrap();
        assert!(request.metadata().get(NODE_HEADER).is_none());
        for bad in ["", "a b", "ünïcode", "x/y"] {
            let err = Auth::new(None).unwrap().on_node(Some(bad)).unwrap_err();
            assert!(err.to_string().contains(&format!("'{bad}'")), "{err}");
        }
    }

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
        let ca = |path| TlsFiles {
            ca: Some(path),
            ..TlsFiles::default()
        };
        let err = Conn::new(server, None, TlsFiles::default(), timeout)
            .err()
            .unwrap();
        assert!(err.to_string().contains("--tls-ca"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.pem");
        let err = Conn::new(server, None, ca(&missing), timeout)
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("cannot use --tls-ca file "), "{err}");
        assert!(err.contains("absent.pem"), "{err}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let err = Conn::new(server, None, ca(&junk), timeout)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
        // A CA is not needed, and not read, for a plain address.
        assert!(Conn::new("http://127.0.0.1:7443", None, ca(&missing), timeout).is_ok());
    }

    #[test]
    fn hosts_of_addresses() {
        assert_eq!(
            host_of("gw.virtplane.svc:7443").as_deref(),
            Some("gw.virtplane.svc")
        );
        assert_eq!(host_of("https://[::1]:7443").as_deref(), Some("[::1]"));
        assert_eq!(host_of("unix:/x.sock"), None);
    }

    #[test]
    fn a_client_certificate_needs_its_key_and_pem_files() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let dir = tempfile::tempdir().unwrap();
        let pem = |name: &str, block: &str| {
            let path = dir.path().join(name);
            std::fs::write(
                &path,
                format!("-----BEGIN {block}-----\nAAAA\n-----END {block}-----\n"),
            )
            .unwrap();
            path
        };
        let ca = pem("ca.pem", "CERTIFICATE");
        let cert = pem("me.crt", "CERTIFICATE");
        let key = pem("me.key", "PRIVATE KEY");
        let timeout = Duration::from_secs(2);
        let server = "https://gw.example:7443";
        let files = |cert, key| TlsFiles {
            ca: Some(&ca),
            cert,
            key,
        };
        let error = |tls| {
            Conn::new(server, None, tls, timeout)
                .err()
                .unwrap()
                .to_string()
        };
        let text = error(files(Some(&cert), None));
        assert!(text.starts_with("--tls-cert needs --tls-key too"), "{text}");
        let text = error(files(None, Some(&key)));
        assert!(text.starts_with("--tls-key needs --tls-cert too"), "{text}");
        // Each file must hold its own kind of block: the key is not a certificate.
        let text = error(files(Some(&key), Some(&key)));
        assert_eq!(
            text,
            format!(
                "cannot use --tls-cert file {}: no PEM block in it (expected \
                 '-----BEGIN CERTIFICATE-----')",
                key.display()
            )
        );
        let text = error(files(Some(&cert), Some(&cert)));
        assert!(
            text.starts_with(&format!(
                "cannot use --tls-key file {}: no PEM block",
                cert.display()
            )),
            "{text}"
        );
        // Blocks whose contents are not a certificate and a key: both files are named.
        let text = error(files(Some(&cert), Some(&key)));
        assert!(
            text.starts_with(&format!(
                "cannot use --tls-cert file {} with --tls-key file {}: ",
                cert.display(),
                key.display()
            )),
            "{text}"
        );
        let missing = dir.path().join("absent.key");
        let text = error(files(Some(&cert), Some(&missing)));
        assert!(
            text.starts_with(&format!(
                "cannot use --tls-key file {}: ",
                missing.display()
            )),
            "{text}"
        );
        // Not read for a plain address.
        let plain = Conn::new(
            "http://gw.example:7070",
            None,
            files(Some(&missing), None),
            timeout,
        );
        assert!(plain.is_ok());
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
                let conn =
                    Conn::new(server, None, TlsFiles::default(), Duration::from_secs(2)).unwrap();
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
