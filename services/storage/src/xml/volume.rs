//! `<volume>`: a storage volume definition (libvirt's `virStorageVolDefParseXML` and
//! `virStorageVolDefFormat`).
//!
//! As in libvirt, the live parts of a volume are not read from a definition: `<source>`
//! (extents), `<physical>` and `<target>/<timestamps>` are dropped at parse; the driver
//! fills [`VolDef::physical`] and [`VolTarget::timestamps`] for `vol-dumpxml`. The default
//! format depends on the pool, so it is applied by [`VolDef::apply_pool_defaults`], not at
//! parse. An `<encryption>` is kept as written, in libvirt's position.

use virtplane_xml::{Element, Extra, FmtCtx, Scope, XmlError, write_document};

use super::helpers::{attr_leaf, push_attr_leaf, push_leaf, settle, size_element, size_leaf, skip};
use super::perms::Permissions;
use super::pool_types::default_volume_format;

/// Volume types libvirt knows (`virStorageVolType`).
pub const VOLUME_TYPES: &[&str] = &["file", "block", "dir", "network", "netdir", "ploop"];

/// qcow2 features libvirt knows (`virStorageFileFeature`), in its output order.
pub const VOLUME_FEATURES: &[&str] = &["lazy_refcounts", "extended_l2"];

/// A storage volume definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolDef {
    /// One of [`VOLUME_TYPES`]; `file` when the document names none, as libvirt.
    pub vol_type: String,
    pub name: String,
    /// Normally set by the driver (the path, for a file); kept when a document has one.
    pub key: Option<String>,
    /// Bytes. Meaningful only when `capacity_given`.
    pub capacity: u64,
    /// Whether the document stated a capacity: libvirt requires one except when cloning,
    /// so the API decides. A volume without one formats without `<capacity>`; a driver that
    /// fills in the figures sets this.
    pub capacity_given: bool,
    /// Bytes to allocate at creation (libvirt: all of the capacity when absent); the
    /// allocated size when the driver fills in a live volume.
    pub allocation: Option<u64>,
    /// Live: the size on disk, filled in by the driver (written when non-zero); never read.
    pub physical: Option<u64>,
    pub target: VolTarget,
    pub backing_store: Option<BackingStore>,
    /// Unknown content; `sub` holds that of the leaves.
    pub extra: Extra,
}

/// `<target>`: the volume's file or device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VolTarget {
    pub path: Option<String>,
    /// `raw`, `qcow2`, `iso`, … as written: which formats exist is the driver's business.
    pub format: Option<String>,
    pub permissions: Option<Permissions>,
    /// Live: filled in by the driver, never read from a definition.
    pub timestamps: Option<VolTimestamps>,
    /// `<encryption>` as written (LUKS, qcow): its presence is what a driver must check.
    pub encryption: Option<Element>,
    /// qcow2 compatibility level (`0.10`, `1.1`); `1.1` when `<features>` is present.
    pub compat: Option<String>,
    /// `<nocow/>`: disable copy-on-write (btrfs). libvirt reads but never writes it; we
    /// write it back.
    pub nocow: bool,
    /// qcow2 cluster size in bytes (written with `unit='B'`, as libvirt).
    pub cluster_size: Option<u64>,
    /// qcow2 features (of [`VOLUME_FEATURES`], in libvirt's order); `Some(empty)` is an
    /// empty `<features/>`, which still asks for qcow2 v3 (compat 1.1).
    pub features: Option<Vec<String>>,
    /// Unknown content; `sub` holds that of the leaves and of `<features>`.
    pub extra: Extra,
}

/// `<backingStore>`: the image a copy-on-write volume is layered on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackingStore {
    pub path: String,
    pub format: Option<String>,
    pub permissions: Option<Permissions>,
    pub extra: Extra,
}

/// `<timestamps>` of a live volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VolTimestamps {
    pub atime: Option<Timestamp>,
    pub mtime: Option<Timestamp>,
    pub ctime: Option<Timestamp>,
    /// Birth time, where the file system records it.
    pub btime: Option<Timestamp>,
}

