//! The proxy: the tower service behind every path that is not the gateway's own health or
//! reflection. Per call it authenticates the bearer token, looks the HTTP/2 path up in the
//! method table, decides from the declared permissions, replaces the identity headers, and
//! forwards the request bytes unchanged to the owning service over a shared HTTP/2
//! connection; responses (streams and trailers included) flow back untouched. Calls that
//! change something are audited with their result.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use tonic::Status;
use virtplane_common::status::with_reason;
use virtplane_common::trace_context::{TRACEPARENT, TRACESTATE, TraceContext};
use virtplane_proto::acl::{MethodAcl, MethodTable};

use crate::audit::{AuditEntry, AuditSink, PendingAudit, object_from_response};
use crate::authz::{Decision, decide, short_method};
use crate::backends::Backend;
use crate::fleet::route::{self, Route};
use crate::fleet::{Fleet, NODE_HEADER, Node, UNREACHABLE_NODES_HEADER};
use crate::tokens::{Principal, TokenStore};

/// The deadline given to unary calls that arrive without `grpc-timeout`.
pub const DEFAULT_UNARY_TIMEOUT: &str = "300S";

/// The largest first message read to find the object key of a mutating call; a larger one is
/// forwarded without an object in its audit line.
pub const MAX_INSPECTED_MESSAGE: usize = 4 << 20;

/// How long a mutating call may take to send its first message. The gateway reads it before
/// deciding, so without a bound a client could hold the call (and its task) open forever by
/// never sending its body.
pub const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Every request header with this prefix is the gateway's to set: whatever the client sent
/// under it is dropped, so no future identity header can be forged either.
pub use virtplane_proto::headers::PREFIX as GATEWAY_HEADER_PREFIX;

/// Who an audit line names when the caller presented no valid token.
pub const UNAUTHENTICATED_USER: &str = "-";

pub const MISSING_TOKEN: &str = "missing bearer token: set VIRTPLANE_TOKEN or pass --token";

type Body = tonic::body::Body;

/// What the proxy needs; shared by every connection.
#[derive(Debug)]
pub struct Shared {
    pub table: Arc<MethodTable>,
    pub tokens: Arc<TokenStore>,
    pub fleet: Arc<Fleet>,
    pub audit: Arc<AuditSink>,
}

/// The tower service; cheap to clone.
#[derive(Debug, Clone)]
pub struct Proxy {
    shared: Arc<Shared>,
}

impl Proxy {
    pub fn new(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
        }
    }
}

impl tower::Service<Request<axum::body::Body>> for Proxy {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<axum::body::Body>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move { Ok(shared.handle(request).await) })
    }
}

impl Shared {
    async fn handle(&self, request: Request<axum::body::Body>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let principal = match self.authenticate(&parts.headers) {
            Ok(principal) => principal,
            Err(status) => {
                self.audit_unauthenticated(parts.uri.path(), &status);
                return status.into_http();
            }
        };
        let Some(acl) = self.table.get(parts.uri.path()) else {
            return with_reason(
                tonic::Code::Unimplemented,
                format!("unknown method {}", parts.uri.path()),
                "UNKNOWN_METHOD",
            )
            .into_http();
        };
        if !acl.is_mutating() {
            // Reads: no body decoding, no audit, no logging.
            if let Decision::Deny(message) = decide(acl, &principal.user, principal.role, None) {
                return denied(message).into_http();
            }
            if self.fleet.is_single() {
                return self
                    .forward(acl, &principal, parts, Body::new(body), None)
                    .await;
            }
            // Many nodes: the request says where it goes.
            return match read_first_message(body, FIRST_MESSAGE_TIMEOUT).await {
                Ok((first, body)) => {
                    self.forward(acl, &principal, parts, Body::new(body), first)
                        .await
                }
                Err(status) => status.into_http(),
            };
        }
        self.handle_mutating(acl, &principal, parts, body).await
    }

    /// Audits a rejected attempt at a mutating call. Nothing of the request is read (its body
    /// could be anyone's), so the line has no object; reads cost one table lookup.
    fn audit_unauthenticated(&self, path: &str, status: &Status) {
        let Some(acl) = self.table.get(path).filter(|acl| acl.is_mutating()) else {
            return;
        };
        let entry = AuditEntry {
            user: UNAUTHENTICATED_USER.to_owned(),
            role: UNAUTHENTICATED_USER,
            method: short_method(acl),
            object: None,
        };
        self.audit.record(&entry, status.code(), status.message());
    }

