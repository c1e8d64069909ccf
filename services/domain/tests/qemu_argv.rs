//! Golden files for the QEMU command line: `data/argv/NAME.xml` must translate to
//! `data/argv/NAME.args` (one argument per line; `#` lines describe the program and
//! environment). `UPDATE_GOLDEN=1 cargo test --test qemu_argv` rewrites the `.args` files;
//! review the diff.

use std::path::{Path, PathBuf};

use virtplane_domain::driver::qemu::argv::{ArgvContext, build};
use virtplane_domain::xml::parse_domain;

fn render(xml_path: &Path) -> String {
    let name = xml_path.file_stem().unwrap().to_str().unwrap();
    let xml = std::fs::read_to_string(xml_path).unwrap();
    let def = parse_domain(&xml).unwrap_or_else(|e| panic!("{name}: {e}"));
    let ctx = ArgvContext {
        emulator: PathBuf::from("/usr/bin/qemu-system-x86_64"),
        run_dir: PathBuf::from(format!("/run/virtplane/domain/{name}")),
        kvm_usable: true,
    };
    let cmd = build(&def, &ctx).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut out = format!("# program: {}\n", cmd.program.display());
    out.push_str(&format!("# qmp: {}\n", cmd.qmp_socket.display()));
    for (k, v) in &cmd.env {
        out.push_str(&format!("# env: {k}={v}\n"));
    }
    for a in &cmd.args {
        assert!(!a.contains('\n'), "{name}: argument with a newline: {a:?}");
        out.push_str(a);
        out.push('\n');
    }
    out
}

#[test]
fn golden_command_lines() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/argv");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= 12,
        "golden inputs missing in {}",
        dir.display()
    );
    let mut failed = Vec::new();
    for xml in &inputs {
        let got = render(xml);
        let golden = xml.with_extension("args");
        if update {
            std::fs::write(&golden, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            eprintln!("--- {}\n{got}", golden.display());
            failed.push(golden.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "command lines differ (UPDATE_GOLDEN=1 regenerates; review the diff): {failed:?}"
    );
}

#[test]
fn vnc_password_stays_off_the_command_line() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/argv");
    let out = render(&dir.join("vnc-password.xml"));
    assert!(!out.contains("s3cret-Pa55"), "{out}");
    assert!(out.contains("password=on"));
}
