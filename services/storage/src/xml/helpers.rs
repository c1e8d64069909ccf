//! Small pieces shared by the pool and volume models: sized leaves, libvirt's path
//! clean-up, and keeping unknown content in place when a known element is not written back.

use std::collections::{HashMap, HashSet};

use virtplane_xml::{Element, Extra, FmtCtx, Node, Scope, XmlError};

use super::size::parse_size;

/// Reads the sized leaf `name` (`<capacity unit='G'>5</capacity>`) in bytes; its own unknown
/// content is kept under `name`.
pub(crate) fn size_leaf(s: &mut Scope<'_>, name: &str) -> Result<Option<u64>, XmlError> {
    let Some(mut c) = s.child(name)? else {
        return Ok(None);
    };
    let unit = c.attr("unit");
    let text = c.text();
    let bytes = parse_size(&text, unit).map_err(|e| XmlError::invalid(c.loc(), e.to_string()))?;
    s.keep(name, c.finish());
    Ok(Some(bytes))
}

/// Consumes the child `name` without reading it: live state libvirt does not take from a
/// definition (a pool's capacity, a volume's extents and timestamps).
pub(crate) fn skip(s: &mut Scope<'_>, name: &str) {
    drop(s.children(name));
}

/// `<name unit='bytes'>N</name>`, as libvirt writes every size.
pub(crate) fn size_element(name: &str, bytes: u64, x: &Extra, ctx: &mut FmtCtx) -> Element {
    let mut el = Element::with_text(name, bytes.to_string());
    el.set("unit", "bytes");
    x.apply_sub(name, &mut el, ctx);
    el
}

/// Appends `<name>text</name>` with the unknown content kept for it, when there is a text.
pub(crate) fn push_leaf(
    el: &mut Element,
    name: &str,
    text: Option<&str>,
    x: &Extra,
    ctx: &mut FmtCtx,
) {
    if let Some(t) = text {
        let mut leaf = Element::with_text(name, t);
        x.apply_sub(name, &mut leaf, ctx);
        el.push(leaf);
    }
}

/// Appends `<name attr='value'/>` with the unknown content kept for it, when there is a
/// value.
pub(crate) fn push_attr_leaf(
    el: &mut Element,
    name: &str,
    attr: &str,
    value: Option<&str>,
    x: &Extra,
    ctx: &mut FmtCtx,
) {
    if let Some(v) = value {
        let mut leaf = Element::new(name);
        leaf.set(attr, v);
        x.apply_sub(name, &mut leaf, ctx);
        el.push(leaf);
    }
}

/// Reads the `attr` of the single child `name` (`<format type='qcow2'/>`); the child's other
/// content is kept under `name`. A child without the attribute is an error.
pub(crate) fn attr_leaf(
    s: &mut Scope<'_>,
    name: &str,
    attr: &str,
) -> Result<Option<String>, XmlError> {
    let Some(mut c) = s.child(name)? else {
        return Ok(None);
    };
    let value = c.req_attr(attr)?.to_string();
    s.keep(name, c.finish());
    Ok(Some(value))
}

/// libvirt's tristate booleans: an optional `yes` or `no`.
pub(crate) fn tristate(s: &mut Scope<'_>, name: &str) -> Result<Option<bool>, XmlError> {
    s.attr_parse(name, |v| match v {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("yes or no".to_string()),
    })
}

pub(crate) fn yes_no(v: bool) -> &'static str {
    if v { "yes" } else { "no" }
}

/// libvirt's `virFileSanitizePath`: runs of `/` become one and a trailing `/` goes, except
/// that a leading `//` (meaningful to POSIX) stays and URIs are left alone.
pub(crate) fn sanitize_path(path: &str) -> String {
    if let Some(uri) = path.find("://")
        && path.find('/').is_some_and(|slash| slash > uri)
    {
        return path.to_string();
    }
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    if rest.starts_with("//") && !rest.starts_with("///") {
        out.push_str("//");
        rest = &rest[2..];
    }
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '/' {
            out.push(c);
            continue;
        }
        while chars.peek() == Some(&'/') {
            chars.next();
        }
        if !out.is_empty() && chars.peek().is_none() {
            break;
        }
        out.push('/');
    }
    out
}

