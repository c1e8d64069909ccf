//! proto ↔ model, in one place. Request conversions destructure every field so a new proto
//! field cannot be silently ignored.

use std::time::{SystemTime, UNIX_EPOCH};

use virtplane_proto::v1 as pb;

use crate::driver::LeaseOwner;
use crate::error::{Result, StorageError};
use crate::model::{
    BuildFlags, Event, Lifecycle, PoolFilter, PoolRef, PoolState, PoolSummary, ResizeSpec, VolRef,
    VolSummary, VolType, WipeAlgorithm,
};

/// The pool a request names; missing or empty is INVALID_ARGUMENT.
pub fn pool_ref(reference: Option<pb::StoragePoolRef>) -> Result<PoolRef> {
    match reference.and_then(|r| r.id) {
        Some(pb::storage_pool_ref::Id::Name(name)) if !name.is_empty() => Ok(PoolRef::Name(name)),
        Some(pb::storage_pool_ref::Id::Uuid(uuid)) if !uuid.is_empty() => {
            let parsed = uuid::Uuid::parse_str(&uuid)
                .map_err(|_| StorageError::InvalidArg(format!("'{uuid}' is not a valid UUID")))?;
            Ok(PoolRef::Uuid(parsed.hyphenated().to_string()))
        }
        _ => Err(StorageError::InvalidArg(
            "request names no storage pool: set pool.name or pool.uuid".into(),
        )),
    }
}

/// The volume a request names (`what` says which field, for the message).
pub fn vol_ref(reference: Option<pb::StorageVolRef>, what: &str) -> Result<VolRef> {
    match reference.and_then(|r| r.id) {
        Some(pb::storage_vol_ref::Id::Name(pb::PoolVolumeName { pool, volume }))
            if !pool.is_empty() && !volume.is_empty() =>
        {
            Ok(VolRef::Name { pool, volume })
        }
        Some(pb::storage_vol_ref::Id::Key(key)) if !key.is_empty() => Ok(VolRef::Key(key)),
        Some(pb::storage_vol_ref::Id::Path(path)) if !path.is_empty() => Ok(VolRef::Path(path)),
        _ => Err(StorageError::InvalidArg(format!(
            "request names no {what}: set {what}.name (pool and volume), {what}.key or \
             {what}.path"
        ))),
    }
}

