//! The tower layer every virtplane gRPC server runs its calls through (see
//! [`crate::server::serve`]): per call it reads or starts the W3C trace context, runs the
//! call inside a `grpc` span carrying the service, method and trace id (so every log line of
//! the call names its trace), and when the call's status is known it records the call's
//! metrics and logs one `request finished` line (target `virtplane::request`, level DEBUG:
//! `RUST_LOG=info,virtplane::request=debug` shows them) with method, code and latency.
//!
//! When a call counts: a status sent in the response headers (trailers-only: most errors)
//! counts when the headers are sent; otherwise at the response's trailers, i.e. at the end
//! of the response stream. So a unary call counts when its reply is complete, a streaming
//! call when its stream ends, and its duration is the stream's whole life. A response
//! dropped before its trailers (the client went away) counts as `CANCELLED`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use prost::Message;
use tonic::Code;
use tracing::Instrument;

use crate::trace_context::{TRACEPARENT, TraceContext};

/// The target of the per-call log lines.
pub const REQUEST_LOG_TARGET: &str = "virtplane::request";

/// A call's `service` and `method` labels. Only methods of virtplane's protos and the
/// standard health and reflection services get their own labels; any other path (a client's
/// typo, a scanner) is `unknown`, so clients cannot grow the label set without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub service: &'static str,
    pub method: &'static str,
}

/// The labels of a path that names no known method.
pub const UNKNOWN_ROUTE: Route = Route {
    service: "unknown",
    method: "unknown",
};

/// The labels for a request path such as `/virtplane.v1.DomainService/Define`.
pub fn route(path: &str) -> Route {
    known_methods().get(path).copied().unwrap_or(UNKNOWN_ROUTE)
}

/// Every method path the servers can serve, from the compiled descriptor sets. Built once;
/// the names are leaked on purpose (a few hundred short strings for the process's life) so
/// that labels are `&'static str` and recording a call allocates nothing.
fn known_methods() -> &'static HashMap<String, Route> {
    static METHODS: OnceLock<HashMap<String, Route>> = OnceLock::new();
    METHODS.get_or_init(|| {
        let sets: [&[u8]; 4] = [
            virtplane_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ];
        let mut methods = HashMap::new();
        for set in sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(set) else {
                continue;
            };
            for file in &set.file {
                for service in &file.service {
                    let full = format!("{}.{}", file.package(), service.name());
                    let service_name: &'static str = Box::leak(full.into_boxed_str());
                    for method in &service.method {
                        let method_name: &'static str =
                            Box::leak(method.name().to_owned().into_boxed_str());
                        methods.insert(
                            format!("/{service_name}/{method_name}"),
                            Route {
                                service: service_name,
                                method: method_name,
                            },
                        );
                    }
                }
            }
        }
        methods
    })
}

/// The gRPC status code's canonical name (`NOT_FOUND`), the `code` label.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The status in a header map (`grpc-status`), if it has one.
fn status_in(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// The code of a response that is not gRPC at all (no 200), as the gRPC spec maps HTTP
/// statuses.
fn code_of_http_status(status: http::StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502..=504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// The layer; see the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObserveLayer;

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner }
    }
}

/// The service [`ObserveLayer`] wraps around a server's routes.
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for Observe<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Body + Unpin + Send + 'static,
{
    type Response = Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let route = route(request.uri().path());
        let header = request
            .headers()
            .get(TRACEPARENT)
            .and_then(|value| value.to_str().ok());
        let trace = TraceContext::from_header(header);
        // The gateway's proxy continues this trace on its backend request.
        request.extensions_mut().insert(trace);
        let trace_id = trace.trace_id_hex();
        let span = tracing::info_span!(
            "grpc",
            service = route.service,
            method = route.method,
            trace_id = %trace_id,
            span_id = %trace.span_id_hex(),
        );
        let mut call = Call {
            route,
            trace_id,
            started: Instant::now(),
            span: span.clone(),
            done: false,
        };
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                match future.await {
                    Ok(response) => {
                        let code = status_in(response.headers()).or_else(|| {
                            (response.status() != http::StatusCode::OK)
                                .then(|| code_of_http_status(response.status()))
                        });
                        let call = match code {
                            Some(code) => {
                                call.finish(code);
                                None
                            }
                            None => Some(call),
                        };
                        Ok(response.map(|inner| ObservedBody { inner, call }))
                    }
                    Err(error) => {
                        call.finish(Code::Unknown);
                        Err(error)
                    }
                }
            }
            .instrument(span),
        )
    }
}

/// One call on its way: recorded once, when its status is known or it is dropped.
#[derive(Debug)]
struct Call {
    route: Route,
    trace_id: String,
    started: Instant,
    span: tracing::Span,
    done: bool,
}

