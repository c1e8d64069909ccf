//! Network XML against libvirt 9.0's own test corpus: `tests/networkxml2xmlin` (parse,
//! round trip), `networkxml2xmlout` (our output must equal libvirt's, compared as trees,
//! where the document is in scope), and `networkxml2xmlin` + `networkxml2xmlupdatein` →
//! `networkxml2xmlupdateout` (`net-update` of `ip-dhcp-host` and `dns-host`, the cases of
//! libvirt's networkxml2xmlupdatetest.c).
//!
//! The default run covers the representative copy in `tests/data/libvirt` (same layout);
//! the whole corpus runs with
//!
//! ```text
//! LIBVIRT_NETWORK_CORPUS=/path/to/libvirt-9.0.0/tests \
//!   cargo test -p virtplane-network --test xml_corpus -- --ignored --nocapture
//! ```
//!
//! The figures are recorded in docs/network-xml-compat.md; the floors below are those
//! figures, so a change that lowers one fails here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use virtplane_network::xml::{
    Element, NetworkDef, Node, UpdateCommand, UpdateSection, apply_update, format_network,
    parse_network,
};

/// Documents in libvirt 9.0's networkxml2xmlin: a different count means another corpus.
const CORPUS_TOTAL: usize = 46;
/// Floors: the figures recorded in docs/network-xml-compat.md.
const CORPUS_PARSED_FLOOR: usize = 40;
const CORPUS_SAME_AS_LIBVIRT_FLOOR: usize = 40;

/// The documents libvirt's networkxml2xmltest.c expects to fail to parse.
const LIBVIRT_PARSE_ERRORS: &[&str] = &[
    "routed-network-no-dns-extra-elements",
    "open-network-with-forward-dev",
    "hostdev-duplicate",
    "passthrough-duplicate",
];

/// Documents libvirt parses (so networkxml2xmltest accepts them) but refuses to define:
/// its bridge driver's `networkValidate` rejects them, and so does our parse, which
/// includes those checks.
const LIBVIRT_DEFINE_ERRORS: &[&str] = &[
    // "Unsupported <ip> element in network local with forward mode='passthrough'"
    "passthrough-pf",
    // "network 'passthrough_001' has forward mode 'passthrough' but lists a device by PCI
    // address in the device pool. This is only supported for networks with forward mode
    // 'hostdev'"
    "passthrough-address-crash",
];

/// One `net-update` case of networkxml2xmlupdatetest.c: name, update element, network,
/// expected output (`None`: must fail), command, section, parent index.
type UpdateCase = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    UpdateCommand,
    UpdateSection,
    Option<usize>,
);

const UPDATE_CASES: &[UpdateCase] = {
    use UpdateCommand::*;
    use UpdateSection::*;
    &[
        (
            "add-host-incomplete",
            "host-incomplete",
            "nat-network",
            None,
            AddLast,
            IpDhcpHost,
            Some(0),
        ),
        (
            "add-host-new-incomplete",
            "host-new-incomplete",
            "nat-network",
            None,
            AddLast,
            IpDhcpHost,
            Some(0),
        ),
        (
            "add-host-existing",
            "host-existing",
            "nat-network",
            None,
            AddLast,
            IpDhcpHost,
            Some(0),
        ),
        (
            "add-host-new",
            "host-new",
            "nat-network",
            Some("nat-network-hosts"),
            AddLast,
            IpDhcpHost,
            Some(0),
        ),
        (
            "modify-host-missing",
            "host-new",
            "nat-network",
            None,
            Modify,
            IpDhcpHost,
            Some(0),
        ),
        (
            "modify-host-incomplete",
            "host-incomplete",
            "nat-network",
            None,
            Modify,
            IpDhcpHost,
            Some(0),
        ),
        (
            "modify-host",
            "host-updated",
            "nat-network",
            Some("nat-network-host-updated"),
            Modify,
            IpDhcpHost,
            Some(0),
        ),
        (
            "delete-host-incomplete",
            "host-incomplete",
            "nat-network",
            Some("nat-network-one-host"),
            Delete,
            IpDhcpHost,
            Some(0),
        ),
        (
            "delete-host-existing",
            "host-existing",
            "nat-network",
            Some("nat-network-one-host"),
            Delete,
            IpDhcpHost,
            Some(0),
        ),
        (
            "delete-host-missing",
            "host-new",
            "nat-network",
            None,
            Delete,
            IpDhcpHost,
            Some(0),
        ),
        (
            "insert-incomplete-host",
            "dns-host-gateway-incomplete",
            "nat-network-dns-hosts",
            None,
            AddFirst,
            DnsHost,
            None,
        ),
        (
            "insert-host",
            "dns-host-pudding",
            "nat-network-dns-hosts",
            Some("nat-network-dns-more-hosts"),
            AddFirst,
            DnsHost,
            None,
        ),
        (
            "delete-missing-unparsable-dns-host",
            "unparsable-dns-host",
            "nat-network",
            None,
            Delete,
            DnsHost,
            None,
        ),
        (
            "delete-dns-host",
            "dns-host-gateway-incomplete",
            "nat-network-dns-hosts",
            Some("nat-network-no-hosts"),
            Delete,
            DnsHost,
            None,
        ),
    ]
};

