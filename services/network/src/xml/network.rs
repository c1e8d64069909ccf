//! `<network>`: the root, its top-level elements, and formatting in libvirt's layout
//! (`virNetworkDefParseXML`, `virNetworkDefFormatBuf`).

use virtplane_xml::{Element, Extra, FmtCtx, Scope, XmlError, values, write_document};

use super::dns::DnsDef;
use super::forward::{ForwardDef, ForwardMode};
use super::helpers::{on_off, tristate, yes_no};
use super::ip::IpDef;

/// A network definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkDef {
    pub name: String,
    /// Canonical: lowercase, hyphenated; generated at parse when absent, as libvirt does.
    pub uuid: String,
    pub title: Option<String>,
    pub description: Option<String>,
    /// `<metadata>` as written: applications' own namespaced data, opaque to us.
    pub metadata: Option<Element>,
    /// `<network ipv6='yes'>`: let guests talk IPv6 to each other without a host address
    /// (`no`, the default, is not written back, as libvirt).
    pub ipv6: bool,
    /// `None` means isolated.
    pub forward: Option<ForwardDef>,
    /// Always present (with libvirt's stp/delay defaults) for isolated, nat, route and open
    /// networks, as libvirt's output has it.
    pub bridge: Option<BridgeDef>,
    /// `<mtu size>`: the bridge's MTU, also announced over DHCP.
    pub mtu: Option<u32>,
    /// `<mac address>`: the bridge's MAC, canonical lowercase.
    pub mac: Option<String>,
    pub domain: Option<NetDomain>,
    /// `None` when absent or empty (libvirt writes no empty `<dns>`).
    pub dns: Option<DnsDef>,
    pub ips: Vec<IpDef>,
    /// libvirt elements the model does not interpret (`<vlan>`, `<bandwidth>`, `<port>`,
    /// `<route>`, `<virtualport>`, `<portgroup>`), kept as written and written back in
    /// libvirt's position; [`NetworkDef::unknown_elements`] reports them.
    pub kept: Vec<Element>,
    /// Unknown content and unknown attributes of the modelled top-level leaves.
    pub extra: Extra,
}

/// The top-level elements kept as written, in libvirt's output order; the first three come
/// before the `<ip>` elements, the rest after.
const KEPT_ORDER: &[&str] = &[
    "vlan",
    "bandwidth",
    "port",
    "route",
    "virtualport",
    "portgroup",
];
const KEPT_BEFORE_IP: usize = 3;

fn kept_rank(name: &str) -> usize {
    KEPT_ORDER
        .iter()
        .position(|k| *k == name)
        .unwrap_or(KEPT_ORDER.len())
}

/// `<bridge name stp delay macTableManager zone/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BridgeDef {
    /// The Linux bridge; may hold a `%d` template (`br%d`) until a name is assigned.
    pub name: Option<String>,
    /// Spanning tree; libvirt's default is on.
    pub stp: Option<bool>,
    /// STP forward delay in seconds.
    pub delay: Option<u64>,
    /// `kernel` or `libvirt` (who manages the bridge's forwarding database).
    pub mac_table_manager: Option<String>,
    /// The firewalld zone.
    pub zone: Option<String>,
}

/// `<domain name localOnly/>`: the DNS domain of the network's guests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDomain {
    pub name: String,
    /// `localOnly='yes'`: never forward queries for this domain.
    pub local_only: Option<bool>,
}

