//! A cursor over one element while building the typed model from it.
//!
//! It records which attributes and children the model consumed; [`Scope::finish`] turns the
//! rest into an [`Extra`], which is how "nothing a user wrote is silently lost" is enforced in
//! one place instead of in every parser.

use std::collections::BTreeMap;

use super::error::XmlError;
use super::extra::Extra;
use super::tree::{Element, Node};

pub struct Scope<'a> {
    el: &'a Element,
    /// For messages: `<vcpu>`, `<devices>/<disk>/<target>`.
    loc: String,
    /// For unknown reports: `domain/devices/disk`.
    path: String,
    used_attrs: Vec<bool>,
    used_children: Vec<bool>,
    text_used: bool,
    sub: BTreeMap<String, Extra>,
}

impl<'a> Scope<'a> {
    pub fn root(el: &'a Element) -> Self {
        Scope::new(el, format!("<{}>", el.name), el.name.clone())
    }

    fn new(el: &'a Element, loc: String, path: String) -> Self {
        Scope {
            el,
            loc,
            path,
            used_attrs: vec![false; el.attrs.len()],
            used_children: vec![false; el.children.len()],
            text_used: false,
            sub: BTreeMap::new(),
        }
    }

    /// A scope for the child at `idx`, marking it consumed.
    fn enter(&mut self, idx: usize, child: &'a Element) -> Scope<'a> {
        self.used_children[idx] = true;
        // Children of the root are named on their own: "<vcpu>", not "<domain>/<vcpu>".
        let loc = if self.path.contains('/') {
            format!("{}/<{}>", self.loc, child.name)
        } else {
            format!("<{}>", child.name)
        };
        Scope::new(child, loc, format!("{}/{}", self.path, child.name))
    }

    pub fn element(&self) -> &'a Element {
        self.el
    }

    pub fn loc(&self) -> &str {
        &self.loc
    }

    /// `<vcpu> attribute 'placement'`.
    pub fn attr_loc(&self, name: &str) -> String {
        format!("{} attribute '{}'", self.loc, name)
    }

    pub fn attr(&mut self, name: &str) -> Option<&'a str> {
        let idx = self.el.attrs.iter().position(|(k, _)| k == name)?;
        self.used_attrs[idx] = true;
        Some(self.el.attrs[idx].1.as_str())
    }

    /// Like [`Scope::attr`], owned.
    pub fn attr_string(&mut self, name: &str) -> Option<String> {
        self.attr(name).map(str::to_string)
    }

    pub fn req_attr(&mut self, name: &str) -> Result<&'a str, XmlError> {
        self.attr(name)
            .ok_or_else(|| XmlError::missing(self.attr_loc(name)))
    }

    /// Reads and converts an attribute; `f` returns what was expected on failure.
    pub fn attr_parse<T>(
        &mut self,
        name: &str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, XmlError> {
        match self.attr(name) {
            None => Ok(None),
            Some(v) => f(v)
                .map(Some)
                .map_err(|expected| XmlError::value(self.attr_loc(name), v, expected)),
        }
    }

    /// Reads an attribute that must be one of `allowed`.
    pub fn attr_enum(&mut self, name: &str, allowed: &[&str]) -> Result<Option<String>, XmlError> {
        self.attr_parse(name, |v| super::values::one_of(v, allowed))
    }

    /// The element's text, marking it consumed.
    pub fn text(&mut self) -> String {
        self.text_used = true;
        self.el.text()
    }

    /// The element's trimmed text converted by `f`.
    pub fn text_parse<T>(
        &mut self,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, XmlError> {
        let text = self.text();
        let t = text.trim();
        f(t).map_err(|expected| XmlError::value(self.loc.clone(), t, expected))
    }

    /// The single child named `name`; more than one is an error.
    pub fn child(&mut self, name: &str) -> Result<Option<Scope<'a>>, XmlError> {
        let mut found = self.matching(|e| e.name == name);
        if found.len() > 1 {
            let loc = found[1].1.loc.clone();
            return Err(XmlError::invalid(loc, "may appear only once"));
        }
        Ok(found.pop().map(|(_, s)| s))
    }

    /// All children named `name`, in order.
    pub fn children(&mut self, name: &str) -> Vec<Scope<'a>> {
        self.matching(|e| e.name == name)
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }

    /// All not yet consumed children accepted by `pred`, with their element.
    pub fn matching(&mut self, pred: impl Fn(&Element) -> bool) -> Vec<(&'a Element, Scope<'a>)> {
        let el = self.el;
        let mut out = Vec::new();
        for (idx, node) in el.children.iter().enumerate() {
            if let Node::Element(e) = node
                && !self.used_children[idx]
                && pred(e)
            {
                let scope = self.enter(idx, e);
                out.push((e, scope));
            }
        }
        out
    }

    /// The text of the single leaf child `name`; its own unknown content is kept under `name`.
    pub fn leaf(&mut self, name: &str) -> Result<Option<String>, XmlError> {
        let Some(mut child) = self.child(name)? else {
            return Ok(None);
        };
        let text = child.text();
        self.keep(name, child.finish());
        Ok(Some(text))
    }

    /// Stores the extras of a modelled leaf child under `key`.
    pub fn keep(&mut self, key: &str, extra: Extra) {
        if !extra.is_empty() {
            self.sub.insert(key.to_string(), extra);
        }
    }

    /// Everything not consumed, as an [`Extra`].
    pub fn finish(self) -> Extra {
        let mut extra = Extra {
            path: self.path,
            sub: self.sub,
            ..Default::default()
        };
        for (i, (k, v)) in self.el.attrs.iter().enumerate() {
            if !self.used_attrs[i] {
                extra.attrs.push((k.clone(), v.clone()));
            }
        }
        let mut anchor: Option<String> = None;
        for (i, node) in self.el.children.iter().enumerate() {
            let keep = match node {
                Node::Element(e) if self.used_children[i] => {
                    anchor = Some(e.name.clone());
                    false
                }
                Node::Text(t) => !self.text_used && !t.trim().is_empty(),
                _ => !self.used_children[i],
            };
            if keep {
                extra.nodes.push((anchor.clone(), node.clone()));
            }
        }
        // Only the order within one anchor matters for output; a canonical group order makes
        // a re-parse of our own output (where known elements may have moved) compare equal.
        extra.nodes.sort_by(|a, b| a.0.cmp(&b.0));
        extra
    }
}
