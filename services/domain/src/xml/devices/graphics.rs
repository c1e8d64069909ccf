//! `<graphics>`: VNC, SPICE and other displays.
//!
//! `passwd` is a secret: it is written only when formatting with `secure`, as libvirt does
//! without `VIR_DOMAIN_XML_SECURE`.

use crate::xml::error::XmlError;
use crate::xml::extra::{Extra, FmtCtx};
use crate::xml::scope::Scope;
use crate::xml::tree::Element;
use crate::xml::values::{YES_NO, port_or_auto, positive};

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
    /// VNC `sharePolicy`: allow-exclusive, force-shared, ignore.
    pub share_policy: Option<String>,
    /// VNC `powerControl='yes'`: clients may power the guest off and reset it.
    pub power_control: Option<String>,
    pub listens: Vec<GraphicsListen>,
    /// `<audio id=…/>`: the `<audio>` backend a VNC display carries the guest's sound to
    /// (libvirt's default: the first one).
    pub audio_id: Option<u32>,
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
        let share_policy = s.attr_enum(
            "sharePolicy",
            &["allow-exclusive", "force-shared", "ignore"],
        )?;
        let power_control = s.attr_enum("powerControl", YES_NO)?;
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
        let audio_id = match s.child("audio")? {
            None => None,
            Some(mut a) => {
                let id = a
                    .attr_parse("id", positive)?
                    .ok_or_else(|| XmlError::missing(a.attr_loc("id")))?;
                s.keep("audio", a.finish());
                Some(id)
            }
        };
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
            share_policy,
            power_control,
            listens,
            audio_id,
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
        el.set_opt("sharePolicy", self.share_policy.as_deref());
        el.set_opt("powerControl", self.power_control.as_deref());
        for l in &self.listens {
            let mut le = Element::new("listen");
            le.set("type", l.listen_type.as_str());
            le.set_opt("address", l.address.as_deref());
            le.set_opt("network", l.network.as_deref());
            le.set_opt("socket", l.socket.as_deref());
            l.extra.apply(&mut le, ctx);
            el.push(le);
        }
        if let Some(id) = self.audio_id {
            let mut a = Element::new("audio");
            a.set("id", id.to_string());
            self.extra.apply_sub("audio", &mut a, ctx);
            el.push(a);
        }
        self.extra.apply(&mut el, ctx);
        el
    }
}
