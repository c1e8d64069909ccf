//! A pool's `<source>` (libvirt's `virStoragePoolDefParseSource` and
//! `virStoragePoolSourceFormat`): where the storage comes from. Hosts, devices, the source
//! directory, name, format, authentication, the NFS protocol version and the SCSI vendor
//! and product are modelled; a SCSI `<adapter>` and an iSCSI `<initiator>` are kept as
//! written (in libvirt's position), and anything else as unknown content.

use virtplane_xml::{Element, Extra, FmtCtx, Scope, XmlError, values};

use super::helpers::{
    attr_leaf, push_attr_leaf, push_leaf, sanitize_path, settle, skip, tristate, yes_no,
};

/// `<source>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolSource {
    /// `<host name port/>`: the servers (NFS, iSCSI, Ceph monitors, Gluster).
    pub hosts: Vec<SourceHost>,
    /// `<device path/>`: block devices (fs, disk, logical, zfs) or an iSCSI target's IQN.
    pub devices: Vec<SourceDevice>,
    /// `<dir path/>`: the exported directory of a netfs or Gluster pool, cleaned up as
    /// libvirt does (`//` collapsed, no trailing `/`).
    pub dir: Option<String>,
    /// `<adapter>` of a SCSI pool, kept as written (a legacy adapter with only a `name` gets
    /// libvirt's `type='scsi_host'`).
    pub adapter: Option<Element>,
    /// `<name>`: a volume group, RBD pool, Gluster volume, ZFS pool, vstorage cluster.
    pub name: Option<String>,
    /// `<initiator>` of an iSCSI pool, kept as written.
    pub initiator: Option<Element>,
    /// `<format type/>`: the file system, partition table or volume group format.
    pub format: Option<String>,
    pub auth: Option<SourceAuth>,
    /// `<protocol ver/>`: the NFS version to mount with.
    pub protocol_ver: Option<String>,
    /// `<vendor name/>` and `<product name/>` of a SCSI device.
    pub vendor: Option<String>,
    pub product: Option<String>,
    /// Unknown content; `sub` holds that of the leaves (`dir`, `name`, `format`, …).
    pub extra: Extra,
}

/// `<source>/<host name port/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceHost {
    pub name: String,
    /// `None` (or 0, which libvirt does not write) means the protocol's default port.
    pub port: Option<u16>,
    pub extra: Extra,
}

/// `<source>/<device path part_separator/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceDevice {
    pub path: String,
    /// Whether partition names get a `p` between device and number (disk pools).
    pub part_separator: Option<bool>,
    /// Unknown content (`<freeExtent>` is live state: not read, as libvirt).
    pub extra: Extra,
}

/// `<source>/<auth type username><secret …/></auth>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAuth {
    /// `chap` (iSCSI) or `ceph` (RBD).
    pub auth_type: String,
    pub username: String,
    /// `<secret uuid=…/>` or `<secret usage=…/>`: which libvirt secret holds the password,
    /// kept as written.
    pub secret: Element,
    pub extra: Extra,
}

