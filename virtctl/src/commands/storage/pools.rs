//! The `pool-*` commands but `pool-event`, as `tools/virsh-pool.c` has them.

use clap::Args;
use virtplane_proto::v1 as pb;

use super::sizes::pretty;
use super::view::Pool;
use super::xml_builders::{PoolSpec, pool_xml};
use super::{pool_by_name, pool_ref, report_pool, sort_like_virsh};
use crate::commands::network::print_xml;
use crate::commands::{Ctx, canonical_uuid, read_xml};
use crate::error::Error;
use crate::output::key_values;

/// The pool types virsh knows (`virStoragePoolType`), for `pool-list --type`.
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

/// One `--type` entry, checked as virsh checks it ("Invalid pool type").
fn parse_pool_type(s: &str) -> Result<String, String> {
    if POOL_TYPES.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "invalid pool type '{s}': use {}",
            POOL_TYPES.join(", ")
        ))
    }
}

/// A command that only names a pool.
#[derive(Debug, Args)]
pub struct PoolArg {
    /// Pool name or UUID
    #[arg(value_name = "POOL")]
    pub pool: String,
}

/// `pool-list`.
#[derive(Debug, Args)]
pub struct PoolListArgs {
    /// List inactive pools
    #[arg(long, conflicts_with = "all")]
    pub inactive: bool,
    /// List inactive & active pools
    #[arg(long)]
    pub all: bool,
    /// List transient pools
    #[arg(long)]
    pub transient: bool,
    /// List persistent pools
    #[arg(long)]
    pub persistent: bool,
    /// List pools with autostart enabled
    #[arg(long)]
    pub autostart: bool,
    /// List pools with autostart disabled
    #[arg(long)]
    pub no_autostart: bool,
    /// Only list pools of these types (comma-separated: dir,fs,...)
    #[arg(long = "type", value_name = "TYPES", value_delimiter = ',', value_parser = parse_pool_type)]
    pub types: Vec<String>,
    /// Display extended details for pools
    #[arg(long, conflicts_with_all = ["uuid", "name"])]
    pub details: bool,
    /// List UUIDs only
    #[arg(long)]
    pub uuid: bool,
    /// List names only
    #[arg(long)]
    pub name: bool,
}

/// `pool-info`.
#[derive(Debug, Args)]
pub struct PoolInfoArgs {
    /// Pool name or UUID
    #[arg(value_name = "POOL")]
    pub pool: String,
    /// Sizes in bytes rather than in pretty units
    #[arg(long)]
    pub bytes: bool,
}

/// `pool-dumpxml`.
#[derive(Debug, Args)]
pub struct PoolDumpxmlArgs {
    /// Pool name or UUID
    #[arg(value_name = "POOL")]
    pub pool: String,
    /// Show the inactive (persistent) definition
    #[arg(long)]
    pub inactive: bool,
}

/// `pool-define FILE`.
#[derive(Debug, Args)]
pub struct PoolFileArgs {
    /// File with the pool XML; '-' or /dev/stdin reads standard input
    #[arg(value_name = "FILE")]
    pub file: String,
}

/// virsh's `--build`, `--overwrite`, `--no-overwrite` of `pool-create` and `pool-start`.
#[derive(Debug, Args, Clone, Copy)]
pub struct BuildArgs {
    /// Build the pool's target first
    #[arg(long)]
    pub build: bool,
    /// Build, overwriting any existing data
    #[arg(long, conflicts_with = "no_overwrite")]
    pub overwrite: bool,
    /// Build, but do not overwrite any existing data
    #[arg(long)]
    pub no_overwrite: bool,
}

impl BuildArgs {
    /// The request's `(build, build_flags)`: as libvirt's CREATE_WITH_BUILD_(NO_)OVERWRITE,
    /// either overwrite flag implies a build.
    fn request(self) -> (bool, Option<pb::PoolBuildFlags>) {
        let build = self.build || self.overwrite || self.no_overwrite;
        let flags = pb::PoolBuildFlags {
            no_overwrite: self.no_overwrite,
            overwrite: self.overwrite,
        };
        (build, build.then_some(flags))
    }
}

