//! Virtual CPUs: setvcpus and vcpucount.

use virtplane_proto::v1 as pb;

use super::{Ctx, domain_ref};
use crate::cli::{SetvcpusArgs, VcpucountArgs};
use crate::error::Error;
use crate::view::VcpuCount;

/// The SetVcpus request for virsh's setvcpus flags (`--current` = neither live nor config).
pub fn setvcpus_request(a: &SetvcpusArgs) -> pb::SetVcpusRequest {
    pb::SetVcpusRequest {
        domain: domain_ref(&a.domain),
        count: a.count,
        flags: Some(a.impact.modify_flags()),
        maximum: a.maximum,
        guest: a.guest,
        hotpluggable: a.hotpluggable,
    }
}

pub async fn setvcpus(ctx: &mut Ctx, a: SetvcpusArgs) -> Result<(), Error> {
    let mut client = ctx.conn.domains();
    let req = setvcpus_request(&a);
    ctx.conn
        .unary(client.set_vcpus(ctx.conn.request(req)))
        .await?;
    // virsh prints nothing on success; -o json still gets a result object.
    if ctx.out.is_table() {
        Ok(())
    } else {
        super::report_action(ctx, &a.domain, "vcpus_set", String::new())
    }
}

/// One count virsh's vcpucount table shows: (kind, scope, request).
type Row = (&'static str, &'static str, pb::GetVcpuCountRequest);

/// The four reads of the no-flag table, in virsh's order.
pub fn table_requests(domain: &str) -> Vec<Row> {
    let req = |maximum: bool, live: bool| pb::GetVcpuCountRequest {
        domain: domain_ref(domain),
        flags: Some(pb::ModifyFlags {
            live,
            config: !live,
        }),
        maximum,
        guest: false,
    };
    vec![
        ("maximum", "config", req(true, false)),
        ("maximum", "live", req(true, true)),
        ("current", "config", req(false, false)),
        ("current", "live", req(false, true)),
    ]
}

/// The one read that vcpucount's flags ask for; `None` when no flag is given (the table).
pub fn single_request(a: &VcpucountArgs) -> Option<pb::GetVcpuCountRequest> {
    let any = a.maximum || a.active || a.live || a.config || a.current || a.guest;
    if !any {
        return None;
    }
    Some(pb::GetVcpuCountRequest {
        domain: domain_ref(&a.domain),
        flags: Some(pb::ModifyFlags {
            live: a.live,
            config: a.config,
        }),
        maximum: a.maximum,
        guest: a.guest,
    })
}

pub async fn vcpucount(ctx: &mut Ctx, a: VcpucountArgs) -> Result<(), Error> {
    let mut client = ctx.conn.domains();
    if let Some(req) = single_request(&a) {
        let resp = ctx
            .conn
            .unary(client.get_vcpu_count(ctx.conn.request(req)))
            .await?;
        if !ctx.out.is_table() {
            return ctx.out.data(&VcpuCount {
                kind: if a.maximum { "maximum" } else { "current" },
                scope: None,
                count: resp.count,
            });
        }
        return ctx.out.line(resp.count);
    }
    let mut rows = Vec::new();
    for (kind, scope, req) in table_requests(&a.domain) {
        match ctx
            .conn
            .unary(client.get_vcpu_count(ctx.conn.request(req)))
            .await
        {
            Ok(resp) => rows.push(VcpuCount {
                kind,
                scope: Some(scope),
                count: resp.count,
            }),
            // "domain is not running" for the live rows of a shut-off domain, or "no
            // persistent config" for the config rows of a transient one: virsh leaves such
            // rows out rather than failing the whole table.
            Err(e) if e.code() == Some(tonic::Code::FailedPrecondition) => {}
            Err(e) => return Err(e),
        }
    }
    if !ctx.out.is_table() {
        return ctx.out.data(&rows);
    }
    ctx.out.raw(&render_table(&rows))
}

/// virsh's `%-12s %-12s %3d` lines.
pub fn render_table(rows: &[VcpuCount]) -> String {
    rows.iter()
        .map(|r| {
            format!(
                "{:<12} {:<12} {:>3}\n",
                r.kind,
                r.scope.unwrap_or(""),
                r.count
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn cmd(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("virtctl").chain(args.iter().copied()))
            .unwrap()
            .command
    }

    fn setvcpus(args: &[&str]) -> pb::SetVcpusRequest {
        match cmd(args) {
            Command::Setvcpus(a) => setvcpus_request(&a),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn setvcpus_flags_map_to_modify_flags() {
        let r = setvcpus(&["setvcpus", "web", "4", "--config", "--maximum"]);
        assert_eq!(r.count, 4);
        assert!(r.maximum);
        assert_eq!(
            r.flags,
            Some(pb::ModifyFlags {
                live: false,
                config: true
            })
        );
        let r = setvcpus(&["setvcpus", "web", "2", "--live", "--config"]);
        assert_eq!(
            r.flags,
            Some(pb::ModifyFlags {
                live: true,
                config: true
            })
        );
        // --current and no flag both mean "neither": the server picks live or config.
        for args in [
            &["setvcpus", "web", "2", "--current"][..],
            &["setvcpus", "web", "2"][..],
        ] {
            let r = setvcpus(args);
            assert_eq!(r.flags, Some(pb::ModifyFlags::default()));
            assert!(!r.maximum && !r.guest && !r.hotpluggable);
        }
        let r = setvcpus(&[
            "setvcpus",
            "web",
            "3",
            "--live",
            "--guest",
            "--hotpluggable",
        ]);
        assert!(r.guest && r.hotpluggable);
        assert_eq!(
            r.domain.unwrap().id,
            Some(pb::domain_ref::Id::Name("web".into()))
        );
    }

    #[test]
    fn vcpucount_flags() {
        let single = |args: &[&str]| match cmd(args) {
            Command::Vcpucount(a) => single_request(&a),
            other => panic!("{other:?}"),
        };
        assert_eq!(single(&["vcpucount", "web"]), None);
        let r = single(&["vcpucount", "web", "--maximum", "--config"]).unwrap();
        assert!(r.maximum);
        assert_eq!(
            r.flags,
            Some(pb::ModifyFlags {
                live: false,
                config: true
            })
        );
        let r = single(&["vcpucount", "web", "--active", "--live"]).unwrap();
        assert!(!r.maximum);
        assert_eq!(
            r.flags,
            Some(pb::ModifyFlags {
                live: true,
                config: false
            })
        );
        let r = single(&["vcpucount", "web", "--guest"]).unwrap();
        assert!(r.guest);
    }

    #[test]
    fn table_order_and_format() {
        let reqs = table_requests("web");
        let shape: Vec<_> = reqs
            .iter()
            .map(|(k, s, r)| (*k, *s, r.maximum, r.flags.unwrap().live))
            .collect();
        assert_eq!(
            shape,
            [
                ("maximum", "config", true, false),
                ("maximum", "live", true, true),
                ("current", "config", false, false),
                ("current", "live", false, true),
            ]
        );
        let rows = [
            VcpuCount {
                kind: "maximum",
                scope: Some("config"),
                count: 4,
            },
            VcpuCount {
                kind: "current",
                scope: Some("config"),
                count: 2,
            },
        ];
        assert_eq!(
            render_table(&rows),
            "maximum      config         4\ncurrent      config         2\n"
        );
    }
}
