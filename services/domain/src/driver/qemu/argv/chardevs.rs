//! Serial ports, consoles and channels: a `-chardev` backend plus a frontend device.
//!
//! A unix-socket backend whose XML gives no path gets one in the run dir (the guest agent's
//! channel is `RUN/org.qemu.guest_agent.0`), so the driver knows where to connect; QEMU
//! listens on it (`server=on,wait=off`).
//!
//! Consoles (serial ports and virtio consoles) are always proxied by the domain service
//! (`crate::console`), never handed out as host ptys: a `type='pty'` console becomes a unix
//! socket QEMU listens on, `RUN/ALIAS.sock`, which the service can reconnect to after a
//! restart. Every console whose socket virtplane places (pty, or unix without a path) also
//! gets `logfile=RUN/ALIAS.log,logappend=on`: QEMU records the output there even while nobody
//! is connected, so the scrollback survives a service restart. The paths come from
//! `crate::console::{socket_path, log_path}`, which the console service reads too.

use std::path::Path;

use super::cmd::{Cmd, Props};
use super::{ArgvContext, ArgvError, addr, virtio_serial};
use crate::console::{log_path, socket_path};
use crate::xml::{CharDevice, DomainDef};

pub(super) fn chardevs(def: &DomainDef, ctx: &ArgvContext, cmd: &mut Cmd) -> Result<(), ArgvError> {
    let d = &def.devices;
    // A protocol belongs to a TCP backend; elsewhere it would be ignored.
    for c in d
        .serials
        .iter()
        .chain(&d.parallels)
        .chain(&d.consoles)
        .chain(&d.channels)
    {
        // `raw` is every backend's default: it changes nothing.
        if let Some(p) = c.protocol.as_deref().filter(|p| *p != "raw")
            && c.dev_type != "tcp"
        {
            return Err(ArgvError::invalid(
                format!(
                    "<protocol type='{p}'> on a character device of type '{}'",
                    c.dev_type
                ),
                "only TCP backends have a protocol",
            ));
        }
    }
    let serial_port =
        |s: &CharDevice, i: usize| s.target.as_ref().and_then(|t| t.port).unwrap_or(i as u32);
    for (i, s) in d.serials.iter().enumerate() {
        let port = serial_port(s, i);
        let frontend = match s.target.as_ref().and_then(|t| t.target_type.as_deref()) {
            None | Some("isa-serial") => "isa-serial",
            Some("pci-serial") => "pci-serial",
            // QEMU's debug console port (SeaBIOS and OVMF write their logs there).
            Some("isa-debug") => "isa-debugcon",
            Some(t) => {
                return Err(ArgvError::unsupported(format!(
                    "<serial><target type='{t}'>"
                )));
            }
        };
        serial(s, port, frontend, &ctx.run_dir, cmd)?;
    }
    for (i, p) in d.parallels.iter().enumerate() {
        parallel(p, i, &ctx.run_dir, cmd)?;
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
                serial(c, port, "isa-serial", &ctx.run_dir, cmd)?;
            }
            Some("virtio") => {
                let id = format!("charconsole{j}");
                let alias = format!("console{j}");
                let (default, log) = (
                    socket_path(&ctx.run_dir, &alias),
                    log_path(&ctx.run_dir, &alias),
                );
                cmd.flag("-chardev", backend(c, &id, &default, Some(&log))?);
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
    let virtio_channels: Vec<&CharDevice> = d.channels.iter().filter(|c| is_virtio(c)).collect();
    let ports = virtio_serial::ports(def, &virtio_channels)?;
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
        cmd.flag("-chardev", backend(ch, &id, &ctx.run_dir.join(file), None)?);
        // Every channel is virtio by now, so the k-th channel has the k-th port.
        let port = &ports[k];
        let mut p = Props::driver("virtserialport")
            .with("bus", port.bus.as_str())
            .with("nr", port.nr)
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

fn serial(
    c: &CharDevice,
    port: u32,
    frontend: &str,
    run_dir: &Path,
    cmd: &mut Cmd,
) -> Result<(), ArgvError> {
    let id = format!("charserial{port}");
    let alias = format!("serial{port}");
    let (default, log) = (socket_path(run_dir, &alias), log_path(run_dir, &alias));
    cmd.flag("-chardev", backend(c, &id, &default, Some(&log))?);
    let mut p = Props::driver(frontend)
        .with("chardev", id.as_str())
        .with("id", format!("serial{port}"));
    let what = format!("<serial> port {port}");
    match frontend {
        "pci-serial" => addr::pci(cmd, &c.info, &what, &mut p)?,
        "isa-debugcon" => addr::isa(&c.info, &what, &mut p)?,
        _ => {
            p.set("index", port);
            addr::isa(&c.info, &what, &mut p)?;
        }
    }
    cmd.device(p);
    Ok(())
}

/// A parallel port: its backend and an `isa-parallel`, numbered in definition order as
/// libvirt does. A host pty is what libvirt gives a `pty` parallel port too; it is not a
/// console the service proxies.
fn parallel(c: &CharDevice, i: usize, run_dir: &Path, cmd: &mut Cmd) -> Result<(), ArgvError> {
    let what = format!("<parallel> port {i}");
    if let Some(t) = &c.target
        && (t.target_type.is_some() || t.name.is_some() || t.port.is_some_and(|p| p as usize != i))
    {
        return Err(ArgvError::invalid(
            format!("<target> of {what}"),
            "parallel ports are numbered in order and have no type or name",
        ));
    }
    let id = format!("charparallel{i}");
    let default = run_dir.join(format!("parallel{i}.sock"));
    cmd.flag("-chardev", backend(c, &id, &default, None)?);
    let mut p = Props::driver("isa-parallel")
        .with("chardev", id.as_str())
        .with("id", format!("parallel{i}"));
    addr::isa(&c.info, &what, &mut p)?;
    cmd.device(p);
    Ok(())
}

/// The `-chardev` value; `default_path` serves a unix socket given without a path.
/// `console_log` is given for consoles: a pty console is then proxied (a socket at
/// `default_path`), and a socket at `default_path` logs to `console_log`.
fn backend(
    c: &CharDevice,
    id: &str,
    default_path: &Path,
    console_log: Option<&Path>,
) -> Result<String, ArgvError> {
    let src = c.sources.first();
    let path = src.and_then(|s| s.path.as_deref());
    let owned = |log: &Path| {
        format!(
            "socket,id={id},path={},server=on,wait=off,logfile={},logappend=on",
            escape(&default_path.display().to_string()),
            escape(&log.display().to_string())
        )
    };
    if c.dev_type != "file" && src.is_some_and(|s| s.append.is_some()) {
        return Err(ArgvError::invalid(
            format!("<source append=…> ({id})"),
            "only file backends append",
        ));
    }
    let mut value = match c.dev_type.as_str() {
        "pty" => match console_log {
            Some(log) => owned(log),
            None => format!("pty,id={id}"),
        },
        "null" => format!("null,id={id}"),
        "file" => {
            let p = path.ok_or_else(|| {
                ArgvError::invalid(format!("<{} type='file'>", id), "needs <source path=…>")
            })?;
            let mut v = format!("file,id={id},path={}", escape(p));
            if let Some(append) = src.and_then(|s| s.append.as_deref()) {
                v.push_str(&format!(",append={append}"));
            }
            v
        }
        "unix" => {
            let p = path
                .map(str::to_string)
                .unwrap_or_else(|| default_path.display().to_string());
            match (src.and_then(|s| s.mode.as_deref()), path, console_log) {
                (Some("connect"), _, _) => format!("socket,id={id},path={}", escape(&p)),
                (_, None, Some(log)) => owned(log),
                _ => format!("socket,id={id},path={},server=on,wait=off", escape(&p)),
            }
        }
        "dev" | "tcp" | "udp" | "vc" => host_backend(c, id)?,
        other => {
            return Err(ArgvError::unsupported(format!(
                "character device type '{other}' ({id})"
            )));
        }
    };
    // `<log>`: QEMU copies the guest's output to the file too.
    if let Some(log) = &c.log {
        if value.contains(",logfile=") {
            return Err(ArgvError::invalid(
                format!("<log> ({id})"),
                "the service keeps this console's log itself",
            ));
        }
        value.push_str(&format!(",logfile={}", escape(&log.file)));
        if let Some(append) = &log.append {
            value.push_str(&format!(",logappend={append}"));
        }
    }
    Ok(value)
}

/// Backends on host devices and the network, as libvirt spells them: a host tty, TCP (client,
/// or a server with `mode='bind'`), UDP (to the `connect` source, from the `bind` one), and
/// QEMU's own virtual console.
fn host_backend(c: &CharDevice, id: &str) -> Result<String, ArgvError> {
    let what = format!("<{} type='{}'> ({id})", c.dev_type, c.dev_type);
    let source = |mode: &str| {
        c.sources
            .iter()
            .find(|s| s.mode.as_deref().unwrap_or("connect") == mode)
    };
    Ok(match c.dev_type.as_str() {
        "dev" => {
            let path = c.sources.first().and_then(|s| s.path.as_deref());
            let path = path.ok_or_else(|| ArgvError::invalid(&what, "needs <source path=…>"))?;
            format!("serial,id={id},path={}", escape(path))
        }
        "tcp" => {
            let s = c.sources.first();
            let (Some(host), Some(port)) = (
                s.and_then(|s| s.host.as_deref()),
                s.and_then(|s| s.service.as_deref()),
            ) else {
                return Err(ArgvError::invalid(&what, "needs <source host=… service=…>"));
            };
            let server = s.and_then(|s| s.mode.as_deref()) == Some("bind");
            let telnet = match c.protocol.as_deref() {
                None | Some("raw") => "",
                Some("telnet") => ",telnet=on",
                Some(p) => {
                    return Err(ArgvError::unsupported(format!(
                        "<protocol type='{p}'> on {what} (TLS needs host certificates)"
                    )));
                }
            };
            format!(
                "socket,id={id},host={},port={}{telnet}{}",
                escape(host),
                escape(port),
                if server { ",server=on,wait=off" } else { "" }
            )
        }
        "udp" => {
            let remote = source("connect");
            let local = source("bind");
            let port = remote.and_then(|s| s.service.as_deref());
            let port = port.ok_or_else(|| {
                ArgvError::invalid(&what, "needs <source mode='connect' service=…>")
            })?;
            format!(
                "udp,id={id},host={},port={},localaddr={},localport={}",
                escape(remote.and_then(|s| s.host.as_deref()).unwrap_or("")),
                escape(port),
                escape(local.and_then(|s| s.host.as_deref()).unwrap_or("")),
                escape(local.and_then(|s| s.service.as_deref()).unwrap_or("0")),
            )
        }
        _ => format!("vc,id={id}"),
    })
}

/// QEMU's option syntax doubles a comma inside a value.
pub(super) fn escape(v: &str) -> String {
    v.replace(',', ",,")
}
