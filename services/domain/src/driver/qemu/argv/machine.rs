//! Machine-wide options: name, machine type and accelerator, firmware, CPU model, memory,
//! vCPUs, clock, lifecycle and boot.

use super::cmd::{Chipset, Cmd};
use super::{ArgvContext, ArgvError};
use crate::xml::{DomainDef, LifecycleAction};

/// Everything up to and including `-smp`, in libvirt's order.
pub(super) fn head(def: &DomainDef, _ctx: &ArgvContext, cmd: &mut Cmd) -> Result<(), ArgvError> {
    check_os(def)?;
    cmd.flag("-name", format!("guest={},debug-threads=on", def.name));
    // Always paused: the driver finishes setup over QMP, then sends `cont`.
    cmd.arg("-S");
    let mut machine = vec![cmd.machine.clone(), "usb=off".into()];
    machine.extend(feature_props(def, cmd)?);
    machine.push("dump-guest-core=off".into());
    machine.extend(super::firmware::pflash(def, cmd)?);
    // SeaBIOS shows its output (and boot menu) on the serial port when the machine has no
    // graphics, as libvirt arranges for `<bios useserial='yes'/>`.
    if def.os.bios.as_ref().and_then(|b| b.useserial.as_deref()) == Some("yes") {
        machine.push("graphics=off".into());
    }
    // libvirt 9.0 switches the HPET with the machine property (`-no-hpet` is deprecated).
    let timers = def.clock.iter().flat_map(|c| c.timers.iter());
    for t in timers.filter(|t| t.name == "hpet") {
        match t.present.as_deref() {
            Some("yes") => machine.push("hpet=on".into()),
            Some("no") => machine.push("hpet=off".into()),
            _ => {}
        }
    }
    cmd.flag("-machine", machine.join(","));
    cmd.flag("-accel", accel(def, cmd)?);
    if let Some(mib) = tseg_mib(def, cmd)? {
        cmd.flag("-global", format!("mch.extended-tseg-mbytes={mib}"));
    }
    if let Some(cpu) = super::cpu::cpu_model(def, cmd)? {
        cmd.flag("-cpu", cpu);
    }
    if let Some(bios) = super::firmware::rom_bios(def) {
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
    power_management(def, cmd);
    match def.on_reboot {
        None | Some(LifecycleAction::Restart | LifecycleAction::Destroy) => {}
        Some(other) => {
            return Err(ArgvError::unsupported(format!(
                "<on_reboot>{}</on_reboot>",
                other.as_str()
            )));
        }
    }
    cmd.flag("-boot", boot_options(def)?);
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
    for table in &os.acpi_tables {
        // libvirt 9.0 knows the software licensing table only.
        if table.table_type != "slic" {
            return Err(ArgvError::unsupported(format!(
                "<acpi><table type='{}'> (only slic)",
                table.table_type
            )));
        }
        cmd.flag(
            "-acpitable",
            format!("sig=SLIC,file={}", super::chardevs::escape(&table.path)),
        );
    }
    if os.kernel.is_none() && (os.initrd.is_some() || os.cmdline.is_some() || os.dtb.is_some()) {
        return Err(ArgvError::invalid(
            "<os>",
            "<initrd>, <cmdline> and <dtb> need a <kernel>",
        ));
    }
    Ok(())
}

/// `<pm>`: the ACPI sleep states offered, switched on the chipset's power management
/// device (q35's LPC bridge, the PC's PIIX4), as libvirt does.
fn power_management(def: &DomainDef, cmd: &mut Cmd) {
    let Some(pm) = &def.pm else {
        return;
    };
    let device = match cmd.chipset {
        Chipset::I440fx => "PIIX4_PM",
        Chipset::Q35 => "ICH9-LPC",
    };
    for (state, value) in [("s3", &pm.suspend_to_mem), ("s4", &pm.suspend_to_disk)] {
        if let Some(v) = value {
            let disable = u8::from(v == "no");
            cmd.flag("-global", format!("{device}.disable_{state}={disable}"));
        }
    }
}

/// `-boot`: the firmware's boot menu and its wait (`<bootmenu>`), the retry after no boot
/// device was found (`<bios rebootTimeout>`), and always `strict=on` (see `boot.rs`).
fn boot_options(def: &DomainDef) -> Result<String, ArgvError> {
    let mut opts = Vec::new();
    let menu = def.os.bootmenu.as_ref();
    match menu.and_then(|m| m.enable.as_deref()) {
        Some("yes") => opts.push("menu=on".to_string()),
        Some(_) => opts.push("menu=off".to_string()),
        None => {}
    }
    if let Some(ms) = def.os.bios.as_ref().and_then(|b| b.reboot_timeout) {
        if !(-1..=65535).contains(&ms) {
            return Err(ArgvError::invalid(
                format!("<bios rebootTimeout='{ms}'>"),
                "must be from -1 to 65535",
            ));
        }
        opts.push(format!("reboot-timeout={ms}"));
    }
    // The wait is the menu's: libvirt reads `timeout` only with `enable='yes'`, so a
    // disabled or unset menu's timeout has no effect.
    if let Some(m) = menu.filter(|m| m.enable.as_deref() == Some("yes"))
        && let Some(ms) = m.timeout
    {
        opts.push(format!("splash-time={ms}"));
    }
    opts.push("strict=on".to_string());
    Ok(opts.join(","))
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
            // CPU properties: see `cpu.rs`.
            ("pvspinlock" | "pmu", None | Some("on" | "off")) => {}
            ("hyperv", _) => {}
            // Accelerator settings: see `accel`.
            ("tcg", None) => {}
            // The I/O APIC in the kernel (`kvm`) or in QEMU (`qemu`, with the local APICs
            // still in the kernel); libvirt offers the choice on q35 only.
            ("ioapic", None) if cmd.chipset == Chipset::Q35 => match f.driver.as_deref() {
                Some("qemu") => props.push("kernel_irqchip=split".into()),
                Some("kvm") => props.push("kernel_irqchip=on".into()),
                _ => {}
            },
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

/// `-accel`: KVM, or TCG with the translation cache size `<tcg><tb-cache>` asks for (MiB).
fn accel(def: &DomainDef, cmd: &Cmd) -> Result<String, ArgvError> {
    let features = def.features.iter().flat_map(|f| f.items.iter());
    let tb_cache = features
        .filter(|f| f.name == "tcg")
        .find_map(|f| f.tb_cache_kib);
    match (cmd.kvm, tb_cache) {
        (true, None) => Ok("kvm".into()),
        (true, Some(_)) => Err(ArgvError::invalid(
            "<features><tcg>",
            "TCG settings need <domain type='qemu'>",
        )),
        (false, None) => Ok("tcg".into()),
        (false, Some(kib)) => Ok(format!("tcg,tb-size={}", kib >> 10)),
    }
}

/// `<smm><tseg>`: the SMRAM size q35's memory controller sets aside, in whole MiB.
fn tseg_mib(def: &DomainDef, cmd: &Cmd) -> Result<Option<u64>, ArgvError> {
    let features = def.features.iter().flat_map(|f| f.items.iter());
    let Some(smm) = features
        .filter(|f| f.name == "smm")
        .find(|f| f.tseg_kib.is_some())
    else {
        return Ok(None);
    };
    let kib = smm.tseg_kib.unwrap_or_default();
    if smm.state.as_deref() == Some("off") || cmd.chipset != Chipset::Q35 {
        return Err(ArgvError::invalid(
            "<smm><tseg>",
            "needs <smm state='on'> on a q35 machine",
        ));
    }
    if kib % 1024 != 0 {
        return Err(ArgvError::invalid(
            "<smm><tseg>",
            "must be a whole number of MiB",
        ));
    }
    Ok(Some(kib / 1024))
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
        None | Some("utc") => "utc".to_string(),
        Some("localtime") => "localtime".to_string(),
        // A fixed start, the same at every boot.
        Some("absolute") => {
            let start = clock
                .start
                .ok_or_else(|| ArgvError::invalid("<clock offset='absolute'>", "needs start=…"))?;
            utc_datetime(start)
        }
        Some(other) => {
            return Err(ArgvError::unsupported(format!(
                "<clock offset='{other}'> (only utc, localtime and absolute)"
            )));
        }
    };
    // With these offsets libvirt reads only `adjustment` (`timezone`, `basis` and `start`
    // belong to the other offsets and are not read): `reset` concerns how it records the
    // guest's RTC changes, not the command line; a number turns the clock into a variable
    // offset.
    match clock.adjustment.as_deref() {
        None | Some("reset") => {}
        Some(a) => {
            return Err(ArgvError::unsupported(format!(
                "<clock adjustment='{a}'> (a variable offset from the host's clock)"
            )));
        }
    }
    let mut rtc = format!("base={base}");
    let mut globals = Vec::new();
    for t in &clock.timers {
        if (t.track.is_some() && t.name != "rtc") || (t.frequency.is_some() && t.name != "tsc") {
            return Err(ArgvError::invalid(
                format!("<timer name='{}'>", t.name),
                "track is for the rtc timer and frequency for the tsc timer only",
            ));
        }
        match (
            t.name.as_str(),
            t.present.as_deref(),
            t.tickpolicy.as_deref(),
        ) {
            ("rtc", None | Some("yes"), None | Some("delay" | "catchup")) => {
                // What the RTC follows: the guest's own time, the host's, or a monotonic
                // clock; libvirt has no QEMU equivalent for `boot`.
                match t.track.as_deref() {
                    None => {}
                    Some("guest") => rtc.push_str(",clock=vm"),
                    Some("wall") => rtc.push_str(",clock=host"),
                    Some("realtime") => rtc.push_str(",clock=rt"),
                    Some(other) => {
                        return Err(ArgvError::unsupported(format!(
                            "<timer name='rtc' track='{other}'>"
                        )));
                    }
                }
                if t.tickpolicy.as_deref() == Some("catchup") {
                    rtc.push_str(",driftfix=slew");
                }
            }
            // As libvirt: the in-kernel PIT is told to delay lost ticks (QEMU's own PIT,
            // under TCG, always does; the property is then unused).
            ("pit", None | Some("yes"), None | Some("delay")) => {
                globals.push("kvm-pit.lost_tick_policy=delay")
            }
            ("pit", None | Some("yes"), Some("discard")) => {
                globals.push("kvm-pit.lost_tick_policy=discard")
            }
            // A machine property: see `head`.
            ("hpet", Some("yes" | "no") | None, None) => {}
            // CPU properties: see `cpu.rs`.
            ("kvmclock", _, None) => {}
            ("tsc", None | Some("yes"), None) if t.frequency.is_some() => {}
            (name, _, _) => {
                return Err(ArgvError::unsupported(format!(
                    "this <timer name='{name}'> setting"
                )));
            }
        }
    }
    cmd.flag("-rtc", rtc);
    for g in globals {
        cmd.flag("-global", g);
    }
    Ok(())
}

/// Seconds since the epoch as QEMU's `-rtc base=` date, UTC.
fn utc_datetime(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc_datetime;

    #[test]
    fn absolute_clock_dates() {
        assert_eq!(utc_datetime(0), "1970-01-01T00:00:00");
        assert_eq!(utc_datetime(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(utc_datetime(1_234_567_890), "2009-02-13T23:31:30");
        // libvirt's test: the last second of 9999.
        assert_eq!(utc_datetime(253_402_300_799), "9999-12-31T23:59:59");
    }
}
