//! Where a running domain's console is: the socket QEMU listens on and the log it writes.
//!
//! The path convention is shared with the command-line builder (`driver/qemu/argv/
//! chardevs.rs` calls [`socket_path`] and [`log_path`]), so the two cannot drift apart:
//! a console device with alias `ALIAS` whose socket virtplane chooses lives at
//! `<vm run dir>/ALIAS.sock`, and QEMU logs its output to `<vm run dir>/ALIAS.log`.
//! Aliases are QEMU's device ids: `serial<port>` for a serial port (and for the `<console>`
//! that shows it), `console<index>` for a virtio console (`index` counts `<console>`
//! elements).

use std::path::{Path, PathBuf};

use crate::error::{DomainError, Result};
use crate::xml::{CharDevice, DomainDef};

/// Everything the console hub needs to open one console of one running domain. Drivers build
/// it (see `DomainDriver::console_endpoint`); the hub knows nothing of drivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleEndpoint {
    /// The domain's name, for messages and to key the hub.
    pub domain: String,
    /// The device alias, e.g. `serial0`.
    pub device: String,
    /// The unix socket QEMU listens on for this console (`server=on,wait=off`).
    pub socket: PathBuf,
    /// QEMU's log of the console output (`logfile=`), whose tail seeds the scrollback when
    /// the hub starts, e.g. after a service restart. `None` when the device has none (a unix
    /// socket whose path the user chose).
    pub log: Option<PathBuf>,
    /// Identifies one run of the domain (e.g. QEMU's pid and start time). A hub opened for
    /// another run is stale and gets replaced, even before it has seen its socket close.
    pub run_token: String,
}

impl ConsoleEndpoint {
    /// Finds console `device` (default: the domain's first console, as libvirt picks it) in
    /// the live definition of a running domain whose run dir is `run_dir`.
    pub fn locate(
        domain: &str,
        def: &DomainDef,
        run_dir: &Path,
        device: Option<&str>,
        run_token: impl Into<String>,
    ) -> Result<Self> {
        let consoles = console_devices(def);
        let found = match device {
            None => consoles.first(),
            Some(wanted) => consoles.iter().find(|c| c.alias == wanted),
        };
        let Some(found) = found else {
            return Err(match device {
                None => DomainError::OperationInvalid(format!(
                    "domain '{domain}' has no console: it has no <serial> or <console> device"
                )),
                Some(wanted) => {
                    let known: Vec<&str> = consoles.iter().map(|c| c.alias.as_str()).collect();
                    DomainError::InvalidArg(format!(
                        "domain '{domain}' has no console device '{wanted}' (its consoles: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ))
                }
            });
        };
        let (socket, log) = files(domain, found, run_dir)?;
        Ok(Self {
            domain: domain.to_string(),
            device: found.alias.clone(),
            socket,
            log,
            run_token: run_token.into(),
        })
    }
}

/// `<vm run dir>/<alias>.sock`: the socket of a console whose path virtplane chooses.
pub fn socket_path(run_dir: &Path, alias: &str) -> PathBuf {
    run_dir.join(format!("{alias}.sock"))
}

/// `<vm run dir>/<alias>.log`: QEMU's log of that console's output.
pub fn log_path(run_dir: &Path, alias: &str) -> PathBuf {
    run_dir.join(format!("{alias}.log"))
}

/// One openable console: its alias and the XML device that says how it is backed.
struct Console<'a> {
    alias: String,
    dev: &'a CharDevice,
}

/// The domain's consoles in libvirt's default order (`<console>` elements first, then serial
/// ports not shown by one), each alias once.
fn console_devices(def: &DomainDef) -> Vec<Console<'_>> {
    let d = &def.devices;
    let serial_port =
        |s: &CharDevice, i: usize| s.target.as_ref().and_then(|t| t.port).unwrap_or(i as u32);
    let serials: Vec<Console<'_>> = d
        .serials
        .iter()
        .enumerate()
        .map(|(i, s)| Console {
            alias: format!("serial{}", serial_port(s, i)),
            dev: s,
        })
        .collect();
    let mut out: Vec<Console<'_>> = Vec::new();
    for (j, c) in d.consoles.iter().enumerate() {
        let target = c.target.as_ref();
        let console = match target.and_then(|t| t.target_type.as_deref()) {
            None | Some("serial") => {
                let alias = format!("serial{}", target.and_then(|t| t.port).unwrap_or(0));
                // The usual `<console>` is a serial port seen from another angle: the serial
                // port's backend is the one QEMU runs.
                let dev = serials
                    .iter()
                    .find(|s| s.alias == alias)
                    .map_or(c, |s| s.dev);
                Console { alias, dev }
            }
            Some("virtio") => Console {
                alias: format!("console{j}"),
                dev: c,
            },
            // Other targets (sclp, xen, ...) never reach QEMU: the argv builder refuses them.
            Some(_) => continue,
        };
        if !out.iter().any(|o| o.alias == console.alias) {
            out.push(console);
        }
    }
    for s in serials {
        if !out.iter().any(|o| o.alias == s.alias) {
            out.push(s);
        }
    }
    out
}

