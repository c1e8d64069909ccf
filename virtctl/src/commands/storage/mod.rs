//! The `pool-*` and `vol-*` commands: virsh's storage commands (`tools/virsh-pool.c`,
//! `tools/virsh-volume.c`) over StorageService, with virsh's arguments, messages and tables.
//!
//! - `pools.rs`: pool list/info/XML, define/create (from a file or from arguments), build,
//!   start/destroy/delete/undefine, autostart, refresh, uuid/name;
//! - `volumes.rs`: volume list/info/XML, key/path/name/pool, create/create-as/create-from/
//!   clone, delete, resize, wipe;
//! - `transfer.rs` (+ `sparse.rs`, `progress.rs`): `vol-upload` and `vol-download`;
//! - `events.rs`: `pool-event`;
//! - `sizes.rs`, `xml_builders.rs`, `view.rs`: sizes, the XML virsh writes, the JSON views.
//!
//! Here: how a pool or volume argument becomes a reference, as virsh reads them.

pub mod events;
pub mod pools;
pub mod progress;
pub mod sizes;
pub mod sparse;
pub mod transfer;
pub mod view;
pub mod volumes;
pub mod xml_builders;

use clap::Args;
use virtplane_proto::v1 as pb;

use super::{Ctx, canonical_uuid};
use crate::error::Error;
use view::{PoolAction, VolumeAction};

/// A pool argument as virsh reads it (`virshCommandOptPool`): a UUID if it parses as one,
/// else a name.
pub fn pool_ref(arg: &str) -> Option<pb::StoragePoolRef> {
    let id = match canonical_uuid(arg) {
        Some(uuid) => pb::storage_pool_ref::Id::Uuid(uuid),
        None => pb::storage_pool_ref::Id::Name(arg.to_string()),
    };
    Some(pb::StoragePoolRef { id: Some(id) })
}

/// A pool by name only (`pool-uuid`, virsh's `VIRSH_BYNAME`).
pub fn pool_by_name(name: &str) -> Option<pb::StoragePoolRef> {
    Some(pb::StoragePoolRef {
        id: Some(pb::storage_pool_ref::Id::Name(name.to_string())),
    })
}

/// A volume argument with its optional `--pool`, as virsh's `virshCommandOptVol` takes them.
#[derive(Debug, Args, Clone)]
pub struct VolArg {
    /// Volume name (with --pool), key or path
    #[arg(value_name = "VOL")]
    pub vol: String,
    /// Pool name or UUID, for a volume given by name
    #[arg(long, value_name = "POOL")]
    pub pool: Option<String>,
}

/// How a volume argument is read: a path when it starts with `/`; else, with a pool, a name
/// in that pool; else a key. (virsh tries name, key and path in turn; the service answers
/// each form directly, and the first character tells the forms apart for every key and path
/// the dir driver makes.)
pub fn vol_ref_in(vol: &str, pool: Option<&str>) -> pb::StorageVolRef {
    use pb::storage_vol_ref::Id;
    let id = if vol.starts_with('/') {
        Id::Path(vol.to_string())
    } else if let Some(pool) = pool {
        Id::Name(pb::PoolVolumeName {
            pool: pool.to_string(),
            volume: vol.to_string(),
        })
    } else {
        Id::Key(vol.to_string())
    };
    pb::StorageVolRef { id: Some(id) }
}

/// The pool name `PoolVolumeName` needs. A `--pool` given as a UUID is looked up first (virsh
/// accepts either); a UUID-shaped name that is no pool's UUID stays a name.
pub async fn pool_name_of(ctx: &Ctx, pool: &str) -> Result<String, Error> {
    let Some(uuid) = canonical_uuid(pool) else {
        return Ok(pool.to_string());
    };
    let mut client = ctx.conn.storage();
    let req = pb::LookupPoolRequest {
        pool: Some(pb::StoragePoolRef {
            id: Some(pb::storage_pool_ref::Id::Uuid(uuid)),
        }),
    };
    match ctx
        .conn
        .unary(client.lookup_pool(ctx.conn.request(req)))
        .await
    {
        Ok(resp) => Ok(resp
            .pool
            .map(|p| p.name)
            .unwrap_or_else(|| pool.to_string())),
        Err(e) if e.code() == Some(tonic::Code::NotFound) => Ok(pool.to_string()),
        Err(e) => Err(e),
    }
}

/// The reference for a `VOL [--pool POOL]` pair.
pub async fn vol_ref(ctx: &Ctx, vol: &str, pool: Option<&str>) -> Result<pb::StorageVolRef, Error> {
    let pool = match pool {
        Some(p) if !vol.starts_with('/') => Some(pool_name_of(ctx, p).await?),
        _ => None,
    };
    Ok(vol_ref_in(vol, pool.as_deref()))
}

