//! The storage service's one error type. Messages follow libvirt's wording where a libvirt
//! user would recognise it ("storage pool 'default' is not active"), and always name the
//! pool or volume at fault. `api/status.rs` maps each variant to a gRPC code and a stable
//! reason.

use crate::xml::XmlError;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No pool of that name or UUID (libvirt's VIR_ERR_NO_STORAGE_POOL).
    #[error("storage pool not found: no storage pool with matching {0}")]
    PoolNotFound(String),
    /// No volume of that name, key or path (libvirt's VIR_ERR_NO_STORAGE_VOL).
    #[error("storage volume not found: no storage vol with matching {0}")]
    VolNotFound(String),
    /// The name is taken by a pool with another UUID.
    #[error("pool '{name}' already exists with uuid {uuid}")]
    NameTaken { name: String, uuid: String },
    /// The UUID is taken by a pool with another name.
    #[error("pool '{existing}' is already defined with uuid {uuid}")]
    UuidTaken { existing: String, uuid: String },
    /// Another active pool already uses this target path.
    #[error("storage pool '{pool}' already uses target path '{path}'")]
    TargetTaken { pool: String, path: String },
    #[error("storage volume '{0}' exists already")]
    VolExists(String),
    #[error("invalid XML: {0}")]
    Xml(#[from] XmlError),
    #[error("invalid argument: {0}")]
    InvalidArg(String),
    /// The request is valid but the object's state does not allow it (libvirt's
    /// VIR_ERR_OPERATION_INVALID), e.g. "storage pool 'default' is not active".
    #[error("{0}")]
    OperationInvalid(String),
    /// Something else holds the object: a running job on the volume, a VM using it.
    #[error("{0}")]
    InUse(String),
    /// The driver cannot do this at all (→ UNIMPLEMENTED).
    #[error("unsupported by the {driver} driver: {what}")]
    Unsupported { driver: &'static str, what: String },
    /// The service's own files (configs, status) could not be read or written.
    #[error("cannot {action} '{path}': {source}")]
    Storage {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The host refused or failed what was asked (a directory could not be made, qemu-img
    /// failed); the message carries the host's own words.
    #[error("{0}")]
    OperationFailed(String),
    /// An external command did not finish in time.
    #[error("{0}")]
    Timeout(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    /// "storage pool 'NAME' is not active", libvirt's virStoragePoolObjIsActive failure.
    pub fn not_active(name: &str) -> Self {
        Self::OperationInvalid(format!("storage pool '{name}' is not active"))
    }

    pub fn storage(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Storage {
            action,
            path: path.display().to_string(),
            source,
        }
    }
}

impl From<virtplane_common::object_files::FileError> for StorageError {
    fn from(error: virtplane_common::object_files::FileError) -> Self {
        Self::storage(error.action, &error.path, error.source)
    }
}
