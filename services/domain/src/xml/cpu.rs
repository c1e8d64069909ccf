//! `<cpu>`: the CPU model the guest sees.

use std::fmt;

use super::error::XmlError;
use super::extra::{Extra, FmtCtx};
use super::scope::Scope;
use super::tree::Element;
use super::values::{ON_OFF, positive, uint};

/// `<cpu mode=…>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuMode {
    Custom,
    HostModel,
    HostPassthrough,
    Maximum,
}

impl CpuMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CpuMode::Custom => "custom",
            CpuMode::HostModel => "host-model",
            CpuMode::HostPassthrough => "host-passthrough",
            CpuMode::Maximum => "maximum",
        }
    }

    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "custom" => Ok(CpuMode::Custom),
            "host-model" => Ok(CpuMode::HostModel),
            "host-passthrough" => Ok(CpuMode::HostPassthrough),
            "maximum" => Ok(CpuMode::Maximum),
            _ => Err("one of custom, host-model, host-passthrough, maximum".into()),
        }
    }
}

impl fmt::Display for CpuMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `<cpu>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cpu {
    pub mode: Option<CpuMode>,
    /// `match`: minimum, exact, strict.
    pub match_mode: Option<String>,
    /// `check`: none, partial, full.
    pub check: Option<String>,
    /// `migratable`: on, off.
    pub migratable: Option<String>,
    pub model: Option<CpuModel>,
    pub vendor: Option<String>,
    pub topology: Option<CpuTopology>,
    pub cache: Option<CpuCache>,
    pub maxphysaddr: Option<CpuMaxPhysAddr>,
    pub features: Vec<CpuFeature>,
    pub extra: Extra,
}

/// `<cache level=… mode=…/>`: what the guest is told about the CPU caches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuCache {
    pub level: Option<u32>,
    /// emulate, passthrough, disable.
    pub mode: String,
    pub extra: Extra,
}

/// `<maxphysaddr mode=… bits=…/>`: the guest's physical address width.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuMaxPhysAddr {
    /// passthrough (the host's width) or emulate (`bits`).
    pub mode: String,
    pub bits: Option<u32>,
    pub extra: Extra,
}

/// `<model fallback=…>name</model>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuModel {
    pub name: String,
    pub fallback: Option<String>,
    pub extra: Extra,
}

/// `<topology sockets= dies= cores= threads=/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuTopology {
    pub sockets: u32,
    pub dies: Option<u32>,
    pub cores: u32,
    pub threads: u32,
    pub extra: Extra,
}

/// `<feature policy= name=/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuFeature {
    pub policy: Option<String>,
    pub name: String,
    pub extra: Extra,
}

impl Cpu {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let mode = s.attr_parse("mode", CpuMode::parse)?;
        let match_mode = s.attr_enum("match", &["minimum", "exact", "strict"])?;
        let check = s.attr_enum("check", &["none", "partial", "full"])?;
        let migratable = s.attr_enum("migratable", ON_OFF)?;
        let model = match s.child("model")? {
            None => None,
            Some(mut m) => {
                let fallback = m.attr_enum("fallback", &["allow", "forbid"])?;
                let name = m.text().trim().to_string();
                Some(CpuModel {
                    name,
                    fallback,
                    extra: m.finish(),
                })
            }
        };
        let vendor = s.leaf("vendor")?;
        let topology = match s.child("topology")? {
            None => None,
            Some(mut t) => {
                let req = |t: &mut Scope<'_>, name: &str| -> Result<u32, XmlError> {
                    t.attr_parse(name, positive)?
                        .ok_or_else(|| XmlError::missing(t.attr_loc(name)))
                };
                let sockets = req(&mut t, "sockets")?;
                let dies = t.attr_parse("dies", positive)?;
                let cores = req(&mut t, "cores")?;
                let threads = req(&mut t, "threads")?;
                Some(CpuTopology {
                    sockets,
                    dies,
                    cores,
                    threads,
                    extra: t.finish(),
                })
            }
        };
        let cache = match s.child("cache")? {
            None => None,
            Some(mut c) => Some(CpuCache {
                level: c.attr_parse("level", uint::<u32>)?,
                mode: c
                    .attr_enum("mode", &["emulate", "passthrough", "disable"])?
                    .ok_or_else(|| XmlError::missing(c.attr_loc("mode")))?,
                extra: c.finish(),
            }),
        };
        let maxphysaddr = match s.child("maxphysaddr")? {
            None => None,
            Some(mut m) => Some(CpuMaxPhysAddr {
                mode: m
                    .attr_enum("mode", &["passthrough", "emulate"])?
                    .ok_or_else(|| XmlError::missing(m.attr_loc("mode")))?,
                bits: m.attr_parse("bits", uint::<u32>)?,
                extra: m.finish(),
            }),
        };
        let mut features = Vec::new();
        for mut f in s.children("feature") {
            let policy = f.attr_enum(
                "policy",
                &["force", "require", "optional", "disable", "forbid"],
            )?;
            let name = f.req_attr("name")?.to_string();
            features.push(CpuFeature {
                policy,
                name,
                extra: f.finish(),
            });
        }
        Ok(Cpu {
            mode,
            match_mode,
            check,
            migratable,
            model,
            vendor,
            topology,
            cache,
            maxphysaddr,
            features,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("cpu");
        el.set_opt("mode", self.mode.map(CpuMode::as_str));
        el.set_opt("match", self.match_mode.as_deref());
        el.set_opt("check", self.check.as_deref());
        el.set_opt("migratable", self.migratable.as_deref());
        if let Some(m) = &self.model {
            let mut me = Element::with_text("model", m.name.as_str());
            me.set_opt("fallback", m.fallback.as_deref());
            m.extra.apply(&mut me, ctx);
            el.push(me);
        }
        if let Some(v) = &self.vendor {
            let mut ve = Element::with_text("vendor", v.as_str());
            self.extra.apply_sub("vendor", &mut ve, ctx);
            el.push(ve);
        }
        if let Some(t) = &self.topology {
            let mut te = Element::new("topology");
            te.set("sockets", t.sockets.to_string());
            te.set_opt("dies", t.dies);
            te.set("cores", t.cores.to_string());
            te.set("threads", t.threads.to_string());
            t.extra.apply(&mut te, ctx);
            el.push(te);
        }
        if let Some(c) = &self.cache {
            let mut ce = Element::new("cache");
            ce.set_opt("level", c.level);
            ce.set("mode", c.mode.as_str());
            c.extra.apply(&mut ce, ctx);
            el.push(ce);
        }
        if let Some(m) = &self.maxphysaddr {
            let mut me = Element::new("maxphysaddr");
            me.set("mode", m.mode.as_str());
            me.set_opt("bits", m.bits);
            m.extra.apply(&mut me, ctx);
            el.push(me);
        }
        for f in &self.features {
            let mut fe = Element::new("feature");
            fe.set_opt("policy", f.policy.as_deref());
            fe.set("name", f.name.as_str());
            f.extra.apply(&mut fe, ctx);
            el.push(fe);
        }
        self.extra.apply(&mut el, ctx);
        el
    }
}
