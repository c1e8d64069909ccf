//! `<cpu>`: the CPU model the guest sees.

use std::fmt;

use super::error::XmlError;
use super::extra::{Extra, FmtCtx};
use super::scope::Scope;
use super::tree::Element;
use super::values::{ON_OFF, positive};

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
    pub features: Vec<CpuFeature>,
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
