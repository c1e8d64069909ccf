//! Golden files for the renderers: `data/render/NAME.xml` must render to `NAME.conf`,
//! `NAME.hostsfile`, `NAME.addnhosts` (dnsmasq; absent when the network runs none or names
//! no such file) and `NAME.nft` (the network's nftables table; absent when it has no
//! bridge of ours). `UPDATE_GOLDEN=1 cargo test -p virtplane-network --test render_golden`
//! rewrites them; review the diff.
//!
//! The goldens are also checked by the real tools: `nft -c -f` (check mode: parsed and
//! validated by the kernel, nothing committed) and `dnsmasq --test`, each skipped with a
//! printed reason only when the tool is not installed. And the dnsmasq renderer is compared
//! with libvirt's own expected configurations (tests/networkxml2confdata): over the copy in
//! data/libvirt by default, over a whole libvirt tree with
//!
//! ```text
//! LIBVIRT_NETWORK_CORPUS=/path/to/libvirt-9.0.0/tests \
//!   cargo test -p virtplane-network --test render_golden -- --ignored --nocapture
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use virtplane_network::host::nft::{Family, Table, check_ruleset};
use virtplane_network::render::{dnsmasq, nft};
use virtplane_network::xml::{NetworkDef, parse_network};

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/render")
}

fn inputs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    v.sort();
    v
}