/// Seconds and nanoseconds since the epoch (written `1341933637.273190990`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl VolDef {
    /// Builds the model from a parsed root element (not yet validated).
    pub(crate) fn from_root(root: &Element) -> Result<Self, XmlError> {
        if root.name != "volume" {
            return Err(XmlError::invalid(
                format!("<{}>", root.name),
                "the root element must be <volume>",
            ));
        }
        let mut s = Scope::root(root);
        let vol_type = s
            .attr_enum("type", VOLUME_TYPES)?
            .unwrap_or_else(|| "file".into());
        let name = s
            .leaf("name")?
            .filter(|n| !n.is_empty())
            .ok_or_else(|| XmlError::missing("<name>"))?;
        let key = s.leaf("key")?.filter(|k| !k.is_empty());
        skip(&mut s, "source");
        let capacity = size_leaf(&mut s, "capacity")?;
        let allocation = size_leaf(&mut s, "allocation")?;
        skip(&mut s, "physical");
        let target = s
            .child("target")?
            .map(VolTarget::parse)
            .transpose()?
            .unwrap_or_default();
        // libvirt ignores a <backingStore> without a path (domain XML's `<backingStore/>`
        // style); it stays as unknown content then.
        let has_backing = root.elements().any(|e| {
            e.name == "backingStore"
                && e.elements()
                    .any(|p| p.name == "path" && !p.text().is_empty())
        });
        let backing_store = if has_backing {
            s.child("backingStore")?
                .map(BackingStore::parse)
                .transpose()?
        } else {
            None
        };
        let mut def = VolDef {
            vol_type,
            name,
            key,
            capacity: capacity.unwrap_or(0),
            capacity_given: capacity.is_some(),
            allocation,
            physical: None,
            target,
            backing_store,
            extra: s.finish(),
        };
        let written = def.to_element(&mut FmtCtx::default());
        settle(&mut def.extra, root, &written);
        Ok(def)
    }

    /// libvirt's per-pool defaults: a volume (and its backing store) without a format gets
    /// the pool type's default (`raw` in dir, fs, netfs, … pools; `none` in a disk pool).
    /// Call it when a definition is bound to its pool (vol-create).
    pub fn apply_pool_defaults(&mut self, pool_type: &str) {
        let Some(format) = default_volume_format(pool_type) else {
            return;
        };
        self.target.format.get_or_insert_with(|| format.into());
        if let Some(b) = &mut self.backing_store {
            b.format.get_or_insert_with(|| format.into());
        }
    }

    /// Formats the definition in libvirt's layout (`vol-dumpxml`), indented by two spaces.
    pub fn to_xml(&self) -> String {
        write_document(&self.to_element(&mut FmtCtx::default()))
    }

    /// Paths of kept-but-unmodelled elements and attributes (`volume/target/encryption`),
    /// so a driver can say what it does not honour.
    pub fn unknown_elements(&self) -> Vec<String> {
        let mut ctx = FmtCtx::default();
        self.to_element(&mut ctx);
        let mut seen = std::collections::BTreeSet::new();
        ctx.unknown.retain(|p| seen.insert(p.clone()));
        ctx.unknown
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let x = &self.extra;
        let mut el = Element::new("volume");
        el.set("type", self.vol_type.as_str());
        push_leaf(&mut el, "name", Some(&self.name), x, ctx);
        push_leaf(&mut el, "key", self.key.as_deref(), x, ctx);
        if self.capacity_given {
            el.push(size_element("capacity", self.capacity, x, ctx));
        }
        if let Some(a) = self.allocation {
            el.push(size_element("allocation", a, x, ctx));
        }
        if let Some(p) = self.physical.filter(|p| *p != 0) {
            el.push(size_element("physical", p, x, ctx));
        }
        el.push(self.target.to_element(ctx));
        if let Some(b) = &self.backing_store {
            el.push(b.to_element(ctx));
        }
        x.apply(&mut el, ctx);
        el
    }
}

