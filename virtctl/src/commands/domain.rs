//! Domain config and information: list, dominfo, domstate, define, undefine, dumpxml,
//! autostart.

use virtplane_proto::v1 as pb;

use super::{Ctx, domain_ref, read_xml, report_action};
use crate::cli::{AutostartArgs, DomainArg, DomstateArgs, DumpxmlArgs, FileArgs, ListArgs};
use crate::error::Error;
use crate::fleet_view::table_with_nodes;
use crate::output::key_values;
use crate::view::{Domain, DomainInfo, DomainStateView, State, Xml, reason_words};

/// The ListDomains filters for virsh's `list` flags.
///
/// As in virsh, the activity group defaults to "active only": `--inactive` switches it to
/// inactive only and `--all` lifts it. The other groups filter only when a flag is given.
pub fn list_request(a: &ListArgs) -> pb::ListDomainsRequest {
    let (active, inactive) = if a.all {
        (false, false)
    } else if a.inactive {
        (false, true)
    } else {
        (true, false)
    };
    pb::ListDomainsRequest {
        active,
        inactive,
        persistent: a.persistent,
        transient: a.transient,
        running: a.state_running,
        paused: a.state_paused,
        shutoff: a.state_shutoff,
        other: a.state_other,
        autostart: a.autostart,
        no_autostart: a.no_autostart,
        page_size: 0,
        page_token: String::new(),
    }
}

pub async fn list(ctx: &mut Ctx, a: ListArgs) -> Result<(), Error> {
    let mut req = list_request(&a);
    let mut client = ctx.conn.domains();
    let mut domains = Vec::new();
    // page_size 0 asks for everything; follow page tokens anyway in case a server pages.
    loop {
        let resp = ctx
            .conn
            .unary(client.list(ctx.conn.request(req.clone())))
            .await?;
        domains.extend(resp.domains.iter().map(Domain::from_proto));
        if resp.next_page_token.is_empty() {
            break;
        }
        req.page_token = resp.next_page_token;
    }
    if !ctx.out.is_table() {
        return ctx.out.data(&domains);
    }
    ctx.out.raw(&render_list(&a, &domains))
}

/// virsh's list output for the given flags.
pub fn render_list(a: &ListArgs, domains: &[Domain]) -> String {
    if a.name || a.uuid {
        let mut out = String::new();
        for d in domains {
            let line = match (a.uuid, a.name) {
                (true, true) => format!("{}  {}", d.uuid, d.name),
                (true, false) => d.uuid.clone(),
                _ => d.name.clone(),
            };
            out.push_str(&line);
            out.push('\n');
        }
        return out;
    }
    let rows: Vec<Vec<String>> = domains
        .iter()
        .map(|d| {
            let mut row = vec![d.id_text(), d.name.clone(), d.state_text().to_string()];
            if a.title {
                row.push(d.title.clone());
            }
            row
        })
        .collect();
    let nodes: Vec<Option<String>> = domains.iter().map(|d| d.node.clone()).collect();
    if a.title {
        table_with_nodes(&["Id", "Name", "State", "Title"], rows, &nodes)
    } else {
        table_with_nodes(&["Id", "Name", "State"], rows, &nodes)
    }
}

async fn get_info(ctx: &Ctx, domain: &str) -> Result<pb::GetDomainInfoResponse, Error> {
    let mut client = ctx.conn.domains();
    let req = pb::GetDomainInfoRequest {
        domain: domain_ref(domain),
    };
    ctx.conn.unary(client.get_info(ctx.conn.request(req))).await
}

pub async fn dominfo(ctx: &mut Ctx, a: DomainArg) -> Result<(), Error> {
    let info = DomainInfo::from_proto(&get_info(ctx, &a.domain).await?);
    if !ctx.out.is_table() {
        return ctx.out.data(&info);
    }
    ctx.out.raw(&render_dominfo(&info))
}

