//! `<interface>`: network cards.

use super::common::{
    DeviceInfo, VirtioOptions, insert_before_address, parse_boot_order, push_boot_order, push_leaf,
};
use crate::xml::error::XmlError;
use crate::xml::extra::{Extra, FmtCtx};
use crate::xml::scope::Scope;
use crate::xml::tree::Element;
use crate::xml::values::{ON_OFF, YES_NO, mac, uint, uuid};

const NET_TYPES: &[&str] = &[
    "user",
    "ethernet",
    "vhostuser",
    "server",
    "client",
    "mcast",
    "network",
    "bridge",
    "internal",
    "direct",
    "hostdev",
    "udp",
    "vdpa",
    "null",
    "vds",
];

/// `<interface type=…>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interface {
    pub iface_type: String,
    /// `<mac address=…>`, canonical lowercase.
    pub mac: Option<String>,
    pub source: Option<InterfaceSource>,
    /// `<target dev=…>`: the host-side device name.
    pub target_dev: Option<String>,
    /// `<model type=…>`: virtio, e1000, ...
    pub model: Option<String>,
    pub driver: Option<InterfaceDriver>,
    pub rom: Option<Rom>,
    pub boot_order: Option<u32>,
    pub info: DeviceInfo,
    pub extra: Extra,
}

/// `<source network=…|bridge=…|dev=… mode=…>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceSource {
    pub network: Option<String>,
    /// The network service's port for a `network` interface (live definitions only).
    pub portid: Option<String>,
    /// The bridge of a `bridge` interface, or, in a live definition, the bridge of the
    /// network a `network` interface joined.
    pub bridge: Option<String>,
    pub dev: Option<String>,
    pub mode: Option<String>,
    pub extra: Extra,
}

/// `<rom bar=… file=… enabled=…/>`: the option ROM of a PCI NIC.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rom {
    /// on or off: whether the ROM is visible in the device's BAR.
    pub bar: Option<String>,
    pub file: Option<String>,
    /// yes or no: `no` loads no ROM at all.
    pub enabled: Option<String>,
    pub extra: Extra,
}

/// `<driver name=… txmode=… queues=… …/>`: how a virtio NIC is implemented and tuned.
/// Host and guest offload switches (`<host>`, `<guest>`) are not modelled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceDriver {
    /// qemu or vhost (the kernel's vhost-net); vfio, kvm or xen for a hostdev interface.
    pub name: Option<String>,
    /// iothread or timer.
    pub txmode: Option<String>,
    pub ioeventfd: Option<String>,
    pub event_idx: Option<String>,
    pub queues: Option<u32>,
    pub rx_queue_size: Option<u32>,
    pub tx_queue_size: Option<u32>,
    pub rss: Option<String>,
    pub rss_hash_report: Option<String>,
    pub virtio: VirtioOptions,
    pub extra: Extra,
}

