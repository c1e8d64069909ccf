//! The `vol-*` commands but `vol-upload` and `vol-download`, as `tools/virsh-volume.c` has
//! them.

use clap::{Args, ValueEnum};
use virtplane_proto::v1 as pb;

use super::sizes::{SignedSize, parse_bytes, parse_signed, pretty};
use super::view::Volume;
use super::xml_builders::{VolumeSpec, clone_xml, volume_xml};
use super::{
    VolArg, lookup_volume, pool_name_of, pool_ref, report_volume, sort_like_virsh, vol_ref,
    vol_ref_in, with_pool_hint,
};
use crate::commands::network::print_xml;
use crate::commands::{Ctx, read_xml};
use crate::error::Error;
use crate::output::{key_values, virsh_table};

/// `vol-list POOL`.
#[derive(Debug, Args)]
pub struct VolListArgs {
    /// Pool name or UUID
    #[arg(value_name = "POOL")]
    pub pool: String,
    /// Display extended details for volumes
    #[arg(long)]
    pub details: bool,
}

/// `vol-info VOL`.
#[derive(Debug, Args)]
pub struct VolInfoArgs {
    #[command(flatten)]
    pub vol: VolArg,
    /// Sizes in bytes rather than in pretty units
    #[arg(long)]
    pub bytes: bool,
}

/// `vol-name VOL` and `vol-pool VOL`: virsh takes a key or a path here, no pool.
#[derive(Debug, Args)]
pub struct VolKeyArg {
    /// Volume key or path
    #[arg(value_name = "VOL")]
    pub vol: String,
}

/// `vol-pool VOL`.
#[derive(Debug, Args)]
pub struct VolPoolArgs {
    /// Volume key or path
    #[arg(value_name = "VOL")]
    pub vol: String,
    /// Print the pool's UUID rather than its name
    #[arg(long)]
    pub uuid: bool,
}

/// `vol-create POOL FILE`.
#[derive(Debug, Args)]
pub struct VolCreateArgs {
    /// Pool name or UUID
    #[arg(value_name = "POOL")]
    pub pool: String,
    /// File with the volume XML; '-' or /dev/stdin reads standard input
    #[arg(value_name = "FILE")]
    pub file: String,
    /// Preallocate metadata (for qcow2 instead of full allocation)
    #[arg(long)]
    pub prealloc_metadata: bool,
}

/// `vol-create-as POOL NAME CAPACITY`.
#[derive(Debug, Args)]
pub struct VolCreateAsArgs {
    /// Pool name or UUID
    #[arg(value_name = "POOL")]
    pub pool: String,
    /// Name of the volume
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Size of the volume: bytes, or with a unit (K/KiB, KB, M/MiB, MB, G/GiB, GB, T/TiB, TB, ...)
    #[arg(value_name = "CAPACITY", value_parser = parse_bytes)]
    pub capacity: u64,
    /// Initial allocation, bytes or with a unit
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub allocation: Option<u64>,
    /// File format type: raw, qcow2, ...
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// The backing volume (name in POOL, key or path), for a copy-on-write overlay
    #[arg(long, value_name = "VOL")]
    pub backing_vol: Option<String>,
    /// Format of the backing volume
    #[arg(long, value_name = "FORMAT", requires = "backing_vol")]
    pub backing_vol_format: Option<String>,
    /// Preallocate metadata (for qcow2 instead of full allocation)
    #[arg(long)]
    pub prealloc_metadata: bool,
    /// Print the XML document, but don't create
    #[arg(long)]
    pub print_xml: bool,
}

/// `vol-create-from POOL FILE VOL`.
#[derive(Debug, Args)]
pub struct VolCreateFromArgs {
    /// Pool name or UUID of the new volume
    #[arg(value_name = "POOL")]
    pub pool: String,
    /// File with the new volume's XML; '-' or /dev/stdin reads standard input
    #[arg(value_name = "FILE")]
    pub file: String,
    /// Input volume: name (with --inputpool), key or path
    #[arg(value_name = "VOL")]
    pub vol: String,
    /// Pool name or UUID of the input volume
    #[arg(long, value_name = "POOL")]
    pub inputpool: Option<String>,
    /// Preallocate metadata (for qcow2 instead of full allocation)
    #[arg(long)]
    pub prealloc_metadata: bool,
}

