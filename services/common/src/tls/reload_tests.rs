//! Certificate reload with a real server and real handshakes: the files are swapped the way
//! Kubernetes updates a mounted Secret (a new directory, then a symlink renamed over the
//! old one), and new handshakes present the new certificate while a connection made before
//! goes on working.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use super::reload::{Flags, ReloadingIdentity};
use super::test_pki::TestCa;
use super::tests::serve;
use super::{ClientTls, ServerTls, pem};
use crate::dial::TcpPeer;

const FLAGS: Flags = Flags {
    cert: "--tls-cert",
    key: "--tls-key",
};

/// A mounted Secret: `tls.crt` and `tls.key` are symlinks through `..data`, which names the
/// current version's directory.
struct SecretMount {
    dir: PathBuf,
    versions: usize,
}

impl SecretMount {
    fn new(dir: &Path) -> Self {
        std::os::unix::fs::symlink("..data/tls.crt", dir.join("tls.crt")).unwrap();
        std::os::unix::fs::symlink("..data/tls.key", dir.join("tls.key")).unwrap();
        Self {
            dir: dir.to_path_buf(),
            versions: 0,
        }
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("tls.crt")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("tls.key")
    }

    /// Publishes a certificate for `names` from `ca` as the next version; returns its DER.
    fn publish(&mut self, ca: &TestCa, names: &[&str]) -> CertificateDer<'static> {
        self.versions += 1;
        let version = self.dir.join(format!("..v{}", self.versions));
        std::fs::create_dir(&version).unwrap();
        let leaf = ca.issue(&version, "node", names);
        std::fs::rename(&leaf.cert, version.join("tls.crt")).unwrap();
        std::fs::rename(&leaf.key, version.join("tls.key")).unwrap();
        self.switch_to(&version);
        pem::certificates("test", &version.join("tls.crt")).unwrap()[0].clone()
    }

    /// Points `..data` at `version` atomically, as the kubelet does.
    fn switch_to(&self, version: &Path) {
        let staged = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(version.file_name().unwrap(), &staged).unwrap();
        std::fs::rename(&staged, self.dir.join("..data")).unwrap();
    }
}

/// The certificate the server at `addr` presents in a new handshake.
async fn presented(addr: SocketAddr, ca: &Path) -> CertificateDer<'static> {
    let config = ClientConfig::builder_with_provider(super::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(pem::trust_anchors("--client-tls-ca", ca).unwrap())
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let stream = TlsConnector::from(Arc::new(config))
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .unwrap();
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

async fn health(channel: tonic::transport::Channel) -> Result<i32, tonic::Status> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await?;
    Ok(response.into_inner().status)
}

/// A channel that may connect once only: a call that works after the first shows that the
/// first connection is still up.
fn one_connection_channel(addr: SocketAddr, tls: ClientTls) -> tonic::transport::Channel {
    let connects = Arc::new(AtomicUsize::new(0));
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_with_connector_lazy(tower::service_fn(move |_| {
            let tls = tls.clone();
            let connects = connects.clone();
            async move {
                if connects.fetch_add(1, Ordering::SeqCst) > 0 {
                    return Err(std::io::Error::other("this channel connects only once"));
                }
                let stream = tls.connect(&TcpPeer::Ip(addr)).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
}

#[tokio::test]
async fn a_swapped_certificate_is_presented_to_new_connections_only() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "ca");
    let mount_dir = dir.path().join("secret");
    std::fs::create_dir(&mount_dir).unwrap();
    let mut mount = SecretMount::new(&mount_dir);
    let first = mount.publish(&ca, &["127.0.0.1"]);
    let identity = ReloadingIdentity::load_every(
        FLAGS,
        &mount.cert(),
        &mount.key(),
        Duration::from_millis(50),
    )
    .unwrap();
    let server = ServerTls::with_identity(identity, None).unwrap();
    let (addr, _stop) = serve(server.clone()).await;
    assert_eq!(presented(addr, &ca.cert).await, first);

    let client = ClientTls::load(&ca.cert, None, None).unwrap();
    let kept = one_connection_channel(addr, client);
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    assert_eq!(health(kept.clone()).await.unwrap(), serving);

    // Renewed: the watcher notices within a few intervals.
    let second = mount.publish(&ca, &["127.0.0.1", "node.example"]);
    assert_ne!(first, second);
    let deadline = Instant::now() + Duration::from_secs(5);
    while presented(addr, &ca.cert).await != second {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never presented"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The connection made before the swap is still up.
    assert_eq!(health(kept).await.unwrap(), serving);
    // Nothing changed since: nothing to reload.
    assert!(!server.reload().unwrap());

    // A key that is not the certificate's (a half-written update): the previous certificate
    // stays, and the error names both files.
    let broken = mount_dir.join("..broken");
    std::fs::create_dir(&broken).unwrap();
    let other = ca.issue(&broken, "other", &["127.0.0.1"]);
    std::fs::rename(&other.cert, broken.join("tls.crt")).unwrap();
    let unrelated = ca.issue(dir.path(), "unrelated", &["x"]);
    std::fs::rename(&unrelated.key, broken.join("tls.key")).unwrap();
    mount.switch_to(&broken);
    let error = server.reload().unwrap_err().to_string();
    assert!(error.contains("do not make a TLS identity"), "{error}");
    assert!(
        error.contains("tls.crt") && error.contains("tls.key"),
        "{error}"
    );
    assert_eq!(presented(addr, &ca.cert).await, second);
}

#[tokio::test]
async fn a_renewed_client_certificate_is_presented_on_the_next_connection() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "ca");
    let stranger_ca = TestCa::new(dir.path(), "stranger-ca");
    let node = ca.issue(dir.path(), "node", &["127.0.0.1"]);
    let server = ServerTls::load(&node.cert, &node.key, Some(&ca.cert)).unwrap();
    let (addr, _stop) = serve(server).await;

    // The client starts with a certificate the server does not accept.
    let mount_dir = dir.path().join("secret");
    std::fs::create_dir(&mount_dir).unwrap();
    let mut mount = SecretMount::new(&mount_dir);
    mount.publish(&stranger_ca, &["gateway"]);
    let client = ClientTls::load(&ca.cert, Some((&mount.cert(), &mount.key())), None).unwrap();
    let refused = client.connect(&TcpPeer::Ip(addr)).await.unwrap_err();
    assert!(refused.to_string().contains("UnknownCA"), "{refused}");

    // Renewed from the right CA: the next connection gets in (the client checks its files
    // every RELOAD_INTERVAL or on SIGHUP; the test asks at once, as SIGHUP would).
    mount.publish(&ca, &["gateway"]);
    assert!(client.reload().unwrap());
    client.connect(&TcpPeer::Ip(addr)).await.unwrap();
}
