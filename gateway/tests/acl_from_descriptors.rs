//! The real `virtplane-gateway` binary in front of a backend, with the ACL checks generated
//! from the descriptor set (no hand-kept list of methods).
//!
//! The backend is an in-test fake that answers OK to everything and echoes the identity
//! headers it received (proving the gateway strips client-sent ones), and, when it has been
//! built, the real `virtplane-domaind` with its test driver.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::Frame;
use prost::Message;
use tokio::sync::oneshot;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::Channel;
use tonic::{Code, Status};
use virtplane_common::client::connect_channel;
use virtplane_common::identity::{PERMISSIONS_HEADER, ROLE_HEADER, USER_HEADER};
use virtplane_common::server::{ListenAddr, serve, standard_routes};
use virtplane_gateway::audit::OBJECT_HEADER;
use virtplane_proto::acl::{MethodTable, is_read_only_permission};
use virtplane_proto::v1;

const GATEWAY: &str = env!("CARGO_BIN_EXE_virtplane-gateway");
const VIEWER: &str = "viewer-token-0123";
const OPERATOR: &str = "operator-token-4567";
const ADMIN: &str = "admin-token-89ab";

// ---------------------------------------------------------------------------------------------
// Processes and files

/// Kills the child by pid when dropped, so a failing test leaves nothing running.
struct Proc {
    child: Child,
    stderr: PathBuf,
}

impl Proc {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hash_token(token: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(GATEWAY)
        .arg("hash-token")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{token}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "hash-token failed");
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(
        hash.starts_with("sha256:") && hash.len() == 7 + 64,
        "{hash}"
    );
    hash
}

fn write_tokens(path: &Path) {
    let text = format!(
        "# user role hash\nviewer viewer {}\n\noperator operator {}\nadmin admin {}\n",
        hash_token(VIEWER),
        hash_token(OPERATOR),
        hash_token(ADMIN)
    );
    std::fs::write(path, text).unwrap();
}

struct Gateway {
    proc: Proc,
    socket: PathBuf,
    channel: Channel,
}

/// Starts the gateway binary on `dir/gateway.sock` with `args` and waits until it answers.
async fn start_gateway(dir: &Path, args: &[String]) -> Gateway {
    let tokens = dir.join("tokens");
    if !tokens.exists() {
        write_tokens(&tokens);
    }
    let socket = dir.join("gateway.sock");
    let stderr = dir.join("gateway.stderr");
    let child = Command::new(GATEWAY)
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .arg("--tokens")
        .arg(&tokens)
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut proc = Proc { child, stderr };
    wait_for_socket(&mut proc, &socket).await;
    let channel = connect_channel(&ListenAddr::Unix(socket.clone()));
    Gateway {
        proc,
        socket,
        channel,
    }
}

