//! Devices: attach-disk, detach-disk, attach-device, detach-device, with virsh's options and
//! messages.
//!
//! As virsh does, `attach-disk` writes the `<disk>` element here, from its options, and
//! `detach-disk` takes the disk's element from the domain's own XML (the live one, or the
//! persistent one with `--config` alone), found by target or source path; both then make the
//! same AttachDevice/DetachDevice calls as `attach-device`/`detach-device` with a file.
//!
//! Flags are virsh's: `--live`, `--config`, `--current` (the default: live if running, else
//! config) and `--persistent` (config, and live too when the domain is running).

use std::fmt::Write as _;

use clap::Args;
use quick_xml::Reader;
use quick_xml::escape::escape;
use quick_xml::events::{BytesStart, Event};
use virtplane_proto::v1 as pb;

use super::{Ctx, domain_ref, read_xml, report_action};
use crate::cli::ImpactArgs;
use crate::error::Error;

/// The flags every device command takes.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct DeviceImpactArgs {
    #[command(flatten)]
    pub impact: ImpactArgs,
    /// Change the persistent config, and the running domain too if it runs
    #[arg(long, conflicts_with = "current")]
    pub persistent: bool,
}

/// `attach-disk DOMAIN SOURCE TARGET [options]`.
#[derive(Debug, Args)]
pub struct AttachDiskArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// Source of the disk: an image file or a block device
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// Target device name in the guest (vdb, sdb, ...)
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// Bus of the disk (default: what the target name implies)
    #[arg(long, value_parser = ["virtio", "sata", "scsi", "usb", "ide", "fdc", "sd", "xen"])]
    pub targetbus: Option<String>,
    /// Driver of the disk (qemu)
    #[arg(long)]
    pub driver: Option<String>,
    /// Image format (raw, qcow2, ...)
    #[arg(long)]
    pub subdriver: Option<String>,
    /// Device type
    #[arg(long = "type", value_name = "TYPE", value_parser = ["disk", "cdrom", "floppy", "lun"])]
    pub device_type: Option<String>,
    /// Access mode
    #[arg(long, value_parser = ["readonly", "shareable"])]
    pub mode: Option<String>,
    /// Shareable (the same as --mode shareable)
    #[arg(long, conflicts_with = "mode")]
    pub shareable: bool,
    /// Cache mode
    #[arg(long, value_parser = ["default", "none", "writethrough", "writeback", "directsync", "unsafe"])]
    pub cache: Option<String>,
    /// I/O policy
    #[arg(long, value_parser = ["threads", "native", "io_uring"])]
    pub io: Option<String>,
    /// Serial number of the disk
    #[arg(long)]
    pub serial: Option<String>,
    /// Type of the source (default: block for a block device, else file)
    #[arg(long, value_parser = ["file", "block"])]
    pub sourcetype: Option<String>,
    /// Print the disk XML rather than attach it
    #[arg(long)]
    pub print_xml: bool,
    #[command(flatten)]
    pub flags: DeviceImpactArgs,
}

/// `detach-disk DOMAIN TARGET [flags]`.
#[derive(Debug, Args)]
pub struct DetachDiskArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// Target device (vdb) or source path of the disk
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// Print the disk XML rather than detach it
    #[arg(long)]
    pub print_xml: bool,
    #[command(flatten)]
    pub flags: DeviceImpactArgs,
}

/// `attach-device DOMAIN FILE [flags]` and `detach-device DOMAIN FILE [flags]`.
#[derive(Debug, Args)]
pub struct DeviceFileArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// File with one device element ('-' reads standard input)
    #[arg(value_name = "FILE")]
    pub file: String,
    #[command(flatten)]
    pub flags: DeviceImpactArgs,
}

