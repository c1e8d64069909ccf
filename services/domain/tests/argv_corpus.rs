//! How much of libvirt's own test corpus virtplane accepts: over libvirt 9.0's
//! `tests/qemuxml2argvdata/*.xml`, how many documents define (parse and validate, what
//! `Define` does) and how many of those the QEMU command-line builder translates. The figures
//! and the main refusal reasons are recorded in `docs/xml-compat.md`. Every defined document
//! must also survive a round trip (format, parse back, same model, same text): the XML model
//! loses nothing.
//!
//! ```text
//! LIBVIRT_XML_CORPUS=/path/to/libvirt-9.0.0/tests/qemuxml2argvdata \
//!   cargo test -p virtplane-domain --test argv_corpus -- --ignored --nocapture
//! ```
//!
//! `ARGV_CORPUS_VERBOSE=1` also prints every refused document with its reason, and
//! `ARGV_CORPUS_DUMP=DIR` writes each built command line to `DIR/NAME.args` (one argument a
//! line) for comparison with libvirt's `NAME.x86_64-latest.args`. The floors
//! below are the figures last recorded; a change that lowers one fails here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use virtplane_domain::driver::qemu::argv::{ArgvContext, build};
use virtplane_domain::xml::{DomainDef, FormatOptions, parse_domain};

/// Documents in the corpus (libvirt 9.0): a different count means a different corpus.
const TOTAL: usize = 1070;
/// Floors: the figures recorded in docs/xml-compat.md.
const DEFINED_FLOOR: usize = 1062;
const X86_64_FLOOR: usize = 564;
const ARGV_OK_FLOOR: usize = 239;
const LIBVIRT_ARGV_OK_FLOOR: usize = 228;

/// How many reasons of each kind are printed.
const TOP: usize = 40;

#[test]
#[ignore = "needs a libvirt source tree; set LIBVIRT_XML_CORPUS"]
fn libvirt_corpus_defines_and_builds() {
    let dir = std::env::var_os("LIBVIRT_XML_CORPUS")
        .expect("set LIBVIRT_XML_CORPUS to libvirt 9.0's tests/qemuxml2argvdata");
    let verbose = std::env::var_os("ARGV_CORPUS_VERBOSE").is_some();
    let dump = std::env::var_os("ARGV_CORPUS_DUMP");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    let args_files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".args"))
        .collect();

    let mut defined = 0;
    let mut x86_64 = 0;
    let mut argv_ok = 0;
    // The same among documents libvirt itself turns into a command line (some test its errors).
    let mut libvirt_x86_64 = 0;
    let mut libvirt_argv_ok = 0;
    let mut define_refusals: BTreeMap<String, usize> = BTreeMap::new();
    let mut argv_refusals: BTreeMap<String, usize> = BTreeMap::new();
    // Unknown content of built documents: none may be, since what is not translated is
    // refused rather than dropped.
    let mut ignored: BTreeMap<String, usize> = BTreeMap::new();
    // Defined documents whose formatted form does not read back the same: the XML model
    // must be lossless.
    let mut not_round_tripping: Vec<String> = Vec::new();
    for path in &files {
        let name = path.file_stem().unwrap().to_string_lossy();
        let text = std::fs::read_to_string(path).unwrap();
        let def = match parse_domain(&text) {
            Ok(def) => def,
            Err(e) => {
                if verbose {
                    println!("define  {name}: {e}");
                }
                *define_refusals
                    .entry(normalise(&e.to_string()))
                    .or_default() += 1;
                continue;
            }
        };
        defined += 1;
        if let Err(why) = round_trips(&def) {
            not_round_tripping.push(format!("{name}: {why}"));
        }
        if !is_x86_64(&def) {
            continue;
        }
        x86_64 += 1;
        let libvirt_ok = libvirt_builds(&name, &args_files);
        libvirt_x86_64 += usize::from(libvirt_ok);
        match build(&def, &context(&def)) {
            Ok(cmd) => {
                if let Some(out) = &dump {
                    std::fs::write(
                        Path::new(out).join(format!("{name}.args")),
                        cmd.args.join("\n"),
                    )
                    .unwrap();
                }
                argv_ok += 1;
                libvirt_argv_ok += usize::from(libvirt_ok);
                if verbose && !libvirt_ok {
                    println!("accepted, libvirt refuses  {name}");
                }
                for path in def.unknown_elements() {
                    *ignored.entry(path).or_default() += 1;
                }
            }
            Err(e) => {
                if verbose {
                    println!("argv    {name}: {e}");
                }
                for reason in reasons(&e.to_string()) {
                    *argv_refusals.entry(reason).or_default() += 1;
                }
            }
        }
    }

    println!("documents:                 {}", files.len());
    println!("defined:                   {defined}");
    println!("  x86_64:                  {x86_64}");
    println!("    argv built:            {argv_ok}");
    println!("  x86_64, libvirt builds:  {libvirt_x86_64}");
    println!("    argv built:            {libvirt_argv_ok}");
    print_reasons(
        &format!("argv refused {} x86_64 documents", x86_64 - argv_ok),
        &argv_refusals,
    );
    print_reasons(
        &format!("define refused {} documents", files.len() - defined),
        &define_refusals,
    );
    print_reasons("unknown content in built documents", &ignored);

    assert_eq!(files.len(), TOTAL, "not libvirt 9.0's corpus?");
    assert!(
        not_round_tripping.is_empty(),
        "formatting loses or changes content: {not_round_tripping:#?}"
    );
    assert!(
        ignored.is_empty(),
        "built with content dropped: {ignored:?}"
    );
    assert!(
        defined >= DEFINED_FLOOR,
        "defined {defined} < {DEFINED_FLOOR}"
    );
    assert!(x86_64 >= X86_64_FLOOR, "x86_64 {x86_64} < {X86_64_FLOOR}");
    assert!(argv_ok >= ARGV_OK_FLOOR, "argv {argv_ok} < {ARGV_OK_FLOOR}");
    assert!(
        libvirt_argv_ok >= LIBVIRT_ARGV_OK_FLOOR,
        "argv of libvirt's {libvirt_argv_ok} < {LIBVIRT_ARGV_OK_FLOOR}"
    );
}

