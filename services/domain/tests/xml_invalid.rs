//! Invalid documents are refused with a message that names the element or attribute at
//! fault; hostile documents (entities, DOCTYPE, huge input) are refused before any expansion.

use virtplane_domain::xml::{MAX_DOMAIN_XML_BYTES, XmlError, parse_domain};

/// A valid domain with `{BODY}` spliced inside `<domain>` after `<os>`.
fn domain_with(memory: &str, vcpu: &str, body: &str) -> String {
    format!(
        "<domain type='kvm'>\n  <name>vm</name>\n  {memory}\n  {vcpu}\n  \
         <os><type>hvm</type></os>\n{body}\n</domain>"
    )
}

fn with_devices(devices: &str) -> String {
    domain_with(
        "<memory>1024</memory>",
        "<vcpu>1</vcpu>",
        &format!("<devices>{devices}</devices>"),
    )
}

const DISK_VDA: &str =
    "<disk type='file' device='disk'><source file='/a'/><target dev='vda'/></disk>";

/// Asserts `xml` is refused and the message contains each of `needles`.
#[track_caller]
fn refused(xml: &str, needles: &[&str]) -> XmlError {
    let err = parse_domain(xml).expect_err("document should be refused");
    let msg = err.to_string();
    for n in needles {
        assert!(msg.contains(n), "message {msg:?} should contain {n:?}");
    }
    err
}

#[test]
fn valid_base_documents_parse() {
    parse_domain(&domain_with("<memory>1024</memory>", "<vcpu>1</vcpu>", "")).unwrap();
    parse_domain(&with_devices(DISK_VDA)).unwrap();
}

#[test]
fn root_must_be_domain_with_type() {
    refused(
        "<network><name>x</name></network>",
        &["<network>", "root element must be <domain>"],
    );
    let err = refused(
        "<domain><name>vm</name><memory>1</memory><os><type>hvm</type></os></domain>",
        &["missing <domain> attribute 'type'"],
    );
    assert!(matches!(err, XmlError::Missing { .. }));
    refused(
        "<domain type='warp'><name>vm</name><memory>1</memory><os><type>hvm</type></os></domain>",
        &["invalid value 'warp' for <domain> attribute 'type'", "kvm"],
    );
}

#[test]
fn name_is_required_and_checked() {
    let no_name = "<domain type='kvm'><memory>1024</memory><os><type>hvm</type></os></domain>";
    assert!(matches!(
        refused(no_name, &["missing <name>"]),
        XmlError::Missing { .. }
    ));
    for (bad, why) in [
        ("a/b", "'/'"),
        ("..", "'.' or '..'"),
        ("", "empty"),
        ("-x", "'-'"),
    ] {
        let xml = format!(
            "<domain type='kvm'><name>{bad}</name><memory>1024</memory>\
             <os><type>hvm</type></os></domain>"
        );
        refused(&xml, &["<name>", why]);
    }
}

#[test]
fn uuid_is_checked() {
    let xml = |u: &str| {
        format!(
            "<domain type='kvm'><name>vm</name><uuid>{u}</uuid><memory>1024</memory>\
             <os><type>hvm</type></os></domain>"
        )
    };
    refused(
        &xml("not-a-uuid"),
        &["invalid value 'not-a-uuid' for <uuid>"],
    );
    refused(&xml("c7a5fdbd-edaf-9455-926a-d65c16db18"), &["<uuid>"]);
    let ok = parse_domain(&xml("C7A5FDBDEDAF9455926AD65C16DB1809")).unwrap();
    assert_eq!(ok.uuid, "c7a5fdbd-edaf-9455-926a-d65c16db1809");
}

