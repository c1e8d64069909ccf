//! `-cpu`: the model, its features, and the other guest-visible CPU properties QEMU takes
//! there (paravirtual switches, PMU, cache and address-width reporting), in libvirt's order.

use super::ArgvError;
use super::cmd::Cmd;
use crate::xml::{CpuMode, DomainDef, Feature, HYPERV_ENLIGHTENMENTS};

/// libvirt's feature names that QEMU spells differently (`virQEMUCapsCPUFeaturesX86`).
const FEATURE_NAMES: &[(&str, &str)] = &[
    ("cmp_legacy", "cmp-legacy"),
    ("ds_cpl", "ds-cpl"),
    ("fxsr_opt", "fxsr-opt"),
    ("kvm_pv_eoi", "kvm-pv-eoi"),
    ("kvm_pv_unhalt", "kvm-pv-unhalt"),
    ("lahf_lm", "lahf-lm"),
    ("nodeid_msr", "nodeid-msr"),
    ("pclmuldq", "pclmulqdq"),
    ("perfctr_core", "perfctr-core"),
    ("perfctr_nb", "perfctr-nb"),
    ("tsc_adjust", "tsc-adjust"),
];

/// `-cpu`, or nothing: without `<cpu>` QEMU's default model is used, never `host`, so a
/// guest's CPU does not silently depend on the host it starts on.
pub(super) fn cpu_model(def: &DomainDef, cmd: &Cmd) -> Result<Option<String>, ArgvError> {
    let extras = extra_props(def)?;
    let Some(cpu) = &def.cpu else {
        return Ok(default_model(def, extras));
    };
    let mode = cpu.mode.unwrap_or(CpuMode::Custom);
    let base = match mode {
        CpuMode::HostPassthrough | CpuMode::HostModel if !cmd.kvm => {
            return Err(ArgvError::invalid(
                format!("<cpu mode='{mode}'>"),
                "needs <domain type='kvm'>; under TCG use mode='maximum' or a named model",
            ));
        }
        CpuMode::HostPassthrough => "host".to_string(),
        // libvirt expands host-model into a named model from the host's capabilities; the
        // closest a pure translation can do is KVM's own host model, kept migratable.
        CpuMode::HostModel => "host,migratable=on".to_string(),
        CpuMode::Maximum => "max".to_string(),
        CpuMode::Custom => match &cpu.model {
            Some(m) if !m.name.is_empty() => m.name.clone(),
            _ if cpu.features.is_empty() => return Ok(default_model(def, extras)),
            _ => {
                return Err(ArgvError::invalid(
                    "<cpu><feature>",
                    "features need a <model> in custom mode",
                ));
            }
        },
    };
    let mut parts = vec![base];
    for f in &cpu.features {
        let on = match f.policy.as_deref() {
            None | Some("require") | Some("force") | Some("optional") => "on",
            Some(_) => "off",
        };
        let name = FEATURE_NAMES
            .iter()
            .find(|(libvirt, _)| *libvirt == f.name)
            .map_or(f.name.as_str(), |(_, qemu)| qemu);
        parts.push(format!("{name}={on}"));
    }
    parts.extend(extras);
    Ok(Some(parts.join(",")))
}

/// The CPU properties that do not come from `<cpu>`'s model and features, in libvirt's
/// order: the `kvmclock` and `tsc` timers, `<apic eoi=…>`, `<pvspinlock state=…>`, Hyper-V
/// enlightenments and panic notifier, `<pmu state=…>`, then `<cpu><cache>` and
/// `<cpu><maxphysaddr>`.
fn extra_props(def: &DomainDef) -> Result<Vec<String>, ArgvError> {
    let on_off = |on: bool| if on { "on" } else { "off" };
    let mut props = Vec::new();
    let timers = def.clock.iter().flat_map(|c| c.timers.iter());
    for t in timers {
        match (t.name.as_str(), t.present.as_deref()) {
            ("kvmclock", Some("yes")) => props.push("kvmclock=on".to_string()),
            ("kvmclock", Some("no")) => props.push("kvmclock=off".to_string()),
            ("tsc", _) => {
                if let Some(hz) = t.frequency {
                    props.push(format!("tsc-frequency={hz}"));
                }
            }
            _ => {}
        }
    }
    let feature = |name: &str| {
        def.features
            .iter()
            .flat_map(|f| f.items.iter())
            .find(|f| f.name == name)
    };
    if let Some(eoi) = feature("apic").and_then(|f| f.eoi.as_deref()) {
        props.push(format!("kvm-pv-eoi={eoi}"));
    }
    if let Some(f) = feature("pvspinlock") {
        props.push(format!(
            "kvm-pv-unhalt={}",
            on_off(f.state.as_deref() != Some("off"))
        ));
    }
    if let Some(f) = feature("hyperv") {
        props.extend(hyperv_props(f)?);
    }
    // A Hyper-V crash MSR to report panics through (`<panic model='hyperv'>`).
    if def
        .devices
        .panics
        .iter()
        .any(|p| p.model.as_deref() == Some("hyperv"))
    {
        props.push("hv-crash".to_string());
    }
    if let Some(f) = feature("pmu") {
        props.push(format!("pmu={}", on_off(f.state.as_deref() != Some("off"))));
    }
    props.extend(cache_props(def)?);
    props.extend(phys_bits_props(def)?);
    Ok(props)
}

