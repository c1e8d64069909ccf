//! The `net-*` commands: virsh's network commands (`tools/virsh-network.c`) over
//! NetworkService, with virsh's output. This file: list, info, XML, define/create,
//! start/destroy/undefine, autostart, uuid/name; `update.rs`, `leases.rs`, `ports.rs` and
//! `events.rs` the rest.

pub mod events;
pub mod leases;
pub mod ports;
pub mod update;
pub mod view;

use clap::Args;
use virtplane_proto::v1 as pb;

use super::{Ctx, canonical_uuid, read_xml};
use crate::error::Error;
use crate::output::key_values;
use view::{Network, NetworkAction, NetworkInfo};

/// A network argument as virsh reads it: a UUID if it parses as one, else a name.
pub fn network_ref(arg: &str) -> Option<pb::NetworkRef> {
    let id = match canonical_uuid(arg) {
        Some(uuid) => pb::network_ref::Id::Uuid(uuid),
        None => pb::network_ref::Id::Name(arg.to_string()),
    };
    Some(pb::NetworkRef { id: Some(id) })
}

/// A command that only names a network.
#[derive(Debug, Args)]
pub struct NetworkArg {
    /// Network name or UUID
    #[arg(value_name = "NETWORK")]
    pub network: String,
}

/// `net-list`.
#[derive(Debug, Args)]
pub struct NetListArgs {
    /// List inactive networks
    #[arg(long)]
    pub inactive: bool,
    /// List inactive & active networks
    #[arg(long)]
    pub all: bool,
    /// List persistent networks
    #[arg(long)]
    pub persistent: bool,
    /// List transient networks
    #[arg(long)]
    pub transient: bool,
    /// List networks with autostart enabled
    #[arg(long)]
    pub autostart: bool,
    /// List networks with autostart disabled
    #[arg(long)]
    pub no_autostart: bool,
    /// List UUIDs only
    #[arg(long, conflicts_with_all = ["name", "table"])]
    pub uuid: bool,
    /// List network names only
    #[arg(long, conflicts_with = "table")]
    pub name: bool,
    /// List table (default)
    #[arg(long)]
    pub table: bool,
}

/// `net-dumpxml`.
#[derive(Debug, Args)]
pub struct NetDumpxmlArgs {
    /// Network name or UUID
    #[arg(value_name = "NETWORK")]
    pub network: String,
    /// Show the inactive (persistent) definition
    #[arg(long)]
    pub inactive: bool,
}

/// `net-define FILE` and `net-create FILE`.
#[derive(Debug, Args)]
pub struct NetFileArgs {
    /// File with the network XML; '-' or /dev/stdin reads standard input
    #[arg(value_name = "FILE")]
    pub file: String,
}

/// `net-autostart`.
#[derive(Debug, Args)]
pub struct NetAutostartArgs {
    /// Network name or UUID
    #[arg(value_name = "NETWORK")]
    pub network: String,
    /// Disable autostarting
    #[arg(long)]
    pub disable: bool,
}

/// `net-name UUID`.
#[derive(Debug, Args)]
pub struct NetNameArgs {
    /// Network UUID
    #[arg(value_name = "UUID")]
    pub uuid: String,
}

/// The ListNetworks filters for virsh's `net-list` flags: active only by default,
/// `--inactive` switches to inactive only, `--all` lifts the activity filter.
pub fn list_request(a: &NetListArgs) -> pb::ListNetworksRequest {
    let (active, inactive) = if a.all {
        (false, false)
    } else if a.inactive {
        (false, true)
    } else {
        (true, false)
    };
    pb::ListNetworksRequest {
        active,
        inactive,
        persistent: a.persistent,
        transient: a.transient,
        autostart: a.autostart,
        no_autostart: a.no_autostart,
    }
}

pub async fn net_list(ctx: &mut Ctx, a: NetListArgs) -> Result<(), Error> {
    let mut client = ctx.conn.networks();
    let resp = ctx
        .conn
        .unary(client.list(ctx.conn.request(list_request(&a))))
        .await?;
    let networks: Vec<Network> = resp.networks.iter().map(Network::from_proto).collect();
    if !ctx.out.is_table() {
        return ctx.out.data(&networks);
    }
    ctx.out.raw(&render_list(&a, &networks))
}

