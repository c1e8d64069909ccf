//! Network interfaces: attach-interface and detach-interface, with virsh's options and
//! messages.
//!
//! As virsh does, `attach-interface` writes the `<interface>` element from its options and
//! `detach-interface` cuts the interface's element out of the domain's own XML (found by
//! type, and by MAC when several have that type); both then make the AttachDevice and
//! DetachDevice calls `attach-device`/`detach-device` make, so they need the same
//! permissions. `detach-interface` changes the config with the element of the persistent XML
//! and the running domain with that of the live XML, in two calls, as virsh does.
//!
//! TYPE and SOURCE may be given in place (`attach-interface web bridge br0`) or as
//! `--type`/`--source`, as virsh's data options. virsh attaches `network`, `bridge`,
//! `direct`, `hostdev` and `vhostuser` interfaces; here `network`, `bridge`, and also
//! `ethernet` (a tap joining no bridge) and `user` (QEMU's own NAT), which take no source.

use std::fmt::Write as _;

use clap::Args;
use quick_xml::Reader;
use quick_xml::escape::escape;
use quick_xml::events::{BytesStart, Event};
use virtplane_proto::v1 as pb;

use super::device::{DeviceImpactArgs, attach, detach, flags_for};
use super::{Ctx, domain_ref, report_action};
use crate::error::Error;

/// The interface types attach-interface writes.
const TYPES: &[&str] = &["bridge", "network", "ethernet", "user"];

/// `attach-interface DOMAIN [TYPE] [SOURCE] [options]`.
#[derive(Debug, Args)]
pub struct AttachInterfaceArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// TYPE and SOURCE in place of --type and --source
    #[arg(value_name = "TYPE|SOURCE", num_args = 0..=2)]
    pub rest: Vec<String>,
    /// Interface type: bridge, network, ethernet or user
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// Source: the bridge (bridge) or the virtual network (network)
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// Host-side device name (the tap)
    #[arg(long, value_name = "DEV")]
    pub target: Option<String>,
    /// MAC address (default: one is generated)
    #[arg(long)]
    pub mac: Option<String>,
    /// Model of the card (virtio, e1000, e1000e, rtl8139)
    #[arg(long)]
    pub model: Option<String>,
    /// Print the interface XML rather than attach it
    #[arg(long)]
    pub print_xml: bool,
    #[command(flatten)]
    pub flags: DeviceImpactArgs,
}

/// `detach-interface DOMAIN [TYPE] [--mac MAC] [flags]`.
#[derive(Debug, Args)]
pub struct DetachInterfaceArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// TYPE in place of --type
    #[arg(value_name = "TYPE", conflicts_with = "kind")]
    pub type_in_place: Option<String>,
    /// Interface type
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// MAC address of the interface (needed when several have the type)
    #[arg(long)]
    pub mac: Option<String>,
    #[command(flatten)]
    pub flags: DeviceImpactArgs,
}

/// The type and source attach-interface was given, in place or as options (virsh's data
/// options fill in order whatever was not given by name).
fn type_and_source(a: &AttachInterfaceArgs) -> Result<(String, Option<String>), Error> {
    let mut rest = a.rest.iter().cloned();
    let kind =
        a.kind.clone().or_else(|| rest.next()).ok_or_else(|| {
            Error::Other("command 'attach-interface' requires <type> option".into())
        })?;
    let source = a.source.clone().or_else(|| rest.next());
    if let Some(extra) = rest.next() {
        return Err(Error::Other(format!("unexpected data '{extra}'")));
    }
    Ok((kind, source))
}

