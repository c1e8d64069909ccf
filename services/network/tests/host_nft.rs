//! `host::nft` against the real `nft` and kernel, each test in a network namespace of its
//! own (see `common`): our table is applied, replaced atomically, and deleted, other tables
//! are never touched, and their drop policies are reported.

mod common;

use std::process::Command;

use common::{in_own_netns, require};
use serde_json::Value;
use virtplane_network::host::nft::{self, Family, NftError, Table};

/// `nft ARGS…` in the test's namespace; stdout. Panics when it fails.
fn nft_cli(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new("nft")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run nft (install nftables)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The chain names of table `family name`, from `nft -j list table`.
fn chains(family: &str, name: &str) -> Vec<String> {
    let json: Value =
        serde_json::from_str(&nft_cli(&["-j", "list", "table", family, name], None)).unwrap();
    json["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|item| item.get("chain"))
        .map(|chain| chain["name"].as_str().unwrap().to_owned())
        .collect()
}

fn ruleset(chain: &str, subnet: &str) -> String {
    format!(
        "table ip virtplane_test {{
    chain {chain} {{
        type filter hook forward priority filter; policy accept;
        ip saddr {subnet} accept
    }}
    chain nat_postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {subnet} ip daddr != {subnet} masquerade
    }}
}}
"
    )
}

#[test]
fn our_table_is_applied_replaced_and_deleted_and_no_other_is_touched() {
    in_own_netns(|| async {
        require("nft", "nftables");
        // Someone else's table, as iptables-nft (Docker) makes it.
        nft_cli(
            &["-f", "-"],
            Some(
                "table ip filter {
    chain FORWARD { type filter hook forward priority 0; policy drop; }
}
",
            ),
        );
        let ours = Table::new(Family::Ip, "virtplane_test").unwrap();
        assert!(!nft::exists(&ours).await.unwrap());

        nft::apply(
            std::slice::from_ref(&ours),
            &ruleset("fwd_a", "192.168.100.0/24"),
        )
        .await
        .unwrap();
        assert!(nft::exists(&ours).await.unwrap());
        assert_eq!(chains("ip", "virtplane_test"), ["fwd_a", "nat_postrouting"]);
        let listed = nft_cli(&["list", "tables"], None);
        assert!(listed.contains("table ip virtplane_test"), "{listed}");
        assert!(listed.contains("table ip filter"), "{listed}");

        // Applying again replaces the whole table: the old chain is gone, not merged.
        nft::apply(
            std::slice::from_ref(&ours),
            &ruleset("fwd_b", "192.168.101.0/24"),
        )
        .await
        .unwrap();
        assert_eq!(chains("ip", "virtplane_test"), ["fwd_b", "nat_postrouting"]);
        let text = nft_cli(&["list", "table", "ip", "virtplane_test"], None);
        assert!(text.contains("192.168.101.0/24"), "{text}");
        assert!(!text.contains("192.168.100.0/24"), "{text}");

        // A ruleset nft rejects leaves the old table in force, and the error is nft's.
        let error = nft::apply(
            std::slice::from_ref(&ours),
            "table ip virtplane_test {\n    \
             chain fwd_c { type filter hook nowhere priority 0; }\n}\n",
        )
        .await
        .unwrap_err();
        assert!(matches!(error, NftError::Failed { .. }), "{error:?}");
        let text = error.to_string();
        assert!(
            text.starts_with(
                "cannot apply the nftables ruleset of table ip virtplane_test: nft says: "
            ),
            "{text}"
        );
        assert!(text.contains("nowhere"), "{text}");
        assert_eq!(chains("ip", "virtplane_test"), ["fwd_b", "nat_postrouting"]);

        // A ruleset that reaches for another table never gets to nft.
        let error = nft::apply(
            std::slice::from_ref(&ours),
            "table ip filter { chain FORWARD { policy accept; } }\n",
        )
        .await
        .unwrap_err();
        assert!(
            matches!(error, NftError::ForeignStatement { .. }),
            "{error:?}"
        );

        // Others' drop policies are reported; ours is not.
        let conflicts: Vec<String> = nft::conflicts(std::slice::from_ref(&ours))
            .await
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            conflicts,
            [
                "table ip filter chain FORWARD has policy drop: forwarded traffic of this \
              network may be dropped"
            ]
        );

        nft::delete(&ours).await.unwrap();
        assert!(!nft::exists(&ours).await.unwrap());
        nft::delete(&ours).await.unwrap();
        let tables = nft::tables().await.unwrap();
        assert_eq!(
            tables.into_iter().collect::<Vec<_>>(),
            [(Family::Ip, "filter".to_owned())],
            "only the other table is left, untouched"
        );
        assert_eq!(chains("ip", "filter"), ["FORWARD"]);
    });
}

#[test]
fn several_tables_are_replaced_in_one_transaction() {
    in_own_netns(|| async {
        require("nft", "nftables");
        let tables = [
            Table::new(Family::Ip, "virtplane_two").unwrap(),
            Table::new(Family::Ip6, "virtplane_two").unwrap(),
        ];
        let both = "\
table ip virtplane_two {
    chain input_v4 { type filter hook input priority filter; policy accept; }
}
table ip6 virtplane_two {
    chain input_v6 { type filter hook input priority filter; policy accept; }
}
";
        nft::apply(&tables, both).await.unwrap();
        assert_eq!(chains("ip", "virtplane_two"), ["input_v4"]);
        assert_eq!(chains("ip6", "virtplane_two"), ["input_v6"]);

        // A table the new ruleset no longer defines is deleted with the rest.
        let v4_only = "\
table ip virtplane_two {
    chain input_v4b { type filter hook input priority filter; policy accept; }
}
";
        nft::apply(&tables, v4_only).await.unwrap();
        assert_eq!(chains("ip", "virtplane_two"), ["input_v4b"]);
        assert!(!nft::exists(&tables[1]).await.unwrap());
        assert!(nft::conflicts(&tables).await.unwrap().is_empty());
    });
}
