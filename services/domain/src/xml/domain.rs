//! `<domain>`: the root, its top-level elements, and the format entry point.

use super::clock::Clock;
use super::cpu::Cpu;
use super::devices::Devices;
use super::error::XmlError;
use super::extra::{Extra, FmtCtx};
use super::features::Features;
use super::lifecycle::{LifecycleAction, LifecycleEvent};
use super::os::Os;
use super::pm::Pm;
use super::qemu::{QEMU_NS, QemuCommandline, in_qemu_ns};
use super::resources::{
    MaxMemory, Vcpu, max_memory_element, memory_element, parse_max_memory, parse_memory,
    parse_vcpu, vcpu_element,
};
use super::scope::Scope;
use super::tree::{Element, Node, split_qname};
use super::write::write_document;

/// Hypervisor types libvirt knows (`virDomainVirt`).
pub const DOMAIN_TYPES: &[&str] = &[
    "none",
    "qemu",
    "kqemu",
    "kvm",
    "xen",
    "lxc",
    "uml",
    "openvz",
    "test",
    "vmware",
    "hyperv",
    "vbox",
    "phyp",
    "parallels",
    "bhyve",
    "vz",
    "hvf",
];

/// How to format a definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FormatOptions {
    /// Include secrets (graphics `passwd`), like `VIR_DOMAIN_XML_SECURE`.
    pub secure: bool,
    /// The running domain's id, written as `<domain id='N'>`.
    pub live_id: Option<i32>,
}

/// A domain definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainDef {
    /// `<domain type=…>`: kvm, qemu, test, ...
    pub domain_type: String,
    pub name: String,
    /// Canonical: lowercase, hyphenated.
    pub uuid: String,
    /// `<genid>`: the VM generation ID the guest sees (canonical UUID form); generated at
    /// define for an empty `<genid/>`, as libvirt does.
    pub genid: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// `<metadata>` as written: applications' own namespaced data, opaque to us.
    pub metadata: Option<Element>,
    pub memory_kib: u64,
    /// `<currentMemory>`; see [`DomainDef::effective_current_memory_kib`].
    pub current_memory_kib: Option<u64>,
    pub max_memory: Option<MaxMemory>,
    pub vcpu: Vcpu,
    pub os: Os,
    pub features: Option<Features>,
    pub cpu: Option<Cpu>,
    pub clock: Option<Clock>,
    pub on_poweroff: Option<LifecycleAction>,
    pub on_reboot: Option<LifecycleAction>,
    pub on_crash: Option<LifecycleAction>,
    pub pm: Option<Pm>,
    pub devices: Devices,
    pub qemu_commandline: Option<QemuCommandline>,
    /// Unknown top-level content (seclabel, cputune, ...) and unknown attributes of the
    /// modelled top-level leaves.
    pub extra: Extra,
}

