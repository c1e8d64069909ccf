//! Output: one JSON line per measurement, with the machine's load average around it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::stats::LatencyMs;

/// One measurement, as printed.
#[derive(Debug, Serialize)]
pub struct Measurement<'a> {
    pub scenario: &'a str,
    pub label: &'a str,
    pub server: &'a str,
    pub clients: usize,
    /// `bench-NNNN` domains defined while measuring.
    pub domains: usize,
    pub seconds: f64,
    pub trials: usize,
    pub ops_per_s_median: f64,
    pub ops_per_s_trials: Vec<f64>,
    pub latency: Option<LatencyMs>,
    /// CPU microseconds per operation in this process ("bench") and each `--watch-pid`.
    pub cpu_us_per_op: BTreeMap<String, f64>,
    pub loadavg_before: String,
    pub loadavg_after: String,
}

/// `/proc/loadavg`, trimmed (empty if unreadable).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Prints `value` as one JSON line on stdout.
pub fn print<T: Serialize>(value: &T) {
    match serde_json::to_string(value) {
        Ok(line) => println!("{line}"),
        Err(e) => eprintln!("virtplane-bench: cannot encode result: {e}"),
    }
}
