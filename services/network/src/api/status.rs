//! NetworkError → gRPC status, with a stable machine reason. One exhaustive match.

use virtplane_common::status::with_reason;

use crate::error::NetworkError;

impl From<NetworkError> for tonic::Status {
    fn from(error: NetworkError) -> Self {
        use tonic::Code;
        let (code, reason) = match &error {
            NetworkError::NotFound(_) => (Code::NotFound, "NETWORK_NOT_FOUND"),
            NetworkError::NameTaken { .. } | NetworkError::UuidTaken { .. } => {
                (Code::AlreadyExists, "NETWORK_EXISTS")
            }
            NetworkError::PortNotFound(_) => (Code::NotFound, "PORT_NOT_FOUND"),
            NetworkError::PortExists(_) => (Code::AlreadyExists, "PORT_EXISTS"),
            NetworkError::Xml(_) => (Code::InvalidArgument, "INVALID_XML"),
            NetworkError::InvalidArg(_) => (Code::InvalidArgument, "INVALID_ARGUMENT"),
            NetworkError::OperationInvalid(_) => (Code::FailedPrecondition, "OPERATION_INVALID"),
            NetworkError::InUse(_) => (Code::FailedPrecondition, "RESOURCE_IN_USE"),
            NetworkError::Unsupported { .. } | NetworkError::NotSupported(_) => {
                (Code::Unimplemented, "UNSUPPORTED")
            }
            NetworkError::Storage { .. } => (Code::Internal, "STORAGE_FAILED"),
            NetworkError::OperationFailed(_) => (Code::FailedPrecondition, "OPERATION_FAILED"),
            NetworkError::Internal(_) => (Code::Internal, "INTERNAL"),
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
                NetworkError::NotFound("name 'x'".into()),
                Code::NotFound,
                "NETWORK_NOT_FOUND",
            ),
            (
                NetworkError::NameTaken {
                    name: "a".into(),
                    uuid: "u".into(),
                },
                Code::AlreadyExists,
                "NETWORK_EXISTS",
            ),
            (
                NetworkError::UuidTaken {
                    existing: "a".into(),
                    uuid: "u".into(),
                },
                Code::AlreadyExists,
                "NETWORK_EXISTS",
            ),
            (
                NetworkError::PortNotFound("u".into()),
                Code::NotFound,
                "PORT_NOT_FOUND",
            ),
            (
                NetworkError::PortExists("u".into()),
                Code::AlreadyExists,
                "PORT_EXISTS",
            ),
            (
                NetworkError::Xml(crate::xml::parse_network("<nope/>").unwrap_err()),
                Code::InvalidArgument,
                "INVALID_XML",
            ),
            (
                NetworkError::InvalidArg("x".into()),
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
            ),
            (
                NetworkError::not_active("default"),
                Code::FailedPrecondition,
                "OPERATION_INVALID",
            ),
            (
                NetworkError::InUse("bridge name 'virbr0' already in use.".into()),
                Code::FailedPrecondition,
                "RESOURCE_IN_USE",
            ),
            (
                NetworkError::Unsupported {
                    driver: "test",
                    what: "x".into(),
                },
                Code::Unimplemented,
                "UNSUPPORTED",
            ),
            (
                NetworkError::NotSupported("x".into()),
                Code::Unimplemented,
                "UNSUPPORTED",
            ),
            (
                NetworkError::storage(
                    "write",
                    std::path::Path::new("/x"),
                    std::io::Error::other("disk full"),
                ),
                Code::Internal,
                "STORAGE_FAILED",
            ),
            (
                NetworkError::OperationFailed("x".into()),
                Code::FailedPrecondition,
                "OPERATION_FAILED",
            ),
            (
                NetworkError::Internal("x".into()),
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
        let status = tonic::Status::from(NetworkError::not_active("default"));
        assert_eq!(status.message(), "network 'default' is not active");
    }
}
