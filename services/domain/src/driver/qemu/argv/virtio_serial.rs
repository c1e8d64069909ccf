//! Ports of `<channel>`s on virtio-serial controllers: `<address type='virtio-serial'
//! controller=… bus=… port=…>` as written, the others numbered as libvirt does.

use super::ArgvError;
use super::addr::parse_num;
use super::controllers::indexes;
use crate::xml::{CharDevice, DomainDef};

/// A `virtserialport`'s `bus` and `nr`.
pub(super) struct Port {
    pub bus: String,
    pub nr: u32,
}

/// Ports of the virtio channels (the `virtio` ones in `channels`, in order). An address names
/// a declared controller (or the implied controller 0); a channel without one gets the lowest
/// free port from 1 up (port 0 is a console's) on the first controller's bus 0.
pub(super) fn ports(def: &DomainDef, channels: &[&CharDevice]) -> Result<Vec<Port>, ArgvError> {
    let declared: Vec<u32> = def
        .devices
        .controllers
        .iter()
        .zip(indexes(def))
        .filter(|(c, _)| c.controller_type == "virtio-serial")
        .map(|(_, i)| i)
        .collect();
    let first = declared.iter().copied().min().unwrap_or(0);
    let mut explicit: Vec<Option<(u32, u32, u32)>> = Vec::with_capacity(channels.len());
    for ch in channels {
        let Some(a) = &ch.info.address else {
            explicit.push(None);
            continue;
        };
        let what = "<channel><address>";
        if a.addr_type != "virtio-serial" {
            return Err(ArgvError::unsupported(format!(
                "<address type='{}'> on a virtio <channel>",
                a.addr_type
            )));
        }
        let num = |name: &str| match a.get(name) {
            None => Ok(None),
            Some(v) => parse_num(v)
                .map(Some)
                .ok_or_else(|| ArgvError::invalid(format!("{what} {name}='{v}'"), "a number")),
        };
        let controller = num("controller")?.unwrap_or(0);
        if !(declared.contains(&controller) || declared.is_empty() && controller == 0) {
            return Err(ArgvError::invalid(
                format!("{what} controller='{controller}'"),
                format!("there is no <controller type='virtio-serial' index='{controller}'>"),
            ));
        }
        let port = num("port")?.ok_or_else(|| ArgvError::invalid(what, "needs port=…"))?;
        explicit.push(Some((controller, num("bus")?.unwrap_or(0), port)));
    }
    let mut used: Vec<(u32, u32, u32)> = explicit.iter().flatten().copied().collect();
    let mut out = Vec::with_capacity(channels.len());
    for e in explicit {
        let (controller, bus, nr) = match e {
            Some(e) => e,
            None => {
                let nr = (1..)
                    .find(|&n| !used.contains(&(first, 0, n)))
                    .expect("a free port");
                used.push((first, 0, nr));
                (first, 0, nr)
            }
        };
        out.push(Port {
            bus: format!("virtio-serial{controller}.{bus}"),
            nr,
        });
    }
    Ok(out)
}