    /// Reads the first request message for the object key, decides, forwards, and audits
    /// the result.
    async fn handle_mutating(
        &self,
        acl: &MethodAcl,
        principal: &Principal,
        parts: http::request::Parts,
        body: axum::body::Body,
    ) -> Response<Body> {
        let mut audit = PendingAudit::new(
            self.audit.clone(),
            AuditEntry {
                user: principal.user.clone(),
                role: principal.role.as_str(),
                method: short_method(acl),
                object: None,
            },
        );
        let (first, body) = match read_first_message(body, FIRST_MESSAGE_TIMEOUT).await {
            Ok(read) => read,
            Err(status) => {
                audit.finish(status.code(), status.message());
                return status.into_http();
            }
        };
        let object = first
            .as_ref()
            .and_then(|message| match acl.object_key(message) {
                Ok(key) => key,
                Err(err) => {
                    tracing::debug!(method = %acl.path, "no object key: {err}");
                    None
                }
            });
        let named_by_request = object.is_some();
        audit.set_object(object.clone());
        if let Decision::Deny(message) =
            decide(acl, &principal.user, principal.role, object.as_ref())
        {
            audit.finish(tonic::Code::PermissionDenied, &message);
            return denied(message).into_http();
        }
        let response = self
            .forward(acl, principal, parts, Body::new(body), first)
            .await;
        if !named_by_request {
            // Define, Create: the name is inside the XML; the service names what it made.
            audit.set_object(object_from_response(acl, response.headers()));
        }
        if let Some(status) = Status::from_header_map(response.headers()) {
            // Trailers-only response: the status is already here.
            audit.finish(status.code(), status.message());
            return response;
        }
        response.map(|body| Body::new(crate::audit::AuditedBody::new(body, audit)))
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Principal>, Status> {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Err(with_reason(
                tonic::Code::Unauthenticated,
                MISSING_TOKEN,
                "MISSING_TOKEN",
            ));
        };
        let token = bearer_token(value).ok_or_else(|| {
            with_reason(
                tonic::Code::Unauthenticated,
                "invalid token: the authorization header must be 'Bearer <token>'",
                "INVALID_TOKEN",
            )
        })?;
        self.tokens.authenticate(token).ok_or_else(|| {
            with_reason(
                tonic::Code::Unauthenticated,
                "invalid token",
                "INVALID_TOKEN",
            )
        })
    }

    /// Forwards the call to the node it belongs to (the only one, on one host). `first` is the
    /// request's first message when it was read (always with many nodes, unless too large).
    async fn forward(
        &self,
        acl: &MethodAcl,
        principal: &Principal,
        mut parts: http::request::Parts,
        body: Body,
        first: Option<Bytes>,
    ) -> Response<Body> {
        let unary = !acl.client_streaming && !acl.server_streaming;
        prepare_headers(&mut parts.headers, principal, unary);
        let trace = parts.extensions.get::<TraceContext>().copied();
        propagate_trace(&mut parts.headers, trace);
        parts.extensions = http::Extensions::new();
        if let Some(only) = self.fleet.single() {
            if let Some(named) = parts.headers.remove(NODE_HEADER)
                && named.as_bytes() != only.name.as_bytes()
            {
                return with_reason(
                    tonic::Code::NotFound,
                    format!(
                        "no node named '{}' (nodes: {})",
                        String::from_utf8_lossy(named.as_bytes()),
                        only.name
                    ),
                    "NODE_NOT_FOUND",
                )
                .into_http();
            }
            return send_to(only, acl, parts, body, false).await;
        }
        if self.fleet.is_empty() {
            let message = if self.fleet.dns().is_empty() {
                format!("no address configured for the {} service", acl.backend)
            } else {
                "no node found through --node-dns yet".to_owned()
            };
            return with_reason(tonic::Code::Unavailable, message, "BACKEND_NOT_CONFIGURED")
                .into_http();
        }
        let routed = route::decide(&self.fleet, acl, first.as_ref(), &parts.headers).await;
        parts.headers.remove(NODE_HEADER);
        let (node, cached) = match routed {
            Route::Node { node, cached } => (node, cached),
            Route::Refuse(status) => return status.into_http(),
            Route::FanOut => {
                let Some(request) = first else {
                    return Status::invalid_argument("the list request could not be read")
                        .into_http();
                };
                return self.fan_out(acl, &parts.headers, request).await;
            }
        };
        // A request of one message can be sent again, should the cached owner be stale.
        let replay = first
            .filter(|_| !acl.client_streaming && cached.is_some())
            .map(|message| (copy_parts(&parts), message));
        let response = send_to(&node, acl, parts, body, true).await;
        let (Some(key), Some((parts, message))) = (cached, replay) else {
            return response;
        };
        // NOT_FOUND: it is gone from there (undefined, or defined anew elsewhere);
        // UNAVAILABLE: that node is down, and it may have been defined anew elsewhere. Either
        // way the cache forgets, and a fresh lookup that finds it on another node (and only
        // there: a name on two nodes is refused) gets the call once more.
        let stale = Status::from_header_map(response.headers()).is_some_and(|status| {
            matches!(
                status.code(),
                tonic::Code::NotFound | tonic::Code::Unavailable
            )
        });
        if !stale {
            return response;
        }
        self.fleet.owners.forget(&key);
        match route::decide(&self.fleet, acl, Some(&message), &parts.headers).await {
            Route::Node { node: owner, .. } if owner.name != node.name => {
                let body = Body::new(http_body_util::Full::new(crate::fleet::call::frame(
                    &message,
                )));
                send_to(&owner, acl, parts, body, true).await
            }
            _ => response,
        }
    }

