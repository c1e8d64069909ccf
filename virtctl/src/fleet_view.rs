//! The Node column: when the gateway serves many nodes, it names each listed object's node
//! (and whether that node answered). One host's lists have no node, and no column.

use crate::output::virsh_table;

/// The state word shown for an object whose node did not answer: its last known state may
/// be stale.
pub const UNREACHABLE: &str = "unreachable";

/// The node an object lives on, from a list item's `node` field (empty on one host).
pub fn node_of(node: &str) -> Option<String> {
    (!node.is_empty()).then(|| node.to_owned())
}

/// serde's `skip_serializing_if` for `node_unreachable`.
pub fn is_false(value: &bool) -> bool {
    !*value
}

/// virsh's table, with a Node column at the end when any row has a node.
pub fn table_with_nodes(
    header: &[&str],
    mut rows: Vec<Vec<String>>,
    nodes: &[Option<String>],
) -> String {
    if nodes.iter().all(Option::is_none) {
        return virsh_table(header, &rows);
    }
    let mut header = header.to_vec();
    header.push("Node");
    for (row, node) in rows.iter_mut().zip(nodes) {
        row.push(node.clone().unwrap_or_default());
    }
    virsh_table(&header, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_column_appears_only_with_nodes() {
        let rows = vec![vec!["web".to_owned()], vec!["db".to_owned()]];
        let plain = table_with_nodes(&["Name"], rows.clone(), &[None, None]);
        assert!(!plain.contains("Node"), "{plain}");
        let fleet = table_with_nodes(
            &["Name"],
            rows,
            &[Some("node-a".to_owned()), Some("node-b".to_owned())],
        );
        let lines: Vec<&str> = fleet.lines().collect();
        assert!(
            lines[0].contains("Name") && lines[0].contains("Node"),
            "{fleet}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("web") && l.contains("node-a")),
            "{fleet}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("db") && l.contains("node-b")),
            "{fleet}"
        );
    }
}
