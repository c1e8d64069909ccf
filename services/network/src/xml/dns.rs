//! `<dns>`: the network's DNS service (`virNetworkDNSDef`): forwarders, static host
//! records, TXT and SRV records, or `enable='no'` for none at all.

use std::net::IpAddr;

use virtplane_xml::{Element, Extra, FmtCtx, Scope, XmlError, values};

use super::addr;
use super::helpers::{tristate, yes_no};

/// `<dns enable forwardPlainNames>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsDef {
    /// `enable='no'`: no DNS server at all (dnsmasq then serves only DHCP).
    pub enable: Option<bool>,
    /// `forwardPlainNames='no'`: answer names without a dot locally, never forward them.
    pub forward_plain_names: Option<bool>,
    pub forwarders: Vec<DnsForwarder>,
    pub txts: Vec<DnsTxt>,
    pub srvs: Vec<DnsSrv>,
    pub hosts: Vec<DnsHost>,
    pub extra: Extra,
}

/// `<forwarder addr domain/>`: where to send queries (for one domain, or all); a domain
/// without an address means "answer it locally, never forward".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsForwarder {
    pub addr: Option<IpAddr>,
    pub domain: Option<String>,
    pub extra: Extra,
}

/// `<txt name value/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsTxt {
    pub name: String,
    pub value: String,
    pub extra: Extra,
}

/// `<srv service protocol domain target port priority weight/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSrv {
    pub service: String,
    pub protocol: String,
    pub domain: Option<String>,
    pub target: Option<String>,
    /// 1..=65535; only with a target.
    pub port: Option<u16>,
    /// Only with a target; 0 is the default and not kept.
    pub priority: Option<u16>,
    pub weight: Option<u16>,
    pub extra: Extra,
}

/// `<host ip>` with `<hostname>` children: an address record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsHost {
    /// Absent only in a partial entry used to find one to delete (`net-update`).
    pub ip: Option<IpAddr>,
    pub hostnames: Vec<String>,
    /// Unknown content; `sub` holds that of each `<hostname>` as `hostname#N`.
    pub extra: Extra,
}

/// Longest SRV service name (RFC 2782's 512 bytes less overhead, as libvirt).
const SRV_SERVICE_MAX: usize = 512 - 30;
const PROTOCOL_EXTRA: &str = "-+/";
const SERVICE_EXTRA: &str = "_-+/*";

impl DnsDef {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let enable = tristate(&mut s, "enable")?;
        let forward_plain_names = tristate(&mut s, "forwardPlainNames")?;
        let mut forwarders = Vec::new();
        for mut f in s.children("forwarder") {
            let addr = f.attr_parse("addr", addr::ip)?;
            let domain = f.attr_string("domain");
            if addr.is_none() && domain.is_none() {
                return Err(XmlError::invalid(
                    f.loc().to_string(),
                    "a forwarder must have at least one of addr or domain",
                ));
            }
            forwarders.push(DnsForwarder {
                addr,
                domain,
                extra: f.finish(),
            });
        }
        let mut hosts = Vec::new();
        for h in s.children("host") {
            hosts.push(DnsHost::parse(h, false)?);
        }
        let mut srvs = Vec::new();
        for r in s.children("srv") {
            srvs.push(DnsSrv::parse(r)?);
        }
        let mut txts = Vec::new();
        for mut t in s.children("txt") {
            let name = t.req_attr("name")?.to_string();
            if name.contains([' ', ',']) {
                return Err(XmlError::value(
                    t.attr_loc("name"),
                    name,
                    "a name without spaces or commas",
                ));
            }
            let value = t.req_attr("value")?.to_string();
            txts.push(DnsTxt {
                name,
                value,
                extra: t.finish(),
            });
        }
        if enable == Some(false)
            && !(forwarders.is_empty() && hosts.is_empty() && srvs.is_empty() && txts.is_empty())
        {
            return Err(XmlError::invalid(
                s.loc().to_string(),
                "a disabled DNS (enable='no') cannot have forwarders, hosts, srv or txt records",
            ));
        }
        Ok(DnsDef {
            enable,
            forward_plain_names,
            forwarders,
            txts,
            srvs,
            hosts,
            extra: s.finish(),
        })
    }

    /// Whether there is nothing to write (libvirt then omits `<dns>`).
    pub fn is_empty(&self) -> bool {
        *self == DnsDef::default()
    }

    /// Whether the network runs a DNS server (everything but `enable='no'`).
    pub fn enabled(&self) -> bool {
        self.enable != Some(false)
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("dns");
        el.set_opt("enable", self.enable.map(yes_no));
        el.set_opt("forwardPlainNames", self.forward_plain_names.map(yes_no));
        for f in &self.forwarders {
            let mut fe = Element::new("forwarder");
            fe.set_opt("domain", f.domain.as_deref());
            fe.set_opt("addr", f.addr);
            f.extra.apply(&mut fe, ctx);
            el.push(fe);
        }
        for t in &self.txts {
            let mut te = Element::new("txt");
            te.set("name", t.name.as_str())
                .set("value", t.value.as_str());
            t.extra.apply(&mut te, ctx);
            el.push(te);
        }
        for r in &self.srvs {
            el.push(r.to_element(ctx));
        }
        for h in &self.hosts {
            el.push(h.to_element(ctx));
        }
        self.extra.apply(&mut el, ctx);
        el
    }
}