fn load(path: &Path) -> NetworkDef {
    let text = std::fs::read_to_string(path).unwrap();
    parse_network(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The files a network renders to, by extension.
fn render(def: &NetworkDef) -> Vec<(&'static str, Option<String>)> {
    let paths = dnsmasq::DnsmasqPaths::in_dir(Path::new("/run/virtplane/network"), &def.name);
    let bridge = def.bridge_name().expect("goldens name their bridge");
    let conf = dnsmasq::needs_dnsmasq(def).then(|| dnsmasq::render(def, &paths).unwrap());
    let ruleset = nft::needs_firewall(def)
        .then(|| nft::render(def, bridge, &nft::table_name(&def.name)).unwrap());
    vec![
        ("conf", conf.as_ref().map(|c| c.conf.clone())),
        ("hostsfile", conf.as_ref().and_then(|c| c.hosts.clone())),
        (
            "addnhosts",
            conf.as_ref().and_then(|c| c.addn_hosts.clone()),
        ),
        ("nft", ruleset),
    ]
}

#[test]
fn golden_outputs() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let inputs = inputs();
    assert!(
        inputs.len() >= 10,
        "golden inputs missing in {}",
        data().display()
    );
    let mut failed = Vec::new();
    for xml in &inputs {
        let def = load(xml);
        for (ext, got) in render(&def) {
            let golden = xml.with_extension(ext);
            if update {
                match &got {
                    Some(text) => std::fs::write(&golden, text).unwrap(),
                    None => {
                        let _ = std::fs::remove_file(&golden);
                    }
                }
                continue;
            }
            let want = std::fs::read_to_string(&golden).ok();
            if got != want {
                eprintln!(
                    "--- {}\n{}",
                    golden.display(),
                    got.as_deref().unwrap_or("(none)")
                );
                failed.push(golden.display().to_string());
            }
        }
    }
    assert!(
        failed.is_empty(),
        "renders differ (UPDATE_GOLDEN=1 regenerates; review the diff): {failed:?}"
    );
}

fn goldens(ext: &str) -> Vec<PathBuf> {
    let v: Vec<PathBuf> = inputs()
        .iter()
        .map(|x| x.with_extension(ext))
        .filter(|p| p.exists())
        .collect();
    assert!(!v.is_empty(), "no .{ext} goldens");
    v
}

fn installed(tool: &str) -> bool {
    match Command::new(tool).arg("--version").output() {
        Ok(_) => true,
        Err(e) => {
            println!("skipped: `{tool}` cannot be run ({e}); apt-get install {tool}");
            false
        }
    }
}

/// Every golden ruleset is accepted by the kernel (`nft -c`: check only, nothing is
/// committed) and by the host module's own-tables-only check.
#[test]
fn nft_goldens_load() {
    for path in goldens("nft") {
        let def = load(&path.with_extension("xml"));
        let table = Table::new(Family::Inet, &nft::table_name(&def.name)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        check_ruleset(&[table], &text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if !installed("nft") {
            return;
        }
        let out = Command::new("nft")
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nft -c -f {}: {}{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every golden configuration passes `dnsmasq --test` (its own syntax check).
#[test]
fn dnsmasq_goldens_pass_dnsmasq_test() {
    if !installed("dnsmasq") {
        return;
    }
    for path in goldens("conf") {
        let out = Command::new("dnsmasq")
            .arg("--test")
            .arg(format!("--conf-file={}", path.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dnsmasq --test --conf-file={}: {}{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Our lines that libvirt's configuration does not have, on purpose (see render::dnsmasq).
fn ours_only(line: &str) -> bool {
    line == "no-hosts" || line.starts_with("pid-file=") || line.starts_with("dhcp-leasefile=")
}

/// Documents whose libvirt configuration holds `<dnsmasq:options>` passthrough, which we do
/// not render.
const PASSTHROUGH: &[&str] = &["dnsmasq-options"];

/// Renders every networkxml2confdata/NAME.xml in `dir` and compares with libvirt's
/// NAME.conf and NAME.hostsfile (comments and our own lines aside); returns how many
/// matched, and the differences.
fn compare_with_libvirt(dir: &Path) -> (usize, Vec<String>) {
    let mut same = 0;
    let mut differ = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    for xml in files {
        let name = xml.file_stem().unwrap().to_string_lossy().into_owned();
        if PASSTHROUGH.contains(&name.as_str()) {
            continue;
        }
        let def = load(&xml);
        // libvirt XML-escapes the name in its file names (virBufferEscapeString); the
        // paths are the caller's choice, so mirror it.
        let stem = def
            .name
            .replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('\'', "&apos;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let paths = dnsmasq::DnsmasqPaths::in_dir(Path::new("/var/lib/libvirt/dnsmasq"), &stem);
        let cfg = dnsmasq::render(&def, &paths).unwrap_or_else(|e| panic!("{name}: {e}"));
        let strip = |text: &str, ours: bool| -> Vec<String> {
            text.lines()
                .filter(|l| !(l.starts_with('#') || (ours && ours_only(l))))
                .map(str::to_string)
                .collect()
        };
        let libvirt_conf = std::fs::read_to_string(xml.with_extension("conf")).unwrap();
        let mut problems = Vec::new();
        if strip(&cfg.conf, true) != strip(&libvirt_conf, false) {
            problems.push(format!(
                "conf:\n  ours:    {:?}\n  libvirt: {:?}",
                strip(&cfg.conf, true),
                strip(&libvirt_conf, false)
            ));
        }
        // libvirt's test writes no hosts file when there are no hosts.
        let libvirt_hosts =
            std::fs::read_to_string(xml.with_extension("hostsfile")).unwrap_or_default();
        if cfg.hosts.clone().unwrap_or_default() != libvirt_hosts {
            problems.push(format!("hostsfile: {:?} vs {libvirt_hosts:?}", cfg.hosts));
        }
        if problems.is_empty() {
            same += 1;
        } else {
            differ.push(format!("{name}: {}", problems.join("; ")));
        }
    }
    (same, differ)
}

#[test]
fn dnsmasq_matches_libvirt_on_the_copied_documents() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/libvirt/networkxml2confdata");
    let (same, differ) = compare_with_libvirt(&dir);
    assert!(differ.is_empty(), "{differ:#?}");
    assert!(same >= 8, "only {same} documents compared");
}

#[test]
#[ignore = "needs a libvirt source tree; set LIBVIRT_NETWORK_CORPUS"]
fn dnsmasq_matches_libvirt_on_the_corpus() {
    let root = PathBuf::from(
        std::env::var_os("LIBVIRT_NETWORK_CORPUS")
            .expect("set LIBVIRT_NETWORK_CORPUS to libvirt 9.0's tests directory"),
    );
    let (same, differ) = compare_with_libvirt(&root.join("networkxml2confdata"));
    println!("networkxml2confdata: {same} configurations as libvirt's; differences: {differ:#?}");
    assert!(differ.is_empty(), "{differ:#?}");
    assert!(same >= 26, "only {same}");
}
