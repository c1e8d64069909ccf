//! One file per command family; each command parses nothing itself (clap did), makes one or
//! a few calls and prints. Shared here: the context every command gets and the name-or-UUID
//! rule virsh uses for domain arguments.

pub mod addresses;
pub mod console;
pub mod device;
pub mod domain;
pub mod events;
pub mod guest;
pub mod host;
pub mod interface;
pub mod lifecycle;
pub mod memory;
pub mod network;
pub mod qemu;
pub mod stats;
pub mod storage;
pub mod vcpu;
pub mod watch;

use std::time::Duration;

use virtplane_proto::v1::{DomainRef, domain_ref};

use crate::cli::Command;
use crate::connect::Conn;
use crate::error::Error;
use crate::output::Out;

/// What a command runs with.
pub struct Ctx {
    pub conn: Conn,
    pub out: Out,
    /// The global `--timeout`, if given: for `event` it bounds the listening time.
    pub timeout_flag: Option<Duration>,
}

/// Runs one server command.
pub async fn run(command: Command, ctx: &mut Ctx) -> Result<(), Error> {
    match command {
        Command::List(a) => domain::list(ctx, a).await,
        Command::Dominfo(a) => domain::dominfo(ctx, a).await,
        Command::Domstate(a) => domain::domstate(ctx, a).await,
        Command::Define(a) => domain::define(ctx, a).await,
        Command::Undefine(a) => domain::undefine(ctx, a).await,
        Command::Dumpxml(a) => domain::dumpxml(ctx, a).await,
        Command::Autostart(a) => domain::autostart(ctx, a).await,
        Command::Create(a) => lifecycle::create(ctx, a).await,
        Command::Start(a) => lifecycle::start(ctx, a).await,
        Command::Shutdown(a) => lifecycle::shutdown(ctx, a).await,
        Command::Destroy(a) => lifecycle::destroy(ctx, a).await,
        Command::Reboot(a) => lifecycle::reboot(ctx, a).await,
        Command::Reset(a) => lifecycle::reset(ctx, a).await,
        Command::Suspend(a) => lifecycle::suspend(ctx, a).await,
        Command::Resume(a) => lifecycle::resume(ctx, a).await,
        Command::Setvcpus(a) => vcpu::setvcpus(ctx, a).await,
        Command::Vcpucount(a) => vcpu::vcpucount(ctx, a).await,
        Command::Setmem(a) => memory::setmem(ctx, a, false).await,
        Command::Setmaxmem(a) => memory::setmem(ctx, a, true).await,
        Command::AttachDisk(a) => device::attach_disk(ctx, *a).await,
        Command::DetachDisk(a) => device::detach_disk(ctx, a).await,
        Command::AttachDevice(a) => device::attach_device(ctx, a).await,
        Command::DetachDevice(a) => device::detach_device(ctx, a).await,
        Command::AttachInterface(a) => interface::attach_interface(ctx, *a).await,
        Command::DetachInterface(a) => interface::detach_interface(ctx, a).await,
        Command::Event(a) => events::event(ctx, a).await,
        Command::Console(a) => console::console(ctx, a).await,
        Command::Domstats(a) => stats::domstats(ctx, a).await,
        Command::Domblklist(a) => stats::domblklist(ctx, a).await,
        Command::Domiflist(a) => stats::domiflist(ctx, a).await,
        Command::Domifaddr(a) => addresses::domifaddr(ctx, a).await,
        Command::Domblkstat(a) => stats::domblkstat(ctx, a).await,
        Command::Domifstat(a) => stats::domifstat(ctx, a).await,
        Command::Dommemstat(a) => stats::dommemstat(ctx, a).await,
        Command::QemuMonitorCmd(a) => qemu::monitor_command(ctx, a).await,
        Command::QemuMonitorEvent(a) => qemu::monitor_event(ctx, a).await,
        Command::Domhostname(a) => guest::info::domhostname(ctx, a).await,
        Command::Domfsinfo(a) => guest::fs::domfsinfo(ctx, a).await,
        Command::Domfsfreeze(a) => guest::fs::domfsfreeze(ctx, a).await,
        Command::Domfsthaw(a) => guest::fs::domfsthaw(ctx, a).await,
        Command::Domfstrim(a) => guest::fs::domfstrim(ctx, a).await,
        Command::Domtime(a) => guest::time::domtime(ctx, a).await,
        Command::SetUserPassword(a) => guest::users::set_user_password(ctx, a).await,
        Command::Guestinfo(a) => guest::guestinfo::guestinfo(ctx, a).await,
        Command::Guestvcpus(a) => guest::vcpus::guestvcpus(ctx, a).await,
        Command::GetUserSshkeys(a) => guest::users::get_user_sshkeys(ctx, a).await,
        Command::SetUserSshkeys(a) => guest::users::set_user_sshkeys(ctx, a).await,
        Command::GuestExec(a) => guest::exec::guest_exec(ctx, a).await,
        Command::GuestFileRead(a) => guest::file::guest_file_read(ctx, a).await,
        Command::GuestFileWrite(a) => guest::file::guest_file_write(ctx, a).await,
        Command::QemuAgentCmd(a) => guest::passthrough::qemu_agent_command(ctx, a).await,
        Command::GuestAgentTimeout(a) => guest::passthrough::guest_agent_timeout(ctx, a).await,
        Command::GuestPing(a) => guest::info::guest_ping(ctx, a).await,
        Command::GuestAgentInfo(a) => guest::info::guest_agent_info(ctx, a).await,
        Command::NetList(a) => network::net_list(ctx, a).await,
        Command::NetInfo(a) => network::net_info(ctx, a).await,
        Command::NetDumpxml(a) => network::net_dumpxml(ctx, a).await,
        Command::NetDefine(a) => network::net_define(ctx, a).await,
        Command::NetCreate(a) => network::net_create(ctx, a).await,
        Command::NetStart(a) => network::net_start(ctx, a).await,
        Command::NetDestroy(a) => network::net_destroy(ctx, a).await,
        Command::NetUndefine(a) => network::net_undefine(ctx, a).await,
        Command::NetAutostart(a) => network::net_autostart(ctx, a).await,
        Command::NetDhcpLeases(a) => network::leases::net_dhcp_leases(ctx, a).await,
        Command::NetUpdate(a) => network::update::net_update(ctx, a).await,
        Command::NetUuid(a) => network::net_uuid(ctx, a).await,
        Command::NetName(a) => network::net_name(ctx, a).await,
        Command::NetEvent(a) => network::events::net_event(ctx, a).await,
        Command::NetPortList(a) => network::ports::net_port_list(ctx, a).await,
        Command::NetPortCreate(a) => network::ports::net_port_create(ctx, a).await,
        Command::NetPortDumpxml(a) => network::ports::net_port_dumpxml(ctx, a).await,
        Command::NetPortDelete(a) => network::ports::net_port_delete(ctx, a).await,
        Command::PoolList(a) => storage::pools::pool_list(ctx, a).await,
        Command::PoolInfo(a) => storage::pools::pool_info(ctx, a).await,
        Command::PoolDumpxml(a) => storage::pools::pool_dumpxml(ctx, a).await,
        Command::PoolDefine(a) => storage::pools::pool_define(ctx, a).await,
        Command::PoolDefineAs(a) => storage::pools::pool_define_as(ctx, *a).await,
        Command::PoolCreate(a) => storage::pools::pool_create(ctx, a).await,
        Command::PoolCreateAs(a) => storage::pools::pool_create_as(ctx, *a).await,
        Command::PoolBuild(a) => storage::pools::pool_build(ctx, a).await,
        Command::PoolStart(a) => storage::pools::pool_start(ctx, a).await,
        Command::PoolDestroy(a) => storage::pools::pool_destroy(ctx, a).await,
        Command::PoolDelete(a) => storage::pools::pool_delete(ctx, a).await,
        Command::PoolUndefine(a) => storage::pools::pool_undefine(ctx, a).await,
        Command::PoolAutostart(a) => storage::pools::pool_autostart(ctx, a).await,
        Command::PoolRefresh(a) => storage::pools::pool_refresh(ctx, a).await,
        Command::PoolUuid(a) => storage::pools::pool_uuid(ctx, a).await,
        Command::PoolName(a) => storage::pools::pool_name(ctx, a).await,
        Command::PoolEvent(a) => storage::events::pool_event(ctx, a).await,
        Command::VolList(a) => storage::volumes::vol_list(ctx, a).await,
        Command::VolInfo(a) => storage::volumes::vol_info(ctx, a).await,
        Command::VolDumpxml(a) => storage::volumes::vol_dumpxml(ctx, a).await,
        Command::VolPath(a) => storage::volumes::vol_path(ctx, a).await,
        Command::VolKey(a) => storage::volumes::vol_key(ctx, a).await,
        Command::VolName(a) => storage::volumes::vol_name(ctx, a).await,
        Command::VolPool(a) => storage::volumes::vol_pool(ctx, a).await,
        Command::VolCreate(a) => storage::volumes::vol_create(ctx, a).await,
        Command::VolCreateAs(a) => storage::volumes::vol_create_as(ctx, *a).await,
        Command::VolCreateFrom(a) => storage::volumes::vol_create_from(ctx, a).await,
        Command::VolClone(a) => storage::volumes::vol_clone(ctx, a).await,
        Command::VolDelete(a) => storage::volumes::vol_delete(ctx, a).await,
        Command::VolResize(a) => storage::volumes::vol_resize(ctx, a).await,
        Command::VolWipe(a) => storage::volumes::vol_wipe(ctx, a).await,
        Command::VolUpload(a) => storage::transfer::vol_upload(ctx, a).await,
        Command::VolDownload(a) => storage::transfer::vol_download(ctx, a).await,
        Command::Version => host::version(ctx).await,
        Command::Nodeinfo => host::nodeinfo(ctx).await,
        Command::Health(a) => host::health(ctx, a).await,
        // Handled before connecting (needs no server); listed for exhaustiveness.
        Command::Completion(_) => Ok(()),
    }
}

