//! `<forward>`: how the network reaches the outside (libvirt's `virNetworkForwardDef`).
//! Absent means isolated. The host-device modes (`hostdev`, `passthrough`, `private`,
//! `vepa`) are parsed and kept so their documents round-trip, though the bridge driver only
//! runs `nat`, `route`, `open`, isolated and `bridge`. `<pf>`, PCI `<address>` pools and
//! `<driver>` are checked as libvirt does and kept as unknown content.

use std::net::{IpAddr, Ipv4Addr};

use virtplane_xml::{Element, Extra, FmtCtx, Scope, XmlError};

use super::addr;
use super::helpers::{tristate, yes_no};

/// `<forward mode=…>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardMode {
    Nat,
    Route,
    Open,
    Bridge,
    Private,
    Vepa,
    Passthrough,
    Hostdev,
}

impl ForwardMode {
    pub const ALL: [ForwardMode; 8] = [
        ForwardMode::Nat,
        ForwardMode::Route,
        ForwardMode::Open,
        ForwardMode::Bridge,
        ForwardMode::Private,
        ForwardMode::Vepa,
        ForwardMode::Passthrough,
        ForwardMode::Hostdev,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ForwardMode::Nat => "nat",
            ForwardMode::Route => "route",
            ForwardMode::Open => "open",
            ForwardMode::Bridge => "bridge",
            ForwardMode::Private => "private",
            ForwardMode::Vepa => "vepa",
            ForwardMode::Passthrough => "passthrough",
            ForwardMode::Hostdev => "hostdev",
        }
    }

    pub fn parse(s: &str) -> Option<ForwardMode> {
        ForwardMode::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// The modes whose bridge, addresses, DHCP/DNS and firewall libvirt itself sets up.
    pub fn is_layer3(self) -> bool {
        matches!(
            self,
            ForwardMode::Nat | ForwardMode::Route | ForwardMode::Open
        )
    }
}

/// `<forward>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardDef {
    pub mode: ForwardMode,
    /// The physical interfaces: `<forward dev=…>` and `<interface dev=…/>` merged as libvirt
    /// does (the `dev` attribute is the first interface).
    pub interfaces: Vec<ForwardInterface>,
    /// `managed` (hostdev mode): whether libvirt detaches the devices from the host.
    pub managed: Option<bool>,
    pub nat: Option<NatDef>,
    pub extra: Extra,
}

/// `<forward>/<interface dev=…/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardInterface {
    pub dev: String,
    pub extra: Extra,
}

/// `<forward mode='nat'>/<nat>`: the SNAT address range and the masquerade port range.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NatDef {
    /// `ipv6='yes'`: also NAT IPv6 traffic.
    pub ipv6: Option<bool>,
    /// `<address start end/>`: SNAT to this IPv4 range instead of masquerading.
    pub address: Option<(Ipv4Addr, Ipv4Addr)>,
    /// `<port start end/>`: source ports used for masquerading (libvirt's default is
    /// 1024-65535).
    pub port: Option<(u16, u16)>,
    /// Unknown content; `sub` holds that of `<address>` and `<port>`.
    pub extra: Extra,
}

const DRIVER_NAMES: &[&str] = &["kvm", "vfio", "xen"];

