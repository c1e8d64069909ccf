//! `guestinfo`: several kinds of guest information in one call, printed as virsh prints
//! libvirt's typed parameters (`%-20s: %s`), with libvirt's key names and order (users, os,
//! timezone, hostname, fs, disk, if: `qemuDomainGetGuestInfo`), so scripts that read virsh's
//! output read this.
//!
//! One difference: libvirt's `fs.N.disk.M.alias` and `disk.N.alias` are the host-side disk
//! targets it matches from the domain XML; the agent knows only the guest's device node, so
//! these show the guest's name ("vda" for "/dev/vda"), as `domfsinfo`'s Target column does.

use clap::Args;
use serde::Serialize;
use virtplane_proto::v1 as pb;

use super::fs::{DiskAddressView, FilesystemView, disk_name};
use crate::commands::{Ctx, domain_ref};
use crate::error::Error;
use crate::view::timestamp_utc;

/// `guestinfo DOMAIN [--user] [--os] [--timezone] [--hostname] [--filesystem] [--disk]
/// [--interface]`.
#[derive(Debug, Args)]
pub struct GuestinfoArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// Logged-in users
    #[arg(long)]
    pub user: bool,
    /// Operating system
    #[arg(long)]
    pub os: bool,
    /// Time zone
    #[arg(long)]
    pub timezone: bool,
    /// Hostname
    #[arg(long)]
    pub hostname: bool,
    /// Mounted file systems
    #[arg(long)]
    pub filesystem: bool,
    /// Disks
    #[arg(long)]
    pub disk: bool,
    /// Network interfaces and their addresses
    #[arg(long)]
    pub interface: bool,
}

pub async fn guestinfo(ctx: &mut Ctx, a: GuestinfoArgs) -> Result<(), Error> {
    let mut client = ctx.conn.guest();
    let request = pb::GetGuestInfoRequest {
        domain: domain_ref(&a.domain),
        os: a.os,
        hostname: a.hostname,
        timezone: a.timezone,
        users: a.user,
        filesystems: a.filesystem,
        disks: a.disk,
        interfaces: a.interface,
    };
    let info = ctx
        .conn
        .unary(client.get_guest_info(ctx.conn.request(request)))
        .await?;
    if !ctx.out.is_table() {
        return ctx.out.data(&GuestInfoView::from_proto(&a.domain, &info));
    }
    let mut text = String::new();
    for (key, value) in guest_info_params(&info) {
        text += &format!("{key:<20}: {value}\n");
    }
    ctx.out.raw(&text)
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

fn ip_type(t: i32) -> &'static str {
    if t == pb::IpAddrType::Ipv6 as i32 {
        "ipv6"
    } else {
        "ipv4"
    }
}

/// Milliseconds since the epoch, as libvirt reports `user.N.login-time`.
fn millis(t: &prost_types::Timestamp) -> i64 {
    t.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(t.nanos / 1_000_000))
}