/// The socket and log of one console, by how the XML backs it.
fn files(
    domain: &str,
    console: &Console<'_>,
    run_dir: &Path,
) -> Result<(PathBuf, Option<PathBuf>)> {
    let alias = console.alias.as_str();
    let owned = || (socket_path(run_dir, alias), Some(log_path(run_dir, alias)));
    let source = console.dev.sources.first();
    match console.dev.dev_type.as_str() {
        // virtplane proxies every pty console through a socket of its own (chardevs.rs).
        "pty" => Ok(owned()),
        "unix" => match (
            source.and_then(|s| s.path.as_deref()),
            source.and_then(|s| s.mode.as_deref()),
        ) {
            (_, Some("connect")) => Err(DomainError::OperationInvalid(format!(
                "console '{alias}' of domain '{domain}' is a unix socket QEMU connects out to \
                 (mode='connect'); only consoles QEMU listens on can be opened"
            ))),
            (Some(path), _) => Ok((PathBuf::from(path), None)),
            (None, _) => Ok(owned()),
        },
        other => Err(DomainError::OperationInvalid(format!(
            "console '{alias}' of domain '{domain}' is of type '{other}'; only pty and unix \
             consoles can be opened"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_domain;

    fn def(devices: &str) -> DomainDef {
        parse_domain(&format!(
            "<domain type='qemu'><name>web</name>\
             <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1806</uuid>\
             <memory unit='MiB'>128</memory>\
             <os><type arch='x86_64' machine='pc'>hvm</type></os>\
             <devices>{devices}</devices></domain>"
        ))
        .unwrap()
    }

    fn locate(devices: &str, device: Option<&str>) -> Result<ConsoleEndpoint> {
        ConsoleEndpoint::locate("web", &def(devices), Path::new("/run/vm"), device, "7")
    }

    #[test]
    fn the_usual_pty_console_is_the_proxied_first_serial_port() {
        let e = locate(
            "<serial type='pty'><target port='0'/></serial>\
             <console type='pty'><target type='serial' port='0'/></console>",
            None,
        )
        .unwrap();
        assert_eq!(
            e,
            ConsoleEndpoint {
                domain: "web".into(),
                device: "serial0".into(),
                socket: "/run/vm/serial0.sock".into(),
                log: Some("/run/vm/serial0.log".into()),
                run_token: "7".into(),
            }
        );
    }

    #[test]
    fn devices_by_alias_and_the_default_order() {
        let devices = "<serial type='pty'><target port='0'/></serial>\
             <serial type='unix'><source mode='bind'/><target port='1'/></serial>\
             <serial type='unix'><source mode='bind' path='/srv/s2.sock'/><target port='2'/></serial>\
             <console type='unix'><target type='virtio' port='0'/></console>";
        // A virtio <console> comes first, as libvirt's default is consoles[0].
        let first = locate(devices, None).unwrap();
        assert_eq!(first.device, "console0");
        assert_eq!(first.socket, Path::new("/run/vm/console0.sock"));
        let one = locate(devices, Some("serial1")).unwrap();
        assert_eq!(one.socket, Path::new("/run/vm/serial1.sock"));
        assert_eq!(one.log.as_deref(), Some(Path::new("/run/vm/serial1.log")));
        let user = locate(devices, Some("serial2")).unwrap();
        assert_eq!(user.socket, Path::new("/srv/s2.sock"));
        assert_eq!(user.log, None, "no log for a socket the user placed");
        let err = locate(devices, Some("serial9")).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid argument: domain 'web' has no console device 'serial9' \
             (its consoles: console0, serial0, serial1, serial2)"
        );
    }

    #[test]
    fn a_console_without_a_serial_port_is_its_own_device() {
        let e = locate("<console type='pty'/>", None).unwrap();
        assert_eq!(e.device, "serial0");
        assert_eq!(e.socket, Path::new("/run/vm/serial0.sock"));
    }

    #[test]
    fn consoles_that_cannot_be_opened_say_why() {
        let none = locate("", None).unwrap_err().to_string();
        assert_eq!(
            none,
            "domain 'web' has no console: it has no <serial> or <console> device"
        );
        let file = locate("<serial type='file'><source path='/tmp/x'/></serial>", None)
            .unwrap_err()
            .to_string();
        assert!(file.contains("is of type 'file'"), "{file}");
        let connect = locate(
            "<serial type='unix'><source mode='connect' path='/tmp/x'/></serial>",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(connect.contains("mode='connect'"), "{connect}");
    }
}
