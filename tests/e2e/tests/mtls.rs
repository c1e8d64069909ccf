//! Mutual TLS between the gateway and a node service, over real processes and real
//! certificates (a throwaway CA made here with rcgen), on loopback TCP ports: the storage
//! service (test driver) requires client certificates from the CA; the gateway serves TLS to
//! virtctl and presents its client certificate to the storage service. A call through the
//! gateway works; clients without a certificate or with one from another CA are refused at
//! the handshake (and a gateway holding such a certificate reports UNAVAILABLE, saying TLS
//! failed); the standard health check works over mTLS; a node service refuses TCP with TLS
//! but without client certificates, and a bad PEM file stops a daemon with a message that
//! names the flag and the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use sha2::{Digest, Sha256};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use virtplane_e2e::{ADMIN_TOKEN, KillOnDrop, binary};

/// A CA that issues certificates into a directory.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    cert: PathBuf,
}

/// A certificate and its key, as PEM files.
struct Leaf {
    cert: PathBuf,
    key: PathBuf,
}

impl TestCa {
    fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let cert = dir.join(format!("{name}.pem"));
        std::fs::write(&cert, issuer.pem()).unwrap();
        Self { issuer, cert }
    }

    /// A certificate named `common_name`, valid for `names`, for servers and clients alike.
    fn issue(&self, dir: &Path, common_name: &str, names: &[&str]) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let leaf = Leaf {
            cert: dir.join(format!("{common_name}.crt")),
            key: dir.join(format!("{common_name}.key")),
        };
        std::fs::write(&leaf.cert, cert.pem()).unwrap();
        std::fs::write(&leaf.key, key.serialize_pem()).unwrap();
        leaf
    }
}

/// The health check through tonic's own TLS client (not virtplane's), so the server is
/// checked against an independent implementation.
async fn check_health(addr: SocketAddr, ca: &Path, identity: Option<&Leaf>) -> Result<i32, String> {
    check_health_as(addr, &addr.ip().to_string(), ca, identity).await
}

/// As [`check_health`], checking the server's certificate for `name`.
async fn check_health_as(
    addr: SocketAddr,
    name: &str,
    ca: &Path,
    identity: Option<&Leaf>,
) -> Result<i32, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(ca).unwrap()))
        .domain_name(name);
    if let Some(leaf) = identity {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(&leaf.cert).unwrap(),
            std::fs::read(&leaf.key).unwrap(),
        ));
    }
    let channel = Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let mut request = tonic::Request::new(tonic_health::pb::HealthCheckRequest::default());
    request.set_timeout(Duration::from_secs(5));
    client
        .check(request)
        .await
        .map(|r| r.into_inner().status)
        .map_err(|status| format!("{status:?}"))
}

/// A loopback address nobody listens on right now.
fn free_port() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

fn log_file(dir: &Path, name: &str) -> Stdio {
    std::fs::File::options()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .unwrap()
        .into()
}

fn read_log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

