//! The remaining devices: input, graphics (VNC), video, watchdog, balloon, RNG.

use super::cmd::{Cmd, Props};
use super::{ArgvContext, ArgvError};
use super::{addr, virtio};
use crate::xml::{DomainDef, VideoModel};

pub(super) fn inputs(def: &DomainDef, cmd: &mut Cmd) -> Result<(), ArgvError> {
    for (i, input) in def.devices.inputs.iter().enumerate() {
        let kind = input.input_type.as_str();
        let what = || {
            format!(
                "<input type='{kind}' bus='{}'>",
                input.bus.as_deref().unwrap_or("")
            )
        };
        let virtio = input.bus.as_deref() == Some("virtio");
        if input.driver.is_some() && !virtio {
            return Err(ArgvError::invalid(
                format!("<driver> on {}", what()),
                "only virtio inputs have driver options",
            ));
        }
        let mut p = match (kind, input.bus.as_deref()) {
            // The PC's own PS/2 mouse and keyboard are always there.
            ("mouse" | "keyboard", None | Some("ps2")) => continue,
            ("tablet" | "mouse" | "keyboard", Some("usb")) => {
                let mut p = Props::driver(match kind {
                    "tablet" => "usb-tablet",
                    "mouse" => "usb-mouse",
                    _ => "usb-kbd",
                })
                .with("id", format!("input{i}"));
                addr::usb(&input.info, &what(), &mut p)?;
                p
            }
            ("tablet" | "mouse" | "keyboard", Some("virtio")) => {
                let mut p = Props::driver(match kind {
                    "tablet" => "virtio-tablet-pci",
                    "mouse" => "virtio-mouse-pci",
                    _ => "virtio-keyboard-pci",
                });
                virtio::options(&mut p, input.driver.as_ref());
                p.set("id", format!("input{i}"));
                addr::pci(cmd, &input.info, &what(), &mut p)?;
                p
            }
            _ => return Err(ArgvError::unsupported(what())),
        };
        cmd.device(std::mem::take(&mut p));
    }
    Ok(())
}

/// `-audiodev` and `-vnc`. A password is never put on the command line, where any local
/// user could read it: `password=on` makes QEMU refuse clients until the driver sets the
/// secret over QMP (`set_password`, libvirt's `change-vnc-password`) after start and before
/// `cont`.
pub(super) fn graphics(def: &DomainDef, ctx: &ArgvContext, cmd: &mut Cmd) -> Result<(), ArgvError> {
    super::audio::audiodevs(def, cmd)?;
    let gs = &def.devices.graphics;
    if gs.len() > 1 {
        return Err(ArgvError::unsupported("more than one <graphics>"));
    }
    let Some(g) = gs.first() else {
        return Ok(());
    };
    if g.graphics_type != "vnc" {
        return Err(ArgvError::unsupported(format!(
            "<graphics type='{}'> (only vnc)",
            g.graphics_type
        )));
    }
    let listen = g.listens.first();
    let mut vnc = match listen.map(|l| l.listen_type.as_str()) {
        Some("socket") => {
            let path = listen
                .and_then(|l| l.socket.clone())
                .unwrap_or_else(|| ctx.run_dir.join("vnc.sock").display().to_string());
            format!("unix:{}", super::chardevs::escape(&path))
        }
        Some("none") => "none".to_string(),
        Some("network") => {
            return Err(ArgvError::unsupported(
                "<listen type='network'> on <graphics>: it needs the network service",
            ));
        }
        _ => {
            let address = listen
                .and_then(|l| l.address.as_deref())
                .or(g.listen.as_deref())
                .unwrap_or("127.0.0.1");
            let host = if address.contains(':') {
                format!("[{address}]")
            } else {
                address.to_string()
            };
            let auto = g.autoport.as_deref() == Some("yes") || g.port.is_none_or(|p| p < 0);
            match g.port {
                _ if auto => format!("{host}:0,to=99"),
                Some(p) if p >= 5900 => format!("{host}:{}", p - 5900),
                Some(p) => {
                    return Err(ArgvError::invalid(
                        format!("<graphics port='{p}'>"),
                        "a VNC port is at least 5900",
                    ));
                }
                None => unreachable!("no port means autoport"),
            }
        }
    };
    match g.websocket {
        None => {}
        Some(p) if p < 0 => vnc.push_str(",websocket=on"),
        Some(p) => vnc.push_str(&format!(",websocket={p}")),
    }
    if let Some(policy) = &g.share_policy {
        vnc.push_str(&format!(",share={policy}"));
    }
    if g.passwd.is_some() {
        vnc.push_str(",password=on");
    }
    if let Some(power) = &g.power_control {
        vnc.push_str(if power == "yes" {
            ",power-control=on"
        } else {
            ",power-control=off"
        });
    }
    // VNC can carry guest audio: to the `<audio>` it names, or, as libvirt 9.0 does, to a
    // silent backend of its own.
    let audiodev = super::audio::vnc_audiodev(def, g, cmd)?;
    vnc.push_str(&format!(",audiodev={audiodev}"));
    cmd.flag("-vnc", vnc);
    if let Some(k) = &g.keymap {
        cmd.flag("-k", k.as_str());
    }
    Ok(())
}