/// `vol-clone VOL NEWNAME`.
#[derive(Debug, Args)]
pub struct VolCloneArgs {
    /// Volume to clone: name (with --pool), key or path
    #[arg(value_name = "VOL")]
    pub vol: String,
    /// Name of the clone
    #[arg(value_name = "NEWNAME")]
    pub newname: String,
    /// Pool name or UUID of the volume to clone
    #[arg(long, value_name = "POOL")]
    pub pool: Option<String>,
    /// Pool to make the clone in (default: the source's pool)
    #[arg(long, value_name = "POOL")]
    pub newpool: Option<String>,
    /// Preallocate metadata (for qcow2 instead of full allocation)
    #[arg(long)]
    pub prealloc_metadata: bool,
    /// Print the clone's XML rather than clone the volume
    #[arg(long)]
    pub print_xml: bool,
}

/// `vol-resize VOL CAPACITY`.
#[derive(Debug, Args)]
pub struct VolResizeArgs {
    /// Volume name (with --pool), key or path
    #[arg(value_name = "VOL")]
    pub vol: String,
    /// New capacity (bytes, or with a unit); with --delta the change; a leading '-' shrinks by
    /// that much (needs --shrink)
    #[arg(value_name = "CAPACITY", allow_hyphen_values = true, value_parser = parse_signed)]
    pub capacity: SignedSize,
    /// Pool name or UUID, for a volume given by name
    #[arg(long, value_name = "POOL")]
    pub pool: Option<String>,
    /// Allocate the new capacity, rather than leaving it sparse
    #[arg(long)]
    pub allocate: bool,
    /// Use capacity as a delta to the current size, rather than the new size
    #[arg(long)]
    pub delta: bool,
    /// Allow the resize to shrink the volume
    #[arg(long)]
    pub shrink: bool,
}

/// virsh's wipe algorithms (`virStorageVolWipeAlgorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WipeAlgorithmArg {
    Zero,
    Nnsa,
    Dod,
    Bsi,
    Gutmann,
    Schneier,
    Pfitzner7,
    Pfitzner33,
    Random,
    Trim,
}

impl WipeAlgorithmArg {
    fn proto(self) -> pb::WipeAlgorithm {
        use pb::WipeAlgorithm as W;
        match self {
            Self::Zero => W::Zero,
            Self::Nnsa => W::Nnsa,
            Self::Dod => W::Dod,
            Self::Bsi => W::Bsi,
            Self::Gutmann => W::Gutmann,
            Self::Schneier => W::Schneier,
            Self::Pfitzner7 => W::Pfitzner7,
            Self::Pfitzner33 => W::Pfitzner33,
            Self::Random => W::Random,
            Self::Trim => W::Trim,
        }
    }
}

/// `vol-wipe VOL`.
#[derive(Debug, Args)]
pub struct VolWipeArgs {
    #[command(flatten)]
    pub vol: VolArg,
    /// Wiping algorithm (default: zero)
    #[arg(long, value_enum, value_name = "ALGORITHM")]
    pub algorithm: Option<WipeAlgorithmArg>,
}

pub async fn vol_list(ctx: &mut Ctx, a: VolListArgs) -> Result<(), Error> {
    let mut client = ctx.conn.storage();
    let req = pb::ListVolumesRequest {
        pool: pool_ref(&a.pool),
    };
    let resp = ctx
        .conn
        .unary(client.list_volumes(ctx.conn.request(req)))
        .await?;
    let mut volumes: Vec<Volume> = resp.volumes.iter().map(Volume::from_proto).collect();
    sort_like_virsh(&mut volumes, |v| &v.name);
    if !ctx.out.is_table() {
        return ctx.out.data(&volumes);
    }
    ctx.out.raw(&render_list(a.details, &volumes))
}

