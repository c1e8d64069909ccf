//! PCI controllers below the root — bridges, PCIe ports and switches, expander buses — and
//! the root's 64-bit hole, spelled as libvirt 9.0 spells them.
//!
//! `<model name=…>` picks the QEMU device for a controller model (libvirt fills in the
//! default, and accepts only devices that implement that model); `<target>` gives the
//! chassis and port numbers, which otherwise follow the controller's index and address as
//! libvirt assigns them.

use super::ArgvError;
use super::addr;
use super::cmd::{Chipset, Cmd, Props};
use crate::xml::{Controller, DomainDef};

/// The QEMU devices that implement each libvirt PCI controller model, the default first,
/// and the chipset it needs, if any (`virDomainControllerPCIModelName`).
const MODELS: &[(&str, &[&str], Option<Chipset>)] = &[
    ("pci-bridge", &["pci-bridge"], None),
    (
        "dmi-to-pci-bridge",
        &["i82801b11-bridge"],
        Some(Chipset::Q35),
    ),
    (
        "pcie-root-port",
        &["pcie-root-port", "ioh3420"],
        Some(Chipset::Q35),
    ),
    (
        "pcie-switch-upstream-port",
        &["x3130-upstream"],
        Some(Chipset::Q35),
    ),
    (
        "pcie-switch-downstream-port",
        &["xio3130-downstream"],
        Some(Chipset::Q35),
    ),
    (
        "pcie-to-pci-bridge",
        &["pcie-pci-bridge"],
        Some(Chipset::Q35),
    ),
    ("pci-expander-bus", &["pxb"], Some(Chipset::I440fx)),
    ("pcie-expander-bus", &["pxb-pcie"], Some(Chipset::Q35)),
];

/// The PCI root's settings, which are properties of the machine's host bridge: its 64-bit
/// hole (`<pcihole64>`) and, on the PC, ACPI hotplug on the root bus (`<target
/// hotplug>`). libvirt emits them right after `-boot`, before any device.
pub(super) fn root_globals(def: &DomainDef, cmd: &mut Cmd) -> Result<(), ArgvError> {
    for (c, index) in def
        .devices
        .controllers
        .iter()
        .zip(super::controllers::indexes(def))
    {
        let root = c.controller_type == "pci"
            && index == 0
            && matches!(c.model.as_deref(), None | Some("pci-root" | "pcie-root"));
        if !root {
            if c.pcihole64_kib.is_some() {
                return Err(ArgvError::invalid(
                    "<pcihole64>",
                    "only the machine's PCI root (index 0) has a 64-bit hole",
                ));
            }
            continue;
        }
        let what = match cmd.chipset {
            Chipset::I440fx => "<controller type='pci' model='pci-root'>",
            Chipset::Q35 => "<controller type='pci' model='pcie-root'>",
        };
        if let Some(name) = &c.model_name {
            return Err(ArgvError::invalid(
                format!("{what}<model name='{name}'>"),
                "the root bus is the machine's own",
            ));
        }
        if let Some(kib) = c.pcihole64_kib {
            let host = match cmd.chipset {
                Chipset::I440fx => "i440FX-pcihost",
                Chipset::Q35 => "q35-pcihost",
            };
            cmd.flag("-global", format!("{host}.pci-hole64-size={kib}K"));
        }
        let Some(t) = &c.target else {
            continue;
        };
        let others = t.chassis_nr.is_some()
            || t.chassis.is_some()
            || t.port.is_some()
            || t.bus_nr.is_some()
            || t.index.is_some()
            || t.node.is_some();
        if others || (t.hotplug.is_some() && cmd.chipset != Chipset::I440fx) {
            return Err(ArgvError::invalid(
                format!("{what}<target>"),
                "the root bus has only hotplug, and only on the PC (i440fx)",
            ));
        }
        if let Some(h) = &t.hotplug {
            cmd.flag("-global", format!("PIIX4_PM.acpi-root-pci-hotplug={h}"));
        }
    }
    Ok(())
}

