//! libvirt's flag semantics for typed edits, as pure functions over the live and persistent
//! definitions (virDomainObjUpdateModificationImpact, virDomainObjGetDefs,
//! virDomainObjGetOneDefState, and the qemu driver's SetVcpusFlags / SetMemoryFlags /
//! GetVcpusFlags rules), shared by every driver.

use crate::error::{DomainError, Result};
use crate::model::{Impact, MemoryFlags, VcpuFlags};
use crate::xml::DomainDef;

/// Which definitions an edit touches, after "current" was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets {
    pub live: bool,
    pub config: bool,
}

/// virDomainObjUpdateModificationImpact: "current" = live when active, else config; live on
/// an inactive domain and config on a transient one are refused.
pub fn resolve(impact: Impact, active: bool, persistent: bool) -> Result<Targets> {
    let mut targets = Targets {
        live: impact.live,
        config: impact.config,
    };
    if !targets.live && !targets.config {
        if active {
            targets.live = true;
        } else {
            targets.config = true;
        }
    }
    if !active && targets.live {
        return Err(DomainError::OperationInvalid(
            "domain is not running".into(),
        ));
    }
    if !persistent && targets.config {
        return Err(DomainError::OperationInvalid(
            "transient domains do not have any persistent config".into(),
        ));
    }
    Ok(targets)
}

/// virDomainObjGetOneDefState: exactly one definition; true = the live one.
pub fn resolve_one(impact: Impact, active: bool, persistent: bool) -> Result<bool> {
    if impact.live && impact.config {
        return Err(DomainError::InvalidArg(
            "flags 'live' and 'config' are mutually exclusive".into(),
        ));
    }
    Ok(resolve(impact, active, persistent)?.live)
}

/// virDomainSetVcpusFlags' own flag rules (libvirt-domain.c): `maximum` needs `config`,
/// `guest` excludes it.
pub fn check_vcpu_flags(flags: VcpuFlags) -> Result<()> {
    if flags.maximum && !flags.impact.config {
        return Err(DomainError::InvalidArg(
            "flag 'config' is required by flag 'maximum'".into(),
        ));
    }
    if flags.guest && flags.impact.config {
        return Err(DomainError::InvalidArg(
            "flags 'guest' and 'config' are mutually exclusive".into(),
        ));
    }
    Ok(())
}

/// virDomainSetVcpusFlags on already-resolved targets. `live` / `config` are the definitions
/// to change (None when not targeted). `supported_max` is the driver's vCPU limit.
pub fn set_vcpus(
    live: Option<&mut DomainDef>,
    config: Option<&mut DomainDef>,
    count: u32,
    flags: VcpuFlags,
    supported_max: u32,
) -> Result<()> {
    if count == 0 {
        return Err(DomainError::InvalidArg(
            "vcpu count must be at least 1".into(),
        ));
    }
    if count > supported_max {
        return Err(DomainError::InvalidArg(format!(
            "requested cpu amount exceeds maximum supported amount ({count} > {supported_max})"
        )));
    }
    if flags.maximum {
        if live.is_some() {
            return Err(DomainError::OperationInvalid(
                "maximum vcpu count of a live domain can't be modified".into(),
            ));
        }
        if let Some(def) = config {
            if let Some(topology) = def.cpu.as_ref().and_then(|cpu| cpu.topology.as_ref()) {
                let total = topology.sockets
                    * topology.dies.unwrap_or(1)
                    * topology.cores
                    * topology.threads;
                if total != count {
                    return Err(DomainError::InvalidArg(format!(
                        "CPU topology doesn't match the desired vcpu count: <topology> gives \
                         {total} vCPUs, not {count}"
                    )));
                }
            }
            // Without `current` every vCPU was online: the old maximum, now capped.
            let current = def.vcpu.current.unwrap_or(def.vcpu.max).min(count);
            def.vcpu.max = count;
            def.vcpu.current = (current != count).then_some(current);
        }
        return Ok(());
    }
    if let Some(def) = &live
        && count > def.vcpu.max
    {
        return Err(DomainError::InvalidArg(format!(
            "requested vcpus is greater than max allowable vcpus for the live domain: {count} > {}",
            def.vcpu.max
        )));
    }
    if let Some(def) = &config
        && count > def.vcpu.max
    {
        return Err(DomainError::InvalidArg(format!(
            "requested vcpus is greater than max allowable vcpus for the persistent domain: {count} > {}",
            def.vcpu.max
        )));
    }
    for def in [live, config].into_iter().flatten() {
        def.vcpu.current = (count != def.vcpu.max).then_some(count);
    }
    Ok(())
}

/// virDomainGetVcpusFlags on the resolved definition.
pub fn vcpu_count(def: &DomainDef, maximum: bool) -> u32 {
    if maximum {
        def.vcpu.max
    } else {
        def.vcpu.current.unwrap_or(def.vcpu.max)
    }
}