#[test]
fn memory_is_checked() {
    let no_mem = "<domain type='kvm'><name>vm</name><os><type>hvm</type></os></domain>";
    refused(no_mem, &["missing <memory>"]);
    refused(
        &domain_with("<memory>0</memory>", "", ""),
        &["invalid value '0' for <memory>"],
    );
    refused(
        &domain_with("<memory>lots</memory>", "", ""),
        &["invalid value 'lots' for <memory>: expected a non-negative integer"],
    );
    refused(
        &domain_with("<memory>-5</memory>", "", ""),
        &["invalid value '-5' for <memory>"],
    );
    let err = refused(
        &domain_with("<memory unit='XB'>1</memory>", "", ""),
        &["<memory unit='XB'>: unknown unit 'XB'"],
    );
    assert!(matches!(err, XmlError::Invalid { .. }));
    refused(
        &domain_with("<memory unit='EiB'>99999</memory>", "", ""),
        &["<memory>", "too large"],
    );
    refused(
        &domain_with(
            "<memory unit='MiB'>512</memory><currentMemory unit='GiB'>1</currentMemory>",
            "",
            "",
        ),
        &["<currentMemory>", "must not exceed <memory>"],
    );
    refused(
        &domain_with(
            "<memory>1024</memory><currentMemory unit='XB'>1</currentMemory>",
            "",
            "",
        ),
        &["<currentMemory unit='XB'>: unknown unit 'XB'"],
    );
    refused(
        &domain_with(
            "<maxMemory unit='KiB'>4096</maxMemory><memory>1024</memory>",
            "",
            "",
        ),
        &["missing <maxMemory> attribute 'slots'"],
    );
    refused(
        &domain_with(
            "<maxMemory slots='4'>512</maxMemory><memory>1024</memory>",
            "",
            "",
        ),
        &["<maxMemory>", "must not be less than <memory>"],
    );
}

#[test]
fn vcpu_is_checked() {
    let m = "<memory>1024</memory>";
    refused(
        &domain_with(m, "<vcpu>abc</vcpu>", ""),
        &["invalid value 'abc' for <vcpu>: expected a positive integer"],
    );
    refused(
        &domain_with(m, "<vcpu>0</vcpu>", ""),
        &["invalid value '0' for <vcpu>"],
    );
    refused(
        &domain_with(m, "<vcpu current='5'>4</vcpu>", ""),
        &[
            "<vcpu> attribute 'current'",
            "between 1 and the maximum (4)",
        ],
    );
    refused(
        &domain_with(m, "<vcpu current='x'>4</vcpu>", ""),
        &["invalid value 'x' for <vcpu> attribute 'current'"],
    );
    refused(
        &domain_with(m, "<vcpu placement='dynamic'>4</vcpu>", ""),
        &["invalid value 'dynamic' for <vcpu> attribute 'placement': expected one of static, auto"],
    );
    refused(
        &domain_with(m, "<vcpu>1</vcpu><vcpu>2</vcpu>", ""),
        &["<vcpu>: may appear only once"],
    );
}

#[test]
fn lifecycle_actions_are_checked() {
    let m = "<memory>1024</memory>";
    refused(
        &domain_with(m, "", "<on_poweroff>explode</on_poweroff>"),
        &["invalid value 'explode' for <on_poweroff>"],
    );
    refused(
        &domain_with(m, "", "<on_reboot>coredump-restart</on_reboot>"),
        &["invalid value 'coredump-restart' for <on_reboot>"],
    );
    parse_domain(&domain_with(m, "", "<on_crash>coredump-restart</on_crash>")).unwrap();
}

#[test]
fn os_is_checked() {
    let xml =
        |os: &str| format!("<domain type='kvm'><name>vm</name><memory>1024</memory>{os}</domain>");
    refused(&xml(""), &["missing <os>"]);
    refused(&xml("<os></os>"), &["missing <os>/<type>"]);
    refused(
        &xml("<os><type>dos</type></os>"),
        &["invalid value 'dos' for <os>/<type>"],
    );
    refused(
        &xml("<os><type>hvm</type><boot dev='usb'/></os>"),
        &[
            "invalid value 'usb' for <os>/<boot> attribute 'dev': expected one of hd, cdrom, fd, network",
        ],
    );
    refused(
        &xml("<os><type>hvm</type><boot/></os>"),
        &["missing <os>/<boot> attribute 'dev'"],
    );
    refused(
        &xml("<os><type>hvm</type><loader type='floppy'>/x</loader></os>"),
        &["invalid value 'floppy' for <os>/<loader> attribute 'type'"],
    );
}

