//! The network service's one error type. Messages follow libvirt's wording where a libvirt
//! user would recognise it ("network 'default' is not active"), and always name the network
//! or port at fault. `api/status.rs` maps each variant to a gRPC code and a stable reason.

use crate::xml::{UpdateError, XmlError};

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// No network of that name or UUID (libvirt's VIR_ERR_NO_NETWORK).
    #[error("network not found: no network with matching {0}")]
    NotFound(String),
    /// The name is taken by a network with another UUID.
    #[error("network '{name}' already exists with uuid {uuid}")]
    NameTaken { name: String, uuid: String },
    /// The UUID is taken by a network with another name.
    #[error("network '{existing}' is already defined with uuid {uuid}")]
    UuidTaken { existing: String, uuid: String },
    /// No port of that UUID on the network (libvirt's VIR_ERR_NO_NETWORK_PORT).
    #[error("network port not found: Network port with UUID {0} does not exist")]
    PortNotFound(String),
    #[error("Network port with UUID {0} already exists")]
    PortExists(String),
    #[error("invalid network XML: {0}")]
    Xml(#[from] XmlError),
    #[error("invalid argument: {0}")]
    InvalidArg(String),
    /// The request is valid but the network's state does not allow it (libvirt's
    /// VIR_ERR_OPERATION_INVALID), e.g. "network 'default' is not active".
    #[error("{0}")]
    OperationInvalid(String),
    /// Something another network already holds: its bridge name, an overlapping subnet.
    #[error("{0}")]
    InUse(String),
    /// The driver cannot do this at all (→ UNIMPLEMENTED).
    #[error("unsupported by the {driver} driver: {what}")]
    Unsupported { driver: &'static str, what: String },
    /// Not supported (yet) by any driver; the message says what is (→ UNIMPLEMENTED).
    #[error("{0}")]
    NotSupported(String),
    #[error("cannot {action} '{path}': {source}")]
    Storage {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The host refused or failed what was asked (a bridge could not be made, dnsmasq did
    /// not start); the message carries the host's own words.
    #[error("{0}")]
    OperationFailed(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = NetworkError> = std::result::Result<T, E>;

impl NetworkError {
    /// "network 'NAME' is not active", libvirt's virNetworkObjIsActive failure.
    pub fn not_active(name: &str) -> Self {
        Self::OperationInvalid(format!("network '{name}' is not active"))
    }

    pub fn storage(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Storage {
            action,
            path: path.display().to_string(),
            source,
        }
    }
}

impl From<UpdateError> for NetworkError {
    fn from(error: UpdateError) -> Self {
        match error {
            UpdateError::Xml(e) => Self::Xml(e),
            UpdateError::Invalid(message) => Self::OperationInvalid(message),
            UpdateError::Unsupported(message) => Self::NotSupported(message),
        }
    }
}