    /// A list answered by every node, merged.
    async fn fan_out(
        &self,
        acl: &MethodAcl,
        headers: &HeaderMap,
        request: Bytes,
    ) -> Response<Body> {
        let Some(output) = self
            .table
            .pool()
            .get_service_by_name(&acl.service)
            .and_then(|service| service.methods().find(|m| m.name() == acl.method))
            .map(|method| method.output())
        else {
            return Status::internal(format!("no descriptor for {}", acl.path)).into_http();
        };
        match route::fan_out(&self.fleet, acl, &output, request, headers).await {
            Ok((message, unreachable)) => {
                let mut response = crate::fleet::call::ok_response(&message);
                if !unreachable.is_empty()
                    && let Ok(value) = HeaderValue::from_str(&unreachable.join(","))
                {
                    response
                        .headers_mut()
                        .insert(UNREACHABLE_NODES_HEADER, value);
                }
                response
            }
            Err(status) => status.into_http(),
        }
    }
}

/// Sends the prepared request to `node`'s service for the method. `name_node` puts the
/// node's name into errors (with many nodes).
async fn send_to(
    node: &Node,
    acl: &MethodAcl,
    parts: http::request::Parts,
    body: Body,
    name_node: bool,
) -> Response<Body> {
    let Some(backend) = node.backends.get(&acl.backend) else {
        let message = if acl.backend.is_empty() {
            format!("{} names no backend service", acl.service)
        } else {
            format!("no address configured for the {} service", acl.backend)
        };
        let message = if name_node {
            format!("node {}: {message}", node.name)
        } else {
            message
        };
        return with_reason(tonic::Code::Unavailable, message, "BACKEND_NOT_CONFIGURED")
            .into_http();
    };
    match backend.send(parts, body).await {
        Ok(response) => response,
        Err(err) => {
            virtplane_common::metrics::count_backend_error(&backend.name);
            let node = name_node.then_some(node.name.as_str());
            unavailable(node, backend, &*err).into_http()
        }
    }
}

/// A copy of a request's method, address and headers, to send it again.
fn copy_parts(parts: &http::request::Parts) -> http::request::Parts {
    let mut request = Request::new(());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    request.into_parts().0
}

/// Replaces whatever identity the client claimed (every `x-virtplane-*` header) with the
/// authenticated one, drops the bearer token (services never see it), and caps unary calls
/// without a deadline.
pub fn prepare_headers(headers: &mut HeaderMap, principal: &Principal, unary: bool) {
    // Names are stored lowercase, so the prefix test is case-insensitive.
    let claimed: Vec<http::HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(GATEWAY_HEADER_PREFIX))
        .cloned()
        .collect();
    for name in claimed {
        headers.remove(name);
    }
    headers.remove(http::header::AUTHORIZATION);
    principal.insert_identity(headers);
    if unary && !headers.contains_key("grpc-timeout") {
        headers.insert(
            "grpc-timeout",
            HeaderValue::from_static(DEFAULT_UNARY_TIMEOUT),
        );
    }
}

