//! Prometheus metrics: the `--metrics-listen` option, the `/metrics` endpoint (plain HTTP,
//! rendered from `metrics-exporter-prometheus`'s recorder), the names of every metric
//! virtplane exports, and the small recording helpers the services call.
//!
//! Nothing is recorded until the endpoint is installed: without `--metrics-listen` the
//! helpers return at once, so a daemon that nobody scrapes pays nothing for its metrics.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Calls served, by `service`, `method` and gRPC `code` (e.g. `NOT_FOUND`).
pub const GRPC_REQUESTS: &str = "virtplane_grpc_requests_total";
/// How long calls took, by `service`, `method` and `code`: until the response's status (its
/// trailers), so a stream's duration is its whole life.
pub const GRPC_DURATION: &str = "virtplane_grpc_request_duration_seconds";
/// Calls the gateway could not deliver to a backend (connection refused, no socket, a
/// backend that does not answer), by `backend` (`domain`, `network`, `storage`).
pub const GATEWAY_BACKEND_ERRORS: &str = "virtplane_gateway_backend_errors_total";
/// QMP commands, by `command` (the QMP name; raw passthrough as `passthrough`) and
/// `outcome` (`ok`, `error`, `timeout`, `disconnected`).
pub const QMP_DURATION: &str = "virtplane_qmp_command_duration_seconds";
/// Guest agent calls, by `command` (the QGA name; raw passthrough as `passthrough`) and
/// `outcome` (`ok`, `refused`, `not_responding`, `not_connected`, `protocol_error`,
/// `invalid`).
pub const GUEST_AGENT_DURATION: &str = "virtplane_guest_agent_call_duration_seconds";
/// Domains by `state` (libvirt's names: `running`, `paused`, `shutoff`, …), counted at
/// scrape time.
pub const DOMAINS: &str = "virtplane_domains";
/// Networks by `state` (`active`, `inactive`), counted at scrape time.
pub const NETWORKS: &str = "virtplane_networks";
/// Storage pools by `state` (`running`, `inactive`, `building`, `degraded`,
/// `inaccessible`), counted at scrape time.
pub const STORAGE_POOLS: &str = "virtplane_storage_pools";

/// Histogram buckets (seconds) for every duration above: from a cached read over a unix
/// socket (well under a millisecond) to a long stream or a slow guest (minutes).
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

/// How long one scrape hook may take before the scrape goes on without it.
const SCRAPE_HOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// How often histograms are compacted when nobody scrapes (a scrape does it too).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The metrics option every daemon (and the gateway) takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://HOST:PORT/metrics (off by default). Plain,
    /// unauthenticated HTTP: bind it to loopback or a network only the scraper reaches.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_listen: Option<SocketAddr>,
}

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot listen for metrics on {addr} (--metrics-listen): {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot install the metrics recorder: {0}")]
    Recorder(String),
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

type ScrapeHook = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;
static SCRAPE_HOOKS: Mutex<Vec<ScrapeHook>> = Mutex::new(Vec::new());

/// True once the endpoint is installed; recording helpers do nothing before.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Starts the `/metrics` endpoint when `--metrics-listen` was given (else does nothing):
/// installs the process-wide recorder, binds the address (an error when it cannot), and
/// serves in a background task. Must run inside the daemon's runtime.
pub async fn serve_endpoint(args: &MetricsArgs) -> Result<(), MetricsError> {
    let Some(addr) = args.metrics_listen else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Listen { addr, source })?;
    let handle = install()?;
    let app = axum::Router::new().route("/metrics", axum::routing::get(scrape));
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(address = %addr, %error, "the metrics endpoint stopped");
        }
    });
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            ticker.tick().await;
            handle.run_upkeep();
        }
    });
    tracing::info!(address = %addr, "serving metrics at /metrics");
    Ok(())
}