impl DnsSrv {
    fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let service = s.req_attr("service")?.to_string();
        if service.len() > SRV_SERVICE_MAX {
            return Err(XmlError::invalid(
                s.attr_loc("service"),
                format!("the service name is too long, the limit is {SRV_SERVICE_MAX} bytes"),
            ));
        }
        if !service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || SERVICE_EXTRA.contains(c))
        {
            return Err(XmlError::value(
                s.attr_loc("service"),
                service,
                format!("letters, digits and {SERVICE_EXTRA}"),
            ));
        }
        let protocol = s.req_attr("protocol")?.to_string();
        if !protocol
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || PROTOCOL_EXTRA.contains(c))
        {
            return Err(XmlError::value(
                s.attr_loc("protocol"),
                protocol,
                format!("letters, digits and {PROTOCOL_EXTRA}"),
            ));
        }
        let domain = s.attr_string("domain");
        let target = s.attr_string("target");
        let num = |s: &mut Scope<'_>, name: &str, min: u16| -> Result<Option<u16>, XmlError> {
            let v = s.attr_parse(name, |v| {
                values::uint::<u16>(v)
                    .ok()
                    .filter(|n| *n >= min)
                    .ok_or_else(|| format!("an integer from {min} to 65535"))
            })?;
            if v.is_some() && target.is_none() {
                return Err(XmlError::invalid(
                    s.attr_loc(name),
                    format!("the SRV {name} attribute is not permitted without a target"),
                ));
            }
            Ok(v.filter(|n| *n > 0))
        };
        let port = num(&mut s, "port", 1)?;
        let priority = num(&mut s, "priority", 0)?;
        let weight = num(&mut s, "weight", 0)?;
        Ok(DnsSrv {
            service,
            protocol,
            domain,
            target,
            port,
            priority,
            weight,
            extra: s.finish(),
        })
    }

    fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("srv");
        el.set("service", self.service.as_str())
            .set("protocol", self.protocol.as_str());
        el.set_opt("domain", self.domain.as_deref());
        el.set_opt("target", self.target.as_deref());
        el.set_opt("port", self.port);
        el.set_opt("priority", self.priority);
        el.set_opt("weight", self.weight);
        self.extra.apply(&mut el, ctx);
        el
    }
}

impl DnsHost {
    /// `virNetworkDNSHostDefParseXML`; `partial` (finding an entry to delete) needs only
    /// the address or a host name.
    pub(crate) fn parse(mut s: Scope<'_>, partial: bool) -> Result<Self, XmlError> {
        let ip_loc = s.attr_loc("ip");
        let ip = s.attr_parse("ip", addr::ip)?;
        if ip.is_none() && !partial {
            return Err(XmlError::missing(ip_loc));
        }
        let mut hostnames = Vec::new();
        for mut h in s.children("hostname") {
            let text = h.text();
            let name = text.trim();
            let loc = h.loc().to_string();
            let extra = h.finish();
            // libvirt skips an empty element; one holding only spaces is an error.
            if text.is_empty() {
                continue;
            }
            if name.is_empty() {
                return Err(XmlError::invalid(loc, "the host name is empty"));
            }
            let key = format!("hostname#{}", hostnames.len());
            s.keep(&key, extra);
            hostnames.push(name.to_string());
        }
        if hostnames.is_empty() && !partial {
            return Err(XmlError::missing(format!("{}/<hostname>", s.loc())));
        }
        if ip.is_none() && hostnames.is_empty() {
            return Err(XmlError::invalid(
                s.loc().to_string(),
                "a DNS host record needs an ip or a hostname",
            ));
        }
        Ok(DnsHost {
            ip,
            hostnames,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("host");
        el.set_opt("ip", self.ip);
        for (i, n) in self.hostnames.iter().enumerate() {
            let mut he = Element::with_text("hostname", n.as_str());
            self.extra.apply_sub(&format!("hostname#{i}"), &mut he, ctx);
            el.push(he);
        }
        self.extra.apply(&mut el, ctx);
        el
    }
}
