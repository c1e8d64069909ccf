//! `guestvcpus`: the vCPUs as the guest sees them (virsh's `vcpus`, `online` and
//! `offlinable` lists, `%-15s: %s`), or `--cpulist LIST --enable|--disable` to take some
//! online or offline inside the guest. LIST is libvirt's bitmap syntax: `0-3,^2,6`.

use clap::{ArgGroup, Args};
use serde::Serialize;
use virtplane_proto::v1 as pb;

use crate::commands::{Ctx, domain_ref, report_action};
use crate::error::Error;

/// libvirt's limit on guest vCPU ids (`QEMU_GUEST_VCPU_MAX_ID`); it also keeps a typo like
/// `0-4000000000` from building a huge list.
pub const MAX_VCPU_ID: u32 = 4096;

/// `guestvcpus DOMAIN [--cpulist LIST --enable|--disable]`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("state").args(["enable", "disable"])))]
pub struct GuestvcpusArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// The vCPUs to change, e.g. `1-3` or `0-7,^4`
    #[arg(long, value_name = "LIST", value_parser = parse_cpulist, requires = "state")]
    pub cpulist: Option<CpuList>,
    /// Bring the --cpulist vCPUs online
    #[arg(long, requires = "cpulist")]
    pub enable: bool,
    /// Take the --cpulist vCPUs offline
    #[arg(long, requires = "cpulist")]
    pub disable: bool,
}

/// The vCPU ids of a `--cpulist`, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(pub Vec<u32>);

/// Parses libvirt's bitmap syntax (`virBitmapParse`): comma-separated `N`, `N-M` (N <= M)
/// and `^N` (remove N); spaces around the parts are allowed. Returns the ids in order.
pub fn parse_cpulist(text: &str) -> Result<CpuList, String> {
    let bad = |why: &str| format!("'{text}' is not a CPU list ({why}); write e.g. 0-3,^2,6");
    let mut set = std::collections::BTreeSet::new();
    if text.trim().is_empty() {
        return Err(bad("it is empty"));
    }
    let number = |s: &str| -> Result<u32, String> {
        let s = s.trim();
        let id: u32 = s
            .parse()
            .map_err(|_| bad(&format!("'{s}' is not a CPU number")))?;
        if id >= MAX_VCPU_ID {
            return Err(bad(&format!(
                "CPU {id} is above the limit of {}",
                MAX_VCPU_ID - 1
            )));
        }
        Ok(id)
    };
    for part in text.split(',') {
        let part = part.trim();
        if let Some(negated) = part.strip_prefix('^') {
            set.remove(&number(negated)?);
        } else if let Some((first, last)) = part.split_once('-') {
            let (first, last) = (number(first)?, number(last)?);
            if last < first {
                return Err(bad(&format!("the range {part} runs backwards")));
            }
            set.extend(first..=last);
        } else {
            set.insert(number(part)?);
        }
    }
    if set.is_empty() {
        return Err(bad("it names no CPU"));
    }
    Ok(CpuList(set.into_iter().collect()))
}

/// libvirt's bitmap text (`virBitmapFormat`) of sorted ids: `0-3,5`; empty for none.
pub fn format_cpulist(ids: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = ids.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

#[derive(Debug, Serialize)]
struct VcpusView {
    domain: String,
    vcpus: Vec<u32>,
    online: Vec<u32>,
    offlinable: Vec<u32>,
}

pub async fn guestvcpus(ctx: &mut Ctx, a: GuestvcpusArgs) -> Result<(), Error> {
    let mut client = ctx.conn.guest();
    if let Some(CpuList(ids)) = a.cpulist {
        let request = pb::SetGuestVcpusRequest {
            domain: domain_ref(&a.domain),
            logical_ids: ids,
            online: a.enable,
        };
        ctx.conn
            .unary(client.set_vcpus(ctx.conn.request(request)))
            .await?;
        // virsh prints nothing.
        if ctx.out.is_table() {
            return Ok(());
        }
        let result = if a.enable { "enabled" } else { "disabled" };
        return report_action(ctx, &a.domain, result, String::new());
    }
    let request = pb::GetGuestVcpusRequest {
        domain: domain_ref(&a.domain),
    };
    let vcpus = ctx
        .conn
        .unary(client.get_vcpus(ctx.conn.request(request)))
        .await?
        .vcpus;
    let ids = |keep: fn(&pb::GuestVcpu) -> bool| -> Vec<u32> {
        let mut ids: Vec<u32> = vcpus
            .iter()
            .filter(|v| keep(v))
            .map(|v| v.logical_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let view = VcpusView {
        domain: a.domain,
        vcpus: ids(|_| true),
        online: ids(|v| v.online),
        offlinable: ids(|v| v.can_offline),
    };
    if !ctx.out.is_table() {
        return ctx.out.data(&view);
    }
    for (key, list) in [
        ("vcpus", &view.vcpus),
        ("online", &view.online),
        ("offlinable", &view.offlinable),
    ] {
        ctx.out
            .line(format!("{key:<15}: {}", format_cpulist(list)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpulists_like_libvirt() {
        assert_eq!(parse_cpulist("0-3").unwrap().0, [0, 1, 2, 3]);
        assert_eq!(
            parse_cpulist("0-7,^4, 9").unwrap().0,
            [0, 1, 2, 3, 5, 6, 7, 9]
        );
        assert_eq!(parse_cpulist(" 2 ").unwrap().0, [2]);
        assert_eq!(parse_cpulist("3,1,3").unwrap().0, [1, 3]);
        for bad in [
            "",
            "a",
            "1-",
            "3-1",
            "1,,2",
            "-1",
            "^1",
            "4096",
            "0-99999999999",
        ] {
            let err = parse_cpulist(bad).unwrap_err();
            assert!(
                err.starts_with(&format!("'{bad}' is not a CPU list")),
                "{bad}: {err}"
            );
        }
        assert_eq!(format_cpulist(&[0, 1, 2, 3]), "0-3");
        assert_eq!(format_cpulist(&[0, 2, 3, 5]), "0,2-3,5");
        assert_eq!(format_cpulist(&[]), "");
    }
}
