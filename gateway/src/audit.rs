//! The audit trail: one JSON line for every call that changes something (and for every
//! denied attempt at one), with who, which role, what method, which object, and the result.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body as HttpBody, Frame, SizeHint};
use virtplane_proto::acl::{MethodAcl, ObjectKey, ObjectKind};

use crate::error::Error;

/// Response header (initial metadata) by which a service names the object a call made or
/// changed when the request has no object-key field (Define, Create: the name is inside the
/// XML). Defined once in the proto crate, which the services use too.
pub use virtplane_proto::headers::OBJECT as OBJECT_HEADER;

/// The object named by the response's [`OBJECT_HEADER`], of the kind the method's
/// permissions are about (`domain:write` → domain). `None` when the header is absent or
/// empty, or the permissions name no object kind.
pub fn object_from_response(acl: &MethodAcl, headers: &HeaderMap) -> Option<ObjectKey> {
    let value = headers.get(OBJECT_HEADER)?;
    // Names may be UTF-8, which `to_str` (visible ASCII only) would refuse.
    let name = String::from_utf8_lossy(value.as_bytes()).trim().to_owned();
    if name.is_empty() {
        return None;
    }
    let kind = acl.perms.iter().find_map(|perm| {
        let (object, _) = perm.split_once(':')?;
        kind_named(object)
    })?;
    Some(ObjectKey { kind, value: name })
}

/// The inverse of [`ObjectKind::as_str`].
fn kind_named(word: &str) -> Option<ObjectKind> {
    [
        ObjectKind::Domain,
        ObjectKind::Network,
        ObjectKind::StoragePool,
        ObjectKind::StorageVol,
    ]
    .into_iter()
    .find(|kind| kind.as_str() == word)
}

/// Where audit lines go.
#[derive(Debug)]
pub enum AuditSink {
    /// Tracing events with target `audit` (stderr by default).
    Tracing,
    /// Appended to a file, one JSON object per line.
    File(Mutex<File>),
}

impl AuditSink {
    /// `None`: tracing target `audit`; `Some(path)`: append JSON lines to that file.
    pub fn open(path: Option<&Path>) -> Result<Self, Error> {
        let Some(path) = path else {
            return Ok(Self::Tracing);
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| Error::AuditLog {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self::File(Mutex::new(file)))
    }

    pub fn record(&self, entry: &AuditEntry, code: tonic::Code, message: &str) {
        let line = entry.to_json(SystemTime::now(), code, message);
        match self {
            Self::Tracing => tracing::info!(target: "audit", "{line}"),
            Self::File(file) => {
                let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
                // One write per line, so concurrent gateways appending to one file do not mix.
                let mut bytes = line.into_bytes();
                bytes.push(b'\n');
                if let Err(err) = file.write_all(&bytes) {
                    tracing::error!(%err, "cannot write the audit log");
                }
            }
        }
    }
}

/// Who did what to which object; the result is added when it is known.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub user: String,
    pub role: &'static str,
    /// `DomainService/Start`.
    pub method: String,
    pub object: Option<ObjectKey>,
}

impl AuditEntry {
    fn to_json(&self, time: SystemTime, code: tonic::Code, message: &str) -> String {
        let (kind, name) = match &self.object {
            Some(key) => (
                serde_json::Value::from(key.kind.as_str()),
                serde_json::Value::from(key.value.as_str()),
            ),
            None => (serde_json::Value::Null, serde_json::Value::Null),
        };
        serde_json::json!({
            "time": rfc3339(time),
            "user": self.user,
            "role": self.role,
            "method": self.method,
            "object_kind": kind,
            "object": name,
            "code": code_name(code),
            "message": message,
        })
        .to_string()
    }
}

/// gRPC's canonical code names, as in the spec (`FAILED_PRECONDITION`).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// `2024-05-01T12:34:56.789Z` (UTC, milliseconds).
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// A pending audit line, written once with the call's result.
#[derive(Debug)]
pub struct PendingAudit {
    sink: Arc<AuditSink>,
    entry: Option<AuditEntry>,
}