/// virDomainSetMemoryFlags on already-resolved targets (memory in KiB).
pub fn set_memory(
    live: Option<&mut DomainDef>,
    config: Option<&mut DomainDef>,
    kib: u64,
    flags: MemoryFlags,
) -> Result<()> {
    if kib == 0 {
        return Err(DomainError::InvalidArg(
            "memory size must be at least 1 KiB".into(),
        ));
    }
    if flags.maximum {
        if live.is_some() {
            return Err(DomainError::OperationInvalid(
                "cannot resize the maximum memory on an active domain".into(),
            ));
        }
        if let Some(def) = config {
            if let Some(max) = &def.max_memory
                && max.kib < kib
            {
                return Err(DomainError::OperationInvalid(
                    "cannot set initial memory size greater than the maximum memory size".into(),
                ));
            }
            // Without <currentMemory> the balloon was at the old size (libvirt fills
            // cur_balloon at parse time); it stays there unless the new size is smaller.
            let current = def.current_memory_kib.unwrap_or(def.memory_kib).min(kib);
            def.memory_kib = kib;
            def.current_memory_kib = Some(current);
        }
        return Ok(());
    }
    let mut limit = live.as_ref().map(|def| def.memory_kib);
    if let Some(def) = &config
        && limit.is_none_or(|old| old > def.memory_kib)
    {
        limit = Some(def.memory_kib);
    }
    if let Some(limit) = limit
        && kib > limit
    {
        return Err(DomainError::InvalidArg(format!(
            "cannot set memory higher than max memory ({kib} KiB > {limit} KiB)"
        )));
    }
    for def in [live, config].into_iter().flatten() {
        def.current_memory_kib = Some(kib);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_domain;

    fn def(vcpus: &str, memory: u64) -> DomainDef {
        parse_domain(&format!(
            "<domain type='test'><name>t</name><memory>{memory}</memory>{vcpus}<os><type>hvm</type></os></domain>"
        ))
        .unwrap()
    }

    const CURRENT: Impact = Impact {
        live: false,
        config: false,
    };
    const LIVE: Impact = Impact {
        live: true,
        config: false,
    };
    const CONFIG: Impact = Impact {
        live: false,
        config: true,
    };

    #[test]
    fn current_resolves_by_state() {
        assert_eq!(
            resolve(CURRENT, true, true).unwrap(),
            Targets {
                live: true,
                config: false
            }
        );
        assert_eq!(
            resolve(CURRENT, false, true).unwrap(),
            Targets {
                live: false,
                config: true
            }
        );
    }

    #[test]
    fn refusals_follow_libvirt() {
        let err = resolve(LIVE, false, true).unwrap_err();
        assert!(err.to_string().contains("not running"), "{err}");
        let err = resolve(CONFIG, true, false).unwrap_err();
        assert!(err.to_string().contains("transient"), "{err}");
        let both = Impact {
            live: true,
            config: true,
        };
        assert!(resolve(both, true, true).is_ok());
        assert!(resolve_one(both, true, true).is_err());
    }

    #[test]
    fn maximum_then_current_in_config() {
        let mut config = def("<vcpu>1</vcpu>", 1024);
        let max = VcpuFlags {
            maximum: true,
            ..Default::default()
        };
        set_vcpus(None, Some(&mut config), 4, max, 32).unwrap();
        assert_eq!(
            (vcpu_count(&config, true), vcpu_count(&config, false)),
            (4, 1)
        );
        set_vcpus(None, Some(&mut config), 2, VcpuFlags::default(), 32).unwrap();
        assert_eq!(
            (vcpu_count(&config, true), vcpu_count(&config, false)),
            (4, 2)
        );
        let err = set_vcpus(None, Some(&mut config), 5, VcpuFlags::default(), 32).unwrap_err();
        assert!(err.to_string().contains("5 > 4"), "{err}");
        // Lowering the maximum below the current count lowers the current count too.
        set_vcpus(None, Some(&mut config), 1, max, 32).unwrap();
        assert_eq!(
            (vcpu_count(&config, true), vcpu_count(&config, false)),
            (1, 1)
        );
    }

    #[test]
    fn flag_rules_and_topology() {
        let max_without_config = VcpuFlags {
            maximum: true,
            ..Default::default()
        };
        assert!(check_vcpu_flags(max_without_config).is_err());
        let guest_with_config = VcpuFlags {
            guest: true,
            impact: CONFIG,
            ..Default::default()
        };
        assert!(check_vcpu_flags(guest_with_config).is_err());
        let mut config = def(
            "<vcpu>4</vcpu><cpu><topology sockets='1' cores='2' threads='2'/></cpu>",
            1024,
        );
        let max = VcpuFlags {
            maximum: true,
            impact: CONFIG,
            ..Default::default()
        };
        let err = set_vcpus(None, Some(&mut config), 6, max, 32).unwrap_err();
        assert!(err.to_string().contains("topology"), "{err}");
    }

    #[test]
    fn live_maximum_and_limits_are_refused() {
        let mut live = def("<vcpu current='1'>2</vcpu>", 1024);
        let max = VcpuFlags {
            maximum: true,
            ..Default::default()
        };
        assert!(matches!(
            set_vcpus(Some(&mut live), None, 2, max, 32),
            Err(DomainError::OperationInvalid(_))
        ));
        assert!(set_vcpus(Some(&mut live), None, 0, VcpuFlags::default(), 32).is_err());
        assert!(set_vcpus(Some(&mut live), None, 33, VcpuFlags::default(), 32).is_err());
        set_vcpus(Some(&mut live), None, 2, VcpuFlags::default(), 32).unwrap();
        assert_eq!(vcpu_count(&live, false), 2);
    }

    #[test]
    fn memory_rules() {
        let mut config = def("<vcpu>1</vcpu>", 4096);
        set_memory(None, Some(&mut config), 2048, MemoryFlags::default()).unwrap();
        assert_eq!(config.current_memory_kib, Some(2048));
        let err = set_memory(None, Some(&mut config), 8192, MemoryFlags::default()).unwrap_err();
        assert!(err.to_string().contains("higher than max memory"), "{err}");
        let max = MemoryFlags {
            maximum: true,
            ..Default::default()
        };
        set_memory(None, Some(&mut config), 1024, max).unwrap();
        assert_eq!(
            (config.memory_kib, config.current_memory_kib),
            (1024, Some(1024))
        );
        let mut live = def("<vcpu>1</vcpu>", 4096);
        assert!(matches!(
            set_memory(Some(&mut live), None, 1024, max),
            Err(DomainError::OperationInvalid(_))
        ));
    }
}
