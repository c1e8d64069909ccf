//! The service's own vocabulary (proto-free): how pools and volumes are named, what lists,
//! info and events carry, and the flags of build, resize and wipe. Definitions themselves
//! are `crate::xml::PoolDef` and `crate::xml::VolDef`; `api/convert.rs` maps all of these
//! to and from protobuf.

use std::time::SystemTime;

/// A pool named by name or UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolRef {
    Name(String),
    Uuid(String),
}

impl std::fmt::Display for PoolRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Name(name) => write!(f, "name '{name}'"),
            Self::Uuid(uuid) => write!(f, "uuid '{uuid}'"),
        }
    }
}

/// A volume named by pool and name, by key, or by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolRef {
    Name { pool: String, volume: String },
    Key(String),
    Path(String),
}

impl std::fmt::Display for VolRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Name { pool, volume } => write!(f, "name '{volume}' in pool '{pool}'"),
            Self::Key(key) => write!(f, "key '{key}'"),
            Self::Path(path) => write!(f, "path '{path}'"),
        }
    }
}

/// virStoragePoolState.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolState {
    Inactive,
    Building,
    Running,
    Degraded,
    Inaccessible,
}

impl PoolState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inactive => "inactive",
            Self::Building => "building",
            Self::Running => "running",
            Self::Degraded => "degraded",
            Self::Inaccessible => "inaccessible",
        }
    }
}

/// A pool's sizes in bytes, as its backend last measured them (libvirt's virStoragePoolInfo).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolSizes {
    pub capacity: u64,
    pub allocation: u64,
    pub available: u64,
}

/// What `pool-list` and `pool-info` show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSummary {
    pub name: String,
    pub uuid: String,
    pub state: PoolState,
    pub persistent: bool,
    pub autostart: bool,
    pub pool_type: String,
    /// Zero while inactive.
    pub sizes: PoolSizes,
}

/// virConnectListAllStoragePools filter groups: within a group flags are OR'ed, groups
/// AND'ed, an empty group does not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolFilter {
    pub active: bool,
    pub inactive: bool,
    pub persistent: bool,
    pub transient: bool,
    pub autostart: bool,
    pub no_autostart: bool,
    /// Pool types; empty = every type.
    pub types: Vec<String>,
}

impl PoolFilter {
    pub fn matches(&self, summary: &PoolSummary) -> bool {
        let group = |a: bool, b: bool, is_a: bool| (!a && !b) || (a && is_a) || (b && !is_a);
        group(
            self.active,
            self.inactive,
            summary.state != PoolState::Inactive,
        ) && group(self.persistent, self.transient, summary.persistent)
            && group(self.autostart, self.no_autostart, summary.autostart)
            && (self.types.is_empty() || self.types.contains(&summary.pool_type))
    }
}

/// virStoragePoolBuildFlags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildFlags {
    pub overwrite: bool,
    pub no_overwrite: bool,
}

/// virStorageVolType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolType {
    File,
    Block,
    Dir,
    Network,
    NetDir,
    Ploop,
}

impl VolType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Block => "block",
            Self::Dir => "dir",
            Self::Network => "network",
            Self::NetDir => "netdir",
            Self::Ploop => "ploop",
        }
    }
}

/// What `vol-list` and `vol-info` show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolSummary {
    pub pool: String,
    pub name: String,
    pub key: String,
    pub path: String,
    pub vol_type: VolType,
    pub format: String,
    pub capacity: u64,
    pub allocation: u64,
    /// An upload began and has not finished: the content is not to be trusted.
    pub upload_incomplete: bool,
    /// Where an interrupted upload resumes.
    pub upload_offset: u64,
}

/// One `vol-resize` (virStorageVolResizeFlags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResizeSpec {
    /// The new capacity, or with `delta` the change, in bytes.
    pub capacity: u64,
    pub delta: bool,
    pub shrink: bool,
    pub allocate: bool,
}

impl ResizeSpec {
    /// The capacity this resize asks for, from the volume's `current` one; refuses what
    /// libvirt refuses (shrinking without the flag, a size below zero or past u64).
    pub fn target(&self, volume: &str, current: u64) -> Result<u64, String> {
        let target = match (self.delta, self.shrink) {
            (true, true) => current.checked_sub(self.capacity).ok_or_else(|| {
                format!(
                    "can't shrink capacity below existing capacity of volume '{volume}' \
                     ({current} bytes) by {} bytes",
                    self.capacity
                )
            })?,
            (true, false) => current.checked_add(self.capacity).ok_or_else(|| {
                format!(
                    "volume '{volume}': {current} + {} bytes overflows",
                    self.capacity
                )
            })?,
            (false, _) => self.capacity,
        };
        if target < current && !self.shrink {
            return Err(format!(
                "can't shrink capacity of volume '{volume}' from {current} to {target} bytes \
                 without --shrink"
            ));
        }
        if target == 0 {
            return Err(format!(
                "volume '{volume}': a capacity of 0 bytes is not allowed"
            ));
        }
        Ok(target)
    }
}

/// virStorageVolWipeAlgorithm: the host layer's, which knows which ones it can run.
pub use crate::host::WipeAlgorithm;

/// A pool's or volume's lifecycle change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Defined,
    Undefined,
    Started,
    Stopped,
    Created,
    Deleted,
    Refreshed,
    Changed,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Defined => "defined",
            Self::Undefined => "undefined",
            Self::Started => "started",
            Self::Stopped => "stopped",
            Self::Created => "created",
            Self::Deleted => "deleted",
            Self::Refreshed => "refreshed",
            Self::Changed => "changed",
        }
    }
}

/// One event on the storage service's watch stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub sequence: u64,
    pub time: SystemTime,
    pub pool: String,
    pub pool_uuid: String,
    /// Set for a volume's event.
    pub volume: Option<String>,
    pub lifecycle: Lifecycle,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_follows_libvirt_rules() {
        let grow = ResizeSpec {
            capacity: 2048,
            ..Default::default()
        };
        assert_eq!(grow.target("v", 1024), Ok(2048));
        let shrink_without_flag = ResizeSpec {
            capacity: 512,
            ..Default::default()
        };
        assert!(
            shrink_without_flag
                .target("v", 1024)
                .unwrap_err()
                .contains("--shrink")
        );
        let delta_down = ResizeSpec {
            capacity: 512,
            delta: true,
            shrink: true,
            ..Default::default()
        };
        assert_eq!(delta_down.target("v", 1024), Ok(512));
        let below_zero = ResizeSpec {
            capacity: 4096,
            delta: true,
            shrink: true,
            ..Default::default()
        };
        assert!(below_zero.target("v", 1024).is_err());
        let overflow = ResizeSpec {
            capacity: u64::MAX,
            delta: true,
            ..Default::default()
        };
        assert!(overflow.target("v", 1).unwrap_err().contains("overflows"));
    }

    #[test]
    fn pool_filters_group_like_libvirt() {
        let summary = PoolSummary {
            name: "p".into(),
            uuid: "u".into(),
            state: PoolState::Running,
            persistent: true,
            autostart: false,
            pool_type: "dir".into(),
            sizes: PoolSizes::default(),
        };
        assert!(PoolFilter::default().matches(&summary));
        let inactive = PoolFilter {
            inactive: true,
            ..Default::default()
        };
        assert!(!inactive.matches(&summary));
        let logical = PoolFilter {
            types: vec!["logical".into()],
            ..Default::default()
        };
        assert!(!logical.matches(&summary));
    }
}
