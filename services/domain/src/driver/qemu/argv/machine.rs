//! Machine-wide options: name, machine type and accelerator, firmware, CPU model, memory,
//! vCPUs, clock, lifecycle and boot.

use super::cmd::{Chipset, Cmd, Props};
use super::{ArgvContext, ArgvError};
use crate::xml::{CpuMode, DomainDef, LifecycleAction};

/// Everything up to and including `-smp`, in libvirt's order.
pub(super) fn head(def: &DomainDef, _ctx: &ArgvContext, cmd: &mut Cmd) -> Result<(), ArgvError> {
    check_os(def)?;
    cmd.flag("-name", format!("guest={},debug-threads=on", def.name));
    // Always paused: the driver finishes setup over QMP, then sends `cont`.
    cmd.arg("-S");
    let mut machine = vec![cmd.machine.clone(), "usb=off".into()];
    machine.extend(feature_props(def, cmd)?);
    machine.push("dump-guest-core=off".into());
    machine.extend(firmware(def, cmd)?);
    cmd.flag("-machine", machine.join(","));
    cmd.flag("-accel", if cmd.kvm { "kvm" } else { "tcg" });
    if let Some(cpu) = cpu_model(def, cmd)? {
        cmd.flag("-cpu", cpu);
    }
    if let Some(bios) = rom_bios(def) {
        cmd.flag("-bios", bios);
    }
    cmd.flag("-m", memory(def)?);
    cmd.flag("-smp", smp(def)?);
    Ok(())
}

/// Clock, lifecycle, boot and direct kernel boot: after the monitor, before devices.
pub(super) fn tail(def: &DomainDef, cmd: &mut Cmd) -> Result<(), ArgvError> {
    clock(def, cmd)?;
    // As libvirt 9.0 does with QEMU >= 6.0: a guest poweroff only stops QEMU, and the
    // driver carries out <on_poweroff> (and turns an ACPI reboot into a reset). The driver
    // sets `set-action reboot=shutdown` over QMP for <on_reboot>destroy</on_reboot>.
    cmd.arg("-no-shutdown");
    match def.on_reboot {
        None | Some(LifecycleAction::Restart | LifecycleAction::Destroy) => {}
        Some(other) => {
            return Err(ArgvError::unsupported(format!(
                "<on_reboot>{}</on_reboot>",
                other.as_str()
            )));
        }
    }
    cmd.flag("-boot", "strict=on");
    let os = &def.os;
    for (flag, value) in [
        ("-kernel", &os.kernel),
        ("-initrd", &os.initrd),
        ("-append", &os.cmdline),
        ("-dtb", &os.dtb),
    ] {
        if let Some(v) = value {
            cmd.flag(flag, v.as_str());
        }
    }
    if os.kernel.is_none() && (os.initrd.is_some() || os.cmdline.is_some() || os.dtb.is_some()) {
        return Err(ArgvError::invalid(
            "<os>",
            "<initrd>, <cmdline> and <dtb> need a <kernel>",
        ));
    }
    Ok(())
}

/// The device choices in this builder are x86 PC ones.
fn check_os(def: &DomainDef) -> Result<(), ArgvError> {
    if def.os.os_type != "hvm" {
        return Err(ArgvError::unsupported(format!(
            "<os><type>{}</type> (only hvm)",
            def.os.os_type
        )));
    }
    match def.os.arch.as_deref() {
        None | Some("x86_64") | Some("i686") => Ok(()),
        Some(a) => Err(ArgvError::unsupported(format!(
            "<type arch='{a}'> (only x86_64 and i686)"
        ))),
    }
}

