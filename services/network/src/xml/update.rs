//! `net-update` on the model (`virNetworkDefUpdateSection`): one element added, deleted or
//! modified in one section of a definition. `ip-dhcp-host` and `dns-host` follow libvirt's
//! semantics, messages included; the other sections are refused with
//! [`UpdateError::Unsupported`] naming them. The result is validated like a new
//! definition (it is formatted and parsed again), so an update cannot produce a network
//! `net-define` would refuse.

use std::fmt;

use virtplane_xml::{Scope, XmlError, read_document};

use super::dns::{DnsDef, DnsHost};
use super::ip::{DhcpDef, DhcpHost, IpDef};
use super::network::NetworkDef;
use super::parse_network;

/// Largest update element accepted, in bytes.
pub const MAX_UPDATE_XML_BYTES: usize = 64 * 1024;

/// `virNetworkUpdateCommand`; virsh's `add` is `add-last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateCommand {
    Modify,
    Delete,
    AddLast,
    AddFirst,
}

impl UpdateCommand {
    /// virsh's names: `add`, `add-last`, `add-first`, `delete`, `modify`.
    pub fn parse(s: &str) -> Option<UpdateCommand> {
        Some(match s {
            "add" | "add-last" => UpdateCommand::AddLast,
            "add-first" => UpdateCommand::AddFirst,
            "delete" => UpdateCommand::Delete,
            "modify" => UpdateCommand::Modify,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UpdateCommand::Modify => "modify",
            UpdateCommand::Delete => "delete",
            UpdateCommand::AddLast => "add-last",
            UpdateCommand::AddFirst => "add-first",
        }
    }

    fn is_add(self) -> bool {
        matches!(self, UpdateCommand::AddLast | UpdateCommand::AddFirst)
    }
}

/// `virNetworkUpdateSection`, with virsh's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateSection {
    Bridge,
    Domain,
    Ip,
    IpDhcpHost,
    IpDhcpRange,
    Forward,
    ForwardInterface,
    ForwardPf,
    Portgroup,
    DnsHost,
    DnsTxt,
    DnsSrv,
}

impl UpdateSection {
    pub const ALL: [UpdateSection; 12] = [
        UpdateSection::Bridge,
        UpdateSection::Domain,
        UpdateSection::Ip,
        UpdateSection::IpDhcpHost,
        UpdateSection::IpDhcpRange,
        UpdateSection::Forward,
        UpdateSection::ForwardInterface,
        UpdateSection::ForwardPf,
        UpdateSection::Portgroup,
        UpdateSection::DnsHost,
        UpdateSection::DnsTxt,
        UpdateSection::DnsSrv,
    ];

    /// virsh's section names: `ip-dhcp-host`, `dns-host`, …
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateSection::Bridge => "bridge",
            UpdateSection::Domain => "domain",
            UpdateSection::Ip => "ip",
            UpdateSection::IpDhcpHost => "ip-dhcp-host",
            UpdateSection::IpDhcpRange => "ip-dhcp-range",
            UpdateSection::Forward => "forward",
            UpdateSection::ForwardInterface => "forward-interface",
            UpdateSection::ForwardPf => "forward-pf",
            UpdateSection::Portgroup => "portgroup",
            UpdateSection::DnsHost => "dns-host",
            UpdateSection::DnsTxt => "dns-txt",
            UpdateSection::DnsSrv => "dns-srv",
        }
    }

    pub fn parse(s: &str) -> Option<UpdateSection> {
        UpdateSection::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for UpdateSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an update was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// The element is malformed or breaks a rule, or the result would (INVALID_ARGUMENT).
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// The update does not fit the definition: no such entry, a duplicate, no `<ip>`
    /// (libvirt's VIR_ERR_OPERATION_INVALID; FAILED_PRECONDITION).
    #[error("{0}")]
    Invalid(String),
    /// A section or command not supported (yet) (UNIMPLEMENTED).
    #[error("{0}")]
    Unsupported(String),
}