/// The `-device` of PCI controller `index` (not the root), without its own address.
pub(super) fn props(c: &Controller, index: u32, cmd: &Cmd) -> Result<Props, ArgvError> {
    let model = c.model.as_deref().unwrap_or("");
    let what = format!("<controller type='pci' model='{model}'>");
    let Some((_, names, chipset)) = MODELS.iter().find(|(m, _, _)| *m == model) else {
        return Err(ArgvError::unsupported(what));
    };
    if chipset.is_some_and(|needed| needed != cmd.chipset) {
        return Err(ArgvError::invalid(
            &what,
            format!("not available with machine type '{}'", cmd.machine),
        ));
    }
    let driver = match c.model_name.as_deref() {
        None => names[0],
        Some(name) if names.contains(&name) => name,
        Some(name) => {
            return Err(ArgvError::invalid(
                format!("{what}<model name='{name}'>"),
                format!("this model is implemented by {}", names.join(" or ")),
            ));
        }
    };
    let t = c.target.clone().unwrap_or_default();
    let allowed: &[&str] = match model {
        "pci-bridge" => &["chassisNr"],
        "pcie-root-port" | "pcie-switch-downstream-port" => &["chassis", "port", "hotplug"],
        "pci-expander-bus" | "pcie-expander-bus" => &["busNr"],
        _ => &[],
    };
    for (name, set) in [
        ("chassisNr", t.chassis_nr.is_some()),
        ("chassis", t.chassis.is_some()),
        ("port", t.port.is_some()),
        ("busNr", t.bus_nr.is_some()),
        ("index", t.index.is_some()),
        ("hotplug", t.hotplug.is_some()),
    ] {
        if set && !allowed.contains(&name) {
            return Err(ArgvError::invalid(
                format!("{what}<target {name}=…>"),
                "this model has no such setting",
            ));
        }
    }
    if t.node.is_some() {
        return Err(ArgvError::unsupported(format!(
            "{what}<target><node> (guest NUMA topology)"
        )));
    }
    let id = format!("pci.{index}");
    let mut p = Props::driver(driver);
    match model {
        "pci-bridge" => {
            p.set("chassis_nr", t.chassis_nr.unwrap_or(index));
            p.set("id", id);
        }
        "pcie-root-port" | "pcie-switch-downstream-port" => {
            let port = match t.port {
                Some(port) => port,
                None => default_port(c, index, model == "pcie-root-port")?,
            };
            p.set("port", port);
            p.set("chassis", t.chassis.unwrap_or(index));
            p.set("id", id);
            if let Some(h) = &t.hotplug {
                p.set("hotplug", h == "on");
            }
        }
        "pci-expander-bus" | "pcie-expander-bus" => {
            // libvirt picks a free bus number below the others; this builder does not
            // guess which the guest should see.
            let bus_nr = t.bus_nr.ok_or_else(|| {
                ArgvError::invalid(
                    &what,
                    "needs <target busNr=…>: the root bus number it opens",
                )
            })?;
            p.set("bus_nr", bus_nr);
            p.set("id", id);
        }
        _ => p.set("id", id),
    }
    Ok(p)
}

/// A port's number when `<target port>` is not given, as libvirt assigns it: a root port's
/// is `slot << 3 | function` of its address, a downstream port's its slot. Without an
/// address (QEMU picks the slot) a root port gets `0x10 + index`.
fn default_port(c: &Controller, index: u32, root_port: bool) -> Result<u32, ArgvError> {
    let Some(a) = c.info.address.as_ref().filter(|a| a.addr_type == "pci") else {
        return Ok(if root_port { 0x10 + index } else { 0 });
    };
    let num = |name: &str| a.get(name).map_or(Some(0), addr::parse_num);
    match (num("slot"), num("function")) {
        (Some(slot), Some(function)) if root_port => Ok((slot << 3) | function),
        (Some(slot), Some(_)) => Ok(slot),
        _ => Err(ArgvError::invalid(
            "<controller type='pci'><address>",
            "slot and function must be numbers",
        )),
    }
}
