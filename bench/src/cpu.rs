//! CPU time of processes (this one and, with `--watch-pid`, the servers) from `/proc`, so
//! each measurement can say how much CPU one operation costs in each process.

use std::collections::BTreeMap;

/// `/proc/*/stat` counts in USER_HZ ticks, which Linux fixes at 100 per second.
const TICKS_PER_SECOND: f64 = 100.0;

/// User+system CPU seconds of `pid` ("self" for this process); `None` if it is gone.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// CPU seconds of each watched process (plus "bench", this process) at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot(BTreeMap<String, f64>);

impl Snapshot {
    /// Reads the CPU time of this process and of `pids`.
    pub fn take(pids: &[u32]) -> Self {
        let mut map = BTreeMap::new();
        if let Some(s) = cpu_seconds("self") {
            map.insert("bench".to_owned(), s);
        }
        for pid in pids {
            if let Some(s) = cpu_seconds(&pid.to_string()) {
                map.insert(process_name(*pid), s);
            }
        }
        Self(map)
    }

    /// CPU microseconds per operation spent in each process between `self` and `later`.
    pub fn per_op_us(&self, later: &Snapshot, ops: usize) -> BTreeMap<String, f64> {
        self.0
            .iter()
            .filter_map(|(name, before)| {
                let after = later.0.get(name)?;
                let us = (after - before) * 1e6 / ops.max(1) as f64;
                Some((name.clone(), us.round()))
            })
            .collect()
    }
}

/// `comm` of `pid` followed by the pid, e.g. `virtplane-domai:1234`.
fn process_name(pid: u32) -> String {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    format!("{}:{pid}", comm.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_time() {
        let before = Snapshot::take(&[std::process::id()]);
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = Snapshot::take(&[std::process::id()]);
        let per_op = before.per_op_us(&after, 1);
        assert_eq!(per_op.len(), 2, "{per_op:?}");
        assert!(per_op.values().all(|v| *v >= 0.0));
    }
}