/// The `<disk>` element virsh's attach-disk writes for these options. `block_device`: the
/// source is a block device on this host (virsh stats it to decide).
pub fn disk_xml(a: &AttachDiskArgs, block_device: bool) -> String {
    let source_type = match a.sourcetype.as_deref() {
        Some(t) => t,
        None if block_device && !matches!(a.driver.as_deref(), Some("file" | "tap")) => "block",
        None => "file",
    };
    let attr = |name: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| format!(" {name}='{}'", escape(v)))
            .unwrap_or_default()
    };
    let mut xml = format!(
        "<disk type='{source_type}'{}>\n",
        attr("device", &a.device_type)
    );
    let driver = [
        attr("name", &a.driver),
        attr("type", &a.subdriver),
        attr("cache", &a.cache),
        attr("io", &a.io),
    ]
    .concat();
    if !driver.is_empty() {
        let _ = writeln!(xml, "  <driver{driver}/>");
    }
    let source_attr = if source_type == "block" {
        "dev"
    } else {
        "file"
    };
    let _ = writeln!(
        xml,
        "  <source {source_attr}='{}'/>",
        escape(a.source.as_str())
    );
    let _ = writeln!(
        xml,
        "  <target dev='{}'{}/>",
        escape(a.target.as_str()),
        attr("bus", &a.targetbus)
    );
    let mode = a.mode.as_deref().or(a.shareable.then_some("shareable"));
    if let Some(mode) = mode {
        let _ = writeln!(xml, "  <{mode}/>");
    }
    if let Some(serial) = &a.serial {
        let _ = writeln!(xml, "  <serial>{}</serial>", escape(serial.as_str()));
    }
    xml.push_str("</disk>\n");
    xml
}