/// virsh's hint when a volume given without `--pool` is not found: it was read as a key,
/// and a bare name needs its pool.
pub fn with_pool_hint(err: Error, reference: &pb::StorageVolRef) -> Error {
    let by_key = matches!(reference.id, Some(pb::storage_vol_ref::Id::Key(_)));
    match err {
        Error::Server { code, message } if by_key && code == tonic::Code::NotFound => {
            Error::Server {
                code,
                message: format!("{message} (a volume name needs --pool POOL)"),
            }
        }
        other => other,
    }
}

/// Looks a volume up (`virStorageVolLookupBy*`).
pub async fn lookup_volume(
    ctx: &Ctx,
    reference: &pb::StorageVolRef,
) -> Result<view::Volume, Error> {
    let mut client = ctx.conn.storage();
    let req = pb::LookupVolumeRequest {
        volume: Some(reference.clone()),
    };
    let resp = ctx
        .conn
        .unary(client.lookup_volume(ctx.conn.request(req)))
        .await
        .map_err(|e| with_pool_hint(e, reference))?;
    Ok(view::Volume::from_proto(&resp.volume.unwrap_or_default()))
}

/// Prints virsh's success line for a pool, or with `-o json|yaml` the same fact as data.
pub fn report_pool(
    ctx: &mut Ctx,
    pool: &str,
    result: &'static str,
    message: String,
) -> Result<(), Error> {
    if ctx.out.is_table() {
        ctx.out.line(message)
    } else {
        ctx.out.data(&PoolAction {
            pool: pool.to_string(),
            result,
        })
    }
}

/// Prints virsh's success line for a volume, or with `-o json|yaml` the same fact as data.
pub fn report_volume(
    ctx: &mut Ctx,
    volume: &str,
    result: &'static str,
    message: String,
) -> Result<(), Error> {
    if ctx.out.is_table() {
        ctx.out.line(message)
    } else {
        ctx.out.data(&VolumeAction {
            volume: volume.to_string(),
            result,
        })
    }
}

/// virsh sorts its lists with `strcasecmp`; the service sorts by bytes.
pub fn sort_like_virsh<T>(items: &mut [T], name: impl Fn(&T) -> &str) {
    items.sort_by_cached_key(|item| name(item).to_ascii_lowercase());
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::storage_vol_ref::Id;

    #[test]
    fn volume_arguments_like_virsh() {
        assert_eq!(
            vol_ref_in("/var/lib/images/a.img", Some("default")).id,
            Some(Id::Path("/var/lib/images/a.img".into()))
        );
        assert_eq!(
            vol_ref_in("a.img", Some("default")).id,
            Some(Id::Name(pb::PoolVolumeName {
                pool: "default".into(),
                volume: "a.img".into()
            }))
        );
        assert_eq!(
            vol_ref_in("some-key", None).id,
            Some(Id::Key("some-key".into()))
        );
    }

    #[test]
    fn pool_arguments_like_virsh() {
        let u = "0a4d4b4e-7c55-4ec1-a5a8-5ab2b0e7e5c1";
        assert_eq!(
            pool_ref(u).unwrap().id,
            Some(pb::storage_pool_ref::Id::Uuid(u.into()))
        );
        assert_eq!(
            pool_ref("default").unwrap().id,
            Some(pb::storage_pool_ref::Id::Name("default".into()))
        );
        assert_eq!(
            pool_by_name(u).unwrap().id,
            Some(pb::storage_pool_ref::Id::Name(u.into()))
        );
    }

    #[test]
    fn pool_hint_only_for_keys_not_found() {
        let nf = || Error::Server {
            code: tonic::Code::NotFound,
            message: "no storage volume with matching key 'a.img'".into(),
        };
        let by_key = vol_ref_in("a.img", None);
        assert_eq!(
            with_pool_hint(nf(), &by_key).to_string(),
            "no storage volume with matching key 'a.img' (a volume name needs --pool POOL)"
        );
        let by_name = vol_ref_in("a.img", Some("p"));
        assert_eq!(
            with_pool_hint(nf(), &by_name).to_string(),
            "no storage volume with matching key 'a.img'"
        );
    }

    #[test]
    fn case_insensitive_order() {
        let mut names = vec!["b", "A", "a", "C"];
        sort_like_virsh(&mut names, |n| n);
        assert_eq!(names, ["A", "a", "b", "C"]);
    }
}
