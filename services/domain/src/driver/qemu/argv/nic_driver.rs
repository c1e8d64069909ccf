//! An interface's `<driver>`: virtio-net's tuning, spelled as libvirt passes it (right after
//! the device's driver), and the backend choices it implies.

use super::cmd::Props;
use super::{ArgvError, virtio};
use crate::xml::Interface;

/// Adds the `<driver>` settings of `nic` to its `-device` (`virtio`: whether the model is
/// virtio-net), or refuses what cannot be honoured.
pub(super) fn frontend(
    nic: &Interface,
    virtio_model: bool,
    what: &str,
    p: &mut Props,
) -> Result<(), ArgvError> {
    let Some(d) = &nic.driver else {
        return Ok(());
    };
    let tap = matches!(nic.iface_type.as_str(), "bridge" | "ethernet");
    match d.name.as_deref() {
        None | Some("qemu") => {}
        // vhost-net accelerates tap backends only; libvirt ignores it on user networking.
        Some("vhost") if !tap => {}
        Some("vhost") => {
            return Err(ArgvError::unsupported(format!(
                "<driver name='vhost'> on {what} (vhost-net)"
            )));
        }
        Some(other) => {
            return Err(ArgvError::unsupported(format!(
                "<driver name='{other}'> on {what}"
            )));
        }
    }
    let tuned = d.txmode.is_some()
        || d.ioeventfd.is_some()
        || d.event_idx.is_some()
        || d.queues.is_some_and(|q| q > 1)
        || d.rx_queue_size.is_some()
        || d.tx_queue_size.is_some()
        || d.rss.is_some()
        || d.rss_hash_report.is_some()
        || d.virtio.items().iter().any(|(_, v)| v.is_some());
    if !virtio_model {
        if tuned {
            return Err(ArgvError::invalid(
                format!("<driver> on {what}"),
                "these settings are for the virtio model only",
            ));
        }
        return Ok(());
    }
    if let Some(q) = d.queues.filter(|&q| q > 1) {
        return Err(if tap {
            ArgvError::unsupported(format!(
                "<driver queues='{q}'> on {what} (a multiqueue tap device)"
            ))
        } else {
            ArgvError::invalid(
                format!("<driver queues='{q}'> on {what}"),
                "only tap-based interfaces have several queues",
            )
        });
    }
    for (name, size) in [
        ("rx_queue_size", d.rx_queue_size),
        ("tx_queue_size", d.tx_queue_size),
    ] {
        if let Some(n) = size
            && !(n.is_power_of_two() && (256..=1024).contains(&n))
        {
            return Err(ArgvError::invalid(
                format!("<driver {name}='{n}'> on {what}"),
                "must be a power of two from 256 to 1024",
            ));
        }
    }
    let on = |v: &Option<String>| v.as_deref().map(|v| v == "on");
    virtio::options(p, Some(&d.virtio));
    p.set_opt(
        "tx",
        d.txmode
            .as_deref()
            .map(|m| if m == "iothread" { "bh" } else { m }),
    );
    p.set_opt("ioeventfd", on(&d.ioeventfd));
    p.set_opt("event_idx", on(&d.event_idx));
    p.set_opt("rx_queue_size", d.rx_queue_size);
    p.set_opt("tx_queue_size", d.tx_queue_size);
    p.set_opt("rss", on(&d.rss));
    p.set_opt("hash", on(&d.rss_hash_report));
    Ok(())
}

/// `<rom>`: the NIC's option ROM (the firmware's network boot code), after the device's
/// address as libvirt passes it. `enabled='no'` loads none (an empty `romfile`).
pub(super) fn rom(nic: &Interface, what: &str, p: &mut Props) -> Result<(), ArgvError> {
    let Some(r) = &nic.rom else {
        return Ok(());
    };
    if r.enabled.as_deref() == Some("no") {
        if r.bar.is_some() || r.file.is_some() {
            return Err(ArgvError::invalid(
                format!("<rom> on {what}"),
                "a disabled ROM has no bar or file",
            ));
        }
        p.set("romfile", "");
        return Ok(());
    }
    p.set_opt("rombar", r.bar.as_deref().map(|b| u32::from(b == "on")));
    p.set_opt("romfile", r.file.as_deref());
    Ok(())
}
