//! Content the typed model does not know, kept so formatting can write it back.
//!
//! Every modelled element owns an [`Extra`]: its unknown attributes (written after the known
//! ones), its unknown child nodes, each anchored to the known sibling element it followed in
//! the input (so it is written back after that sibling), and the extras of modelled leaf
//! children that have no struct of their own (`sub`, keyed by element name).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::tree::{Element, Node};

/// Unknown content of one modelled element. Equality ignores `path`, which is diagnostic.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// Where the owning element sits, like `domain/devices/disk`; used to report unknowns.
    pub path: String,
    /// Unknown attributes in input order.
    pub attrs: Vec<(String, String)>,
    /// Unknown children with the name of the known element they followed (`None`: first).
    pub nodes: Vec<(Option<String>, Node)>,
    /// Extras of modelled leaf children, keyed by element name (`boot#1` for repeats).
    pub sub: BTreeMap<String, Extra>,
}

impl PartialEq for Extra {
    fn eq(&self, other: &Self) -> bool {
        self.attrs == other.attrs && self.nodes == other.nodes && self.sub == other.sub
    }
}

impl Eq for Extra {}

/// State threaded through formatting.
#[derive(Debug, Default)]
pub struct FmtCtx {
    /// Include secrets (graphics passwords).
    pub secure: bool,
    /// Paths of unknown elements and attributes written so far.
    pub unknown: Vec<String>,
}

impl Extra {
    /// True when there is nothing to write back.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty() && self.nodes.is_empty() && self.sub.is_empty()
    }

    /// Merges this unknown content into the freshly built `el`.
    pub fn apply(&self, el: &mut Element, ctx: &mut FmtCtx) {
        let known: HashSet<String> = el.attrs.iter().map(|(k, _)| k.clone()).collect();
        for (k, v) in &self.attrs {
            if !known.contains(k) {
                el.attrs.push((k.clone(), v.clone()));
                if !is_namespace_decl(k) {
                    ctx.unknown.push(format!("{}/@{}", self.path, k));
                }
            }
        }
        if self.nodes.is_empty() {
            return;
        }
        for (_, node) in &self.nodes {
            if let Node::Element(e) = node {
                ctx.unknown.push(format!("{}/{}", self.path, e.name));
            }
        }
        let known = std::mem::take(&mut el.children);
        let mut last_of: HashMap<&str, usize> = HashMap::new();
        for (i, node) in known.iter().enumerate() {
            if let Node::Element(e) = node {
                last_of.insert(e.name.as_str(), i);
            }
        }
        let anchored = |name: Option<&str>| -> Vec<Node> {
            self.nodes
                .iter()
                .filter(|(a, _)| a.as_deref() == name)
                .map(|(_, n)| n.clone())
                .collect()
        };
        let mut out: Vec<Node> = anchored(None);
        let orphans: Vec<Node> = self
            .nodes
            .iter()
            .filter(|(a, _)| a.as_deref().is_some_and(|a| !last_of.contains_key(a)))
            .map(|(_, n)| n.clone())
            .collect();
        for (i, node) in known.iter().enumerate() {
            out.push(node.clone());
            if let Node::Element(e) = node
                && last_of.get(e.name.as_str()) == Some(&i)
            {
                out.extend(anchored(Some(e.name.as_str())));
            }
        }
        out.extend(orphans);
        el.children = out;
    }

    /// Applies the extras kept for the leaf child `key`, if any.
    pub fn apply_sub(&self, key: &str, el: &mut Element, ctx: &mut FmtCtx) {
        if let Some(extra) = self.sub.get(key) {
            extra.apply(el, ctx);
        }
    }
}

/// `xmlns` and `xmlns:*` are namespace plumbing, not content a driver must honour.
fn is_namespace_decl(name: &str) -> bool {
    name == "xmlns" || name.starts_with("xmlns:")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(el: &Element) -> Vec<&str> {
        el.elements().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn unknown_children_follow_their_anchor() {
        let extra = Extra {
            path: "x".into(),
            attrs: vec![("u".into(), "1".into())],
            nodes: vec![
                (None, Node::Element(Element::new("first"))),
                (Some("a".into()), Node::Element(Element::new("after-a"))),
                (Some("gone".into()), Node::Element(Element::new("orphan"))),
                (Some("a".into()), Node::Element(Element::new("after-a2"))),
            ],
            sub: BTreeMap::new(),
        };
        let mut el = Element::new("x");
        el.set("k", "v");
        el.push(Element::new("a"));
        el.push(Element::new("a"));
        el.push(Element::new("b"));
        let mut ctx = FmtCtx::default();
        extra.apply(&mut el, &mut ctx);
        assert_eq!(
            names(&el),
            ["first", "a", "a", "after-a", "after-a2", "b", "orphan"]
        );
        assert_eq!(el.attrs[1], ("u".to_string(), "1".to_string()));
        assert!(ctx.unknown.contains(&"x/@u".to_string()));
        assert!(ctx.unknown.contains(&"x/orphan".to_string()));
    }
}
