//! Unit tests of the pool and volume model: libvirt's layout and defaults, validation
//! messages, live state, lossless unknown content. The libvirt corpus runs in
//! tests/xml_corpus.rs.

use super::*;

const UUID: &str = "70a7eb15-6c34-ee9c-bf57-69e8e5ff3fb2";

/// Parses a pool, checks the round trip and returns the model and formatted text.
fn pool_round_trip(xml: &str) -> (PoolDef, String) {
    let def = parse_pool(xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let text = format_pool(&def);
    let again = parse_pool(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(again, def, "{text}");
    assert_eq!(format_pool(&again), text);
    (def, text)
}

fn vol_round_trip(xml: &str) -> (VolDef, String) {
    let def = parse_volume(xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let text = format_volume(&def);
    let again = parse_volume(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(again, def, "{text}");
    assert_eq!(format_volume(&again), text);
    (def, text)
}

fn pool_err(xml: &str) -> String {
    parse_pool(xml).unwrap_err().to_string()
}

fn vol_err(xml: &str) -> String {
    parse_volume(xml).unwrap_err().to_string()
}

fn dir_pool(target: &str) -> String {
    format!("<pool type='dir'><name>p</name><uuid>{UUID}</uuid><target>{target}</target></pool>")
}

fn vol(body: &str) -> String {
    format!("<volume><name>v.img</name>{body}</volume>")
}

#[test]
fn dir_pool_is_formatted_like_pool_dumpxml() {
    let (def, text) = pool_round_trip(&dir_pool(
        "<path>/var/lib/virtplane/images/</path><permissions><mode>755</mode>\
         <owner>0</owner><group>0</group></permissions>",
    ));
    assert_eq!(def.pool_type, "dir");
    assert_eq!(def.target_path(), Some("/var/lib/virtplane/images"));
    let perms = def.target.as_ref().unwrap().permissions.as_ref().unwrap();
    assert_eq!(
        (perms.mode, perms.owner, perms.group),
        (Some(0o755), Some(0), Some(0))
    );
    let expected = format!(
        "<pool type='dir'>\n  <name>p</name>\n  <uuid>{UUID}</uuid>\n  \
         <capacity unit='bytes'>0</capacity>\n  <allocation unit='bytes'>0</allocation>\n  \
         <available unit='bytes'>0</available>\n  <source>\n  </source>\n  <target>\n    \
         <path>/var/lib/virtplane/images</path>\n    <permissions>\n      <mode>0755</mode>\n      \
         <owner>0</owner>\n      <group>0</group>\n    </permissions>\n  </target>\n</pool>\n"
    );
    assert_eq!(text, expected);
}

#[test]
fn pool_capacity_is_live_state() {
    // Like libvirt, a definition's figures are not read: the driver reports them.
    let (mut def, _) = pool_round_trip(
        "<pool type='dir'><name>p</name><capacity unit='G'>5</capacity>\
         <allocation>garbage</allocation><available>1</available>\
         <target><path>/p</path></target></pool>",
    );
    assert_eq!(
        (def.capacity, def.allocation, def.available),
        (None, None, None)
    );
    assert_eq!(def.uuid, None);
    def.capacity = Some(10 << 30);
    def.allocation = Some(1 << 30);
    def.available = Some(9 << 30);
    let text = format_pool(&def);
    assert!(
        text.contains(
            "<capacity unit='bytes'>10737418240</capacity>\n  \
             <allocation unit='bytes'>1073741824</allocation>\n  \
             <available unit='bytes'>9663676416</available>"
        ),
        "{text}"
    );
}

#[test]
fn pool_identity_rules() {
    let (def, _) = pool_round_trip(
        "<pool type='dir'><name>p</name><uuid>70A7EB156C34EE9CBF5769E8E5FF3FB2</uuid>\
         <target><path>/p</path></target></pool>",
    );
    assert_eq!(def.uuid.as_deref(), Some(UUID));
    let e = pool_err("<pool type='dir'><name>p</name><uuid>nope</uuid></pool>");
    assert!(
        e.starts_with("invalid value 'nope' for <uuid>: expected a UUID"),
        "{e}"
    );
    let e = pool_err("<pool><name>p</name></pool>");
    assert_eq!(e, "missing <pool> attribute 'type'");
    let e = pool_err("<pool type='nfs'><name>p</name></pool>");
    assert!(
        e.starts_with("invalid value 'nfs' for <pool> attribute 'type': expected one of dir, fs"),
        "{e}"
    );
    let e = pool_err("<pool type='dir'><target><path>/p</path></target></pool>");
    assert_eq!(e, "missing <name>");
    for (name, want) in [
        (
            "a/b",
            "invalid value 'a/b' for pool <name>: expected a name without '/'",
        ),
        ("..", "invalid value '..' for pool <name>"),
        (
            "a&#10;b",
            "invalid value 'a\\nb' for pool <name>: expected a name without control",
        ),
    ] {
        let e = pool_err(&format!(
            "<pool type='dir'><name>{name}</name><target><path>/p</path></target></pool>"
        ));
        assert!(e.starts_with(want), "{name}: {e}");
    }
    let e = pool_err("<network><name>n</name></network>");
    assert_eq!(e, "<network>: the root element must be <pool>");
}

#[test]
fn permissions_rules() {
    let perms = |p: &str| {
        parse_pool(&dir_pool(&format!(
            "<path>/p</path><permissions>{p}</permissions>"
        )))
    };
    let e = perms("<mode>01777</mode>").unwrap_err().to_string();
    assert_eq!(
        e,
        "invalid value '01777' for <target>/<permissions>/<mode>: expected an octal file mode \
         from 0 to 0777 (no setuid, setgid or sticky bit)"
    );
    assert!(perms("<mode>0800</mode>").is_err());
    assert!(perms("<mode>rwx</mode>").is_err());
    let e = perms("<owner>-2</owner>").unwrap_err().to_string();
    assert_eq!(
        e,
        "invalid value '-2' for <target>/<permissions>/<owner>: expected a user ID from 0 to \
         4294967294, or -1 for none"
    );
    let e = perms("<group>4294967296</group>").unwrap_err().to_string();
    assert!(
        e.contains("<target>/<permissions>/<group>: expected a group ID"),
        "{e}"
    );
    assert!(perms("<owner>root</owner>").is_err());
    // libvirt's "unset": -1 and its unsigned twin; a permissions element that sets nothing
    // is not written back.
    let def = perms("<owner>-1</owner><group>4294967295</group>").unwrap();
    assert_eq!(def.target.as_ref().unwrap().permissions, None);
    // Owner is decimal even with a leading zero, as libvirt reads it.
    let def = perms("<mode>0</mode><owner>0744</owner><label>l_t</label>").unwrap();
    let p = def.target.unwrap().permissions.unwrap();
    assert_eq!(
        (p.mode, p.owner, p.label.as_deref()),
        (Some(0), Some(744), Some("l_t"))
    );
    let text = format_pool(&perms("<mode>0</mode>").unwrap());
    assert!(text.contains("<mode>00</mode>"), "{text}");
}

#[test]
fn pool_type_rules() {
    let cases = [
        (
            "<pool type='netfs'><name>n</name><source><dir path='/e'/></source>\
             <target><path>/m</path></target></pool>",
            "missing <source>/<host name>: a netfs pool needs the name of its server",
        ),
        (
            "<pool type='netfs'><name>n</name><source><host name='h'/></source>\
             <target><path>/m</path></target></pool>",
            "missing <source>/<dir path>: a netfs pool needs the path of the exported directory",
        ),
        (
            "<pool type='fs'><name>n</name><target><path>/m</path></target></pool>",
            "missing <source>/<device path>: a fs pool needs the device it lives on",
        ),
        (
            "<pool type='dir'><name>n</name></pool>",
            "missing <target>/<path>: a dir pool needs a target path",
        ),
        (
            "<pool type='rbd'><name>n</name><source><host name='h'/></source></pool>",
            "missing <source>/<name> (an RBD pool names its Ceph pool)",
        ),
        (
            "<pool type='iscsi-direct'><name>n</name><source><host name='h'/>\
             <device path='iqn.x'/></source></pool>",
            "missing <source>/<initiator>/<iqn name>: a iscsi-direct pool needs the initiator's IQN",
        ),
        (
            "<pool type='scsi'><name>n</name><target><path>/dev</path></target></pool>",
            "missing <source>/<adapter>: a scsi pool needs its SCSI host adapter",
        ),
        (
            "<pool type='logical'><name>n</name><features><cow state='yes'/></features></pool>",
            "<features>/<cow>: the cow feature is only for dir and fs pools, not logical",
        ),
        (
            "<pool type='netfs'><name>n</name><source><host name='h'/><dir path='/e'/>\
             <format type='cifs'/><protocol ver='3'/></source><target><path>/m</path></target>\
             </pool>",
            "<source>/<protocol> attribute 'ver': a protocol version is only for NFS pools",
        ),
        (
            "<pool type='netfs'><name>n</name><source><host name='h'/><dir path='/e'/>\
             <protocol ver='3,rw'/></source><target><path>/m</path></target></pool>",
            "invalid value '3,rw' for <source>/<protocol> attribute 'ver'",
        ),
        (
            "<pool type='fs'><name>n</name><source><device path='/dev/sda1'/>\
             <format type='zfs'/></source><target><path>/m</path></target></pool>",
            "invalid value 'zfs' for <source>/<format> attribute 'type': expected a fs pool \
             format: one of auto, ext2",
        ),
        (
            "<pool type='iscsi'><name>n</name><source><host name='h'/>\
             <auth username='u'><secret usage='s'/></auth></source>\
             <target><path>/dev/disk/by-path</path></target></pool>",
            "<source>/<auth> attribute 'type': a storage pool's authentication needs a type",
        ),
        (
            "<pool type='iscsi'><name>n</name><source><host/></source>\
             <target><path>/d</path></target></pool>",
            "missing <source>/<host> attribute 'name'",
        ),
        (
            "<pool type='iscsi'><name>n</name><source><host name='h' port='-1'/></source>\
             <target><path>/d</path></target></pool>",
            "invalid value '-1' for <source>/<host> attribute 'port'",
        ),
        (
            "<pool type='rbd'><name>n</name><source><name>r</name><host name='h'/></source>\
             <refresh><volume allocation='all'/></refresh></pool>",
            "invalid value 'all' for <refresh>/<volume> attribute 'allocation'",
        ),
    ];
    for (xml, want) in cases {
        let e = pool_err(xml);
        assert!(e.starts_with(want), "{xml}\n{e}");
    }
}

#[test]
fn pool_defaults_follow_libvirt() {
    // A logical pool: the volume group is named after the pool (and the reverse), its
    // target is the group's device directory, its format lvm2.
    let (def, text) = pool_round_trip(
        "<pool type='logical'><name>vg0</name><source><device path='/dev/sdb1'/></source>\
         <target><path>/elsewhere</path></target></pool>",
    );
    let src = def.source.as_ref().unwrap();
    assert_eq!(src.name.as_deref(), Some("vg0"));
    assert_eq!(src.format.as_deref(), Some("lvm2"));
    assert_eq!(def.target_path(), Some("/dev/vg0"));
    assert!(
        text.contains(
            "<source>\n    <device path='/dev/sdb1'/>\n    <name>vg0</name>\n    \
             <format type='lvm2'/>\n  </source>"
        ),
        "{text}"
    );
    let (def, _) = pool_round_trip("<pool type='logical'><source><name>vg1</name></source></pool>");
    assert_eq!(def.name, "vg1");
    // netfs: format auto, the exported directory cleaned up.
    let (def, _) = pool_round_trip(
        "<pool type='netfs'><name>n</name><source><host name='nas' port='2049'/>\
         <dir path='/export//images/'/></source><target><path>/mnt/n</path></target></pool>",
    );
    let src = def.source.unwrap();
    assert_eq!(src.format.as_deref(), Some("auto"));
    assert_eq!(src.dir.as_deref(), Some("/export/images"));
    assert_eq!(src.hosts[0].port, Some(2049));
    // zfs and gluster.
    let (def, _) = pool_round_trip("<pool type='zfs'><name>z</name></pool>");
    assert_eq!(def.target_path(), Some("/dev/zvol/z"));
    let (def, text) = pool_round_trip(
        "<pool type='gluster'><name>g</name><source><host name='h'/></source></pool>",
    );
    assert_eq!(def.source.unwrap().dir.as_deref(), Some("/"));
    assert!(!text.contains("<target>"), "{text}");
    // A legacy SCSI adapter gets its type.
    let (_, text) = pool_round_trip(
        "<pool type='scsi'><name>s</name><source><adapter name='host0'/></source>\
         <target><path>/dev/disk/by-path</path></target></pool>",
    );
    assert!(
        text.contains("<adapter type='scsi_host' name='host0'/>"),
        "{text}"
    );
    // Auth attributes in libvirt's order.
    let (def, text) = pool_round_trip(
        "<pool type='rbd'><name>c</name><source><name>rbd</name><host name='m'/>\
         <auth username='admin' type='ceph'><secret uuid='2ec115d7-3a88-3ceb-bc12-0ac909a6fd87'/>\
         </auth></source></pool>",
    );
    assert_eq!(def.source.unwrap().auth.unwrap().username, "admin");
    assert!(
        text.contains("<auth type='ceph' username='admin'>"),
        "{text}"
    );
}

#[test]
fn cow_feature() {
    let (def, text) = pool_round_trip(
        "<pool type='dir'><name>p</name><features><cow state='no'/></features>\
         <target><path>/p</path></target></pool>",
    );
    assert_eq!(def.cow, Some(false));
    assert!(
        text.contains("<features>\n    <cow state='no'/>\n  </features>"),
        "{text}"
    );
    let e = pool_err(
        "<pool type='dir'><name>p</name><features><cow state='on'/></features>\
         <target><path>/p</path></target></pool>",
    );
    assert!(
        e.starts_with("invalid value 'on' for <features>/<cow> attribute 'state'"),
        "{e}"
    );
}

#[test]
fn unknown_pool_content_survives_in_place() {
    let xml = format!(
        "<pool type='netfs' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0' x='1'>\
         <!-- mine --><name>n</name><uuid>{UUID}</uuid><capacity>5</capacity><after-cap/>\
         <source><host name='h' colour='red'/><dir path='/e'/><device path='/d'>\
         <freeExtent start='0' end='1'/><odd/></device><vendor name='v' z='2'/></source>\
         <target><path>/m</path><permissions><mode>0700</mode><acl/></permissions></target>\
         <fs:mount_opts><fs:option name='sync'/></fs:mount_opts></pool>"
    );
    let (def, text) = pool_round_trip(&xml);
    for part in [
        "<pool type='netfs' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0' x='1'>",
        "<!-- mine -->",
        "<capacity unit='bytes'>0</capacity>\n  <after-cap/>",
        "<host name='h' colour='red'/>",
        "<device path='/d'>\n      <odd/>\n    </device>",
        "<vendor name='v' z='2'/>",
        "<mode>0700</mode>\n      <acl/>",
        "</target>\n  <fs:mount_opts>",
    ] {
        assert!(text.contains(part), "{part}\n{text}");
    }
    assert!(!text.contains("freeExtent"), "{text}");
    let unknown = def.unknown_elements();
    for path in [
        "pool/@x",
        "pool/after-cap",
        "pool/fs:mount_opts",
        "pool/source/host/@colour",
        "pool/source/device/odd",
        "pool/source/vendor/@z",
        "pool/target/permissions/acl",
    ] {
        assert!(unknown.contains(&path.to_string()), "{path} in {unknown:?}");
    }
    assert!(!unknown.iter().any(|p| p.contains("xmlns")), "{unknown:?}");
}

#[test]
fn empty_source_with_a_comment_stays_valid() {
    // A comment holding the text of an empty source must not be rewritten.
    let (_, text) = pool_round_trip(
        "<pool type='dir'><!--\n  <source/>\n--><name>p</name><target><path>/p</path></target></pool>",
    );
    assert!(text.contains("<!--\n  <source/>\n-->"), "{text}");
}

#[test]
fn file_volume_is_formatted_like_vol_dumpxml() {
    let (mut def, _) = vol_round_trip(
        "<volume><name>disk.qcow2</name><capacity unit='GiB'>10</capacity>\
         <target><format type='qcow2'/><permissions><mode>0600</mode></permissions>\
         </target></volume>",
    );
    assert_eq!(def.vol_type, "file");
    assert!(def.capacity_given);
    assert_eq!(def.capacity, 10 << 30);
    assert_eq!(def.allocation, None);
    // What the driver fills in for vol-dumpxml.
    def.key = Some("/p/disk.qcow2".into());
    def.allocation = Some(196_624);
    def.physical = Some(200_704);
    def.target.path = Some("/p/disk.qcow2".into());
    def.target.timestamps = Some(VolTimestamps {
        atime: Some(Timestamp {
            secs: 1_341_933_637,
            nanos: 273_190_990,
        }),
        mtime: Some(Timestamp {
            secs: 1_341_930_622,
            nanos: 0,
        }),
        ..Default::default()
    });
    let text = format_volume(&def);
    let expected = "<volume type='file'>\n  <name>disk.qcow2</name>\n  <key>/p/disk.qcow2</key>\n  \
         <capacity unit='bytes'>10737418240</capacity>\n  \
         <allocation unit='bytes'>196624</allocation>\n  \
         <physical unit='bytes'>200704</physical>\n  <target>\n    <path>/p/disk.qcow2</path>\n    \
         <format type='qcow2'/>\n    <permissions>\n      <mode>0600</mode>\n    </permissions>\n    \
         <timestamps>\n      <atime>1341933637.273190990</atime>\n      <mtime>1341930622</mtime>\n    \
         </timestamps>\n  </target>\n</volume>\n";
    assert_eq!(text, expected);
    // Live parts are not read back from a definition.
    let again = parse_volume(&text).unwrap();
    assert_eq!(again.physical, None);
    assert_eq!(again.target.timestamps, None);
    assert_eq!(again.allocation, Some(196_624));
}

#[test]
fn volume_sizes() {
    let (def, _) = vol_round_trip(&vol(
        "<capacity unit='KB'>3</capacity><allocation unit='k'>1</allocation>",
    ));
    assert_eq!((def.capacity, def.allocation), (3000, Some(1024)));
    let e = vol_err(&vol("<capacity>-1</capacity>"));
    assert_eq!(
        e,
        "<capacity>: '-1' is not a size: expected a non-negative whole number"
    );
    let e = vol_err(&vol("<capacity unit='EiB'>8</capacity>"));
    assert_eq!(
        e,
        "<capacity>: 8 EiB is too large: at most 9223372036854775807 bytes are allowed"
    );
    let e = vol_err(&vol(
        "<capacity>1</capacity><allocation unit='XiB'>1</allocation>",
    ));
    assert!(e.starts_with("<allocation>: unknown unit 'XiB'"), "{e}");
    let e = vol_err(&vol(
        "<capacity>1</capacity><target><clusterSize>-5</clusterSize></target>",
    ));
    assert!(
        e.starts_with("<target>/<clusterSize>: '-5' is not a size"),
        "{e}"
    );
    // No capacity: not an error here, but recorded, and not written back as 0.
    let (def, text) = vol_round_trip(&vol("<target><format type='qcow2'/></target>"));
    assert!(!def.capacity_given);
    assert!(!text.contains("<capacity"), "{text}");
    let (def, text) = vol_round_trip(&vol("<capacity>0</capacity>"));
    assert!(def.capacity_given);
    assert!(
        text.contains("<capacity unit='bytes'>0</capacity>"),
        "{text}"
    );
}

#[test]
fn volume_rules() {
    assert_eq!(
        vol_err("<volume><capacity>1</capacity></volume>"),
        "missing <name>"
    );
    let e = vol_err("<volume><name>../etc/passwd</name></volume>");
    assert!(
        e.starts_with(
            "invalid value '../etc/passwd' for volume <name>: expected a name without '/'"
        ),
        "{e}"
    );
    let e = vol_err(&format!(
        "<volume><name>{}</name></volume>",
        "x".repeat(256)
    ));
    assert!(
        e.contains("a name of 256 bytes is too long: at most 255"),
        "{e}"
    );
    let e = vol_err("<volume type='tape'><name>v</name></volume>");
    assert!(
        e.starts_with(
            "invalid value 'tape' for <volume> attribute 'type': expected one of file, block"
        ),
        "{e}"
    );
    let e = vol_err(&vol("<target><compat>1.x</compat></target>"));
    assert!(
        e.starts_with("invalid value '1.x' for <target>/<compat>"),
        "{e}"
    );
    let e = vol_err(&vol("<target><features><zero_copy/></features></target>"));
    assert!(
        e.starts_with(
            "invalid value 'zero_copy' for <target>/<features>: expected a qcow2 feature"
        ),
        "{e}"
    );
    let e = vol_err(&vol(
        "<target><permissions><mode>4755</mode></permissions></target>",
    ));
    assert!(e.contains("<target>/<permissions>/<mode>"), "{e}");
    let e = vol_err(&vol("<target><format/></target>"));
    assert_eq!(e, "missing <target>/<format> attribute 'type'");
    // A format the driver may not know is its business, not the parser's.
    let (def, _) = vol_round_trip(&vol("<target><format type='vhdx-next'/></target>"));
    assert_eq!(def.target.format.as_deref(), Some("vhdx-next"));
}

#[test]
fn pool_defaults_give_the_volume_format() {
    let xml = vol("<capacity>1</capacity><backingStore><path>/b</path></backingStore>");
    let mut def = parse_volume(&xml).unwrap();
    assert_eq!(def.target.format, None);
    def.apply_pool_defaults("dir");
    assert_eq!(def.target.format.as_deref(), Some("raw"));
    assert_eq!(
        def.backing_store.as_ref().unwrap().format.as_deref(),
        Some("raw")
    );
    let mut def = parse_volume(&xml).unwrap();
    def.apply_pool_defaults("logical");
    assert_eq!(def.target.format, None);
    let mut def = parse_volume(&vol("<target><format type='qcow2'/></target>")).unwrap();
    def.apply_pool_defaults("dir");
    assert_eq!(def.target.format.as_deref(), Some("qcow2"));
}

#[test]
fn qcow2_options() {
    let (def, text) = vol_round_trip(&vol(
        "<capacity>1</capacity><target><format type='qcow2'/><nocow/>\
         <features><extended_l2/><lazy_refcounts/><lazy_refcounts/></features>\
         <clusterSize unit='KiB'>64</clusterSize></target>",
    ));
    let t = &def.target;
    assert!(t.nocow);
    assert_eq!(t.compat.as_deref(), Some("1.1"));
    assert_eq!(t.cluster_size, Some(65536));
    assert_eq!(
        t.features.as_deref(),
        Some(&["lazy_refcounts".to_string(), "extended_l2".to_string()][..])
    );
    assert!(
        text.contains(
            "<compat>1.1</compat>\n    <nocow/>\n    <clusterSize unit='B'>65536</clusterSize>\n    \
             <features>\n      <lazy_refcounts/>\n      <extended_l2/>\n    </features>"
        ),
        "{text}"
    );
    // An empty <features/> still asks for qcow2 v3; without it compat stays as given.
    let (def, text) = vol_round_trip(&vol("<target><features/></target>"));
    assert_eq!(def.target.features, Some(vec![]));
    assert!(
        text.contains("<compat>1.1</compat>\n    <features/>"),
        "{text}"
    );
    let (def, _) = vol_round_trip(&vol("<target><compat>0.10</compat></target>"));
    assert_eq!(def.target.features, None);
    assert_eq!(def.target.compat.as_deref(), Some("0.10"));
}

#[test]
fn encryption_and_backing_store() {
    let (def, text) = vol_round_trip(&vol(
        "<capacity>1</capacity><backingStore><permissions><mode>0644</mode></permissions>\
         <path>/b.img</path><format type='qcow2'/><extra-b/></backingStore>\
         <target><encryption format='luks'><secret type='passphrase' uuid='f52a81b2-424e-490c-823d-6bd4235bc572'/>\
         </encryption><permissions><mode>0600</mode></permissions><path>/v.img</path></target>",
    ));
    assert!(def.target.encryption.is_some());
    let b = def.backing_store.as_ref().unwrap();
    assert_eq!(
        (b.path.as_str(), b.format.as_deref()),
        ("/b.img", Some("qcow2"))
    );
    assert_eq!(b.permissions.as_ref().unwrap().mode, Some(0o644));
    assert!(
        text.contains(
            "<path>/v.img</path>\n    <permissions>\n      <mode>0600</mode>\n    </permissions>\n    \
             <encryption format='luks'>"
        ),
        "{text}"
    );
    let unknown = def.unknown_elements();
    assert!(
        unknown.contains(&"volume/target/encryption".to_string()),
        "{unknown:?}"
    );
    assert!(
        unknown.contains(&"volume/backingStore/extra-b".to_string()),
        "{unknown:?}"
    );
    // A backing store without a path is no backing store (as libvirt), but it is kept.
    let (def, text) = vol_round_trip(&vol("<capacity>1</capacity><backingStore/>"));
    assert_eq!(def.backing_store, None);
    assert!(text.contains("<backingStore/>"), "{text}");
    assert_eq!(def.unknown_elements(), ["volume/backingStore"]);
}

#[test]
fn unknown_volume_content_after_live_state_stays_in_place() {
    let (def, text) = vol_round_trip(&vol(
        "<source><device path='/dev/sda'/></source><u1/><capacity>1</capacity>\
         <physical>9</physical><u2/><target><timestamps><atime>1</atime></timestamps><u3/>\
         <path>/v</path></target>",
    ));
    assert!(
        text.contains("<name>v.img</name>\n  <u1/>\n  <capacity"),
        "{text}"
    );
    assert!(text.contains("</capacity>\n  <u2/>\n  <target>"), "{text}");
    assert!(
        text.contains("<target>\n    <u3/>\n    <path>/v</path>"),
        "{text}"
    );
    assert!(
        !text.contains("source") && !text.contains("physical"),
        "{text}"
    );
    assert_eq!(def.physical, None);
}

#[test]
fn input_is_bounded_and_safe() {
    let big = format!(
        "<pool type='dir'><name>p</name><!--{}--></pool>",
        "x".repeat(MAX_POOL_XML_BYTES)
    );
    assert!(matches!(
        parse_pool(&big),
        Err(XmlError::TooLarge { what: "pool", .. })
    ));
    let big = format!(
        "<volume><name>v</name><!--{}--></volume>",
        "x".repeat(MAX_VOLUME_XML_BYTES)
    );
    assert!(pool_err(&big).contains("pool XML is"), "{}", pool_err(&big));
    assert!(matches!(
        parse_volume(&big),
        Err(XmlError::TooLarge { what: "volume", .. })
    ));
    let e = vol_err("<!DOCTYPE v [<!ENTITY x 'y'>]><volume><name>&x;</name></volume>");
    assert_eq!(e, "DOCTYPE and entity declarations are not allowed");
    assert_eq!(
        vol_err("<pool type='dir'/>"),
        "<pool>: the root element must be <volume>"
    );
}

#[test]
fn unknown_content_next_to_unwritten_parts_round_trips() {
    // Each document has unknown content right after a part that is read but not written
    // back: an unset owner, an empty label, an empty key, a stateless <cow>, a zero
    // cluster size, an empty <features/> of a pool.
    for target in [
        "<path>/p</path><permissions><owner>-1</owner><acl/><group>0</group></permissions>",
        "<path>/p</path><permissions><label></label><acl/></permissions>",
        "<permissions><owner>-1</owner></permissions><after/><path>/p</path>",
    ] {
        let (def, text) = pool_round_trip(&dir_pool(target));
        assert!(
            text.contains("<acl/>") || text.contains("<after/>"),
            "{text}"
        );
        assert!(!def.unknown_elements().is_empty());
    }
    let (def, text) = pool_round_trip(
        "<pool type='dir'><name>p</name><features><cow/><x/></features><y/>\
         <target><path>/p</path></target></pool>",
    );
    assert_eq!(def.cow, None);
    assert!(
        text.contains("<features>\n    <cow/>\n    <x/>\n  </features>\n  <y/>"),
        "{text}"
    );
    let (_, text) = pool_round_trip(
        "<pool type='dir'><name>p</name><features/><y/><target><path>/p</path></target></pool>",
    );
    assert!(!text.contains("<features"), "{text}");
    assert!(text.contains("<name>p</name>\n  <y/>"), "{text}");
    let (_, text) = vol_round_trip(
        "<volume><key></key><k/><name>v</name><target><clusterSize>0</clusterSize><c/>\
         <path>/v</path></target></volume>",
    );
    assert!(
        text.contains("<target>\n    <c/>\n    <path>/v</path>"),
        "{text}"
    );
    assert!(
        text.contains("<volume type='file'>\n  <k/>\n  <name>v</name>"),
        "{text}"
    );
}