/// `pool-create FILE`.
#[derive(Debug, Args)]
pub struct PoolCreateArgs {
    /// File with the pool XML; '-' or /dev/stdin reads standard input
    #[arg(value_name = "FILE")]
    pub file: String,
    #[command(flatten)]
    pub build: BuildArgs,
}

/// `pool-start POOL`.
#[derive(Debug, Args)]
pub struct PoolStartArgs {
    /// Pool name or UUID
    #[arg(value_name = "POOL")]
    pub pool: String,
    #[command(flatten)]
    pub build: BuildArgs,
}

/// `pool-build POOL`.
#[derive(Debug, Args)]
pub struct PoolBuildArgs {
    /// Pool name or UUID
    #[arg(value_name = "POOL")]
    pub pool: String,
    /// Do not overwrite any existing data
    #[arg(long)]
    pub no_overwrite: bool,
    /// Overwrite any existing data
    #[arg(long, conflicts_with = "no_overwrite")]
    pub overwrite: bool,
}

/// `pool-define-as NAME TYPE` and `pool-create-as NAME TYPE`: virsh's `VIRSH_COMMON_OPT_POOL_X_AS`
/// (the options that apply to the pool types virtplane drives or is likely to).
#[derive(Debug, Args)]
pub struct PoolAsArgs {
    /// Name of the pool
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Type of the pool (dir, fs, netfs, logical, ...)
    #[arg(value_name = "TYPE")]
    pub pool_type: String,
    /// Print the XML document, but don't define/create
    #[arg(long)]
    pub print_xml: bool,
    /// Source host for underlying storage
    #[arg(long, value_name = "HOST")]
    pub source_host: Option<String>,
    /// Source path for underlying storage
    #[arg(long, value_name = "PATH")]
    pub source_path: Option<String>,
    /// Source device for underlying storage
    #[arg(long, value_name = "DEV")]
    pub source_dev: Option<String>,
    /// Source name for underlying storage
    #[arg(long, value_name = "NAME")]
    pub source_name: Option<String>,
    /// Target for underlying storage (for a dir pool: the directory)
    #[arg(long, value_name = "PATH")]
    pub target: Option<String>,
    /// Format for underlying storage
    #[arg(long, value_name = "FORMAT")]
    pub source_format: Option<String>,
    /// Initiator IQN for underlying storage
    #[arg(long, value_name = "IQN")]
    pub source_initiator: Option<String>,
    /// nfsvers value for an NFS pool's mount option
    #[arg(long, value_name = "VER")]
    pub source_protocol_ver: Option<String>,
}

impl PoolAsArgs {
    pub fn spec(&self) -> PoolSpec {
        PoolSpec {
            name: self.name.clone(),
            pool_type: self.pool_type.clone(),
            source_host: self.source_host.clone(),
            source_path: self.source_path.clone(),
            source_dev: self.source_dev.clone(),
            source_initiator: self.source_initiator.clone(),
            source_format: self.source_format.clone(),
            source_name: self.source_name.clone(),
            source_protocol_ver: self.source_protocol_ver.clone(),
            target: self.target.clone(),
        }
    }
}

/// `pool-create-as NAME TYPE`.
#[derive(Debug, Args)]
pub struct PoolCreateAsArgs {
    #[command(flatten)]
    pub pool: PoolAsArgs,
    #[command(flatten)]
    pub build: BuildArgs,
}

/// `pool-autostart POOL`.
#[derive(Debug, Args)]
pub struct PoolAutostartArgs {
    /// Pool name or UUID
    #[arg(value_name = "POOL")]
    pub pool: String,
    /// Disable autostarting
    #[arg(long)]
    pub disable: bool,
}

/// `pool-name UUID`.
#[derive(Debug, Args)]
pub struct PoolNameArgs {
    /// Pool UUID
    #[arg(value_name = "UUID")]
    pub uuid: String,
}