/// A domain argument as virsh reads it: a UUID if it parses as one, else a name.
pub fn domain_ref(arg: &str) -> Option<DomainRef> {
    let id = match canonical_uuid(arg) {
        Some(uuid) => domain_ref::Id::Uuid(uuid),
        None => domain_ref::Id::Name(arg.to_string()),
    };
    Some(DomainRef { id: Some(id) })
}

/// The canonical 8-4-4-4-12 lowercase form of a UUID written with or without dashes, or
/// `None` if `s` is not a UUID.
pub fn canonical_uuid(s: &str) -> Option<String> {
    let hex: String = if s.len() == 36 {
        let dashes_ok = s
            .char_indices()
            .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (c == '-'));
        if !dashes_ok {
            return None;
        }
        s.chars().filter(|c| *c != '-').collect()
    } else if s.len() == 32 {
        s.to_string()
    } else {
        return None;
    };
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let h = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// Reads a domain XML file; `-` means standard input (`/dev/stdin` works as a path).
pub fn read_xml(file: &str) -> Result<String, Error> {
    let read = || -> std::io::Result<String> {
        if file == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut s)?;
            Ok(s)
        } else {
            std::fs::read_to_string(file)
        }
    };
    read().map_err(|source| Error::ReadFile {
        path: if file == "-" {
            "standard input".to_string()
        } else {
            file.to_string()
        },
        source,
    })
}

