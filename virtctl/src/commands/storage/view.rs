//! The typed data the `pool-*` and `vol-*` commands print with `-o json|yaml`, mapped from the
//! proto messages in this one place; plus virsh's words for states and types.

use serde::Serialize;
use virtplane_proto::v1 as pb;

/// virsh's word for a pool state (`virshStoragePoolState`).
pub fn pool_state_word(state: i32) -> &'static str {
    use pb::StoragePoolState as S;
    match S::try_from(state) {
        Ok(S::Inactive) => "inactive",
        Ok(S::Building) => "building",
        Ok(S::Running) => "running",
        Ok(S::Degraded) => "degraded",
        Ok(S::Inaccessible) => "inaccessible",
        Err(_) => "unknown",
    }
}

/// virsh's word for a volume type (`virshStorageVol`).
pub fn vol_type_word(kind: i32) -> &'static str {
    use pb::StorageVolType as T;
    match T::try_from(kind) {
        Ok(T::File) => "file",
        Ok(T::Block) => "block",
        Ok(T::Dir) => "dir",
        Ok(T::Network) => "network",
        Ok(T::Netdir) => "netdir",
        Ok(T::Ploop) => "ploop",
        Err(_) => "unknown",
    }
}

/// One pool, as `pool-list`, `pool-info` and the lifecycle commands report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pool {
    pub name: String,
    pub uuid: String,
    /// `inactive`, `building`, `running`, `degraded`, `inaccessible`.
    pub state: &'static str,
    pub persistent: bool,
    pub autostart: bool,
    #[serde(rename = "type")]
    pub pool_type: String,
    /// Bytes; 0 while inactive.
    pub capacity: u64,
    pub allocation: u64,
    pub available: u64,
    /// The node it lives on, when the gateway serves many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Its node did not answer: the rest is the last known state.
    #[serde(skip_serializing_if = "crate::fleet_view::is_false")]
    pub node_unreachable: bool,
}

impl Pool {
    pub fn from_proto(p: &pb::StoragePoolSummary) -> Self {
        let pb::StoragePoolSummary {
            name,
            uuid,
            state,
            persistent,
            autostart,
            r#type,
            capacity,
            allocation,
            available,
            node,
            node_unreachable,
        } = p;
        Pool {
            name: name.clone(),
            uuid: uuid.clone(),
            state: pool_state_word(*state),
            persistent: *persistent,
            autostart: *autostart,
            pool_type: r#type.clone(),
            capacity: *capacity,
            allocation: *allocation,
            available: *available,
            node: crate::fleet_view::node_of(node),
            node_unreachable: *node_unreachable,
        }
    }

    /// virsh's "active" in the short `pool-list` (`virStoragePoolIsActive`): any state but
    /// inactive.
    pub fn active(&self) -> bool {
        self.state != "inactive"
    }

    /// Whether virsh shows sizes for the pool: only running or degraded pools have them.
    pub fn has_sizes(&self) -> bool {
        matches!(self.state, "running" | "degraded")
    }
}

/// One volume, as `vol-list`, `vol-info` and the create commands report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    pub pool: String,
    pub name: String,
    pub key: String,
    pub path: String,
    /// `file`, `block`, `dir`, `network`, `netdir`, `ploop`.
    #[serde(rename = "type")]
    pub vol_type: &'static str,
    /// `raw`, `qcow2`, ...; `null` when the service does not say.
    pub format: Option<String>,
    pub capacity: u64,
    pub allocation: u64,
    /// An upload began and did not finish: the content is not to be trusted.
    pub upload_incomplete: bool,
    /// Where `vol-upload --resume` continues (meaningful with `upload_incomplete`).
    pub upload_offset: u64,
}

impl Volume {
    pub fn from_proto(v: &pb::StorageVolSummary) -> Self {
        let pb::StorageVolSummary {
            pool,
            name,
            key,
            path,
            r#type,
            format,
            capacity,
            allocation,
            upload_incomplete,
            upload_offset,
        } = v;
        Volume {
            pool: pool.clone(),
            name: name.clone(),
            key: key.clone(),
            path: path.clone(),
            vol_type: vol_type_word(*r#type),
            format: (!format.is_empty()).then(|| format.clone()),
            capacity: *capacity,
            allocation: *allocation,
            upload_incomplete: *upload_incomplete,
            upload_offset: *upload_offset,
        }
    }
}

/// The result of a pool command that only acts, for `-o json|yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolAction {
    pub pool: String,
    pub result: &'static str,
}