/// `<video>`; a display without one gets a standard VGA, as libvirt adds. The primary
/// video comes first (libvirt moves it there); sizes in the XML are KiB, QEMU's properties
/// are MiB or bytes, and a missing size takes libvirt's default.
pub(super) fn videos(def: &DomainDef, cmd: &mut Cmd) -> Result<(), ArgvError> {
    let vs = &def.devices.videos;
    if vs.is_empty() && !def.devices.graphics.is_empty() {
        cmd.device(
            Props::driver("VGA")
                .with("id", "video0")
                .with("vgamem_mb", 16),
        );
    }
    let primary = vs
        .iter()
        .position(|v| v.model.as_ref().and_then(|m| m.primary.as_deref()) == Some("yes"))
        .unwrap_or(0);
    let order = (0..vs.len())
        .filter(|&i| i == primary)
        .chain((0..vs.len()).filter(|&i| i != primary));
    for (i, v) in order.map(|i| &vs[i]).enumerate() {
        let model = v.model.as_ref();
        let kind = model.map(|m| m.model_type.as_str()).unwrap_or("vga");
        let what = format!("<video><model type='{kind}'>");
        let size = |get: fn(&VideoModel) -> Option<u32>, default_kib: u32| {
            model.and_then(get).unwrap_or(default_kib)
        };
        if kind != "qxl"
            && model.is_some_and(|m| m.ram.is_some() || m.vgamem.is_some() || m.vram64.is_some())
        {
            return Err(ArgvError::unsupported(format!(
                "ram, vram64 or vgamem on {what} (only qxl has them)"
            )));
        }
        let driver = v.driver.clone().unwrap_or_default();
        if driver.name.as_deref() == Some("vhostuser") {
            return Err(ArgvError::unsupported(format!(
                "<driver name='vhostuser'> on {what} (vhost-user GPU)"
            )));
        }
        let has_virtio_options = driver.virtio.items().iter().any(|(_, v)| v.is_some());
        if has_virtio_options && kind != "virtio" {
            return Err(ArgvError::invalid(
                format!("<driver> on {what}"),
                "only virtio video has virtio options",
            ));
        }
        let heads = model.and_then(|m| m.heads);
        if !matches!(kind, "qxl" | "virtio") && heads.is_some_and(|h| h != 1) {
            return Err(ArgvError::unsupported(format!("several heads on {what}")));
        }
        let id = format!("video{i}");
        let mut p = match kind {
            "none" => continue,
            "vga" => Props::driver("VGA")
                .with("id", id)
                .with("vgamem_mb", size(|m| m.vram, 16384) / 1024),
            "cirrus" => Props::driver("cirrus-vga").with("id", id),
            "bochs" => Props::driver("bochs-display")
                .with("id", id)
                .with("vgamem", u64::from(size(|m| m.vram, 16384)) * 1024),
            "ramfb" if i == 0 => {
                if v.info.address.is_some() {
                    return Err(ArgvError::unsupported(format!("an <address> on {what}")));
                }
                cmd.device(Props::driver("ramfb").with("id", id));
                continue;
            }
            // libvirt gives every display one head unless told otherwise.
            "virtio" => {
                let mut p = Props::driver(if i == 0 {
                    "virtio-vga"
                } else {
                    "virtio-gpu-pci"
                });
                virtio::options(&mut p, Some(&driver.virtio));
                p.set("id", id);
                p.set("max_outputs", heads.unwrap_or(1));
                p
            }
            "qxl" => {
                let mut p = Props::driver(if i == 0 { "qxl-vga" } else { "qxl" }).with("id", id);
                p.set("max_outputs", heads.unwrap_or(1));
                p.set("ram_size", u64::from(size(|m| m.ram, 65536)) * 1024);
                p.set("vram_size", u64::from(size(|m| m.vram, 65536)) * 1024);
                p.set("vram64_size_mb", size(|m| m.vram64, 0) / 1024);
                p.set("vgamem_mb", size(|m| m.vgamem, 16384) / 1024);
                p
            }
            _ => return Err(ArgvError::unsupported(what)),
        };
        addr::pci(cmd, &v.info, &what, &mut p)?;
        cmd.device(p);
    }
    Ok(())
}