/// Prints a virsh success line, or with `-o json|yaml` the same fact as data.
pub fn report_action(
    ctx: &mut Ctx,
    domain: &str,
    result: &'static str,
    message: String,
) -> Result<(), Error> {
    if ctx.out.is_table() {
        ctx.out.line(message)
    } else {
        ctx.out.data(&crate::view::Action {
            domain: domain.to_string(),
            result,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_or_name() {
        let u = "6695eb01-f6a4-8304-79aa-97f2502e193f";
        assert_eq!(
            domain_ref(u).unwrap().id,
            Some(domain_ref::Id::Uuid(u.to_string()))
        );
        assert_eq!(
            domain_ref("6695EB01F6A4830479AA97F2502E193F").unwrap().id,
            Some(domain_ref::Id::Uuid(u.to_string()))
        );
        assert_eq!(
            domain_ref("web").unwrap().id,
            Some(domain_ref::Id::Name("web".into()))
        );
        // 36 characters with dashes in the wrong places, or non-hex: a name.
        for name in [
            "6695eb01f-6a4-8304-79aa-97f2502e193f",
            "zzzzeb01-f6a4-8304-79aa-97f2502e193f",
            "web-server-01",
        ] {
            assert_eq!(
                domain_ref(name).unwrap().id,
                Some(domain_ref::Id::Name(name.into()))
            );
        }
    }

    #[test]
    fn read_xml_names_missing_file() {
        let err = read_xml("/nonexistent/web.xml").unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read /nonexistent/web.xml: "),
            "{err}"
        );
    }
}
