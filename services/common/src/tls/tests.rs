//! TLS end to end inside one process: a real server on a loopback port with the standard
//! health service, and clients with good, missing and foreign certificates.

use std::net::SocketAddr;
use std::path::Path;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use super::test_pki::{Leaf, TestCa};
use super::{ClientTls, ServerTls, TlsError};
use crate::client::connect_channel_tls;
use crate::server::{ListenAddr, serve_with_tls, standard_routes};

/// A loopback port nobody listens on right now.
fn free_port() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

/// Serves health with `tls` until the returned sender is dropped.
pub(super) async fn serve(tls: ServerTls) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let addr = free_port();
    let (routes, _reporter) = standard_routes(&[]).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let listen = [ListenAddr::Tcp(addr)];
        let until = async move {
            let _ = stopped.await;
        };
        serve_with_tls(&listen, Some(&tls), routes, 0o600, until)
            .await
            .unwrap();
    });
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return (addr, stop);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the test server on {addr} did not come up");
}

async fn check(addr: SocketAddr, tls: &ClientTls) -> Result<i32, tonic::Status> {
    check_at(&ListenAddr::Tcp(addr), tls).await
}

async fn check_at(addr: &ListenAddr, tls: &ClientTls) -> Result<i32, tonic::Status> {
    let channel = connect_channel_tls(addr, Some(tls));
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await?;
    Ok(response.into_inner().status)
}

fn client(ca: &TestCa, leaf: Option<&Leaf>, name: Option<&str>) -> ClientTls {
    let identity = leaf.map(|l| (l.cert.as_path(), l.key.as_path()));
    ClientTls::load(&ca.cert, identity, name).unwrap()
}

fn server(leaf: &Leaf, client_ca: Option<&Path>) -> ServerTls {
    ServerTls::load(&leaf.cert, &leaf.key, client_ca).unwrap()
}

/// Asserts a refused call: UNAVAILABLE, saying TLS failed at `addr`, with `detail`.
fn assert_tls_refusal(
    result: Result<i32, tonic::Status>,
    addr: impl std::fmt::Display,
    detail: &str,
) {
    let status = result.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let text = status.message();
    assert!(text.contains(&format!("TLS with {addr} failed")), "{text}");
    assert!(text.contains(detail), "{detail}: {text}");
}

#[tokio::test]
async fn mutual_tls_admits_only_clients_of_the_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "ca");
    let other = TestCa::new(dir.path(), "other-ca");
    let node = ca.issue(dir.path(), "node", &["127.0.0.1"]);
    let gateway = ca.issue(dir.path(), "gateway", &["gateway"]);
    let stranger = other.issue(dir.path(), "stranger", &["stranger"]);
    let (addr, _stop) = serve(server(&node, Some(&ca.cert))).await;

    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    assert_eq!(
        check(addr, &client(&ca, Some(&gateway), None))
            .await
            .unwrap(),
        serving
    );
    // TLS 1.3: the server refuses after the client's side of the handshake is done; the
    // connect waits for its verdict, so these too fail as a connect, with the server's alert.
    assert_tls_refusal(
        check(addr, &client(&ca, None, None)).await,
        addr,
        "failed in the handshake: received fatal alert: CertificateRequired",
    );
    assert_tls_refusal(
        check(addr, &client(&ca, Some(&stranger), None)).await,
        addr,
        "failed in the handshake: received fatal alert: UnknownCA",
    );
    // A client that does not trust the server's CA gives up in the handshake.
    assert_tls_refusal(
        check(addr, &client(&other, Some(&stranger), None)).await,
        addr,
        "failed in the handshake: invalid peer certificate: UnknownIssuer",
    );
}

#[tokio::test]
async fn the_server_name_defaults_to_the_ip_and_can_be_given() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "ca");
    // A certificate with a DNS name only: connecting by IP needs the name given.
    let node = ca.issue(dir.path(), "node1", &["node1.example"]);
    let (addr, _stop) = serve(server(&node, None)).await;
    assert_tls_refusal(
        check(addr, &client(&ca, None, None)).await,
        addr,
        "certificate not valid for name \"127.0.0.1\"",
    );
    assert!(
        check(addr, &client(&ca, None, Some("node1.example")))
            .await
            .is_ok()
    );
    assert!(matches!(
        ClientTls::load(&ca.cert, None, Some("not a name")),
        Err(TlsError::ServerName(_))
    ));
}

#[tokio::test]
async fn the_server_name_defaults_to_the_host_name_connected_to() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "ca");
    // A certificate for the name only, as Kubernetes services get (no IP SAN).
    let node = ca.issue(dir.path(), "node", &["localhost"]);
    let (addr, _stop) = serve(server(&node, Some(&ca.cert))).await;
    let by_name: ListenAddr = format!("localhost:{}", addr.port()).parse().unwrap();
    let gateway = ca.issue(dir.path(), "gateway", &["gateway"]);
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    assert_eq!(
        check_at(&by_name, &client(&ca, Some(&gateway), None))
            .await
            .unwrap(),
        serving
    );
    // By IP, the name to check is the IP, which this certificate does not carry.
    assert_tls_refusal(
        check(addr, &client(&ca, Some(&gateway), None)).await,
        addr,
        "certificate not valid for name \"127.0.0.1\"",
    );
    // The configured name still wins over the host name.
    assert_tls_refusal(
        check_at(
            &by_name,
            &client(&ca, Some(&gateway), Some("other.example")),
        )
        .await,
        &by_name,
        "certificate not valid for name \"other.example\"",
    );
}

#[tokio::test]
async fn an_unresolvable_host_fails_the_call_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "ca");
    let addr: ListenAddr = "no-such-host.invalid:1".parse().unwrap();
    let started = std::time::Instant::now();
    let status = check_at(&addr, &client(&ca, None, None)).await.unwrap_err();
    assert!(started.elapsed() < crate::client::CONNECT_TIMEOUT + std::time::Duration::from_secs(1));
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .contains("host name 'no-such-host.invalid' could not be resolved"),
        "{status:?}"
    );
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "ca");
    let one = ca.issue(dir.path(), "one", &["one"]);
    let two = ca.issue(dir.path(), "two", &["two"]);
    let error = ServerTls::load(&one.cert, &two.key, None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("do not make a TLS identity"), "{error}");
    assert!(
        error.contains("one.crt") && error.contains("two.key"),
        "{error}"
    );
    // A client CA file without a certificate in it.
    let error = ServerTls::load(&one.cert, &one.key, Some(&one.key))
        .unwrap_err()
        .to_string();
    assert!(error.contains("--tls-client-ca file"), "{error}");
}