/// virsh's vol-list table: Name and Path, and with `--details` Type, Capacity, Allocation.
pub fn render_list(details: bool, volumes: &[Volume]) -> String {
    if !details {
        let rows: Vec<Vec<String>> = volumes
            .iter()
            .map(|v| vec![v.name.clone(), v.path.clone()])
            .collect();
        return virsh_table(&["Name", "Path"], &rows);
    }
    let rows: Vec<Vec<String>> = volumes
        .iter()
        .map(|v| {
            vec![
                v.name.clone(),
                v.path.clone(),
                v.vol_type.to_string(),
                pretty(v.capacity),
                pretty(v.allocation),
            ]
        })
        .collect();
    virsh_table(&["Name", "Path", "Type", "Capacity", "Allocation"], &rows)
}

pub async fn vol_info(ctx: &mut Ctx, a: VolInfoArgs) -> Result<(), Error> {
    let reference = vol_ref(ctx, &a.vol.vol, a.vol.pool.as_deref()).await?;
    let mut client = ctx.conn.storage();
    let req = pb::GetVolumeInfoRequest {
        volume: Some(reference.clone()),
    };
    let resp = ctx
        .conn
        .unary(client.get_volume_info(ctx.conn.request(req)))
        .await
        .map_err(|e| with_pool_hint(e, &reference))?;
    let volume = Volume::from_proto(&resp.volume.unwrap_or_default());
    if !ctx.out.is_table() {
        return ctx.out.data(&volume);
    }
    ctx.out.raw(&render_info(&volume, a.bytes))
}

/// virsh's vol-info lines (`%-15s %s`; sizes as `%2.2lf %s`, or with `--bytes` as
/// `%llu bytes`), and a warning line when an upload into the volume did not finish.
pub fn render_info(v: &Volume, bytes: bool) -> String {
    let size = |n: u64| {
        if bytes {
            format!("{n} bytes")
        } else {
            pretty(n)
        }
    };
    let mut pairs = vec![
        ("Name:", v.name.clone()),
        ("Type:", v.vol_type.to_string()),
        ("Capacity:", size(v.capacity)),
        ("Allocation:", size(v.allocation)),
    ];
    if v.upload_incomplete {
        pairs.push((
            "Warning:",
            format!(
                "an upload into this volume did not finish: its content is not to be trusted (vol-upload --resume continues at byte {})",
                v.upload_offset
            ),
        ));
    }
    key_values(15, &pairs)
}

pub async fn vol_dumpxml(ctx: &mut Ctx, a: VolArg) -> Result<(), Error> {
    let reference = vol_ref(ctx, &a.vol, a.pool.as_deref()).await?;
    let xml = volume_xml_of(ctx, &reference).await?;
    print_xml(ctx, xml)
}

async fn volume_xml_of(ctx: &Ctx, reference: &pb::StorageVolRef) -> Result<String, Error> {
    let mut client = ctx.conn.storage();
    let req = pb::GetVolumeXmlRequest {
        volume: Some(reference.clone()),
    };
    let resp = ctx
        .conn
        .unary(client.get_volume_xml(ctx.conn.request(req)))
        .await
        .map_err(|e| with_pool_hint(e, reference))?;
    Ok(resp.xml)
}

/// Prints one field of a looked-up volume (`vol-key`, `vol-path`, `vol-name`), or the whole
/// volume with `-o json|yaml`.
fn print_field(ctx: &mut Ctx, v: &Volume, field: impl Fn(&Volume) -> &str) -> Result<(), Error> {
    if !ctx.out.is_table() {
        return ctx.out.data(v);
    }
    ctx.out.line(field(v))
}

/// `vol-key VOL [--pool POOL]`.
pub async fn vol_key(ctx: &mut Ctx, a: VolArg) -> Result<(), Error> {
    let reference = vol_ref(ctx, &a.vol, a.pool.as_deref()).await?;
    let v = lookup_volume(ctx, &reference).await?;
    print_field(ctx, &v, |v| &v.key)
}

/// `vol-path VOL [--pool POOL]`.
pub async fn vol_path(ctx: &mut Ctx, a: VolArg) -> Result<(), Error> {
    let reference = vol_ref(ctx, &a.vol, a.pool.as_deref()).await?;
    let v = lookup_volume(ctx, &reference).await?;
    print_field(ctx, &v, |v| &v.path)
}

/// `vol-name KEY-OR-PATH`.
pub async fn vol_name(ctx: &mut Ctx, a: VolKeyArg) -> Result<(), Error> {
    let v = lookup_volume(ctx, &vol_ref_in(&a.vol, None)).await?;
    print_field(ctx, &v, |v| &v.name)
}

