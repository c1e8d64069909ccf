//! `<ip>`: an address of the host on the network's bridge, with its DHCP service
//! (`virNetworkIPDef`, `virNetworkDHCPDef`).

use std::net::{IpAddr, Ipv4Addr};

use virtplane_xml::{Element, Extra, FmtCtx, Scope, XmlError, values};

use super::addr;
use super::helpers::{tristate, yes_no};

/// `<ip family address netmask|prefix localPtr>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpDef {
    /// `ipv4` or `ipv6` as written (libvirt only writes it back when it was given).
    pub family: Option<String>,
    pub address: IpAddr,
    /// IPv4 only; exclusive with `prefix`.
    pub netmask: Option<Ipv4Addr>,
    pub prefix: Option<u8>,
    /// `localPtr='yes'`: answer reverse lookups of the subnet locally.
    pub local_ptr: Option<bool>,
    /// `<tftp root=…/>` (IPv4 only): serve this directory over TFTP.
    pub tftp_root: Option<String>,
    pub dhcp: Option<DhcpDef>,
    /// Unknown content; `sub` holds that of `<tftp>`.
    pub extra: Extra,
}

/// `<dhcp>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DhcpDef {
    pub ranges: Vec<DhcpRange>,
    pub hosts: Vec<DhcpHost>,
    /// `<bootp file server/>` (IPv4): the PXE boot file and the server holding it.
    pub bootp: Option<Bootp>,
    /// Unknown content; `sub` holds that of `<bootp>`.
    pub extra: Extra,
}

/// `<range start end>` with an optional `<lease>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpRange {
    pub start: IpAddr,
    pub end: IpAddr,
    pub lease: Option<Lease>,
    /// Unknown content; `sub` holds that of `<lease>`.
    pub extra: Extra,
}

/// `<host mac id name ip>` with an optional `<lease>`: a static DHCP assignment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DhcpHost {
    /// Canonical lowercase (IPv4 networks only).
    pub mac: Option<String>,
    /// The DHCPv6 client identifier (DUID), hex digits and colons.
    pub id: Option<String>,
    pub name: Option<String>,
    pub ip: Option<IpAddr>,
    pub lease: Option<Lease>,
    /// Unknown content; `sub` holds that of `<lease>`.
    pub extra: Extra,
}

/// `<bootp file server/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootp {
    pub file: String,
    pub server: Option<IpAddr>,
}

/// `<lease expiry unit/>`: how long a lease lasts; `expiry` 0 means forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub expiry: u64,
    pub unit: LeaseUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseUnit {
    Seconds,
    Minutes,
    Hours,
}

impl LeaseUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseUnit::Seconds => "seconds",
            LeaseUnit::Minutes => "minutes",
            LeaseUnit::Hours => "hours",
        }
    }
}

impl Lease {
    /// The lease time as dnsmasq writes it: `infinite`, or the number and the unit's first
    /// letter (`1h`, `5m`, `3600s`), as libvirt's `networkBuildDnsmasqLeaseTime`.
    pub fn dnsmasq(&self) -> String {
        if self.expiry == 0 {
            "infinite".to_string()
        } else {
            let unit = &self.unit.as_str()[..1];
            format!("{}{unit}", self.expiry)
        }
    }

    fn parse(mut s: Scope<'_>) -> Result<(Lease, Extra), XmlError> {
        let expiry_loc = s.attr_loc("expiry");
        let expiry: u64 = s
            .attr_parse("expiry", values::uint::<u64>)?
            .ok_or_else(|| XmlError::missing(expiry_loc.clone()))?;
        let unit = match s.attr("unit") {
            None => LeaseUnit::Minutes,
            Some("seconds") => LeaseUnit::Seconds,
            Some("minutes") => LeaseUnit::Minutes,
            Some("hours") => LeaseUnit::Hours,
            Some(other) => {
                return Err(XmlError::value(
                    s.attr_loc("unit"),
                    other,
                    "one of seconds, minutes, hours",
                ));
            }
        };
        // dnsmasq: "The minimum lease time is two minutes."
        if expiry > 0
            && ((unit == LeaseUnit::Seconds && expiry < 120)
                || (unit == LeaseUnit::Minutes && expiry < 2))
        {
            return Err(XmlError::invalid(
                expiry_loc,
                "the minimum lease time is 2 minutes (0 means infinite)",
            ));
        }
        // An infinite lease has no unit (libvirt writes none).
        let unit = if expiry == 0 {
            LeaseUnit::Minutes
        } else {
            unit
        };
        Ok((Lease { expiry, unit }, s.finish()))
    }

