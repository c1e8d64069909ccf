//! [`Element`] → text, indented by two spaces like `virsh dumpxml`.
//!
//! Attribute values use single quotes as libvirt does. Elements with mixed content (text and
//! elements side by side) are written without added whitespace, so their text stays exact.

use super::tree::{Element, Node};

/// Writes `el` and its subtree, each line ending with a newline.
pub fn write_document(el: &Element) -> String {
    let mut out = String::new();
    write_element(&mut out, el, 0);
    out
}

fn write_element(out: &mut String, el: &Element, depth: usize) {
    indent(out, depth);
    open_tag(out, el);
    if el.children.is_empty() {
        out.push_str("/>\n");
        return;
    }
    out.push('>');
    if el.children.iter().any(|n| matches!(n, Node::Text(_))) {
        // Text-only or mixed content: write children inline, exactly.
        for child in &el.children {
            write_inline(out, child);
        }
    } else {
        out.push('\n');
        for child in &el.children {
            match child {
                Node::Element(e) => write_element(out, e, depth + 1),
                other => {
                    indent(out, depth + 1);
                    write_inline(out, other);
                    out.push('\n');
                }
            }
        }
        indent(out, depth);
    }
    out.push_str("</");
    out.push_str(&el.name);
    out.push_str(">\n");
}

fn write_inline(out: &mut String, node: &Node) {
    match node {
        Node::Element(e) => {
            open_tag(out, e);
            if e.children.is_empty() {
                out.push_str("/>");
            } else {
                out.push('>');
                for child in &e.children {
                    write_inline(out, child);
                }
                out.push_str("</");
                out.push_str(&e.name);
                out.push('>');
            }
        }
        Node::Text(t) => escape_into(out, t, false),
        Node::Comment(c) => {
            out.push_str("<!--");
            out.push_str(c);
            out.push_str("-->");
        }
        Node::Pi(p) => {
            out.push_str("<?");
            out.push_str(p);
            out.push_str("?>");
        }
    }
}

fn open_tag(out: &mut String, el: &Element) {
    out.push('<');
    out.push_str(&el.name);
    for (k, v) in &el.attrs {
        out.push(' ');
        out.push_str(k);
        out.push_str("='");
        escape_into(out, v, true);
        out.push('\'');
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// Escapes markup characters and quotes (as libvirt's `virBufferEscapeString` does, in text
/// too); in attributes also the whitespace characters that attribute-value normalization would
/// otherwise turn into spaces.
fn escape_into(out: &mut String, s: &str, attr: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::read::read_document;
    use super::*;

    #[test]
    fn indents_and_escapes() {
        let mut root = Element::new("a");
        root.set("x", "it's <\n>");
        root.push(Element::with_text("b", "1 & 2"));
        root.push(Element::new("c"));
        let text = write_document(&root);
        assert_eq!(
            text,
            "<a x='it&apos;s &lt;&#10;&gt;'>\n  <b>1 &amp; 2</b>\n  <c/>\n</a>\n"
        );
        assert_eq!(read_document(&text).unwrap(), root);
    }

    #[test]
    fn mixed_content_round_trips() {
        let doc = "<a>hello <b>big\n</b> world<!--c--><c>\n  <d/>\n</c></a>";
        let el = read_document(doc).unwrap();
        let text = write_document(&el);
        assert_eq!(read_document(&text).unwrap(), el);
        assert_eq!(write_document(&read_document(&text).unwrap()), text);
    }
}
