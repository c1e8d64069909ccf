//! Serial ports, consoles and channels: a `-chardev` backend plus a frontend device.
//!
//! A unix-socket backend whose XML gives no path gets one in the run dir (the guest agent's
//! channel is `RUN/org.qemu.guest_agent.0`), so the driver knows where to connect; QEMU
//! listens on it (`server=on,wait=off`).

use std::path::Path;

use super::cmd::{Cmd, Props};
use super::{ArgvContext, ArgvError};
use crate::xml::{CharDevice, DomainDef};

pub(super) fn chardevs(def: &DomainDef, ctx: &ArgvContext, cmd: &mut Cmd) -> Result<(), ArgvError> {
    let d = &def.devices;
    let serial_port =
        |s: &CharDevice, i: usize| s.target.as_ref().and_then(|t| t.port).unwrap_or(i as u32);
    for (i, s) in d.serials.iter().enumerate() {
        let port = serial_port(s, i);
        match s.target.as_ref().and_then(|t| t.target_type.as_deref()) {
            None | Some("isa-serial") => {}
            Some(t) => {
                return Err(ArgvError::unsupported(format!(
                    "<serial><target type='{t}'>"
                )));
            }
        }
        serial(s, port, &ctx.run_dir, cmd)?;
    }
    let virtio_serial_needed = d.channels.iter().any(is_virtio)
        || d.consoles.iter().any(|c| console_kind(c) == Some("virtio"));
    let declared = d
        .controllers
        .iter()
        .any(|c| c.controller_type == "virtio-serial");
    // libvirt adds the controller when the XML leaves it implicit.
    if virtio_serial_needed && !declared {
        cmd.device(Props::driver("virtio-serial-pci").with("id", "virtio-serial0"));
    }
    for (j, c) in d.consoles.iter().enumerate() {
        match console_kind(c) {
            None | Some("serial") => {
                let port = c.target.as_ref().and_then(|t| t.port).unwrap_or(0);
                let aliased = d
                    .serials
                    .iter()
                    .enumerate()
                    .any(|(i, s)| serial_port(s, i) == port);
                // The usual `<console>` is the first serial port seen from another angle.
                if aliased {
                    continue;
                }
                if !d.serials.is_empty() || j != 0 {
                    return Err(ArgvError::invalid(
                        format!("<console><target type='serial' port='{port}'>"),
                        "a serial console must match a <serial> port",
                    ));
                }
                serial(c, port, &ctx.run_dir, cmd)?;
            }
            Some("virtio") => {
                let id = format!("charconsole{j}");
                let default = ctx.run_dir.join(format!("console{j}.sock"));
                cmd.flag("-chardev", backend(c, &id, &default)?);
                cmd.device(
                    Props::driver("virtconsole")
                        .with("chardev", id.as_str())
                        .with("id", format!("console{j}")),
                );
            }
            Some(t) => {
                return Err(ArgvError::unsupported(format!(
                    "<console><target type='{t}'>"
                )));
            }
        }
    }
    for (k, ch) in d.channels.iter().enumerate() {
        if !is_virtio(ch) {
            let t = ch
                .target
                .as_ref()
                .and_then(|t| t.target_type.as_deref())
                .unwrap_or("");
            return Err(ArgvError::unsupported(format!(
                "<channel><target type='{t}'>"
            )));
        }
        let name = ch.target.as_ref().and_then(|t| t.name.as_deref());
        let file = match name {
            Some(n) if n.is_empty() || n.contains('/') || n == "." || n == ".." => {
                return Err(ArgvError::invalid(
                    format!("<channel><target name='{n}'>"),
                    "a port name without '/'",
                ));
            }
            Some(n) => n.to_string(),
            None => format!("channel{k}.sock"),
        };
        let id = format!("charchannel{k}");
        cmd.flag("-chardev", backend(ch, &id, &ctx.run_dir.join(file))?);
        let mut p = Props::driver("virtserialport")
            .with("bus", "virtio-serial0.0")
            .with("nr", k as u32 + 1)
            .with("chardev", id.as_str())
            .with("id", format!("channel{k}"));
        p.set_opt("name", name);
        cmd.device(p);
    }
    Ok(())
}

fn is_virtio(c: &CharDevice) -> bool {
    c.target.as_ref().and_then(|t| t.target_type.as_deref()) == Some("virtio")
}

fn console_kind(c: &CharDevice) -> Option<&str> {
    c.target.as_ref().and_then(|t| t.target_type.as_deref())
}

fn serial(c: &CharDevice, port: u32, run_dir: &Path, cmd: &mut Cmd) -> Result<(), ArgvError> {
    let id = format!("charserial{port}");
    let default = run_dir.join(format!("serial{port}.sock"));
    cmd.flag("-chardev", backend(c, &id, &default)?);
    cmd.device(
        Props::driver("isa-serial")
            .with("chardev", id.as_str())
            .with("id", format!("serial{port}"))
            .with("index", port),
    );
    Ok(())
}

/// The `-chardev` value; `default_path` serves a unix socket given without a path.
fn backend(c: &CharDevice, id: &str, default_path: &Path) -> Result<String, ArgvError> {
    let src = c.sources.first();
    let path = src.and_then(|s| s.path.as_deref());
    Ok(match c.dev_type.as_str() {
        "pty" => format!("pty,id={id}"),
        "null" => format!("null,id={id}"),
        "file" => {
            let p = path.ok_or_else(|| {
                ArgvError::invalid(format!("<{} type='file'>", id), "needs <source path=…>")
            })?;
            format!("file,id={id},path={}", escape(p))
        }
        "unix" => {
            let p = path
                .map(str::to_string)
                .unwrap_or_else(|| default_path.display().to_string());
            match src.and_then(|s| s.mode.as_deref()) {
                Some("connect") => format!("socket,id={id},path={}", escape(&p)),
                _ => format!("socket,id={id},path={},server=on,wait=off", escape(&p)),
            }
        }
        other => {
            return Err(ArgvError::unsupported(format!(
                "character device type '{other}' ({id})"
            )));
        }
    })
}

/// QEMU's option syntax doubles a comma inside a value.
pub(super) fn escape(v: &str) -> String {
    v.replace(',', ",,")
}