impl DomainDef {
    /// Builds the model from a parsed root element (not yet validated).
    pub(crate) fn from_root(root: &Element) -> Result<Self, XmlError> {
        if root.name != "domain" {
            return Err(XmlError::invalid(
                format!("<{}>", root.name),
                "the root element must be <domain>",
            ));
        }
        let mut s = Scope::root(root);
        let domain_type = s
            .attr_enum("type", DOMAIN_TYPES)?
            .ok_or_else(|| XmlError::missing(s.attr_loc("type")))?;
        // The id of a running domain is state, not definition: FormatOptions::live_id
        // writes it back.
        let _ = s.attr("id");
        // Written back whenever the output uses the qemu: prefix.
        if root.attr("xmlns:qemu") == Some(QEMU_NS) {
            let _ = s.attr("xmlns:qemu");
        }
        let name = s.leaf("name")?.ok_or_else(|| XmlError::missing("<name>"))?;
        let uuid = match s.leaf("uuid")? {
            Some(u) => {
                super::values::uuid(&u).map_err(|e| XmlError::value("<uuid>", u.trim(), e))?
            }
            // libvirt generates one when absent.
            None => uuid::Uuid::new_v4().hyphenated().to_string(),
        };
        let genid = match s.leaf("genid")? {
            None => None,
            Some(g) if g.trim().is_empty() => Some(uuid::Uuid::new_v4().hyphenated().to_string()),
            Some(g) => {
                Some(super::values::uuid(&g).map_err(|e| XmlError::value("<genid>", g.trim(), e))?)
            }
        };
        let title = s.leaf("title")?;
        let description = s.leaf("description")?;
        let metadata = s.child("metadata")?.map(|m| m.element().clone());
        let max_memory = parse_max_memory(&mut s)?;
        let memory_kib =
            parse_memory(&mut s, "memory")?.ok_or_else(|| XmlError::missing("<memory>"))?;
        let current_memory_kib = parse_memory(&mut s, "currentMemory")?;
        let vcpu = parse_vcpu(&mut s)?;
        let os = s
            .child("os")?
            .map(Os::parse)
            .transpose()?
            .ok_or_else(|| XmlError::missing("<os>"))?;
        let features = s.child("features")?.map(Features::parse).transpose()?;
        let cpu = s.child("cpu")?.map(Cpu::parse).transpose()?;
        let clock = s.child("clock")?.map(Clock::parse).transpose()?;
        let lifecycle = |s: &mut Scope<'_>, event: LifecycleEvent| {
            s.leaf(event.element())?
                .map(|t| LifecycleAction::parse(&t, event))
                .transpose()
        };
        let on_poweroff = lifecycle(&mut s, LifecycleEvent::Poweroff)?;
        let on_reboot = lifecycle(&mut s, LifecycleEvent::Reboot)?;
        let on_crash = lifecycle(&mut s, LifecycleEvent::Crash)?;
        let pm = s.child("pm")?.map(Pm::parse).transpose()?;
        let devices = s
            .child("devices")?
            .map(Devices::parse)
            .transpose()?
            .unwrap_or_default();
        let mut cmdlines =
            s.matching(|e| e.local_name() == "commandline" && in_qemu_ns(e, &[root]));
        if cmdlines.len() > 1 {
            return Err(XmlError::invalid(
                "<qemu:commandline>",
                "may appear only once",
            ));
        }
        let qemu_commandline = cmdlines
            .pop()
            .map(|(_, c)| QemuCommandline::parse(c, root))
            .transpose()?;
        Ok(DomainDef {
            domain_type,
            name,
            uuid,
            genid,
            title,
            description,
            metadata,
            memory_kib,
            current_memory_kib,
            max_memory,
            vcpu,
            os,
            features,
            cpu,
            clock,
            on_poweroff,
            on_reboot,
            on_crash,
            pm,
            devices,
            qemu_commandline,
            extra: s.finish(),
        })
    }

    /// Formats the definition, indented by two spaces like `virsh dumpxml`.
    pub fn to_xml(&self, options: &FormatOptions) -> String {
        let mut ctx = FmtCtx {
            secure: options.secure,
            ..Default::default()
        };
        write_document(&self.to_element(options.live_id, &mut ctx))
    }

    /// Paths of kept-but-unmodelled elements (`domain/devices/hostdev`) and attributes
    /// (`domain/devices/disk/@foo`), so a driver can say what it cannot honour.
    pub fn unknown_elements(&self) -> Vec<String> {
        let mut ctx = FmtCtx {
            secure: true,
            ..Default::default()
        };
        self.to_element(None, &mut ctx);
        let mut seen = std::collections::BTreeSet::new();
        ctx.unknown.retain(|p| seen.insert(p.clone()));
        ctx.unknown
    }

    /// Whether the definition carries `<qemu:commandline>` passthrough.
    pub fn has_qemu_commandline(&self) -> bool {
        self.qemu_commandline.is_some()
    }

    /// Whether the definition uses any top-level QEMU-namespace element
    /// (`<qemu:commandline>`, `<qemu:capabilities>`, `<qemu:override>`, ...): raw hypervisor
    /// passthrough, which needs the `domain:passthrough` permission. The unmodelled ones live
    /// in `extra`; the root's own `xmlns:qemu` declaration of [`QEMU_NS`] is implied by the
    /// model, other bindings are kept in `extra.attrs`.
    pub fn has_qemu_passthrough(&self) -> bool {
        if self.qemu_commandline.is_some() {
            return true;
        }
        let root = Element {
            name: "domain".into(),
            attrs: self.extra.attrs.clone(),
            children: Vec::new(),
        };
        self.extra.nodes.iter().any(|(_, node)| match node {
            Node::Element(el) => {
                let implied_qemu = el.name.starts_with("qemu:")
                    && !self
                        .extra
                        .attrs
                        .iter()
                        .any(|(k, v)| k == "xmlns:qemu" && v != QEMU_NS);
                implied_qemu || in_qemu_ns(el, &[&root])
            }
            _ => false,
        })
    }

    /// Memory at boot: `<currentMemory>`, or `<memory>` when absent.
    pub fn effective_current_memory_kib(&self) -> u64 {
        self.current_memory_kib.unwrap_or(self.memory_kib)
    }

    fn to_element(&self, live_id: Option<i32>, ctx: &mut FmtCtx) -> Element {
        let x = &self.extra;
        let mut el = Element::new("domain");
        el.set("type", self.domain_type.as_str());
        el.set_opt("id", live_id);
        let leaf = |el: &mut Element, name: &str, text: Option<&str>, ctx: &mut FmtCtx| {
            if let Some(t) = text {
                let mut l = Element::with_text(name, t);
                x.apply_sub(name, &mut l, ctx);
                el.push(l);
            }
        };
        leaf(&mut el, "name", Some(&self.name), ctx);
        leaf(&mut el, "uuid", Some(&self.uuid), ctx);
        leaf(&mut el, "genid", self.genid.as_deref(), ctx);
        leaf(&mut el, "title", self.title.as_deref(), ctx);
        leaf(&mut el, "description", self.description.as_deref(), ctx);
        if let Some(m) = &self.metadata {
            el.push(m.clone());
        }
        if let Some(m) = &self.max_memory {
            el.push(max_memory_element(m, x, ctx));
        }
        el.push(memory_element("memory", self.memory_kib, x, ctx));
        if let Some(c) = self.current_memory_kib {
            el.push(memory_element("currentMemory", c, x, ctx));
        }
        el.push(vcpu_element(&self.vcpu, x, ctx));
        el.push(self.os.to_element(ctx));
        if let Some(f) = &self.features {
            el.push(f.to_element(ctx));
        }
        if let Some(c) = &self.cpu {
            el.push(c.to_element(ctx));
        }
        if let Some(c) = &self.clock {
            el.push(c.to_element(ctx));
        }
        for (event, action) in [
            (LifecycleEvent::Poweroff, self.on_poweroff),
            (LifecycleEvent::Reboot, self.on_reboot),
            (LifecycleEvent::Crash, self.on_crash),
        ] {
            leaf(
                &mut el,
                event.element(),
                action.map(LifecycleAction::as_str),
                ctx,
            );
        }
        if let Some(pm) = &self.pm {
            el.push(pm.to_element(ctx));
        }
        el.push(self.devices.to_element(ctx));
        if let Some(q) = &self.qemu_commandline {
            let mut qe = q.to_element(ctx);
            // The root binds qemu: to something else (user content); rebind it locally.
            if x.attrs
                .iter()
                .any(|(k, v)| k == "xmlns:qemu" && v != QEMU_NS)
            {
                qe.attrs
                    .insert(0, ("xmlns:qemu".to_string(), QEMU_NS.to_string()));
            }
            el.push(qe);
        }
        x.apply(&mut el, ctx);
        if el.attr("xmlns:qemu").is_none() && uses_prefix(&el, "qemu") {
            let at = el.attrs.len().min(if live_id.is_some() { 2 } else { 1 });
            el.attrs
                .insert(at, ("xmlns:qemu".to_string(), QEMU_NS.to_string()));
        }
        el
    }
}

/// Whether any element or attribute name in the tree has `prefix:`.
fn uses_prefix(el: &Element, prefix: &str) -> bool {
    let has = |name: &str| split_qname(name).0 == Some(prefix);
    has(&el.name)
        || el.attrs.iter().any(|(k, _)| has(k))
        || el.children.iter().any(|n| match n {
            Node::Element(e) => uses_prefix(e, prefix),
            _ => false,
        })
}
