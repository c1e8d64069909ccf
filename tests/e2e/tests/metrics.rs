//! Metrics, request logs and trace context over the real binaries: virtplane-storaged (test
//! driver) and virtplane-gateway with `--metrics-listen` on loopback and JSON logs. A few
//! calls (OK, NOT_FOUND, UNAUTHENTICATED, an unreachable backend) must show up in
//! `/metrics` with their codes, the scrape must pass `promtool check metrics`, the request
//! log lines must carry method, code, latency and trace id, and a `traceparent` sent to the
//! gateway must reach the storage service's log with the caller's trace id.
//!
//! Needs `promtool` (Debian's `prometheus` package; .ci/run installs it).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tonic::Code;
use tonic::metadata::MetadataValue;
use virtplane_common::client::connect_channel;
use virtplane_common::server::ListenAddr;
use virtplane_e2e::{ADMIN_TOKEN, KillOnDrop, binary};
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::network_service_client::NetworkServiceClient;
use virtplane_proto::v1::storage_service_client::StorageServiceClient;

/// The caller's trace in the gateway test (the W3C spec's example ids).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// Starts `program` with `args`, JSON logs with the per-request lines, stderr to `log`.
fn spawn(program: &str, args: &[String], log: &Path) -> KillOnDrop {
    let file = std::fs::File::create(log).expect("log file");
    let child = Command::new(binary(program))
        .args(args)
        .args(["--log-format", "json"])
        .env("RUST_LOG", "info,virtplane::request=debug")
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    KillOnDrop(child)
}

/// `GET /metrics` on `port`, retried until the daemon serves it (30 s at most).
fn scrape(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match try_scrape(port) {
            Ok(body) => return body,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(error) => panic!("no metrics on 127.0.0.1:{port}: {error}"),
        }
    }
}

fn try_scrape(port: u16) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("not HTTP: {response:?}")))?;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{head}"
    );
    Ok(body.to_owned())
}

/// The value of the sample of `name` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            (rest.is_empty() || rest.starts_with('{')).then_some((rest, value))
        })
        .find(|(rest, _)| {
            labels
                .iter()
                .all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")))
        })
        .and_then(|(_, value)| value.parse().ok())
}

/// Runs `promtool check metrics` on `text` (30 s at most); panics with its findings.
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): install Debian's prometheus package (.ci/run does)")
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for promtool") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("promtool check metrics took longer than 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut findings = String::new();
    for mut pipe in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let _ = pipe.read_to_string(&mut findings);
    }
    assert!(
        status.success() && findings.trim().is_empty(),
        "promtool check metrics failed ({status}):\n{findings}\non:\n{text}"
    );
}

/// The `request finished` lines of a JSON log, as their `fields` objects.
fn request_lines(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["target"] == "virtplane::request")
        .map(|line| line["fields"].clone())
        .collect()
}

