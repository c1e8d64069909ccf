//! gRPC status helpers: every error carries a stable machine reason (google.rpc.ErrorInfo).

use tonic_types::{ErrorDetails, StatusExt};

/// The ErrorInfo domain of every virtplane error.
pub const ERROR_DOMAIN: &str = "virtplane.dev";

/// A status with `code`, a human `message` and the machine `reason` (e.g. "DOMAIN_NOT_FOUND").
pub fn with_reason(code: tonic::Code, message: impl Into<String>, reason: &str) -> tonic::Status {
    with_reason_and_metadata(code, message, reason, [])
}

/// As [`with_reason`], with machine-readable facts in the ErrorInfo's metadata (what a
/// client needs to act on the error, e.g. where to resume a watch).
pub fn with_reason_and_metadata(
    code: tonic::Code,
    message: impl Into<String>,
    reason: &str,
    metadata: impl IntoIterator<Item = (String, String)>,
) -> tonic::Status {
    let metadata: std::collections::HashMap<String, String> = metadata.into_iter().collect();
    let details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);
    tonic::Status::with_error_details(code, message, details)
}

/// The machine reason of a status built by [`with_reason`], if any.
pub fn reason(status: &tonic::Status) -> Option<String> {
    status
        .get_details_error_info()
        .map(|info| info.reason.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_survives_the_status() {
        let status = with_reason(
            tonic::Code::NotFound,
            "domain 'x' not found",
            "DOMAIN_NOT_FOUND",
        );
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert_eq!(status.message(), "domain 'x' not found");
        assert_eq!(reason(&status).as_deref(), Some("DOMAIN_NOT_FOUND"));
    }
}