impl Call {
    fn finish(&mut self, code: Code) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.started.elapsed();
        let code = code_name(code);
        crate::metrics::observe_grpc_call(self.route.service, self.route.method, code, elapsed);
        tracing::debug!(
            target: REQUEST_LOG_TARGET,
            parent: &self.span,
            service = self.route.service,
            method = self.route.method,
            code,
            latency_ms = elapsed.as_secs_f64() * 1e3,
            trace_id = %self.trace_id,
            "request finished"
        );
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // No status reached the client: it cancelled, or the connection went away.
        self.finish(Code::Cancelled);
    }
}

/// A response body that records its call when the trailers (or the end) pass through.
#[derive(Debug)]
pub struct ObservedBody<B> {
    inner: B,
    call: Option<Call>,
}

impl<B: Body + Unpin> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let code = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame
                .trailers_ref()
                .map(|trailers| status_in(trailers).unwrap_or(Code::Unknown)),
            // A body that fails or ends without trailers sent no status: the client sees
            // an error.
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => Some(Code::Unknown),
            Poll::Pending => None,
        };
        if let Some(code) = code
            && let Some(mut call) = this.call.take()
        {
            call.finish(code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_get_their_labels_and_others_are_unknown() {
        assert_eq!(
            route("/virtplane.v1.DomainService/Define"),
            Route {
                service: "virtplane.v1.DomainService",
                method: "Define"
            }
        );
        assert_eq!(
            route("/virtplane.v1.StorageService/ListPools").method,
            "ListPools"
        );
        assert_eq!(
            route("/grpc.health.v1.Health/Check").service,
            "grpc.health.v1.Health"
        );
        assert_eq!(
            route("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo").method,
            "ServerReflectionInfo"
        );
        for unknown in [
            "/virtplane.v1.DomainService/NoSuchMethod",
            "/virtplane.v1.DomainService/Define/extra",
            "/",
            "",
            "/metrics",
        ] {
            assert_eq!(route(unknown), UNKNOWN_ROUTE, "{unknown:?}");
        }
    }

    #[test]
    fn codes_have_their_canonical_names() {
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(code_name(Code::NotFound), "NOT_FOUND");
        assert_eq!(code_name(Code::FailedPrecondition), "FAILED_PRECONDITION");
        let mut headers = HeaderMap::new();
        assert_eq!(status_in(&headers), None);
        headers.insert("grpc-status", "5".parse().unwrap());
        assert_eq!(status_in(&headers), Some(Code::NotFound));
        headers.insert("grpc-status", "x".parse().unwrap());
        assert_eq!(status_in(&headers), Some(Code::Unknown));
        assert_eq!(
            code_of_http_status(http::StatusCode::NOT_FOUND),
            Code::Unimplemented
        );
        assert_eq!(
            code_of_http_status(http::StatusCode::SERVICE_UNAVAILABLE),
            Code::Unavailable
        );
    }

    /// Through the layer: the trace context reaches the inner service, a trailers-only
    /// status counts at once, a streamed one at its trailers.
    #[tokio::test]
    async fn the_layer_passes_the_trace_on_and_sees_both_kinds_of_status() {
        use http_body_util::BodyExt;
        use tower::{Layer, ServiceExt};

        let inner = tower::service_fn(|request: Request<String>| async move {
            let trace = request.extensions().get::<TraceContext>().copied();
            let trace = trace.expect("the layer adds the trace context");
            let response = if request.uri().path().ends_with("Define") {
                let trailers = HeaderMap::from_iter([(
                    http::HeaderName::from_static("grpc-status"),
                    http::HeaderValue::from_static("0"),
                )]);
                let frames: Vec<Result<Frame<bytes::Bytes>, std::convert::Infallible>> = vec![
                    Ok(Frame::data(bytes::Bytes::from(trace.trace_id_hex()))),
                    Ok(Frame::trailers(trailers)),
                ];
                Response::new(http_body_util::StreamBody::new(futures::stream::iter(
                    frames,
                )))
            } else {
                let mut response = Response::new(http_body_util::StreamBody::new(
                    futures::stream::iter(Vec::new()),
                ));
                response
                    .headers_mut()
                    .insert("grpc-status", "5".parse().unwrap());
                response
            };
            Ok::<_, std::convert::Infallible>(response)
        });
        let service = ObserveLayer.layer(inner);
        let request = Request::builder()
            .uri("/virtplane.v1.DomainService/Define")
            .header(
                TRACEPARENT,
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .body(String::new())
            .unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        assert!(response.body().call.is_some(), "counted at the trailers");
        let collected = response.into_body().collect().await.unwrap();
        assert_eq!(
            collected.trailers().and_then(status_in),
            Some(Code::Ok),
            "trailers pass through"
        );
        assert_eq!(
            collected.to_bytes(),
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "the inner service saw the caller's trace"
        );
        let request = Request::builder()
            .uri("/virtplane.v1.DomainService/Lookup")
            .body(String::new())
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        assert!(response.body().call.is_none(), "counted at the headers");
    }
}
