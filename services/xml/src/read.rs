//! Text → [`Element`], with the safety rules for untrusted input.
//!
//! quick-xml never expands entities by itself; on top of that we refuse any DOCTYPE outright
//! (so no internal or external entity can even be declared), accept only the five predefined
//! entities and character references, and bound nesting depth so recursive processing of the
//! tree cannot exhaust the stack.

use std::collections::HashSet;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::error::XmlError;
use super::tree::{Element, Node};

/// Deepest element nesting accepted (libxml2's default limit is 256 as well).
pub const MAX_DEPTH: usize = 256;

/// Parses a whole document into its root element.
pub fn read_document(xml: &str) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let malformed = |pos: u64, message: String| {
        let (line, column) = line_col(xml, pos);
        XmlError::Malformed {
            line,
            column,
            message,
        }
    };
    loop {
        let pos = reader.buffer_position();
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => return Err(malformed(reader.error_position(), e.to_string())),
        };
        match event {
            Event::DocType(_) => {
                return Err(XmlError::Forbidden(
                    "DOCTYPE and entity declarations are not allowed".into(),
                ));
            }
            Event::Decl(_) => {}
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(malformed(pos, "more than one root element".into()));
            }
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::Forbidden(format!(
                        "elements are nested more than {MAX_DEPTH} levels deep"
                    )));
                }
                stack.push(element_from(&start).map_err(|m| malformed(pos, m))?);
            }
            Event::Empty(start) => {
                let el = element_from(&start).map_err(|m| malformed(pos, m))?;
                close(el, &mut stack, &mut root);
            }
            Event::End(_) => match stack.pop() {
                Some(el) => close(el, &mut stack, &mut root),
                None => return Err(malformed(pos, "unexpected closing tag".into())),
            },
            Event::Text(t) => {
                let text = t
                    .xml10_content()
                    .map_err(|e| malformed(pos, e.to_string()))?;
                add_text(&mut stack, &text).map_err(|m| malformed(pos, m))?;
            }
            Event::CData(t) => {
                let text = t
                    .xml10_content()
                    .map_err(|e| malformed(pos, e.to_string()))?;
                add_text(&mut stack, &text).map_err(|m| malformed(pos, m))?;
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| malformed(pos, e.to_string()))?;
                let c = resolve_reference(&name).map_err(|m| malformed(pos, m))?;
                add_text(&mut stack, c.encode_utf8(&mut [0u8; 4]))
                    .map_err(|m| malformed(pos, m))?;
            }
            Event::Comment(c) => {
                if let Some(parent) = stack.last_mut() {
                    let text = c.decode().map_err(|e| malformed(pos, e.to_string()))?;
                    parent.children.push(Node::Comment(text.into_owned()));
                }
            }
            Event::PI(pi) => {
                if let Some(parent) = stack.last_mut() {
                    let text = String::from_utf8_lossy(&pi).into_owned();
                    parent.children.push(Node::Pi(text));
                }
            }
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(malformed(
            xml.len() as u64,
            format!("unexpected end of document: <{}> is not closed", open.name),
        ));
    }
    root.ok_or_else(|| malformed(0, "the document has no root element".into()))
}

/// Builds an element (without children) from a start tag; attribute values are unescaped
/// with only the predefined entities.
fn element_from(start: &BytesStart<'_>) -> Result<Element, String> {
    let name = std::str::from_utf8(start.name().as_ref())
        .map_err(|e| e.to_string())?
        .to_string();
    let mut el = Element::new(name);
    // quick-xml's own duplicate check is quadratic in the attribute count; a set is not.
    let mut seen = HashSet::new();
    for attr in start.attributes().with_checks(false) {
        let attr = attr.map_err(|e| e.to_string())?;
        let key = std::str::from_utf8(attr.key.as_ref())
            .map_err(|e| e.to_string())?
            .to_string();
        if !seen.insert(key.clone()) {
            return Err(format!("duplicate attribute '{key}' on <{}>", el.name));
        }
        let raw = std::str::from_utf8(&attr.value).map_err(|e| e.to_string())?;
        el.attrs.push((key, unescape_attr(raw)?));
    }
    Ok(el)
}

