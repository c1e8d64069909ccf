//! The XML documents virsh writes for the user: `<pool>` for `pool-define-as` and
//! `pool-create-as` (`virshBuildPoolXML`), `<volume>` for `vol-create-as`, and the clone's
//! `<volume>` for `vol-clone` (`virshMakeCloneXML`). Same elements, order and two-space
//! indentation as virsh, so `--print-xml` prints what virsh prints; values are escaped, which
//! virsh forgets (a name with `&` makes it write broken XML).

use quick_xml::events::{BytesText, Event};
use quick_xml::{Reader, Writer};

/// Escapes text for element content and for attribute values quoted with `'`.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// The options of `pool-define-as` / `pool-create-as` that go into the XML.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolSpec {
    pub name: String,
    pub pool_type: String,
    pub source_host: Option<String>,
    pub source_path: Option<String>,
    pub source_dev: Option<String>,
    pub source_initiator: Option<String>,
    pub source_format: Option<String>,
    pub source_name: Option<String>,
    pub source_protocol_ver: Option<String>,
    pub target: Option<String>,
}

/// `virshBuildPoolXML`, for the options virtctl takes.
pub fn pool_xml(p: &PoolSpec) -> String {
    let mut x = format!("<pool type='{}'>\n", esc(&p.pool_type));
    x.push_str(&format!("  <name>{}</name>\n", esc(&p.name)));
    let has_source = p.source_host.is_some()
        || p.source_path.is_some()
        || p.source_dev.is_some()
        || p.source_initiator.is_some()
        || p.source_format.is_some()
        || p.source_name.is_some();
    if has_source {
        x.push_str("  <source>\n");
        if let Some(h) = &p.source_host {
            x.push_str(&format!("    <host name='{}'/>\n", esc(h)));
        }
        if let Some(d) = &p.source_path {
            x.push_str(&format!("    <dir path='{}'/>\n", esc(d)));
        }
        if let Some(d) = &p.source_dev {
            x.push_str(&format!("    <device path='{}'/>\n", esc(d)));
        }
        if let Some(i) = &p.source_initiator {
            x.push_str("    <initiator>\n");
            x.push_str(&format!("      <iqn name='{}'/>\n", esc(i)));
            x.push_str("    </initiator>\n");
        }
        if let Some(f) = &p.source_format {
            x.push_str(&format!("    <format type='{}'/>\n", esc(f)));
        }
        if let Some(n) = &p.source_name {
            x.push_str(&format!("    <name>{}</name>\n", esc(n)));
        }
        // As virsh: the protocol version only goes in when some other source option did.
        if let Some(v) = &p.source_protocol_ver {
            x.push_str(&format!("    <protocol ver='{}'/>\n", esc(v)));
        }
        x.push_str("  </source>\n");
    }
    if let Some(t) = &p.target {
        x.push_str("  <target>\n");
        x.push_str(&format!("    <path>{}</path>\n", esc(t)));
        x.push_str("  </target>\n");
    }
    x.push_str("</pool>\n");
    x
}

/// What `vol-create-as` puts into the `<volume>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeSpec {
    pub name: String,
    pub capacity: u64,
    pub allocation: Option<u64>,
    pub format: Option<String>,
    /// The backing volume's path (virsh looks the volume up and writes its path).
    pub backing_path: Option<String>,
    pub backing_format: Option<String>,
}

/// The `<volume>` of `cmdVolCreateAs`.
pub fn volume_xml(v: &VolumeSpec) -> String {
    let mut x = String::from("<volume>\n");
    x.push_str(&format!("  <name>{}</name>\n", esc(&v.name)));
    x.push_str(&format!("  <capacity>{}</capacity>\n", v.capacity));
    if let Some(a) = v.allocation {
        x.push_str(&format!("  <allocation>{a}</allocation>\n"));
    }
    if let Some(f) = &v.format {
        x.push_str("  <target>\n");
        x.push_str(&format!("    <format type='{}'/>\n", esc(f)));
        x.push_str("  </target>\n");
    }
    if let Some(p) = &v.backing_path {
        x.push_str("  <backingStore>\n");
        x.push_str(&format!("    <path>{}</path>\n", esc(p)));
        if let Some(f) = &v.backing_format {
            x.push_str(&format!("    <format type='{}'/>\n", esc(f)));
        }
        x.push_str("  </backingStore>\n");
    }
    x.push_str("</volume>\n");
    x
}

/// Why a volume's XML could not be turned into its clone's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CloneXmlError {
    #[error("the volume XML the server sent is not well-formed: {0}")]
    Malformed(String),
    #[error("the volume XML the server sent is not a <volume> (its root is <{0}>)")]
    NotVolume(String),
    #[error("the volume XML the server sent has no <name>")]
    NoName,
}