/// `vol-pool KEY-OR-PATH [--uuid]`.
pub async fn vol_pool(ctx: &mut Ctx, a: VolPoolArgs) -> Result<(), Error> {
    let v = lookup_volume(ctx, &vol_ref_in(&a.vol, None)).await?;
    if !a.uuid {
        return print_field(ctx, &v, |v| &v.pool);
    }
    let mut client = ctx.conn.storage();
    let req = pb::LookupPoolRequest {
        pool: super::pool_by_name(&v.pool),
    };
    let resp = ctx
        .conn
        .unary(client.lookup_pool(ctx.conn.request(req)))
        .await?;
    let pool = super::view::Pool::from_proto(&resp.pool.unwrap_or_default());
    if !ctx.out.is_table() {
        return ctx.out.data(&pool);
    }
    ctx.out.line(pool.uuid)
}

/// Prints the volume a create returned, or virsh's line.
fn print_created(
    ctx: &mut Ctx,
    volume: Option<pb::StorageVolSummary>,
    line: impl Fn(&Volume) -> String,
) -> Result<(), Error> {
    let v = Volume::from_proto(&volume.unwrap_or_default());
    if !ctx.out.is_table() {
        return ctx.out.data(&v);
    }
    ctx.out.line(line(&v))
}

pub async fn vol_create(ctx: &mut Ctx, a: VolCreateArgs) -> Result<(), Error> {
    let xml = read_xml(&a.file)?;
    let mut client = ctx.conn.storage();
    let req = pb::CreateVolumeRequest {
        pool: pool_ref(&a.pool),
        xml,
        prealloc_metadata: a.prealloc_metadata,
    };
    let resp = ctx
        .conn
        .unary(client.create_volume(ctx.conn.request(req)))
        .await?;
    print_created(ctx, resp.volume, |v| {
        format!("Vol {} created from {}", v.name, a.file)
    })
}