/// The `<interface>` element attach-interface writes for these options.
pub fn interface_xml(a: &AttachInterfaceArgs) -> Result<String, Error> {
    let (kind, source) = type_and_source(a)?;
    if !TYPES.contains(&kind.as_str()) {
        return Err(Error::Other(format!(
            "No support for {kind} in command 'attach-interface'"
        )));
    }
    let mut xml = format!("<interface type='{kind}'>\n");
    match (kind.as_str(), source) {
        ("bridge" | "network", Some(source)) => {
            let _ = writeln!(xml, "  <source {kind}='{}'/>", escape(source.as_str()));
        }
        ("bridge" | "network", None) => {
            return Err(Error::Other(
                "command 'attach-interface' requires <source> option".into(),
            ));
        }
        (_, Some(_)) => {
            return Err(Error::Other(format!(
                "an interface of type '{kind}' has no source; leave out <source>/--source"
            )));
        }
        (_, None) => {}
    }
    let mut leaf = |element: &str, attr: &str, value: &Option<String>| {
        if let Some(value) = value {
            let _ = writeln!(xml, "  <{element} {attr}='{}'/>", escape(value.as_str()));
        }
    };
    leaf("target", "dev", &a.target);
    leaf("mac", "address", &a.mac);
    leaf("model", "type", &a.model);
    xml.push_str("</interface>\n");
    Ok(xml)
}

/// One `<interface>` of a domain XML: where it is, its type and MAC.
struct Found {
    start: usize,
    end: usize,
    kind: Option<String>,
    mac: Option<String>,
}

/// The `<interface>` element of `domain_xml` that detach-interface means, as it is written
/// there (virsh's `virshDomainDetachInterface`, with its messages).
pub fn find_interface(domain_xml: &str, kind: &str, mac: Option<&str>) -> Result<String, Error> {
    let all = interfaces(domain_xml)?;
    let of_type: Vec<&Found> = all
        .iter()
        .filter(|f| f.kind.as_deref() == Some(kind))
        .collect();
    let found = match (of_type.as_slice(), mac) {
        ([], _) => {
            return Err(Error::Other(format!(
                "No interface found whose type is {kind}"
            )));
        }
        ([one], None) => *one,
        (several, None) => {
            return Err(Error::Other(format!(
                "Domain has {} interfaces. Please specify which one to detach using --mac",
                several.len()
            )));
        }
        (candidates, Some(mac)) => {
            let wanted = mac_bytes(mac);
            let matching: Vec<&&Found> = candidates
                .iter()
                .filter(|f| wanted.is_some() && f.mac.as_deref().and_then(mac_bytes) == wanted)
                .collect();
            match matching.as_slice() {
                [] => {
                    return Err(Error::Other(format!(
                        "No interface with MAC address {mac} was found"
                    )));
                }
                [one] => **one,
                _ => {
                    return Err(Error::Other(format!(
                        "Domain has multiple interfaces matching MAC address {mac}. You must \
                         use detach-device and specify the device pci address to remove it."
                    )));
                }
            }
        }
    };
    domain_xml
        .get(found.start..found.end)
        .map(str::to_owned)
        .ok_or_else(|| Error::Other("cannot cut the interface out of the domain XML".into()))
}