/// parse(format(def)) == def, and formatting again gives the same text.
fn round_trips(def: &DomainDef) -> Result<(), String> {
    let options = FormatOptions {
        secure: true,
        live_id: None,
    };
    let text = def.to_xml(&options);
    let again = parse_domain(&text).map_err(|e| format!("does not parse back: {e}"))?;
    if &again != def {
        return Err("parses back different".into());
    }
    if again.to_xml(&options) != text {
        return Err("formatting is not a fixed point".into());
    }
    Ok(())
}

/// Whether libvirt's corpus has a command line for the document `stem` (`STEM.args` or
/// `STEM.VARIANT.args`); the documents without one test libvirt's refusals.
fn libvirt_builds(stem: &str, args_files: &[String]) -> bool {
    args_files.iter().any(|name| {
        name.strip_prefix(stem)
            .and_then(|rest| rest.strip_suffix(".args"))
            .is_some_and(|mid| mid.is_empty() || (mid.starts_with('.') && !mid[1..].contains('.')))
    })
}

/// libvirt's test harness runs a document without an arch as x86_64.
fn is_x86_64(def: &DomainDef) -> bool {
    def.os.arch.as_deref().is_none_or(|a| a == "x86_64")
}

/// Translation only: whether this host could run the guest (KVM, files) is not the question.
fn context(def: &DomainDef) -> ArgvContext {
    ArgvContext {
        emulator: PathBuf::from("/usr/bin/qemu-system-x86_64"),
        run_dir: Path::new("/run/virtplane/domain").join(&def.name),
        kvm_usable: true,
    }
}

fn print_reasons(title: &str, reasons: &BTreeMap<String, usize>) {
    let mut sorted: Vec<(&String, &usize)> = reasons.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    println!(
        "\n{title}; documents per reason ({} reasons):",
        sorted.len()
    );
    for (reason, count) in sorted.iter().take(TOP) {
        println!("{count:5}  {reason}");
    }
    if sorted.len() > TOP {
        let rest: usize = sorted[TOP..].iter().map(|(_, c)| **c).sum();
        println!("{rest:5}  ({} other reasons)", sorted.len() - TOP);
    }
}

/// The reasons in one refusal: the items of a "not understood by the domain XML model" list
/// count one by one (a document with `<audio>` and `<hostdev>` counts for both), anything
/// else is one reason. The builder stops at its first refusal, so a document refused for
/// one reason may have others behind it.
fn reasons(message: &str) -> Vec<String> {
    const PREFIX: &str = "the qemu driver does not support ";
    const SUFFIX: &str = " (not understood by the domain XML model)";
    match message
        .strip_prefix(PREFIX)
        .and_then(|m| m.strip_suffix(SUFFIX))
    {
        Some(list) => list
            .split(", ")
            .map(|item| format!("XML model: {item}"))
            .collect(),
        None => vec![normalise(message)],
    }
}

/// Makes messages about different documents group: the values that name one document's
/// devices (disk names, indexes, paths, numbers) become `…`, the element and attribute names
/// and the values that select a feature stay.
fn normalise(message: &str) -> String {
    let mut out = message.to_string();
    // Which disk or device: `disk 'vda'`, `(disk 'sdb')`.
    for prefix in ["disk '", "domain '", "chardev '", "name '"] {
        out = replace_quoted_after(&out, prefix);
    }
    // Attribute values that identify rather than select.
    for attr in [
        "dev='", "port='", "index='", "slot='", "unit='", "path='", "file='", "name='",
    ] {
        out = replace_quoted_after(&out, attr);
    }
    // Free-standing numbers (sizes, counts).
    let mut result = String::with_capacity(out.len());
    let mut prev_alpha = false;
    let mut chars = out.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() && !prev_alpha {
            while chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                chars.next();
            }
            result.push('N');
            prev_alpha = false;
            continue;
        }
        prev_alpha = c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.';
        result.push(c);
    }
    result
}

/// Replaces the rest of every quoted value that starts with `prefix` by `…`.
fn replace_quoted_after(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let start = at + prefix.len();
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        match tail.find('\'') {
            Some(end) => {
                out.push('…');
                rest = &tail[end..];
            }
            None => {
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}