/// virsh's dominfo lines (`%-15s %s`). virtplane has no security driver yet, which virsh
/// shows as model "none", DOI "0".
pub fn render_dominfo(i: &DomainInfo) -> String {
    let d = &i.domain;
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let mut pairs = vec![
        ("Id:", d.id_text()),
        ("Name:", d.name.clone()),
        ("UUID:", d.uuid.clone()),
        ("OS Type:", i.os_type.clone()),
        ("State:", d.state.virsh_word().to_string()),
        ("CPU(s):", i.vcpus.to_string()),
    ];
    // virsh leaves the line out when the domain never ran.
    if i.cpu_time_ns != 0 {
        pairs.push(("CPU time:", format!("{:.1}s", i.cpu_time_ns as f64 / 1e9)));
    }
    pairs.extend([
        ("Max memory:", format!("{} KiB", i.max_memory_kib)),
        ("Used memory:", format!("{} KiB", i.memory_kib)),
        ("Persistent:", yes_no(d.persistent)),
        (
            "Autostart:",
            if d.autostart { "enable" } else { "disable" }.to_string(),
        ),
        ("Managed save:", yes_no(i.managed_save)),
        ("Security model:", "none".to_string()),
        ("Security DOI:", "0".to_string()),
    ]);
    // virtplane's addition, for an active domain only: whether its guest agent is usable.
    if d.id.is_some() {
        pairs.push(("Guest agent:", i.guest_agent.virsh_word().to_string()));
    }
    for (n, why) in i.tainted.iter().enumerate() {
        pairs.push((
            if n == 0 { "Messages:" } else { "" },
            format!("tainted: {why}"),
        ));
    }
    key_values(15, &pairs)
}

pub async fn domstate(ctx: &mut Ctx, a: DomstateArgs) -> Result<(), Error> {
    let info = get_info(ctx, &a.domain).await?;
    let summary = info.domain.unwrap_or_default();
    let state = State::from_proto(summary.state);
    let (reason_virsh, reason_data) = reason_words(summary.reason);
    if !ctx.out.is_table() {
        return ctx.out.data(&DomainStateView {
            state,
            reason: reason_data,
        });
    }
    if a.reason {
        ctx.out
            .line(format!("{} ({reason_virsh})", state.virsh_word()))
    } else {
        ctx.out.line(state.virsh_word())
    }
}

pub async fn define(ctx: &mut Ctx, a: FileArgs) -> Result<(), Error> {
    let xml = read_xml(&a.file)?;
    let mut client = ctx.conn.domains();
    let resp = ctx
        .conn
        .unary(client.define(ctx.conn.request(pb::DefineDomainRequest { xml })))
        .await?;
    let domain = Domain::from_proto(&resp.domain.unwrap_or_default());
    if !ctx.out.is_table() {
        return ctx.out.data(&domain);
    }
    ctx.out
        .line(format!("Domain '{}' defined from {}", domain.name, a.file))
}

pub async fn undefine(ctx: &mut Ctx, a: DomainArg) -> Result<(), Error> {
    let mut client = ctx.conn.domains();
    let req = pb::UndefineDomainRequest {
        domain: domain_ref(&a.domain),
    };
    ctx.conn
        .unary(client.undefine(ctx.conn.request(req)))
        .await?;
    let msg = format!("Domain '{}' has been undefined", a.domain);
    report_action(ctx, &a.domain, "undefined", msg)
}

pub async fn dumpxml(ctx: &mut Ctx, a: DumpxmlArgs) -> Result<(), Error> {
    let mut client = ctx.conn.domains();
    let req = pb::GetDomainXmlRequest {
        domain: domain_ref(&a.domain),
        inactive: a.inactive,
        secure: a.security_info,
    };
    let resp = ctx
        .conn
        .unary(client.get_xml(ctx.conn.request(req)))
        .await?;
    if !ctx.out.is_table() {
        return ctx.out.data(&Xml { xml: resp.xml });
    }
    ctx.out.raw(&resp.xml)?;
    if !resp.xml.ends_with('\n') {
        ctx.out.raw("\n")?;
    }
    Ok(())
}

