//! The network's own nftables table(s), applied with the `nft` tool, and the other tables'
//! chain policies that may drop the network's traffic.
//!
//! Applying replaces the caller's tables atomically: one `nft -f -` transaction of
//! ```text
//! add table ip virtplane_default; delete table ip virtplane_default
//! table ip virtplane_default { … }
//! ```
//! so the old rules stay in force until the new ones are (the kernel commits the whole
//! transaction or none of it: a ruleset with an error leaves the old table as it was), and
//! the `add` makes the `delete` succeed on the first start. Deleting uses the same pair.
//!
//! This module never touches a table it is not given: every table name must start with
//! `virtplane_`, and a ruleset may consist only of `table FAMILY NAME { … }` blocks (and
//! `define`s) for the tables the caller names — no `flush ruleset`, no `include`, no rules
//! added to anyone else's chains (checked before `nft` runs, see [`check_ruleset`]).
//! Other tables are only read, to report conflicts (`nft -j list ruleset`): a base chain on
//! the forward or input hook whose policy is drop, such as Docker's or a firewall's
//! `table ip filter chain FORWARD`, may drop the network's traffic before our accept rules
//! matter (a packet must be accepted by every base chain on a hook). Rules of the legacy
//! iptables backend are invisible to `nft` and not reported.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::command::{CommandError, find_program, run};

/// `nft` runs in milliseconds; this bounds a wedged one (a netlink socket that never answers).
const NFT_TIMEOUT: Duration = Duration::from_secs(20);

/// The prefix every table of ours has, so a mistake cannot name someone else's.
pub const TABLE_PREFIX: &str = "virtplane_";

/// What can go wrong, naming the table and the operation.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("invalid nftables table name '{name}': {why}")]
    InvalidTable { name: String, why: String },
    #[error("the ruleset for {tables} {why}: {statement:?}")]
    ForeignStatement {
        tables: String,
        statement: String,
        why: String,
    },
    #[error("cannot {what}: {source}")]
    Command {
        what: String,
        #[source]
        source: CommandError,
    },
    #[error("cannot {what}: nft says: {message}")]
    Failed { what: String, message: String },
    #[error("cannot {what}: unreadable output of `nft -j`: {why}")]
    Output { what: String, why: String },
}

/// An nftables address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Ip,
    Ip6,
    Inet,
    Arp,
    Bridge,
    Netdev,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
            Family::Arp => "arp",
            Family::Bridge => "bridge",
            Family::Netdev => "netdev",
        }
    }

    pub fn parse(text: &str) -> Option<Family> {
        Some(match text {
            "ip" => Family::Ip,
            "ip6" => Family::Ip6,
            "inet" => Family::Inet,
            "arp" => Family::Arp,
            "bridge" => Family::Bridge,
            "netdev" => Family::Netdev,
            _ => return None,
        })
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A table of ours: a family and a name that starts with [`TABLE_PREFIX`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Table {
    family: Family,
    name: String,
}

impl Table {
    /// Checks the name: the prefix, then what nft's scanner takes as one word (letters,
    /// digits, `_`, `-`, `.`), at most 63 bytes so every kernel takes it.
    pub fn new(family: Family, name: &str) -> Result<Table, NftError> {
        let invalid = |why: &str| NftError::InvalidTable {
            name: name.to_owned(),
            why: why.to_owned(),
        };
        if !name.starts_with(TABLE_PREFIX) || name.len() == TABLE_PREFIX.len() {
            return Err(invalid(&format!(
                "the network service only manages tables named {TABLE_PREFIX}…"
            )));
        }
        if name.len() > 63 {
            return Err(invalid("it is longer than 63 bytes"));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        {
            return Err(invalid(&format!("it contains {c:?}")));
        }
        Ok(Table {
            family,
            name: name.to_owned(),
        })
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "table {} {}", self.family, self.name)
    }
}

/// A base chain of another table whose policy may drop the network's traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub family: Family,
    pub table: String,
    pub chain: String,
    /// "forward" or "input".
    pub hook: String,
    pub policy: String,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let consequence = match (self.family, self.hook.as_str()) {
            (Family::Bridge, _) => "traffic between the guests of this network may be dropped",
            (_, "forward") => "forwarded traffic of this network may be dropped",
            _ => "DHCP and DNS requests from this network's guests may be dropped",
        };
        write!(
            f,
            "table {} {} chain {} has policy {}: {consequence}",
            self.family, self.table, self.chain, self.policy
        )
    }
}

