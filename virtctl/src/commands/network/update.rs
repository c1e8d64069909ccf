//! `net-update NETWORK COMMAND SECTION XML [--parent-index N] [--live] [--config]
//! [--current]`, virsh's cmdNetworkUpdate: the XML argument is the element itself when it
//! starts with '<', else the name of a file holding it.

use clap::Args;
use virtplane_proto::v1 as pb;

use super::view::Updated;
use super::{Ctx, network_ref};
use crate::commands::read_xml;
use crate::error::Error;

#[derive(Debug, Args)]
pub struct NetUpdateArgs {
    /// Network name or UUID
    #[arg(value_name = "NETWORK")]
    pub network: String,
    /// Type of update: add-first, add-last (add), delete, or modify
    #[arg(value_name = "COMMAND")]
    pub command: String,
    /// Which section of the network configuration to update: bridge, domain, ip,
    /// ip-dhcp-host, ip-dhcp-range, forward, forward-interface, forward-pf, portgroup,
    /// dns-host, dns-txt, dns-srv
    #[arg(value_name = "SECTION")]
    pub section: String,
    /// The XML element, or (if it does not start with '<') a file holding it
    #[arg(value_name = "XML")]
    pub xml: String,
    /// Which parent object to search through (the <ip> by position)
    #[arg(long, value_name = "N")]
    pub parent_index: Option<u32>,
    /// Affect next network startup
    #[arg(long)]
    pub config: bool,
    /// Affect running network
    #[arg(long)]
    pub live: bool,
    /// Affect current state of network
    #[arg(long, conflicts_with_all = ["live", "config"])]
    pub current: bool,
}

/// virsh's command names; `add` is `add-last`.
pub fn command(text: &str) -> Result<pb::NetworkUpdateCommand, Error> {
    use pb::NetworkUpdateCommand as C;
    Ok(match text {
        "add" | "add-last" => C::AddLast,
        "add-first" => C::AddFirst,
        "delete" => C::Delete,
        "modify" => C::Modify,
        _ => {
            return Err(Error::Other(format!("unrecognized command name '{text}'")));
        }
    })
}

/// virsh's section names.
pub fn section(text: &str) -> Result<pb::NetworkUpdateSection, Error> {
    use pb::NetworkUpdateSection as S;
    Ok(match text {
        "bridge" => S::Bridge,
        "domain" => S::Domain,
        "ip" => S::Ip,
        "ip-dhcp-host" => S::IpDhcpHost,
        "ip-dhcp-range" => S::IpDhcpRange,
        "forward" => S::Forward,
        "forward-interface" => S::ForwardInterface,
        "forward-pf" => S::ForwardPf,
        "portgroup" => S::Portgroup,
        "dns-host" => S::DnsHost,
        "dns-txt" => S::DnsTxt,
        "dns-srv" => S::DnsSrv,
        _ => {
            return Err(Error::Other(format!("unrecognized section name '{text}'")));
        }
    })
}

/// virsh's success line for what the server says it changed.
pub fn message(network: &str, updated: &pb::UpdateNetworkResponse) -> String {
    match (updated.config, updated.live) {
        (true, true) => format!("Updated network {network} persistent config and live state"),
        (true, false) => format!("Updated network {network} persistent config"),
        _ => format!("Updated network {network} live state"),
    }
}

pub async fn net_update(ctx: &mut Ctx, a: NetUpdateArgs) -> Result<(), Error> {
    let command = command(&a.command)?;
    let section = section(&a.section)?;
    let xml = if a.xml.starts_with('<') {
        a.xml.clone()
    } else {
        read_xml(&a.xml)?
    };
    let mut client = ctx.conn.networks();
    let req = pb::UpdateNetworkRequest {
        network: network_ref(&a.network),
        command: command.into(),
        section: section.into(),
        parent_index: a.parent_index,
        xml,
        flags: Some(pb::ModifyFlags {
            live: a.live,
            config: a.config,
        }),
    };
    let resp = ctx.conn.unary(client.update(ctx.conn.request(req))).await?;
    if !ctx.out.is_table() {
        return ctx.out.data(&Updated {
            network: a.network,
            live: resp.live,
            config: resp.config,
        });
    }
    ctx.out.line(message(&a.network, &resp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_sections_by_virsh_names() {
        assert_eq!(command("add").unwrap(), pb::NetworkUpdateCommand::AddLast);
        assert_eq!(
            command("add-first").unwrap(),
            pb::NetworkUpdateCommand::AddFirst
        );
        assert_eq!(
            command("nope").unwrap_err().to_string(),
            "unrecognized command name 'nope'"
        );
        assert_eq!(
            section("ip-dhcp-host").unwrap(),
            pb::NetworkUpdateSection::IpDhcpHost
        );
        assert_eq!(
            section("dns-srv").unwrap(),
            pb::NetworkUpdateSection::DnsSrv
        );
        assert_eq!(
            section("dhcp").unwrap_err().to_string(),
            "unrecognized section name 'dhcp'"
        );
    }

    #[test]
    fn messages_like_virsh() {
        let r = |live, config| pb::UpdateNetworkResponse { live, config };
        assert_eq!(
            message("default", &r(true, true)),
            "Updated network default persistent config and live state"
        );
        assert_eq!(
            message("default", &r(false, true)),
            "Updated network default persistent config"
        );
        assert_eq!(
            message("default", &r(true, false)),
            "Updated network default live state"
        );
    }
}
