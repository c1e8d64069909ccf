//! Domain-level unit tests; per-concern tests live next to their code.

use super::*;

const SECURE: FormatOptions = FormatOptions {
    secure: true,
    live_id: None,
};

fn doc(body: &str) -> String {
    format!(
        "<domain type='kvm'><name>vm</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\
         <memory>1024</memory><os><type>hvm</type></os>{body}</domain>"
    )
}

/// Parses, checks the round trip and returns the formatted text.
fn round_trip(xml: &str) -> (DomainDef, String) {
    let def = parse_domain(xml).unwrap();
    let text = def.to_xml(&SECURE);
    let again = parse_domain(&text).unwrap();
    assert_eq!(again, def, "{text}");
    assert_eq!(again.to_xml(&SECURE), text);
    (def, text)
}

#[test]
fn formats_like_virsh_dumpxml() {
    let (_, text) = round_trip(&doc(
        "<devices><emulator>/usr/bin/qemu</emulator></devices>",
    ));
    assert_eq!(
        text,
        "<domain type='kvm'>\n  <name>vm</name>\n  \
         <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\n  \
         <memory unit='KiB'>1024</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type>hvm</type>\n  \
         </os>\n  <devices>\n    <emulator>/usr/bin/qemu</emulator>\n  </devices>\n</domain>\n"
    );
}

#[test]
fn stray_text_and_comments_in_modelled_elements_are_kept() {
    let (def, text) = round_trip(&doc(
        "<devices><!-- note --><disk><target dev='vda'/>stray</disk></devices>",
    ));
    assert!(text.contains("<!-- note -->"), "{text}");
    assert!(text.contains("stray"), "{text}");
    // Text and comments are content, not elements: nothing to report.
    assert!(def.unknown_elements().is_empty());
}

#[test]
fn unknown_paths_are_reported_once() {
    let (def, _) = round_trip(&doc(
        "<devices><hostdev mode='subsystem'/><hostdev mode='capabilities'/>\
         <disk x='1'><target dev='vda' y='2'/></disk></devices>",
    ));
    assert_eq!(
        def.unknown_elements(),
        [
            "domain/devices/disk/target/@y",
            "domain/devices/disk/@x",
            "domain/devices/hostdev"
        ]
    );
}

#[test]
fn qemu_prefix_bound_elsewhere_is_rebound_locally() {
    // As in libvirt's qemu-ns-domain-commandline-ns0 test.
    let xml = "<domain type='qemu' xmlns:qemu='urn:dummy'><name>vm</name><memory>1024</memory>\
        <os><type>hvm</type></os>\
        <ns0:commandline xmlns:ns0='http://libvirt.org/schemas/domain/qemu/1.0'>\
        <ns0:arg value='A'/></ns0:commandline></domain>";
    let (def, text) = round_trip(xml);
    assert_eq!(def.qemu_commandline.unwrap().args, ["A"]);
    assert!(
        text.starts_with("<domain type='qemu' xmlns:qemu='urn:dummy'>"),
        "{text}"
    );
    assert!(
        text.contains(&format!("<qemu:commandline xmlns:qemu='{QEMU_NS}'>")),
        "{text}"
    );
}

#[test]
fn qemu_namespace_is_declared_for_other_qemu_elements() {
    let xml = format!(
        "<domain type='kvm' xmlns:qemu='{QEMU_NS}'><name>vm</name><memory>1024</memory>\
         <os><type>hvm</type></os><qemu:capabilities><qemu:add capability='x'/>\
         </qemu:capabilities></domain>"
    );
    let (def, text) = round_trip(&xml);
    assert!(!def.has_qemu_commandline());
    assert!(text.starts_with(&format!("<domain type='kvm' xmlns:qemu='{QEMU_NS}'>")));
    assert_eq!(def.unknown_elements(), ["domain/qemu:capabilities"]);
    // An unused declaration is dropped, not carried along.
    let unused = format!(
        "<domain type='kvm' xmlns:qemu='{QEMU_NS}'><name>vm</name><memory>1024</memory>\
         <os><type>hvm</type></os></domain>"
    );
    let (_, text) = round_trip(&unused);
    assert!(!text.contains("xmlns"), "{text}");
}

