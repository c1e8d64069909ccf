//! `<pool>`: a storage pool definition (libvirt's `virStoragePoolDefParseXML` and
//! `virStoragePoolDefFormatBuf`).
//!
//! libvirt's defaults are applied while parsing, so a definition formats as `pool-dumpxml`
//! shows it: a source format per type (`auto` for fs/netfs, `lvm2` for logical), the source
//! name of a logical/RBD/Gluster/ZFS/vstorage pool from the pool's name (and the reverse),
//! the target of a logical (`/dev/VG`) or ZFS (`/dev/zvol/POOL`) pool from that name,
//! Gluster's source directory `/`, cleaned-up paths. The capacity figures are live state:
//! libvirt does not read them from a definition and neither do we; the driver fills them in.

use virtplane_xml::{Element, Extra, FmtCtx, Scope, XmlError, values, write_document};

use super::helpers::{push_leaf, sanitize_path, settle, size_element, skip, tristate, yes_no};
use super::perms::Permissions;
use super::pool_source::PoolSource;
use super::pool_types::{self, POOL_TYPES, PoolTypeInfo};

/// A storage pool definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolDef {
    /// `dir`, `fs`, `netfs`, `logical`, … (one of [`POOL_TYPES`]).
    pub pool_type: String,
    pub name: String,
    /// Canonical (lowercase, hyphenated); `None` when the document has none: the caller
    /// assigns one at define, as libvirt generates one.
    pub uuid: Option<String>,
    /// Live figures in bytes, filled in by the driver (`None`: unknown, written as 0 as
    /// libvirt does for an inactive pool). Never read from a definition.
    pub capacity: Option<u64>,
    pub allocation: Option<u64>,
    pub available: Option<u64>,
    /// `<features><cow state/></features>`: copy-on-write for the pool's files (btrfs);
    /// dir and fs pools only.
    pub cow: Option<bool>,
    /// `None` when there is nothing in it (libvirt writes an empty `<source>` anyway).
    pub source: Option<PoolSource>,
    pub target: Option<PoolTarget>,
    /// `<refresh><volume allocation/></refresh>` (RBD), kept as written after `<target>`.
    pub refresh: Option<Element>,
    /// Unknown content (`xmlns:fs` and `<fs:mount_opts>`, `<rbd:config_opts>`, …); `sub`
    /// holds that of the leaves and of `<features>`.
    pub extra: Extra,
}

/// `<target>`: where the pool is on this host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolTarget {
    /// The pool's directory (or device directory), cleaned up as libvirt does.
    pub path: Option<String>,
    pub permissions: Option<Permissions>,
    pub extra: Extra,
}

impl PoolDef {
    /// Builds the model from a parsed root element, with libvirt's defaults (not yet
    /// validated).
    pub(crate) fn from_root(root: &Element) -> Result<Self, XmlError> {
        if root.name != "pool" {
            return Err(XmlError::invalid(
                format!("<{}>", root.name),
                "the root element must be <pool>",
            ));
        }
        let mut s = Scope::root(root);
        let pool_type = s.req_attr("type")?.to_string();
        let Some(info) = pool_types::info(&pool_type) else {
            return Err(XmlError::value(
                s.attr_loc("type"),
                pool_type,
                format!("one of {}", POOL_TYPES.join(", ")),
            ));
        };
        let given_name = s.leaf("name")?.filter(|n| !n.is_empty());
        let uuid = match s.leaf("uuid")? {
            None => None,
            Some(u) => Some(values::uuid(&u).map_err(|e| XmlError::value("<uuid>", u.trim(), e))?),
        };
        for live in ["capacity", "allocation", "available"] {
            skip(&mut s, live);
        }
        let cow = parse_features(&mut s)?;
        let mut source = s
            .child("source")?
            .map(PoolSource::parse)
            .transpose()?
            .unwrap_or_default();
        let mut target = s.child("target")?.map(PoolTarget::parse).transpose()?;
        let refresh = s.child("refresh")?.map(parse_refresh).transpose()?;

        if pool_type == "rbd" && source.name.is_none() {
            return Err(XmlError::missing(
                "<source>/<name> (an RBD pool names its Ceph pool)",
            ));
        }
        let name = match given_name {
            Some(n) => n,
            None if info.source_name => source.name.clone().ok_or_else(|| {
                XmlError::missing(format!(
                    "<name> (or a <source>/<name> for the {pool_type} pool to be named after)"
                ))
            })?,
            None => return Err(XmlError::missing("<name>")),
        };
        apply_type_defaults(&pool_type, info, &name, &mut source, &mut target)?;
        let mut def = PoolDef {
            pool_type,
            name,
            uuid,
            capacity: None,
            allocation: None,
            available: None,
            cow,
            source: (!source.is_empty()).then_some(source),
            target,
            refresh,
            extra: s.finish(),
        };
        let written = def.to_element(&mut FmtCtx::default());
        settle(&mut def.extra, root, &written);
        Ok(def)
    }

    /// Formats the definition in libvirt's layout (`pool-dumpxml`), indented by two spaces.
    pub fn to_xml(&self) -> String {
        let text = write_document(&self.to_element(&mut FmtCtx::default()));
        // libvirt writes an empty source as an open and a close tag; so do we, when the
        // self-closed form appears once (only a comment could hold a second copy).
        const EMPTY: &str = "\n  <source/>\n";
        if text.matches(EMPTY).count() == 1 {
            return text.replacen(EMPTY, "\n  <source>\n  </source>\n", 1);
        }
        text
    }