impl NetworkDef {
    /// Builds the model from a parsed root element (not yet validated).
    pub(crate) fn from_root(root: &Element) -> Result<Self, XmlError> {
        if root.name != "network" {
            return Err(XmlError::invalid(
                format!("<{}>", root.name),
                "the root element must be <network>",
            ));
        }
        let mut s = Scope::root(root);
        // Live state (how many guests are attached), not definition.
        let _ = s.attr("connections");
        let ipv6 = tristate(&mut s, "ipv6")?.unwrap_or(false);
        let name = s
            .leaf("name")?
            .filter(|n| !n.is_empty())
            .ok_or_else(|| XmlError::missing("<name>"))?;
        let uuid = match s.leaf("uuid")? {
            Some(u) => values::uuid(&u).map_err(|e| XmlError::value("<uuid>", u.trim(), e))?,
            None => uuid::Uuid::new_v4().hyphenated().to_string(),
        };
        let title = s.leaf("title")?;
        let description = s.leaf("description")?;
        let metadata = s.child("metadata")?.map(|m| m.element().clone());
        let forward = s.child("forward")?.map(ForwardDef::parse).transpose()?;
        let bridge = parse_bridge(&mut s)?;
        let mtu = match s.child("mtu")? {
            None => None,
            Some(mut m) => {
                let loc = m.attr_loc("size");
                let size = m
                    .attr_parse("size", values::uint::<u32>)?
                    .ok_or_else(|| XmlError::missing(loc))?;
                s.keep("mtu", m.finish());
                Some(size)
            }
        };
        let mac = match s.child("mac")? {
            None => None,
            Some(mut m) => {
                let loc = m.attr_loc("address");
                let a = m
                    .attr_parse("address", values::mac)?
                    .ok_or_else(|| XmlError::missing(loc))?;
                s.keep("mac", m.finish());
                Some(a)
            }
        };
        let domain = match s.child("domain")? {
            None => None,
            Some(mut d) => {
                let name = d.req_attr("name")?.to_string();
                let local_only = tristate(&mut d, "localOnly")?;
                s.keep("domain", d.finish());
                Some(NetDomain { name, local_only })
            }
        };
        let dns = s
            .child("dns")?
            .map(DnsDef::parse)
            .transpose()?
            .filter(|d| !d.is_empty());
        let ips = s
            .children("ip")
            .into_iter()
            .map(IpDef::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let mut kept: Vec<Element> = s
            .matching(|e| KEPT_ORDER.contains(&e.name.as_str()))
            .into_iter()
            .map(|(e, _)| e.clone())
            .collect();
        kept.sort_by_key(|e| kept_rank(&e.name));
        let mut def = NetworkDef {
            name,
            uuid,
            title,
            description,
            metadata,
            ipv6,
            forward,
            bridge,
            mtu,
            mac,
            domain,
            dns,
            ips,
            kept,
            extra: s.finish(),
        };
        def.apply_bridge_defaults();
        Ok(def)
    }

    /// libvirt's stp='on' delay='0' for the modes that have a bridge of their own.
    fn apply_bridge_defaults(&mut self) {
        if self.has_own_bridge() {
            let b = self.bridge.get_or_insert_with(BridgeDef::default);
            b.stp.get_or_insert(true);
            b.delay.get_or_insert(0);
        }
    }

    /// Whether the network's bridge is made by the driver (isolated, nat, route, open),
    /// rather than an existing host bridge or no bridge at all.
    pub fn has_own_bridge(&self) -> bool {
        self.forward.as_ref().is_none_or(|f| f.mode.is_layer3())
    }

    /// The forward mode, or `None` for an isolated network.
    pub fn mode(&self) -> Option<ForwardMode> {
        self.forward.as_ref().map(|f| f.mode)
    }

    /// `nat`, `route`, `open`, `bridge`, … or `none` for an isolated network.
    pub fn forward_mode(&self) -> &str {
        self.mode().map_or("none", ForwardMode::as_str)
    }

    /// The bridge's name, once given or assigned (a `%d` template is not a name).
    pub fn bridge_name(&self) -> Option<&str> {
        self.bridge
            .as_ref()
            .and_then(|b| b.name.as_deref())
            .filter(|n| !n.contains("%d"))
    }

    /// Whether the network runs a DNS server (`<dns enable='no'>` turns it off).
    pub fn dns_enabled(&self) -> bool {
        self.dns.as_ref().is_none_or(DnsDef::enabled)
    }

    /// The `<ip>` elements of one family.
    pub fn ipv4s(&self) -> impl Iterator<Item = &IpDef> {
        self.ips.iter().filter(|i| i.is_ipv4())
    }

    pub fn ipv6s(&self) -> impl Iterator<Item = &IpDef> {
        self.ips.iter().filter(|i| i.is_ipv6())
    }

    /// Formats the definition in libvirt's layout, indented by two spaces.
    pub fn to_xml(&self) -> String {
        write_document(&self.to_element(&mut FmtCtx::default()))
    }

    /// Paths of kept-but-unmodelled elements (`network/route`) and attributes
    /// (`network/bridge/@foo`), so a driver can say what it does not honour.
    pub fn unknown_elements(&self) -> Vec<String> {
        let mut ctx = FmtCtx::default();
        self.to_element(&mut ctx);
        let mut seen = std::collections::BTreeSet::new();
        ctx.unknown.retain(|p| seen.insert(p.clone()));
        ctx.unknown
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let x = &self.extra;
        let mut el = Element::new("network");
        if self.ipv6 {
            el.set("ipv6", "yes");
        }
        let leaf = |el: &mut Element, name: &str, text: Option<&str>, ctx: &mut FmtCtx| {
            if let Some(t) = text {
                let mut l = Element::with_text(name, t);
                x.apply_sub(name, &mut l, ctx);
                el.push(l);
            }
        };
        leaf(&mut el, "name", Some(&self.name), ctx);
        leaf(&mut el, "uuid", Some(&self.uuid), ctx);
        leaf(&mut el, "title", self.title.as_deref(), ctx);
        leaf(&mut el, "description", self.description.as_deref(), ctx);
        if let Some(m) = &self.metadata {
            el.push(m.clone());
        }
        if let Some(f) = &self.forward {
            el.push(f.to_element(ctx));
        }
        if let Some(b) = &self.bridge {
            let mut be = Element::new("bridge");
            be.set_opt("name", b.name.as_deref());
            be.set_opt("zone", b.zone.as_deref());
            be.set_opt("stp", b.stp.map(on_off));
            be.set_opt("delay", b.delay);
            be.set_opt("macTableManager", b.mac_table_manager.as_deref());
            x.apply_sub("bridge", &mut be, ctx);
            el.push(be);
        }
        let mut attr_leaf = |el: &mut Element, name: &str, attr: &str, value: Option<String>| {
            if let Some(v) = value {
                let mut l = Element::new(name);
                l.set(attr, v);
                x.apply_sub(name, &mut l, ctx);
                el.push(l);
            }
        };
        attr_leaf(&mut el, "mtu", "size", self.mtu.map(|m| m.to_string()));
        attr_leaf(&mut el, "mac", "address", self.mac.clone());
        if let Some(d) = &self.domain {
            let mut de = Element::new("domain");
            de.set("name", d.name.as_str());
            de.set_opt("localOnly", d.local_only.map(yes_no));
            x.apply_sub("domain", &mut de, ctx);
            el.push(de);
        }
        if let Some(d) = &self.dns {
            el.push(d.to_element(ctx));
        }
        let mut kept: Vec<&Element> = self.kept.iter().collect();
        kept.sort_by_key(|e| kept_rank(&e.name));
        let (before, after) = kept.split_at(
            kept.iter()
                .position(|e| kept_rank(&e.name) >= KEPT_BEFORE_IP)
                .unwrap_or(kept.len()),
        );
        let push_kept = |el: &mut Element, elements: &[&Element], ctx: &mut FmtCtx| {
            for k in elements {
                ctx.unknown.push(format!("network/{}", k.name));
                el.push((*k).clone());
            }
        };
        push_kept(&mut el, before, ctx);
        for ip in &self.ips {
            el.push(ip.to_element(ctx));
        }
        push_kept(&mut el, after, ctx);
        x.apply(&mut el, ctx);
        el
    }
}

fn parse_bridge(s: &mut Scope<'_>) -> Result<Option<BridgeDef>, XmlError> {
    let Some(mut b) = s.child("bridge")? else {
        return Ok(None);
    };
    let name = b.attr_string("name");
    let zone = b.attr_string("zone");
    let stp = b.attr_parse("stp", |v| match v {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err("on or off".to_string()),
    })?;
    let delay = b.attr_parse("delay", values::uint::<u64>)?;
    let mac_table_manager = b.attr_enum("macTableManager", &["kernel", "libvirt"])?;
    s.keep("bridge", b.finish());
    Ok(Some(BridgeDef {
        name,
        stp,
        delay,
        mac_table_manager,
        zone,
    }))
}