/// Applies one `net-update` to `def` and returns the new definition. `parent_index`
/// selects the `<ip>` (by position) for `ip-dhcp-*` sections; `None` means libvirt's -1:
/// the `<ip>` that has DHCP, else the first IPv4, else the first IPv6.
pub fn apply_update(
    def: &NetworkDef,
    cmd: UpdateCommand,
    section: UpdateSection,
    parent_index: Option<usize>,
    xml: &str,
) -> Result<NetworkDef, UpdateError> {
    if xml.len() > MAX_UPDATE_XML_BYTES {
        return Err(XmlError::TooLarge {
            what: "network update",
            size: xml.len(),
            limit: MAX_UPDATE_XML_BYTES,
        }
        .into());
    }
    let el = read_document(xml)?;
    let mut new = def.clone();
    match section {
        UpdateSection::IpDhcpHost => {
            expect_element(def, &el.name, "host")?;
            update_dhcp_host(&mut new, cmd, parent_index, Scope::root(&el))?;
        }
        UpdateSection::DnsHost => {
            if cmd == UpdateCommand::Modify {
                return Err(UpdateError::Unsupported(
                    "DNS HOST records cannot be modified, only added or deleted".into(),
                ));
            }
            expect_element(def, &el.name, "host")?;
            update_dns_host(&mut new, cmd, Scope::root(&el))?;
        }
        other => {
            return Err(UpdateError::Unsupported(format!(
                "updating the '{other}' section of network '{}' is not supported yet \
                 (supported: ip-dhcp-host, dns-host)",
                def.name
            )));
        }
    }
    // Validate the result like a new definition.
    Ok(parse_network(&new.to_xml())?)
}

fn expect_element(def: &NetworkDef, got: &str, want: &str) -> Result<(), UpdateError> {
    if got != want {
        return Err(XmlError::invalid(
            format!("<{got}>"),
            format!(
                "unexpected element <{got}>, expecting <{want}>, while updating network '{}'",
                def.name
            ),
        )
        .into());
    }
    Ok(())
}

/// `virNetworkIPDefByIndex`.
fn ip_for_dhcp(def: &NetworkDef, parent_index: Option<usize>) -> Result<usize, UpdateError> {
    if let Some(i) = parent_index {
        return if i < def.ips.len() {
            Ok(i)
        } else {
            Err(UpdateError::Invalid(format!(
                "couldn't update dhcp host entry - no <ip> element found at index {i} in \
                 network '{}'",
                def.name
            )))
        };
    }
    def.ips
        .iter()
        .position(IpDef::has_dhcp)
        .or_else(|| def.ips.iter().position(IpDef::is_ipv4))
        .or_else(|| def.ips.iter().position(IpDef::is_ipv6))
        .ok_or_else(|| {
            UpdateError::Invalid(format!(
                "couldn't update dhcp host entry - no <ip> element found in network '{}'",
                def.name
            ))
        })
}

