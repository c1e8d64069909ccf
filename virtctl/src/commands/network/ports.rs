//! `net-port-list`, `net-port-create`, `net-port-dumpxml`, `net-port-delete`: virsh's
//! network port commands.

use clap::Args;
use virtplane_proto::v1 as pb;

use super::view::Port;
use super::{Ctx, network_ref, print_xml, report};
use crate::commands::read_xml;
use crate::error::Error;
use crate::output::virsh_table;

#[derive(Debug, Args)]
pub struct NetPortListArgs {
    /// Network name or UUID
    #[arg(value_name = "NETWORK")]
    pub network: String,
    /// List UUIDs only
    #[arg(long, conflicts_with = "table")]
    pub uuid: bool,
    /// List table (default)
    #[arg(long)]
    pub table: bool,
}

#[derive(Debug, Args)]
pub struct NetPortCreateArgs {
    /// Network name or UUID
    #[arg(value_name = "NETWORK")]
    pub network: String,
    /// File with the <networkport> XML; '-' or /dev/stdin reads standard input
    #[arg(value_name = "FILE")]
    pub file: String,
}

#[derive(Debug, Args)]
pub struct NetPortArgs {
    /// Network name or UUID
    #[arg(value_name = "NETWORK")]
    pub network: String,
    /// Port UUID
    #[arg(value_name = "PORT")]
    pub port: String,
}

pub async fn net_port_list(ctx: &mut Ctx, a: NetPortListArgs) -> Result<(), Error> {
    let mut client = ctx.conn.networks();
    let req = pb::ListNetworkPortsRequest {
        network: network_ref(&a.network),
    };
    let resp = ctx
        .conn
        .unary(client.list_ports(ctx.conn.request(req)))
        .await?;
    let ports: Vec<Port> = resp.ports.iter().map(Port::from_proto).collect();
    if !ctx.out.is_table() {
        return ctx.out.data(&ports);
    }
    ctx.out.raw(&render_list(a.uuid, &ports))
}

/// virsh's port list: a table with one UUID column, or bare UUIDs.
pub fn render_list(uuid_only: bool, ports: &[Port]) -> String {
    if uuid_only {
        return ports.iter().map(|p| format!("{}\n", p.uuid)).collect();
    }
    let rows: Vec<Vec<String>> = ports.iter().map(|p| vec![p.uuid.clone()]).collect();
    virsh_table(&["UUID"], &rows)
}

pub async fn net_port_create(ctx: &mut Ctx, a: NetPortCreateArgs) -> Result<(), Error> {
    let xml = read_xml(&a.file)?;
    let mut client = ctx.conn.networks();
    let req = pb::CreateNetworkPortRequest {
        network: network_ref(&a.network),
        xml,
        ..Default::default()
    };
    let resp = ctx
        .conn
        .unary(client.create_port(ctx.conn.request(req)))
        .await?;
    let port = Port::from_proto(&resp.port.unwrap_or_default());
    if !ctx.out.is_table() {
        return ctx.out.data(&port);
    }
    ctx.out.line(format!(
        "Network port {} created from {}",
        port.uuid, a.file
    ))
}

pub async fn net_port_dumpxml(ctx: &mut Ctx, a: NetPortArgs) -> Result<(), Error> {
    let mut client = ctx.conn.networks();
    let req = pb::GetNetworkPortXmlRequest {
        network: network_ref(&a.network),
        port_uuid: a.port,
    };
    let resp = ctx
        .conn
        .unary(client.get_port_xml(ctx.conn.request(req)))
        .await?;
    print_xml(ctx, resp.xml)
}

pub async fn net_port_delete(ctx: &mut Ctx, a: NetPortArgs) -> Result<(), Error> {
    let mut client = ctx.conn.networks();
    let req = pb::DeleteNetworkPortRequest {
        network: network_ref(&a.network),
        port_uuid: a.port.clone(),
    };
    ctx.conn
        .unary(client.delete_port(ctx.conn.request(req)))
        .await?;
    let message = format!("Network port {} deleted", a.port);
    report(ctx, &a.network, "port_deleted", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_like_virsh() {
        let port = Port {
            uuid: "7b1c7a30-5c1e-4a52-9b8a-0d5d0f0e9a11".into(),
            network: "default".into(),
            owner_name: "vm".into(),
            owner_uuid: "u".into(),
            mac: "52:54:00:00:00:01".into(),
            bridge: Some("virbr0".into()),
        };
        assert_eq!(
            render_list(false, std::slice::from_ref(&port)),
            " UUID\n\
             ---------------------------------------\n \
             7b1c7a30-5c1e-4a52-9b8a-0d5d0f0e9a11\n"
        );
        assert_eq!(
            render_list(true, &[port]),
            "7b1c7a30-5c1e-4a52-9b8a-0d5d0f0e9a11\n"
        );
    }
}