/// `<hyperv>`: the host's enlightenments (`mode='passthrough'`), then the ones switched on,
/// in libvirt's order; switched-off ones are QEMU's default.
fn hyperv_props(f: &Feature) -> Result<Vec<String>, ArgvError> {
    let mut props = Vec::new();
    match f.hyperv_mode.as_deref() {
        None | Some("custom") => {}
        Some("passthrough") => props.push("hv-passthrough=on".to_string()),
        Some(other) => {
            return Err(ArgvError::unsupported(format!("<hyperv mode='{other}'>")));
        }
    }
    if f.state.is_some() {
        return Err(ArgvError::invalid(
            "<hyperv state=…>",
            "Hyper-V is switched with its enlightenments",
        ));
    }
    for name in HYPERV_ENLIGHTENMENTS {
        let Some(e) = f.enlightenments.iter().find(|e| e.name == *name) else {
            continue;
        };
        let what = format!("<hyperv><{name}>");
        if e.state.as_deref() != Some("on") {
            continue;
        }
        match *name {
            "spinlocks" => {
                let retries = e
                    .retries
                    .filter(|r| *r >= 4095)
                    .ok_or_else(|| ArgvError::invalid(&what, "needs retries of at least 4095"))?;
                props.push(format!("hv-spinlocks={retries:#x}"));
            }
            "vendor_id" => {
                let value = e
                    .value
                    .as_deref()
                    .filter(|v| !v.is_empty() && v.len() <= 12 && !v.contains([',', '\'', '"']));
                let value = value.ok_or_else(|| {
                    ArgvError::invalid(&what, "needs a value of 1 to 12 characters")
                })?;
                props.push(format!("hv-vendor-id={value}"));
            }
            other => {
                props.push(format!("hv-{other}=on"));
                if other == "stimer" && e.direct.as_deref() == Some("on") {
                    props.push("hv-stimer-direct=on".to_string());
                }
            }
        }
    }
    Ok(props)
}

/// `<cpu><cache>` as libvirt checks and passes it: `emulate` (level 3 only) makes QEMU
/// describe an L3 cache, `passthrough` (host CPUs only) shows the host's, `disable` neither.
fn cache_props(def: &DomainDef) -> Result<Vec<String>, ArgvError> {
    let Some(cpu) = &def.cpu else {
        return Ok(Vec::new());
    };
    let Some(cache) = &cpu.cache else {
        return Ok(Vec::new());
    };
    let what = format!("<cpu><cache mode='{}'>", cache.mode);
    let host_cpu = matches!(cpu.mode, Some(CpuMode::HostPassthrough | CpuMode::Maximum));
    // What is switched on comes first, then what is switched off, as in libvirt; the host's
    // cache information exists only on host-like CPU models.
    let mut props = Vec::new();
    let (host_off, l3_off) = match (cache.mode.as_str(), cache.level) {
        ("emulate", Some(3)) => {
            props.push("l3-cache=on".to_string());
            (true, false)
        }
        ("emulate", _) => return Err(ArgvError::invalid(what, "can only be used with level='3'")),
        ("passthrough", None) if host_cpu => {
            props.push("host-cache-info=on".to_string());
            (false, true)
        }
        ("passthrough", None) => {
            return Err(ArgvError::invalid(
                what,
                "needs <cpu mode='host-passthrough'> or mode='maximum'",
            ));
        }
        ("disable", None) => (true, true),
        (_, Some(level)) => {
            return Err(ArgvError::invalid(
                format!("{what} level='{level}'"),
                "a cache level can only be given with mode='emulate'",
            ));
        }
        (other, None) => {
            return Err(ArgvError::unsupported(format!(
                "<cpu><cache mode='{other}'>"
            )));
        }
    };
    if host_off && host_cpu {
        props.push("host-cache-info=off".to_string());
    }
    if l3_off {
        props.push("l3-cache=off".to_string());
    }
    Ok(props)
}

/// `<cpu><maxphysaddr>`: the host's physical address width (host CPUs only), or `bits` of
/// it (32 to 64).
fn phys_bits_props(def: &DomainDef) -> Result<Vec<String>, ArgvError> {
    let Some(cpu) = &def.cpu else {
        return Ok(Vec::new());
    };
    let Some(addr) = &cpu.maxphysaddr else {
        return Ok(Vec::new());
    };
    let what = format!("<cpu><maxphysaddr mode='{}'>", addr.mode);
    if let Some(bits) = addr.bits
        && !(32..=64).contains(&bits)
    {
        return Err(ArgvError::invalid(
            format!("{what} bits='{bits}'"),
            "must be from 32 to 64",
        ));
    }
    match (addr.mode.as_str(), addr.bits) {
        ("passthrough", None) if cpu.mode == Some(CpuMode::HostPassthrough) => {
            Ok(vec!["host-phys-bits=on".to_string()])
        }
        ("passthrough", None) => Err(ArgvError::invalid(
            what,
            "needs <cpu mode='host-passthrough'>",
        )),
        ("passthrough", Some(_)) => Err(ArgvError::invalid(
            what,
            "takes no bits; use mode='emulate' bits=…",
        )),
        ("emulate", Some(bits)) => Ok(vec![format!("phys-bits={bits}")]),
        ("emulate", None) => Err(ArgvError::invalid(what, "needs bits=…")),
        (other, _) => Err(ArgvError::unsupported(format!(
            "<cpu><maxphysaddr mode='{other}'>"
        ))),
    }
}

/// With no model asked for, QEMU's default (`qemu64`, `qemu32` for i686) is named only when
/// properties must be added to it, as libvirt does.
fn default_model(def: &DomainDef, extras: Vec<String>) -> Option<String> {
    if extras.is_empty() {
        return None;
    }
    let base = if def.os.arch.as_deref() == Some("i686") {
        "qemu32"
    } else {
        "qemu64"
    };
    let mut parts = vec![base.to_string()];
    parts.extend(extras);
    Some(parts.join(","))
}