/// `<features>` that map onto `-machine` properties. Without `<acpi/>` the guest has no
/// ACPI, as in libvirt (so no ACPI power button either).
fn feature_props(def: &DomainDef, cmd: &Cmd) -> Result<Vec<String>, ArgvError> {
    let mut props = Vec::new();
    let mut acpi = false;
    for f in def.features.iter().flat_map(|f| f.items.iter()) {
        let state = f.state.as_deref();
        match (f.name.as_str(), state) {
            ("acpi", None | Some("on")) => acpi = true,
            ("acpi", Some("off")) => {}
            // Always present on x86 PC machines.
            ("apic" | "pae", None | Some("on")) => {}
            ("vmport", Some(s @ ("on" | "off"))) => props.push(format!("vmport={s}")),
            ("smm", None | Some("on")) if cmd.chipset == Chipset::Q35 => {
                props.push("smm=on".into())
            }
            ("smm", Some("off")) => props.push("smm=off".into()),
            // A CPU property: see `cpu_model`.
            ("pvspinlock", None | Some("on" | "off")) => {}
            (name, state) => {
                let state = state.map(|s| format!(" state='{s}'")).unwrap_or_default();
                return Err(ArgvError::unsupported(format!(
                    "<features><{name}{state}/> on this machine"
                )));
            }
        }
    }
    if !acpi {
        props.push("acpi=off".into());
    }
    Ok(props)
}

/// `<loader type='pflash'>` becomes two blockdev nodes wired to `-machine pflash0=…`, as
/// libvirt does; returns the `-machine` properties.
fn firmware(def: &DomainDef, cmd: &mut Cmd) -> Result<Vec<String>, ArgvError> {
    let os = &def.os;
    match os.firmware.as_deref() {
        None | Some("bios") => {}
        Some(f) => {
            if os.loader.as_ref().and_then(|l| l.path.as_ref()).is_none() {
                return Err(ArgvError::unsupported(format!(
                    "firmware auto-selection (<os firmware='{f}'>); name the image with <loader>"
                )));
            }
        }
    }
    let Some(loader) = &os.loader else {
        return Ok(Vec::new());
    };
    if loader.loader_type.as_deref() != Some("pflash") {
        return Ok(Vec::new());
    }
    let path = loader.path.as_deref().ok_or_else(|| {
        ArgvError::invalid("<loader type='pflash'>", "needs the firmware image's path")
    })?;
    let readonly = loader.readonly.as_deref() == Some("yes");
    cmd.blockdev(
        Props::new()
            .with("driver", "file")
            .with("filename", path)
            .with("node-name", "libvirt-pflash0-storage")
            .with("auto-read-only", true)
            .with("discard", "unmap"),
    );
    cmd.blockdev(
        Props::new()
            .with("node-name", "libvirt-pflash0-format")
            .with("read-only", readonly)
            .with("driver", "raw")
            .with("file", "libvirt-pflash0-storage"),
    );
    if loader.secure.as_deref() == Some("yes") {
        cmd.flag("-global", "driver=cfi.pflash01,property=secure,value=on");
    }
    Ok(vec!["pflash0=libvirt-pflash0-format".into()])
}

/// A loader that is not pflash is a ROM image: `-bios`.
fn rom_bios(def: &DomainDef) -> Option<&str> {
    let loader = def.os.loader.as_ref()?;
    if loader.loader_type.as_deref() == Some("pflash") {
        return None;
    }
    loader.path.as_deref()
}

/// `-cpu`, or nothing: without `<cpu>` QEMU's default model is used, never `host`, so a
/// guest's CPU does not silently depend on the host it starts on.
fn cpu_model(def: &DomainDef, cmd: &Cmd) -> Result<Option<String>, ArgvError> {
    let extras = paravirt_props(def);
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
        parts.push(format!("{}={on}", f.name));
    }
    parts.extend(extras);
    Ok(Some(parts.join(",")))
}

