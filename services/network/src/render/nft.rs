//! The network's own nftables table: one `table inet virtplane_…` holding everything the
//! network needs, so starting, updating and stopping it never touches anyone else's
//! rules. The rules carry libvirt's intent (compare libvirt's
//! tests/networkxml2firewalldata, iptables form) over nftables:
//!
//! - input/output: DHCP (67/68, DHCPv6 547/546), DNS (53, when enabled) and TFTP (69,
//!   when served) between guests and dnsmasq on the bridge;
//! - forward: traffic between guests on the bridge passes; `nat` lets the subnet out and
//!   only established/related traffic back in; `route` lets the subnet out and in;
//!   anything else from or to the bridge is rejected (isolated networks reject all);
//!   IPv6 in a `nat` network is routed, as in libvirt, unless `<nat ipv6='yes'>`;
//! - postrouting (`nat`): masquerade the subnet's traffic leaving it, except to local
//!   multicast and broadcast, with source ports from `<nat><port>` (default 1024-65535)
//!   for TCP and UDP, or SNAT to `<nat><address>`;
//! - `open`: no rules at all ([`needs_firewall`] is false).
//!
//! Another table's chain on the same hook still sees every packet: an accept here cannot
//! overrule a drop there (the host module reports such conflicts).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use sha2::{Digest, Sha256};

use super::RenderError;
use crate::xml::{ForwardMode, IpDef, NetworkDef};

/// The family of our tables: one table for IPv4 and IPv6.
pub const FAMILY: &str = "inet";

/// Every table of ours starts with this (the host module refuses other names).
pub const TABLE_PREFIX: &str = "virtplane_";

/// libvirt's default masquerade source ports.
const DEFAULT_PORTS: (u16, u16) = (1024, 65535);

/// The table of the network `name`: `virtplane_NAME` when the name is a plain identifier
/// (ASCII letters, digits and `_`, at most 40 bytes, not starting with `x_`), else
/// `virtplane_x_` and 16 hex digits of the name's SHA-256, so distinct networks never
/// share a table.
pub fn table_name(network: &str) -> String {
    let plain = !network.is_empty()
        && network.len() <= 40
        && !network.starts_with("x_")
        && network
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        format!("{TABLE_PREFIX}{network}")
    } else {
        let digest = Sha256::digest(network.as_bytes());
        format!("{TABLE_PREFIX}x_{}", hex::encode(&digest[..8]))
    }
}

/// Whether the network has firewall rules: its bridge is ours and it is not `open`.
pub fn needs_firewall(def: &NetworkDef) -> bool {
    def.has_own_bridge() && def.mode() != Some(ForwardMode::Open)
}