/// The log of `name` once it has every one of `lines` (hang guard: 10 s, then it fails
/// showing the log).
fn wait_for_log(dir: &Path, name: &str, lines: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = read_log(dir, name);
        if lines.iter().all(|line| log.contains(line)) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "{name}'s log never had all of {lines:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until something accepts TCP connections on `addr`.
fn wait_for_port(addr: SocketAddr, dir: &Path, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "{name} did not listen on {addr}; log:\n{}",
            read_log(dir, name)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until a unix socket exists.
fn wait_for_socket(path: &Path, dir: &Path, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(path).is_err() {
        assert!(
            Instant::now() < deadline,
            "{name} did not listen on {}; log:\n{}",
            path.display(),
            read_log(dir, name)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn virtctl(dir: &Path, args: &[&str]) -> Output {
    Command::new(binary("virtctl"))
        .env("VIRTCTL_CONFIG", dir.join("none.yaml"))
        .env_remove("VIRTPLANE_SERVER")
        .env_remove("VIRTPLANE_TOKEN")
        .env_remove("VIRTPLANE_TLS_CA")
        .env_remove("VIRTPLANE_TLS_CERT")
        .env_remove("VIRTPLANE_TLS_KEY")
        .args(["--token", ADMIN_TOKEN, "--timeout", "10"])
        .args(args)
        .output()
        .expect("run virtctl")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A gateway in front of the storage service at `storage`, presenting `client` to it.
fn gateway(dir: &Path, name: &str, storage: SocketAddr, ca: &Path, client: &Leaf) -> Command {
    let mut command = Command::new(binary("virtplane-gateway"));
    command
        .arg("--tokens")
        .arg(dir.join("tokens"))
        .arg("--backend")
        .arg(format!("storage={storage}"))
        .arg("--client-tls-ca")
        .arg(ca)
        .arg("--client-tls-cert")
        .arg(&client.cert)
        .arg("--client-tls-key")
        .arg(&client.key)
        .stdout(log_file(dir, name))
        .stderr(log_file(dir, name));
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_and_storage_service_over_mutual_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = TestCa::new(dir, "ca");
    let other = TestCa::new(dir, "other-ca");
    let storage_cert = ca.issue(dir, "virtplane-storaged", &["127.0.0.1"]);
    let gateway_client = ca.issue(dir, "virtplane-gateway", &["gateway"]);
    let gateway_server = ca.issue(dir, "gateway-server", &["127.0.0.1", "localhost"]);
    let stranger = other.issue(dir, "stranger", &["stranger"]);
    let hash = hex::encode(Sha256::digest(ADMIN_TOKEN.as_bytes()));
    std::fs::write(dir.join("tokens"), format!("admin admin sha256:{hash}\n")).unwrap();

    let storage = free_port();
    let storaged = Command::new(binary("virtplane-storaged"))
        .args(["--driver", "test", "--state-dir"])
        .arg(dir.join("storage"))
        .arg("--listen")
        .arg(storage.to_string())
        .arg("--tls-cert")
        .arg(&storage_cert.cert)
        .arg("--tls-key")
        .arg(&storage_cert.key)
        .arg("--tls-client-ca")
        .arg(&ca.cert)
        .stdout(log_file(dir, "storaged"))
        .stderr(log_file(dir, "storaged"))
        .spawn()
        .expect("spawn virtplane-storaged");
    let _storaged = KillOnDrop(storaged);
    wait_for_port(storage, dir, "storaged");

    // The standard health check over mTLS, with tonic's own TLS client.
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    assert_eq!(
        check_health(storage, &ca.cert, Some(&gateway_client)).await,
        Ok(serving)
    );
    // No client certificate, or one from another CA: refused at the handshake.
    let refused = check_health(storage, &ca.cert, None).await;
    assert!(refused.is_err(), "{refused:?}");
    let refused = check_health(storage, &ca.cert, Some(&stranger)).await;
    assert!(refused.is_err(), "{refused:?}");
    // Refused by the storage service at the handshake, which logs why (tonic's client may
    // try more than once, so the lines are not counted; the client may see the refusal
    // before the server has written its line, so the log is waited for).
    let log = wait_for_log(
        dir,
        "storaged",
        &[
            "TLS handshake failed: peer sent no certificates",
            "TLS handshake failed: invalid peer certificate: UnknownIssuer",
        ],
    );
    assert!(
        log.contains("subject=CN=virtplane-gateway san=DNS:gateway"),
        "the client's certificate is named in the log:\n{log}"
    );

    // The gateway: TLS to virtctl on TCP, mTLS to the storage service.
    let front = free_port();
    let gateway_child = gateway(dir, "gateway", storage, &ca.cert, &gateway_client)
        .arg("--listen")
        .arg(front.to_string())
        .arg("--tls-cert")
        .arg(&gateway_server.cert)
        .arg("--tls-key")
        .arg(&gateway_server.key)
        .spawn()
        .expect("spawn virtplane-gateway");
    let _gateway = KillOnDrop(gateway_child);
    wait_for_port(front, dir, "gateway");
    let server = format!("https://{front}");
    let ca_path = ca.cert.to_str().unwrap();
    let out = virtctl(
        dir,
        &["--server", &server, "--tls-ca", ca_path, "pool-list"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("default"), "{}", text(&out));
    // VIRTPLANE_TLS_CA works as the flag does, and the health service answers through TLS.
    let out = Command::new(binary("virtctl"))
        .env("VIRTCTL_CONFIG", dir.join("none.yaml"))
        .env("VIRTPLANE_TLS_CA", &ca.cert)
        .args(["--server", &server, "--token", "", "health"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // A CA that did not sign the gateway's certificate: virtctl says TLS failed.
    let other_ca = other.cert.to_str().unwrap();
    let out = virtctl(
        dir,
        &["--server", &server, "--tls-ca", other_ca, "pool-list"],
    );
    assert!(!out.status.success());
    let message = text(&out);
    assert!(
        message.contains(&format!("cannot reach server {server}")),
        "{message}"
    );
    assert!(
        message.contains("TLS failed: invalid peer certificate"),
        "{message}"
    );

    // A gateway whose client certificate comes from another CA: UNAVAILABLE, naming the
    // storage service's address and saying TLS failed.
    let socket = dir.join("stranger-gateway.sock");
    let stranger_gateway = gateway(dir, "stranger-gateway", storage, &ca.cert, &stranger)
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .spawn()
        .expect("spawn the second gateway");
    let _stranger_gateway = KillOnDrop(stranger_gateway);
    wait_for_socket(&socket, dir, "stranger-gateway");
    let out = virtctl(
        dir,
        &[
            "--server",
            &format!("unix:{}", socket.display()),
            "pool-list",
        ],
    );
    assert!(!out.status.success());
    let message = text(&out);
    assert!(
        message.contains(&format!(
            "storage service unavailable at {storage}: TLS with {storage} failed in the \
             handshake: received fatal alert: UnknownCA"
        )),
        "{message}"
    );
}

/// The names Kubernetes gives: virtctl reaches the gateway, and the gateway the storage
/// service, by host name (`localhost` here), and each checks the other's certificate for that
/// name (they carry no IP). The gateway asks for client certificates: virtctl without one is
/// refused with a message saying what to give, and gets in with `--tls-cert` / `--tls-key`
/// or their variables. A backend whose name does not resolve is reported by that name.
#[test]
fn virtctl_presents_a_client_certificate_and_everyone_connects_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = TestCa::new(dir, "ca");
    let storage_cert = ca.issue(dir, "virtplane-storaged", &["localhost"]);
    let gateway_client = ca.issue(dir, "virtplane-gateway", &["gateway"]);
    let gateway_server = ca.issue(dir, "gateway-server", &["localhost"]);
    let user = ca.issue(dir, "virtctl-user", &["virtctl-user"]);
    let hash = hex::encode(Sha256::digest(ADMIN_TOKEN.as_bytes()));
    std::fs::write(dir.join("tokens"), format!("admin admin sha256:{hash}\n")).unwrap();

    let storage = free_port();
    let storaged = Command::new(binary("virtplane-storaged"))
        .args(["--driver", "test", "--state-dir"])
        .arg(dir.join("storage"))
        .arg("--listen")
        .arg(storage.to_string())
        .arg("--tls-cert")
        .arg(&storage_cert.cert)
        .arg("--tls-key")
        .arg(&storage_cert.key)
        .arg("--tls-client-ca")
        .arg(&ca.cert)
        .stdout(log_file(dir, "storaged"))
        .stderr(log_file(dir, "storaged"))
        .spawn()
        .expect("spawn virtplane-storaged");
    let _storaged = KillOnDrop(storaged);
    wait_for_port(storage, dir, "storaged");

    let front = free_port();
    let mut command = Command::new(binary("virtplane-gateway"));
    command
        .arg("--tokens")
        .arg(dir.join("tokens"))
        .arg("--backend")
        .arg(format!("storage=localhost:{}", storage.port()))
        .arg("--client-tls-ca")
        .arg(&ca.cert)
        .arg("--client-tls-cert")
        .arg(&gateway_client.cert)
        .arg("--client-tls-key")
        .arg(&gateway_client.key)
        .arg("--listen")
        .arg(front.to_string())
        .arg("--tls-cert")
        .arg(&gateway_server.cert)
        .arg("--tls-key")
        .arg(&gateway_server.key)
        .arg("--tls-client-ca")
        .arg(&ca.cert)
        .stdout(log_file(dir, "gateway"))
        .stderr(log_file(dir, "gateway"));
    let _gateway = KillOnDrop(command.spawn().expect("spawn virtplane-gateway"));
    wait_for_port(front, dir, "gateway");

    let server = format!("https://localhost:{}", front.port());
    let ca_path = ca.cert.to_str().unwrap();
    let base = ["--server", server.as_str(), "--tls-ca", ca_path];

    // No client certificate: the gateway refuses at the handshake, and virtctl says what
    // to give.
    let out = virtctl(dir, &[&base[..], &["pool-list"]].concat());
    assert!(!out.status.success());
    let message = text(&out);
    assert!(
        message.contains(&format!("cannot reach server {server}: TLS failed: ")),
        "{message}"
    );
    assert!(message.contains("CertificateRequired"), "{message}");
    assert!(
        message.contains("give --tls-cert and --tls-key"),
        "{message}"
    );

    // With one, through to the storage service (reached by name, its certificate checked
    // for that name).
    let (cert, key) = (user.cert.to_str().unwrap(), user.key.to_str().unwrap());
    let flags = ["--tls-cert", cert, "--tls-key", key];
    let out = virtctl(dir, &[&base[..], &flags, &["pool-list"]].concat());
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("default"), "{}", text(&out));
    let log = wait_for_log(dir, "gateway", &["subject=CN=virtctl-user"]);
    assert!(log.contains("TLS client connected"), "{log}");

    // The variables work as the flags do.
    let out = Command::new(binary("virtctl"))
        .env("VIRTCTL_CONFIG", dir.join("none.yaml"))
        .env("VIRTPLANE_TLS_CA", &ca.cert)
        .env("VIRTPLANE_TLS_CERT", &user.cert)
        .env("VIRTPLANE_TLS_KEY", &user.key)
        .args(["--server", &server, "--token", ADMIN_TOKEN, "pool-list"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // Half a pair is refused before anything is sent.
    let out = virtctl(
        dir,
        &[&base[..], &["--tls-cert", cert, "pool-list"]].concat(),
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("--tls-cert needs --tls-key too"),
        "{}",
        text(&out)
    );

    // A gateway whose backend name does not resolve names it.
    let socket = dir.join("lost-gateway.sock");
    let lost = Command::new(binary("virtplane-gateway"))
        .arg("--tokens")
        .arg(dir.join("tokens"))
        .args(["--backend", "storage=no-such-host.invalid:7103"])
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .stdout(log_file(dir, "lost-gateway"))
        .stderr(log_file(dir, "lost-gateway"))
        .spawn()
        .expect("spawn the second gateway");
    let _lost = KillOnDrop(lost);
    wait_for_socket(&socket, dir, "lost-gateway");
    let started = Instant::now();
    let out = virtctl(
        dir,
        &[
            "--server",
            &format!("unix:{}", socket.display()),
            "pool-list",
        ],
    );
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        text(&out).contains(
            "storage service unavailable at no-such-host.invalid:7103: host name \
             'no-such-host.invalid' could not be resolved"
        ),
        "{}",
        text(&out)
    );

    // virtctl's own server name that does not resolve.
    let out = virtctl(dir, &["--server", "no-such-host.invalid:7070", "pool-list"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(
            "cannot reach server no-such-host.invalid:7070: host name \
             'no-such-host.invalid' could not be resolved"
        ),
        "{}",
        text(&out)
    );
}

/// A renewed certificate, swapped in as Kubernetes swaps a mounted Secret (new directory,
/// symlink renamed over the old), is presented after SIGHUP without a restart: the daemon
/// keeps running and its log names the new certificate; new handshakes get it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_presents_a_renewed_certificate_after_sighup() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = TestCa::new(dir, "ca");
    let client = ca.issue(dir, "virtplane-gateway", &["gateway"]);
    let secret = dir.join("secret");
    std::fs::create_dir(&secret).unwrap();
    let publish = |version: &str, common_name: &str, names: &[&str]| {
        let path = secret.join(version);
        std::fs::create_dir(&path).unwrap();
        let leaf = ca.issue(&path, common_name, names);
        std::fs::rename(&leaf.cert, path.join("tls.crt")).unwrap();
        std::fs::rename(&leaf.key, path.join("tls.key")).unwrap();
        let staged = secret.join("..data_tmp");
        std::os::unix::fs::symlink(version, &staged).unwrap();
        std::fs::rename(&staged, secret.join("..data")).unwrap();
    };
    publish("..v1", "first", &["127.0.0.1"]);
    std::os::unix::fs::symlink("..data/tls.crt", secret.join("tls.crt")).unwrap();
    std::os::unix::fs::symlink("..data/tls.key", secret.join("tls.key")).unwrap();

    let storage = free_port();
    let storaged = Command::new(binary("virtplane-storaged"))
        .args(["--driver", "test", "--state-dir"])
        .arg(dir.join("storage"))
        .arg("--listen")
        .arg(storage.to_string())
        .arg("--tls-cert")
        .arg(secret.join("tls.crt"))
        .arg("--tls-key")
        .arg(secret.join("tls.key"))
        .arg("--tls-client-ca")
        .arg(&ca.cert)
        .stdout(log_file(dir, "storaged"))
        .stderr(log_file(dir, "storaged"))
        .spawn()
        .expect("spawn virtplane-storaged");
    let mut storaged = KillOnDrop(storaged);
    wait_for_port(storage, dir, "storaged");
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    assert_eq!(
        check_health_as(storage, "127.0.0.1", &ca.cert, Some(&client)).await,
        Ok(serving)
    );

    // Renewed for a name instead of the IP; SIGHUP asks the daemon to look at once.
    publish("..v2", "renewed", &["localhost"]);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(storaged.0.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    wait_for_log(
        dir,
        "storaged",
        &[
            "TLS certificate reloaded",
            "subject=CN=renewed san=DNS:localhost",
        ],
    );
    assert!(
        storaged.0.try_wait().unwrap().is_none(),
        "SIGHUP stopped the daemon"
    );
    assert_eq!(
        check_health_as(storage, "localhost", &ca.cert, Some(&client)).await,
        Ok(serving)
    );
    let old_name = check_health_as(storage, "127.0.0.1", &ca.cert, Some(&client)).await;
    assert!(old_name.is_err(), "{old_name:?}");
}

#[test]
fn node_services_refuse_tls_without_client_certificates_and_bad_pem() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = TestCa::new(dir, "ca");
    let cert = ca.issue(dir, "node", &["127.0.0.1"]);
    let run = |extra: &[&std::ffi::OsStr]| {
        let mut command = Command::new(binary("virtplane-networkd"));
        command
            .args(["--driver", "test", "--state-dir"])
            .arg(dir.join("network"))
            .arg("--listen")
            .arg(free_port().to_string())
            .args(extra);
        // Each of these stops at startup; the timeout only guards against a daemon that
        // wrongly starts serving.
        let mut child = KillOnDrop(command.stderr(Stdio::piped()).spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.0.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "networkd started serving");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(!child.0.wait().unwrap().success(), "{stderr}");
        stderr
    };
    let os = |p: &Path| p.as_os_str().to_owned();
    let tls = [
        "--tls-cert".into(),
        os(&cert.cert),
        "--tls-key".into(),
        os(&cert.key),
    ];
    let refs: Vec<&std::ffi::OsStr> = tls.iter().map(|s| s.as_os_str()).collect();
    let stderr = run(&refs);
    assert!(stderr.contains("without --tls-client-ca"), "{stderr}");
    assert!(stderr.contains("--insecure-tcp"), "{stderr}");

    let mut with_key_as_ca = refs.clone();
    let key = os(&cert.key);
    with_key_as_ca.extend(["--tls-client-ca".as_ref(), key.as_os_str()]);
    let stderr = run(&with_key_as_ca);
    assert!(
        stderr.contains(&format!(
            "--tls-client-ca file {} holds no certificate",
            cert.key.display()
        )),
        "{stderr}"
    );
}