/// Installs the recorder (histograms with [`BUCKETS`]) and describes every metric, so the
/// scrape carries HELP and TYPE lines.
fn install() -> Result<PrometheusHandle, MetricsError> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .map_err(|error| MetricsError::Recorder(error.to_string()))?
        .install_recorder()
        .map_err(|error| MetricsError::Recorder(error.to_string()))?;
    describe();
    let _ = HANDLE.set(handle.clone());
    ENABLED.store(true, Ordering::Relaxed);
    Ok(handle)
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        GRPC_REQUESTS,
        "gRPC calls served, by service, method and status code"
    );
    describe_histogram!(
        GRPC_DURATION,
        Unit::Seconds,
        "gRPC call duration until the status is sent (a stream's whole life)"
    );
    describe_counter!(
        GATEWAY_BACKEND_ERRORS,
        "Calls the gateway could not deliver to a backend service"
    );
    describe_histogram!(
        QMP_DURATION,
        Unit::Seconds,
        "QMP command duration, by command and outcome"
    );
    describe_histogram!(
        GUEST_AGENT_DURATION,
        Unit::Seconds,
        "Guest agent call duration, by command and outcome"
    );
    describe_gauge!(DOMAINS, "Domains by state");
    describe_gauge!(NETWORKS, "Networks by state");
    describe_gauge!(STORAGE_POOLS, "Storage pools by state");
}

/// `GET /metrics`: runs the scrape hooks (each bounded by [`SCRAPE_HOOK_TIMEOUT`]), then
/// renders the Prometheus text format.
async fn scrape() -> impl axum::response::IntoResponse {
    let hooks: Vec<ScrapeHook> = SCRAPE_HOOKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    for hook in hooks {
        if tokio::time::timeout(SCRAPE_HOOK_TIMEOUT, hook())
            .await
            .is_err()
        {
            tracing::warn!("a metrics scrape hook took longer than {SCRAPE_HOOK_TIMEOUT:?}");
        }
    }
    let text = HANDLE
        .get()
        .map(|handle| {
            handle.run_upkeep();
            handle.render()
        })
        .unwrap_or_default();
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// Runs `hook` before every scrape, for gauges that are cheaper to count when asked than to
/// keep up to date (objects by state). Registering without an endpoint is harmless.
pub fn on_scrape<F, Fut>(hook: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let hook: ScrapeHook = Arc::new(move || Box::pin(hook()));
    SCRAPE_HOOKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(hook);
}

/// Sets the gauge `metric` (one of [`DOMAINS`], [`NETWORKS`], [`STORAGE_POOLS`]) for every
/// state in `counts`; list every possible state, zeros included, so a state that emptied
/// shows 0 rather than its last count.
pub fn set_objects_by_state(metric: &'static str, counts: &[(&'static str, usize)]) {
    if !enabled() {
        return;
    }
    for (state, count) in counts {
        metrics::gauge!(metric, "state" => *state).set(*count as f64);
    }
}

/// Records one QMP command ([`QMP_DURATION`]).
pub fn observe_qmp_command(command: &'static str, outcome: &'static str, elapsed: Duration) {
    if enabled() {
        metrics::histogram!(QMP_DURATION, "command" => command, "outcome" => outcome)
            .record(elapsed);
    }
}

/// Records one guest agent call ([`GUEST_AGENT_DURATION`]).
pub fn observe_guest_agent_call(command: &'static str, outcome: &'static str, elapsed: Duration) {
    if enabled() {
        metrics::histogram!(GUEST_AGENT_DURATION, "command" => command, "outcome" => outcome)
            .record(elapsed);
    }
}

/// Counts a call the gateway could not deliver to `backend` ([`GATEWAY_BACKEND_ERRORS`]).
/// Backend names come from the gateway's configuration, so the label set stays small.
pub fn count_backend_error(backend: &str) {
    if enabled() {
        metrics::counter!(GATEWAY_BACKEND_ERRORS, "backend" => backend.to_owned()).increment(1);
    }
}

/// Records one finished gRPC call ([`GRPC_REQUESTS`], [`GRPC_DURATION`]).
pub(crate) fn observe_grpc_call(
    service: &'static str,
    method: &'static str,
    code: &'static str,
    elapsed: Duration,
) {
    if enabled() {
        let labels = [("service", service), ("method", method), ("code", code)];
        metrics::counter!(GRPC_REQUESTS, &labels).increment(1);
        metrics::histogram!(GRPC_DURATION, &labels).record(elapsed);
    }
}