#[derive(Debug, Default)]
struct Report {
    total: usize,
    parsed: usize,
    /// Parsed documents that libvirt also accepts and whose output equals libvirt's.
    same_as_libvirt: usize,
    /// name → reason, for documents we refuse.
    refused: BTreeMap<String, String>,
    /// name → difference, for documents whose output differs from libvirt's.
    differs: BTreeMap<String, String>,
    /// Documents we accept that libvirt refuses.
    accepted_libvirt_refuses: Vec<String>,
    updates_ok: usize,
    updates_failed: Vec<String>,
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    v.sort();
    v
}

/// Whitespace-only text is indentation, which differs between writers.
fn normalise(el: &Element) -> Element {
    let mut out = Element {
        name: el.name.clone(),
        attrs: el.attrs.clone(),
        children: Vec::new(),
    };
    for n in &el.children {
        match n {
            Node::Element(e) => out.children.push(Node::Element(normalise(e))),
            Node::Text(t) if t.trim().is_empty() => {}
            other => out.children.push(other.clone()),
        }
    }
    out
}

/// Describes the first difference between two trees, or `None`.
fn difference(ours: &Element, theirs: &Element, path: &str) -> Option<String> {
    let here = format!("{path}/{}", ours.name);
    if ours.name != theirs.name {
        return Some(format!(
            "{here}: element <{}> vs libvirt's <{}>",
            ours.name, theirs.name
        ));
    }
    if ours.attrs != theirs.attrs {
        return Some(format!(
            "{here}: attributes {:?} vs libvirt's {:?}",
            ours.attrs, theirs.attrs
        ));
    }
    let (a, b) = (&ours.children, &theirs.children);
    for (x, y) in a.iter().zip(b) {
        match (x, y) {
            (Node::Element(x), Node::Element(y)) => {
                if let Some(d) = difference(x, y, &here) {
                    return Some(d);
                }
            }
            (x, y) if x != y => return Some(format!("{here}: {x:?} vs libvirt's {y:?}")),
            _ => {}
        }
    }
    if a.len() != b.len() {
        return Some(format!(
            "{here}: {} children vs libvirt's {}: {:?}",
            a.len(),
            b.len(),
            if a.len() > b.len() {
                &a[b.len()..]
            } else {
                &b[a.len()..]
            }
        ));
    }
    None
}

fn read_tree(text: &str) -> Element {
    normalise(&virtplane_xml::read_document(text).unwrap())
}