    fn to_element(self, extra: &Extra, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("lease");
        el.set("expiry", self.expiry.to_string());
        if self.expiry != 0 {
            el.set("unit", self.unit.as_str());
        }
        extra.apply_sub("lease", &mut el, ctx);
        el
    }
}

fn parse_lease(s: &mut Scope<'_>) -> Result<Option<Lease>, XmlError> {
    let Some(l) = s.child("lease")? else {
        return Ok(None);
    };
    let (lease, extra) = Lease::parse(l)?;
    s.keep("lease", extra);
    Ok(Some(lease))
}

impl IpDef {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let family = s.attr_string("family");
        let addr_loc = s.attr_loc("address");
        let address = s
            .attr_parse("address", addr::ip)?
            .ok_or_else(|| XmlError::missing(addr_loc.clone()))?;
        let netmask_loc = s.attr_loc("netmask");
        let netmask = s.attr_parse("netmask", addr::ip)?;
        let prefix_loc = s.attr_loc("prefix");
        let prefix: Option<u32> = s.attr_parse("prefix", values::uint::<u32>)?;
        let local_ptr = tristate(&mut s, "localPtr")?;
        let netmask = match family.as_deref() {
            None | Some("ipv4") => {
                if !address.is_ipv4() {
                    return Err(XmlError::invalid(
                        addr_loc,
                        format!(
                            "{} family specified for non-IPv4 address '{address}'",
                            family.as_deref().unwrap_or("no")
                        ),
                    ));
                }
                match netmask {
                    Some(IpAddr::V4(m)) => {
                        if prefix.is_some_and(|p| p > 0) {
                            return Err(XmlError::invalid(
                                prefix_loc,
                                "an IP address cannot have both a prefix and a netmask",
                            ));
                        }
                        if addr::netmask_prefix(m).is_none() {
                            return Err(XmlError::value(
                                netmask_loc,
                                m.to_string(),
                                "a netmask of contiguous one bits, like 255.255.255.0",
                            ));
                        }
                        Some(m)
                    }
                    Some(m) => {
                        return Err(XmlError::invalid(
                            netmask_loc,
                            format!(
                                "invalid netmask '{m}' for address '{address}' (both must be IPv4)"
                            ),
                        ));
                    }
                    None => {
                        if let Some(p) = prefix.filter(|p| *p > 32) {
                            return Err(XmlError::value(prefix_loc, p.to_string(), "0 to 32"));
                        }
                        None
                    }
                }
            }
            Some("ipv6") => {
                if !address.is_ipv6() {
                    return Err(XmlError::invalid(
                        addr_loc,
                        format!("family 'ipv6' specified for non-IPv6 address '{address}'"),
                    ));
                }
                if netmask.is_some() {
                    return Err(XmlError::invalid(
                        netmask_loc,
                        format!("netmask not allowed for IPv6 address '{address}'"),
                    ));
                }
                if let Some(p) = prefix.filter(|p| *p > 128) {
                    return Err(XmlError::value(prefix_loc, p.to_string(), "0 to 128"));
                }
                None
            }
            Some(other) => {
                return Err(XmlError::value(s.attr_loc("family"), other, "ipv4 or ipv6"));
            }
        };
        let prefix = prefix.map(|p| p as u8);
        let Some(subnet_prefix) = addr::effective_prefix(address, netmask, prefix) else {
            return Err(XmlError::invalid(
                addr_loc,
                format!(
                    "'{address}' has no natural prefix (class D or E); give a prefix or netmask"
                ),
            ));
        };
        let tftp_root = match s.child("tftp")? {
            None => None,
            Some(mut t) => {
                if !address.is_ipv4() {
                    return Err(XmlError::invalid(
                        t.loc().to_string(),
                        "<tftp> is only supported in an IPv4 <ip> element",
                    ));
                }
                let root = t.req_attr("root")?.to_string();
                s.keep("tftp", t.finish());
                Some(root)
            }
        };
        let dhcp = s
            .child("dhcp")?
            .map(|d| DhcpDef::parse(d, address, subnet_prefix))
            .transpose()?;
        Ok(IpDef {
            family,
            address,
            netmask,
            prefix,
            local_ptr,
            tftp_root,
            dhcp,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("ip");
        el.set_opt("family", self.family.as_deref());
        el.set("address", self.address.to_string());
        el.set_opt("netmask", self.netmask);
        el.set_opt("prefix", self.prefix.filter(|p| *p > 0));
        el.set_opt("localPtr", self.local_ptr.map(yes_no));
        if let Some(root) = &self.tftp_root {
            let mut t = Element::new("tftp");
            t.set("root", root.as_str());
            self.extra.apply_sub("tftp", &mut t, ctx);
            el.push(t);
        }
        if let Some(d) = &self.dhcp {
            el.push(d.to_element(ctx));
        }
        self.extra.apply(&mut el, ctx);
        el
    }

    pub fn is_ipv4(&self) -> bool {
        self.address.is_ipv4()
    }

    pub fn is_ipv6(&self) -> bool {
        self.address.is_ipv6()
    }

    /// The prefix length in force (prefix, netmask or the natural one); validated at parse.
    pub fn prefix_len(&self) -> u8 {
        addr::effective_prefix(self.address, self.netmask, self.prefix).unwrap_or(0)
    }

    /// The subnet's network address (`192.168.122.0` for 192.168.122.1/24).
    pub fn network_address(&self) -> IpAddr {
        addr::network_address(self.address, self.prefix_len())
    }

    /// Whether this address serves DHCP (has ranges or static hosts), as libvirt decides.
    pub fn has_dhcp(&self) -> bool {
        self.dhcp
            .as_ref()
            .is_some_and(|d| !d.ranges.is_empty() || !d.hosts.is_empty())
    }

    /// The DHCP ranges (empty without `<dhcp>`).
    pub fn ranges(&self) -> &[DhcpRange] {
        self.dhcp.as_ref().map_or(&[], |d| &d.ranges)
    }

    /// The static DHCP hosts (empty without `<dhcp>`).
    pub fn hosts(&self) -> &[DhcpHost] {
        self.dhcp.as_ref().map_or(&[], |d| &d.hosts)
    }
}

impl DhcpDef {
    fn parse(mut s: Scope<'_>, address: IpAddr, prefix: u8) -> Result<Self, XmlError> {
        let mut ranges = Vec::new();
        for mut r in s.children("range") {
            let start = req_ip(&mut r, "start")?;
            let end = req_ip(&mut r, "end")?;
            addr::range_size(start, end, Some((address, prefix)))
                .map_err(|e| XmlError::invalid(r.loc().to_string(), e))?;
            let lease = parse_lease(&mut r)?;
            ranges.push(DhcpRange {
                start,
                end,
                lease,
                extra: r.finish(),
            });
        }
        let mut hosts = Vec::new();
        for h in s.children("host") {
            hosts.push(DhcpHost::parse(h, address, false)?);
        }
        let mut bootp = None;
        if address.is_ipv4()
            && let Some(mut b) = s.child("bootp")?
        {
            let file = b.req_attr("file")?.to_string();
            let server = b.attr_parse("server", addr::ip)?;
            s.keep("bootp", b.finish());
            bootp = Some(Bootp { file, server });
        }
        Ok(DhcpDef {
            ranges,
            hosts,
            bootp,
            extra: s.finish(),
        })
    }

    fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("dhcp");
        for r in &self.ranges {
            let mut re = Element::new("range");
            re.set("start", r.start.to_string())
                .set("end", r.end.to_string());
            if let Some(l) = &r.lease {
                re.push(l.to_element(&r.extra, ctx));
            }
            r.extra.apply(&mut re, ctx);
            el.push(re);
        }
        for h in &self.hosts {
            el.push(h.to_element(ctx));
        }
        if let Some(b) = &self.bootp {
            let mut be = Element::new("bootp");
            be.set("file", b.file.as_str());
            be.set_opt("server", b.server);
            self.extra.apply_sub("bootp", &mut be, ctx);
            el.push(be);
        }
        self.extra.apply(&mut el, ctx);
        el
    }
}

impl DhcpHost {
    /// Parses `<host>` of the `<ip>` with `address` (`virNetworkDHCPHostDefParseXML`).
    /// `partial` (for finding an entry to delete) only needs one of mac, name or ip.
    pub(crate) fn parse(
        mut s: Scope<'_>,
        address: IpAddr,
        partial: bool,
    ) -> Result<Self, XmlError> {
        let mac_loc = s.attr_loc("mac");
        let mac = match s.attr("mac") {
            None => None,
            Some(m) => {
                if address.is_ipv6() {
                    return Err(XmlError::invalid(
                        mac_loc,
                        format!(
                            "a MAC address ('{m}') is invalid in an IPv6 static host definition"
                        ),
                    ));
                }
                Some(values::mac(m).map_err(|e| XmlError::value(mac_loc, m, e))?)
            }
        };
        let id_loc = s.attr_loc("id");
        let id = s.attr_string("id");
        if let Some(id) = &id
            && let Some(c) = id.chars().find(|c| !(c.is_ascii_hexdigit() || *c == ':'))
        {
            return Err(XmlError::invalid(
                id_loc,
                format!("invalid character '{c}' in id '{id}'"),
            ));
        }
        let name_loc = s.attr_loc("name");
        let name = s.attr_string("name");
        if let Some(n) = &name
            && !n.starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            return Err(XmlError::value(
                name_loc,
                n.as_str(),
                "a host name starting with a letter or digit",
            ));
        }
        let ip = s.attr_parse("ip", addr::ip)?;
        let loc = s.loc().to_string();
        if partial {
            if mac.is_none() && name.is_none() && ip.is_none() {
                return Err(XmlError::invalid(
                    loc,
                    "at least one of name, mac, or ip attribute must be specified for a static \
                     host definition",
                ));
            }
        } else {
            if address.is_ipv6() {
                if id.is_none() && name.is_none() {
                    return Err(XmlError::invalid(
                        loc,
                        "a static host definition in an IPv6 network must have an id or name \
                         attribute",
                    ));
                }
            } else if mac.is_none() && name.is_none() {
                return Err(XmlError::invalid(
                    loc,
                    "a static host definition in an IPv4 network must have a mac or name \
                     attribute",
                ));
            }
            match ip {
                None => return Err(XmlError::missing(s.attr_loc("ip"))),
                Some(ip) if ip.is_ipv4() != address.is_ipv4() => {
                    return Err(XmlError::invalid(
                        s.attr_loc("ip"),
                        format!(
                            "the address family of the host IP '{ip}' must match that of the \
                             <ip address='{address}'> it is in"
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        let lease = parse_lease(&mut s)?;
        Ok(DhcpHost {
            mac,
            id,
            name,
            ip,
            lease,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut he = Element::new("host");
        he.set_opt("mac", self.mac.as_deref());
        he.set_opt("id", self.id.as_deref());
        he.set_opt("name", self.name.as_deref());
        he.set_opt("ip", self.ip);
        if let Some(l) = &self.lease {
            he.push(l.to_element(&self.extra, ctx));
        }
        self.extra.apply(&mut he, ctx);
        he
    }
}

fn req_ip(s: &mut Scope<'_>, name: &str) -> Result<IpAddr, XmlError> {
    let loc = s.attr_loc(name);
    s.attr_parse(name, addr::ip)?
        .ok_or_else(|| XmlError::missing(loc))
}