/// Continues the caller's W3C trace on the backend request: `traceparent` names the
/// gateway's hop (`trace`, from the server's request observer) as the parent, with the
/// caller's trace id when it sent a valid one, else a new trace (whose `tracestate` would
/// describe the discarded one, so it goes too). Without a context (not served through the
/// observer) the headers pass unchanged.
pub fn propagate_trace(headers: &mut HeaderMap, trace: Option<TraceContext>) {
    let Some(trace) = trace else {
        return;
    };
    if !trace.is_continued() {
        headers.remove(TRACESTATE);
    }
    if let Ok(value) = HeaderValue::from_str(&trace.traceparent()) {
        headers.insert(TRACEPARENT, value);
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive).
fn bearer_token(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn denied(message: String) -> Status {
    with_reason(tonic::Code::PermissionDenied, message, "PERMISSION_DENIED")
}

/// UNAVAILABLE naming the node (with many), the service, its address and the cause, e.g.
/// "domain service unavailable at unix:/run/domain.sock: connection refused".
fn unavailable(
    node: Option<&str>,
    backend: &Backend,
    err: &(dyn std::error::Error + 'static),
) -> Status {
    let on_node = node.map(|n| format!("node {n}: ")).unwrap_or_default();
    with_reason(
        tonic::Code::Unavailable,
        format!(
            "{on_node}{} service unavailable at {}: {}",
            backend.name,
            backend.addr,
            connection_cause(err)
        ),
        "BACKEND_UNAVAILABLE",
    )
}

/// The most telling cause in an error chain: the I/O error if there is one.
fn connection_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = Some(err);
    let mut deepest = err.to_string();
    while let Some(error) = current {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
                std::io::ErrorKind::NotFound => "no such socket (is the service running?)".into(),
                std::io::ErrorKind::PermissionDenied => "permission denied".into(),
                std::io::ErrorKind::TimedOut => "connection timed out".into(),
                _ => io.to_string(),
            };
        }
        deepest = error.to_string();
        current = error.source();
    }
    deepest
}

/// Reads the request until its first gRPC message is complete, for at most `limit`
/// (DEADLINE_EXCEEDED after it). Returns that message (when it is uncompressed and not too
/// large) and a body that replays everything read, then the rest of the request.
async fn read_first_message(
    mut body: axum::body::Body,
    limit: Duration,
) -> Result<(Option<Bytes>, PrefixedBody), Status> {
    let mut buffer = BytesMut::new();
    let read = tokio::time::timeout(limit, read_until_first_message(&mut body, &mut buffer))
        .await
        .map_err(|_| {
            with_reason(
                tonic::Code::DeadlineExceeded,
                format!("the request's first message did not arrive within {limit:?}"),
                "REQUEST_BODY_TIMEOUT",
            )
        })??;
    let FirstRead {
        message_len,
        trailers,
        ended,
    } = read;
    let prefix = buffer.freeze();
    let message = message_len
        .filter(|len| *len <= MAX_INSPECTED_MESSAGE && prefix[0] == 0)
        .map(|len| prefix.slice(5..5 + len));
    let message = match (message, ended, prefix.len()) {
        (Some(message), _, _) => Some(message),
        // An empty request body is an empty message: "no object named".
        (None, true, 0) => Some(Bytes::new()),
        _ => None,
    };
    Ok((
        message,
        PrefixedBody {
            prefix: (!prefix.is_empty()).then_some(prefix),
            rest: (!ended).then_some(body),
            trailers,
        },
    ))
}

/// How far [`read_until_first_message`] got.
struct FirstRead {
    /// The first message's length, once its whole header (and body, unless too large) is in.
    message_len: Option<usize>,
    trailers: Option<HeaderMap>,
    /// The request ended before its first message was complete.
    ended: bool,
}