impl ForwardDef {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let mode = match s.attr("mode") {
            None => ForwardMode::Nat,
            Some(m) => ForwardMode::parse(m).ok_or_else(|| {
                XmlError::value(
                    s.attr_loc("mode"),
                    m,
                    "one of nat, route, open, bridge, private, vepa, passthrough, hostdev",
                )
            })?,
        };
        let managed = s
            .attr("managed")
            .map(|m| m.eq_ignore_ascii_case("yes"))
            .or((mode == ForwardMode::Hostdev).then_some(false));
        let el = s.element();
        if let Some(d) = el.elements().find(|e| e.name == "driver")
            && let Some(name) = d.attr("name")
            && !DRIVER_NAMES.contains(&name)
        {
            return Err(XmlError::value(
                format!("{}/<driver> attribute 'name'", s.loc()),
                name,
                "one of kvm, vfio, xen",
            ));
        }
        let count = |n: &str| el.elements().filter(|e| e.name == n).count();
        let n_addrs = count("address");
        let n_pfs = count("pf");
        if count("nat") > 1 {
            return Err(XmlError::invalid(
                format!("{}/<nat>", s.loc()),
                "only one <nat> element is allowed in <forward>",
            ));
        }
        if n_pfs > 1 {
            return Err(XmlError::invalid(
                format!("{}/<pf>", s.loc()),
                "only one <pf> element is allowed in <forward>",
            ));
        }
        if let Some(pf) = el.elements().find(|e| e.name == "pf")
            && pf.attr("dev").is_none()
        {
            return Err(XmlError::missing(format!(
                "{}/<pf> attribute 'dev'",
                s.loc()
            )));
        }
        check_pci_pool(&s)?;
        let dev = s.attr_string("dev");
        if dev.is_some() && (n_addrs > 0 || n_pfs > 0) {
            return Err(XmlError::invalid(
                s.attr_loc("dev"),
                "the <forward> 'dev' attribute cannot be used when <address> or <pf> \
                 sub-elements are present",
            ));
        }
        let mut interfaces: Vec<ForwardInterface> = Vec::new();
        if let Some(d) = &dev {
            interfaces.push(ForwardInterface {
                dev: d.clone(),
                extra: Extra::default(),
            });
        }
        for (i, mut iface) in s.children("interface").into_iter().enumerate() {
            let d = iface.req_attr("dev")?.to_string();
            // Live state (how many guests use it), not definition.
            let _ = iface.attr("connections");
            let extra = iface.finish();
            if i == 0 && dev.is_some() {
                if Some(&d) != dev.as_ref() {
                    return Err(XmlError::invalid(
                        format!("{}/<interface dev='{d}'>", s.loc()),
                        format!(
                            "<forward dev='{}'> must match the first <interface dev='{d}'/>",
                            dev.as_deref().unwrap_or_default()
                        ),
                    ));
                }
                interfaces[0].extra = extra;
                continue;
            }
            if interfaces.iter().any(|f| f.dev == d) {
                return Err(XmlError::invalid(
                    format!("{}/<interface dev='{d}'>", s.loc()),
                    format!("interface '{d}' can only be listed once"),
                ));
            }
            interfaces.push(ForwardInterface { dev: d, extra });
        }
        let nat = match s.child("nat")? {
            None => None,
            Some(n) => {
                if mode != ForwardMode::Nat {
                    return Err(XmlError::invalid(
                        n.loc().to_string(),
                        "the <nat> element can only be used when <forward> 'mode' is 'nat'",
                    ));
                }
                let nat = NatDef::parse(n)?;
                (nat != NatDef::default()).then_some(nat)
            }
        };
        Ok(ForwardDef {
            mode,
            interfaces,
            managed,
            nat,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("forward");
        let has_pf = self
            .extra
            .nodes
            .iter()
            .any(|(_, n)| matches!(n, virtplane_xml::Node::Element(e) if e.name == "pf"));
        if !has_pf && let Some(first) = self.interfaces.first() {
            el.set("dev", first.dev.as_str());
        }
        el.set("mode", self.mode.as_str());
        if let Some(m) = self.managed {
            el.set("managed", yes_no(m));
        }
        if let Some(nat) = &self.nat {
            el.push(nat.to_element(ctx));
        }
        for iface in &self.interfaces {
            let mut ie = Element::new("interface");
            ie.set("dev", iface.dev.as_str());
            iface.extra.apply(&mut ie, ctx);
            el.push(ie);
        }
        self.extra.apply(&mut el, ctx);
        el
    }

    /// The first physical interface, which nat and route modes send traffic out of
    /// (`virNetworkDefForwardIf`); `None` means any.
    pub fn dev(&self) -> Option<&str> {
        self.interfaces.first().map(|i| i.dev.as_str())
    }
}

/// libvirt refuses a PCI device listed twice in a hostdev pool (`<address type='pci'>`).
fn check_pci_pool(s: &Scope<'_>) -> Result<(), XmlError> {
    let mut seen: Vec<[u32; 4]> = Vec::new();
    for a in s.element().elements().filter(|e| e.name == "address") {
        let loc = format!("{}/<address>", s.loc());
        let Some(kind) = a.attr("type") else {
            return Err(XmlError::missing(format!("{loc} attribute 'type'")));
        };
        if kind != "pci" {
            return Err(XmlError::value(
                format!("{loc} attribute 'type'"),
                kind,
                "pci",
            ));
        }
        let mut key = [0u32; 4];
        for (k, name) in key.iter_mut().zip(["domain", "bus", "slot", "function"]) {
            if let Some(v) = a.attr(name) {
                *k = virtplane_xml::values::uint_hex(v)
                    .map_err(|e| XmlError::value(format!("{loc} attribute '{name}'"), v, e))?;
            }
        }
        if seen.contains(&key) {
            return Err(XmlError::invalid(
                loc,
                format!(
                    "PCI device '{:04x}:{:02x}:{:02x}.{:x}' can only be listed once",
                    key[0], key[1], key[2], key[3]
                ),
            ));
        }
        seen.push(key);
    }
    Ok(())
}

impl NatDef {
    fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let ipv6 = tristate(&mut s, "ipv6")?;
        let addrs = s.children("address");
        if addrs.len() > 1 {
            return Err(XmlError::invalid(
                addrs[1].loc().to_string(),
                "only one <address> element is allowed in <nat>",
            ));
        }
        let mut address = None;
        for mut a in addrs {
            let v4 = |a: &mut Scope<'_>, name: &str| -> Result<Ipv4Addr, XmlError> {
                let loc = a.attr_loc(name);
                let v = a.req_attr(name)?;
                match addr::ip(v) {
                    Ok(IpAddr::V4(ip)) => Ok(ip),
                    _ => Err(XmlError::value(loc, v, "an IPv4 address")),
                }
            };
            let start = v4(&mut a, "start")?;
            let end = v4(&mut a, "end")?;
            addr::range_size(start.into(), end.into(), None)
                .map_err(|e| XmlError::invalid(a.loc().to_string(), e))?;
            address = Some((start, end));
            s.keep("address", a.finish());
        }
        let ports = s.children("port");
        if ports.len() > 1 {
            return Err(XmlError::invalid(
                ports[1].loc().to_string(),
                "only one <port> element is allowed in <nat>",
            ));
        }
        let mut port = None;
        for mut p in ports {
            let num = |p: &mut Scope<'_>, name: &str| -> Result<u16, XmlError> {
                let loc = p.attr_loc(name);
                let v = p.req_attr(name)?;
                virtplane_xml::values::uint::<u16>(v)
                    .map_err(|_| XmlError::value(loc, v, "a port number from 0 to 65535"))
            };
            let start = num(&mut p, "start")?;
            let end = num(&mut p, "end")?;
            if end < start {
                return Err(XmlError::invalid(
                    p.attr_loc("end"),
                    format!("the end port {end} is below the start port {start}"),
                ));
            }
            port = Some((start, end));
            s.keep("port", p.finish());
        }
        Ok(NatDef {
            ipv6,
            address,
            port,
            extra: s.finish(),
        })
    }

    fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("nat");
        if let Some(v) = self.ipv6 {
            el.set("ipv6", yes_no(v));
        }
        if let Some((start, end)) = self.address {
            let mut a = Element::new("address");
            a.set("start", start.to_string())
                .set("end", end.to_string());
            self.extra.apply_sub("address", &mut a, ctx);
            el.push(a);
        }
        if let Some((start, end)) = self.port {
            let mut p = Element::new("port");
            p.set("start", start.to_string())
                .set("end", end.to_string());
            self.extra.apply_sub("port", &mut p, ctx);
            el.push(p);
        }
        self.extra.apply(&mut el, ctx);
        el
    }
}
