//! A small generic XML tree: the common ground between the text and the typed model.
//!
//! Parsing goes text → [`Element`] → typed structs, formatting goes typed structs →
//! [`Element`] → text. Content the model does not know stays in this form (see
//! [`super::Extra`]) so it can be written back unchanged.

/// One node below an element. Whitespace-only text between elements is not kept: formatting
/// re-indents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    /// Character data, unescaped.
    Text(String),
    /// The inside of `<!--…-->`.
    Comment(String),
    /// The inside of `<?…?>`.
    Pi(String),
}

/// An element with its qualified name (prefix kept as written), attributes in document order
/// (values unescaped) and children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

impl Element {
    pub fn new(name: impl Into<String>) -> Self {
        Element {
            name: name.into(),
            ..Default::default()
        }
    }

    /// An element holding only text, like `<name>vm</name>` (no child for empty text).
    pub fn with_text(name: impl Into<String>, text: impl Into<String>) -> Self {
        let mut el = Element::new(name);
        let text = text.into();
        if !text.is_empty() {
            el.children.push(Node::Text(text));
        }
        el
    }

    /// The value of an attribute, by qualified name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Appends an attribute (builder style).
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.attrs.push((name.to_string(), value.into()));
        self
    }

    /// Appends an attribute when there is a value.
    pub fn set_opt<T: ToString>(&mut self, name: &str, value: Option<T>) -> &mut Self {
        if let Some(v) = value {
            self.attrs.push((name.to_string(), v.to_string()));
        }
        self
    }

    pub fn push(&mut self, child: Element) -> &mut Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Appends `<name>text</name>` when there is a text.
    pub fn push_text_opt(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.push(Element::with_text(name, t));
        }
        self
    }

    /// Child elements in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// All direct text, concatenated.
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The part of the name after the namespace prefix.
    pub fn local_name(&self) -> &str {
        split_qname(&self.name).1
    }
}

/// Splits `prefix:local` into `(Some(prefix), local)`.
pub fn split_qname(name: &str) -> (Option<&str>, &str) {
    match name.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, name),
    }
}