pub(super) fn watchdogs(def: &DomainDef, cmd: &mut Cmd) -> Result<(), ArgvError> {
    let ws = &def.devices.watchdogs;
    if ws.len() > 1 {
        return Err(ArgvError::unsupported("more than one <watchdog>"));
    }
    let Some(w) = ws.first() else {
        return Ok(());
    };
    let what = format!("<watchdog model='{}'>", w.model);
    match w.model.as_str() {
        "i6300esb" => {
            let mut p = Props::driver("i6300esb").with("id", "watchdog0");
            addr::pci(cmd, &w.info, &what, &mut p)?;
            cmd.device(p);
        }
        "ib700" if w.info.address.is_some() => {
            return Err(ArgvError::unsupported(format!(
                "an <address> on {what}: the ISA card has fixed resources"
            )));
        }
        "ib700" => cmd.device(Props::driver("ib700").with("id", "watchdog0")),
        _ => return Err(ArgvError::unsupported(what)),
    }
    match w.action.as_deref() {
        None | Some("reset") => {}
        Some(a @ ("shutdown" | "poweroff" | "pause" | "none" | "inject-nmi")) => {
            cmd.flag("-watchdog-action", a)
        }
        // libvirt passes `pause` and, on QEMU's WATCHDOG event, writes a core dump and
        // resumes the guest: this driver does not dump guests.
        Some("dump") => {
            return Err(ArgvError::unsupported(
                "<watchdog action='dump'>: libvirt pauses the guest, dumps its memory to a \
                 file and resumes it",
            ));
        }
        Some(a) => {
            return Err(ArgvError::unsupported(format!("<watchdog action='{a}'>")));
        }
    }
    Ok(())
}

/// The memory balloon; libvirt adds a virtio one when `<memballoon>` is absent, and the
/// driver needs it for live memory changes. libvirt sets the statistics period over QMP
/// after start; QEMU takes the same property (`guest-stats-polling-interval`) on the command
/// line, which is where a pure translation sets it.
pub(super) fn balloon(def: &DomainDef, cmd: &mut Cmd) -> Result<(), ArgvError> {
    let Some(m) = &def.devices.memballoon else {
        cmd.device(Props::driver("virtio-balloon-pci").with("id", "balloon0"));
        return Ok(());
    };
    let what = format!("<memballoon model='{}'>", m.model);
    let driver = match m.model.as_str() {
        "none" => {
            let set = m.autodeflate.is_some()
                || m.free_page_reporting.is_some()
                || m.stats_period.is_some()
                || m.driver.is_some()
                || m.info.address.is_some();
            if set {
                return Err(ArgvError::invalid(
                    what,
                    "a missing balloon has no settings",
                ));
            }
            return Ok(());
        }
        "virtio" => "virtio-balloon-pci",
        "virtio-transitional" => "virtio-balloon-pci-transitional",
        "virtio-non-transitional" => "virtio-balloon-pci-non-transitional",
        _ => return Err(ArgvError::unsupported(what)),
    };
    let mut p = Props::driver(driver);
    virtio::options(&mut p, m.driver.as_ref());
    p.set("id", "balloon0");
    p.set_opt(
        "deflate-on-oom",
        m.autodeflate.as_deref().map(|a| a == "on"),
    );
    p.set_opt(
        "free-page-reporting",
        m.free_page_reporting.as_deref().map(|a| a == "on"),
    );
    p.set_opt("guest-stats-polling-interval", m.stats_period);
    addr::pci(cmd, &m.info, &what, &mut p)?;
    cmd.device(p);
    Ok(())
}

pub(super) fn rngs(def: &DomainDef, cmd: &mut Cmd) -> Result<(), ArgvError> {
    for (i, r) in def.devices.rngs.iter().enumerate() {
        let driver = match r.model.as_str() {
            "virtio" => "virtio-rng-pci",
            "virtio-transitional" => "virtio-rng-pci-transitional",
            "virtio-non-transitional" => "virtio-rng-pci-non-transitional",
            other => return Err(ArgvError::unsupported(format!("<rng model='{other}'>"))),
        };
        let obj = format!("objrng{i}");
        let backend = r.backend.as_ref();
        match backend.map(|b| b.model.as_str()).unwrap_or("random") {
            "random" => {
                let path = backend
                    .and_then(|b| b.path.as_deref())
                    .unwrap_or("/dev/urandom");
                cmd.object(
                    Props::new()
                        .with("qom-type", "rng-random")
                        .with("id", obj.as_str())
                        .with("filename", path),
                );
            }
            "builtin" => cmd.object(
                Props::new()
                    .with("qom-type", "rng-builtin")
                    .with("id", obj.as_str()),
            ),
            other => {
                return Err(ArgvError::unsupported(format!(
                    "<rng><backend model='{other}'>"
                )));
            }
        }
        let mut p = Props::driver(driver);
        virtio::options(&mut p, r.driver.as_ref());
        p.set("rng", obj.as_str());
        p.set("id", format!("rng{i}"));
        // At most `bytes` per `period` ms (libvirt's default period: a second).
        if let Some(rate) = r.rate.as_ref().filter(|r| r.bytes > 0) {
            p.set("max-bytes", rate.bytes);
            p.set("period", rate.period.unwrap_or(1000));
        }
        addr::pci(cmd, &r.info, "<rng>", &mut p)?;
        cmd.device(p);
    }
    Ok(())
}