/// The ListPools filters for virsh's `pool-list` flags: active only by default, `--inactive`
/// switches to inactive only, `--all` lifts the activity filter.
pub fn list_request(a: &PoolListArgs) -> pb::ListPoolsRequest {
    let (active, inactive) = if a.all {
        (false, false)
    } else if a.inactive {
        (false, true)
    } else {
        (true, false)
    };
    pb::ListPoolsRequest {
        active,
        inactive,
        persistent: a.persistent,
        transient: a.transient,
        autostart: a.autostart,
        no_autostart: a.no_autostart,
        types: a.types.clone(),
    }
}

pub async fn pool_list(ctx: &mut Ctx, a: PoolListArgs) -> Result<(), Error> {
    let mut client = ctx.conn.storage();
    let resp = ctx
        .conn
        .unary(client.list_pools(ctx.conn.request(list_request(&a))))
        .await?;
    let mut pools: Vec<Pool> = resp.pools.iter().map(Pool::from_proto).collect();
    sort_like_virsh(&mut pools, |p| &p.name);
    if !ctx.out.is_table() {
        return ctx.out.data(&pools);
    }
    ctx.out.raw(&render_list(&a, &pools))
}

/// virsh's pool-list output for the given flags.
pub fn render_list(a: &PoolListArgs, pools: &[Pool]) -> String {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    if a.uuid || a.name {
        // virsh: `"%-36s%c"` for the UUID (a blank before the name, else a newline), and
        // `"%-20s\n"` for the name, trailing blanks included.
        let mut out = String::new();
        for p in pools {
            if a.uuid {
                out.push_str(&format!(
                    "{:<36}{}",
                    p.uuid,
                    if a.name { ' ' } else { '\n' }
                ));
            }
            if a.name {
                out.push_str(&format!("{:<20}\n", p.name));
            }
        }
        return out;
    }
    if !a.details {
        let rows: Vec<Vec<String>> = pools
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    match (p.node_unreachable, p.active()) {
                        (true, _) => crate::fleet_view::UNREACHABLE,
                        (false, true) => "active",
                        (false, false) => "inactive",
                    }
                    .to_string(),
                    yes_no(p.autostart),
                ]
            })
            .collect();
        let nodes: Vec<Option<String>> = pools.iter().map(|p| p.node.clone()).collect();
        return crate::fleet_view::table_with_nodes(&["Name", "State", "Autostart"], rows, &nodes);
    }
    let rows: Vec<Vec<String>> = pools
        .iter()
        .map(|p| {
            let size = |v: u64| {
                if p.has_sizes() {
                    pretty(v)
                } else {
                    "-".to_string()
                }
            };
            vec![
                p.name.clone(),
                if p.node_unreachable {
                    crate::fleet_view::UNREACHABLE
                } else {
                    p.state
                }
                .to_string(),
                yes_no(p.autostart),
                yes_no(p.persistent),
                size(p.capacity),
                size(p.allocation),
                size(p.available),
            ]
        })
        .collect();
    let nodes: Vec<Option<String>> = pools.iter().map(|p| p.node.clone()).collect();
    crate::fleet_view::table_with_nodes(
        &[
            "Name",
            "State",
            "Autostart",
            "Persistent",
            "Capacity",
            "Allocation",
            "Available",
        ],
        rows,
        &nodes,
    )
}

pub async fn pool_info(ctx: &mut Ctx, a: PoolInfoArgs) -> Result<(), Error> {
    let mut client = ctx.conn.storage();
    let req = pb::GetPoolInfoRequest {
        pool: pool_ref(&a.pool),
    };
    let resp = ctx
        .conn
        .unary(client.get_pool_info(ctx.conn.request(req)))
        .await?;
    let pool = Pool::from_proto(&resp.pool.unwrap_or_default());
    if !ctx.out.is_table() {
        return ctx.out.data(&pool);
    }
    ctx.out.raw(&render_info(&pool, a.bytes))
}

/// virsh's pool-info lines (`%-15s %s`); sizes only for a running or degraded pool, as
/// `%2.2lf %s` or with `--bytes` as `%llu`.
pub fn render_info(p: &Pool, bytes: bool) -> String {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let mut pairs = vec![
        ("Name:", p.name.clone()),
        ("UUID:", p.uuid.clone()),
        ("State:", p.state.to_string()),
        ("Persistent:", yes_no(p.persistent)),
        ("Autostart:", yes_no(p.autostart)),
    ];
    if p.has_sizes() {
        let size = |v: u64| if bytes { v.to_string() } else { pretty(v) };
        pairs.push(("Capacity:", size(p.capacity)));
        pairs.push(("Allocation:", size(p.allocation)));
        pairs.push(("Available:", size(p.available)));
    }
    key_values(15, &pairs)
}