/// The `<disk>` element of `domain_xml` whose target dev or source (file, dev, dir, name) is
/// `wanted`, as it is written there (virsh's `virshFindDisk`).
pub fn find_disk(domain_xml: &str, wanted: &str) -> Result<String, Error> {
    let mut reader = Reader::from_str(domain_xml);
    let mut path: Vec<String> = Vec::new();
    // The disk being read: where it starts, and whether it matches so far.
    let mut current: Option<(usize, bool)> = None;
    loop {
        let position = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader.read_event().map_err(|e| {
            Error::Other(format!("cannot read the domain XML from the server: {e}"))
        })?;
        match event {
            Event::Start(e) => {
                let name = local_name(&e);
                if name == "disk" && path == ["domain", "devices"] {
                    current = Some((position, false));
                } else if let Some((_, matched)) = current.as_mut()
                    && path.len() == 3
                {
                    *matched |= names_disk(&e, &name, wanted);
                }
                path.push(name);
            }
            Event::Empty(e) => {
                let name = local_name(&e);
                if let Some((_, matched)) = current.as_mut()
                    && path.len() == 3
                {
                    *matched |= names_disk(&e, &name, wanted);
                }
            }
            Event::End(_) => {
                path.pop();
                if path == ["domain", "devices"]
                    && let Some((start, matched)) = current.take()
                    && matched
                {
                    let end = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
                    return domain_xml
                        .get(start..end)
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            Error::Other("cannot cut the disk out of the domain XML".into())
                        });
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Err(Error::Other(format!(
        "No disk found whose source path or target is {wanted}"
    )))
}

fn local_name(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

/// Whether a child of `<disk>` (`<target dev>`, `<source file|dev|dir|name>`) names `wanted`.
fn names_disk(e: &BytesStart<'_>, name: &str, wanted: &str) -> bool {
    let keys: &[&str] = match name {
        "target" => &["dev"],
        "source" => &["file", "dev", "dir", "name"],
        _ => return false,
    };
    e.attributes().flatten().any(|attr| {
        keys.contains(&String::from_utf8_lossy(attr.key.as_ref()).as_ref())
            && attr
                .unescape_value()
                .is_ok_and(|value| value.as_ref() == wanted)
    })
}

/// The request flags for virsh's options: `--persistent` is config, plus live when the
/// domain runs (`active`).
pub fn modify_flags(flags: &DeviceImpactArgs, active: bool) -> pb::ModifyFlags {
    let mut m = flags.impact.modify_flags();
    if flags.persistent {
        m.config = true;
        m.live |= active;
    }
    m
}

pub(super) async fn is_active(ctx: &mut Ctx, domain: &str) -> Result<bool, Error> {
    let mut client = ctx.conn.domains();
    let resp = ctx
        .conn
        .unary(client.lookup(ctx.conn.request(pb::LookupDomainRequest {
            domain: domain_ref(domain),
        })))
        .await?;
    let state = resp
        .domain
        .map_or(pb::DomainState::Shutoff as i32, |d| d.state);
    Ok(state != pb::DomainState::Shutoff as i32)
}

/// The flags to send; asks whether the domain runs only for `--persistent`.
pub(super) async fn flags_for(
    ctx: &mut Ctx,
    domain: &str,
    flags: &DeviceImpactArgs,
) -> Result<pb::ModifyFlags, Error> {
    let active = if flags.persistent {
        is_active(ctx, domain).await?
    } else {
        false
    };
    Ok(modify_flags(flags, active))
}

pub(super) async fn attach(
    ctx: &mut Ctx,
    domain: &str,
    xml: String,
    flags: pb::ModifyFlags,
) -> Result<(), Error> {
    let mut client = ctx.conn.domains();
    let req = pb::AttachDeviceRequest {
        domain: domain_ref(domain),
        xml,
        flags: Some(flags),
    };
    ctx.conn
        .unary(client.attach_device(ctx.conn.request(req)))
        .await?;
    Ok(())
}

pub(super) async fn detach(
    ctx: &mut Ctx,
    domain: &str,
    xml: String,
    flags: pb::ModifyFlags,
) -> Result<(), Error> {
    let mut client = ctx.conn.domains();
    let req = pb::DetachDeviceRequest {
        domain: domain_ref(domain),
        xml,
        flags: Some(flags),
    };
    ctx.conn
        .unary(client.detach_device(ctx.conn.request(req)))
        .await?;
    Ok(())
}

pub async fn attach_disk(ctx: &mut Ctx, a: AttachDiskArgs) -> Result<(), Error> {
    let block_device = {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(&a.source).is_ok_and(|m| m.file_type().is_block_device())
    };
    let xml = disk_xml(&a, block_device);
    if a.print_xml {
        return ctx.out.raw(&xml);
    }
    let flags = flags_for(ctx, &a.domain, &a.flags).await?;
    attach(ctx, &a.domain, xml, flags).await?;
    report_action(
        ctx,
        &a.domain,
        "disk_attached",
        "Disk attached successfully".into(),
    )
}

pub async fn detach_disk(ctx: &mut Ctx, a: DetachDiskArgs) -> Result<(), Error> {
    let flags = &a.flags;
    // virsh reads the persistent XML for a config-only change, else the live one.
    let inactive = flags.impact.config && !flags.impact.live && !flags.persistent;
    let mut client = ctx.conn.domains();
    let req = pb::GetDomainXmlRequest {
        domain: domain_ref(&a.domain),
        inactive,
        secure: false,
    };
    let domain_xml = ctx
        .conn
        .unary(client.get_xml(ctx.conn.request(req)))
        .await?
        .xml;
    let disk = find_disk(&domain_xml, &a.target)?;
    if a.print_xml {
        return ctx.out.raw(&format!("{disk}\n"));
    }
    let modify = flags_for(ctx, &a.domain, flags).await?;
    detach(ctx, &a.domain, disk, modify).await?;
    report_action(
        ctx,
        &a.domain,
        "disk_detached",
        "Disk detached successfully".into(),
    )
}

pub async fn attach_device(ctx: &mut Ctx, a: DeviceFileArgs) -> Result<(), Error> {
    let xml = read_xml(&a.file)?;
    let flags = flags_for(ctx, &a.domain, &a.flags).await?;
    attach(ctx, &a.domain, xml, flags).await?;
    report_action(
        ctx,
        &a.domain,
        "device_attached",
        "Device attached successfully".into(),
    )
}

pub async fn detach_device(ctx: &mut Ctx, a: DeviceFileArgs) -> Result<(), Error> {
    let xml = read_xml(&a.file)?;
    let flags = flags_for(ctx, &a.domain, &a.flags).await?;
    detach(ctx, &a.domain, xml, flags).await?;
    report_action(
        ctx,
        &a.domain,
        "device_detached",
        "Device detached successfully".into(),
    )
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

    fn attach_args(args: &[&str]) -> AttachDiskArgs {
        match cmd(args).unwrap() {
            Command::AttachDisk(a) => *a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn attach_disk_writes_virshs_xml() {
        let a = attach_args(&["attach-disk", "web", "/img/data.qcow2", "vdb"]);
        assert_eq!(
            disk_xml(&a, false),
            "<disk type='file'>\n  <source file='/img/data.qcow2'/>\n  <target dev='vdb'/>\n</disk>\n"
        );
        let a = attach_args(&[
            "attach-disk",
            "web",
            "/img/it's.iso",
            "sdc",
            "--targetbus",
            "scsi",
            "--driver",
            "qemu",
            "--subdriver",
            "raw",
            "--type",
            "cdrom",
            "--mode",
            "readonly",
            "--cache",
            "none",
        ]);
        assert_eq!(
            disk_xml(&a, false),
            "<disk type='file' device='cdrom'>\n  <driver name='qemu' type='raw' cache='none'/>\n  \
             <source file='/img/it&apos;s.iso'/>\n  <target dev='sdc' bus='scsi'/>\n  <readonly/>\n</disk>\n"
        );
        let a = attach_args(&["attach-disk", "web", "/dev/sdz", "vdc", "--shareable"]);
        let xml = disk_xml(&a, true);
        assert!(xml.starts_with("<disk type='block'>"), "{xml}");
        assert!(
            xml.contains("<source dev='/dev/sdz'/>") && xml.contains("<shareable/>"),
            "{xml}"
        );
    }

    #[test]
    fn flags_follow_virsh() {
        let flags = |args: &[&str], active: bool| modify_flags(&attach_args(args).flags, active);
        let base = ["attach-disk", "web", "/i", "vdb"];
        let with = |extra: &[&'static str]| -> Vec<&'static str> {
            base.iter().copied().chain(extra.iter().copied()).collect()
        };
        let f = |live, config| pb::ModifyFlags { live, config };
        assert_eq!(flags(&with(&[]), true), f(false, false));
        assert_eq!(flags(&with(&["--live"]), true), f(true, false));
        assert_eq!(flags(&with(&["--config"]), true), f(false, true));
        assert_eq!(flags(&with(&["--persistent"]), true), f(true, true));
        assert_eq!(flags(&with(&["--persistent"]), false), f(false, true));
        assert!(cmd(&with(&["--persistent", "--current"])).is_err());
        assert!(cmd(&with(&["--current", "--live"])).is_err());
        assert!(cmd(&with(&["--targetbus", "pci"])).is_err());
    }

    const DOMAIN: &str = "<domain type='qemu' id='3'>
  <name>web</name>
  <devices>
    <disk type='file' device='disk'>
      <source file='/img/a.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/img/b &amp; c.raw'/>
      <target dev='vdb' bus='virtio'/>
      <alias name='virtio-disk1'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='hdc' bus='ide'/>
    </disk>
  </devices>
</domain>";

    #[test]
    fn detach_disk_finds_the_element() {
        let by_target = find_disk(DOMAIN, "vdb").unwrap();
        assert!(
            by_target.starts_with("<disk type='file' device='disk'>"),
            "{by_target}"
        );
        assert!(by_target.ends_with("</disk>"), "{by_target}");
        assert!(by_target.contains("<target dev='vdb'"), "{by_target}");
        assert_eq!(find_disk(DOMAIN, "/img/b & c.raw").unwrap(), by_target);
        assert!(find_disk(DOMAIN, "hdc").unwrap().contains("cdrom"));
        let err = find_disk(DOMAIN, "vdz").unwrap_err().to_string();
        assert_eq!(err, "No disk found whose source path or target is vdz");
        // An alias is not a target.
        assert!(find_disk(DOMAIN, "virtio-disk1").is_err());
    }

    #[test]
    fn device_commands_parse() {
        match cmd(&["detach-disk", "web", "vdb", "--config"]).unwrap() {
            Command::DetachDisk(a) => {
                assert_eq!(a.target, "vdb");
                assert!(a.flags.impact.config);
            }
            other => panic!("{other:?}"),
        }
        match cmd(&["attach-device", "web", "disk.xml", "--persistent"]).unwrap() {
            Command::AttachDevice(a) => assert!(a.flags.persistent),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            cmd(&["detach-device", "web", "-", "--live"]).unwrap(),
            Command::DetachDevice(_)
        ));
    }
}
