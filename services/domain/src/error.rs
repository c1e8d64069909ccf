//! The domain service's one error type. Messages follow libvirt's wording where a libvirt
//! user would recognise it, and always name the domain and what to do.

use crate::xml::XmlError;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("domain not found: no domain with matching {0}")]
    NotFound(String),
    #[error("domain '{name}' already exists with uuid {uuid}")]
    NameTaken { name: String, uuid: String },
    #[error("domain '{existing}' already exists with uuid {uuid}")]
    UuidTaken { existing: String, uuid: String },
    #[error("domain '{0}' is already active")]
    AlreadyActive(String),
    /// A device a request names is not in the domain (libvirt's VIR_ERR_DEVICE_MISSING),
    /// e.g. "disk vdb not found".
    #[error("{0}")]
    DeviceMissing(String),
    #[error("invalid domain XML: {0}")]
    Xml(#[from] XmlError),
    #[error("invalid argument: {0}")]
    InvalidArg(String),
    /// The request is valid but the domain's state does not allow it (libvirt's
    /// VIR_ERR_OPERATION_INVALID), e.g. "domain 'web' is not running".
    #[error("{0}")]
    OperationInvalid(String),
    /// The driver cannot do this at all (→ UNIMPLEMENTED).
    #[error("unsupported by the {driver} driver: {what}")]
    Unsupported { driver: &'static str, what: String },
    #[error("cannot {action} '{path}': {source}")]
    Storage {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The hypervisor refused or failed what was asked (QEMU did not start, a QMP command
    /// returned an error); the message carries its own words.
    #[error("{0}")]
    OperationFailed(String),
    /// The hypervisor did not answer or finish in time (→ DEADLINE_EXCEEDED).
    #[error("{0}")]
    Timeout(String),
    /// The hypervisor cannot be reached now, e.g. its monitor connection is gone (→ UNAVAILABLE).
    #[error("{0}")]
    Unavailable(String),
    /// The guest agent is not connected or did not answer in time (→ UNAVAILABLE).
    #[error("{0}")]
    AgentUnavailable(String),
    /// The guest agent does not have the command, or has it disabled (→ UNIMPLEMENTED).
    #[error("{0}")]
    AgentUnsupported(String),
    /// The guest agent refused the command; the message carries its class and words
    /// (→ FAILED_PRECONDITION).
    #[error("{0}")]
    AgentRefused(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

impl DomainError {
    /// "domain 'NAME' is not running", libvirt's virDomainObjCheckActive failure.
    pub fn not_running(name: &str) -> Self {
        Self::OperationInvalid(format!("domain '{name}' is not running"))
    }

    pub fn storage(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Storage {
            action,
            path: path.display().to_string(),
            source,
        }
    }
}