/// Elements of the source's XML that must not be copied into the clone: the key and the
/// target path name the source's own storage (the service gives the clone its own).
const DROPPED: &[&[&str]] = &[&["volume", "key"], &["volume", "target", "path"]];

/// `virshMakeCloneXML`: the source volume's XML with `<name>` set to `new_name`, and (unlike
/// virsh, which leaves them for the driver to ignore) its `<key>` and `<target><path>`
/// removed along with the indentation before them. Everything else is kept byte for byte.
pub fn clone_xml(source_xml: &str, new_name: &str) -> Result<String, CloneXmlError> {
    let mut reader = Reader::from_str(source_xml);
    let mut writer = Writer::new(Vec::with_capacity(source_xml.len()));
    let mut stack: Vec<String> = Vec::new();
    // Depth at which a dropped element started; its content is skipped until its end.
    let mut skipping: Option<usize> = None;
    // Inside <volume><name>: the old name's text is replaced.
    let mut in_name = false;
    let mut named = false;
    // Whitespace held back until we know whether a dropped element follows it.
    let mut pending: Option<Event<'static>> = None;
    let malformed = |e: &dyn std::fmt::Display| CloneXmlError::Malformed(e.to_string());
    let write = |w: &mut Writer<Vec<u8>>, e: Event<'_>| w.write_event(e).map_err(|e| malformed(&e));

    loop {
        let event = reader.read_event().map_err(|e| malformed(&e))?;
        if let Some(depth) = skipping {
            match event {
                Event::Start(_) => stack.push(String::new()),
                Event::End(_) => {
                    stack.pop();
                    if stack.len() == depth {
                        skipping = None;
                    }
                }
                Event::Eof => return Err(malformed(&"unexpected end of document")),
                _ => {}
            }
            continue;
        }
        match event {
            Event::Eof => break,
            Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {
                if let Some(p) = pending.take() {
                    write(&mut writer, p)?;
                }
                pending = Some(Event::Text(t.into_owned()));
            }
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if stack.is_empty() && name != "volume" {
                    return Err(CloneXmlError::NotVolume(name));
                }
                stack.push(name);
                if is_dropped(&stack) {
                    pending = None;
                    skipping = Some(stack.len() - 1);
                    continue;
                }
                if let Some(p) = pending.take() {
                    write(&mut writer, p)?;
                }
                write(&mut writer, Event::Start(e))?;
                if stack == ["volume", "name"] {
                    write(&mut writer, Event::Text(BytesText::new(new_name)))?;
                    in_name = true;
                    named = true;
                }
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if stack.is_empty() && name != "volume" {
                    return Err(CloneXmlError::NotVolume(name));
                }
                stack.push(name);
                let dropped = is_dropped(&stack);
                let is_name = stack == ["volume", "name"];
                stack.pop();
                if dropped {
                    pending = None;
                    continue;
                }
                if let Some(p) = pending.take() {
                    write(&mut writer, p)?;
                }
                if is_name {
                    // `<name/>`: written out in full with the new name.
                    let start = e.to_owned();
                    let end = start.to_end().into_owned();
                    write(&mut writer, Event::Start(start))?;
                    write(&mut writer, Event::Text(BytesText::new(new_name)))?;
                    write(&mut writer, Event::End(end))?;
                    named = true;
                } else {
                    write(&mut writer, Event::Empty(e))?;
                }
            }
            Event::End(e) => {
                // Whitespace inside the old name goes with it.
                if let Some(p) = pending.take()
                    && !in_name
                {
                    write(&mut writer, p)?;
                }
                in_name = false;
                stack.pop();
                write(&mut writer, Event::End(e))?;
            }
            other => {
                if let Some(p) = pending.take() {
                    write(&mut writer, p)?;
                }
                // The old name's text (and entity references in it) is replaced.
                if !in_name {
                    write(&mut writer, other)?;
                }
            }
        }
    }
    if let Some(p) = pending.take() {
        write(&mut writer, p)?;
    }
    if !named {
        return Err(CloneXmlError::NoName);
    }
    String::from_utf8(writer.into_inner()).map_err(|e| malformed(&e))
}