/// The path of `--backing-vol`, found as virsh finds it: as a name in the pool, else as a
/// key, else as a path.
async fn backing_path(ctx: &Ctx, pool: &str, vol: &str) -> Result<String, Error> {
    let pool = pool_name_of(ctx, pool).await?;
    let mut tries = Vec::new();
    if !vol.contains('/') {
        tries.push(vol_ref_in(vol, Some(&pool)));
    }
    tries.push(pb::StorageVolRef {
        id: Some(pb::storage_vol_ref::Id::Key(vol.to_string())),
    });
    if vol.starts_with('/') {
        tries.push(vol_ref_in(vol, None));
    }
    for reference in &tries {
        match lookup_volume(ctx, reference).await {
            Ok(v) => return Ok(v.path),
            Err(e) if e.code() == Some(tonic::Code::NotFound) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Other(format!(
        "backing volume '{vol}' not found: it is no volume name in pool '{pool}', nor a volume key or path"
    )))
}

pub async fn vol_create_as(ctx: &mut Ctx, a: VolCreateAsArgs) -> Result<(), Error> {
    let backing = match &a.backing_vol {
        Some(vol) => Some(backing_path(ctx, &a.pool, vol).await?),
        None => None,
    };
    let xml = volume_xml(&VolumeSpec {
        name: a.name.clone(),
        capacity: a.capacity,
        allocation: a.allocation,
        format: a.format.clone(),
        backing_path: backing,
        backing_format: a.backing_vol_format.clone(),
    });
    if a.print_xml {
        return print_xml(ctx, xml);
    }
    let mut client = ctx.conn.storage();
    let req = pb::CreateVolumeRequest {
        pool: pool_ref(&a.pool),
        xml,
        prealloc_metadata: a.prealloc_metadata,
    };
    let resp = ctx
        .conn
        .unary(client.create_volume(ctx.conn.request(req)))
        .await?;
    print_created(ctx, resp.volume, |_| format!("Vol {} created", a.name))
}

pub async fn vol_create_from(ctx: &mut Ctx, a: VolCreateFromArgs) -> Result<(), Error> {
    let xml = read_xml(&a.file)?;
    let source_ref = vol_ref(ctx, &a.vol, a.inputpool.as_deref()).await?;
    // As virsh: the input volume is looked up first (its name goes into the message).
    let source = lookup_volume(ctx, &source_ref).await?;
    let mut client = ctx.conn.storage();
    let req = pb::CreateVolumeFromRequest {
        pool: pool_ref(&a.pool),
        xml,
        source: Some(source_ref),
        prealloc_metadata: a.prealloc_metadata,
    };
    let resp = ctx
        .conn
        .unary(client.create_volume_from(ctx.conn.request(req)))
        .await?;
    print_created(ctx, resp.volume, |v| {
        format!("Vol {} created from input vol {}", v.name, source.name)
    })
}

pub async fn vol_clone(ctx: &mut Ctx, a: VolCloneArgs) -> Result<(), Error> {
    let source_ref = vol_ref(ctx, &a.vol, a.pool.as_deref()).await?;
    let source = lookup_volume(ctx, &source_ref).await?;
    let source_xml = volume_xml_of(ctx, &source_ref).await?;
    let xml = clone_xml(&source_xml, &a.newname)
        .map_err(|e| Error::Other(format!("cannot clone volume '{}': {e}", source.name)))?;
    if a.print_xml {
        return print_xml(ctx, xml);
    }
    let target_pool = a.newpool.as_deref().unwrap_or(&source.pool);
    let mut client = ctx.conn.storage();
    let req = pb::CreateVolumeFromRequest {
        pool: pool_ref(target_pool),
        xml,
        source: Some(source_ref),
        prealloc_metadata: a.prealloc_metadata,
    };
    let resp = ctx
        .conn
        .unary(client.create_volume_from(ctx.conn.request(req)))
        .await?;
    print_created(ctx, resp.volume, |v| {
        format!("Vol {} cloned from {}", v.name, source.name)
    })
}

pub async fn vol_delete(ctx: &mut Ctx, a: VolArg) -> Result<(), Error> {
    let reference = vol_ref(ctx, &a.vol, a.pool.as_deref()).await?;
    let mut client = ctx.conn.storage();
    let req = pb::DeleteVolumeRequest {
        volume: Some(reference.clone()),
    };
    ctx.conn
        .unary(client.delete_volume(ctx.conn.request(req)))
        .await
        .map_err(|e| with_pool_hint(e, &reference))?;
    let message = format!("Vol {} deleted", a.vol);
    report_volume(ctx, &a.vol, "deleted", message)
}

pub async fn vol_wipe(ctx: &mut Ctx, a: VolWipeArgs) -> Result<(), Error> {
    let reference = vol_ref(ctx, &a.vol.vol, a.vol.pool.as_deref()).await?;
    let algorithm = a.algorithm.unwrap_or(WipeAlgorithmArg::Zero).proto();
    let mut client = ctx.conn.storage();
    let req = pb::WipeVolumeRequest {
        volume: Some(reference.clone()),
        algorithm: algorithm.into(),
    };
    ctx.conn
        .unary(client.wipe_volume(ctx.conn.request(req)))
        .await
        .map_err(|e| with_pool_hint(e, &reference))?;
    let message = format!("Vol {} wiped", a.vol.vol);
    report_volume(ctx, &a.vol.vol, "wiped", message)
}

/// The ResizeVolume flags for virsh's `vol-resize` options: a negative size needs `--shrink`
/// and makes the size a delta.
pub fn resize_request(
    a: &VolResizeArgs,
    volume: pb::StorageVolRef,
) -> Result<pb::ResizeVolumeRequest, Error> {
    if a.capacity.negative && !a.shrink {
        return Err(Error::Other("negative size requires --shrink".into()));
    }
    Ok(pb::ResizeVolumeRequest {
        volume: Some(volume),
        capacity: a.capacity.bytes,
        delta: a.delta || a.capacity.negative,
        shrink: a.shrink,
        allocate: a.allocate,
    })
}

pub async fn vol_resize(ctx: &mut Ctx, a: VolResizeArgs) -> Result<(), Error> {
    let reference = vol_ref(ctx, &a.vol, a.pool.as_deref()).await?;
    let req = resize_request(&a, reference.clone())?;
    let delta = req.delta;
    let mut client = ctx.conn.storage();
    let resp = ctx
        .conn
        .unary(client.resize_volume(ctx.conn.request(req)))
        .await
        .map_err(|e| with_pool_hint(e, &reference))?;
    let v = Volume::from_proto(&resp.volume.unwrap_or_default());
    if !ctx.out.is_table() {
        return ctx.out.data(&v);
    }
    let name = if v.name.is_empty() { &a.vol } else { &v.name };
    let how = if delta { "by" } else { "to" };
    ctx.out.line(format!(
        "Size of volume '{name}' successfully changed {how} {}",
        a.capacity.text
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn volume(name: &str, capacity: u64, allocation: u64) -> Volume {
        Volume {
            pool: "default".into(),
            name: name.into(),
            key: format!("/var/lib/virtplane/images/{name}"),
            path: format!("/var/lib/virtplane/images/{name}"),
            vol_type: "file",
            format: Some("qcow2".into()),
            capacity,
            allocation,
            upload_incomplete: false,
            upload_offset: 0,
        }
    }

    #[test]
    fn list_like_virsh() {
        let vols = [
            volume("a.qcow2", 1 << 30, 200_704),
            volume("b.img", 512 << 20, 0),
        ];
        assert_eq!(
            render_list(false, &vols),
            " Name      Path\n\
             ----------------------------------------------\n \
             a.qcow2   /var/lib/virtplane/images/a.qcow2\n \
             b.img     /var/lib/virtplane/images/b.img\n"
        );
    }

    #[test]
    fn info_like_virsh() {
        let v = volume("a.qcow2", 1 << 30, 200_704);
        assert_eq!(
            render_info(&v, false),
            "Name:           a.qcow2\nType:           file\nCapacity:       1.00 GiB\nAllocation:     196.00 KiB\n"
        );
        assert_eq!(
            render_info(&v, true),
            "Name:           a.qcow2\nType:           file\nCapacity:       1073741824 bytes\nAllocation:     200704 bytes\n"
        );
        let partial = Volume {
            upload_incomplete: true,
            upload_offset: 4096,
            ..v
        };
        assert!(render_info(&partial, false).ends_with("continues at byte 4096)\n"));
    }

    fn resize_args(args: &[&str]) -> VolResizeArgs {
        let argv = ["virtctl", "vol-resize"]
            .into_iter()
            .chain(args.iter().copied());
        match Cli::try_parse_from(argv).unwrap().command {
            Command::VolResize(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn resize_like_virsh() {
        let r = || vol_ref_in("a.img", Some("default"));
        let req = resize_request(&resize_args(&["a.img", "2G"]), r()).unwrap();
        assert_eq!(
            (req.capacity, req.delta, req.shrink),
            (2 << 30, false, false)
        );
        let req = resize_request(&resize_args(&["a.img", "-1G", "--shrink"]), r()).unwrap();
        assert_eq!((req.capacity, req.delta, req.shrink), (1 << 30, true, true));
        let req = resize_request(
            &resize_args(&["--shrink", "--delta", "a.img", "--", "-1G"]),
            r(),
        )
        .unwrap();
        assert_eq!((req.capacity, req.delta, req.shrink), (1 << 30, true, true));
        let err = resize_request(&resize_args(&["a.img", "-1G"]), r()).unwrap_err();
        assert_eq!(err.to_string(), "negative size requires --shrink");
        let err = Cli::try_parse_from(["virtctl", "vol-resize", "a.img", "1.5G"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("'1.5G'"), "{err}");
    }

    #[test]
    fn create_as_sizes_are_bytes() {
        let parse = |args: &[&str]| {
            let argv = ["virtctl", "vol-create-as"]
                .into_iter()
                .chain(args.iter().copied());
            match Cli::try_parse_from(argv).unwrap().command {
                Command::VolCreateAs(a) => a,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(parse(&["default", "a", "1G"]).capacity, 1 << 30);
        assert_eq!(parse(&["default", "a", "1GB"]).capacity, 1_000_000_000);
        assert_eq!(parse(&["default", "a", "4096"]).capacity, 4096);
        let a = parse(&["default", "a", "1G", "--allocation", "1M"]);
        assert_eq!(a.allocation, Some(1 << 20));
        let err = Cli::try_parse_from(["virtctl", "vol-create-as", "default", "a", "20000000E"])
            .unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
    }
}