/// The result of a volume command that only acts, for `-o json|yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeAction {
    pub volume: String,
    pub result: &'static str,
}

/// What an upload or download moved, for `-o json|yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transfer {
    pub volume: String,
    pub file: String,
    /// Where in the volume the transferred range starts.
    pub offset: u64,
    /// Bytes of the range, holes included.
    pub length: u64,
    /// Bytes that went over the wire as data (the rest were holes).
    pub data_bytes: u64,
    /// SHA-256 of the range, hex.
    pub sha256: String,
}

/// One storage event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageEvent {
    pub sequence: u64,
    /// RFC 3339.
    pub time: Option<String>,
    pub pool: String,
    pub uuid: String,
    /// Set for a volume's event.
    pub volume: Option<String>,
    /// `lifecycle` or `refresh` (virsh's pool event types), or `volume`.
    pub event: &'static str,
    /// `defined`, `undefined`, `started`, `stopped`, `created`, `deleted`, `refreshed`,
    /// `changed` (or `unknown`).
    pub kind: &'static str,
}

impl StorageEvent {
    pub fn from_proto(e: &pb::StorageEvent) -> Self {
        use pb::StorageLifecycleType as T;
        let kind = match T::try_from(e.r#type) {
            Ok(T::Defined) => "defined",
            Ok(T::Undefined) => "undefined",
            Ok(T::Started) => "started",
            Ok(T::Stopped) => "stopped",
            Ok(T::Created) => "created",
            Ok(T::Deleted) => "deleted",
            Ok(T::Refreshed) => "refreshed",
            Ok(T::Changed) => "changed",
            Ok(T::Unspecified) | Err(_) => "unknown",
        };
        let volume = (!e.volume_name.is_empty()).then(|| e.volume_name.clone());
        let event = if volume.is_some() {
            "volume"
        } else if kind == "refreshed" {
            "refresh"
        } else {
            "lifecycle"
        };
        let time = e
            .time
            .as_ref()
            .and_then(crate::view::timestamp_utc)
            .map(|t| t.to_rfc3339());
        StorageEvent {
            sequence: e.sequence,
            time,
            pool: e.pool_name.clone(),
            uuid: e.pool_uuid.clone(),
            volume,
            event,
            kind,
        }
    }

    /// virsh's word (`virshPoolEventToString`), extended to virtplane's volume events.
    pub fn virsh_word(&self) -> &'static str {
        match self.kind {
            "defined" => "Defined",
            "undefined" => "Undefined",
            "started" => "Started",
            "stopped" => "Stopped",
            "created" => "Created",
            "deleted" => "Deleted",
            "refreshed" => "Refreshed",
            "changed" => "Changed",
            _ => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_like_virsh() {
        assert_eq!(
            pool_state_word(pb::StoragePoolState::Running as i32),
            "running"
        );
        assert_eq!(
            pool_state_word(pb::StoragePoolState::Inaccessible as i32),
            "inaccessible"
        );
        assert_eq!(pool_state_word(99), "unknown");
        assert_eq!(vol_type_word(pb::StorageVolType::File as i32), "file");
        assert_eq!(vol_type_word(pb::StorageVolType::Ploop as i32), "ploop");
        assert_eq!(vol_type_word(-1), "unknown");
    }

    #[test]
    fn events_sorted_into_virsh_types() {
        let e = |volume: &str, t: pb::StorageLifecycleType| {
            StorageEvent::from_proto(&pb::StorageEvent {
                sequence: 1,
                time: None,
                pool_name: "default".into(),
                pool_uuid: String::new(),
                volume_name: volume.into(),
                r#type: t as i32,
            })
        };
        let started = e("", pb::StorageLifecycleType::Started);
        assert_eq!((started.event, started.kind), ("lifecycle", "started"));
        let refreshed = e("", pb::StorageLifecycleType::Refreshed);
        assert_eq!(refreshed.event, "refresh");
        let created = e("disk.qcow2", pb::StorageLifecycleType::Created);
        assert_eq!((created.event, created.virsh_word()), ("volume", "Created"));
        assert_eq!(created.volume.as_deref(), Some("disk.qcow2"));
    }
}