/// Reads frames into `buffer` until the first message is complete or the request ends.
async fn read_until_first_message(
    body: &mut axum::body::Body,
    buffer: &mut BytesMut,
) -> Result<FirstRead, Status> {
    loop {
        if buffer.len() >= 5 {
            let len = (&buffer[1..5]).get_u32() as usize;
            if len > MAX_INSPECTED_MESSAGE || buffer.len() >= 5 + len {
                return Ok(FirstRead {
                    message_len: Some(len),
                    trailers: None,
                    ended: false,
                });
            }
        }
        match body.frame().await {
            None => {
                return Ok(FirstRead {
                    message_len: None,
                    trailers: None,
                    ended: true,
                });
            }
            Some(Err(err)) => {
                return Err(Status::cancelled(format!(
                    "reading the request failed: {err}"
                )));
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => buffer.extend_from_slice(&data),
                Err(frame) => {
                    return Ok(FirstRead {
                        message_len: None,
                        trailers: frame.into_trailers().ok(),
                        ended: true,
                    });
                }
            },
        }
    }
}

/// Bytes already read from a request, then the rest of it.
#[derive(Debug)]
struct PrefixedBody {
    prefix: Option<Bytes>,
    rest: Option<axum::body::Body>,
    trailers: Option<HeaderMap>,
}

impl HttpBody for PrefixedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        if let Some(rest) = self.rest.as_mut() {
            return Pin::new(rest).poll_frame(cx);
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none()
            && self.trailers.is_none()
            && self.rest.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let prefix = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        match &self.rest {
            Some(rest) => {
                let inner = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(inner.lower() + prefix);
                if let Some(upper) = inner.upper() {
                    hint.set_upper(upper + prefix);
                }
                hint
            }
            None => SizeHint::with_exact(prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use virtplane_common::identity::{PERMISSIONS_HEADER, ROLE_HEADER, USER_HEADER};

    use super::*;
    use crate::roles::Role;

    fn frame(message: &[u8]) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&(message.len() as u32).to_be_bytes());
        out.extend_from_slice(message);
        out
    }

    #[test]
    fn client_identity_headers_never_reach_a_backend() {
        let table = MethodTable::load().unwrap();
        let viewer = Principal::new("ann", Role::Viewer, &table);
        let mut headers = HeaderMap::new();
        headers.insert(PERMISSIONS_HEADER, HeaderValue::from_static("*"));
        headers.append(
            PERMISSIONS_HEADER,
            HeaderValue::from_static("domain:passthrough"),
        );
        headers.insert(USER_HEADER, HeaderValue::from_static("root"));
        headers.insert(ROLE_HEADER, HeaderValue::from_static("admin"));
        headers.insert("authorization", HeaderValue::from_static("Bearer secret"));
        headers.insert("x-other", HeaderValue::from_static("kept"));
        // Any name under the gateway's prefix, in any case, known or not.
        headers.insert("X-Virtplane-Future", HeaderValue::from_static("forged"));
        headers.append("x-virtplane-object", HeaderValue::from_static("web"));
        headers.append("x-virtplane-object", HeaderValue::from_static("db"));
        prepare_headers(&mut headers, &viewer, true);
        let ours: Vec<&str> = headers
            .keys()
            .map(http::HeaderName::as_str)
            .filter(|name| name.starts_with(GATEWAY_HEADER_PREFIX))
            .collect();
        assert_eq!(
            ours.len(),
            3,
            "only the gateway's identity headers: {ours:?}"
        );
        let permissions: Vec<_> = headers.get_all(PERMISSIONS_HEADER).iter().collect();
        assert_eq!(permissions.len(), 1);
        let permissions = permissions[0].to_str().unwrap();
        assert!(!permissions.contains('*'), "{permissions}");
        assert!(!permissions.contains("passthrough"), "{permissions}");
        assert!(permissions.contains("domain:read"), "{permissions}");
        assert_eq!(headers.get(USER_HEADER).unwrap(), "ann");
        assert_eq!(headers.get(ROLE_HEADER).unwrap(), "viewer");
        assert!(
            headers.get("authorization").is_none(),
            "the token is not forwarded"
        );
        assert_eq!(headers.get("x-other").unwrap(), "kept");
        assert_eq!(headers.get("grpc-timeout").unwrap(), DEFAULT_UNARY_TIMEOUT);
    }

