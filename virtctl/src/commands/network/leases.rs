//! `net-dhcp-leases NETWORK [--mac MAC]`, virsh's cmdNetworkDHCPLeases table.

use clap::Args;
use virtplane_proto::v1 as pb;

use super::view::Lease;
use super::{Ctx, network_ref};
use crate::error::Error;
use crate::output::virsh_table;

#[derive(Debug, Args)]
pub struct NetDhcpLeasesArgs {
    /// Network name or UUID
    #[arg(value_name = "NETWORK")]
    pub network: String,
    /// Only the leases of this MAC address
    #[arg(long, value_name = "MAC")]
    pub mac: Option<String>,
}

pub async fn net_dhcp_leases(ctx: &mut Ctx, a: NetDhcpLeasesArgs) -> Result<(), Error> {
    let mut client = ctx.conn.networks();
    let req = pb::GetDhcpLeasesRequest {
        network: network_ref(&a.network),
        mac: a.mac.unwrap_or_default(),
    };
    let resp = ctx
        .conn
        .unary(client.get_dhcp_leases(ctx.conn.request(req)))
        .await?;
    let leases: Vec<Lease> = resp.leases.iter().map(Lease::from_proto).collect();
    if !ctx.out.is_table() {
        return ctx.out.data(&leases);
    }
    ctx.out.raw(&render(&leases, |secs| {
        chrono::DateTime::from_timestamp(secs, 0)
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_else(|| "-".into())
    }))
}

/// virsh's table (`-` for what a lease does not say); `when` formats the expiry time.
pub fn render(leases: &[Lease], when: impl Fn(i64) -> String) -> String {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = leases
        .iter()
        .map(|l| {
            vec![
                when(l.expiry_time),
                dash(&l.mac),
                l.protocol.to_string(),
                format!("{}/{}", l.ip_address, l.prefix),
                dash(&l.hostname),
                dash(&l.client_id),
            ]
        })
        .collect();
    virsh_table(
        &[
            "Expiry Time",
            "MAC address",
            "Protocol",
            "IP address",
            "Hostname",
            "Client ID or DUID",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_like_virsh() {
        let lease = Lease {
            iface: "virbr0".into(),
            expiry_time: 1_700_000_000,
            protocol: "ipv4",
            mac: Some("52:54:00:0c:8c:2b".into()),
            iaid: None,
            ip_address: "192.168.122.45".into(),
            prefix: 24,
            hostname: Some("guest".into()),
            client_id: None,
        };
        let text = render(&[lease], |_| "2023-11-14 22:13:20".into());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            " Expiry Time           MAC address         Protocol   IP address          Hostname   Client ID or DUID"
        );
        assert_eq!(
            lines[2],
            " 2023-11-14 22:13:20   52:54:00:0c:8c:2b   ipv4       192.168.122.45/24   guest      -"
        );
        // No leases: virsh still prints the header.
        assert_eq!(render(&[], |_| String::new()).lines().count(), 2);
    }
}
