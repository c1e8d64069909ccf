//! Power and run state: create, start, shutdown, destroy, reboot, reset, suspend, resume.
//! Each prints virsh's success line.

use virtplane_proto::v1 as pb;

use super::{Ctx, domain_ref, read_xml, report_action};
use crate::cli::{
    CreateArgs, DestroyArgs, DomainArg, PowerArgs, PowerModeArg, ShutdownArgs, StartArgs,
};
use crate::error::Error;
use crate::view::Domain;

/// The proto power mode for `--mode`; none given = the driver's default.
pub fn power_mode(mode: Option<PowerModeArg>) -> pb::PowerMode {
    match mode {
        None => pb::PowerMode::Default,
        Some(PowerModeArg::Acpi) => pb::PowerMode::Acpi,
        Some(PowerModeArg::Agent) => pb::PowerMode::Agent,
    }
}

pub async fn create(ctx: &mut Ctx, a: CreateArgs) -> Result<(), Error> {
    let xml = read_xml(&a.file)?;
    let mut client = ctx.conn.domains();
    let req = pb::CreateDomainRequest {
        xml,
        paused: a.paused,
    };
    let resp = ctx.conn.unary(client.create(ctx.conn.request(req))).await?;
    let domain = Domain::from_proto(&resp.domain.unwrap_or_default());
    if !ctx.out.is_table() {
        return ctx.out.data(&domain);
    }
    ctx.out
        .line(format!("Domain '{}' created from {}", domain.name, a.file))
}

pub async fn start(ctx: &mut Ctx, a: StartArgs) -> Result<(), Error> {
    let mut client = ctx.conn.domains();
    let req = pb::StartDomainRequest {
        domain: domain_ref(&a.domain),
        paused: a.paused,
    };
    let resp = ctx.conn.unary(client.start(ctx.conn.request(req))).await?;
    let domain = Domain::from_proto(&resp.domain.unwrap_or_default());
    if !ctx.out.is_table() {
        return ctx.out.data(&domain);
    }
    // virsh names the domain as the server knows it, also when given a UUID.
    let name = if domain.name.is_empty() {
        a.domain
    } else {
        domain.name
    };
    ctx.out.line(format!("Domain '{name}' started"))
}

pub async fn shutdown(ctx: &mut Ctx, args: ShutdownArgs) -> Result<(), Error> {
    let a = args.power;
    let mut client = ctx.conn.domains();
    let req = pb::ShutdownDomainRequest {
        domain: domain_ref(&a.domain),
        mode: power_mode(a.mode) as i32,
        wait_seconds: args.wait.unwrap_or(0),
    };
    if let Some(wait) = args.wait {
        // The call lasts as long as the wait: give it that, plus the usual deadline.
        ctx.conn.timeout += std::time::Duration::from_secs(wait.into());
    }
    ctx.conn
        .unary(client.shutdown(ctx.conn.request(req)))
        .await?;
    if args.wait.is_some() {
        let msg = format!("Domain '{}' is shut off", a.domain);
        return report_action(ctx, &a.domain, "shut_off", msg);
    }
    let msg = format!("Domain '{}' is being shutdown", a.domain);
    report_action(ctx, &a.domain, "shutting_down", msg)
}

pub async fn destroy(ctx: &mut Ctx, a: DestroyArgs) -> Result<(), Error> {
    let mut client = ctx.conn.domains();
    let req = pb::DestroyDomainRequest {
        domain: domain_ref(&a.domain),
        graceful: a.graceful,
    };
    ctx.conn
        .unary(client.destroy(ctx.conn.request(req)))
        .await?;
    let msg = format!("Domain '{}' destroyed", a.domain);
    report_action(ctx, &a.domain, "destroyed", msg)
}

pub async fn reboot(ctx: &mut Ctx, a: PowerArgs) -> Result<(), Error> {
    let mut client = ctx.conn.domains();
    let req = pb::RebootDomainRequest {
        domain: domain_ref(&a.domain),
        mode: power_mode(a.mode) as i32,
    };
    ctx.conn.unary(client.reboot(ctx.conn.request(req))).await?;
    let msg = format!("Domain '{}' is being rebooted", a.domain);
    report_action(ctx, &a.domain, "rebooting", msg)
}

pub async fn reset(ctx: &mut Ctx, a: DomainArg) -> Result<(), Error> {
    let mut client = ctx.conn.domains();
    let req = pb::ResetDomainRequest {
        domain: domain_ref(&a.domain),
    };
    ctx.conn.unary(client.reset(ctx.conn.request(req))).await?;
    let msg = format!("Domain '{}' was reset", a.domain);
    report_action(ctx, &a.domain, "reset", msg)
}

pub async fn suspend(ctx: &mut Ctx, a: DomainArg) -> Result<(), Error> {
    let mut client = ctx.conn.domains();
    let req = pb::SuspendDomainRequest {
        domain: domain_ref(&a.domain),
    };
    ctx.conn
        .unary(client.suspend(ctx.conn.request(req)))
        .await?;
    let msg = format!("Domain '{}' suspended", a.domain);
    report_action(ctx, &a.domain, "suspended", msg)
}

pub async fn resume(ctx: &mut Ctx, a: DomainArg) -> Result<(), Error> {
    let mut client = ctx.conn.domains();
    let req = pb::ResumeDomainRequest {
        domain: domain_ref(&a.domain),
    };
    ctx.conn.unary(client.resume(ctx.conn.request(req))).await?;
    let msg = format!("Domain '{}' resumed", a.domain);
    report_action(ctx, &a.domain, "resumed", msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_modes() {
        assert_eq!(power_mode(None), pb::PowerMode::Default);
        assert_eq!(power_mode(Some(PowerModeArg::Acpi)), pb::PowerMode::Acpi);
        assert_eq!(power_mode(Some(PowerModeArg::Agent)), pb::PowerMode::Agent);
    }
}
