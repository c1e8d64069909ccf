//! `domifaddr`: a running domain's IP addresses, from the virtual networks' DHCP leases
//! (default), the host's ARP table, or the guest agent. The table is virsh's, column for
//! column (scripts that read virsh's read this); `-o json|yaml` also says which source
//! each address came from.

use clap::{Args, ValueEnum};
use serde::Serialize;
use virtplane_proto::v1 as pb;

use super::{Ctx, domain_ref};
use crate::error::Error;

/// Where `domifaddr` looks (virsh's `--source`).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Source {
    Lease,
    Arp,
    Agent,
}

/// `domifaddr DOMAIN [--interface NAME] [--full] [--source lease|arp|agent]`.
#[derive(Debug, Args)]
pub struct DomifaddrArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// Only this interface (its host-side name, or its MAC address)
    #[arg(long, value_name = "NAME")]
    pub interface: Option<String>,
    /// Repeat the name and MAC address on every line of an interface
    #[arg(long)]
    pub full: bool,
    /// Where the addresses come from
    #[arg(long, value_enum, default_value = "lease")]
    pub source: Source,
}

pub async fn domifaddr(ctx: &mut Ctx, a: DomifaddrArgs) -> Result<(), Error> {
    let source = match a.source {
        Source::Lease => pb::InterfaceAddressesSource::Lease,
        Source::Arp => pb::InterfaceAddressesSource::Arp,
        Source::Agent => pb::InterfaceAddressesSource::Agent,
    };
    let mut client = ctx.conn.domains();
    let request = pb::GetInterfaceAddressesRequest {
        domain: domain_ref(&a.domain),
        source: source as i32,
    };
    let reply = ctx
        .conn
        .unary(client.get_interface_addresses(ctx.conn.request(request)))
        .await?;
    let interfaces: Vec<pb::DomainInterfaceAddresses> = reply
        .interfaces
        .into_iter()
        .filter(|i| {
            a.interface
                .as_deref()
                .is_none_or(|want| i.name == want || i.mac.eq_ignore_ascii_case(want))
        })
        .collect();
    if !ctx.out.is_table() {
        let views: Vec<InterfaceView> = interfaces.iter().map(InterfaceView::from_proto).collect();
        return ctx.out.data(&views);
    }
    ctx.out.raw(&render(&interfaces, a.full))
}

/// virsh's domifaddr table.
pub fn render(interfaces: &[pb::DomainInterfaceAddresses], full: bool) -> String {
    let mut text = format!(
        " {:<10} {:<20} {:<8}     {}\n{}\n",
        "Name",
        "MAC address",
        "Protocol",
        "Address",
        "-".repeat(79)
    );
    for iface in interfaces {
        let name = if iface.name.is_empty() {
            "-"
        } else {
            &iface.name
        };
        if iface.addresses.is_empty() {
            let mac = if iface.mac.is_empty() {
                "N/A"
            } else {
                &iface.mac
            };
            text += &format!(" {name:<10} {mac:<17}    {:<12} N/A\n", "N/A");
            continue;
        }
        for (index, address) in iface.addresses.iter().enumerate() {
            let protocol = family(address.r#type);
            let address = format!("{protocol:<12} {}/{}", address.address, address.prefix);
            if full || index == 0 {
                text += &format!(" {name:<10} {:<17}    {address}\n", iface.mac);
            } else {
                text += &format!(" {:<10} {:<17}    {address}\n", "-", "-");
            }
        }
    }
    text
}

fn family(kind: i32) -> &'static str {
    if kind == pb::IpAddrType::Ipv6 as i32 {
        "ipv6"
    } else {
        "ipv4"
    }
}

#[derive(Debug, Serialize)]
struct InterfaceView {
    name: String,
    mac: String,
    addresses: Vec<AddressView>,
}

#[derive(Debug, Serialize)]
struct AddressView {
    protocol: &'static str,
    address: String,
    prefix: u32,
    source: &'static str,
}

impl InterfaceView {
    fn from_proto(i: &pb::DomainInterfaceAddresses) -> Self {
        Self {
            name: i.name.clone(),
            mac: i.mac.clone(),
            addresses: i
                .addresses
                .iter()
                .map(|a| AddressView {
                    protocol: family(a.r#type),
                    address: a.address.clone(),
                    prefix: a.prefix,
                    source: match pb::InterfaceAddressesSource::try_from(a.source) {
                        Ok(pb::InterfaceAddressesSource::Arp) => "arp",
                        Ok(pb::InterfaceAddressesSource::Agent) => "agent",
                        _ => "lease",
                    },
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(ip: &str, prefix: u32, ipv6: bool) -> pb::InterfaceAddress {
        pb::InterfaceAddress {
            r#type: if ipv6 {
                pb::IpAddrType::Ipv6
            } else {
                pb::IpAddrType::Ipv4
            } as i32,
            address: ip.into(),
            prefix,
            source: pb::InterfaceAddressesSource::Lease as i32,
        }
    }

    #[test]
    fn domifaddr_like_virsh() {
        let interfaces = vec![pb::DomainInterfaceAddresses {
            name: "vnet0".into(),
            mac: "52:54:00:e2:e0:01".into(),
            addresses: vec![
                address("192.168.122.50", 24, false),
                address("fd00::32", 64, true),
            ],
        }];
        assert_eq!(
            render(&interfaces, false),
            " Name       MAC address          Protocol     Address\n\
             -------------------------------------------------------------------------------\n \
             vnet0      52:54:00:e2:e0:01    ipv4         192.168.122.50/24\n \
             -          -                    ipv6         fd00::32/64\n"
        );
        assert!(
            render(&interfaces, true)
                .ends_with(" vnet0      52:54:00:e2:e0:01    ipv6         fd00::32/64\n"),
            "{}",
            render(&interfaces, true)
        );
    }
}