/// The round-trip properties every accepted document must have: parse(format(x)) == x
/// and format is a fixed point.
fn assert_round_trip(name: &str, def: &NetworkDef) -> String {
    let text = format_network(def);
    let again = parse_network(&text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
    assert_eq!(&again, def, "{name}: parse(format(x)) differs\n{text}");
    assert_eq!(
        format_network(&again),
        text,
        "{name}: format is not a fixed point"
    );
    text
}

fn run_corpus(root: &Path, verbose: bool) -> Report {
    let mut r = Report::default();
    for path in files(&root.join("networkxml2xmlin")) {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        r.total += 1;
        let libvirt_ok = !LIBVIRT_PARSE_ERRORS.contains(&name.as_str());
        let def = match parse_network(&text) {
            Ok(def) => def,
            Err(e) => {
                if verbose {
                    println!("refused {name}: {e}");
                }
                r.refused.insert(name, e.to_string());
                continue;
            }
        };
        r.parsed += 1;
        if !libvirt_ok {
            r.accepted_libvirt_refuses.push(name.clone());
        }
        let ours = assert_round_trip(&name, &def);
        let out = root.join("networkxml2xmlout").join(format!("{name}.xml"));
        if let Ok(theirs) = std::fs::read_to_string(&out) {
            match difference(&read_tree(&ours), &read_tree(&theirs), "") {
                None => r.same_as_libvirt += 1,
                Some(d) => {
                    if verbose {
                        println!("differs {name}: {d}");
                    }
                    r.differs.insert(name, d);
                }
            }
        }
    }
    for (case, update, net, out, cmd, section, index) in UPDATE_CASES {
        let net_path = root.join("networkxml2xmlin").join(format!("{net}.xml"));
        let Ok(net_text) = std::fs::read_to_string(&net_path) else {
            continue;
        };
        let def = parse_network(&net_text).unwrap_or_else(|e| panic!("{net}: {e}"));
        let update_text = std::fs::read_to_string(
            root.join("networkxml2xmlupdatein")
                .join(format!("{update}.xml")),
        )
        .unwrap();
        let result = apply_update(&def, *cmd, *section, *index, &update_text);
        let outcome = match (out, result) {
            (None, Err(e)) => {
                if verbose {
                    println!("update {case}: refused as libvirt does: {e}");
                }
                Ok(())
            }
            (None, Ok(_)) => Err("accepted; libvirt refuses it".to_string()),
            (Some(_), Err(e)) => Err(format!("refused: {e}")),
            (Some(out), Ok(new)) => {
                let theirs = std::fs::read_to_string(
                    root.join("networkxml2xmlupdateout")
                        .join(format!("{out}.xml")),
                )
                .unwrap();
                let ours = assert_round_trip(case, &new);
                match difference(&read_tree(&ours), &read_tree(&theirs), "") {
                    None => Ok(()),
                    Some(d) => Err(d),
                }
            }
        };
        match outcome {
            Ok(()) => r.updates_ok += 1,
            Err(e) => r.updates_failed.push(format!("{case}: {e}")),
        }
    }
    r
}

fn print(r: &Report) {
    println!(
        "networkxml2xmlin: {} documents, {} parse and round-trip, {} formatted exactly as \
         libvirt's networkxml2xmlout",
        r.total, r.parsed, r.same_as_libvirt
    );
    for (n, why) in &r.refused {
        println!("  refused {n}: {why}");
    }
    for (n, d) in &r.differs {
        println!("  differs {n}: {d}");
    }
    println!(
        "net-update cases: {} as libvirt, failed: {:?}",
        r.updates_ok, r.updates_failed
    );
}

/// Every refusal is one libvirt makes too, or a known one.
fn assert_refusals_expected(r: &Report) {
    for (n, why) in &r.refused {
        assert!(
            LIBVIRT_PARSE_ERRORS.contains(&n.as_str())
                || LIBVIRT_DEFINE_ERRORS.contains(&n.as_str()),
            "{n} refused but libvirt accepts it: {why}"
        );
    }
    assert!(
        r.accepted_libvirt_refuses.is_empty(),
        "accepted what libvirt refuses: {:?}",
        r.accepted_libvirt_refuses
    );
}

#[test]
fn representative_libvirt_documents() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/libvirt");
    let r = run_corpus(&root, false);
    print(&r);
    assert!(r.total >= 10, "only {} documents", r.total);
    assert_refusals_expected(&r);
    assert!(
        r.differs.is_empty(),
        "output differs from libvirt's: {:?}",
        r.differs
    );
    assert!(r.updates_failed.is_empty(), "{:?}", r.updates_failed);
    assert_eq!(r.updates_ok, UPDATE_CASES.len());
}

#[test]
#[ignore = "needs a libvirt source tree; set LIBVIRT_NETWORK_CORPUS"]
fn libvirt_corpus() {
    let root = PathBuf::from(
        std::env::var_os("LIBVIRT_NETWORK_CORPUS")
            .expect("set LIBVIRT_NETWORK_CORPUS to libvirt 9.0's tests directory"),
    );
    let r = run_corpus(&root, std::env::var_os("NETWORK_CORPUS_VERBOSE").is_some());
    print(&r);
    assert_eq!(r.total, CORPUS_TOTAL, "a different corpus");
    assert_refusals_expected(&r);
    assert!(
        r.parsed >= CORPUS_PARSED_FLOOR,
        "parsed {} < {CORPUS_PARSED_FLOOR}",
        r.parsed
    );
    assert!(
        r.same_as_libvirt >= CORPUS_SAME_AS_LIBVIRT_FLOOR,
        "same as libvirt {} < {CORPUS_SAME_AS_LIBVIRT_FLOOR}",
        r.same_as_libvirt
    );
    assert!(r.updates_failed.is_empty(), "{:?}", r.updates_failed);
    assert_eq!(r.updates_ok, UPDATE_CASES.len());
    // The inputs of libvirt's dnsmasq and firewall tests are all valid networks.
    for dir in ["networkxml2confdata", "networkxml2firewalldata"] {
        let inputs = files(&root.join(dir));
        for path in &inputs {
            let text = std::fs::read_to_string(path).unwrap();
            let def = parse_network(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_round_trip(&path.display().to_string(), &def);
        }
        println!("{dir}: all {} networks parse and round-trip", inputs.len());
    }
}
