//! The gateway's own unary calls to a node's service, in raw gRPC framing over the proxied
//! connections: owner lookups, list fan-out and node facts. The request carries the caller's
//! identity headers, so a node answers the gateway exactly what it would answer the caller.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};
use http_body_util::BodyExt;
use tonic::Status;

use crate::backends::Backend;

type Body = tonic::body::Body;

/// Calls `path` on `backend` with one encoded request message and returns the encoded
/// response message. Everything, connecting included, is bounded by `timeout`; a node that
/// cannot be reached, or does not answer in time, is UNAVAILABLE naming the node.
pub async fn unary(
    node: &str,
    backend: &Backend,
    path: &str,
    headers: &HeaderMap,
    message: &[u8],
    timeout: Duration,
) -> Result<Bytes, Status> {
    let unreachable = |why: String| {
        Status::unavailable(format!(
            "node {node} ({} service at {}): {why}",
            backend.name, backend.addr
        ))
    };
    let call = async {
        let request = request(path, headers, message, timeout)
            .map_err(|e| Status::internal(format!("cannot build the request for {path}: {e}")))?;
        let (parts, body) = request.into_parts();
        let response = backend
            .send(parts, body)
            .await
            .map_err(|err| unreachable(err.to_string()))?;
        if response.status() != http::StatusCode::OK || !is_grpc(response.headers()) {
            return Err(unreachable(format!(
                "not a gRPC answer (HTTP {})",
                response.status()
            )));
        }
        if let Some(status) = Status::from_header_map(response.headers())
            && status.code() != tonic::Code::Ok
        {
            return Err(status);
        }
        let collected = response
            .into_body()
            .collect()
            .await
            .map_err(|err| unreachable(format!("the answer broke off: {err}")))?;
        if let Some(trailers) = collected.trailers()
            && let Some(status) = Status::from_header_map(trailers)
            && status.code() != tonic::Code::Ok
        {
            return Err(status);
        }
        first_message(collected.to_bytes())
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| unreachable(format!("no answer within {timeout:?}")))?
}

fn request(
    path: &str,
    headers: &HeaderMap,
    message: &[u8],
    timeout: Duration,
) -> Result<http::Request<Body>, http::Error> {
    let mut request = http::Request::post(format!("http://node{path}"))
        .body(Body::new(http_body_util::Full::new(frame(message))))?;
    let sent = request.headers_mut();
    for (name, value) in headers {
        if !is_per_call_header(name) {
            sent.append(name.clone(), value.clone());
        }
    }
    sent.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    sent.insert(http::header::TE, HeaderValue::from_static("trailers"));
    let millis = timeout.as_millis().min(99_999_999);
    if let Ok(value) = HeaderValue::from_str(&format!("{millis}m")) {
        sent.insert("grpc-timeout", value);
    }
    Ok(request)
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// Headers of the caller's request that describe that request, not the caller.
fn is_per_call_header(name: &http::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "content-length" | "content-type" | "te" | "grpc-timeout" | "grpc-encoding" | "host"
    )
}

/// One uncompressed gRPC message frame.
pub fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(message.len() as u32);
    out.extend_from_slice(message);
    out.freeze()
}

/// The first message of a gRPC response body (a unary answer has exactly one).
fn first_message(mut body: Bytes) -> Result<Bytes, Status> {
    if body.is_empty() {
        return Ok(Bytes::new());
    }
    if body.len() < 5 {
        return Err(Status::internal("a node sent a truncated gRPC message"));
    }
    if body[0] != 0 {
        return Err(Status::internal(
            "a node sent a compressed message, which the gateway did not ask for",
        ));
    }
    let len = (&body[1..5]).get_u32() as usize;
    if body.len() < 5 + len {
        return Err(Status::internal("a node sent a truncated gRPC message"));
    }
    body.advance(5);
    Ok(body.split_to(len))
}

/// A whole gRPC response carrying one message and status OK, as the gateway sends its merged
/// answers.
pub fn ok_response(message: &[u8]) -> http::Response<Body> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames = [
        Ok::<_, tonic::Status>(http_body::Frame::data(frame(message))),
        Ok(http_body::Frame::trailers(trailers)),
    ];
    let body = http_body_util::StreamBody::new(tokio_stream::iter(frames));
    let mut response = http::Response::new(Body::new(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let framed = frame(b"hello");
        assert_eq!(&framed[..5], &[0, 0, 0, 0, 5]);
        assert_eq!(first_message(framed).unwrap(), Bytes::from_static(b"hello"));
        assert_eq!(first_message(Bytes::new()).unwrap(), Bytes::new());
        assert!(first_message(Bytes::from_static(&[0, 0, 0, 0, 9, 1])).is_err());
        assert!(first_message(Bytes::from_static(&[1, 0, 0, 0, 0])).is_err());
    }

    #[tokio::test]
    async fn the_merged_answer_is_a_whole_grpc_response() {
        let response = ok_response(b"abc");
        assert_eq!(
            response.headers()[http::header::CONTENT_TYPE],
            "application/grpc"
        );
        let collected = response.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
        assert_eq!(first_message(collected.to_bytes()).unwrap(), &b"abc"[..]);
    }
}