/// Replaces `tables` with the ones `ruleset` defines, atomically (module docs). A table of
/// `tables` that `ruleset` does not define ends up deleted.
pub async fn apply(tables: &[Table], ruleset: &str) -> Result<(), NftError> {
    check_ruleset(tables, ruleset)?;
    let what = format!("apply the nftables ruleset of {}", list(tables));
    let mut transaction = replace_prefix(tables);
    transaction.push_str(ruleset);
    if !transaction.ends_with('\n') {
        transaction.push('\n');
    }
    nft(&what, &["-f", "-"], Some(&transaction)).await?;
    Ok(())
}

/// Deletes `table` if it exists.
pub async fn delete(table: &Table) -> Result<(), NftError> {
    let what = format!("delete nftables {table}");
    nft(
        &what,
        &["-f", "-"],
        Some(&replace_prefix(std::slice::from_ref(table))),
    )
    .await?;
    Ok(())
}

/// Whether `table` exists.
pub async fn exists(table: &Table) -> Result<bool, NftError> {
    let what = format!("look up nftables {table}");
    let tables = list_tables(&what).await?;
    Ok(tables.contains(&(table.family, table.name.clone())))
}

/// Every table in the namespace, ours and others, as (family, name).
pub async fn tables() -> Result<BTreeSet<(Family, String)>, NftError> {
    list_tables("list the nftables tables").await
}

/// The base chains of tables other than `ours` that hook forward or input with a drop
/// policy.
pub async fn conflicts(ours: &[Table]) -> Result<Vec<Conflict>, NftError> {
    let what = "read the nftables ruleset";
    let output = nft(what, &["-j", "list", "ruleset"], None).await?;
    let json = parse_json(what, &output)?;
    Ok(drop_policies(&json, ours))
}

/// `add table F N; delete table F N` for each table: the start of every transaction.
fn replace_prefix(tables: &[Table]) -> String {
    tables
        .iter()
        .map(|t| {
            format!(
                "add table {f} {n}; delete table {f} {n}\n",
                f = t.family,
                n = t.name
            )
        })
        .collect()
}

