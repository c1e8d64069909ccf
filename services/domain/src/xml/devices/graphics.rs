//! `<graphics>`: VNC, SPICE and other displays.
//!
//! `passwd` is a secret: it is written only when formatting with `secure`, as libvirt does
//! without `VIR_DOMAIN_XML_SECURE`.

use crate::xml::error::XmlError;
use crate::xml::extra::{Extra, FmtCtx};
use crate::xml::scope::Scope;
use crate::xml::tree::Element;
use crate::xml::values::{YES_NO, port_or_auto};

const GRAPHICS_TYPES: &[&str] = &[
    "sdl",
    "vnc",
    "rdp",
    "desktop",
    "spice",
    "egl-headless",
    "dbus",
];

/// `<graphics type=…>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Graphics {
    pub graphics_type: String,
    /// -1 asks for automatic allocation.
    pub port: Option<i32>,
    /// SPICE's TLS port; -1 asks for automatic allocation.
    pub tls_port: Option<i32>,
    pub autoport: Option<String>,
    pub websocket: Option<i32>,
    /// The legacy `listen=` attribute.
    pub listen: Option<String>,
    /// Secret; see the module docs.
    pub passwd: Option<String>,
    pub passwd_valid_to: Option<String>,
    pub keymap: Option<String>,
    pub listens: Vec<GraphicsListen>,
    pub extra: Extra,
}

/// `<listen type=… address=… network=… socket=…/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphicsListen {
    /// address, network, socket, none.
    pub listen_type: String,
    pub address: Option<String>,
    pub network: Option<String>,
    pub socket: Option<String>,
    pub extra: Extra,
}

impl Graphics {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let graphics_type = s
            .attr_enum("type", GRAPHICS_TYPES)?
            .ok_or_else(|| XmlError::missing(s.attr_loc("type")))?;
        let port = s.attr_parse("port", port_or_auto)?;
        let tls_port = s.attr_parse("tlsPort", port_or_auto)?;
        let autoport = s.attr_enum("autoport", YES_NO)?;
        let websocket = s.attr_parse("websocket", port_or_auto)?;
        let listen = s.attr_string("listen");
        let passwd = s.attr_string("passwd");
        let passwd_valid_to = s.attr_string("passwdValidTo");
        let keymap = s.attr_string("keymap");
        let mut listens = Vec::new();
        for mut l in s.children("listen") {
            let listen_type = l
                .attr_enum("type", &["address", "network", "socket", "none"])?
                .ok_or_else(|| XmlError::missing(l.attr_loc("type")))?;
            listens.push(GraphicsListen {
                listen_type,
                address: l.attr_string("address"),
                network: l.attr_string("network"),
                socket: l.attr_string("socket"),
                extra: l.finish(),
            });
        }
        Ok(Graphics {
            graphics_type,
            port,
            tls_port,
            autoport,
            websocket,
            listen,
            passwd,
            passwd_valid_to,
            keymap,
            listens,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("graphics");
        el.set("type", self.graphics_type.as_str());
        el.set_opt("port", self.port);
        el.set_opt("tlsPort", self.tls_port);
        el.set_opt("autoport", self.autoport.as_deref());
        el.set_opt("websocket", self.websocket);
        el.set_opt("listen", self.listen.as_deref());
        if ctx.secure {
            el.set_opt("passwd", self.passwd.as_deref());
        }
        el.set_opt("passwdValidTo", self.passwd_valid_to.as_deref());
        el.set_opt("keymap", self.keymap.as_deref());
        for l in &self.listens {
            let mut le = Element::new("listen");
            le.set("type", l.listen_type.as_str());
            le.set_opt("address", l.address.as_deref());
            le.set_opt("network", l.network.as_deref());
            le.set_opt("socket", l.socket.as_deref());
            l.extra.apply(&mut le, ctx);
            el.push(le);
        }
        self.extra.apply(&mut el, ctx);
        el
    }
}