fn update_dhcp_host(
    def: &mut NetworkDef,
    cmd: UpdateCommand,
    parent_index: Option<usize>,
    s: Scope<'_>,
) -> Result<(), UpdateError> {
    let idx = ip_for_dhcp(def, parent_index)?;
    let name = def.name.clone();
    let address = def.ips[idx].address;
    let host = DhcpHost::parse(s, address, cmd == UpdateCommand::Delete)?;
    let describe = |h: &DhcpHost| {
        format!(
            "mac='{}' name='{}' ip='{}'",
            h.mac.as_deref().unwrap_or("unknown"),
            h.name.as_deref().unwrap_or(""),
            h.ip.map_or("unknown".to_string(), |i| i.to_string())
        )
    };
    if cmd.is_add() {
        // virNetworkDefUpdateCheckMultiDHCP
        let other_dhcp = def
            .ips
            .iter()
            .enumerate()
            .any(|(i, ip)| i != idx && ip.is_ipv4() == address.is_ipv4() && ip.has_dhcp());
        if other_dhcp {
            return Err(UpdateError::Invalid(format!(
                "dhcp is supported only for a single {} address on each network",
                if address.is_ipv4() { "IPv4" } else { "IPv6" }
            )));
        }
    }
    let ip = &mut def.ips[idx];
    let dhcp = ip.dhcp.get_or_insert_with(DhcpDef::default);
    let hosts = &mut dhcp.hosts;
    // The same entry by MAC, IP or name, as modify and add look for it.
    let same = |h: &DhcpHost| {
        (host.mac.is_some() && h.mac.is_some() && host.mac == h.mac)
            || (host.ip.is_some() && host.ip == h.ip)
            || (host.name.is_some() && host.name == h.name)
    };
    match cmd {
        UpdateCommand::Modify => {
            let Some(i) = hosts.iter().position(same) else {
                return Err(UpdateError::Invalid(format!(
                    "couldn't locate an existing dhcp host entry with {} in network '{name}'",
                    describe(&host)
                )));
            };
            hosts[i] = host;
        }
        UpdateCommand::AddFirst | UpdateCommand::AddLast => {
            if hosts.iter().any(same) {
                return Err(UpdateError::Invalid(format!(
                    "there is an existing dhcp host entry in network '{name}' that matches \
                     \"<host {}/>\"",
                    describe(&host)
                )));
            }
            let at = if cmd == UpdateCommand::AddFirst {
                0
            } else {
                hosts.len()
            };
            hosts.insert(at, host);
        }
        UpdateCommand::Delete => {
            // Every attribute given must match (a MAC only where the entry has one).
            let Some(i) = hosts.iter().position(|h| {
                (host.mac.is_none() || h.mac.is_none() || host.mac == h.mac)
                    && (host.name.is_none() || host.name == h.name)
                    && (host.ip.is_none() || host.ip == h.ip)
            }) else {
                return Err(UpdateError::Invalid(format!(
                    "couldn't locate a matching dhcp host entry in network '{name}'"
                )));
            };
            hosts.remove(i);
        }
    }
    // libvirt writes no <dhcp> without ranges or hosts.
    if ip.dhcp.as_ref().is_some_and(|d| *d == DhcpDef::default()) {
        ip.dhcp = None;
    }
    Ok(())
}

fn update_dns_host(
    def: &mut NetworkDef,
    cmd: UpdateCommand,
    s: Scope<'_>,
) -> Result<(), UpdateError> {
    let name = def.name.clone();
    let host = DnsHost::parse(s, !cmd.is_add())?;
    let dns = def.dns.get_or_insert_with(DnsDef::default);
    // An add only refuses a duplicate address (several addresses may share a name); a
    // delete matches by address or any host name.
    let found: Vec<usize> = dns
        .hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| {
            (host.ip.is_some() && host.ip == h.ip)
                || (!cmd.is_add() && host.hostnames.iter().any(|n| h.hostnames.contains(n)))
        })
        .map(|(i, _)| i)
        .collect();
    match cmd {
        UpdateCommand::AddFirst | UpdateCommand::AddLast => {
            if !found.is_empty() {
                return Err(UpdateError::Invalid(format!(
                    "there is already at least one DNS HOST record with a matching field in \
                     network {name}"
                )));
            }
            let at = if cmd == UpdateCommand::AddFirst {
                0
            } else {
                dns.hosts.len()
            };
            dns.hosts.insert(at, host);
        }
        UpdateCommand::Delete => match found.as_slice() {
            [] => {
                return Err(UpdateError::Invalid(format!(
                    "couldn't locate a matching DNS HOST record in network {name}"
                )));
            }
            [i] => {
                dns.hosts.remove(*i);
            }
            _ => {
                return Err(UpdateError::Invalid(format!(
                    "multiple matching DNS HOST records were found in network {name}"
                )));
            }
        },
        UpdateCommand::Modify => unreachable!("refused before parsing"),
    }
    if dns.is_empty() {
        def.dns = None;
    }
    Ok(())
}
