//! The measured operations: each is what one libvirt-python call sequence in `02_rpc.py` does.

use virtplane_proto::v1::{
    DefineDomainRequest, DomainRef, GetDomainInfoRequest, ListDomainsRequest, LookupDomainRequest,
    UndefineDomainRequest, domain_ref,
};

use crate::conn::Client;

/// Prefix of every domain the benchmark creates; `cleanup` removes all of them.
pub const PREFIX: &str = "bench-";
/// Prefix of the short-lived domains of define-undefine.
pub const TMP_PREFIX: &str = "bench-tmp-";

/// One measured operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Lookup + GetInfo by name (2 RPCs): `conn.lookupByName(name).info()`.
    LookupInfo,
    /// GetInfo by name (1 RPC): the same information in virtplane's API.
    Info,
    /// List every domain (1 RPC): `conn.listAllDomains()`.
    List,
    /// Define a new domain, then Undefine it (2 durable RPCs): `conn.defineXML(xml).undefine()`.
    DefineUndefine,
}

impl Op {
    /// The scenario name printed in the JSON lines.
    pub fn name(self) -> &'static str {
        match self {
            Op::LookupInfo => "lookup-info",
            Op::Info => "info",
            Op::List => "list",
            Op::DefineUndefine => "define-undefine",
        }
    }
}

/// What an operation needs besides its client: the populated names and, for
/// define-undefine, a prefix unique to this trial.
#[derive(Debug)]
pub struct OpContext {
    pub names: Vec<String>,
    pub tmp_prefix: String,
    pub domain_type: String,
}

/// A reference to a domain by name.
pub fn by_name(name: &str) -> Option<DomainRef> {
    Some(DomainRef {
        id: Some(domain_ref::Id::Name(name.to_owned())),
    })
}

/// The minimal domain of `lvbench.dom_xml`: 1 vCPU, 64 MiB, no disks, no NICs.
pub fn domain_xml(name: &str, domain_type: &str) -> String {
    format!(
        "<domain type='{domain_type}'>\n  <name>{name}</name>\n  <memory unit='MiB'>64</memory>\n  \
         <vcpu>1</vcpu>\n  <os><type arch='x86_64' machine='pc'>hvm</type></os>\n  \
         <on_poweroff>destroy</on_poweroff>\n  <devices>\n    \
         <emulator>/usr/bin/qemu-system-x86_64</emulator>\n    \
         <controller type='usb' model='none'/>\n    <memballoon model='none'/>\n  \
         </devices>\n</domain>"
    )
}

/// Defines `name` from [`domain_xml`].
pub async fn define(
    client: &mut Client,
    name: &str,
    domain_type: &str,
) -> Result<(), tonic::Status> {
    let xml = domain_xml(name, domain_type);
    client.define(DefineDomainRequest { xml }).await?;
    Ok(())
}

/// Undefines `name`.
pub async fn undefine(client: &mut Client, name: &str) -> Result<(), tonic::Status> {
    client
        .undefine(UndefineDomainRequest {
            domain: by_name(name),
        })
        .await?;
    Ok(())
}

/// Runs `op` once as client `tid`, iteration `k` (which picks the domain, as `02_rpc.py` does).
pub async fn run(
    op: Op,
    client: &mut Client,
    ctx: &OpContext,
    tid: usize,
    k: usize,
) -> Result<(), tonic::Status> {
    match op {
        Op::LookupInfo | Op::Info => {
            let name = &ctx.names[(tid * 7919 + k) % ctx.names.len()];
            let mut domain = by_name(name);
            if op == Op::LookupInfo {
                let found = client
                    .lookup(LookupDomainRequest { domain })
                    .await?
                    .into_inner();
                // Like a virDomainPtr, the looked-up handle names the domain for the next call.
                let summary = found.domain.unwrap_or_default();
                domain = by_name(&summary.name);
            }
            client.get_info(GetDomainInfoRequest { domain }).await?;
        }
        Op::List => {
            client.list(ListDomainsRequest::default()).await?;
        }
        Op::DefineUndefine => {
            let name = format!("{}{tid}-{k}", ctx.tmp_prefix);
            define(client, &name, &ctx.domain_type).await?;
            undefine(client, &name).await?;
        }
    }
    Ok(())
}
