//! The host layer's errors in the service's terms: what the user asked wrongly is
//! INVALID_ARGUMENT, what the state of the host forbids is FAILED_PRECONDITION, a qemu-img
//! that hung is DEADLINE_EXCEEDED, an algorithm nobody built is UNIMPLEMENTED.

use crate::error::StorageError;
use crate::host::{ConfineError, FileError, QemuImgError, WipeError};

pub const DRIVER: &str = "dir";

impl From<ConfineError> for StorageError {
    fn from(error: ConfineError) -> Self {
        match error {
            ConfineError::InvalidName { .. } | ConfineError::TargetNotAbsolute { .. } => {
                Self::InvalidArg(error.to_string())
            }
            ConfineError::AlreadyExists { .. } => Self::OperationInvalid(error.to_string()),
            _ => Self::OperationFailed(error.to_string()),
        }
    }
}

impl From<FileError> for StorageError {
    fn from(error: FileError) -> Self {
        Self::OperationFailed(error.to_string())
    }
}

impl From<QemuImgError> for StorageError {
    fn from(error: QemuImgError) -> Self {
        match error {
            QemuImgError::TimedOut { .. } => Self::Timeout(error.to_string()),
            QemuImgError::ShrinkNotAllowed { .. }
            | QemuImgError::InvalidOptions { .. }
            | QemuImgError::RelativePath { .. } => Self::InvalidArg(error.to_string()),
            _ => Self::OperationFailed(error.to_string()),
        }
    }
}

impl From<WipeError> for StorageError {
    fn from(error: WipeError) -> Self {
        match error {
            WipeError::Unsupported { .. } => Self::Unsupported {
                driver: DRIVER,
                what: error.to_string(),
            },
            _ => Self::OperationFailed(error.to_string()),
        }
    }
}
