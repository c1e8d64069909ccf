//! The guest's file systems: `domfsinfo`, `domfsfreeze`, `domfsthaw`, `domfstrim`, with
//! virsh's output (`virsh-domain.c`).

use clap::Args;
use serde::Serialize;
use virtplane_proto::v1 as pb;

use crate::cli::DomainArg;
use crate::commands::{Ctx, domain_ref};
use crate::error::Error;
use crate::output::{eprint_line, virsh_table};

/// `domfsfreeze DOMAIN [--mountpoint M]...`.
#[derive(Debug, Args)]
pub struct DomfsfreezeArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// Freeze only this mount point (repeatable); default: every freezable file system
    #[arg(long, value_name = "PATH")]
    pub mountpoint: Vec<String>,
}

/// `domfstrim DOMAIN [--minimum BYTES]`.
#[derive(Debug, Args)]
pub struct DomfstrimArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// Leave free ranges shorter than this many bytes untrimmed
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub minimum: u64,
}

/// One disk under a guest file system, for `-o json|yaml`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskAddressView {
    /// The device node in the guest, e.g. "/dev/vda".
    pub dev: String,
    pub serial: String,
    pub bus_type: String,
    pub pci_controller: String,
    pub bus: u32,
    pub target: u32,
    pub unit: u32,
}

impl DiskAddressView {
    pub fn from_proto(d: &pb::GuestDiskAddress) -> Self {
        let pb::GuestDiskAddress {
            pci_controller,
            bus_type,
            bus,
            target,
            unit,
            serial,
            dev,
        } = d;
        DiskAddressView {
            dev: dev.clone(),
            serial: serial.clone(),
            bus_type: bus_type.clone(),
            pci_controller: pci_controller.clone(),
            bus: *bus,
            target: *target,
            unit: *unit,
        }
    }
}

/// One guest file system, for `-o json|yaml`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilesystemView {
    pub mountpoint: String,
    pub name: String,
    #[serde(rename = "type")]
    pub fs_type: String,
    pub total_bytes: Option<u64>,
    pub used_bytes: Option<u64>,
    pub disks: Vec<DiskAddressView>,
}

impl FilesystemView {
    pub fn from_proto(f: &pb::GuestFilesystem) -> Self {
        let pb::GuestFilesystem {
            mountpoint,
            name,
            r#type,
            total_bytes,
            used_bytes,
            disks,
        } = f;
        FilesystemView {
            mountpoint: mountpoint.clone(),
            name: name.clone(),
            fs_type: r#type.clone(),
            total_bytes: *total_bytes,
            used_bytes: *used_bytes,
            disks: disks.iter().map(DiskAddressView::from_proto).collect(),
        }
    }
}

/// The disk name of the Target column: the guest's device node without "/dev/" ("vda").
/// virsh shows the host-side target of the same disk, which is the same name for virtio
/// disks; the agent only knows the guest's.
pub fn disk_name(d: &pb::GuestDiskAddress) -> &str {
    d.dev.strip_prefix("/dev/").unwrap_or(&d.dev)
}

pub async fn domfsinfo(ctx: &mut Ctx, a: DomainArg) -> Result<(), Error> {
    let mut client = ctx.conn.guest();
    let request = pb::GetGuestFilesystemsRequest {
        domain: domain_ref(&a.domain),
    };
    let filesystems = ctx
        .conn
        .unary(client.get_filesystems(ctx.conn.request(request)))
        .await?
        .filesystems;
    if !ctx.out.is_table() {
        let views: Vec<FilesystemView> =
            filesystems.iter().map(FilesystemView::from_proto).collect();
        return ctx.out.data(&views);
    }
    ctx.out.raw(&render_fsinfo(&filesystems))
}

/// virsh's domfsinfo table, or its line for a guest with nothing mounted.
pub fn render_fsinfo(filesystems: &[pb::GuestFilesystem]) -> String {
    if filesystems.is_empty() {
        return "No filesystems are mounted in the domain\n".to_string();
    }
    let rows: Vec<Vec<String>> = filesystems
        .iter()
        .map(|f| {
            let targets: Vec<&str> = f
                .disks
                .iter()
                .map(disk_name)
                .filter(|n| !n.is_empty())
                .collect();
            vec![
                f.mountpoint.clone(),
                f.name.clone(),
                f.r#type.clone(),
                targets.join(","),
            ]
        })
        .collect();
    virsh_table(&["Mountpoint", "Name", "Type", "Target"], &rows)
}

