//! The lifecycle calls the lifecycle and restart benchmarks make, each bounded by a timeout
//! (a hung service must fail the benchmark, not hang it) and with its error named.

use std::future::Future;
use std::time::Duration;

use virtplane_proto::v1::{
    DestroyDomainRequest, DomainState, DomainSummary, GetDomainInfoRequest, ListDomainsRequest,
    ResumeDomainRequest, StartDomainRequest, SuspendDomainRequest,
};

use crate::conn::Client;
use crate::ops::{self, by_name};

/// A start spawns QEMU; a loaded host may take seconds (the driver itself allows 60 s).
pub const START_TIMEOUT: Duration = Duration::from_secs(90);
/// A destroy waits up to 10 s for SIGTERM, then SIGKILLs.
pub const DESTROY_TIMEOUT: Duration = Duration::from_secs(30);
/// Every other call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Awaits `call` for at most `limit`; the error names `what`.
pub async fn bounded<T>(
    what: &str,
    limit: Duration,
    call: impl Future<Output = Result<T, tonic::Status>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(status)) => Err(format!("{what}: {}: {}", status.code(), status.message())),
        Err(_) => Err(format!("{what}: no answer within {limit:?}")),
    }
}

/// Starts `name` (paused if asked); returns the state the service reports.
pub async fn start(client: &mut Client, name: &str, paused: bool) -> Result<DomainState, String> {
    let reply = bounded(
        &format!("start {name}"),
        START_TIMEOUT,
        client.start(StartDomainRequest {
            domain: by_name(name),
            paused,
        }),
    )
    .await?
    .into_inner();
    Ok(reply.domain.map(|d| d.state()).unwrap_or_default())
}

pub async fn suspend(client: &mut Client, name: &str) -> Result<(), String> {
    let request = SuspendDomainRequest {
        domain: by_name(name),
    };
    bounded(
        &format!("suspend {name}"),
        CALL_TIMEOUT,
        client.suspend(request),
    )
    .await?;
    Ok(())
}

pub async fn resume(client: &mut Client, name: &str) -> Result<(), String> {
    let request = ResumeDomainRequest {
        domain: by_name(name),
    };
    bounded(
        &format!("resume {name}"),
        CALL_TIMEOUT,
        client.resume(request),
    )
    .await?;
    Ok(())
}

/// Destroy (not graceful: SIGTERM, then SIGKILL after the grace period).
pub async fn destroy(client: &mut Client, name: &str) -> Result<(), String> {
    let request = DestroyDomainRequest {
        domain: by_name(name),
        graceful: false,
    };
    bounded(
        &format!("destroy {name}"),
        DESTROY_TIMEOUT,
        client.destroy(request),
    )
    .await?;
    Ok(())
}

pub async fn get_info(client: &mut Client, name: &str) -> Result<DomainState, String> {
    let request = GetDomainInfoRequest {
        domain: by_name(name),
    };
    let reply = bounded(
        &format!("get-info {name}"),
        CALL_TIMEOUT,
        client.get_info(request),
    )
    .await?
    .into_inner();
    Ok(reply.domain.map(|d| d.state()).unwrap_or_default())
}

/// Every domain, with its state.
pub async fn list(client: &mut Client) -> Result<Vec<DomainSummary>, String> {
    let reply = bounded(
        "list",
        CALL_TIMEOUT,
        client.list(ListDomainsRequest::default()),
    )
    .await?;
    Ok(reply.into_inner().domains)
}

/// Defines `name` as the minimal domain of `lvbench.dom_xml` with `<domain type>`.
pub async fn define(client: &mut Client, name: &str, domain_type: &str) -> Result<(), String> {
    bounded(
        &format!("define {name}"),
        CALL_TIMEOUT,
        ops::define(client, name, domain_type),
    )
    .await
}

/// Destroys `name` if it is active and undefines it; a missing domain is fine.
pub async fn remove(client: &mut Client, name: &str) -> Result<(), String> {
    let request = GetDomainInfoRequest {
        domain: by_name(name),
    };
    let state = match tokio::time::timeout(CALL_TIMEOUT, client.get_info(request)).await {
        Ok(Ok(reply)) => reply
            .into_inner()
            .domain
            .map(|d| d.state())
            .unwrap_or_default(),
        Ok(Err(status)) if status.code() == tonic::Code::NotFound => return Ok(()),
        Ok(Err(status)) => return Err(format!("get-info {name}: {}", status.message())),
        Err(_) => {
            return Err(format!(
                "get-info {name}: no answer within {CALL_TIMEOUT:?}"
            ));
        }
    };
    if !matches!(state, DomainState::Shutoff | DomainState::Nostate) {
        destroy(client, name).await?;
    }
    bounded(
        &format!("undefine {name}"),
        CALL_TIMEOUT,
        ops::undefine(client, name),
    )
    .await
}
