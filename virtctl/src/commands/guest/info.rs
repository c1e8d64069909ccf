//! `domhostname` (virsh's, agent source only), and virtplane's `guest-ping` and
//! `guest-agent-info`.

use clap::{Args, ValueEnum};
use serde::Serialize;
use virtplane_proto::v1 as pb;

use crate::cli::DomainArg;
use crate::commands::{Ctx, domain_ref, report_action};
use crate::error::Error;
use crate::output::{key_values, virsh_table};

/// Where `domhostname` reads the name (virsh's `--source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HostnameSource {
    /// The guest agent (the only source virtplane has)
    Agent,
    /// DHCP leases (virsh's; not available in virtplane)
    Lease,
}

/// `domhostname DOMAIN [--source agent]`.
#[derive(Debug, Args)]
pub struct DomhostnameArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// Where the hostname comes from; virtplane reads it from the guest agent only
    #[arg(long, value_enum, value_name = "SOURCE")]
    pub source: Option<HostnameSource>,
}

#[derive(Debug, Serialize)]
struct HostnameView {
    domain: String,
    hostname: String,
}

pub async fn domhostname(ctx: &mut Ctx, a: DomhostnameArgs) -> Result<(), Error> {
    if a.source == Some(HostnameSource::Lease) {
        return Err(Error::Other(
            "domhostname --source lease is not supported: virtplane reads the hostname from \
             the guest agent only (--source agent, the default)"
                .into(),
        ));
    }
    let mut client = ctx.conn.guest();
    let request = pb::GetGuestHostnameRequest {
        domain: domain_ref(&a.domain),
    };
    let hostname = ctx
        .conn
        .unary(client.get_hostname(ctx.conn.request(request)))
        .await?
        .hostname;
    if !ctx.out.is_table() {
        return ctx.out.data(&HostnameView {
            domain: a.domain,
            hostname,
        });
    }
    ctx.out.line(hostname)
}

pub async fn guest_ping(ctx: &mut Ctx, a: DomainArg) -> Result<(), Error> {
    let mut client = ctx.conn.guest();
    let request = pb::PingGuestAgentRequest {
        domain: domain_ref(&a.domain),
    };
    ctx.conn
        .unary(client.ping(ctx.conn.request(request)))
        .await?;
    let msg = format!("Guest agent of domain '{}' is responding", a.domain);
    report_action(ctx, &a.domain, "responding", msg)
}

#[derive(Debug, Serialize)]
struct AgentInfoView {
    domain: String,
    version: String,
    commands: Vec<AgentCommandView>,
}

#[derive(Debug, Serialize)]
struct AgentCommandView {
    name: String,
    enabled: bool,
    success_response: bool,
}

pub async fn guest_agent_info(ctx: &mut Ctx, a: DomainArg) -> Result<(), Error> {
    let mut client = ctx.conn.guest();
    let request = pb::GetGuestAgentInfoRequest {
        domain: domain_ref(&a.domain),
    };
    let info = ctx
        .conn
        .unary(client.get_info(ctx.conn.request(request)))
        .await?;
    if !ctx.out.is_table() {
        let view = AgentInfoView {
            domain: a.domain,
            version: info.version,
            commands: info
                .commands
                .into_iter()
                .map(|c| AgentCommandView {
                    name: c.name,
                    enabled: c.enabled,
                    success_response: c.success_response,
                })
                .collect(),
        };
        return ctx.out.data(&view);
    }
    ctx.out.raw(&render_agent_info(&info))
}

/// The agent's version, then one row per command.
pub fn render_agent_info(info: &pb::GetGuestAgentInfoResponse) -> String {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let rows: Vec<Vec<String>> = info
        .commands
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                yes_no(c.enabled),
                yes_no(c.success_response),
            ]
        })
        .collect();
    let mut text = key_values(
        15,
        &[
            ("Version:", info.version.clone()),
            ("Commands:", info.commands.len().to_string()),
        ],
    );
    text.push('\n');
    text += &virsh_table(&["Command", "Enabled", "Success response"], &rows);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_info_layout() {
        let info = pb::GetGuestAgentInfoResponse {
            version: "7.2.0".into(),
            commands: vec![
                pb::GuestAgentCommand {
                    name: "guest-ping".into(),
                    enabled: true,
                    success_response: true,
                },
                pb::GuestAgentCommand {
                    name: "guest-shutdown".into(),
                    enabled: false,
                    success_response: false,
                },
            ],
        };
        assert_eq!(
            render_agent_info(&info),
            "Version:        7.2.0\n\
             Commands:       2\n\
             \n \
             Command          Enabled   Success response\n\
             ----------------------------------------------\n \
             guest-ping       yes       yes\n \
             guest-shutdown   no        no\n"
        );
    }
}