impl PoolSource {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let input = s.element();
        let hosts = s
            .children("host")
            .into_iter()
            .map(SourceHost::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let devices = s
            .children("device")
            .into_iter()
            .map(SourceDevice::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let dir = attr_leaf(&mut s, "dir", "path")?.map(|d| sanitize_path(&d));
        let adapter = s.child("adapter")?.map(|a| legacy_adapter(a.element()));
        let name = s.leaf("name")?.filter(|n| !n.is_empty());
        let initiator = s.child("initiator")?.map(|i| i.element().clone());
        let format = attr_leaf(&mut s, "format", "type")?;
        let auth = s.child("auth")?.map(SourceAuth::parse).transpose()?;
        let protocol_ver = attr_leaf(&mut s, "protocol", "ver")?;
        let vendor = attr_leaf(&mut s, "vendor", "name")?;
        let product = attr_leaf(&mut s, "product", "name")?;
        let mut source = PoolSource {
            hosts,
            devices,
            dir,
            adapter,
            name,
            initiator,
            format,
            auth,
            protocol_ver,
            vendor,
            product,
            extra: s.finish(),
        };
        let written = source.to_element(&mut FmtCtx::default());
        settle(&mut source.extra, input, &written);
        Ok(source)
    }

    /// True when the source says nothing (libvirt still writes an empty `<source>`).
    pub fn is_empty(&self) -> bool {
        *self == PoolSource::default()
    }

    /// The IQN of `<initiator><iqn name/></initiator>`, if given.
    pub fn initiator_iqn(&self) -> Option<&str> {
        self.initiator
            .as_ref()?
            .elements()
            .find(|e| e.name == "iqn")?
            .attr("name")
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let x = &self.extra;
        let mut el = Element::new("source");
        for h in &self.hosts {
            let mut he = Element::new("host");
            he.set("name", h.name.as_str());
            he.set_opt("port", h.port);
            h.extra.apply(&mut he, ctx);
            el.push(he);
        }
        for d in &self.devices {
            let mut de = Element::new("device");
            de.set("path", d.path.as_str());
            de.set_opt("part_separator", d.part_separator.map(yes_no));
            d.extra.apply(&mut de, ctx);
            el.push(de);
        }
        push_attr_leaf(&mut el, "dir", "path", self.dir.as_deref(), x, ctx);
        if let Some(a) = &self.adapter {
            ctx.unknown.push("pool/source/adapter".into());
            el.push(a.clone());
        }
        push_leaf(&mut el, "name", self.name.as_deref(), x, ctx);
        if let Some(i) = &self.initiator {
            ctx.unknown.push("pool/source/initiator".into());
            el.push(i.clone());
        }
        push_attr_leaf(&mut el, "format", "type", self.format.as_deref(), x, ctx);
        if let Some(a) = &self.auth {
            let mut ae = Element::new("auth");
            ae.set("type", a.auth_type.as_str());
            ae.set("username", a.username.as_str());
            ae.push(a.secret.clone());
            a.extra.apply(&mut ae, ctx);
            el.push(ae);
        }
        push_attr_leaf(
            &mut el,
            "protocol",
            "ver",
            self.protocol_ver.as_deref(),
            x,
            ctx,
        );
        push_attr_leaf(&mut el, "vendor", "name", self.vendor.as_deref(), x, ctx);
        push_attr_leaf(&mut el, "product", "name", self.product.as_deref(), x, ctx);
        x.apply(&mut el, ctx);
        el
    }
}

impl SourceHost {
    fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let name = s.req_attr("name")?.to_string();
        let port = s
            .attr_parse("port", values::uint::<u16>)?
            .filter(|p| *p != 0);
        Ok(SourceHost {
            name,
            port,
            extra: s.finish(),
        })
    }
}

impl SourceDevice {
    fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let input = s.element();
        let path = s.req_attr("path")?.to_string();
        let part_separator = tristate(&mut s, "part_separator")?;
        skip(&mut s, "freeExtent");
        let mut dev = SourceDevice {
            path,
            part_separator,
            extra: s.finish(),
        };
        // Nothing known is written inside <device>: unknown children anchor at its start.
        settle(&mut dev.extra, input, &Element::new("device"));
        Ok(dev)
    }
}

impl SourceAuth {
    fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let auth_type = s.attr_enum("type", &["chap", "ceph"])?.ok_or_else(|| {
            XmlError::invalid(
                s.attr_loc("type"),
                "a storage pool's authentication needs a type: chap or ceph",
            )
        })?;
        let username = s.req_attr("username")?.to_string();
        let secret = s
            .child("secret")?
            .map(|c| c.element().clone())
            .ok_or_else(|| XmlError::missing(format!("{}/<secret>", s.loc())))?;
        Ok(SourceAuth {
            auth_type,
            username,
            secret,
            extra: s.finish(),
        })
    }
}

/// libvirt reads an `<adapter>` without a type but with a name as a SCSI host adapter, and
/// writes the type.
fn legacy_adapter(el: &Element) -> Element {
    let mut adapter = el.clone();
    if adapter.attr("type").is_none() && adapter.attr("name").is_some() {
        adapter
            .attrs
            .insert(0, ("type".to_string(), "scsi_host".to_string()));
    }
    adapter
}