/// Renders the ruleset of `def`, whose bridge is `bridge`, as the table `table` (family
/// [`FAMILY`]). An `open` network gets an empty table.
pub fn render(def: &NetworkDef, bridge: &str, table: &str) -> Result<String, RenderError> {
    if !def.has_own_bridge() {
        return Err(RenderError::NotOurs {
            network: def.name.clone(),
            mode: def.forward_mode().to_string(),
        });
    }
    let quote = |what: &str, value: &str| -> Result<String, RenderError> {
        if value.is_empty()
            || value
                .chars()
                .any(|c| c.is_control() || c == '"' || c == '\\')
        {
            return Err(RenderError::Unsafe {
                network: def.name.clone(),
                what: what.to_string(),
                value: value.escape_debug().to_string(),
                target: "an nftables ruleset",
            });
        }
        Ok(format!("\"{value}\""))
    };
    if !table.starts_with(TABLE_PREFIX)
        || !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(RenderError::Unsafe {
            network: def.name.clone(),
            what: "table name".into(),
            value: table.escape_debug().to_string(),
            target: "an nftables ruleset",
        });
    }
    let br = quote("bridge name", bridge)?;
    let dev = def
        .forward
        .as_ref()
        .and_then(|f| f.dev())
        .map(|d| quote("forward dev", d))
        .transpose()?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# nftables table of virtplane network '{}' (forward mode {}, bridge {bridge}).\n\
         # Generated: replaced as a whole when the network starts or changes.",
        def.name.escape_debug(),
        def.forward_mode()
    );
    let _ = writeln!(out, "table {FAMILY} {table} {{");
    if !needs_firewall(def) {
        out.push_str("}\n");
        return Ok(out);
    }

    let has_v4 = def.ipv4s().next().is_some();
    let has_v6 = def.ipv6s().next().is_some();
    let dns = def.dns_enabled() && !def.ips.is_empty();
    let tftp = def.ipv4s().any(|i| i.tftp_root.is_some());

    // Guests ↔ dnsmasq.
    let mut input = Vec::new();
    let mut output = Vec::new();
    if has_v4 {
        input.push(format!("iifname {br} udp dport 67 accept comment \"DHCP\""));
        output.push(format!("oifname {br} udp dport 68 accept comment \"DHCP\""));
    }
    if has_v6 {
        input.push(format!(
            "iifname {br} udp dport 547 accept comment \"DHCPv6\""
        ));
        output.push(format!(
            "oifname {br} udp dport 546 accept comment \"DHCPv6\""
        ));
    }
    if dns {
        input.push(format!(
            "iifname {br} meta l4proto {{ tcp, udp }} th dport 53 accept comment \"DNS\""
        ));
        output.push(format!(
            "oifname {br} meta l4proto {{ tcp, udp }} th dport 53 accept comment \"DNS\""
        ));
    }
    if tftp {
        input.push(format!("iifname {br} udp dport 69 accept comment \"TFTP\""));
        output.push(format!("oifname {br} udp dport 69 accept comment \"TFTP\""));
    }
    chain(
        &mut out,
        "input",
        "type filter hook input priority filter; policy accept;",
        &input,
    );
    chain(
        &mut out,
        "output",
        "type filter hook output priority filter; policy accept;",
        &output,
    );

    // Forwarding.
    let mode = def.mode();
    let nat = def.forward.as_ref().and_then(|f| f.nat.as_ref());
    let nat_v6 = nat.and_then(|n| n.ipv6) == Some(true);
    let mut forward = vec![format!(
        "iifname {br} oifname {br} accept comment \"between guests\""
    )];
    let (in_from, out_to) = match &dev {
        Some(d) => (
            format!("iifname {d} oifname {br}"),
            format!("iifname {br} oifname {d}"),
        ),
        None => (format!("oifname {br}"), format!("iifname {br}")),
    };
    for ip in &def.ips {
        let (fam, subnet) = subnet(ip);
        let natted = mode == Some(ForwardMode::Nat) && (ip.is_ipv4() || nat_v6);
        let routed =
            mode == Some(ForwardMode::Route) || (mode == Some(ForwardMode::Nat) && !natted);
        if natted {
            forward.push(format!(
                "{in_from} {fam} daddr {subnet} ct state established,related accept"
            ));
            forward.push(format!("{out_to} {fam} saddr {subnet} accept"));
        } else if routed {
            forward.push(format!("{in_from} {fam} daddr {subnet} accept"));
            forward.push(format!("{out_to} {fam} saddr {subnet} accept"));
        }
    }
    forward.push(format!(
        "oifname {br} reject comment \"nothing else reaches the guests\""
    ));
    forward.push(format!(
        "iifname {br} reject comment \"nothing else leaves the guests\""
    ));
    chain(
        &mut out,
        "forward",
        "type filter hook forward priority filter; policy accept;",
        &forward,
    );

    if mode == Some(ForwardMode::Nat) {
        let ports = nat.and_then(|n| n.port).unwrap_or(DEFAULT_PORTS);
        let snat = nat.and_then(|n| n.address);
        let oif = dev
            .as_ref()
            .map(|d| format!("oifname {d} "))
            .unwrap_or_default();
        let mut post = Vec::new();
        for ip in def.ips.iter().filter(|i| i.is_ipv4() || nat_v6) {
            let (fam, subnet) = subnet(ip);
            let from = format!("{oif}{fam} saddr {subnet}");
            if ip.is_ipv4() {
                post.push(format!(
                    "{from} ip daddr 224.0.0.0/24 return comment \"local multicast\""
                ));
                post.push(format!(
                    "{from} ip daddr 255.255.255.255 return comment \"broadcast\""
                ));
            } else {
                post.push(format!(
                    "{from} ip6 daddr ff02::/16 return comment \"local multicast\""
                ));
            }
            let to = format!("{fam} daddr != {subnet}");
            let port_range = format!("{}-{}", ports.0, ports.1);
            match snat.filter(|_| ip.is_ipv4()) {
                Some((start, end)) => {
                    let addrs = snat_range(start, end);
                    post.push(format!(
                        "{from} {to} meta l4proto {{ tcp, udp }} snat ip to {addrs}:{port_range}"
                    ));
                    post.push(format!("{from} {to} snat ip to {addrs}"));
                }
                None => {
                    post.push(format!(
                        "{from} {to} meta l4proto {{ tcp, udp }} masquerade to :{port_range}"
                    ));
                    post.push(format!("{from} {to} masquerade"));
                }
            }
        }
        chain(
            &mut out,
            "postrouting",
            "type nat hook postrouting priority srcnat; policy accept;",
            &post,
        );
    }
    out.push_str("}\n");
    Ok(out)
}

/// `ip 192.168.122.0/24` or `ip6 2001:db8::/64`.
fn subnet(ip: &IpDef) -> (&'static str, String) {
    let fam = if ip.is_ipv4() { "ip" } else { "ip6" };
    (fam, format!("{}/{}", ip.network_address(), ip.prefix_len()))
}

fn snat_range(start: Ipv4Addr, end: Ipv4Addr) -> String {
    if start == end {
        IpAddr::V4(start).to_string()
    } else {
        format!("{start}-{end}")
    }
}

fn chain(out: &mut String, name: &str, hook: &str, rules: &[String]) {
    let _ = writeln!(out, "\tchain {name} {{\n\t\t{hook}");
    for r in rules {
        let _ = writeln!(out, "\t\t{r}");
    }
    out.push_str("\t}\n");
}
