//! What the domain service's clients of its sibling services (network, storage) share: every
//! call bounded by a timeout, and a failed call told apart as the caller must report it — a
//! refusal in the sibling's own words, or the sibling down or silent, named by its address.

use std::future::Future;
use std::time::Duration;

use tonic::{Code, Status};
use virtplane_common::server::ListenAddr;

/// How long one call to a sibling service may take, connection included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How a failed call reads for the caller of the domain call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallErrorKind {
    /// The sibling refused: no such object, not active, busy (→ FAILED_PRECONDITION: what is
    /// missing is a precondition of the domain call).
    Refused,
    /// The sibling is down or the connection broke (→ UNAVAILABLE).
    Unavailable,
    /// No answer in time (→ DEADLINE_EXCEEDED).
    Timeout,
    Failed,
}

/// How a call failed: the sibling's answer, or none in time.
#[derive(Debug)]
pub enum Failure {
    Status(Status),
    Timeout,
}

/// A sibling service at one address, as messages name it.
#[derive(Debug, Clone)]
pub struct Sibling {
    /// "network service", "storage service".
    pub name: &'static str,
    pub address: ListenAddr,
    pub timeout: Duration,
}

impl Sibling {
    /// Runs one call under the timeout.
    pub async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(Failure::Status(status)),
            Err(_) => Err(Failure::Timeout),
        }
    }

    /// The kind and message of a failed call; `doing` says what was being done ("cannot
    /// create a port on network 'default'").
    pub fn describe(&self, doing: &str, failure: Failure) -> (CallErrorKind, String) {
        let status = match failure {
            Failure::Status(status) => status,
            Failure::Timeout => {
                return (
                    CallErrorKind::Timeout,
                    format!(
                        "{doing}: the {} at {} did not answer within {} s",
                        self.name,
                        self.address,
                        self.timeout.as_secs()
                    ),
                );
            }
        };
        let kind = match status.code() {
            Code::NotFound
            | Code::FailedPrecondition
            | Code::InvalidArgument
            | Code::AlreadyExists
            | Code::PermissionDenied => CallErrorKind::Refused,
            // A connection that broke under the call (the service was killed, say) comes
            // back from the transport as UNKNOWN or CANCELLED: the service did not answer.
            Code::Unavailable | Code::Unknown | Code::Cancelled => CallErrorKind::Unavailable,
            Code::DeadlineExceeded => CallErrorKind::Timeout,
            _ => CallErrorKind::Failed,
        };
        let message = if kind == CallErrorKind::Unavailable {
            format!(
                "{doing}: the {} at {} is unreachable ({})",
                self.name,
                self.address,
                status.message()
            )
        } else {
            // The sibling's own words name the object and the problem.
            status.message().to_owned()
        };
        (kind, message)
    }
}
