//! Memory: setmem and setmaxmem (one RPC, SetMemory, with `maximum` telling them apart, as
//! virDomainSetMaxMemory is virDomainSetMemoryFlags with VIR_DOMAIN_MEM_MAXIMUM).

use virtplane_proto::v1 as pb;

use super::{Ctx, domain_ref};
use crate::cli::MemArgs;
use crate::error::Error;

pub fn setmem_request(a: &MemArgs, maximum: bool) -> pb::SetMemoryRequest {
    pb::SetMemoryRequest {
        domain: domain_ref(&a.domain),
        memory_kib: a.size_kib,
        flags: Some(a.impact.modify_flags()),
        maximum,
    }
}

pub async fn setmem(ctx: &mut Ctx, a: MemArgs, maximum: bool) -> Result<(), Error> {
    let mut client = ctx.conn.domains();
    let req = setmem_request(&a, maximum);
    ctx.conn
        .unary(client.set_memory(ctx.conn.request(req)))
        .await?;
    // virsh prints nothing on success; -o json still gets a result object.
    if ctx.out.is_table() {
        Ok(())
    } else {
        let result = if maximum {
            "max_memory_set"
        } else {
            "memory_set"
        };
        super::report_action(ctx, &a.domain, result, String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn req(args: &[&str]) -> pb::SetMemoryRequest {
        let cli =
            Cli::try_parse_from(std::iter::once("virtctl").chain(args.iter().copied())).unwrap();
        match cli.command {
            Command::Setmem(a) => setmem_request(&a, false),
            Command::Setmaxmem(a) => setmem_request(&a, true),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sizes_and_flags() {
        let r = req(&["setmem", "web", "1G", "--config"]);
        assert_eq!(r.memory_kib, 1024 * 1024);
        assert!(!r.maximum);
        assert_eq!(
            r.flags,
            Some(pb::ModifyFlags {
                live: false,
                config: true
            })
        );
        let r = req(&["setmaxmem", "web", "4194304", "--live", "--config"]);
        assert_eq!(r.memory_kib, 4_194_304);
        assert!(r.maximum);
        assert_eq!(
            r.flags,
            Some(pb::ModifyFlags {
                live: true,
                config: true
            })
        );
        let r = req(&["setmem", "web", "512MB", "--current"]);
        assert_eq!(r.memory_kib, 500_000);
        assert_eq!(r.flags, Some(pb::ModifyFlags::default()));
    }
}