pub async fn pool_dumpxml(ctx: &mut Ctx, a: PoolDumpxmlArgs) -> Result<(), Error> {
    let mut client = ctx.conn.storage();
    let req = pb::GetPoolXmlRequest {
        pool: pool_ref(&a.pool),
        inactive: a.inactive,
    };
    let resp = ctx
        .conn
        .unary(client.get_pool_xml(ctx.conn.request(req)))
        .await?;
    print_xml(ctx, resp.xml)
}

/// Prints the pool a define or create returned, or virsh's line.
fn print_pool(
    ctx: &mut Ctx,
    pool: Option<pb::StoragePoolSummary>,
    line: impl Fn(&Pool) -> String,
) -> Result<(), Error> {
    let pool = Pool::from_proto(&pool.unwrap_or_default());
    if !ctx.out.is_table() {
        return ctx.out.data(&pool);
    }
    ctx.out.line(line(&pool))
}

pub async fn pool_define(ctx: &mut Ctx, a: PoolFileArgs) -> Result<(), Error> {
    let xml = read_xml(&a.file)?;
    let mut client = ctx.conn.storage();
    let resp = ctx
        .conn
        .unary(client.define_pool(ctx.conn.request(pb::DefinePoolRequest { xml })))
        .await?;
    print_pool(ctx, resp.pool, |p| {
        format!("Pool {} defined from {}", p.name, a.file)
    })
}

pub async fn pool_define_as(ctx: &mut Ctx, a: PoolAsArgs) -> Result<(), Error> {
    let xml = pool_xml(&a.spec());
    if a.print_xml {
        return print_xml(ctx, xml);
    }
    let mut client = ctx.conn.storage();
    let resp = ctx
        .conn
        .unary(client.define_pool(ctx.conn.request(pb::DefinePoolRequest { xml })))
        .await?;
    print_pool(ctx, resp.pool, |_| format!("Pool {} defined", a.name))
}

pub async fn pool_create(ctx: &mut Ctx, a: PoolCreateArgs) -> Result<(), Error> {
    let xml = read_xml(&a.file)?;
    let (build, build_flags) = a.build.request();
    let mut client = ctx.conn.storage();
    let req = pb::CreatePoolRequest {
        xml,
        build,
        build_flags,
    };
    let resp = ctx
        .conn
        .unary(client.create_pool(ctx.conn.request(req)))
        .await?;
    print_pool(ctx, resp.pool, |p| {
        format!("Pool {} created from {}", p.name, a.file)
    })
}

pub async fn pool_create_as(ctx: &mut Ctx, a: PoolCreateAsArgs) -> Result<(), Error> {
    let xml = pool_xml(&a.pool.spec());
    if a.pool.print_xml {
        return print_xml(ctx, xml);
    }
    let (build, build_flags) = a.build.request();
    let mut client = ctx.conn.storage();
    let req = pb::CreatePoolRequest {
        xml,
        build,
        build_flags,
    };
    let resp = ctx
        .conn
        .unary(client.create_pool(ctx.conn.request(req)))
        .await?;
    print_pool(ctx, resp.pool, |_| format!("Pool {} created", a.pool.name))
}

pub async fn pool_build(ctx: &mut Ctx, a: PoolBuildArgs) -> Result<(), Error> {
    let mut client = ctx.conn.storage();
    let req = pb::BuildPoolRequest {
        pool: pool_ref(&a.pool),
        flags: Some(pb::PoolBuildFlags {
            no_overwrite: a.no_overwrite,
            overwrite: a.overwrite,
        }),
    };
    ctx.conn
        .unary(client.build_pool(ctx.conn.request(req)))
        .await?;
    let message = format!("Pool {} built", a.pool);
    report_pool(ctx, &a.pool, "built", message)
}