    /// Paths of kept-but-unmodelled elements and attributes (`pool/fs:mount_opts`,
    /// `pool/source/adapter`), so a driver can say what it does not honour.
    pub fn unknown_elements(&self) -> Vec<String> {
        let mut ctx = FmtCtx::default();
        self.to_element(&mut ctx);
        let mut seen = std::collections::BTreeSet::new();
        ctx.unknown.retain(|p| seen.insert(p.clone()));
        ctx.unknown
    }

    /// The pool's directory: `<target>/<path>`.
    pub fn target_path(&self) -> Option<&str> {
        self.target.as_ref()?.path.as_deref()
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let x = &self.extra;
        let mut el = Element::new("pool");
        el.set("type", self.pool_type.as_str());
        push_leaf(&mut el, "name", Some(&self.name), x, ctx);
        push_leaf(&mut el, "uuid", self.uuid.as_deref(), x, ctx);
        for (name, value) in [
            ("capacity", self.capacity),
            ("allocation", self.allocation),
            ("available", self.available),
        ] {
            el.push(size_element(name, value.unwrap_or(0), x, ctx));
        }
        let features_extra = x.sub.get("features");
        if self.cow.is_some() || features_extra.is_some() {
            let mut features = Element::new("features");
            let fx = features_extra.cloned().unwrap_or_default();
            if let Some(cow) = self.cow {
                let mut c = Element::new("cow");
                c.set("state", yes_no(cow));
                fx.apply_sub("cow", &mut c, ctx);
                features.push(c);
            }
            fx.apply(&mut features, ctx);
            el.push(features);
        }
        let source = match &self.source {
            Some(src) => src.to_element(ctx),
            None => Element::new("source"),
        };
        el.push(source);
        if let Some(t) = &self.target {
            el.push(t.to_element(ctx));
        }
        if let Some(r) = &self.refresh {
            el.push(r.clone());
        }
        x.apply(&mut el, ctx);
        el
    }
}

/// libvirt's per-type defaults: the source name of a logical, RBD, Gluster, ZFS or vstorage
/// pool (the pool's name), the source format (checked against the type's list), Gluster's
/// source directory, the target of a logical or ZFS pool (derived from the source name,
/// replacing any given path, as libvirt does).
fn apply_type_defaults(
    pool_type: &str,
    info: PoolTypeInfo,
    name: &str,
    source: &mut PoolSource,
    target: &mut Option<PoolTarget>,
) -> Result<(), XmlError> {
    if info.source_name && source.name.is_none() {
        source.name = Some(name.to_string());
    }
    if !info.formats.is_empty() {
        match &source.format {
            None => source.format = info.default_format.map(str::to_string),
            Some(f) if !info.formats.contains(&f.as_str()) => {
                return Err(XmlError::value(
                    "<source>/<format> attribute 'type'",
                    f.as_str(),
                    format!(
                        "a {pool_type} pool format: one of {}",
                        info.formats.join(", ")
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    if pool_type == "gluster" && source.dir.is_none() {
        source.dir = Some("/".into());
    }
    let computed_target = match (pool_type, &source.name) {
        ("logical", Some(vg)) => Some(format!("/dev/{vg}")),
        ("zfs", Some(zpool)) => Some(format!("/dev/zvol/{zpool}")),
        _ => None,
    };
    if let Some(path) = computed_target {
        target.get_or_insert_with(PoolTarget::default).path = Some(sanitize_path(&path));
    }
    Ok(())
}

impl PoolTarget {
    fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let input = s.element();
        let path = s.leaf("path")?.map(|p| sanitize_path(&p));
        let permissions = s
            .child("permissions")?
            .map(Permissions::parse)
            .transpose()?
            .flatten();
        let mut target = PoolTarget {
            path: path.filter(|p| !p.is_empty()),
            permissions,
            extra: s.finish(),
        };
        let written = target.to_element(&mut FmtCtx::default());
        settle(&mut target.extra, input, &written);
        Ok(target)
    }

    fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("target");
        push_leaf(&mut el, "path", self.path.as_deref(), &self.extra, ctx);
        if let Some(p) = &self.permissions {
            el.push(p.to_element(ctx));
        }
        self.extra.apply(&mut el, ctx);
        el
    }
}

/// `<features><cow state='yes|no'/></features>`; the rest of `<features>` is kept.
fn parse_features(s: &mut Scope<'_>) -> Result<Option<bool>, XmlError> {
    let Some(mut f) = s.child("features")? else {
        return Ok(None);
    };
    let input = f.element();
    // A <cow> without a state sets nothing (libvirt ignores it): it stays unknown content.
    let has_state = input
        .elements()
        .any(|e| e.name == "cow" && e.attr("state").is_some());
    let cow_scope = if has_state { f.child("cow")? } else { None };
    let cow = match cow_scope {
        Some(mut c) => {
            let state = tristate(&mut c, "state")?;
            f.keep("cow", c.finish());
            state
        }
        None => None,
    };
    let mut extra = f.finish();
    let mut written = Element::new("features");
    if cow.is_some() {
        written.push(Element::new("cow"));
    }
    settle(&mut extra, input, &written);
    s.keep("features", extra);
    Ok(cow)
}

/// `<refresh><volume allocation='default|capacity'/></refresh>`, checked and kept.
fn parse_refresh(s: Scope<'_>) -> Result<Element, XmlError> {
    let el = s.element();
    if let Some(v) = el.elements().find(|e| e.name == "volume")
        && let Some(a) = v.attr("allocation")
        && !["default", "capacity"].contains(&a)
    {
        return Err(XmlError::value(
            "<refresh>/<volume> attribute 'allocation'",
            a,
            "default or capacity",
        ));
    }
    Ok(el.clone())
}