/// Paravirtual clock and spinlock switches, which QEMU takes as CPU properties, in
/// libvirt's order: `<timer name='kvmclock' present=…>`, then `<pvspinlock state=…>`.
fn paravirt_props(def: &DomainDef) -> Vec<String> {
    let mut props = Vec::new();
    let timers = def.clock.iter().flat_map(|c| c.timers.iter());
    for t in timers.filter(|t| t.name == "kvmclock") {
        match t.present.as_deref() {
            Some("yes") => props.push("kvmclock=on".to_string()),
            Some("no") => props.push("kvmclock=off".to_string()),
            _ => {}
        }
    }
    let features = def.features.iter().flat_map(|f| f.items.iter());
    for f in features.filter(|f| f.name == "pvspinlock") {
        let on = f.state.as_deref() != Some("off");
        props.push(format!("kvm-pv-unhalt={}", if on { "on" } else { "off" }));
    }
    props
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

/// `-m size=…k`, with `slots` and `maxmem` for memory hotplug (`<maxMemory>`).
fn memory(def: &DomainDef) -> Result<String, ArgvError> {
    let mut m = format!("size={}k", def.memory_kib);
    if let Some(max) = &def.max_memory {
        if max.kib < def.memory_kib {
            return Err(ArgvError::invalid(
                "<maxMemory>",
                "must not be smaller than <memory>",
            ));
        }
        m.push_str(&format!(",slots={},maxmem={}k", max.slots, max.kib));
    }
    Ok(m)
}

/// `-smp current[,maxcpus=max],sockets=…,cores=…,threads=…`; without `<topology>` every vCPU
/// is its own socket, as libvirt does.
fn smp(def: &DomainDef) -> Result<String, ArgvError> {
    let max = def.vcpu.max;
    let current = def.vcpu.effective_current();
    if current == 0 || current > max {
        return Err(ArgvError::invalid(
            "<vcpu current=…>",
            format!("must be between 1 and {max}"),
        ));
    }
    let mut s = current.to_string();
    if current != max {
        s.push_str(&format!(",maxcpus={max}"));
    }
    match def.cpu.as_ref().and_then(|c| c.topology.as_ref()) {
        None => s.push_str(&format!(",sockets={max},cores=1,threads=1")),
        Some(t) => {
            let dies = t.dies.unwrap_or(1);
            let total =
                u64::from(t.sockets) * u64::from(dies) * u64::from(t.cores) * u64::from(t.threads);
            if total != u64::from(max) {
                return Err(ArgvError::invalid(
                    "<cpu><topology>",
                    format!("sockets×dies×cores×threads is {total}, but <vcpu> is {max}"),
                ));
            }
            s.push_str(&format!(",sockets={}", t.sockets));
            if let Some(d) = t.dies {
                s.push_str(&format!(",dies={d}"));
            }
            s.push_str(&format!(",cores={},threads={}", t.cores, t.threads));
        }
    }
    Ok(s)
}

/// `<clock>`: the RTC base and the timers QEMU 7.2 exposes on the command line.
fn clock(def: &DomainDef, cmd: &mut Cmd) -> Result<(), ArgvError> {
    let Some(clock) = &def.clock else {
        cmd.flag("-rtc", "base=utc");
        return Ok(());
    };
    let base = match clock.offset.as_deref() {
        None | Some("utc") => "utc",
        Some("localtime") => "localtime",
        Some(other) => {
            return Err(ArgvError::unsupported(format!(
                "<clock offset='{other}'> (only utc and localtime)"
            )));
        }
    };
    let mut rtc = format!("base={base}");
    let mut after = Vec::new();
    for t in &clock.timers {
        match (
            t.name.as_str(),
            t.present.as_deref(),
            t.tickpolicy.as_deref(),
        ) {
            ("rtc", None | Some("yes"), Some("catchup")) => rtc.push_str(",driftfix=slew"),
            ("rtc", None | Some("yes"), None | Some("delay")) => {}
            ("pit", None | Some("yes"), Some("delay")) if cmd.kvm => {
                after.push(("-global", "kvm-pit.lost_tick_policy=delay"))
            }
            ("pit", None | Some("yes"), None) => {}
            ("hpet", Some("no"), None) => after.push(("-no-hpet", "")),
            ("hpet", None | Some("yes"), None) => {}
            // A CPU property: see `cpu_model`.
            ("kvmclock", _, None) => {}
            (name, _, _) => {
                return Err(ArgvError::unsupported(format!(
                    "this <timer name='{name}'> setting"
                )));
            }
        }
    }
    cmd.flag("-rtc", rtc);
    for (flag, value) in after {
        if value.is_empty() {
            cmd.arg(flag);
        } else {
            cmd.flag(flag, value);
        }
    }
    Ok(())
}
