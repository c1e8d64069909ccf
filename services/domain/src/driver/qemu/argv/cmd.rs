//! The argument list under construction, and facts about the machine that several device
//! areas need (which chipset, which controllers exist).

use std::cell::RefCell;

use serde_json::Value;

use super::{ArgvContext, ArgvError};
use crate::xml::DomainDef;

/// The two x86 chipsets QEMU offers; they differ in root bus name and built-in controllers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chipset {
    /// `pc`, `pc-i440fx-*`: PCI root `pci.0`, built-in IDE.
    I440fx,
    /// `q35`, `pc-q35-*`: PCIe root `pcie.0`, built-in AHCI (bus `ide.N`), no IDE.
    Q35,
}

pub(super) struct Cmd {
    args: Vec<String>,
    pub chipset: Chipset,
    /// The machine type as passed to `-machine`.
    pub machine: String,
    /// Whether QEMU runs under KVM.
    pub kvm: bool,
    /// Indexes of the declared PCI controllers below the root: the buses `pci.N` a device
    /// address may name.
    pub pci_buses: Vec<u32>,
    /// PCI slots with devices at functions other than 0 ([`super::addr::multifunction_slots`]).
    pub multifunction_slots: Vec<(u32, u32)>,
    /// The `acpi-index` values given to PCI devices so far ([`super::addr::pci`]).
    pub acpi_indexes: RefCell<Vec<u32>>,
}

impl Cmd {
    pub fn new(def: &DomainDef, ctx: &ArgvContext) -> Result<Self, ArgvError> {
        let kvm = match def.domain_type.as_str() {
            "kvm" if ctx.kvm_usable => true,
            "kvm" => return Err(ArgvError::KvmUnavailable),
            "qemu" => false,
            other => {
                return Err(ArgvError::unsupported(format!(
                    "<domain type='{other}'> (only kvm and qemu)"
                )));
            }
        };
        let machine = def.os.machine.clone().unwrap_or_else(|| "pc".to_string());
        let chipset = if machine == "q35" || machine.starts_with("pc-q35") {
            Chipset::Q35
        } else if machine == "pc" || machine.starts_with("pc-i440fx") || machine == "pc-1.0" {
            Chipset::I440fx
        } else {
            return Err(ArgvError::unsupported(format!(
                "machine type '{machine}' (only pc, pc-i440fx-*, q35, pc-q35-*)"
            )));
        };
        let pci_buses = def
            .devices
            .controllers
            .iter()
            .zip(super::controllers::indexes(def))
            .filter(|(c, i)| c.controller_type == "pci" && *i != 0)
            .map(|(_, i)| i)
            .collect();
        Ok(Cmd {
            args: Vec::new(),
            chipset,
            machine,
            kvm,
            pci_buses,
            multifunction_slots: super::addr::multifunction_slots(def),
            acpi_indexes: RefCell::new(Vec::new()),
        })
    }

    pub fn arg(&mut self, a: impl Into<String>) {
        self.args.push(a.into());
    }

    pub fn flag(&mut self, flag: &str, value: impl Into<String>) {
        self.args.push(flag.to_string());
        self.args.push(value.into());
    }

    /// `-device {json}`.
    pub fn device(&mut self, props: Props) {
        self.flag("-device", props.to_json());
    }

    /// `-blockdev {json}`.
    pub fn blockdev(&mut self, props: Props) {
        self.flag("-blockdev", props.to_json());
    }

    /// `-object {json}`.
    pub fn object(&mut self, props: Props) {
        self.flag("-object", props.to_json());
    }

    /// Any other option taking a JSON object (`-audiodev {json}`).
    pub fn object_flag(&mut self, flag: &str, props: Props) {
        self.flag(flag, props.to_json());
    }

    /// The root PCI bus's id.
    pub fn root_bus(&self) -> &'static str {
        match self.chipset {
            Chipset::I440fx => "pci.0",
            Chipset::Q35 => "pcie.0",
        }
    }

    pub fn finish(self) -> Vec<String> {
        self.args
    }
}

/// A JSON object kept in insertion order, so the output reads like libvirt's (`driver`
/// first, the bus placement last); serde_json's own map sorts keys.
#[derive(Debug, Clone, Default)]
pub(super) struct Props(Vec<(String, Value)>);

impl Props {
    pub fn new() -> Self {
        Props(Vec::new())
    }

    /// Starts a `-device` object.
    pub fn driver(driver: &str) -> Self {
        Props::new().with("driver", driver)
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.set(key, value);
        self
    }

    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.0.push((key.to_string(), value.into()));
    }

    pub fn set_opt(&mut self, key: &str, value: Option<impl Into<Value>>) {
        if let Some(v) = value {
            self.set(key, v);
        }
    }

    pub fn to_json(&self) -> String {
        let fields: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), v))
            .collect();
        format!("{{{}}}", fields.join(","))
    }
}