#[test]
fn disks_are_checked() {
    refused(
        &with_devices("<disk type='file'><source file='/a'/></disk>"),
        &["missing <devices>/<disk>/<target>"],
    );
    refused(
        &with_devices("<disk type='file'><target bus='virtio'/></disk>"),
        &["missing <devices>/<disk>/<target> attribute 'dev'"],
    );
    refused(
        &with_devices("<disk type='file' device='tape'><target dev='vda'/></disk>"),
        &[
            "invalid value 'tape' for <devices>/<disk> attribute 'device': expected one of disk, cdrom, floppy, lun",
        ],
    );
    refused(
        &with_devices("<disk type='paper'><target dev='vda'/></disk>"),
        &["invalid value 'paper' for <devices>/<disk> attribute 'type'"],
    );
    refused(
        &with_devices("<disk><target dev='vda' bus='pcmcia'/></disk>"),
        &["invalid value 'pcmcia' for <devices>/<disk>/<target> attribute 'bus'"],
    );
    refused(
        &with_devices(&format!("{DISK_VDA}{DISK_VDA}")),
        &[
            "<devices>/<disk>/<target dev='vda'>",
            "used by more than one disk",
        ],
    );
    refused(
        &with_devices("<disk><target dev='vda'/><boot order='0'/></disk>"),
        &["invalid value '0' for <devices>/<disk>/<boot> attribute 'order'"],
    );
    refused(
        &with_devices(
            "<disk><source file='/a' startupPolicy='sometimes'/><target dev='vda'/></disk>",
        ),
        &["invalid value 'sometimes' for <devices>/<disk>/<source> attribute 'startupPolicy'"],
    );
    refused(
        &with_devices(
            "<disk><source file='/a' startupPolicy='requisite'/><target dev='vda'/></disk>",
        ),
        &[
            "startupPolicy='requisite'",
            "disk 'vda'",
            "only for a cdrom or floppy",
        ],
    );
    refused(
        &with_devices(
            "<disk type='network'><source protocol='nbd' name='x' startupPolicy='optional'/>\
             <target dev='vda'/></disk>",
        ),
        &["not allowed for a disk of type 'network'"],
    );
    refused(
        &with_devices("<disk><target dev='vda'/><acpi index='0'/></disk>"),
        &["invalid value '0' for <devices>/<disk>/<acpi> attribute 'index'"],
    );
    refused(
        &with_devices("<disk><target dev='vda'/><transient shareBacking='maybe'/></disk>"),
        &["invalid value 'maybe' for <devices>/<disk>/<transient> attribute 'shareBacking'"],
    );
}

#[test]
fn boot_orders_are_checked() {
    let dev = "<disk><target dev='vda'/><boot order='1'/></disk>";
    let xml = format!(
        "<domain type='kvm'><name>vm</name><memory>1024</memory>\
         <os><type>hvm</type><boot dev='hd'/></os><devices>{dev}</devices></domain>"
    );
    refused(&xml, &["<os>/<boot>", "cannot be used together"]);
    refused(
        &with_devices(&format!(
            "{dev}<interface type='user'><boot order='1'/></interface>"
        )),
        &["<boot order='1'>", "more than one device"],
    );
}

#[test]
fn interfaces_are_checked() {
    refused(
        &with_devices("<interface type='network'><mac address='52:54:00:zz:00:01'/></interface>"),
        &["invalid value '52:54:00:zz:00:01' for <devices>/<interface>/<mac> attribute 'address'"],
    );
    refused(
        &with_devices("<interface type='network'><mac address='01:00:5e:00:00:01'/></interface>"),
        &["<devices>/<interface>/<mac> attribute 'address'", "unicast"],
    );
    refused(
        &with_devices("<interface type='wifi'/>"),
        &["invalid value 'wifi' for <devices>/<interface> attribute 'type'"],
    );
    refused(
        &with_devices("<interface/>"),
        &["missing <devices>/<interface> attribute 'type'"],
    );
}

