//! libvirt's pool types and what each one's definition needs (`poolTypeInfo` in libvirt's
//! storage_conf.c): which `<source>` parts are mandatory, the source formats a type knows
//! and its default, and the default format of its volumes.
//!
//! The table is about the XML only; which types a driver runs is the driver's business.

/// The pool types libvirt 9.0 knows, in its enum order.
pub const POOL_TYPES: &[&str] = &[
    "dir",
    "fs",
    "netfs",
    "logical",
    "disk",
    "iscsi",
    "iscsi-direct",
    "scsi",
    "mpath",
    "rbd",
    "sheepdog",
    "gluster",
    "zfs",
    "vstorage",
];

/// File systems an `fs` pool may hold (`virStoragePoolFormatFileSystem`).
const FS_FORMATS: &[&str] = &[
    "auto", "ext2", "ext3", "ext4", "ufs", "iso9660", "udf", "gfs", "gfs2", "vfat", "hfs+", "xfs",
    "ocfs2", "vmfs",
];
/// Network file systems of a `netfs` pool (`virStoragePoolFormatFileSystemNet`).
const NETFS_FORMATS: &[&str] = &["auto", "nfs", "glusterfs", "cifs"];
/// Partition tables of a `disk` pool (`virStoragePoolFormatDisk`).
const DISK_FORMATS: &[&str] = &[
    "unknown", "dos", "dvh", "gpt", "mac", "bsd", "pc98", "sun", "lvm2",
];
/// Volume group formats of a `logical` pool (`virStoragePoolFormatLogical`).
const LOGICAL_FORMATS: &[&str] = &["unknown", "lvm2"];

/// What one pool type's definition needs (libvirt's `VIR_STORAGE_POOL_SOURCE_*` flags).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PoolTypeInfo {
    /// At least one `<source>/<host name>`.
    pub needs_host: bool,
    /// A `<source>/<dir path>`.
    pub needs_dir: bool,
    /// At least one `<source>/<device path>` (libvirt: when the device is the type's only
    /// source).
    pub needs_device: bool,
    /// The source has a `<name>` (a volume group, an RBD pool, …); it defaults to the pool's
    /// name, and the pool's name to it.
    pub source_name: bool,
    /// A network pool: no local target (libvirt neither reads nor writes `<target>`).
    pub network: bool,
    /// `<source>/<initiator>/<iqn>` is mandatory (`iscsi-direct`).
    pub needs_initiator: bool,
    /// `<source>/<adapter>` is mandatory (`scsi`).
    pub needs_adapter: bool,
    /// `<source>/<format type>` values; empty: the type has no source format.
    pub formats: &'static [&'static str],
    /// The source format when none is given.
    pub default_format: Option<&'static str>,
    /// The format a volume (and its backing store) gets when it names none; `None`: the
    /// type's volumes have no format (libvirt writes no `<format>` for them).
    pub volume_format: Option<&'static str>,
}

/// The rules of `pool_type`, or `None` for a type libvirt does not know.
pub(crate) fn info(pool_type: &str) -> Option<PoolTypeInfo> {
    let none = PoolTypeInfo::default();
    let info = match pool_type {
        "dir" => PoolTypeInfo {
            volume_format: Some("raw"),
            ..none
        },
        "fs" => PoolTypeInfo {
            needs_device: true,
            formats: FS_FORMATS,
            default_format: Some("auto"),
            volume_format: Some("raw"),
            ..none
        },
        "netfs" => PoolTypeInfo {
            needs_host: true,
            needs_dir: true,
            formats: NETFS_FORMATS,
            default_format: Some("auto"),
            volume_format: Some("raw"),
            ..none
        },
        "logical" => PoolTypeInfo {
            source_name: true,
            formats: LOGICAL_FORMATS,
            default_format: Some("lvm2"),
            ..none
        },
        "disk" => PoolTypeInfo {
            needs_device: true,
            formats: DISK_FORMATS,
            default_format: Some("unknown"),
            volume_format: Some("none"),
            ..none
        },
        "iscsi" => PoolTypeInfo {
            needs_host: true,
            ..none
        },
        "iscsi-direct" => PoolTypeInfo {
            needs_host: true,
            network: true,
            needs_initiator: true,
            ..none
        },
        "scsi" => PoolTypeInfo {
            needs_adapter: true,
            ..none
        },
        "mpath" => none,
        "rbd" | "sheepdog" => PoolTypeInfo {
            needs_host: true,
            source_name: true,
            network: true,
            volume_format: (pool_type == "rbd").then_some("raw"),
            ..none
        },
        "gluster" => PoolTypeInfo {
            needs_host: true,
            source_name: true,
            network: true,
            volume_format: Some("raw"),
            ..none
        },
        "zfs" => PoolTypeInfo {
            source_name: true,
            ..none
        },
        "vstorage" => PoolTypeInfo {
            source_name: true,
            volume_format: Some("raw"),
            ..none
        },
        _ => return None,
    };
    Some(info)
}

/// The format libvirt gives a volume of a `pool_type` pool that names none (`raw` for the
/// file-based types, `none` for a disk pool's partitions), or `None` when that type's
/// volumes carry no format (logical, iSCSI, …) or the type is unknown.
pub fn default_volume_format(pool_type: &str) -> Option<&'static str> {
    info(pool_type).and_then(|i| i.volume_format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_rules() {
        for t in POOL_TYPES {
            assert!(info(t).is_some(), "{t}");
        }
        assert!(info("nfs").is_none());
        assert_eq!(default_volume_format("dir"), Some("raw"));
        assert_eq!(default_volume_format("disk"), Some("none"));
        assert_eq!(default_volume_format("logical"), None);
        assert_eq!(default_volume_format("sheepdog"), None);
    }
}