/// Keeps the unknown content consistent when a known element is read but not written back
/// (live state, an empty `<permissions/>`, an unset `<owner>-1</owner>`, …): the element's
/// own kept content goes with it, and unknown siblings that followed it are re-anchored to
/// the closest earlier known sibling that `written` (the element as formatted) has, so
/// formatting puts them where they were and a re-parse of the output gives the same
/// [`Extra`].
pub(crate) fn settle(extra: &mut Extra, input: &Element, written: &Element) {
    let unknown: HashSet<&str> = extra
        .nodes
        .iter()
        .filter_map(|(_, n)| match n {
            Node::Element(e) => Some(e.name.as_str()),
            _ => None,
        })
        .collect();
    let out: HashSet<&str> = written.elements().map(|e| e.name.as_str()).collect();
    let dropped: HashSet<&str> = input
        .elements()
        .map(|e| e.name.as_str())
        .filter(|n| !unknown.contains(n) && !out.contains(n))
        .collect();
    if dropped.is_empty() {
        return;
    }
    extra.sub.retain(|key, _| !dropped.contains(key.as_str()));
    // For every known input element: where it sits, and the anchor its followers get.
    let mut position: HashMap<&str, usize> = HashMap::new();
    let mut anchor_of: HashMap<&str, Option<String>> = HashMap::new();
    let mut last_written: Option<String> = None;
    for (i, e) in input.elements().enumerate() {
        let name = e.name.as_str();
        if unknown.contains(name) {
            continue;
        }
        position.insert(name, i);
        if !dropped.contains(name) {
            last_written = Some(e.name.clone());
        }
        anchor_of.insert(name, last_written.clone());
    }
    let moved = extra
        .nodes
        .iter()
        .any(|(a, _)| a.as_deref().is_some_and(|a| dropped.contains(a)));
    if !moved {
        return;
    }
    let mut nodes: Vec<(Option<String>, usize, Node)> = std::mem::take(&mut extra.nodes)
        .into_iter()
        .map(|(anchor, node)| {
            let rank = anchor
                .as_deref()
                .and_then(|a| position.get(a))
                .map_or(0, |p| p + 1);
            let anchor = match anchor.as_deref().and_then(|a| anchor_of.get(a)) {
                Some(to) => to.clone(),
                None => anchor,
            };
            (anchor, rank, node)
        })
        .collect();
    // Groups stay in Scope::finish's canonical order; merged groups in input order.
    nodes.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    extra.nodes = nodes.into_iter().map(|(a, _, n)| (a, n)).collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_sanitized_like_libvirt() {
        let cases = [
            ("///var/////lib/libvirt/images//", "/var/lib/libvirt/images"),
            ("/var/lib/libvirt/images/", "/var/lib/libvirt/images"),
            ("//server/share", "//server/share"),
            ("///foo", "/foo"),
            ("/", "/"),
            ("///", "/"),
            ("samba_share", "samba_share"),
            ("a//b/", "a/b"),
            ("/../foo", "/../foo"),
            ("gluster://host//vol/", "gluster://host//vol/"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize_path(input), want, "{input}");
        }
    }

    #[test]
    fn unknown_nodes_follow_the_nearest_written_sibling() {
        let input = virtplane_xml::read_document("<v><a/><x1/><gone/><x2/><b/><x3/></v>").unwrap();
        let mut s = Scope::root(&input);
        let _ = s.child("a").unwrap();
        let _ = s.child("gone").unwrap();
        let _ = s.child("b").unwrap();
        let mut extra = s.finish();
        let mut written = Element::new("v");
        written.push(Element::new("a"));
        written.push(Element::new("b"));
        settle(&mut extra, &input, &written);
        let got: Vec<(Option<&str>, &str)> = extra
            .nodes
            .iter()
            .map(|(a, n)| match n {
                Node::Element(e) => (a.as_deref(), e.name.as_str()),
                _ => panic!("{n:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [(Some("a"), "x1"), (Some("a"), "x2"), (Some("b"), "x3")]
        );
    }
}