pub async fn pool_start(ctx: &mut Ctx, a: PoolStartArgs) -> Result<(), Error> {
    let (build, build_flags) = a.build.request();
    let mut client = ctx.conn.storage();
    let req = pb::StartPoolRequest {
        pool: pool_ref(&a.pool),
        build,
        build_flags,
    };
    let resp = ctx
        .conn
        .unary(client.start_pool(ctx.conn.request(req)))
        .await?;
    print_pool(ctx, resp.pool, |_| format!("Pool {} started", a.pool))
}

pub async fn pool_destroy(ctx: &mut Ctx, a: PoolArg) -> Result<(), Error> {
    let mut client = ctx.conn.storage();
    let req = pb::DestroyPoolRequest {
        pool: pool_ref(&a.pool),
    };
    ctx.conn
        .unary(client.destroy_pool(ctx.conn.request(req)))
        .await?;
    let message = format!("Pool {} destroyed", a.pool);
    report_pool(ctx, &a.pool, "destroyed", message)
}

pub async fn pool_delete(ctx: &mut Ctx, a: PoolArg) -> Result<(), Error> {
    let mut client = ctx.conn.storage();
    let req = pb::DeletePoolRequest {
        pool: pool_ref(&a.pool),
    };
    ctx.conn
        .unary(client.delete_pool(ctx.conn.request(req)))
        .await?;
    let message = format!("Pool {} deleted", a.pool);
    report_pool(ctx, &a.pool, "deleted", message)
}

pub async fn pool_undefine(ctx: &mut Ctx, a: PoolArg) -> Result<(), Error> {
    let mut client = ctx.conn.storage();
    let req = pb::UndefinePoolRequest {
        pool: pool_ref(&a.pool),
    };
    ctx.conn
        .unary(client.undefine_pool(ctx.conn.request(req)))
        .await?;
    let message = format!("Pool {} has been undefined", a.pool);
    report_pool(ctx, &a.pool, "undefined", message)
}

pub async fn pool_refresh(ctx: &mut Ctx, a: PoolArg) -> Result<(), Error> {
    let mut client = ctx.conn.storage();
    let req = pb::RefreshPoolRequest {
        pool: pool_ref(&a.pool),
    };
    ctx.conn
        .unary(client.refresh_pool(ctx.conn.request(req)))
        .await?;
    let message = format!("Pool {} refreshed", a.pool);
    report_pool(ctx, &a.pool, "refreshed", message)
}

pub async fn pool_autostart(ctx: &mut Ctx, a: PoolAutostartArgs) -> Result<(), Error> {
    let mut client = ctx.conn.storage();
    let req = pb::SetPoolAutostartRequest {
        pool: pool_ref(&a.pool),
        autostart: !a.disable,
    };
    ctx.conn
        .unary(client.set_pool_autostart(ctx.conn.request(req)))
        .await?;
    if a.disable {
        let message = format!("Pool {} unmarked as autostarted", a.pool);
        report_pool(ctx, &a.pool, "autostart_disabled", message)
    } else {
        let message = format!("Pool {} marked as autostarted", a.pool);
        report_pool(ctx, &a.pool, "autostart_enabled", message)
    }
}

async fn lookup(ctx: &Ctx, pool: Option<pb::StoragePoolRef>) -> Result<Pool, Error> {
    let mut client = ctx.conn.storage();
    let req = pb::LookupPoolRequest { pool };
    let resp = ctx
        .conn
        .unary(client.lookup_pool(ctx.conn.request(req)))
        .await?;
    Ok(Pool::from_proto(&resp.pool.unwrap_or_default()))
}

/// `pool-uuid POOL`: virsh looks the pool up by name only.
pub async fn pool_uuid(ctx: &mut Ctx, a: PoolArg) -> Result<(), Error> {
    let pool = lookup(ctx, pool_by_name(&a.pool)).await?;
    if !ctx.out.is_table() {
        return ctx.out.data(&pool);
    }
    ctx.out.line(pool.uuid)
}

