//! Firmware: a ROM image (`-bios`) or UEFI in flash — the code as `pflash0` and, unless the
//! loader is stateless, the variable store (`<nvram>`) as `pflash1` — spelled as libvirt 9.0
//! spells it.
//!
//! libvirt creates a missing variable store from a template when the guest starts; this
//! builder translates only, so a store is used where the definition names it and must exist
//! (QEMU refuses to start otherwise), and a store given only as a template is refused.

use super::ArgvError;
use super::cmd::{Cmd, Props};
use crate::xml::{DomainDef, Nvram};

/// The `-machine` properties for the firmware, after emitting its `-blockdev`s.
pub(super) fn pflash(def: &DomainDef, cmd: &mut Cmd) -> Result<Vec<String>, ArgvError> {
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
    let stateless = os
        .loader
        .as_ref()
        .is_some_and(|l| l.stateless.as_deref() == Some("yes"));
    let pflash = os
        .loader
        .as_ref()
        .is_some_and(|l| l.loader_type.as_deref() == Some("pflash"));
    // As libvirt: UEFI on x86 finds its hardware through ACPI.
    let acpi = def.features.as_ref().is_some_and(|f| f.enabled("acpi"));
    if (pflash || os.firmware.as_deref() == Some("efi")) && !acpi {
        return Err(ArgvError::invalid(
            "<loader type='pflash'>",
            "UEFI needs <features><acpi/></features> on x86",
        ));
    }
    let stateful = os
        .loader
        .as_ref()
        .is_some_and(|l| l.stateless.as_deref() == Some("no"));
    if stateful && !pflash {
        return Err(ArgvError::invalid(
            "<loader stateless='no'>",
            "only UEFI firmware (<loader type='pflash'>) keeps a variable store",
        ));
    }
    if os.nvram.is_some() {
        if stateless {
            return Err(ArgvError::invalid(
                "<nvram>",
                "a stateless loader (<loader stateless='yes'>) has no variable store",
            ));
        }
        if !pflash {
            return Err(ArgvError::invalid(
                "<nvram>",
                "a variable store needs a <loader type='pflash'>",
            ));
        }
    }
    let Some(loader) = os.loader.as_ref().filter(|_| pflash) else {
        // A ROM (`-bios`) keeps no state: `stateless` changes nothing for it.
        return Ok(Vec::new());
    };
    let path = loader.path.as_deref().ok_or_else(|| {
        ArgvError::invalid("<loader type='pflash'>", "needs the firmware image's path")
    })?;
    let readonly = loader.readonly.as_deref() == Some("yes");
    flash(cmd, 0, path, readonly);
    if loader.secure.as_deref() == Some("yes") {
        cmd.flag("-global", "driver=cfi.pflash01,property=secure,value=on");
    }
    let mut props = vec!["pflash0=libvirt-pflash0-format".to_string()];
    if let Some(nvram) = &os.nvram {
        flash(cmd, 1, store_path(nvram)?, false);
        props.push("pflash1=libvirt-pflash1-format".into());
    }
    Ok(props)
}

/// A loader that is not pflash is a ROM image: `-bios`.
pub(super) fn rom_bios(def: &DomainDef) -> Option<&str> {
    let loader = def.os.loader.as_ref()?;
    if loader.loader_type.as_deref() == Some("pflash") {
        return None;
    }
    loader.path.as_deref()
}

/// The variable store's path: the element's text, or `<source file>` with `type='file'`.
fn store_path(nvram: &Nvram) -> Result<&str, ArgvError> {
    match (nvram.nvram_type.as_deref(), &nvram.path, &nvram.source) {
        (None, Some(path), None) => Ok(path),
        (Some("file"), None, Some(source)) if source.file.is_some() => {
            Ok(source.file.as_deref().unwrap_or_default())
        }
        (None, None, None) if nvram.template.is_some() => Err(ArgvError::unsupported(
            "a variable store made from a template at start (<nvram template=…> without a \
             path); name the store's file",
        )),
        (Some(t @ ("block" | "network")), _, _) => {
            Err(ArgvError::unsupported(format!("<nvram type='{t}'>")))
        }
        _ => Err(ArgvError::invalid(
            "<nvram>",
            "needs the store's path (as text, or <source file=…> with type='file')",
        )),
    }
}

/// The storage and format nodes of flash unit `unit`.
fn flash(cmd: &mut Cmd, unit: u32, path: &str, readonly: bool) {
    let storage = format!("libvirt-pflash{unit}-storage");
    cmd.blockdev(
        Props::new()
            .with("driver", "file")
            .with("filename", path)
            .with("node-name", storage.as_str())
            .with("auto-read-only", true)
            .with("discard", "unmap"),
    );
    cmd.blockdev(
        Props::new()
            .with("node-name", format!("libvirt-pflash{unit}-format"))
            .with("read-only", readonly)
            .with("driver", "raw")
            .with("file", storage),
    );
}