#[test]
fn other_devices_are_checked() {
    for (dev, needle) in [
        (
            "<graphics type='x11'/>",
            "invalid value 'x11' for <devices>/<graphics> attribute 'type'",
        ),
        (
            "<graphics/>",
            "missing <devices>/<graphics> attribute 'type'",
        ),
        (
            "<graphics type='vnc' port='99999'/>",
            "invalid value '99999' for <devices>/<graphics> attribute 'port'",
        ),
        (
            "<controller type='floppy'/>",
            "invalid value 'floppy' for <devices>/<controller> attribute 'type'",
        ),
        (
            "<controller type='pci' index='-1'/>",
            "invalid value '-1' for <devices>/<controller> attribute 'index'",
        ),
        (
            "<serial type='telepathy'/>",
            "invalid value 'telepathy' for <devices>/<serial> attribute 'type'",
        ),
        (
            "<input type='joystick'/>",
            "invalid value 'joystick' for <devices>/<input> attribute 'type'",
        ),
        (
            "<video><model type='voodoo'/></video>",
            "invalid value 'voodoo' for <devices>/<video>/<model> attribute 'type'",
        ),
        (
            "<memballoon/>",
            "missing <devices>/<memballoon> attribute 'model'",
        ),
        (
            "<watchdog model='i6300esb' action='explode'/>",
            "invalid value 'explode' for <devices>/<watchdog> attribute 'action'",
        ),
        (
            "<rng model='virtio'><backend model='hwrng'/></rng>",
            "invalid value 'hwrng' for <devices>/<rng>/<backend> attribute 'model'",
        ),
        (
            "<disk><target dev='vda'/><address bus='0'/></disk>",
            "missing <devices>/<disk>/<address> attribute 'type'",
        ),
    ] {
        refused(&with_devices(dev), &[needle]);
    }
}

#[test]
fn other_top_level_values_are_checked() {
    let m = "<memory>1024</memory>";
    for (body, needle) in [
        (
            "<cpu mode='host-imitation'/>",
            "invalid value 'host-imitation' for <cpu> attribute 'mode'",
        ),
        (
            "<cpu><topology sockets='1' cores='0' threads='1'/></cpu>",
            "invalid value '0' for <cpu>/<topology> attribute 'cores'",
        ),
        (
            "<clock offset='mars'/>",
            "invalid value 'mars' for <clock> attribute 'offset'",
        ),
        (
            "<features><vmport state='maybe'/></features>",
            "invalid value 'maybe' for <features>/<vmport> attribute 'state'",
        ),
        ("<title>a\nb</title>", "<title>: must not contain newlines"),
    ] {
        refused(&domain_with(m, "", body), &[needle]);
    }
    let bad_env = "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\
        <name>vm</name><memory>1024</memory><os><type>hvm</type></os>\
        <qemu:commandline><qemu:env name='1BAD' value='x'/></qemu:commandline></domain>";
    refused(
        bad_env,
        &["invalid value '1BAD' for <qemu:commandline>/<qemu:env> attribute 'name'"],
    );
    let no_value = bad_env.replace("<qemu:env name='1BAD' value='x'/>", "<qemu:arg/>");
    refused(
        &no_value,
        &["missing <qemu:commandline>/<qemu:arg> attribute 'value'"],
    );
}