/// Waits for a unix socket to accept connections; `None` when the process exited first.
async fn try_wait_for_socket(proc: &mut Proc, socket: &Path) -> Option<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Some(());
        }
        if let Ok(Some(_)) = proc.child.try_wait() {
            return None;
        }
        assert!(
            Instant::now() < deadline,
            "{} never listened; stderr:\n{}",
            socket.display(),
            proc.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_socket(proc: &mut Proc, socket: &Path) {
    if try_wait_for_socket(proc, socket).await.is_none() {
        panic!(
            "process exited before listening; stderr:\n{}",
            proc.stderr()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The fake backend

/// A backend with real health and reflection that answers every other call with one empty
/// message and OK, echoing the identity headers it saw as `x-seen-*` response headers.
/// `WatchEvents` streams three messages, the bytes 0, 1, 2; `Destroy` fails with
/// FAILED_PRECONDITION in trailers; `Define` names what it made, domain `fresh`, in the
/// object response header, as the domain service does.
struct FakeBackend {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeBackend {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn grpc_frame(message: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(message.len() as u32);
    out.extend_from_slice(message);
    out.into()
}

fn trailers(code: Code, message: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert("grpc-status", HeaderValue::from(code as i32));
    if !message.is_empty() {
        map.insert("grpc-message", HeaderValue::from_str(message).unwrap());
    }
    map
}

async fn echo(
    request: Request<axum::body::Body>,
) -> Result<Response<axum::body::Body>, Infallible> {
    let path = request.uri().path().to_owned();
    let seen = |name: &str| {
        let values: Vec<&str> = request
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("?"))
            .collect();
        if values.is_empty() {
            "<none>".to_owned()
        } else {
            values.join(" | ")
        }
    };
    let mut response = Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .header("x-seen-user", seen(USER_HEADER))
        .header("x-seen-role", seen(ROLE_HEADER))
        .header("x-seen-permissions", seen(PERMISSIONS_HEADER))
        .header("x-seen-authorization", seen("authorization"))
        .header("x-seen-timeout", seen("grpc-timeout"));
    if path.ends_with("/Define") {
        response = response.header(OBJECT_HEADER, "fresh");
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    tokio::spawn(async move {
        if path.ends_with("/Destroy") {
            let _ = tx
                .send(Ok(Frame::trailers(trailers(
                    Code::FailedPrecondition,
                    "domain 'web' is not running",
                ))))
                .await;
            return;
        }
        let count = if path.ends_with("/WatchEvents") { 3 } else { 1 };
        for number in 0..count {
            let message: &[u8] = if count > 1 { &[number] } else { &[] };
            let _ = tx.send(Ok(Frame::data(grpc_frame(message)))).await;
            if count > 1 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let _ = tx.send(Ok(Frame::trailers(trailers(Code::Ok, "")))).await;
    });
    let body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    response = response.header("x-fake", "1");
    Ok(response.body(axum::body::Body::new(body)).unwrap())
}

async fn start_fake_backend(socket: &Path) -> FakeBackend {
    let (routes, _reporter) = standard_routes(&[]).await.unwrap();
    let routes = tonic::service::Routes::from(
        routes
            .into_axum_router()
            .fallback_service(tower::service_fn(echo)),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let listen = vec![ListenAddr::Unix(socket.to_owned())];
    let task = tokio::spawn(async move {
        serve(&listen, routes, 0o600, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(Instant::now() < deadline, "fake backend never listened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    FakeBackend {
        stop: Some(stop),
        task: Some(task),
    }
}

// ---------------------------------------------------------------------------------------------
// A raw gRPC client: bytes in, bytes out, any path

#[derive(Debug, Clone, Default)]
struct RawCodec;

#[derive(Debug)]
struct RawEncoder;

#[derive(Debug)]
struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// What a call returned: the response headers and every message.
#[derive(Debug)]
struct Answer {
    headers: MetadataMap,
    messages: Vec<Bytes>,
}

impl Answer {
    fn seen(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("<absent>")
    }
}

/// Calls `path` with `body`; a server-streaming call reads the stream to its end unless
/// `headers_only`.
async fn call(
    channel: &Channel,
    path: &str,
    token: Option<&str>,
    body: Bytes,
    server_streaming: bool,
    headers_only: bool,
) -> Result<Answer, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut request = tonic::Request::new(body);
    request.set_timeout(Duration::from_secs(10));
    let metadata = request.metadata_mut();
    if let Some(token) = token {
        metadata.insert(
            "authorization",
            MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
        );
    }
    // A client trying to grant itself everything: the gateway must strip these.
    metadata.insert(PERMISSIONS_HEADER, MetadataValue::from_static("*"));
    metadata.insert(USER_HEADER, MetadataValue::from_static("root"));
    metadata.insert(ROLE_HEADER, MetadataValue::from_static("admin"));
    let path = http::uri::PathAndQuery::from_str(path).unwrap();
    if server_streaming {
        let response = grpc.server_streaming(request, path, RawCodec).await?;
        let headers = response.metadata().clone();
        let mut stream = response.into_inner();
        let mut messages = Vec::new();
        if !headers_only {
            while let Some(message) = stream.message().await? {
                messages.push(message);
            }
        }
        Ok(Answer { headers, messages })
    } else {
        let response = grpc.unary(request, path, RawCodec).await?;
        let headers = response.metadata().clone();
        Ok(Answer {
            headers,
            messages: vec![response.into_inner()],
        })
    }
}

fn domain_request_named(name: &str) -> Bytes {
    v1::StartDomainRequest {
        domain: Some(v1::DomainRef {
            id: Some(v1::domain_ref::Id::Name(name.into())),
        }),
        paused: false,
    }
    .encode_to_vec()
    .into()
}

fn reason(status: &Status) -> String {
    virtplane_common::status::reason(status).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The generated ACL checks, shared by the fake and the real backend

/// For every method from the descriptor set: with the viewer token, a method needing any
/// non-read-only permission is denied naming that permission; every read-only method is not.
async fn check_viewer_acl(channel: &Channel, fake_backend: bool) {
    let table = MethodTable::load().unwrap();
    let mut methods: Vec<_> = table.iter().collect();
    methods.sort_by(|a, b| a.path.cmp(&b.path));
    assert!(methods.len() > 10, "the descriptor set has the services");
    let (mut denied, mut allowed) = (0, 0);
    for acl in methods {
        let result = call(
            channel,
            &acl.path,
            Some(VIEWER),
            Bytes::new(),
            acl.server_streaming,
            true,
        )
        .await;
        let missing = acl.perms.iter().find(|p| !is_read_only_permission(p));
        match missing {
            Some(missing) => {
                let status = result.expect_err(&format!("{} allowed to the viewer", acl.path));
                assert_eq!(
                    status.code(),
                    Code::PermissionDenied,
                    "{}: {status:?}",
                    acl.path
                );
                let expected = format!(
                    "permission denied: user 'viewer' (role viewer) lacks '{missing}' for {}/{}",
                    acl.service.rsplit('.').next().unwrap(),
                    acl.method
                );
                assert!(
                    status.message().starts_with(&expected),
                    "{}: {:?} does not start with {expected:?}",
                    acl.path,
                    status.message()
                );
                assert_eq!(reason(&status), "PERMISSION_DENIED", "{}", acl.path);
                denied += 1;
            }
            None => {
                match result {
                    Ok(answer) => {
                        if fake_backend {
                            assert_eq!(answer.seen("x-seen-user"), "viewer", "{}", acl.path);
                            assert_eq!(answer.seen("x-seen-role"), "viewer", "{}", acl.path);
                            let perms = answer.seen("x-seen-permissions");
                            assert!(
                                !perms.contains('*'),
                                "{}: client-sent permissions reached the backend: {perms}",
                                acl.path
                            );
                            assert!(
                                !perms.contains('|'),
                                "{}: several permission headers: {perms}",
                                acl.path
                            );
                            for perm in perms.split(',') {
                                assert!(
                                    is_read_only_permission(perm),
                                    "{}: viewer forwarded {perm}",
                                    acl.path
                                );
                            }
                            for perm in &acl.perms {
                                assert!(
                                    perms.split(',').any(|p| p == perm),
                                    "{}: {perm} missing from {perms}",
                                    acl.path
                                );
                            }
                            assert_eq!(
                                answer.seen("x-seen-authorization"),
                                "<none>",
                                "the token is not forwarded"
                            );
                        }
                    }
                    Err(status) => assert!(
                        !matches!(
                            status.code(),
                            Code::PermissionDenied | Code::Unauthenticated | Code::Unimplemented
                        ),
                        "{}: viewer denied a read-only method: {status:?}",
                        acl.path
                    ),
                }
                allowed += 1;
            }
        }
    }
    assert!(
        denied > 0 && allowed > 0,
        "denied {denied}, allowed {allowed}"
    );
}

// ---------------------------------------------------------------------------------------------
// Tests

struct Setup {
    dir: tempfile::TempDir,
    _backend: FakeBackend,
    gateway: Gateway,
}

async fn setup(extra: &[&str]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let backend_socket = dir.path().join("domain.sock");
    let backend = start_fake_backend(&backend_socket).await;
    let mut args = vec![
        "--backend".to_owned(),
        format!("domain=unix:{}", backend_socket.display()),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let gateway = start_gateway(dir.path(), &args).await;
    Setup {
        dir,
        _backend: backend,
        gateway,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_acl_follows_the_descriptors_and_client_identity_is_stripped() {
    let setup = setup(&[]).await;
    check_viewer_acl(&setup.gateway.channel, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_required_and_checked() {
    let setup = setup(&[]).await;
    let channel = &setup.gateway.channel;
    let path = "/virtplane.v1.DomainService/GetInfo";
    let status = call(channel, path, None, Bytes::new(), false, false)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        status.message(),
        "missing bearer token: set VIRTPLANE_TOKEN or pass --token"
    );
    assert_eq!(reason(&status), "MISSING_TOKEN");
    let status = call(
        channel,
        path,
        Some("not-a-token"),
        Bytes::new(),
        false,
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "invalid token");
    assert_eq!(reason(&status), "INVALID_TOKEN");
    // Deny by default: an unknown method is UNIMPLEMENTED even for an admin.
    let status = call(
        channel,
        "/virtplane.v1.DomainService/Nope",
        Some(ADMIN),
        Bytes::new(),
        false,
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    // Admins and operators get their grants forwarded.
    let answer = call(channel, path, Some(ADMIN), Bytes::new(), false, false)
        .await
        .unwrap();
    assert_eq!(answer.seen("x-seen-permissions"), "*");
    assert_eq!(answer.seen("x-seen-user"), "admin");
    // The client's deadline is passed on; a unary call without one gets the gateway's cap.
    let answer = call(channel, path, Some(OPERATOR), Bytes::new(), false, false)
        .await
        .unwrap();
    assert_eq!(answer.seen("x-seen-permissions"), "*,-domain:passthrough");
    assert_ne!(answer.seen("x-seen-timeout"), "300S");
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(Bytes::new());
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {OPERATOR}")).unwrap(),
    );
    let response = grpc
        .unary(
            request,
            http::uri::PathAndQuery::from_static("/virtplane.v1.DomainService/GetInfo"),
            RawCodec,
        )
        .await
        .unwrap();
    assert_eq!(response.metadata().get("x-seen-timeout").unwrap(), "300S");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_need_no_token() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let setup = setup(&[]).await;
    let mut health = HealthClient::new(setup.gateway.channel.clone());
    let overall = health
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overall.status, ServingStatus::Serving as i32);
    // The gateway probes its backends and reports their services.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = health
            .check(HealthCheckRequest {
                service: "virtplane.v1.DomainService".into(),
            })
            .await
            .map(|r| r.into_inner().status)
            .ok();
        if status == Some(ServingStatus::Serving as i32) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "DomainService never SERVING: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    use tonic_reflection::pb::v1 as refl;
    let mut reflection =
        refl::server_reflection_client::ServerReflectionClient::new(setup.gateway.channel.clone());
    let request = refl::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            refl::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let answer = stream.message().await.unwrap().unwrap();
    let Some(refl::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("unexpected reflection answer {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.iter().any(|n| n == "virtplane.v1.DomainService"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n == "grpc.health.v1.Health"),
        "{names:?}"
    );

    use tonic_reflection::pb::v1alpha as alpha;
    let mut reflection =
        alpha::server_reflection_client::ServerReflectionClient::new(setup.gateway.channel.clone());
    let request = alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_streams_flow_through_with_trailers() {
    let setup = setup(&[]).await;
    let answer = call(
        &setup.gateway.channel,
        "/virtplane.v1.DomainService/WatchEvents",
        Some(VIEWER),
        Bytes::new(),
        true,
        false,
    )
    .await
    .unwrap();
    // Three separate messages, each whole and in order (the fake sends the bytes 0, 1, 2).
    let messages: Vec<&[u8]> = answer.messages.iter().map(|m| m.as_ref()).collect();
    assert_eq!(messages, [&[0u8][..], &[1], &[2]]);
    // No deadline was added to a stream by the gateway (the client set its own, 10 s).
    assert_ne!(answer.seen("x-seen-timeout"), "300S");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_audited_with_their_object_and_result() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let audit_arg = audit.display().to_string();
    let setup = setup(&["--audit-log", &audit_arg]).await;
    let channel = &setup.gateway.channel;

    call(
        channel,
        "/virtplane.v1.DomainService/Start",
        Some(OPERATOR),
        domain_request_named("web"),
        false,
        false,
    )
    .await
    .unwrap();
    // The request names nothing (the name is in the XML): the service's answer does.
    call(
        channel,
        "/virtplane.v1.DomainService/Define",
        Some(OPERATOR),
        Bytes::new(),
        false,
        false,
    )
    .await
    .unwrap();
    let status = call(
        channel,
        "/virtplane.v1.DomainService/Destroy",
        Some(ADMIN),
        domain_request_named("web"),
        false,
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let status = call(
        channel,
        "/virtplane.v1.DomainService/Start",
        Some(VIEWER),
        domain_request_named("web"),
        false,
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(
        status.message(),
        "permission denied: user 'viewer' (role viewer) lacks 'domain:start' for DomainService/Start on domain 'web'"
    );
    // Attempts without a valid token are audited too, naming no one and no object.
    for token in [None, Some("not-a-token")] {
        let status = call(
            channel,
            "/virtplane.v1.DomainService/Destroy",
            token,
            domain_request_named("web"),
            false,
            false,
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    // Reads are not audited, with or without a token.
    call(
        channel,
        "/virtplane.v1.DomainService/GetInfo",
        Some(ADMIN),
        domain_request_named("web"),
        false,
        false,
    )
    .await
    .unwrap();
    let status = call(
        channel,
        "/virtplane.v1.DomainService/GetInfo",
        None,
        domain_request_named("web"),
        false,
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let deadline = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= 6 || Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(lines.len(), 6, "{lines:#?}");
    let summary: Vec<(String, String, String, String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["user"].as_str().unwrap().to_owned(),
                l["role"].as_str().unwrap().to_owned(),
                l["method"].as_str().unwrap().to_owned(),
                format!(
                    "{}:{}",
                    l["object_kind"].as_str().unwrap_or("-"),
                    l["object"].as_str().unwrap_or("-")
                ),
                l["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let row = |u: &str, r: &str, m: &str, o: &str, c: &str| {
        (
            u.to_owned(),
            r.to_owned(),
            m.to_owned(),
            o.to_owned(),
            c.to_owned(),
        )
    };
    assert_eq!(
        summary,
        vec![
            row(
                "operator",
                "operator",
                "DomainService/Start",
                "domain:web",
                "OK"
            ),
            row(
                "operator",
                "operator",
                "DomainService/Define",
                "domain:fresh",
                "OK"
            ),
            row(
                "admin",
                "admin",
                "DomainService/Destroy",
                "domain:web",
                "FAILED_PRECONDITION"
            ),
            row(
                "viewer",
                "viewer",
                "DomainService/Start",
                "domain:web",
                "PERMISSION_DENIED"
            ),
            row("-", "-", "DomainService/Destroy", "-:-", "UNAUTHENTICATED"),
            row("-", "-", "DomainService/Destroy", "-:-", "UNAUTHENTICATED"),
        ]
    );
    assert_eq!(lines[2]["message"], "domain 'web' is not running");
    assert_eq!(
        lines[4]["message"],
        "missing bearer token: set VIRTPLANE_TOKEN or pass --token"
    );
    assert_eq!(lines[5]["message"], "invalid token");
    assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_backend_is_unavailable_naming_the_service() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("absent.sock");
    let gateway = start_gateway(
        dir.path(),
        &[
            "--backend".into(),
            format!("domain=unix:{}", absent.display()),
        ],
    )
    .await;
    let status = call(
        &gateway.channel,
        "/virtplane.v1.DomainService/GetInfo",
        Some(VIEWER),
        Bytes::new(),
        false,
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let expected = format!("domain service unavailable at unix:{}: ", absent.display());
    assert!(
        status.message().starts_with(&expected),
        "{:?}",
        status.message()
    );
    assert_eq!(reason(&status), "BACKEND_UNAVAILABLE");
    // A socket file nobody listens on: connection refused.
    let stale = std::os::unix::net::UnixListener::bind(&absent).unwrap();
    drop(stale);
    let status = call(
        &gateway.channel,
        "/virtplane.v1.HostService/GetVersion",
        Some(VIEWER),
        Bytes::new(),
        false,
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), format!("{expected}connection refused"));

    let mut health = HealthClient::new(gateway.channel.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = health
            .check(HealthCheckRequest {
                service: "virtplane.v1.DomainService".into(),
            })
            .await
            .map(|r| r.into_inner().status)
            .ok();
        if status == Some(ServingStatus::NotServing as i32) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "DomainService never NOT_SERVING: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(gateway);

    // No address at all for the service.
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_gateway(dir.path(), &[]).await;
    let status = call(
        &gateway.channel,
        "/virtplane.v1.DomainService/GetInfo",
        Some(VIEWER),
        Bytes::new(),
        false,
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        status.message(),
        "no address configured for the domain service"
    );
}

/// A backend whose socket accepts but which never answers (stopped, wedged): the call gets
/// UNAVAILABLE after the connect timeout instead of waiting forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_backend_is_unavailable_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hung.sock");
    // Bound and listening, but nothing ever accepts or reads: the kernel completes the
    // connection and buffers the HTTP/2 preface.
    let _hung = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let gateway = start_gateway(
        dir.path(),
        &[
            "--backend".into(),
            format!("domain=unix:{}", socket.display()),
        ],
    )
    .await;
    let status = call(
        &gateway.channel,
        "/virtplane.v1.HostService/GetVersion",
        Some(VIEWER),
        Bytes::new(),
        false,
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        status.message(),
        format!(
            "domain service unavailable at unix:{}: connection timed out",
            socket.display()
        )
    );
    assert_eq!(reason(&status), "BACKEND_UNAVAILABLE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_tokens_and_keeps_them_when_the_file_is_bad() {
    let setup = setup(&[]).await;
    let channel = &setup.gateway.channel;
    let tokens = setup.dir.path().join("tokens");
    let path = "/virtplane.v1.HostService/GetVersion";
    std::fs::write(
        &tokens,
        format!("newbie viewer {}\n", hash_token("fresh-token")),
    )
    .unwrap();
    let hup = || {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(setup.gateway.proc.pid()),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap()
    };
    hup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while call(
        channel,
        path,
        Some("fresh-token"),
        Bytes::new(),
        false,
        false,
    )
    .await
    .is_err()
    {
        assert!(Instant::now() < deadline, "new token never accepted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = call(channel, path, Some(VIEWER), Bytes::new(), false, false)
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::Unauthenticated,
        "the old token was removed"
    );

    std::fs::write(&tokens, "newbie superuser sha256:00\n").unwrap();
    hup();
    tokio::time::sleep(Duration::from_millis(300)).await;
    call(
        channel,
        path,
        Some("fresh-token"),
        Bytes::new(),
        false,
        false,
    )
    .await
    .expect("a bad file keeps the previous tokens");
    let stderr = setup.gateway.proc.stderr();
    assert!(stderr.contains("keeping the previous tokens"), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:1:", tokens.display())),
        "{stderr}"
    );
    assert!(setup.gateway.socket.exists());
}

#[test]
fn a_bad_tokens_file_stops_startup_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "# fine\nann wizard sha256:00\n").unwrap();
    let out = Command::new(GATEWAY)
        .arg("--listen")
        .arg(format!("unix:{}", dir.path().join("g.sock").display()))
        .arg("--tokens")
        .arg(&tokens)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2: unknown role 'wizard'", tokens.display())),
        "{stderr}"
    );
}

/// The same generated checks against the real domain service, when it has been built
/// (`cargo build -p virtplane-domain`); skipped with a note otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_acl_against_the_real_domain_service() {
    let domaind = Path::new(GATEWAY).with_file_name("virtplane-domaind");
    if !domaind.exists() {
        eprintln!("skipped: {} is not built", domaind.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("domain.sock");
    let stderr = dir.path().join("domaind.stderr");
    let child = Command::new(&domaind)
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--driver")
        .arg("test")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut domain = Proc { child, stderr };
    if try_wait_for_socket(&mut domain, &socket).await.is_none() {
        eprintln!(
            "skipped: {} exited without listening (not implemented yet?); stderr:\n{}",
            domaind.display(),
            domain.stderr()
        );
        return;
    }
    let gateway = start_gateway(
        dir.path(),
        &[
            "--backend".into(),
            format!("domain=unix:{}", socket.display()),
        ],
    )
    .await;
    check_viewer_acl(&gateway.channel, false).await;

    // Flag-conditional permissions are decided by the service from the forwarded grants:
    // the viewer may read the XML but not the secure XML; the operator may.
    let xml = |secure: bool| -> Bytes {
        v1::GetDomainXmlRequest {
            domain: Some(v1::DomainRef {
                id: Some(v1::domain_ref::Id::Name("test".into())),
            }),
            inactive: false,
            secure,
        }
        .encode_to_vec()
        .into()
    };
    let path = "/virtplane.v1.DomainService/GetXml";
    call(
        &gateway.channel,
        path,
        Some(VIEWER),
        xml(false),
        false,
        false,
    )
    .await
    .expect("viewer reads the XML of the default domain 'test'");
    let status = call(
        &gateway.channel,
        path,
        Some(VIEWER),
        xml(true),
        false,
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("domain:read_secure"),
        "{status:?}"
    );
    call(
        &gateway.channel,
        path,
        Some(OPERATOR),
        xml(true),
        false,
        false,
    )
    .await
    .expect("operator reads the secure XML");
}
