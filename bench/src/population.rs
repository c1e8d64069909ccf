//! The defined-but-inactive domains the read benchmarks look up: `bench-0000`, `bench-0001`, …

use std::collections::BTreeSet;
use std::time::Instant;

use serde::Serialize;
use virtplane_proto::v1::ListDomainsRequest;

use crate::cli::Args;
use crate::conn::{Client, Target};
use crate::ops::{self, PREFIX};
use crate::report;

/// Name of the `i`-th populated domain.
pub fn bench_name(i: usize) -> String {
    format!("{PREFIX}{i:04}")
}

/// True for `bench-` followed by digits only (not the define-undefine temporaries).
fn is_populated_name(name: &str) -> bool {
    name.strip_prefix(PREFIX)
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
}

/// Every domain name on the server.
async fn all_names(client: &mut Client) -> Result<Vec<String>, String> {
    let list = client
        .list(ListDomainsRequest::default())
        .await
        .map_err(|s| format!("list: {s}"))?
        .into_inner();
    Ok(list.domains.into_iter().map(|d| d.name).collect())
}

/// The populated `bench-NNNN` names, sorted; an error if there are none.
pub async fn bench_names(target: &Target) -> Result<Vec<String>, String> {
    let names: Vec<String> = all_names(&mut target.client())
        .await?
        .into_iter()
        .filter(|n| is_populated_name(n))
        .collect();
    if names.is_empty() {
        return Err("no bench-NNNN domains defined: run `virtplane-bench populate N` first".into());
    }
    Ok(names)
}

/// What `populate` and `cleanup` did.
#[derive(Debug, Serialize)]
struct Change<'a> {
    scenario: &'a str,
    label: &'a str,
    domains: usize,
    added: usize,
    removed: usize,
    seconds: f64,
    defines_per_s: Option<f64>,
}

/// Undefines `names` (or defines them, when `define`) with up to `clients` connections.
async fn apply(
    target: &Target,
    args: &Args,
    names: Vec<String>,
    define: bool,
) -> Result<(), String> {
    let clients = args.clients.max(1);
    let mut tasks = Vec::new();
    for tid in 0..clients {
        let mine: Vec<String> = names.iter().skip(tid).step_by(clients).cloned().collect();
        let mut client = target.client();
        let domain_type = args.domain_type.clone();
        tasks.push(tokio::spawn(async move {
            for name in &mine {
                let result = if define {
                    ops::define(&mut client, name, &domain_type).await
                } else {
                    ops::undefine(&mut client, name).await
                };
                result.map_err(|s| format!("{name}: {s}"))?;
            }
            Ok::<_, String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Makes exactly `count` populated domains exist (bench-0000 .. bench-{count-1}).
pub async fn populate(target: &Target, args: &Args, count: usize) -> Result<(), String> {
    let want: BTreeSet<String> = (0..count).map(bench_name).collect();
    let have: BTreeSet<String> = all_names(&mut target.client())
        .await?
        .into_iter()
        .filter(|n| is_populated_name(n))
        .collect();
    let extra: Vec<String> = have.difference(&want).cloned().collect();
    let missing: Vec<String> = want.difference(&have).cloned().collect();
    let (added, removed) = (missing.len(), extra.len());
    apply(target, args, extra, false).await?;
    let start = Instant::now();
    apply(target, args, missing, true).await?;
    let seconds = start.elapsed().as_secs_f64();
    report::print(&Change {
        scenario: "populate",
        label: &args.label,
        domains: count,
        added,
        removed,
        seconds,
        defines_per_s: (added > 0).then(|| (added as f64 / seconds).round()),
    });
    Ok(())
}

/// Undefines every domain named `bench-…`.
pub async fn cleanup(target: &Target, args: &Args) -> Result<(), String> {
    let ours: Vec<String> = all_names(&mut target.client())
        .await?
        .into_iter()
        .filter(|n| n.starts_with(PREFIX))
        .collect();
    let removed = ours.len();
    let start = Instant::now();
    apply(target, args, ours, false).await?;
    report::print(&Change {
        scenario: "cleanup",
        label: &args.label,
        domains: 0,
        added: 0,
        removed,
        seconds: start.elapsed().as_secs_f64(),
        defines_per_s: None,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_numbered_names_are_populated_ones() {
        assert_eq!(bench_name(7), "bench-0007");
        assert!(is_populated_name("bench-0007"));
        assert!(is_populated_name("bench-12345"));
        assert!(!is_populated_name("bench-tmp-1-2-3"));
        assert!(!is_populated_name("bench-"));
        assert!(!is_populated_name("test"));
    }
}