#[test]
fn adding_a_commandline_declares_the_namespace() {
    let mut def = parse_domain(&doc("")).unwrap();
    def.qemu_commandline = Some(QemuCommandline {
        args: vec!["-no-hpet".into()],
        ..Default::default()
    });
    let text = def.to_xml(&FormatOptions {
        secure: false,
        live_id: Some(3),
    });
    assert!(
        text.starts_with(&format!(
            "<domain type='kvm' id='3' xmlns:qemu='{QEMU_NS}'>"
        )),
        "{text}"
    );
    assert_eq!(parse_domain(&text).unwrap(), def);
}

#[test]
fn devices_added_in_code_are_formatted() {
    let mut def = parse_domain(&doc("")).unwrap();
    def.devices.disks.push(Disk {
        disk_type: "file".into(),
        source: Some(DiskSource {
            file: Some("/img/a.qcow2".into()),
            ..Default::default()
        }),
        target: DiskTarget {
            dev: "vda".into(),
            bus: Some("virtio".into()),
            ..Default::default()
        },
        ..Default::default()
    });
    def.validate().unwrap();
    let text = def.to_xml(&SECURE);
    assert!(text.contains(
        "    <disk type='file' device='disk'>\n      <source file='/img/a.qcow2'/>\n      \
         <target dev='vda' bus='virtio'/>\n    </disk>\n"
    ));
    assert_eq!(parse_domain(&text).unwrap(), def);
}

#[test]
fn validate_catches_bad_edits() {
    let mut def = parse_domain(&doc("")).unwrap();
    def.vcpu.max = 0;
    assert!(def.validate().unwrap_err().to_string().contains("<vcpu>"));
    def.vcpu.max = 2;
    def.vcpu.current = Some(3);
    assert!(
        def.validate()
            .unwrap_err()
            .to_string()
            .contains("'current'")
    );
    def.vcpu.current = None;
    def.memory_kib = 0;
    assert!(def.validate().unwrap_err().to_string().contains("<memory>"));
    def.memory_kib = 10;
    def.uuid = "C7A5FDBD-EDAF-9455-926A-D65C16DB1809".into();
    assert!(def.validate().unwrap_err().to_string().contains("<uuid>"));
}

#[test]
fn error_messages_read_well() {
    let cases = [
        (
            XmlError::TooLarge { size: 5, limit: 4 },
            "domain XML is 5 bytes; at most 4 bytes are allowed",
        ),
        (
            XmlError::Malformed {
                line: 2,
                column: 7,
                message: "boom".into(),
            },
            "malformed XML at line 2, column 7: boom",
        ),
        (XmlError::missing("<name>"), "missing <name>"),
        (
            XmlError::value("<vcpu>", "abc", "a positive integer"),
            "invalid value 'abc' for <vcpu>: expected a positive integer",
        ),
    ];
    for (err, want) in cases {
        assert_eq!(err.to_string(), want);
    }
}

#[test]
fn effective_values() {
    let mut def = parse_domain(&doc("")).unwrap();
    assert_eq!(def.effective_current_memory_kib(), 1024);
    def.current_memory_kib = Some(512);
    assert_eq!(def.effective_current_memory_kib(), 512);
    assert_eq!(def.vcpu.effective_current(), 1);
}

#[test]
fn any_qemu_namespace_element_is_passthrough() {
    let base = |extra: &str, ns: &str| {
        format!(
            "<domain type='kvm' {ns}><name>vm</name><memory>1024</memory><vcpu>1</vcpu>\
             <os><type>hvm</type></os>{extra}</domain>"
        )
    };
    let qemu = "xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'";
    let caps = "<qemu:capabilities><qemu:add capability='blockdev'/></qemu:capabilities>";
    assert!(
        parse_domain(&base(caps, qemu))
            .unwrap()
            .has_qemu_passthrough()
    );
    let other_prefix = "<q:override><q:device alias='x'/></q:override>";
    let q = "xmlns:q='http://libvirt.org/schemas/domain/qemu/1.0'";
    assert!(
        parse_domain(&base(other_prefix, q))
            .unwrap()
            .has_qemu_passthrough()
    );
    let cmdline = "<qemu:commandline><qemu:arg value='-S'/></qemu:commandline>";
    assert!(
        parse_domain(&base(cmdline, qemu))
            .unwrap()
            .has_qemu_passthrough()
    );
    // Someone else's namespace is not passthrough, even with a qemu-looking name.
    let foreign = "<x:capabilities/>";
    let x = "xmlns:x='http://example.org/ns'";
    assert!(
        !parse_domain(&base(foreign, x))
            .unwrap()
            .has_qemu_passthrough()
    );
    assert!(!parse_domain(&base("", "")).unwrap().has_qemu_passthrough());
}