/// libvirt's typed parameters for the answer, in libvirt's order. As libvirt does, empty
/// strings are left out, and so are the file system, disk and interface lists when empty.
pub fn guest_info_params(info: &pb::GetGuestInfoResponse) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = Vec::new();
    let mut push = |key: String, value: String| p.push((key, value));
    if let Some(users) = &info.users {
        push("user.count".into(), users.users.len().to_string());
        for (i, u) in users.users.iter().enumerate() {
            push(format!("user.{i}.name"), u.name.clone());
            if !u.domain.is_empty() {
                push(format!("user.{i}.domain"), u.domain.clone());
            }
            if let Some(t) = &u.login_time {
                push(format!("user.{i}.login-time"), millis(t).to_string());
            }
        }
    }
    if let Some(os) = &info.os {
        for (key, value) in [
            ("os.id", &os.id),
            ("os.name", &os.name),
            ("os.pretty-name", &os.pretty_name),
            ("os.version", &os.version),
            ("os.version-id", &os.version_id),
            ("os.machine", &os.machine),
            ("os.variant", &os.variant),
            ("os.variant-id", &os.variant_id),
            ("os.kernel-release", &os.kernel_release),
            ("os.kernel-version", &os.kernel_version),
        ] {
            if !value.is_empty() {
                push(key.into(), value.clone());
            }
        }
    }
    if let Some(tz) = &info.timezone {
        if !tz.zone.is_empty() {
            push("timezone.name".into(), tz.zone.clone());
        }
        push("timezone.offset".into(), tz.offset_seconds.to_string());
    }
    if let Some(hostname) = &info.hostname {
        push("hostname".into(), hostname.clone());
    }
    if let Some(list) = info
        .filesystems
        .as_ref()
        .filter(|l| !l.filesystems.is_empty())
    {
        push("fs.count".into(), list.filesystems.len().to_string());
        for (i, f) in list.filesystems.iter().enumerate() {
            push(format!("fs.{i}.name"), f.name.clone());
            push(format!("fs.{i}.mountpoint"), f.mountpoint.clone());
            push(format!("fs.{i}.fstype"), f.r#type.clone());
            if let Some(total) = f.total_bytes {
                push(format!("fs.{i}.total-bytes"), total.to_string());
            }
            if let Some(used) = f.used_bytes {
                push(format!("fs.{i}.used-bytes"), used.to_string());
            }
            push(format!("fs.{i}.disk.count"), f.disks.len().to_string());
            for (j, d) in f.disks.iter().enumerate() {
                if !disk_name(d).is_empty() {
                    push(format!("fs.{i}.disk.{j}.alias"), disk_name(d).to_string());
                }
                if !d.serial.is_empty() {
                    push(format!("fs.{i}.disk.{j}.serial"), d.serial.clone());
                }
                if !d.dev.is_empty() {
                    push(format!("fs.{i}.disk.{j}.device"), d.dev.clone());
                }
            }
        }
    }
    if let Some(list) = info.disks.as_ref().filter(|l| !l.disks.is_empty()) {
        push("disk.count".into(), list.disks.len().to_string());
        for (i, d) in list.disks.iter().enumerate() {
            push(format!("disk.{i}.name"), d.name.clone());
            push(format!("disk.{i}.partition"), yes_no(d.partition));
            if !d.dependencies.is_empty() {
                push(
                    format!("disk.{i}.dependency.count"),
                    d.dependencies.len().to_string(),
                );
                for (j, dep) in d.dependencies.iter().enumerate() {
                    push(format!("disk.{i}.dependency.{j}.name"), dep.clone());
                }
            }
            if let Some(address) = &d.address {
                if !address.serial.is_empty() {
                    push(format!("disk.{i}.serial"), address.serial.clone());
                }
                if !disk_name(address).is_empty() {
                    push(format!("disk.{i}.alias"), disk_name(address).to_string());
                }
            }
            if !d.alias.is_empty() {
                push(format!("disk.{i}.guest_alias"), d.alias.clone());
            }
        }
    }
    if let Some(list) = info
        .interfaces
        .as_ref()
        .filter(|l| !l.interfaces.is_empty())
    {
        push("if.count".into(), list.interfaces.len().to_string());
        for (i, iface) in list.interfaces.iter().enumerate() {
            push(format!("if.{i}.name"), iface.name.clone());
            push(format!("if.{i}.hwaddr"), iface.hardware_address.clone());
            push(
                format!("if.{i}.addr.count"),
                iface.addresses.len().to_string(),
            );
            for (j, addr) in iface.addresses.iter().enumerate() {
                push(format!("if.{i}.addr.{j}.type"), ip_type(addr.r#type).into());
                push(format!("if.{i}.addr.{j}.addr"), addr.address.clone());
                push(format!("if.{i}.addr.{j}.prefix"), addr.prefix.to_string());
            }
        }
    }
    p
}

/// `guestinfo -o json|yaml`: the kinds that were answered, typed.
#[derive(Debug, Serialize)]
struct GuestInfoView {
    domain: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    users: Option<Vec<UserView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    os: Option<OsView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<TimezoneView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filesystems: Option<Vec<FilesystemView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disks: Option<Vec<DiskView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interfaces: Option<Vec<InterfaceView>>,
}

#[derive(Debug, Serialize)]
struct UserView {
    name: String,
    domain: String,
    /// RFC 3339, UTC.
    login_time: Option<String>,
}

#[derive(Debug, Serialize)]
struct OsView {
    id: String,
    name: String,
    pretty_name: String,
    version: String,
    version_id: String,
    machine: String,
    variant: String,
    variant_id: String,
    kernel_release: String,
    kernel_version: String,
}

#[derive(Debug, Serialize)]
struct TimezoneView {
    name: String,
    offset_seconds: i64,
}

#[derive(Debug, Serialize)]
struct DiskView {
    name: String,
    partition: bool,
    dependencies: Vec<String>,
    guest_alias: String,
    address: Option<DiskAddressView>,
}

#[derive(Debug, Serialize)]
struct InterfaceView {
    name: String,
    hardware_address: String,
    addresses: Vec<AddressView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<StatsView>,
}

#[derive(Debug, Serialize)]
struct AddressView {
    #[serde(rename = "type")]
    kind: &'static str,
    address: String,
    prefix: u32,
}

#[derive(Debug, Serialize)]
struct StatsView {
    rx_bytes: u64,
    rx_packets: u64,
    rx_errors: u64,
    rx_dropped: u64,
    tx_bytes: u64,
    tx_packets: u64,
    tx_errors: u64,
    tx_dropped: u64,
}

impl GuestInfoView {
    fn from_proto(domain: &str, info: &pb::GetGuestInfoResponse) -> Self {
        let pb::GetGuestInfoResponse {
            os,
            hostname,
            timezone,
            users,
            filesystems,
            disks,
            interfaces,
        } = info;
        GuestInfoView {
            domain: domain.to_string(),
            users: users.as_ref().map(|l| {
                l.users
                    .iter()
                    .map(|u| UserView {
                        name: u.name.clone(),
                        domain: u.domain.clone(),
                        login_time: u
                            .login_time
                            .as_ref()
                            .and_then(timestamp_utc)
                            .map(|t| t.to_rfc3339()),
                    })
                    .collect()
            }),
            os: os.as_ref().map(|o| OsView {
                id: o.id.clone(),
                name: o.name.clone(),
                pretty_name: o.pretty_name.clone(),
                version: o.version.clone(),
                version_id: o.version_id.clone(),
                machine: o.machine.clone(),
                variant: o.variant.clone(),
                variant_id: o.variant_id.clone(),
                kernel_release: o.kernel_release.clone(),
                kernel_version: o.kernel_version.clone(),
            }),
            timezone: timezone.as_ref().map(|t| TimezoneView {
                name: t.zone.clone(),
                offset_seconds: t.offset_seconds,
            }),
            hostname: hostname.clone(),
            filesystems: filesystems.as_ref().map(|l| {
                l.filesystems
                    .iter()
                    .map(FilesystemView::from_proto)
                    .collect()
            }),
            disks: disks.as_ref().map(|l| {
                l.disks
                    .iter()
                    .map(|d| DiskView {
                        name: d.name.clone(),
                        partition: d.partition,
                        dependencies: d.dependencies.clone(),
                        guest_alias: d.alias.clone(),
                        address: d.address.as_ref().map(DiskAddressView::from_proto),
                    })
                    .collect()
            }),
            interfaces: interfaces.as_ref().map(|l| {
                l.interfaces
                    .iter()
                    .map(|i| InterfaceView {
                        name: i.name.clone(),
                        hardware_address: i.hardware_address.clone(),
                        addresses: i
                            .addresses
                            .iter()
                            .map(|a| AddressView {
                                kind: ip_type(a.r#type),
                                address: a.address.clone(),
                                prefix: a.prefix,
                            })
                            .collect(),
                        stats: i.stats.as_ref().map(|s| StatsView {
                            rx_bytes: s.rx_bytes,
                            rx_packets: s.rx_packets,
                            rx_errors: s.rx_errors,
                            rx_dropped: s.rx_dropped,
                            tx_bytes: s.tx_bytes,
                            tx_packets: s.tx_packets,
                            tx_errors: s.tx_errors,
                            tx_dropped: s.tx_dropped,
                        }),
                    })
                    .collect()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_lists_are_left_out_as_libvirt_does() {
        let info = pb::GetGuestInfoResponse {
            users: Some(pb::GuestUserList { users: vec![] }),
            filesystems: Some(pb::GuestFilesystemList {
                filesystems: vec![],
            }),
            hostname: Some("db".into()),
            timezone: Some(pb::GuestTimezone {
                zone: String::new(),
                offset_seconds: -3600,
            }),
            ..Default::default()
        };
        let keys: Vec<(String, String)> = guest_info_params(&info);
        assert_eq!(
            keys,
            [
                ("user.count".to_string(), "0".to_string()),
                ("timezone.offset".to_string(), "-3600".to_string()),
                ("hostname".to_string(), "db".to_string()),
            ]
        );
    }
}