/// `pool-name UUID`: virsh looks the pool up by UUID only.
pub async fn pool_name(ctx: &mut Ctx, a: PoolNameArgs) -> Result<(), Error> {
    let uuid = canonical_uuid(&a.uuid)
        .ok_or_else(|| Error::Other(format!("'{}' is not a pool UUID", a.uuid)))?;
    let reference = pb::StoragePoolRef {
        id: Some(pb::storage_pool_ref::Id::Uuid(uuid)),
    };
    let pool = lookup(ctx, Some(reference)).await?;
    if !ctx.out.is_table() {
        return ctx.out.data(&pool);
    }
    ctx.out.line(pool.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn list_args(args: &[&str]) -> PoolListArgs {
        let argv = ["virtctl", "pool-list"]
            .into_iter()
            .chain(args.iter().copied());
        match Cli::try_parse_from(argv).unwrap().command {
            Command::PoolList(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn pool(name: &str, state: &'static str, autostart: bool, persistent: bool) -> Pool {
        Pool {
            name: name.into(),
            uuid: format!("{name:0>8}-0000-4000-8000-000000000000"),
            state,
            persistent,
            autostart,
            pool_type: "dir".into(),
            capacity: 10 << 30,
            allocation: 1 << 30,
            available: 9 << 30,
            node: None,
            node_unreachable: false,
        }
    }

    #[test]
    fn list_filters_like_virsh() {
        let r = list_request(&list_args(&[]));
        assert!(r.active && !r.inactive);
        let r = list_request(&list_args(&["--inactive"]));
        assert!(!r.active && r.inactive);
        let r = list_request(&list_args(&["--all", "--type", "dir,fs", "--autostart"]));
        assert!(!r.active && !r.inactive && r.autostart);
        assert_eq!(r.types, ["dir", "fs"]);
        let err =
            Cli::try_parse_from(["virtctl", "pool-list", "--type", "dir,floppy"]).unwrap_err();
        assert!(
            err.to_string().contains("invalid pool type 'floppy'"),
            "{err}"
        );
        // virsh: --all and --inactive, --details and --uuid/--name exclude each other.
        for bad in [
            &["--all", "--inactive"][..],
            &["--details", "--uuid"],
            &["--details", "--name"],
        ] {
            let argv = ["virtctl", "pool-list"]
                .into_iter()
                .chain(bad.iter().copied());
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn short_list_like_virsh() {
        let pools = [
            pool("default", "running", true, true),
            pool("images", "inactive", false, true),
        ];
        assert_eq!(
            render_list(&list_args(&["--all"]), &pools),
            " Name      State      Autostart\n\
             ---------------------------------\n \
             default   active     yes\n \
             images    inactive   no\n"
        );
    }

    #[test]
    fn names_and_uuids_padded_like_virsh() {
        let pools = [pool("default", "running", true, true)];
        assert_eq!(
            render_list(&list_args(&["--name"]), &pools),
            "default             \n"
        );
        assert_eq!(
            render_list(&list_args(&["--uuid"]), &pools),
            "0default-0000-4000-8000-000000000000\n"
        );
        assert_eq!(
            render_list(&list_args(&["--uuid", "--name"]), &pools),
            "0default-0000-4000-8000-000000000000 default             \n"
        );
    }

    #[test]
    fn info_of_an_inactive_pool_has_no_sizes() {
        let p = pool("images", "inactive", false, false);
        assert_eq!(
            render_info(&p, false),
            "Name:           images\n\
             UUID:           00images-0000-4000-8000-000000000000\n\
             State:          inactive\n\
             Persistent:     no\n\
             Autostart:      no\n"
        );
        let running = pool("default", "running", true, true);
        assert!(render_info(&running, true).ends_with(
            "Capacity:       10737418240\nAllocation:     1073741824\nAvailable:      9663676416\n"
        ));
    }

    #[test]
    fn build_flags_imply_build() {
        let b = |build, overwrite, no_overwrite| BuildArgs {
            build,
            overwrite,
            no_overwrite,
        };
        assert_eq!(b(false, false, false).request(), (false, None));
        let (build, flags) = b(false, true, false).request();
        assert!(build && flags.unwrap().overwrite);
        let (build, flags) = b(true, false, true).request();
        assert!(build && flags.unwrap().no_overwrite);
    }
}