fn is_dropped(path: &[String]) -> bool {
    DROPPED
        .iter()
        .any(|d| d.len() == path.len() && d.iter().zip(path).all(|(a, b)| *a == b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_xml_like_virsh() {
        let spec = PoolSpec {
            name: "images".into(),
            pool_type: "dir".into(),
            target: Some("/var/lib/virtplane/images".into()),
            ..Default::default()
        };
        assert_eq!(
            pool_xml(&spec),
            "<pool type='dir'>\n  <name>images</name>\n  <target>\n    <path>/var/lib/virtplane/images</path>\n  </target>\n</pool>\n"
        );
        let spec = PoolSpec {
            name: "nfs".into(),
            pool_type: "netfs".into(),
            source_host: Some("filer".into()),
            source_path: Some("/export".into()),
            source_format: Some("nfs".into()),
            source_protocol_ver: Some("4".into()),
            ..Default::default()
        };
        assert_eq!(
            pool_xml(&spec),
            "<pool type='netfs'>\n  <name>nfs</name>\n  <source>\n    <host name='filer'/>\n    <dir path='/export'/>\n    <format type='nfs'/>\n    <protocol ver='4'/>\n  </source>\n</pool>\n"
        );
        let odd = PoolSpec {
            name: "a&b".into(),
            pool_type: "dir".into(),
            ..Default::default()
        };
        assert_eq!(
            pool_xml(&odd),
            "<pool type='dir'>\n  <name>a&amp;b</name>\n</pool>\n"
        );
    }

    #[test]
    fn volume_xml_like_virsh() {
        let spec = VolumeSpec {
            name: "disk.qcow2".into(),
            capacity: 1 << 30,
            allocation: Some(0),
            format: Some("qcow2".into()),
            backing_path: Some("/pool/base.qcow2".into()),
            backing_format: Some("qcow2".into()),
        };
        assert_eq!(
            volume_xml(&spec),
            "<volume>\n  <name>disk.qcow2</name>\n  <capacity>1073741824</capacity>\n  <allocation>0</allocation>\n  <target>\n    <format type='qcow2'/>\n  </target>\n  <backingStore>\n    <path>/pool/base.qcow2</path>\n    <format type='qcow2'/>\n  </backingStore>\n</volume>\n"
        );
        let plain = VolumeSpec {
            name: "a.img".into(),
            capacity: 10,
            ..Default::default()
        };
        assert_eq!(
            volume_xml(&plain),
            "<volume>\n  <name>a.img</name>\n  <capacity>10</capacity>\n</volume>\n"
        );
    }

    const SOURCE: &str = "<volume type='file'>\n  <name>base.qcow2</name>\n  <key>/pool/base.qcow2</key>\n  <capacity unit='bytes'>1073741824</capacity>\n  <allocation unit='bytes'>196608</allocation>\n  <target>\n    <path>/pool/base.qcow2</path>\n    <format type='qcow2'/>\n    <permissions>\n      <mode>0600</mode>\n    </permissions>\n  </target>\n</volume>\n";

    #[test]
    fn clone_renames_and_drops_key_and_path() {
        assert_eq!(
            clone_xml(SOURCE, "copy.qcow2").unwrap(),
            "<volume type='file'>\n  <name>copy.qcow2</name>\n  <capacity unit='bytes'>1073741824</capacity>\n  <allocation unit='bytes'>196608</allocation>\n  <target>\n    <format type='qcow2'/>\n    <permissions>\n      <mode>0600</mode>\n    </permissions>\n  </target>\n</volume>\n"
        );
    }

    #[test]
    fn clone_escapes_and_handles_odd_shapes() {
        let xml = "<?xml version='1.0'?>\n<volume><name>a&amp;b</name><key/><target><path>/p</path></target></volume>";
        assert_eq!(
            clone_xml(xml, "x<y").unwrap(),
            "<?xml version='1.0'?>\n<volume><name>x&lt;y</name><target></target></volume>"
        );
        assert_eq!(
            clone_xml("<volume><name/></volume>", "n").unwrap(),
            "<volume><name>n</name></volume>"
        );
        // Only the volume's own name changes, not a <name> deeper down.
        let nested = "<volume><name>v</name><source><name>s</name></source></volume>";
        assert_eq!(
            clone_xml(nested, "w").unwrap(),
            "<volume><name>w</name><source><name>s</name></source></volume>"
        );
    }

    #[test]
    fn clone_errors() {
        assert_eq!(
            clone_xml("<pool><name>p</name></pool>", "n"),
            Err(CloneXmlError::NotVolume("pool".into()))
        );
        assert_eq!(
            clone_xml("<volume><capacity>1</capacity></volume>", "n"),
            Err(CloneXmlError::NoName)
        );
        assert!(matches!(
            clone_xml("<volume><name>a</volume>", "n"),
            Err(CloneXmlError::Malformed(_))
        ));
    }
}