    #[test]
    fn deadlines_pass_through_and_streams_get_none() {
        let table = MethodTable::load().unwrap();
        let admin = Principal::new("root", Role::Admin, &table);
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", HeaderValue::from_static("5S"));
        prepare_headers(&mut headers, &admin, true);
        assert_eq!(headers.get("grpc-timeout").unwrap(), "5S");
        assert_eq!(headers.get(PERMISSIONS_HEADER).unwrap(), "*");
        let mut headers = HeaderMap::new();
        prepare_headers(&mut headers, &admin, false);
        assert!(headers.get("grpc-timeout").is_none());
    }

    #[test]
    fn bearer_tokens() {
        let value = |text: &'static str| HeaderValue::from_static(text);
        assert_eq!(bearer_token(&value("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&value("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(&value("Basic abc")), None);
        assert_eq!(bearer_token(&value("Bearer ")), None);
        assert_eq!(bearer_token(&value("abc")), None);
    }

    async fn collect(body: PrefixedBody) -> Bytes {
        body.collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn the_first_message_is_read_and_replayed() {
        let mut wire = frame(b"first");
        wire.extend_from_slice(&frame(b"second"));
        // Split across frames in awkward places.
        let chunks: Vec<Result<Frame<Bytes>, Infallible>> = wire
            .chunks(3)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        let body =
            axum::body::Body::new(http_body_util::StreamBody::new(tokio_stream::iter(chunks)));
        let (message, replay) = read_first_message(body, FIRST_MESSAGE_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(message.as_deref(), Some(&b"first"[..]));
        assert_eq!(collect(replay).await, Bytes::from(wire));
    }

    #[tokio::test]
    async fn empty_and_compressed_requests() {
        let (message, replay) =
            read_first_message(axum::body::Body::empty(), FIRST_MESSAGE_TIMEOUT)
                .await
                .unwrap();
        assert_eq!(message.as_deref(), Some(&b""[..]));
        assert!(replay.is_end_stream());
        let mut compressed = frame(b"zz");
        compressed[0] = 1;
        let (message, replay) = read_first_message(
            axum::body::Body::from(compressed.clone()),
            FIRST_MESSAGE_TIMEOUT,
        )
        .await
        .unwrap();
        assert_eq!(message, None);
        assert_eq!(collect(replay).await, Bytes::from(compressed));
    }

    #[tokio::test]
    async fn a_first_message_that_never_comes_times_out() {
        use tokio_stream::StreamExt;

        // Half a message header, then nothing: the stream never ends.
        let stalled = tokio_stream::iter(vec![Ok::<_, Infallible>(Frame::data(
            Bytes::from_static(&[0, 0, 0]),
        ))])
        .chain(tokio_stream::pending());
        let body = axum::body::Body::new(http_body_util::StreamBody::new(stalled));
        let status = read_first_message(body, Duration::from_millis(10))
            .await
            .expect_err("a stalled request body must not be waited for forever");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        assert_eq!(
            status.message(),
            "the request's first message did not arrive within 10ms"
        );
    }

    #[test]
    fn the_backend_request_continues_the_callers_trace_or_a_new_one() {
        let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_static(caller));
        headers.insert(TRACESTATE, HeaderValue::from_static("vendor=1"));
        let hop = TraceContext::from_header(Some(caller));
        propagate_trace(&mut headers, Some(hop));
        let sent = headers[TRACEPARENT].to_str().unwrap().to_owned();
        assert_eq!(sent, hop.traceparent());
        assert!(
            sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{sent}"
        );
        assert!(
            !sent.contains("00f067aa0ba902b7"),
            "the gateway's hop is the parent"
        );
        assert_eq!(headers[TRACESTATE], "vendor=1");

        // An invalid traceparent: a new trace, and the caller's tracestate is dropped.
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_static("00-bogus"));
        headers.insert(TRACESTATE, HeaderValue::from_static("vendor=1"));
        let hop = TraceContext::from_header(Some("00-bogus"));
        propagate_trace(&mut headers, Some(hop));
        assert_eq!(headers[TRACEPARENT].to_str().unwrap(), hop.traceparent());
        assert!(!headers.contains_key(TRACESTATE));

        // Not served through the observer: nothing changes.
        let mut headers = HeaderMap::new();
        propagate_trace(&mut headers, None);
        assert!(headers.is_empty());
    }

    #[test]
    fn io_causes_are_named() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(connection_cause(&refused), "connection refused");
    }
}
