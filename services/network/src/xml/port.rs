//! `<networkport>` (`virNetworkPortDef`): a guest NIC's port on a network, which the
//! network service hands the domain service when it plugs a NIC in:
//!
//! ```xml
//! <networkport>
//!   <uuid>…</uuid>
//!   <owner><name>vm</name><uuid>…</uuid></owner>
//!   <mac address='52:54:00:…'/>
//!   <plug type='network' bridge='virbr0'/>
//! </networkport>
//! ```
//!
//! Bandwidth, vlan, virtualport and the other settings are kept as unknown content.

use virtplane_xml::{
    Element, Extra, FmtCtx, Scope, XmlError, read_document, values, write_document,
};

/// Largest port document accepted, in bytes.
pub const MAX_PORT_XML_BYTES: usize = 64 * 1024;

/// libvirt's plug types (`virNetworkPortPlugType`).
const PLUG_TYPES: &[&str] = &["network", "bridge", "direct", "hostdev-pci"];

/// A network port.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortDef {
    pub uuid: String,
    /// The domain owning the port.
    pub owner_name: String,
    pub owner_uuid: String,
    /// `<group>`: the port group it belongs to.
    pub group: Option<String>,
    /// The guest NIC's MAC, canonical lowercase.
    pub mac: String,
    /// `<plug type>`: `network` (a bridge the network service made), `bridge` (a host
    /// bridge), `direct`, `hostdev-pci`; `None` with a bridge means `bridge`.
    pub plug_type: Option<String>,
    /// `<plug bridge>`: the bridge to attach the NIC's tap to.
    pub bridge: Option<String>,
    /// `<plug macTableManager>`.
    pub mac_table_manager: Option<String>,
    /// Unknown content; `sub` holds that of `<owner>` (with its own `sub` for its
    /// children), `<mac>` and `<plug>`.
    pub extra: Extra,
}

impl PortDef {
    /// A port on the bridge `bridge`, plugged as libvirt's bridge driver does for the
    /// networks it runs (`type='network'`).
    pub fn new(uuid: &str, owner_name: &str, owner_uuid: &str, mac: &str, bridge: &str) -> Self {
        PortDef {
            uuid: uuid.to_string(),
            owner_name: owner_name.to_string(),
            owner_uuid: owner_uuid.to_string(),
            mac: mac.to_string(),
            plug_type: Some("network".to_string()),
            bridge: Some(bridge.to_string()),
            ..Default::default()
        }
    }
}

/// Parses a `<networkport>` document.
pub fn parse_port(xml: &str) -> Result<PortDef, XmlError> {
    if xml.len() > MAX_PORT_XML_BYTES {
        return Err(XmlError::TooLarge {
            what: "network port",
            size: xml.len(),
            limit: MAX_PORT_XML_BYTES,
        });
    }
    let root = read_document(xml)?;
    if root.name != "networkport" {
        return Err(XmlError::invalid(
            format!("<{}>", root.name),
            "the root element must be <networkport>",
        ));
    }
    let mut s = Scope::root(&root);
    let uuid = req_uuid(&mut s, "<uuid>")?;
    let Some(mut owner) = s.child("owner")? else {
        return Err(XmlError::missing("<owner>"));
    };
    let owner_name = owner
        .leaf("name")?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| XmlError::missing("<owner>/<name>"))?;
    let owner_uuid = req_uuid(&mut owner, "<owner>/<uuid>")?;
    s.keep("owner", owner.finish());
    let group = s.leaf("group")?;
    let Some(mut m) = s.child("mac")? else {
        return Err(XmlError::missing("<mac>"));
    };
    let loc = m.attr_loc("address");
    let mac = m
        .attr_parse("address", values::mac)?
        .ok_or_else(|| XmlError::missing(loc))?;
    s.keep("mac", m.finish());
    let (mut plug_type, mut bridge, mut mac_table_manager) = (None, None, None);
    if let Some(mut p) = s.child("plug")? {
        plug_type = p.attr_enum("type", PLUG_TYPES)?;
        if matches!(plug_type.as_deref(), Some("network" | "bridge")) {
            let loc = p.attr_loc("bridge");
            bridge = Some(
                p.attr_string("bridge")
                    .ok_or_else(|| XmlError::missing(loc))?,
            );
            mac_table_manager = p.attr_enum("macTableManager", &["kernel", "libvirt"])?;
        }
        s.keep("plug", p.finish());
    }
    Ok(PortDef {
        uuid,
        owner_name,
        owner_uuid,
        group,
        mac,
        plug_type,
        bridge,
        mac_table_manager,
        extra: s.finish(),
    })
}

fn req_uuid(s: &mut Scope<'_>, loc: &str) -> Result<String, XmlError> {
    let u = s.leaf("uuid")?.ok_or_else(|| XmlError::missing(loc))?;
    values::uuid(&u).map_err(|e| XmlError::value(loc, u.trim(), e))
}

/// Formats a port in libvirt's layout.
pub fn format_port(def: &PortDef) -> String {
    let ctx = &mut FmtCtx::default();
    let x = &def.extra;
    let mut el = Element::new("networkport");
    let mut u = Element::with_text("uuid", def.uuid.as_str());
    x.apply_sub("uuid", &mut u, ctx);
    el.push(u);
    let ox = x.sub.get("owner").cloned().unwrap_or_default();
    let mut owner = Element::new("owner");
    for (name, text) in [("name", &def.owner_name), ("uuid", &def.owner_uuid)] {
        let mut l = Element::with_text(name, text.as_str());
        ox.apply_sub(name, &mut l, ctx);
        owner.push(l);
    }
    ox.apply(&mut owner, ctx);
    el.push(owner);
    if let Some(g) = &def.group {
        let mut l = Element::with_text("group", g.as_str());
        x.apply_sub("group", &mut l, ctx);
        el.push(l);
    }
    let mut m = Element::new("mac");
    m.set("address", def.mac.as_str());
    x.apply_sub("mac", &mut m, ctx);
    el.push(m);
    if def.plug_type.is_some() || def.bridge.is_some() {
        let mut p = Element::new("plug");
        let kind = def.plug_type.as_deref().unwrap_or("bridge");
        p.set("type", kind);
        p.set_opt("bridge", def.bridge.as_deref());
        p.set_opt("macTableManager", def.mac_table_manager.as_deref());
        x.apply_sub("plug", &mut p, ctx);
        el.push(p);
    }
    x.apply(&mut el, ctx);
    write_document(&el)
}