/// virsh's net-list output for the given flags.
pub fn render_list(a: &NetListArgs, networks: &[Network]) -> String {
    if a.uuid || a.name {
        return networks
            .iter()
            .map(|n| format!("{}\n", if a.uuid { &n.uuid } else { &n.name }))
            .collect();
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let rows: Vec<Vec<String>> = networks
        .iter()
        .map(|n| {
            vec![
                n.name.clone(),
                match (n.node_unreachable, n.active) {
                    (true, _) => crate::fleet_view::UNREACHABLE,
                    (false, true) => "active",
                    (false, false) => "inactive",
                }
                .to_string(),
                yes_no(n.autostart),
                yes_no(n.persistent),
            ]
        })
        .collect();
    let nodes: Vec<Option<String>> = networks.iter().map(|n| n.node.clone()).collect();
    crate::fleet_view::table_with_nodes(&["Name", "State", "Autostart", "Persistent"], rows, &nodes)
}

async fn get_info(ctx: &Ctx, network: &str) -> Result<pb::GetNetworkInfoResponse, Error> {
    let mut client = ctx.conn.networks();
    let req = pb::GetNetworkInfoRequest {
        network: network_ref(network),
    };
    ctx.conn.unary(client.get_info(ctx.conn.request(req))).await
}

pub async fn net_info(ctx: &mut Ctx, a: NetworkArg) -> Result<(), Error> {
    let info = NetworkInfo::from_proto(&get_info(ctx, &a.network).await?);
    if !ctx.out.is_table() {
        return ctx.out.data(&info);
    }
    ctx.out.raw(&render_info(&info))
}

/// virsh's net-info lines (`%-15s %s`), then a line per host conflict the service sees.
pub fn render_info(i: &NetworkInfo) -> String {
    let n = &i.network;
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let mut pairs = vec![
        ("Name:", n.name.clone()),
        ("UUID:", n.uuid.clone()),
        ("Active:", yes_no(n.active)),
        ("Persistent:", yes_no(n.persistent)),
        ("Autostart:", yes_no(n.autostart)),
    ];
    if let Some(bridge) = &n.bridge {
        pairs.push(("Bridge:", bridge.clone()));
    }
    for warning in &i.warnings {
        pairs.push(("Warning:", warning.clone()));
    }
    key_values(15, &pairs)
}

pub async fn net_dumpxml(ctx: &mut Ctx, a: NetDumpxmlArgs) -> Result<(), Error> {
    let mut client = ctx.conn.networks();
    let req = pb::GetNetworkXmlRequest {
        network: network_ref(&a.network),
        inactive: a.inactive,
    };
    let resp = ctx
        .conn
        .unary(client.get_xml(ctx.conn.request(req)))
        .await?;
    print_xml(ctx, resp.xml)
}

/// Prints an XML document (or, with `-o json|yaml`, `{xml: …}`), newline-terminated.
pub fn print_xml(ctx: &mut Ctx, xml: String) -> Result<(), Error> {
    if !ctx.out.is_table() {
        return ctx.out.data(&crate::view::Xml { xml });
    }
    ctx.out.raw(&xml)?;
    if !xml.ends_with('\n') {
        ctx.out.raw("\n")?;
    }
    Ok(())
}

pub async fn net_define(ctx: &mut Ctx, a: NetFileArgs) -> Result<(), Error> {
    let xml = read_xml(&a.file)?;
    let mut client = ctx.conn.networks();
    let resp = ctx
        .conn
        .unary(client.define(ctx.conn.request(pb::DefineNetworkRequest { xml })))
        .await?;
    let network = Network::from_proto(&resp.network.unwrap_or_default());
    if !ctx.out.is_table() {
        return ctx.out.data(&network);
    }
    ctx.out
        .line(format!("Network {} defined from {}", network.name, a.file))
}

pub async fn net_create(ctx: &mut Ctx, a: NetFileArgs) -> Result<(), Error> {
    let xml = read_xml(&a.file)?;
    let mut client = ctx.conn.networks();
    let resp = ctx
        .conn
        .unary(client.create(ctx.conn.request(pb::CreateNetworkRequest { xml })))
        .await?;
    let network = Network::from_proto(&resp.network.unwrap_or_default());
    if !ctx.out.is_table() {
        return ctx.out.data(&network);
    }
    ctx.out
        .line(format!("Network {} created from {}", network.name, a.file))
}

/// Prints virsh's success line, or with `-o json|yaml` the same fact as data.
pub fn report(
    ctx: &mut Ctx,
    network: &str,
    result: &'static str,
    message: String,
) -> Result<(), Error> {
    if ctx.out.is_table() {
        ctx.out.line(message)
    } else {
        ctx.out.data(&NetworkAction {
            network: network.to_string(),
            result,
        })
    }
}

pub async fn net_start(ctx: &mut Ctx, a: NetworkArg) -> Result<(), Error> {
    let mut client = ctx.conn.networks();
    let req = pb::StartNetworkRequest {
        network: network_ref(&a.network),
    };
    let resp = ctx.conn.unary(client.start(ctx.conn.request(req))).await?;
    let network = Network::from_proto(&resp.network.unwrap_or_default());
    if !ctx.out.is_table() {
        return ctx.out.data(&network);
    }
    ctx.out.line(format!("Network {} started", a.network))
}

pub async fn net_destroy(ctx: &mut Ctx, a: NetworkArg) -> Result<(), Error> {
    let mut client = ctx.conn.networks();
    let req = pb::DestroyNetworkRequest {
        network: network_ref(&a.network),
    };
    ctx.conn
        .unary(client.destroy(ctx.conn.request(req)))
        .await?;
    let message = format!("Network {} destroyed", a.network);
    report(ctx, &a.network, "destroyed", message)
}

pub async fn net_undefine(ctx: &mut Ctx, a: NetworkArg) -> Result<(), Error> {
    let mut client = ctx.conn.networks();
    let req = pb::UndefineNetworkRequest {
        network: network_ref(&a.network),
    };
    ctx.conn
        .unary(client.undefine(ctx.conn.request(req)))
        .await?;
    let message = format!("Network {} has been undefined", a.network);
    report(ctx, &a.network, "undefined", message)
}

pub async fn net_autostart(ctx: &mut Ctx, a: NetAutostartArgs) -> Result<(), Error> {
    let mut client = ctx.conn.networks();
    let req = pb::SetNetworkAutostartRequest {
        network: network_ref(&a.network),
        autostart: !a.disable,
    };
    ctx.conn
        .unary(client.set_autostart(ctx.conn.request(req)))
        .await?;
    if a.disable {
        let message = format!("Network {} unmarked as autostarted", a.network);
        report(ctx, &a.network, "autostart_disabled", message)
    } else {
        let message = format!("Network {} marked as autostarted", a.network);
        report(ctx, &a.network, "autostart_enabled", message)
    }
}

async fn lookup(ctx: &Ctx, network: Option<pb::NetworkRef>) -> Result<Network, Error> {
    let mut client = ctx.conn.networks();
    let req = pb::LookupNetworkRequest { network };
    let resp = ctx.conn.unary(client.lookup(ctx.conn.request(req))).await?;
    Ok(Network::from_proto(&resp.network.unwrap_or_default()))
}

pub async fn net_uuid(ctx: &mut Ctx, a: NetworkArg) -> Result<(), Error> {
    let network = lookup(ctx, network_ref(&a.network)).await?;
    if !ctx.out.is_table() {
        return ctx.out.data(&network);
    }
    ctx.out.line(network.uuid)
}

pub async fn net_name(ctx: &mut Ctx, a: NetNameArgs) -> Result<(), Error> {
    let uuid = canonical_uuid(&a.uuid)
        .ok_or_else(|| Error::Other(format!("'{}' is not a network UUID", a.uuid)))?;
    let reference = pb::NetworkRef {
        id: Some(pb::network_ref::Id::Uuid(uuid)),
    };
    let network = lookup(ctx, Some(reference)).await?;
    if !ctx.out.is_table() {
        return ctx.out.data(&network);
    }
    ctx.out.line(network.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn list_args(args: &[&str]) -> NetListArgs {
        let argv = ["virtctl", "net-list"]
            .into_iter()
            .chain(args.iter().copied());
        match Cli::try_parse_from(argv).unwrap().command {
            Command::NetList(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn net(name: &str, active: bool, autostart: bool, persistent: bool) -> Network {
        Network {
            name: name.into(),
            uuid: format!("uuid-{name}"),
            active,
            persistent,
            autostart,
            bridge: Some("virbr0".into()),
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
        let r = list_request(&list_args(&["--all", "--inactive"]));
        assert!(!r.active && !r.inactive);
        let r = list_request(&list_args(&[
            "--all",
            "--persistent",
            "--transient",
            "--autostart",
            "--no-autostart",
        ]));
        assert_eq!(
            r,
            pb::ListNetworksRequest {
                active: false,
                inactive: false,
                persistent: true,
                transient: true,
                autostart: true,
                no_autostart: true,
            }
        );
        assert!(
            Cli::try_parse_from(["virtctl", "net-list", "--uuid", "--name"]).is_err(),
            "virsh: only one of --table, --name and --uuid"
        );
    }

    #[test]
    fn list_table_like_virsh() {
        let nets = [
            net("default", true, true, true),
            net("isolated", false, false, true),
        ];
        assert_eq!(
            render_list(&list_args(&["--all"]), &nets),
            " Name       State      Autostart   Persistent\n\
             -----------------------------------------------\n \
             default    active     yes         yes\n \
             isolated   inactive   no          yes\n"
        );
        assert_eq!(
            render_list(&list_args(&["--name"]), &nets),
            "default\nisolated\n"
        );
        assert_eq!(
            render_list(&list_args(&["--uuid"]), &nets),
            "uuid-default\nuuid-isolated\n"
        );
    }

    #[test]
    fn info_like_virsh() {
        let info = NetworkInfo {
            network: net("default", true, true, true),
            warnings: vec!["table inet filter drops forwarded packets".into()],
        };
        assert_eq!(
            render_info(&info),
            "Name:           default\n\
             UUID:           uuid-default\n\
             Active:         yes\n\
             Persistent:     yes\n\
             Autostart:      yes\n\
             Bridge:         virbr0\n\
             Warning:        table inet filter drops forwarded packets\n"
        );
    }
}
