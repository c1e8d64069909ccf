//! How the qemu driver's parts' errors reach the user as [`DomainError`]s, naming the domain.

use super::argv::ArgvError;
use super::monitor::MonitorError;
use super::process::ProcessError;
use crate::error::DomainError;

/// A failed QMP call about domain `name` while doing `what` ("suspend", "cont", ...).
pub fn monitor(name: &str, what: &str, error: MonitorError) -> DomainError {
    let message = format!("cannot {what} domain '{name}': {error}");
    match error {
        MonitorError::Timeout { .. } => DomainError::Timeout(message),
        MonitorError::Connect(_) | MonitorError::Disconnected => DomainError::Unavailable(message),
        MonitorError::Invalid(_) => DomainError::InvalidArg(message),
        MonitorError::Qmp { .. } | MonitorError::Protocol(_) => {
            DomainError::OperationFailed(message)
        }
    }
}

/// A definition that cannot become a QEMU command line.
pub fn argv(name: &str, error: ArgvError) -> DomainError {
    let message = format!("cannot start domain '{name}': {error}");
    match error {
        ArgvError::Unsupported { .. } => DomainError::Unsupported {
            driver: super::DRIVER,
            what: message,
        },
        ArgvError::KvmUnavailable => DomainError::OperationInvalid(message),
        ArgvError::Invalid { .. } => DomainError::InvalidArg(message),
    }
}

/// QEMU could not be started or stopped.
pub fn process(name: &str, what: &str, error: ProcessError) -> DomainError {
    let message = format!("cannot {what} domain '{name}': {error}");
    match error {
        ProcessError::StartTimeout { .. } | ProcessError::StillRunning { .. } => {
            DomainError::Timeout(message)
        }
        _ => DomainError::OperationFailed(message),
    }
}