impl Interface {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let iface_type = s
            .attr_enum("type", NET_TYPES)?
            .ok_or_else(|| XmlError::missing(s.attr_loc("type")))?;
        let mac = match s.child("mac")? {
            None => None,
            Some(mut m) => {
                let address = m
                    .attr_parse("address", mac)?
                    .ok_or_else(|| XmlError::missing(m.attr_loc("address")))?;
                s.keep("mac", m.finish());
                Some(address)
            }
        };
        let source = match s.child("source")? {
            None => None,
            Some(mut src) => Some(InterfaceSource {
                network: src.attr_string("network"),
                portid: src.attr_parse("portid", uuid)?,
                bridge: src.attr_string("bridge"),
                dev: src.attr_string("dev"),
                mode: src.attr_string("mode"),
                extra: src.finish(),
            }),
        };
        let target_dev = attr_leaf(&mut s, "target", "dev")?;
        let model = attr_leaf(&mut s, "model", "type")?;
        let driver = s.child("driver")?.map(parse_driver).transpose()?;
        let rom = match s.child("rom")? {
            None => None,
            Some(mut r) => Some(Rom {
                bar: r.attr_enum("bar", ON_OFF)?,
                file: r.attr_string("file"),
                enabled: r.attr_enum("enabled", YES_NO)?,
                extra: r.finish(),
            }),
        };
        let boot_order = parse_boot_order(&mut s)?;
        let info = DeviceInfo::parse(&mut s)?;
        Ok(Interface {
            iface_type,
            mac,
            source,
            target_dev,
            model,
            driver,
            rom,
            boot_order,
            info,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("interface");
        el.set("type", self.iface_type.as_str());
        push_leaf(
            &mut el,
            "mac",
            &[("address", self.mac.as_deref())],
            &self.extra,
            ctx,
        );
        if let Some(src) = &self.source {
            let mut se = Element::new("source");
            se.set_opt("network", src.network.as_deref());
            se.set_opt("portid", src.portid.as_deref());
            se.set_opt("bridge", src.bridge.as_deref());
            se.set_opt("dev", src.dev.as_deref());
            se.set_opt("mode", src.mode.as_deref());
            src.extra.apply(&mut se, ctx);
            el.push(se);
        }
        push_leaf(
            &mut el,
            "target",
            &[("dev", self.target_dev.as_deref())],
            &self.extra,
            ctx,
        );
        push_leaf(
            &mut el,
            "model",
            &[("type", self.model.as_deref())],
            &self.extra,
            ctx,
        );
        if let Some(d) = &self.driver {
            el.push(driver_element(d, ctx));
        }
        push_boot_order(&mut el, self.boot_order, &self.extra, ctx);
        self.info.push_to(&mut el, &self.extra, ctx);
        if let Some(r) = &self.rom {
            let mut re = Element::new("rom");
            re.set_opt("bar", r.bar.as_deref());
            re.set_opt("file", r.file.as_deref());
            re.set_opt("enabled", r.enabled.as_deref());
            r.extra.apply(&mut re, ctx);
            insert_before_address(&mut el, re);
        }
        self.extra.apply(&mut el, ctx);
        el
    }
}

fn parse_driver(mut d: Scope<'_>) -> Result<InterfaceDriver, XmlError> {
    Ok(InterfaceDriver {
        // qemu or vhost; a hostdev interface names its PCI backend here (vfio, kvm, xen).
        name: d.attr_string("name"),
        txmode: d.attr_enum("txmode", &["iothread", "timer"])?,
        ioeventfd: d.attr_enum("ioeventfd", ON_OFF)?,
        event_idx: d.attr_enum("event_idx", ON_OFF)?,
        queues: d.attr_parse("queues", uint::<u32>)?,
        rx_queue_size: d.attr_parse("rx_queue_size", uint::<u32>)?,
        tx_queue_size: d.attr_parse("tx_queue_size", uint::<u32>)?,
        rss: d.attr_enum("rss", ON_OFF)?,
        rss_hash_report: d.attr_enum("rss_hash_report", ON_OFF)?,
        virtio: VirtioOptions::parse(&mut d)?,
        extra: d.finish(),
    })
}

fn driver_element(d: &InterfaceDriver, ctx: &mut FmtCtx) -> Element {
    let mut de = Element::new("driver");
    de.set_opt("name", d.name.as_deref());
    de.set_opt("txmode", d.txmode.as_deref());
    de.set_opt("ioeventfd", d.ioeventfd.as_deref());
    de.set_opt("event_idx", d.event_idx.as_deref());
    de.set_opt("queues", d.queues);
    de.set_opt("rx_queue_size", d.rx_queue_size);
    de.set_opt("tx_queue_size", d.tx_queue_size);
    de.set_opt("rss", d.rss.as_deref());
    de.set_opt("rss_hash_report", d.rss_hash_report.as_deref());
    d.virtio.set_on(&mut de);
    d.extra.apply(&mut de, ctx);
    de
}

/// Reads one attribute of a single child such as `<model type=…/>`, keeping the rest.
pub(crate) fn attr_leaf(
    s: &mut Scope<'_>,
    name: &str,
    attr: &str,
) -> Result<Option<String>, XmlError> {
    let Some(mut c) = s.child(name)? else {
        return Ok(None);
    };
    let value = c.req_attr(attr)?.to_string();
    s.keep(name, c.finish());
    Ok(Some(value))
}