/// The domain a lease is for: a name and a UUID (stored in canonical form).
pub fn lease_owner(name: String, uuid: &str) -> Result<LeaseOwner> {
    if name.is_empty() {
        return Err(StorageError::InvalidArg(
            "request names no owner: set owner_name (the domain that uses the volume)".into(),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(StorageError::InvalidArg(format!(
            "owner_name {name:?} contains control characters"
        )));
    }
    Ok(LeaseOwner {
        name,
        uuid: owner_uuid(uuid)?,
    })
}

/// A lease owner's UUID in canonical form; missing or malformed is INVALID_ARGUMENT.
pub fn owner_uuid(uuid: &str) -> Result<String> {
    if uuid.is_empty() {
        return Err(StorageError::InvalidArg(
            "request names no owner: set owner_uuid (the domain's UUID)".into(),
        ));
    }
    let parsed = uuid::Uuid::parse_str(uuid).map_err(|_| {
        StorageError::InvalidArg(format!("owner_uuid '{uuid}' is not a valid UUID"))
    })?;
    Ok(parsed.hyphenated().to_string())
}

pub fn build_flags(flags: Option<pb::PoolBuildFlags>) -> BuildFlags {
    let pb::PoolBuildFlags {
        no_overwrite,
        overwrite,
    } = flags.unwrap_or_default();
    BuildFlags {
        overwrite,
        no_overwrite,
    }
}

/// `--build` with its flags, or no build.
pub fn optional_build(build: bool, flags: Option<pb::PoolBuildFlags>) -> Option<BuildFlags> {
    build.then(|| build_flags(flags))
}

pub fn pool_filter(request: pb::ListPoolsRequest) -> PoolFilter {
    let pb::ListPoolsRequest {
        active,
        inactive,
        persistent,
        transient,
        autostart,
        no_autostart,
        types,
    } = request;
    PoolFilter {
        active,
        inactive,
        persistent,
        transient,
        autostart,
        no_autostart,
        types,
    }
}

fn pool_state(state: PoolState) -> pb::StoragePoolState {
    match state {
        PoolState::Inactive => pb::StoragePoolState::Inactive,
        PoolState::Building => pb::StoragePoolState::Building,
        PoolState::Running => pb::StoragePoolState::Running,
        PoolState::Degraded => pb::StoragePoolState::Degraded,
        PoolState::Inaccessible => pb::StoragePoolState::Inaccessible,
    }
}

pub fn pool_summary(summary: PoolSummary) -> pb::StoragePoolSummary {
    let PoolSummary {
        name,
        uuid,
        state,
        persistent,
        autostart,
        pool_type,
        sizes,
    } = summary;
    pb::StoragePoolSummary {
        name,
        uuid,
        state: pool_state(state) as i32,
        persistent,
        autostart,
        r#type: pool_type,
        capacity: sizes.capacity,
        allocation: sizes.allocation,
        available: sizes.available,
        // Fleet fields: the gateway fills them in.
        node: String::new(),
        node_unreachable: false,
    }
}

fn vol_type(kind: VolType) -> pb::StorageVolType {
    match kind {
        VolType::File => pb::StorageVolType::File,
        VolType::Block => pb::StorageVolType::Block,
        VolType::Dir => pb::StorageVolType::Dir,
        VolType::Network => pb::StorageVolType::Network,
        VolType::NetDir => pb::StorageVolType::Netdir,
        VolType::Ploop => pb::StorageVolType::Ploop,
    }
}

pub fn vol_summary(summary: VolSummary) -> pb::StorageVolSummary {
    let VolSummary {
        pool,
        name,
        key,
        path,
        vol_type: kind,
        format,
        capacity,
        allocation,
        upload_incomplete,
        upload_offset,
    } = summary;
    pb::StorageVolSummary {
        pool,
        name,
        key,
        path,
        r#type: vol_type(kind) as i32,
        format,
        capacity,
        allocation,
        upload_incomplete,
        upload_offset,
    }
}

pub fn resize_spec(request: &pb::ResizeVolumeRequest) -> ResizeSpec {
    let pb::ResizeVolumeRequest {
        volume: _,
        capacity,
        delta,
        shrink,
        allocate,
    } = *request;
    ResizeSpec {
        capacity,
        delta,
        shrink,
        allocate,
    }
}

pub fn wipe_algorithm(value: i32) -> Result<WipeAlgorithm> {
    use pb::WipeAlgorithm as W;
    Ok(match W::try_from(value) {
        Ok(W::Zero) => WipeAlgorithm::Zero,
        Ok(W::Nnsa) => WipeAlgorithm::Nnsa,
        Ok(W::Dod) => WipeAlgorithm::Dod,
        Ok(W::Bsi) => WipeAlgorithm::Bsi,
        Ok(W::Gutmann) => WipeAlgorithm::Gutmann,
        Ok(W::Schneier) => WipeAlgorithm::Schneier,
        Ok(W::Pfitzner7) => WipeAlgorithm::Pfitzner7,
        Ok(W::Pfitzner33) => WipeAlgorithm::Pfitzner33,
        Ok(W::Random) => WipeAlgorithm::Random,
        Ok(W::Trim) => WipeAlgorithm::Trim,
        Err(_) => {
            return Err(StorageError::InvalidArg(format!(
                "unknown wipe algorithm {value}"
            )));
        }
    })
}

fn lifecycle(lifecycle: Lifecycle) -> pb::StorageLifecycleType {
    match lifecycle {
        Lifecycle::Defined => pb::StorageLifecycleType::Defined,
        Lifecycle::Undefined => pb::StorageLifecycleType::Undefined,
        Lifecycle::Started => pb::StorageLifecycleType::Started,
        Lifecycle::Stopped => pb::StorageLifecycleType::Stopped,
        Lifecycle::Created => pb::StorageLifecycleType::Created,
        Lifecycle::Deleted => pb::StorageLifecycleType::Deleted,
        Lifecycle::Refreshed => pb::StorageLifecycleType::Refreshed,
        Lifecycle::Changed => pb::StorageLifecycleType::Changed,
    }
}

fn timestamp(time: SystemTime) -> prost_types::Timestamp {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
    }
}

pub fn event(event: Event) -> pb::StorageEvent {
    let Event {
        sequence,
        time,
        pool,
        pool_uuid,
        volume,
        lifecycle: kind,
    } = event;
    pb::StorageEvent {
        sequence,
        time: Some(timestamp(time)),
        pool_name: pool,
        pool_uuid,
        volume_name: volume.unwrap_or_default(),
        r#type: lifecycle(kind) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_must_name_something() {
        assert!(pool_ref(None).is_err());
        let by_uuid = pool_ref(Some(pb::StoragePoolRef {
            id: Some(pb::storage_pool_ref::Id::Uuid(
                "DFE224CB-28FB-8DD0-C4B2-64EB3F0F4566".into(),
            )),
        }))
        .unwrap();
        assert_eq!(
            by_uuid,
            PoolRef::Uuid("dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566".into())
        );
        let half = vol_ref(
            Some(pb::StorageVolRef {
                id: Some(pb::storage_vol_ref::Id::Name(pb::PoolVolumeName {
                    pool: "default".into(),
                    volume: String::new(),
                })),
            }),
            "volume",
        )
        .unwrap_err();
        assert!(half.to_string().contains("volume.name"), "{half}");
    }
}