impl PendingAudit {
    pub fn new(sink: Arc<AuditSink>, entry: AuditEntry) -> Self {
        Self {
            sink,
            entry: Some(entry),
        }
    }

    /// Sets the object the request names, once it is known.
    pub fn set_object(&mut self, object: Option<ObjectKey>) {
        if let Some(entry) = self.entry.as_mut() {
            entry.object = object;
        }
    }

    pub fn finish(&mut self, code: tonic::Code, message: &str) {
        if let Some(entry) = self.entry.take() {
            self.sink.record(&entry, code, message);
        }
    }
}

impl Drop for PendingAudit {
    fn drop(&mut self) {
        // The response was dropped before its status arrived: the client went away.
        self.finish(
            tonic::Code::Cancelled,
            "call cancelled before the service answered (client gone or connection lost)",
        );
    }
}

/// A response body that writes the audit line when the status arrives in the trailers.
#[derive(Debug)]
pub struct AuditedBody {
    inner: tonic::body::Body,
    audit: PendingAudit,
}

impl AuditedBody {
    pub fn new(inner: tonic::body::Body, audit: PendingAudit) -> Self {
        Self { inner, audit }
    }
}

impl HttpBody for AuditedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    match tonic::Status::from_header_map(trailers) {
                        Some(status) => this.audit.finish(status.code(), status.message()),
                        None => this.audit.finish(
                            tonic::Code::Unknown,
                            "service sent trailers without grpc-status",
                        ),
                    }
                }
            }
            Poll::Ready(Some(Err(status))) => this.audit.finish(status.code(), status.message()),
            Poll::Ready(None) => this.audit.finish(
                tonic::Code::Unknown,
                "service ended the response without a status",
            ),
            Poll::Pending => {}
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
    use std::time::Duration;

    use virtplane_proto::acl::ObjectKind;

    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_123); // leap year, Feb 29
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn lines_are_json_with_every_field() {
        let entry = AuditEntry {
            user: "op".into(),
            role: "operator",
            method: "DomainService/Start".into(),
            object: Some(ObjectKey {
                kind: ObjectKind::Domain,
                value: "web".into(),
            }),
        };
        let line = entry.to_json(
            UNIX_EPOCH,
            tonic::Code::FailedPrecondition,
            "domain 'web' is running",
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["user"], "op");
        assert_eq!(value["role"], "operator");
        assert_eq!(value["method"], "DomainService/Start");
        assert_eq!(value["object_kind"], "domain");
        assert_eq!(value["object"], "web");
        assert_eq!(value["code"], "FAILED_PRECONDITION");
        assert_eq!(value["message"], "domain 'web' is running");
        assert_eq!(value["time"], "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn the_response_names_the_object_a_define_made() {
        let table = virtplane_proto::acl::MethodTable::load().unwrap();
        let define = table.get("/virtplane.v1.DomainService/Define").unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(object_from_response(define, &headers), None);
        headers.insert(OBJECT_HEADER, http::HeaderValue::from_static("web"));
        assert_eq!(
            object_from_response(define, &headers),
            Some(ObjectKey {
                kind: ObjectKind::Domain,
                value: "web".into(),
            })
        );
        headers.insert(OBJECT_HEADER, http::HeaderValue::from_static(""));
        assert_eq!(object_from_response(define, &headers), None);
        // Permissions on no object kind (connect:…): nothing to name.
        let list = table.get("/virtplane.v1.DomainService/List").unwrap();
        headers.insert(OBJECT_HEADER, http::HeaderValue::from_static("web"));
        assert_eq!(object_from_response(list, &headers), None);
    }

    #[test]
    fn pending_audit_writes_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let sink = Arc::new(AuditSink::open(Some(&path)).unwrap());
        let entry = AuditEntry {
            user: "op".into(),
            role: "operator",
            method: "DomainService/Destroy".into(),
            object: None,
        };
        let mut pending = PendingAudit::new(sink.clone(), entry.clone());
        pending.finish(tonic::Code::Ok, "");
        drop(pending);
        drop(PendingAudit::new(sink, entry));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("\"code\":\"OK\""), "{}", lines[0]);
        assert!(lines[1].contains("\"code\":\"CANCELLED\""), "{}", lines[1]);
    }
}
