//! Domain definition → QEMU command line: a pure function, golden-tested.
//!
//! The output follows libvirt 9.0's spelling for the same features (its
//! `tests/qemuxml2argvdata/*.args`), aimed at QEMU 7.2 (Debian 12) and later: `-blockdev` and
//! `-device` as JSON, `-name guest=…`, `-no-user-config -nodefaults`, QMP on a unix socket in the
//! run dir. QEMU always starts paused (`-S`): the driver finishes setup over QMP, then `cont`s.
//!
//! What the builder cannot honour it refuses with [`ArgvError`], never dropping it silently:
//! every element under `<devices>` the XML model did not recognise, and every recognised value
//! this builder has no translation for.
//!
//! One file per concern under `argv/`: machine-wide options, controllers, disks, NICs,
//! character devices, and the remaining devices.

mod acpi_index;
mod addr;
mod audio;
mod boot;
mod chardevs;
mod cmd;
mod controllers;
mod cpu;
mod disk_tuning;
mod disks;
mod firmware;
mod hotplug;
mod machine;
mod misc;
mod nic_driver;
mod nics;
mod pci_controllers;
mod platform;
mod virtio;
mod virtio_serial;

use std::path::PathBuf;

use crate::xml::DomainDef;

use cmd::Cmd;
pub use hotplug::{
    DiskHotplug, NicHotplug, PciSlot, SlotError, check_controller, disk_device_id, disk_hotplug,
    free_pci_slot, netdev_id, nic_hotplug,
};

/// What the command line depends on besides the definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgvContext {
    /// The emulator used when the definition has no `<emulator>`.
    pub emulator: PathBuf,
    /// The domain's runtime directory: the QMP socket, and channel and console sockets whose
    /// XML gives no path, are placed here.
    pub run_dir: PathBuf,
    /// Whether `/dev/kvm` can be used; `<domain type='kvm'>` needs it.
    pub kvm_usable: bool,
}

/// A QEMU invocation: program, arguments, extra environment, and where QMP will listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Extra environment from `<qemu:commandline>`; a variable without a value is set empty.
    pub env: Vec<(String, String)>,
    pub qmp_socket: PathBuf,
}

/// Why a definition cannot become a command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgvError {
    #[error(
        "<domain type='kvm'> needs a usable /dev/kvm, which this host lacks; \
         use <domain type='qemu'> to run under TCG emulation"
    )]
    KvmUnavailable,
    #[error("the qemu driver does not support {what}")]
    Unsupported { what: String },
    #[error("{what}: {why}")]
    Invalid { what: String, why: String },
}

impl ArgvError {
    pub(crate) fn unsupported(what: impl Into<String>) -> Self {
        ArgvError::Unsupported { what: what.into() }
    }

    pub(crate) fn invalid(what: impl Into<String>, why: impl Into<String>) -> Self {
        ArgvError::Invalid {
            what: what.into(),
            why: why.into(),
        }
    }
}

/// Builds the QEMU command line for `def`.
pub fn build(def: &DomainDef, ctx: &ArgvContext) -> Result<QemuCommand, ArgvError> {
    refuse_unknown(def)?;
    let mut cmd = Cmd::new(def, ctx)?;
    let qmp_socket = ctx.run_dir.join("qmp.sock");
    machine::head(def, ctx, &mut cmd)?;
    cmd.flag("-uuid", &def.uuid);
    platform::genid(def, &mut cmd);
    if def.devices.graphics.is_empty() {
        cmd.flag("-display", "none");
    }
    cmd.arg("-no-user-config");
    cmd.arg("-nodefaults");
    cmd.flag(
        "-chardev",
        format!(
            "socket,id=charmonitor,path={},server=on,wait=off",
            chardevs::escape(&qmp_socket.display().to_string())
        ),
    );
    cmd.flag("-mon", "chardev=charmonitor,id=monitor,mode=control");
    machine::tail(def, &mut cmd)?;
    controllers::controllers(def, &mut cmd)?;
    disks::disks(def, &mut cmd)?;
    nics::nics(def, &mut cmd)?;
    chardevs::chardevs(def, ctx, &mut cmd)?;
    misc::inputs(def, &mut cmd)?;
    misc::graphics(def, ctx, &mut cmd)?;
    misc::videos(def, &mut cmd)?;
    misc::watchdogs(def, &mut cmd)?;
    misc::balloon(def, &mut cmd)?;
    misc::rngs(def, &mut cmd)?;
    platform::panics(def, &mut cmd)?;
    acpi_index::check(def, &cmd)?;
    let mut env = Vec::new();
    if let Some(q) = &def.qemu_commandline {
        for a in &q.args {
            cmd.arg(a);
        }
        env = q
            .envs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
            .collect();
    }
    let program = def
        .devices
        .emulator
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(|| ctx.emulator.clone());
    Ok(QemuCommand {
        program,
        args: cmd.finish(),
        env,
        qmp_socket,
    })
}

/// Nothing the XML model kept without understanding can be honoured: devices and their
/// parts, `<os>` parts that decide how the guest boots (`<nvram>`, `<bootmenu>`), and the rest
/// too — `<cpu><numa>`, `<memoryBacking>`, `<launchSecurity>`, `<pm>` shape the command line
/// in libvirt, and `<cputune>`, `<numatune>`, `<seclabel>` are applied by libvirt around it
/// (affinity, cgroups, labels), which this driver does not do. Running the guest without
/// them would silently give something other than what was defined.
fn refuse_unknown(def: &DomainDef) -> Result<(), ArgvError> {
    match def.unknown_elements().as_slice() {
        [] => Ok(()),
        list => Err(ArgvError::unsupported(format!(
            "{} (not understood by the domain XML model)",
            list.iter()
                .map(|p| describe_path(p))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `domain/devices/hostdev` → `<hostdev> devices`; `domain/devices/disk/@foo` →
/// `attribute 'foo' of <disk>`.
fn describe_path(path: &str) -> String {
    let rest = path.strip_prefix("domain/").unwrap_or(path);
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["devices", el] => format!("<{el}> devices"),
        [.., parent, attr] if attr.starts_with('@') => {
            format!("attribute '{}' of <{parent}>", &attr[1..])
        }
        [.., parent, el] => format!("<{el}> in <{parent}>"),
        _ => format!("<{rest}>"),
    }
}

#[cfg(test)]
mod tests;