impl VolTarget {
    fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let input = s.element();
        let path = s.leaf("path")?.filter(|p| !p.is_empty());
        let format = attr_leaf(&mut s, "format", "type")?;
        let permissions = s
            .child("permissions")?
            .map(Permissions::parse)
            .transpose()?
            .flatten();
        skip(&mut s, "timestamps");
        let encryption = s.child("encryption")?.map(|e| e.element().clone());
        let mut compat = s.leaf("compat")?;
        if let Some(c) = &compat {
            check_compat(c)?;
        }
        let nocow = match s.child("nocow")? {
            None => false,
            Some(n) => {
                s.keep("nocow", n.finish());
                true
            }
        };
        let cluster_size = size_leaf(&mut s, "clusterSize")?.filter(|c| *c != 0);
        let features = match s.child("features")? {
            None => None,
            Some(f) => Some(parse_features(&mut s, f)?),
        };
        if features.is_some() && compat.is_none() {
            compat = Some("1.1".into());
        }
        let mut target = VolTarget {
            path,
            format,
            permissions,
            timestamps: None,
            encryption,
            compat,
            nocow,
            cluster_size,
            features,
            extra: s.finish(),
        };
        let written = target.to_element(&mut FmtCtx::default());
        settle(&mut target.extra, input, &written);
        Ok(target)
    }

    fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let x = &self.extra;
        let mut el = Element::new("target");
        push_leaf(&mut el, "path", self.path.as_deref(), x, ctx);
        push_attr_leaf(&mut el, "format", "type", self.format.as_deref(), x, ctx);
        if let Some(p) = &self.permissions {
            el.push(p.to_element(ctx));
        }
        if let Some(t) = &self.timestamps {
            el.push(t.to_element());
        }
        if let Some(e) = &self.encryption {
            ctx.unknown.push("volume/target/encryption".into());
            el.push(e.clone());
        }
        push_leaf(&mut el, "compat", self.compat.as_deref(), x, ctx);
        if self.nocow {
            let mut n = Element::new("nocow");
            x.apply_sub("nocow", &mut n, ctx);
            el.push(n);
        }
        if let Some(c) = self.cluster_size {
            let mut cs = Element::with_text("clusterSize", c.to_string());
            cs.set("unit", "B");
            x.apply_sub("clusterSize", &mut cs, ctx);
            el.push(cs);
        }
        if let Some(features) = &self.features {
            let fx = x.sub.get("features").cloned().unwrap_or_default();
            let mut fe = Element::new("features");
            for name in VOLUME_FEATURES {
                if features.iter().any(|f| f == name) {
                    let mut f = Element::new(*name);
                    fx.apply_sub(name, &mut f, ctx);
                    fe.push(f);
                }
            }
            fx.apply(&mut fe, ctx);
            el.push(fe);
        }
        x.apply(&mut el, ctx);
        el
    }
}

impl BackingStore {
    fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let input = s.element();
        let path = s
            .leaf("path")?
            .filter(|p| !p.is_empty())
            .ok_or_else(|| XmlError::missing("<backingStore>/<path>"))?;
        let format = attr_leaf(&mut s, "format", "type")?;
        let permissions = s
            .child("permissions")?
            .map(Permissions::parse)
            .transpose()?
            .flatten();
        let mut backing = BackingStore {
            path,
            format,
            permissions,
            extra: s.finish(),
        };
        let written = backing.to_element(&mut FmtCtx::default());
        settle(&mut backing.extra, input, &written);
        Ok(backing)
    }

    fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let x = &self.extra;
        let mut el = Element::new("backingStore");
        push_leaf(&mut el, "path", Some(&self.path), x, ctx);
        push_attr_leaf(&mut el, "format", "type", self.format.as_deref(), x, ctx);
        if let Some(p) = &self.permissions {
            el.push(p.to_element(ctx));
        }
        x.apply(&mut el, ctx);
        el
    }
}

impl VolTimestamps {
    fn to_element(self) -> Element {
        let mut el = Element::new("timestamps");
        for (name, ts) in [
            ("atime", self.atime),
            ("mtime", self.mtime),
            ("ctime", self.ctime),
            ("btime", self.btime),
        ] {
            if let Some(t) = ts {
                let text = if t.nanos == 0 {
                    t.secs.to_string()
                } else {
                    format!("{}.{:09}", t.secs, t.nanos)
                };
                el.push(Element::with_text(name, text));
            }
        }
        el
    }
}

/// `<compat>`: two dot-separated numbers, as libvirt's `virStorageCheckCompat`.
fn check_compat(compat: &str) -> Result<(), XmlError> {
    let number = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    match compat.split_once('.') {
        Some((major, minor)) if number(major) && number(minor) => Ok(()),
        _ => Err(XmlError::value(
            "<target>/<compat>",
            compat,
            "a qcow2 compatibility level like 0.10 or 1.1",
        )),
    }
}

/// `<features>`: each child names a qcow2 feature libvirt knows; duplicates collapse.
fn parse_features(target: &mut Scope<'_>, mut f: Scope<'_>) -> Result<Vec<String>, XmlError> {
    let mut names: Vec<String> = Vec::new();
    for (el, child) in f.matching(|_| true) {
        if !VOLUME_FEATURES.contains(&el.name.as_str()) {
            return Err(XmlError::value(
                "<target>/<features>",
                el.name.as_str(),
                format!("a qcow2 feature: one of {}", VOLUME_FEATURES.join(", ")),
            ));
        }
        if !names.contains(&el.name) {
            names.push(el.name.clone());
        }
        let extra = child.finish();
        f.keep(&el.name, extra);
    }
    names.sort_by_key(|n| VOLUME_FEATURES.iter().position(|k| k == n));
    target.keep("features", f.finish());
    Ok(names)
}