pub async fn autostart(ctx: &mut Ctx, a: AutostartArgs) -> Result<(), Error> {
    let mut client = ctx.conn.domains();
    let req = pb::SetAutostartRequest {
        domain: domain_ref(&a.domain),
        autostart: !a.disable,
    };
    ctx.conn
        .unary(client.set_autostart(ctx.conn.request(req)))
        .await?;
    if a.disable {
        let msg = format!("Domain '{}' unmarked as autostarted", a.domain);
        report_action(ctx, &a.domain, "autostart_disabled", msg)
    } else {
        let msg = format!("Domain '{}' marked as autostarted", a.domain);
        report_action(ctx, &a.domain, "autostart_enabled", msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn list_args(args: &[&str]) -> ListArgs {
        let cli = Cli::try_parse_from(
            ["virtctl", "list"]
                .iter()
                .copied()
                .chain(args.iter().copied()),
        )
        .unwrap();
        match cli.command {
            Command::List(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn list_defaults_to_active() {
        let r = list_request(&list_args(&[]));
        assert!(r.active && !r.inactive);
        assert_eq!(
            r,
            pb::ListDomainsRequest {
                active: true,
                ..Default::default()
            }
        );
    }

    #[test]
    fn list_all_and_inactive() {
        let r = list_request(&list_args(&["--all"]));
        assert!(!r.active && !r.inactive);
        let r = list_request(&list_args(&["--inactive"]));
        assert!(!r.active && r.inactive);
        let r = list_request(&list_args(&["--all", "--inactive"]));
        assert!(!r.active && !r.inactive);
    }

    #[test]
    fn list_filter_flags() {
        let r = list_request(&list_args(&[
            "--all",
            "--state-running",
            "--state-paused",
            "--state-shutoff",
            "--state-other",
            "--persistent",
            "--transient",
            "--autostart",
            "--no-autostart",
        ]));
        assert_eq!(
            r,
            pb::ListDomainsRequest {
                active: false,
                inactive: false,
                persistent: true,
                transient: true,
                running: true,
                paused: true,
                shutoff: true,
                other: true,
                autostart: true,
                no_autostart: true,
                page_size: 0,
                page_token: String::new(),
            }
        );
    }

    fn dom(id: i32, name: &str, state: pb::DomainState) -> Domain {
        Domain::from_proto(&pb::DomainSummary {
            name: name.into(),
            uuid: format!("uuid-{name}"),
            id,
            state: state as i32,
            title: format!("{name} title"),
            ..Default::default()
        })
    }

    #[test]
    fn list_table_like_virsh() {
        let ds = [
            dom(1, "test", pb::DomainState::Running),
            dom(-1, "web", pb::DomainState::Shutoff),
        ];
        assert_eq!(
            render_list(&list_args(&["--all"]), &ds),
            " Id   Name   State\n\
             -----------------------\n \
             1    test   running\n \
             -    web    shut off\n"
        );
        assert_eq!(render_list(&list_args(&["--name"]), &ds), "test\nweb\n");
        assert_eq!(
            render_list(&list_args(&["--uuid"]), &ds),
            "uuid-test\nuuid-web\n"
        );
        let titled = render_list(&list_args(&["--title"]), &ds);
        assert!(
            titled.starts_with(" Id   Name   State      Title\n"),
            "{titled}"
        );
    }

    #[test]
    fn dominfo_like_virsh() {
        let info = DomainInfo::from_proto(&pb::GetDomainInfoResponse {
            domain: Some(pb::DomainSummary {
                name: "test".into(),
                uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f".into(),
                id: 1,
                state: pb::DomainState::Running as i32,
                reason: pb::StateReason::RunningBooted as i32,
                persistent: true,
                autostart: false,
                title: String::new(),
                ..Default::default()
            }),
            os_type: "hvm".into(),
            max_memory_kib: 8_388_608,
            memory_kib: 2_097_152,
            vcpus: 2,
            cpu_time_ns: 1_234_000_000,
            managed_save: false,
            tainted: vec![],
            guest_agent: pb::GuestAgentState::Connected as i32,
        });
        assert_eq!(
            render_dominfo(&info),
            "Id:             1\n\
             Name:           test\n\
             UUID:           6695eb01-f6a4-8304-79aa-97f2502e193f\n\
             OS Type:        hvm\n\
             State:          running\n\
             CPU(s):         2\n\
             CPU time:       1.2s\n\
             Max memory:     8388608 KiB\n\
             Used memory:    2097152 KiB\n\
             Persistent:     yes\n\
             Autostart:      disable\n\
             Managed save:   no\n\
             Security model: none\n\
             Security DOI:   0\n\
             Guest agent:    connected\n"
        );
        let v = serde_json::to_value(&info).unwrap();
        assert_eq!(v["name"], "test");
        assert_eq!(v["state"], "running");
        assert_eq!(v["reason"], "booted");
        assert_eq!(v["max_memory_kib"], 8_388_608);
        assert_eq!(v["guest_agent"], "connected");

        // Shut off: no agent line.
        let mut off = info.clone();
        off.domain.id = None;
        off.domain.state = crate::view::State::Shutoff;
        off.guest_agent = crate::view::AgentState::None;
        let text = render_dominfo(&off);
        assert!(!text.contains("Guest agent"), "{text}");
        assert!(text.ends_with("Security DOI:   0\n"), "{text}");
    }
}