#[derive(Debug, Serialize)]
struct CountView {
    domain: String,
    frozen: Option<u32>,
    thawed: Option<u32>,
}

pub async fn domfsfreeze(ctx: &mut Ctx, a: DomfsfreezeArgs) -> Result<(), Error> {
    let mut client = ctx.conn.guest();
    let request = pb::FreezeGuestFilesystemsRequest {
        domain: domain_ref(&a.domain),
        mountpoints: a.mountpoint,
    };
    let frozen = ctx
        .conn
        .unary(client.freeze_filesystems(ctx.conn.request(request)))
        .await?
        .frozen;
    if !ctx.out.is_table() {
        return ctx.out.data(&CountView {
            domain: a.domain,
            frozen: Some(frozen),
            thawed: None,
        });
    }
    ctx.out.line(format!("Froze {frozen} filesystem(s)"))
}

pub async fn domfsthaw(ctx: &mut Ctx, a: DomainArg) -> Result<(), Error> {
    let mut client = ctx.conn.guest();
    let request = pb::ThawGuestFilesystemsRequest {
        domain: domain_ref(&a.domain),
    };
    let thawed = ctx
        .conn
        .unary(client.thaw_filesystems(ctx.conn.request(request)))
        .await?
        .thawed;
    if !ctx.out.is_table() {
        return ctx.out.data(&CountView {
            domain: a.domain,
            frozen: None,
            thawed: Some(thawed),
        });
    }
    ctx.out.line(format!("Thawed {thawed} filesystem(s)"))
}

#[derive(Debug, Serialize)]
struct TrimView {
    path: String,
    trimmed_bytes: Option<u64>,
    minimum_bytes: Option<u64>,
    /// Why this file system was not trimmed; absent on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// virsh prints nothing when fstrim worked; the agent's per-file-system failures (which
/// libvirt drops) become warnings on stderr here, and the command still succeeds, as the
/// trim of the other file systems did.
pub async fn domfstrim(ctx: &mut Ctx, a: DomfstrimArgs) -> Result<(), Error> {
    let mut client = ctx.conn.guest();
    let request = pb::TrimGuestFilesystemsRequest {
        domain: domain_ref(&a.domain),
        minimum_bytes: a.minimum,
    };
    let results = ctx
        .conn
        .unary(client.trim_filesystems(ctx.conn.request(request)))
        .await?
        .results;
    for r in results.iter().filter(|r| !r.error.is_empty()) {
        eprint_line(format!("warning: {} was not trimmed: {}", r.path, r.error));
    }
    if !ctx.out.is_table() {
        let views: Vec<TrimView> = results
            .into_iter()
            .map(|r| TrimView {
                path: r.path,
                trimmed_bytes: r.trimmed_bytes,
                minimum_bytes: r.minimum_bytes,
                error: (!r.error.is_empty()).then_some(r.error),
            })
            .collect();
        return ctx.out.data(&views);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(dev: &str) -> pb::GuestDiskAddress {
        pb::GuestDiskAddress {
            dev: dev.into(),
            bus_type: "virtio".into(),
            ..Default::default()
        }
    }

    #[test]
    fn fsinfo_like_virsh() {
        let filesystems = vec![
            pb::GuestFilesystem {
                mountpoint: "/".into(),
                name: "vda1".into(),
                r#type: "ext4".into(),
                total_bytes: Some(10),
                used_bytes: Some(5),
                disks: vec![disk("/dev/vda")],
            },
            pb::GuestFilesystem {
                mountpoint: "/data".into(),
                name: "dm-0".into(),
                r#type: "xfs".into(),
                total_bytes: None,
                used_bytes: None,
                disks: vec![disk("/dev/vdb"), disk("/dev/vdc")],
            },
            pb::GuestFilesystem {
                mountpoint: "/run".into(),
                name: "tmpfs".into(),
                r#type: "tmpfs".into(),
                total_bytes: None,
                used_bytes: None,
                disks: vec![],
            },
        ];
        assert_eq!(
            render_fsinfo(&filesystems),
            " Mountpoint   Name    Type    Target\n\
             ---------------------------------------\n \
             /            vda1    ext4    vda\n \
             /data        dm-0    xfs     vdb,vdc\n \
             /run         tmpfs   tmpfs   \n"
        );
        assert_eq!(
            render_fsinfo(&[]),
            "No filesystems are mounted in the domain\n"
        );
    }
}