/// Every `<interface>` directly under `<domain><devices>`.
fn interfaces(domain_xml: &str) -> Result<Vec<Found>, Error> {
    let mut reader = Reader::from_str(domain_xml);
    let mut path: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut current: Option<Found> = None;
    loop {
        let position = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader.read_event().map_err(|e| {
            Error::Other(format!("cannot read the domain XML from the server: {e}"))
        })?;
        let end = || usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        match event {
            Event::Start(e) => {
                let name = local_name(&e);
                if name == "interface" && path == ["domain", "devices"] {
                    current = Some(Found {
                        start: position,
                        end: position,
                        kind: attr(&e, "type"),
                        mac: None,
                    });
                } else if name == "mac"
                    && path.len() == 3
                    && let Some(found) = current.as_mut()
                {
                    found.mac = attr(&e, "address");
                }
                path.push(name);
            }
            Event::Empty(e) => {
                let name = local_name(&e);
                if name == "interface" && path == ["domain", "devices"] {
                    out.push(Found {
                        start: position,
                        end: end(),
                        kind: attr(&e, "type"),
                        mac: None,
                    });
                } else if name == "mac"
                    && path.len() == 3
                    && let Some(found) = current.as_mut()
                {
                    found.mac = attr(&e, "address");
                }
            }
            Event::End(_) => {
                path.pop();
                if path == ["domain", "devices"]
                    && let Some(mut found) = current.take()
                {
                    found.end = end();
                    out.push(found);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

fn local_name(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name.as_bytes())
        .and_then(|a| a.unescape_value().ok())
        .map(|v| v.into_owned())
}

/// A MAC address's bytes, whatever the case and leading zeros (virsh's virMacAddrCompare).
fn mac_bytes(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut out {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

pub async fn attach_interface(ctx: &mut Ctx, a: AttachInterfaceArgs) -> Result<(), Error> {
    let xml = interface_xml(&a)?;
    if a.print_xml {
        return ctx.out.raw(&xml);
    }
    let flags = flags_for(ctx, &a.domain, &a.flags).await?;
    attach(ctx, &a.domain, xml, flags).await?;
    report_action(
        ctx,
        &a.domain,
        "interface_attached",
        "Interface attached successfully".into(),
    )
}

pub async fn detach_interface(ctx: &mut Ctx, a: DetachInterfaceArgs) -> Result<(), Error> {
    let kind = a
        .kind
        .clone()
        .or_else(|| a.type_in_place.clone())
        .ok_or_else(|| Error::Other("command 'detach-interface' requires <type> option".into()))?;
    let flags = flags_for(ctx, &a.domain, &a.flags).await?;
    if flags.config {
        let xml = domain_xml(ctx, &a.domain, true).await?;
        let element = find_interface(&xml, &kind, a.mac.as_deref())?;
        let config_only = pb::ModifyFlags {
            live: false,
            config: true,
        };
        detach(ctx, &a.domain, element, config_only).await?;
    }
    if !flags.config || flags.live {
        let xml = domain_xml(ctx, &a.domain, false).await?;
        let element = find_interface(&xml, &kind, a.mac.as_deref())?;
        let live_or_current = pb::ModifyFlags {
            live: flags.live,
            config: false,
        };
        detach(ctx, &a.domain, element, live_or_current).await?;
    }
    report_action(
        ctx,
        &a.domain,
        "interface_detached",
        "Interface detached successfully".into(),
    )
}

async fn domain_xml(ctx: &mut Ctx, domain: &str, inactive: bool) -> Result<String, Error> {
    let mut client = ctx.conn.domains();
    let req = pb::GetDomainXmlRequest {
        domain: domain_ref(domain),
        inactive,
        secure: false,
    };
    Ok(ctx
        .conn
        .unary(client.get_xml(ctx.conn.request(req)))
        .await?
        .xml)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn cmd(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("virtctl").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    fn attach_args(args: &[&str]) -> AttachInterfaceArgs {
        match cmd(args).unwrap() {
            Command::AttachInterface(a) => *a,
            other => panic!("{other:?}"),
        }
    }

    fn xml_of(args: &[&str]) -> Result<String, String> {
        interface_xml(&attach_args(args)).map_err(|e| e.to_string())
    }

    #[test]
    fn attach_interface_writes_virshs_xml() {
        let flags = xml_of(&[
            "attach-interface",
            "web",
            "--type",
            "bridge",
            "--source",
            "br0",
            "--target",
            "tap0",
            "--mac",
            "52:54:00:aa:bb:cc",
            "--model",
            "virtio",
        ])
        .unwrap();
        assert_eq!(
            flags,
            "<interface type='bridge'>\n  <source bridge='br0'/>\n  <target dev='tap0'/>\n  \
             <mac address='52:54:00:aa:bb:cc'/>\n  <model type='virtio'/>\n</interface>\n"
        );
        // In place, as virsh's data options.
        assert_eq!(
            xml_of(&["attach-interface", "web", "network", "default"]).unwrap(),
            "<interface type='network'>\n  <source network='default'/>\n</interface>\n"
        );
        assert_eq!(
            xml_of(&["attach-interface", "web", "--type", "bridge", "br'1"]).unwrap(),
            "<interface type='bridge'>\n  <source bridge='br&apos;1'/>\n</interface>\n"
        );
        assert_eq!(
            xml_of(&["attach-interface", "web", "--type", "user", "--live"]).unwrap(),
            "<interface type='user'>\n</interface>\n"
        );
    }

    #[test]
    fn attach_interface_refuses_as_virsh() {
        assert_eq!(
            xml_of(&[
                "attach-interface",
                "web",
                "--type",
                "direct",
                "--source",
                "eth0"
            ])
            .unwrap_err(),
            "No support for direct in command 'attach-interface'"
        );
        assert_eq!(
            xml_of(&["attach-interface", "web", "--type", "bridge"]).unwrap_err(),
            "command 'attach-interface' requires <source> option"
        );
        assert_eq!(
            xml_of(&["attach-interface", "web"]).unwrap_err(),
            "command 'attach-interface' requires <type> option"
        );
        assert!(
            xml_of(&["attach-interface", "web", "user", "x"])
                .unwrap_err()
                .contains("has no source")
        );
        assert!(cmd(&["attach-interface", "web", "a", "b", "c"]).is_err());
        assert!(
            cmd(&[
                "attach-interface",
                "web",
                "user",
                "--persistent",
                "--current"
            ])
            .is_err()
        );
        let a = attach_args(&["attach-interface", "web", "user", "--persistent"]);
        assert!(a.flags.persistent);
    }

    const DOMAIN: &str = "<domain type='qemu' id='3'>
  <name>web</name>
  <devices>
    <disk type='file'><source file='/a'/><target dev='vda'/></disk>
    <interface type='bridge'>
      <mac address='52:54:00:00:00:01'/>
      <source bridge='br0'/>
      <target dev='vnet0'/>
      <alias name='net0'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:0a:00:02'/>
      <source bridge='br1'/>
    </interface>
    <interface type='user'/>
  </devices>
</domain>";

    #[test]
    fn detach_interface_finds_the_element_as_virsh() {
        assert_eq!(
            find_interface(DOMAIN, "user", None).unwrap(),
            "<interface type='user'/>"
        );
        let by_mac = find_interface(DOMAIN, "bridge", Some("52:54:00:A:0:2")).unwrap();
        assert!(by_mac.starts_with("<interface type='bridge'>"), "{by_mac}");
        assert!(by_mac.ends_with("</interface>"), "{by_mac}");
        assert!(by_mac.contains("br1"), "{by_mac}");
        let first = find_interface(DOMAIN, "bridge", Some("52:54:00:00:00:01")).unwrap();
        assert!(first.contains("<alias name='net0'/>"), "{first}");
        let err = |kind, mac| find_interface(DOMAIN, kind, mac).unwrap_err().to_string();
        assert_eq!(
            err("bridge", None),
            "Domain has 2 interfaces. Please specify which one to detach using --mac"
        );
        assert_eq!(
            err("network", None),
            "No interface found whose type is network"
        );
        assert_eq!(
            err("bridge", Some("52:54:00:00:00:09")),
            "No interface with MAC address 52:54:00:00:00:09 was found"
        );
        let twice = DOMAIN.replace("52:54:00:0a:00:02", "52:54:00:00:00:01");
        assert!(
            find_interface(&twice, "bridge", Some("52:54:00:00:00:01"))
                .unwrap_err()
                .to_string()
                .starts_with("Domain has multiple interfaces matching MAC address")
        );
    }

    #[test]
    fn detach_interface_parses() {
        match cmd(&[
            "detach-interface",
            "web",
            "bridge",
            "--mac",
            "52:54:00:00:00:01",
            "--config",
        ])
        .unwrap()
        {
            Command::DetachInterface(a) => {
                assert_eq!(a.type_in_place.as_deref(), Some("bridge"));
                assert!(a.flags.impact.config);
            }
            other => panic!("{other:?}"),
        }
        assert!(cmd(&["detach-interface", "web", "bridge", "--type", "user"]).is_err());
        match cmd(&["detach-interface", "web", "--type", "user", "--persistent"]).unwrap() {
            Command::DetachInterface(a) => assert_eq!(a.kind.as_deref(), Some("user")),
            other => panic!("{other:?}"),
        }
    }
}