/// Unescapes an attribute value, refusing undefined entities. Literal line breaks and tabs
/// become spaces, as XML's attribute-value normalization requires (references survive).
fn unescape_attr(raw: &str) -> Result<String, String> {
    if raw.contains('<') {
        return Err("'<' is not allowed in an attribute value".into());
    }
    let normalized = raw.replace("\r\n", " ").replace(['\r', '\n', '\t'], " ");
    let mut out = String::with_capacity(raw.len());
    let mut rest = normalized.as_str();
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after.find(';').ok_or_else(|| {
            "'&' in an attribute value must start a reference like &amp;".to_string()
        })?;
        out.push(resolve_reference(&after[..semi])?);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Resolves `name` of `&name;`: the five predefined entities and character references.
fn resolve_reference(name: &str) -> Result<char, String> {
    let c = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => {
            let Some(num) = name.strip_prefix('#') else {
                return Err(format!(
                    "undefined entity reference '&{name};' (only &lt; &gt; &amp; &apos; &quot; \
                     and character references are allowed)"
                ));
            };
            let code = match num.strip_prefix('x') {
                Some(hex) if !hex.starts_with(['+', '-']) => u32::from_str_radix(hex, 16),
                None if !num.starts_with(['+', '-']) => num.parse::<u32>(),
                _ => return Err(format!("invalid character reference '&{name};'")),
            }
            .map_err(|_| format!("invalid character reference '&{name};'"))?;
            char::from_u32(code)
                .filter(|c| is_xml_char(*c))
                .ok_or_else(|| format!("character reference '&{name};' is not an XML character"))?
        }
    };
    Ok(c)
}

/// XML 1.0's Char production.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn add_text(stack: &mut [Element], text: &str) -> Result<(), String> {
    let Some(parent) = stack.last_mut() else {
        if text.trim().is_empty() {
            return Ok(());
        }
        return Err("text outside the root element".into());
    };
    if let Some(Node::Text(last)) = parent.children.last_mut() {
        last.push_str(text);
    } else {
        parent.children.push(Node::Text(text.to_string()));
    }
    Ok(())
}

/// Finishes an element: drops indentation-only text when it has other children, then hangs
/// it on its parent (or makes it the root).
fn close(mut el: Element, stack: &mut [Element], root: &mut Option<Element>) {
    let has_other = el.children.iter().any(|n| !matches!(n, Node::Text(_)));
    let only_space = el.children.iter().all(|n| match n {
        Node::Text(t) => t.trim().is_empty(),
        _ => true,
    });
    if has_other && only_space {
        el.children.retain(|n| !matches!(n, Node::Text(_)));
    }
    match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Element(el)),
        None => *root = Some(el),
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(xml: &str, pos: u64) -> (usize, usize) {
    let mut end = usize::try_from(pos).unwrap_or(usize::MAX).min(xml.len());
    while !xml.is_char_boundary(end) {
        end -= 1;
    }
    let before = &xml[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predefined_and_numeric_references_resolve() {
        let el = read_document("<a b='&lt;&#65;&#x42;'>&amp;&quot;x&#10;</a>").unwrap();
        assert_eq!(el.attr("b"), Some("<AB"));
        assert_eq!(el.text(), "&\"x\n");
    }

    #[test]
    fn undefined_entities_are_errors() {
        for doc in ["<a>&foo;</a>", "<a b='&foo;'/>"] {
            let err = read_document(doc).unwrap_err().to_string();
            assert!(err.contains("undefined entity reference '&foo;'"), "{err}");
        }
    }

    #[test]
    fn bad_character_references_are_errors() {
        for doc in [
            "<a>&#0;</a>",
            "<a b='&#1;'/>",
            "<a>&#xD800;</a>",
            "<a>&#-1;</a>",
        ] {
            assert!(
                matches!(read_document(doc), Err(XmlError::Malformed { .. })),
                "{doc}"
            );
        }
    }

    #[test]
    fn doctype_is_forbidden() {
        let err = read_document("<!DOCTYPE a []><a/>").unwrap_err();
        assert!(matches!(err, XmlError::Forbidden(_)));
    }

    #[test]
    fn positions_are_reported() {
        let err = read_document("<a>\n  <b>\n</a>").unwrap_err();
        match err {
            XmlError::Malformed { line, .. } => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
        let err = read_document("<a>\n  <b>").unwrap_err().to_string();
        assert!(err.contains("<b> is not closed"), "{err}");
    }

    #[test]
    fn structure_errors() {
        for doc in [
            "",
            "  ",
            "<a/><b/>",
            "text<a/>",
            "<a></b>",
            "<a x='1' x='2'/>",
        ] {
            assert!(
                matches!(read_document(doc), Err(XmlError::Malformed { .. })),
                "{doc:?}"
            );
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(matches!(read_document(&deep), Err(XmlError::Forbidden(_))));
        let ok = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(read_document(&ok).is_ok());
    }

    #[test]
    fn indentation_is_dropped_but_text_kept() {
        let el = read_document("<a>\n  <b> x </b>\n  <!-- c -->\n</a>").unwrap();
        assert_eq!(el.children.len(), 2);
        assert_eq!(el.elements().next().unwrap().text(), " x ");
    }
}
