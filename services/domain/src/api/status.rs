//! DomainError → gRPC status, with a stable machine reason. One exhaustive match.

use virtplane_common::status::with_reason;

use crate::error::DomainError;

impl From<DomainError> for tonic::Status {
    fn from(error: DomainError) -> Self {
        use tonic::Code;
        let (code, reason) = match &error {
            DomainError::NotFound(_) => (Code::NotFound, "DOMAIN_NOT_FOUND"),
            DomainError::NameTaken { .. } | DomainError::UuidTaken { .. } => {
                (Code::AlreadyExists, "DOMAIN_EXISTS")
            }
            DomainError::AlreadyActive(_) => (Code::FailedPrecondition, "DOMAIN_ACTIVE"),
            DomainError::DeviceMissing(_) => (Code::NotFound, "DEVICE_NOT_FOUND"),
            DomainError::Xml(_) => (Code::InvalidArgument, "INVALID_XML"),
            DomainError::InvalidArg(_) => (Code::InvalidArgument, "INVALID_ARGUMENT"),
            DomainError::OperationInvalid(_) => (Code::FailedPrecondition, "OPERATION_INVALID"),
            DomainError::Unsupported { .. } => (Code::Unimplemented, "UNSUPPORTED"),
            DomainError::Storage { .. } => (Code::Internal, "STORAGE_FAILED"),
            DomainError::OperationFailed(_) => (Code::FailedPrecondition, "OPERATION_FAILED"),
            DomainError::Timeout(_) => (Code::DeadlineExceeded, "TIMEOUT"),
            DomainError::Unavailable(_) => (Code::Unavailable, "HYPERVISOR_UNAVAILABLE"),
            DomainError::AgentUnavailable(_) => (Code::Unavailable, "AGENT_UNAVAILABLE"),
            DomainError::AgentUnsupported(_) => (Code::Unimplemented, "AGENT_COMMAND_UNSUPPORTED"),
            DomainError::AgentRefused(_) => (Code::FailedPrecondition, "AGENT_ERROR"),
            DomainError::Internal(_) => (Code::Internal, "INTERNAL"),
        };
        with_reason(code, error.to_string(), reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_code_and_reason() {
        use tonic::Code;
        let cases = [
            (
                DomainError::NotFound("name 'x'".into()),
                Code::NotFound,
                "DOMAIN_NOT_FOUND",
            ),
            (
                DomainError::NameTaken {
                    name: "a".into(),
                    uuid: "u".into(),
                },
                Code::AlreadyExists,
                "DOMAIN_EXISTS",
            ),
            (
                DomainError::UuidTaken {
                    existing: "a".into(),
                    uuid: "u".into(),
                },
                Code::AlreadyExists,
                "DOMAIN_EXISTS",
            ),
            (
                DomainError::DeviceMissing("disk vdb not found".into()),
                Code::NotFound,
                "DEVICE_NOT_FOUND",
            ),
            (
                DomainError::AlreadyActive("a".into()),
                Code::FailedPrecondition,
                "DOMAIN_ACTIVE",
            ),
            (
                DomainError::InvalidArg("x".into()),
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
            ),
            (
                DomainError::not_running("web"),
                Code::FailedPrecondition,
                "OPERATION_INVALID",
            ),
            (
                DomainError::Unsupported {
                    driver: "test",
                    what: "x".into(),
                },
                Code::Unimplemented,
                "UNSUPPORTED",
            ),
            (
                DomainError::Xml(crate::xml::parse_domain("<nope/>").unwrap_err()),
                Code::InvalidArgument,
                "INVALID_XML",
            ),
            (
                DomainError::storage(
                    "write",
                    std::path::Path::new("/x"),
                    std::io::Error::other("disk full"),
                ),
                Code::Internal,
                "STORAGE_FAILED",
            ),
            (
                DomainError::Internal("x".into()),
                Code::Internal,
                "INTERNAL",
            ),
        ];
        for (error, code, reason) in cases {
            let message = error.to_string();
            let status = tonic::Status::from(error);
            assert_eq!(status.code(), code, "{message}");
            assert_eq!(status.message(), message);
            assert_eq!(
                virtplane_common::status::reason(&status).as_deref(),
                Some(reason)
            );
        }
        let status = tonic::Status::from(DomainError::not_running("web"));
        assert_eq!(status.message(), "domain 'web' is not running");
    }
}
