//! `domtime`: the guest's clock, read or set through the guest agent, as virsh's
//! (`virsh-domain-monitor.c`): no option prints `Time: SECONDS`, `--pretty` a UTC date;
//! `--now`, `--time` or `--sync` set it and print nothing.

use clap::Args;
use serde::Serialize;
use virtplane_proto::v1 as pb;

use crate::commands::{Ctx, domain_ref, report_action};
use crate::error::Error;
use crate::view::timestamp_utc;

/// `domtime DOMAIN [--now] [--pretty] [--sync] [--time SECONDS]`.
#[derive(Debug, Args)]
pub struct DomtimeArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// Set the guest's clock to this host's time
    #[arg(long, conflicts_with_all = ["time", "sync"])]
    pub now: bool,
    /// Print the time as a date (UTC) rather than seconds since the epoch
    #[arg(long)]
    pub pretty: bool,
    /// Set the guest's clock from its hardware clock (the RTC QEMU keeps)
    #[arg(long, conflicts_with = "time")]
    pub sync: bool,
    /// Set the guest's clock to this many seconds since the epoch
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub time: Option<i64>,
}

#[derive(Debug, Serialize)]
struct TimeView {
    domain: String,
    /// Seconds since the epoch.
    seconds: i64,
    nanos: i32,
    /// The same instant, RFC 3339 in UTC.
    time: Option<String>,
}

pub async fn domtime(ctx: &mut Ctx, a: DomtimeArgs) -> Result<(), Error> {
    let set_to = if a.now {
        Some(Some(host_now()?))
    } else if let Some(seconds) = a.time {
        Some(Some(prost_types::Timestamp { seconds, nanos: 0 }))
    } else if a.sync {
        // Unset: the guest reads its hardware clock.
        Some(None)
    } else {
        None
    };
    let mut client = ctx.conn.guest();
    if let Some(time) = set_to {
        let request = pb::SetGuestTimeRequest {
            domain: domain_ref(&a.domain),
            time,
        };
        ctx.conn
            .unary(client.set_time(ctx.conn.request(request)))
            .await?;
        // virsh says nothing when the time was set.
        if ctx.out.is_table() {
            return Ok(());
        }
        return report_action(ctx, &a.domain, "time_set", String::new());
    }
    let request = pb::GetGuestTimeRequest {
        domain: domain_ref(&a.domain),
    };
    let time = ctx
        .conn
        .unary(client.get_time(ctx.conn.request(request)))
        .await?
        .time
        .ok_or_else(|| Error::Other("the server's answer carried no time".into()))?;
    if !ctx.out.is_table() {
        return ctx.out.data(&TimeView {
            domain: a.domain,
            seconds: time.seconds,
            nanos: time.nanos,
            time: timestamp_utc(&time).map(|t| t.to_rfc3339()),
        });
    }
    ctx.out.line(render_time(&time, a.pretty))
}

/// virsh's line: `Time: 1700000000`, or with `--pretty` `Time: 2023-11-14 22:13:20` (UTC).
pub fn render_time(time: &prost_types::Timestamp, pretty: bool) -> String {
    let pretty_text = pretty
        .then(|| timestamp_utc(time))
        .flatten()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string());
    match pretty_text {
        Some(text) => format!("Time: {text}"),
        None => format!("Time: {}", time.seconds),
    }
}

fn host_now() -> Result<prost_types::Timestamp, Error> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| Error::Other(format!("the host's clock is before 1970: {e}")))?;
    Ok(prost_types::Timestamp {
        seconds: i64::try_from(now.as_secs())
            .map_err(|_| Error::Other("the host's clock is out of range".into()))?,
        nanos: i32::try_from(now.subsec_nanos()).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_lines_like_virsh() {
        let t = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        };
        assert_eq!(render_time(&t, false), "Time: 1700000000");
        assert_eq!(render_time(&t, true), "Time: 2023-11-14 22:13:20");
    }
}
