//! Platform devices outside the device buses' usual order, placed where libvirt 9.0 places
//! them: the VM generation ID (right after `-uuid`) and the panic notifiers (last).

use super::cmd::{Cmd, Props};
use super::{ArgvError, addr};
use crate::xml::DomainDef;

/// `<genid>`: the generation ID a guest (Windows' VM-GenerationID driver) watches to notice
/// it was restored or cloned.
pub(super) fn genid(def: &DomainDef, cmd: &mut Cmd) {
    if let Some(guid) = &def.genid {
        cmd.device(
            Props::driver("vmgenid")
                .with("guid", guid.as_str())
                .with("id", "vmgenid0"),
        );
    }
}

/// `<panic>`: the pvpanic device the guest signals a crash through (QEMU then emits
/// `GUEST_PANICKED` and the driver carries out `<on_crash>`), on the ISA bus (x86's default)
/// or PCI. A Hyper-V panic is a CPU property (`cpu.rs`).
pub(super) fn panics(def: &DomainDef, cmd: &mut Cmd) -> Result<(), ArgvError> {
    let panics = &def.devices.panics;
    for (i, p) in panics.iter().enumerate() {
        let model = p.model.as_deref().unwrap_or("isa");
        if panics[..i]
            .iter()
            .any(|o| o.model.as_deref().unwrap_or("isa") == model)
        {
            return Err(ArgvError::invalid(
                format!("<panic model='{model}'>"),
                "only one panic device of each model",
            ));
        }
        let what = format!("<panic model='{model}'>");
        match model {
            "isa" => {
                let mut props = Props::driver("pvpanic");
                if let Some(a) = &p.info.address {
                    if a.addr_type != "isa" || a.get("irq").is_some() {
                        return Err(ArgvError::invalid(
                            format!("<address> on {what}"),
                            "the ISA panic device takes an ISA address with an iobase only",
                        ));
                    }
                    if let Some(v) = a.get("iobase") {
                        let port = addr::parse_num(v).ok_or_else(|| {
                            ArgvError::invalid(
                                format!("{what}: <address iobase='{v}'>"),
                                "a number",
                            )
                        })?;
                        props.set("ioport", port);
                    }
                }
                cmd.device(props);
            }
            "pci" => {
                let mut props = Props::driver("pvpanic-pci").with("id", format!("panic{i}"));
                addr::pci(cmd, &p.info, &what, &mut props)?;
                cmd.device(props);
            }
            "hyperv" if p.info.address.is_some() => {
                return Err(ArgvError::invalid(
                    format!("<address> on {what}"),
                    "the Hyper-V panic notifier is a CPU feature, not a device",
                ));
            }
            "hyperv" => {}
            other => {
                return Err(ArgvError::unsupported(format!(
                    "<panic model='{other}'> on x86"
                )));
            }
        }
    }
    Ok(())
}