#[test]
fn doctype_and_entities_are_refused() {
    let billion_laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<domain type='kvm'><name>&lol9;</name><memory>1024</memory><os><type>hvm</type></os></domain>"#;
    let external = r#"<?xml version="1.0"?>
<!DOCTYPE domain [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<domain type='kvm'><name>&xxe;</name><memory>1024</memory><os><type>hvm</type></os></domain>"#;
    let public = r#"<!DOCTYPE domain PUBLIC "-//x//DTD x//EN" "http://example.com/x.dtd">
<domain type='kvm'><name>vm</name><memory>1024</memory><os><type>hvm</type></os></domain>"#;
    for doc in [billion_laughs, external, public] {
        let err = refused(doc, &["DOCTYPE and entity declarations are not allowed"]);
        assert!(matches!(err, XmlError::Forbidden(_)));
    }
    // Without a DOCTYPE, an entity reference is simply undefined.
    let undefined = "<domain type='kvm'><name>&xxe;</name><memory>1024</memory>\
        <os><type>hvm</type></os></domain>";
    let err = refused(undefined, &["undefined entity reference '&xxe;'"]);
    assert!(matches!(err, XmlError::Malformed { line: 1, .. }));
    let in_attr = "<domain type='&xxe;'><name>vm</name></domain>";
    refused(in_attr, &["undefined entity reference '&xxe;'"]);
    // Predefined entities and character references are fine.
    let ok = "<domain type='kvm'><name>a&amp;b&#x41;&#66;</name><memory>1024</memory>\
        <os><type>hvm</type></os></domain>";
    assert_eq!(parse_domain(ok).unwrap().name, "a&bAB");
}

#[test]
fn oversize_input_is_refused_before_parsing() {
    // Not even well-formed: the size check must come first.
    let huge = "<".repeat(MAX_DOMAIN_XML_BYTES + 1);
    match parse_domain(&huge) {
        Err(XmlError::TooLarge { size, limit, .. }) => {
            assert_eq!(
                (size, limit),
                (MAX_DOMAIN_XML_BYTES + 1, MAX_DOMAIN_XML_BYTES)
            );
        }
        other => panic!("{other:?}"),
    }
    // Exactly at the limit is parsed (padding with a comment).
    let base = domain_with("<memory>1024</memory>", "", "");
    let pad = MAX_DOMAIN_XML_BYTES - base.len() - "<!---->".len();
    let at_limit = format!("{base}<!--{}-->", "x".repeat(pad));
    assert_eq!(at_limit.len(), MAX_DOMAIN_XML_BYTES);
    parse_domain(&at_limit).unwrap();
}

#[test]
fn malformed_xml_reports_position() {
    let cases = [
        (
            "<domain type='kvm'>\n  <name>vm</name>\n  <memory>1</memry>\n</domain>",
            3,
        ),
        ("<domain type='kvm'>\n  <name>vm\n", 3),
        ("<domain type='kvm' type='qemu'/>", 1),
        ("<domain type='kvm'>\n\n  <name a=b>vm</name></domain>", 3),
        ("", 1),
    ];
    for (doc, want_line) in cases {
        match parse_domain(doc) {
            Err(XmlError::Malformed {
                line,
                column,
                message,
            }) => {
                assert_eq!(line, want_line, "{doc:?}: {message}");
                assert!(column >= 1);
                let shown = parse_domain(doc).unwrap_err().to_string();
                assert!(
                    shown.starts_with(&format!("malformed XML at line {line}, column ")),
                    "{shown}"
                );
            }
            other => panic!("{doc:?}: {other:?}"),
        }
    }
}

#[test]
fn nesting_depth_is_bounded() {
    let depth = 10_000;
    let deep = format!(
        "<domain type='kvm'><name>vm</name><memory>1024</memory><os><type>hvm</type></os>\
         <metadata>{}{}</metadata></domain>",
        "<a>".repeat(depth),
        "</a>".repeat(depth)
    );
    refused(&deep, &["nested more than"]);
}

/// Documents at the size limit built to hit worst cases (many attributes on one element,
/// many children) must still parse and format quickly; this guards against quadratic paths.
#[test]
fn pathological_shapes_stay_linear() {
    let head = "<domain type='kvm'><name>vm</name><memory>1024</memory><os><type>hvm</type></os>";
    let fill = |unit: &dyn Fn(usize) -> String| {
        let mut s = String::from(head);
        let mut i = 0;
        while s.len() < MAX_DOMAIN_XML_BYTES - 200 {
            s.push_str(&unit(i));
            i += 1;
        }
        s
    };
    let many_attrs = {
        let mut s = String::from("<domain type='kvm'");
        let mut i = 0;
        while s.len() < MAX_DOMAIN_XML_BYTES - 200 {
            s.push_str(&format!(" a{i}=''"));
            i += 1;
        }
        s + "><name>vm</name><memory>1024</memory><os><type>hvm</type></os></domain>"
    };
    let many_devices = fill(&|i| format!("<hostdev n='{i}'/>")) + "</domain>";
    let many_disks = fill(&|i| format!("<disk><target dev='d{i}'/></disk>"));
    let many_disks = many_disks.replacen("<disk>", "<devices><disk>", 1) + "</devices></domain>";
    for doc in [many_attrs, many_devices, many_disks] {
        let def = parse_domain(&doc).unwrap();
        let text = def.to_xml(&Default::default());
        assert!(!def.unknown_elements().is_empty() || def.devices.disks.len() > 1000);
        assert!(text.len() > 100_000);
    }
}