fn list(tables: &[Table]) -> String {
    tables
        .iter()
        .map(Table::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

async fn list_tables(what: &str) -> Result<BTreeSet<(Family, String)>, NftError> {
    let output = nft(what, &["-j", "list", "tables"], None).await?;
    let json = parse_json(what, &output)?;
    Ok(objects(&json, "table")
        .filter_map(|t| {
            let family = Family::parse(t["family"].as_str()?)?;
            Some((family, t["name"].as_str()?.to_owned()))
        })
        .collect())
}

/// Runs `nft ARGS…`; its stdout, or its own words for a failure.
async fn nft(what: &str, args: &[&str], stdin: Option<&str>) -> Result<String, NftError> {
    let command_error = |source| NftError::Command {
        what: what.to_owned(),
        source,
    };
    let program: PathBuf = find_program("nft", "nftables").map_err(command_error)?;
    let output = run(&program, args, stdin, NFT_TIMEOUT)
        .await
        .map_err(command_error)?;
    if !output.status.success() {
        return Err(NftError::Failed {
            what: what.to_owned(),
            message: output.message(),
        });
    }
    Ok(output.stdout)
}

fn parse_json(what: &str, output: &str) -> Result<Value, NftError> {
    // An empty ruleset prints a bare metainfo object, or nothing at all on some versions.
    if output.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_str(output).map_err(|e| NftError::Output {
        what: what.to_owned(),
        why: e.to_string(),
    })
}

/// The objects of `kind` ("table", "chain", …) in `nft -j` output:
/// `{"nftables": [{"metainfo": …}, {"table": {…}}, {"chain": {…}}, …]}`.
fn objects<'a>(json: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    json["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(move |item| item.get(kind))
}

/// The base chains of `nft -j list ruleset` output that may drop the network's traffic.
pub fn drop_policies(json: &Value, ours: &[Table]) -> Vec<Conflict> {
    objects(json, "chain")
        .filter_map(|chain| {
            let family = Family::parse(chain["family"].as_str()?)?;
            let table = chain["table"].as_str()?;
            if ours.iter().any(|t| t.family == family && t.name == table) {
                return None;
            }
            let hook = chain["hook"].as_str()?;
            let policy = chain["policy"].as_str()?;
            let relevant = matches!(
                family,
                Family::Ip | Family::Ip6 | Family::Inet | Family::Bridge
            ) && matches!(hook, "forward" | "input")
                && !(family == Family::Bridge && hook == "input");
            (relevant && policy == "drop").then(|| Conflict {
                family,
                table: table.to_owned(),
                chain: chain["name"].as_str().unwrap_or_default().to_owned(),
                hook: hook.to_owned(),
                policy: policy.to_owned(),
            })
        })
        .collect()
}

/// Checks that `ruleset` only defines `tables` (module docs): its top-level statements must
/// each be `table FAMILY NAME { … }` (or `add table …`) for one of them, or a `define`.
pub fn check_ruleset(tables: &[Table], ruleset: &str) -> Result<(), NftError> {
    let refuse = |statement: &str, why: &str| NftError::ForeignStatement {
        tables: list(tables),
        statement: statement.trim().to_owned(),
        why: why.to_owned(),
    };
    if tables.is_empty() {
        return Err(refuse("", "names no table"));
    }
    for statement in top_level_statements(ruleset).map_err(|why| refuse(ruleset, &why))? {
        let words: Vec<&str> = statement.header.split_whitespace().collect();
        let words = match words.as_slice() {
            ["define", ..] if !statement.block => continue,
            ["add", rest @ ..] => rest,
            other => other,
        };
        let (family, name) = match words {
            ["table", family, name] => (Family::parse(family), *name),
            // nft's default family.
            ["table", name] => (Some(Family::Ip), *name),
            _ => {
                return Err(refuse(
                    &statement.header,
                    "may only define its own tables, and has a statement that is not a table",
                ));
            }
        };
        let ours = family.is_some_and(|family| {
            tables
                .iter()
                .any(|table| table.family == family && table.name == name)
        });
        if !ours {
            return Err(refuse(
                &statement.header,
                "may only define its own tables, and names another table",
            ));
        }
        if !statement.block {
            return Err(refuse(
                &statement.header,
                "has a table statement without a body",
            ));
        }
    }
    Ok(())
}

/// A top-level statement: the text before its block (or all of it), and whether a `{ … }`
/// block followed.
#[derive(Debug, PartialEq, Eq)]
struct Statement {
    header: String,
    block: bool,
}

/// Splits a ruleset into its top-level statements: at depth 0, a newline or `;` ends a
/// statement, and a `{ … }` block ends the statement it belongs to. Comments (`#` to the
/// end of the line) and quoted strings are skipped.
fn top_level_statements(text: &str) -> Result<Vec<Statement>, String> {
    let mut statements = Vec::new();
    let mut header = String::new();
    let mut depth = 0usize;
    let mut chars = text.chars();
    let mut finish = |header: &mut String, block: bool| {
        if !header.trim().is_empty() || block {
            statements.push(Statement {
                header: header.trim().to_owned(),
                block,
            });
        }
        header.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                if depth == 0 {
                    finish(&mut header, false);
                }
            }
            '"' => {
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '"' {
                        closed = true;
                        break;
                    }
                    if depth == 0 {
                        header.push(c);
                    }
                }
                if !closed {
                    return Err("a quoted string is not closed".into());
                }
            }
            '{' => depth += 1,
            '}' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| "a '}' closes nothing".to_owned())?;
                if depth == 0 {
                    finish(&mut header, true);
                }
            }
            '\n' | ';' if depth == 0 => finish(&mut header, false),
            _ if depth == 0 => header.push(c),
            _ => {}
        }
    }
    if depth != 0 {
        return Err("a '{' is not closed".into());
    }
    finish(&mut header, false);
    Ok(statements)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Vec<Table> {
        vec![
            Table::new(Family::Ip, "virtplane_default").unwrap(),
            Table::new(Family::Ip6, "virtplane_default").unwrap(),
        ]
    }

    #[test]
    fn table_names_must_be_ours_and_plain() {
        Table::new(Family::Inet, "virtplane_net-1.a").unwrap();
        for (name, why) in [
            ("filter", "only manages tables named virtplane_"),
            ("virtplane_", "only manages tables named virtplane_"),
            ("virtplane_a b", "contains ' '"),
            ("virtplane_a;flush", "contains ';'"),
        ] {
            let error = Table::new(Family::Ip, name).unwrap_err().to_string();
            assert!(error.contains(why), "{name}: {error}");
        }
        assert_eq!(
            Table::new(Family::Ip6, "virtplane_x").unwrap().to_string(),
            "table ip6 virtplane_x"
        );
    }

    #[test]
    fn a_ruleset_may_define_only_the_named_tables() {
        let good = "\
# generated for network default
define LAN = 192.168.122.0/24
table ip virtplane_default {
    chain guest_forward {
        type filter hook forward priority filter; policy accept;
        comment \"a } in a string\" # and { in a comment
        ip saddr $LAN accept
    }
}
add table ip6 virtplane_default { chain c { } }
";
        check_ruleset(&ours(), good).unwrap();

        for (bad, why) in [
            ("flush ruleset\n", "not a table"),
            ("include \"/etc/x.nft\"\n", "not a table"),
            ("table ip filter { }\n", "names another table"),
            ("table inet virtplane_default { }\n", "names another table"),
            ("table virtplane_other { }\n", "names another table"),
            ("add rule ip filter FORWARD accept\n", "not a table"),
            (
                "table ip virtplane_default { }; delete table ip nat\n",
                "not a table",
            ),
            ("table ip virtplane_default\n", "without a body"),
            ("table ip virtplane_default {\n", "is not closed"),
            ("}\n", "closes nothing"),
        ] {
            let error = check_ruleset(&ours(), bad).unwrap_err().to_string();
            assert!(error.contains(why), "{bad:?}: {error}");
            assert!(
                error.starts_with(
                    "the ruleset for table ip virtplane_default, table ip6 virtplane_default"
                ),
                "{error}"
            );
        }
        assert!(check_ruleset(&[], "").is_err());
    }

    #[test]
    fn the_transaction_replaces_each_table_first() {
        assert_eq!(
            replace_prefix(&ours()),
            "add table ip virtplane_default; delete table ip virtplane_default\n\
             add table ip6 virtplane_default; delete table ip6 virtplane_default\n"
        );
    }

    /// `nft -j list ruleset` as nftables 1.0.6 printed it for iptables-nft-style tables
    /// (Docker's `filter` with a drop FORWARD policy), a firewall's `inet` table, a bridge
    /// filter, and our own table (which is never reported); nft prints it on one line, split
    /// here between objects.
    const RULESET: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
{"table": {"family": "ip", "name": "filter", "handle": 1}},
{"chain": {"family": "ip", "table": "filter", "name": "INPUT", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
{"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "handle": 2, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
{"chain": {"family": "ip", "table": "filter", "name": "DOCKER", "handle": 3}},
{"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 4, "expr": [{"counter": {"packets": 0, "bytes": 0}},
{"jump": {"target": "DOCKER"}}]}},
{"table": {"family": "bridge", "name": "br", "handle": 2}},
{"chain": {"family": "bridge", "table": "br", "name": "brfwd", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
{"table": {"family": "inet", "name": "fw", "handle": 3}},
{"chain": {"family": "inet", "table": "fw", "name": "in", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
{"chain": {"family": "inet", "table": "fw", "name": "out", "handle": 2, "type": "filter", "hook": "output", "prio": 0, "policy": "drop"}},
{"table": {"family": "ip", "name": "virtplane_default", "handle": 4}},
{"chain": {"family": "ip", "table": "virtplane_default", "name": "guest_forward", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}}]}"#;

    #[test]
    fn reports_drop_policies_of_other_tables() {
        let json: Value = serde_json::from_str(RULESET).unwrap();
        let conflicts: Vec<String> = drop_policies(&json, &ours())
            .iter()
            .map(Conflict::to_string)
            .collect();
        assert_eq!(
            conflicts,
            [
                "table ip filter chain FORWARD has policy drop: forwarded traffic of this \
                 network may be dropped",
                "table bridge br chain brfwd has policy drop: traffic between the guests \
                 of this network may be dropped",
                "table inet fw chain in has policy drop: DHCP and DNS requests from this \
                 network's guests may be dropped",
            ]
        );
        assert!(drop_policies(&Value::Null, &ours()).is_empty());
    }
}