/// Waits (10 s at most) for a request line of `method` that `matches`, and returns it.
fn wait_for_request_line(
    log: &Path,
    method: &str,
    matches: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = request_lines(log);
        if let Some(line) = lines
            .iter()
            .find(|line| line["method"] == method && matches(line))
        {
            return line.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no matching request line for {method} in {}:\n{}",
            log.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn storage_args(dir: &Path, sock: &Path, metrics_port: u16) -> Vec<String> {
    vec![
        "--driver".into(),
        "test".into(),
        "--state-dir".into(),
        dir.join("storage").display().to_string(),
        "--run-dir".into(),
        dir.join("run/storage").display().to_string(),
        "--listen".into(),
        format!("unix:{}", sock.display()),
        "--metrics-listen".into(),
        format!("127.0.0.1:{metrics_port}"),
    ]
}

async fn wait_for_socket(sock: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            sock.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn client(sock: &Path) -> StorageServiceClient<tonic::transport::Channel> {
    StorageServiceClient::new(connect_channel(&ListenAddr::Unix(sock.to_path_buf())))
}

fn lookup(pool: &str) -> pb::LookupPoolRequest {
    pb::LookupPoolRequest {
        pool: Some(pb::StoragePoolRef {
            id: Some(pb::storage_pool_ref::Id::Name(pool.into())),
        }),
    }
}

/// A request with the admin token and, when given, a `traceparent`.
fn authorized<T>(message: T, traceparent: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let token: MetadataValue<_> = format!("Bearer {ADMIN_TOKEN}").parse().expect("header");
    request.metadata_mut().insert("authorization", token);
    if let Some(value) = traceparent {
        request
            .metadata_mut()
            .insert("traceparent", value.parse().expect("header"));
    }
    request
}

#[tokio::test]
async fn the_storage_service_counts_calls_by_code_and_its_metrics_pass_promtool() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sock = dir.path().join("run/storage.sock");
    let log = dir.path().join("storaged.log");
    let port = free_port();
    let _storaged = spawn(
        "virtplane-storaged",
        &storage_args(dir.path(), &sock, port),
        &log,
    );
    wait_for_socket(&sock).await;
    let mut storage = client(&sock);
    for _ in 0..2 {
        storage
            .list_pools(pb::ListPoolsRequest::default())
            .await
            .expect("list pools");
    }
    // Straight to the service, with a trace of the caller's.
    let mut request = tonic::Request::new(lookup("absent"));
    request
        .metadata_mut()
        .insert("traceparent", TRACEPARENT.parse().expect("header"));
    let status = storage.lookup_pool(request).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    let text = scrape(port);
    let storage_service = ("service", "virtplane.v1.StorageService");
    assert_eq!(
        sample(
            &text,
            "virtplane_grpc_requests_total",
            &[storage_service, ("method", "ListPools"), ("code", "OK")]
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "virtplane_grpc_requests_total",
            &[
                storage_service,
                ("method", "LookupPool"),
                ("code", "NOT_FOUND")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "virtplane_grpc_request_duration_seconds_count",
            &[storage_service, ("method", "ListPools"), ("code", "OK")]
        ),
        Some(2.0),
        "{text}"
    );
    assert!(
        text.contains("# TYPE virtplane_grpc_request_duration_seconds histogram"),
        "{text}"
    );
    // The test world's pool `default` runs.
    assert_eq!(
        sample(&text, "virtplane_storage_pools", &[("state", "running")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "virtplane_storage_pools", &[("state", "degraded")]),
        Some(0.0),
        "{text}"
    );
    promtool_check(&text);

    // The JSON request line of the failed call: method, code, latency and the caller's trace.
    let line = wait_for_request_line(&log, "LookupPool", |line| line["code"] == "NOT_FOUND");
    assert_eq!(line["service"], "virtplane.v1.StorageService", "{line}");
    assert_eq!(line["trace_id"], TRACE_ID, "{line}");
    assert!(line["latency_ms"].as_f64().is_some(), "{line}");
    // Calls without a traceparent get a trace id of their own.
    let line = wait_for_request_line(&log, "ListPools", |_| true);
    let own = line["trace_id"].as_str().expect("trace id");
    assert!(own.len() == 32 && own != TRACE_ID, "{line}");
}

#[tokio::test]
async fn the_gateway_passes_the_trace_on_and_its_metrics_pass_promtool() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage_sock = dir.path().join("run/storage.sock");
    let gateway_sock = dir.path().join("run/gateway.sock");
    let storage_log = dir.path().join("storaged.log");
    let gateway_log = dir.path().join("gateway.log");
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        format!(
            "admin admin sha256:{}\n",
            hex::encode(Sha256::digest(ADMIN_TOKEN))
        ),
    )
    .expect("tokens file");
    let _storaged = spawn(
        "virtplane-storaged",
        &storage_args(dir.path(), &storage_sock, free_port()),
        &storage_log,
    );
    let gateway_port = free_port();
    let absent: PathBuf = dir.path().join("run/no-network.sock");
    let gateway_args: Vec<String> = vec![
        "--listen".into(),
        format!("unix:{}", gateway_sock.display()),
        "--tokens".into(),
        tokens.display().to_string(),
        "--backend".into(),
        format!("storage=unix:{}", storage_sock.display()),
        "--backend".into(),
        format!("network=unix:{}", absent.display()),
        "--metrics-listen".into(),
        format!("127.0.0.1:{gateway_port}"),
    ];
    let _gateway = spawn("virtplane-gateway", &gateway_args, &gateway_log);
    wait_for_socket(&storage_sock).await;
    wait_for_socket(&gateway_sock).await;

    let mut gateway = client(&gateway_sock);
    gateway
        .list_pools(authorized(
            pb::ListPoolsRequest::default(),
            Some(TRACEPARENT),
        ))
        .await
        .expect("list pools with the caller's trace");
    gateway
        .list_pools(authorized(pb::ListPoolsRequest::default(), None))
        .await
        .expect("list pools without a trace");
    let status = gateway
        .list_pools(pb::ListPoolsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let mut networks =
        NetworkServiceClient::new(connect_channel(&ListenAddr::Unix(gateway_sock.clone())));
    let status = networks
        .list(authorized(pb::ListNetworksRequest::default(), None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    // The caller's trace id reached the storage service, through the gateway's hop.
    wait_for_request_line(&storage_log, "ListPools", |line| {
        line["trace_id"] == TRACE_ID
    });
    wait_for_request_line(&gateway_log, "ListPools", |line| {
        line["trace_id"] == TRACE_ID && line["code"] == "OK"
    });
    // Without one, the gateway starts a trace and the service logs that same trace.
    let gateway_traces: Vec<String> = request_lines(&gateway_log)
        .iter()
        .filter(|line| line["method"] == "ListPools" && line["code"] == "OK")
        .filter_map(|line| line["trace_id"].as_str().map(str::to_owned))
        .filter(|trace| trace != TRACE_ID)
        .collect();
    assert_eq!(gateway_traces.len(), 1, "{gateway_traces:?}");
    wait_for_request_line(&storage_log, "ListPools", |line| {
        line["trace_id"] == gateway_traces[0].as_str()
    });

    let text = scrape(gateway_port);
    let storage_service = ("service", "virtplane.v1.StorageService");
    assert_eq!(
        sample(
            &text,
            "virtplane_grpc_requests_total",
            &[storage_service, ("method", "ListPools"), ("code", "OK")]
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "virtplane_grpc_requests_total",
            &[
                storage_service,
                ("method", "ListPools"),
                ("code", "UNAUTHENTICATED")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "virtplane_grpc_requests_total",
            &[
                ("service", "virtplane.v1.NetworkService"),
                ("method", "List"),
                ("code", "UNAVAILABLE")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "virtplane_gateway_backend_errors_total",
            &[("backend", "network")]
        ),
        Some(1.0),
        "{text}"
    );
    promtool_check(&text);
}
