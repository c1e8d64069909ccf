//! Unit tests of the renderers' decisions and refusals; the outputs themselves are golden
//! files (tests/render_golden.rs).

use std::path::Path;

use super::{RenderError, dnsmasq, nft};
use crate::xml::{NetworkDef, assign_bridge_name, parse_network};

fn net(body: &str) -> NetworkDef {
    parse_network(&format!("<network><name>n</name>{body}</network>")).unwrap()
}

fn paths() -> dnsmasq::DnsmasqPaths {
    dnsmasq::DnsmasqPaths::in_dir(Path::new("/run/x"), "n")
}

#[test]
fn table_names_are_distinct_and_safe() {
    assert_eq!(nft::table_name("default"), "virtplane_default");
    assert_eq!(nft::table_name("lab_2"), "virtplane_lab_2");
    let hashed = nft::table_name("my-net");
    assert!(hashed.starts_with("virtplane_x_") && hashed.len() == "virtplane_x_".len() + 16);
    assert_ne!(nft::table_name("my-net"), nft::table_name("my.net"));
    // A plain name can never look like a hashed one.
    assert!(nft::table_name("x_0123456789abcdef").starts_with("virtplane_x_"));
    assert_ne!(
        nft::table_name("x_0123456789abcdef"),
        "virtplane_x_0123456789abcdef"
    );
    let long = "a".repeat(41);
    assert!(nft::table_name(&long).starts_with("virtplane_x_"));
}

#[test]
fn what_runs_depends_on_the_mode() {
    let nat = net("<forward mode='nat'/><bridge name='vb0'/><ip address='10.0.0.1' prefix='24'/>");
    assert!(dnsmasq::needs_dnsmasq(&nat));
    assert!(nft::needs_firewall(&nat));
    let open =
        net("<forward mode='open'/><bridge name='vb0'/><ip address='10.0.0.1' prefix='24'/>");
    assert!(!nft::needs_firewall(&open));
    let ruleset = nft::render(&open, "vb0", "virtplane_n").unwrap();
    assert!(ruleset.contains("table inet virtplane_n {\n}"), "{ruleset}");
    // No address: nothing for dnsmasq to serve.
    assert!(!dnsmasq::needs_dnsmasq(&net("<bridge name='vb0'/>")));
    // DNS off and no DHCP: no dnsmasq.
    let quiet = net("<bridge name='vb0'/><dns enable='no'/><ip address='10.0.0.1' prefix='24'/>");
    assert!(!dnsmasq::needs_dnsmasq(&quiet));
    // A host bridge is not ours.
    let bridged = net("<forward mode='bridge'/><bridge name='br0'/>");
    assert!(!dnsmasq::needs_dnsmasq(&bridged));
    assert!(!nft::needs_firewall(&bridged));
    assert!(matches!(
        nft::render(&bridged, "br0", "virtplane_n"),
        Err(RenderError::NotOurs { .. })
    ));
}

#[test]
fn refusals_name_the_problem() {
    let mut def = net("<ip address='10.0.0.1' prefix='24'/>");
    assert_eq!(
        dnsmasq::render(&def, &paths()).unwrap_err(),
        RenderError::NoBridge("n".into())
    );
    assign_bridge_name(&mut def, &|_| false);
    assert!(
        dnsmasq::render(&def, &paths())
            .unwrap()
            .conf
            .contains("interface=virbr0\n")
    );
    let e = nft::render(&def, "vb\"0", "virtplane_n").unwrap_err();
    assert!(
        e.to_string()
            .contains("bridge name 'vb\\\"0' cannot be written into an nftables ruleset"),
        "{e}"
    );
    let e = nft::render(&def, "vb0", "filter").unwrap_err();
    assert!(e.to_string().contains("table name 'filter'"), "{e}");
    let bad_path = dnsmasq::DnsmasqPaths::in_dir(Path::new("/run/x\ny"), "n");
    let e = dnsmasq::render(&def, &bad_path).unwrap_err();
    assert!(matches!(e, RenderError::Unsafe { .. }), "{e:?}");
    // libvirt cannot make a PTR zone of a /20 either.
    let ptr = net("<bridge name='vb0'/><ip address='10.0.0.1' prefix='20' localPtr='yes'/>");
    let e = dnsmasq::render(&ptr, &paths()).unwrap_err();
    assert_eq!(
        e,
        RenderError::PtrDomain {
            network: "n".into(),
            family: "IPv4",
            prefix: 20
        }
    );
}

#[test]
fn hosts_files_follow_the_configuration() {
    let def = net(
        "<bridge name='vb0'/><dns enable='no'/><ip address='10.0.0.1' prefix='24'><dhcp>\
         <host mac='52:54:00:00:00:01' ip='10.0.0.5'/></dhcp></ip>",
    );
    let cfg = dnsmasq::render(&def, &paths()).unwrap();
    assert!(cfg.conf.contains("port=0\n"), "{}", cfg.conf);
    assert!(
        cfg.conf.contains("dhcp-range=10.0.0.1,static\n"),
        "{}",
        cfg.conf
    );
    assert!(!cfg.conf.contains("addn-hosts"), "{}", cfg.conf);
    assert_eq!(cfg.hosts.as_deref(), Some("52:54:00:00:00:01,10.0.0.5\n"));
    assert_eq!(cfg.addn_hosts, None);
    let files = cfg.hosts_files(&paths());
    assert_eq!(
        files,
        [(
            Path::new("/run/x/n.hostsfile").to_path_buf(),
            "52:54:00:00:00:01,10.0.0.5\n".to_string()
        )]
    );
}
