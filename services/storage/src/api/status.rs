//! StorageError → gRPC status, with a stable machine reason. One exhaustive match.

use virtplane_common::status::with_reason;

use crate::error::StorageError;

impl From<StorageError> for tonic::Status {
    fn from(error: StorageError) -> Self {
        use tonic::Code;
        let (code, reason) = match &error {
            StorageError::PoolNotFound(_) => (Code::NotFound, "STORAGE_POOL_NOT_FOUND"),
            StorageError::VolNotFound(_) => (Code::NotFound, "STORAGE_VOL_NOT_FOUND"),
            StorageError::NameTaken { .. } | StorageError::UuidTaken { .. } => {
                (Code::AlreadyExists, "STORAGE_POOL_EXISTS")
            }
            StorageError::TargetTaken { .. } => (Code::AlreadyExists, "STORAGE_TARGET_IN_USE"),
            StorageError::VolExists(_) => (Code::AlreadyExists, "STORAGE_VOL_EXISTS"),
            StorageError::Xml(_) => (Code::InvalidArgument, "INVALID_XML"),
            StorageError::InvalidArg(_) => (Code::InvalidArgument, "INVALID_ARGUMENT"),
            StorageError::OperationInvalid(_) => (Code::FailedPrecondition, "OPERATION_INVALID"),
            StorageError::InUse(_) => (Code::FailedPrecondition, "RESOURCE_IN_USE"),
            StorageError::Unsupported { .. } => (Code::Unimplemented, "UNSUPPORTED"),
            StorageError::Storage { .. } => (Code::Internal, "STORAGE_FAILED"),
            StorageError::OperationFailed(_) => (Code::FailedPrecondition, "OPERATION_FAILED"),
            StorageError::Timeout(_) => (Code::DeadlineExceeded, "TIMEOUT"),
            StorageError::Internal(_) => (Code::Internal, "INTERNAL"),
        };
        with_reason(code, error.to_string(), reason)
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn each_error_has_its_code() {
        let cases = [
            (
                StorageError::PoolNotFound("name 'x'".into()),
                Code::NotFound,
            ),
            (StorageError::VolNotFound("key 'k'".into()), Code::NotFound),
            (StorageError::VolExists("a".into()), Code::AlreadyExists),
            (StorageError::not_active("p"), Code::FailedPrecondition),
            (
                StorageError::Unsupported {
                    driver: "test",
                    what: "x".into(),
                },
                Code::Unimplemented,
            ),
            (StorageError::Timeout("t".into()), Code::DeadlineExceeded),
            (StorageError::InvalidArg("i".into()), Code::InvalidArgument),
        ];
        for (error, code) in cases {
            let text = error.to_string();
            let status = tonic::Status::from(error);
            assert_eq!(status.code(), code, "{text}");
            assert_eq!(status.message(), text);
        }
    }
}
