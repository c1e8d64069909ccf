//! `domstats` for the test driver: what its simulated domains can honestly say — state,
//! configured memory and vCPUs, device names and paths, and the same simulated CPU time
//! `dominfo` shows. It has no I/O to count, so block and interface counters stay unset, and
//! `domblkstat`, `domifstat` and `dommemstat` are UNIMPLEMENTED (the trait's defaults).

use std::time::SystemTime;

use super::TestDriver;
use crate::domains::Snapshot;
use crate::error::Result;
use crate::stats::{self, CpuStats, DomainStats, StatsQuery, VcpuEntry, VcpuState};

/// The test driver's simulated CPU time: wall time since start (as `dominfo` reports it).
fn simulated_cpu_ns(snapshot: &Snapshot) -> u64 {
    snapshot
        .started_at
        .filter(|_| snapshot.is_active())
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// One domain's record: [`stats::config_record`] plus, while active, the simulated CPU time
/// and each vCPU's state.
pub(super) fn record(snapshot: &Snapshot, query: &StatsQuery) -> DomainStats {
    let groups = query.groups.or_all();
    let mut record = stats::config_record(snapshot, groups);
    if !snapshot.is_active() {
        return record;
    }
    if groups.cpu_total {
        record.cpu = Some(CpuStats {
            time_ns: simulated_cpu_ns(snapshot),
            user_ns: None,
            system_ns: None,
        });
    }
    if let Some(vcpu) = record.vcpu.as_mut() {
        vcpu.vcpus = (0..vcpu.maximum)
            .map(|index| VcpuEntry {
                index,
                state: if index < vcpu.current {
                    VcpuState::Running
                } else {
                    VcpuState::Offline
                },
                time_ns: None,
                delay_ns: None,
            })
            .collect();
    }
    record
}

impl TestDriver {
    /// `domstats` over the test driver's domains; reads snapshots only, never a job lock.
    pub(super) fn stats_records(&self, query: &StatsQuery) -> Result<Vec<DomainStats>> {
        Ok(stats::select(&self.core.domains, query)?
            .iter()
            .map(|snapshot| record(snapshot, query))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{Reason, State};
    use crate::stats::StatsGroups;
    use crate::xml::parse_domain;

    fn snapshot(state: State) -> Snapshot {
        let def = parse_domain(
            "<domain type='test'><name>t</name><memory>1024</memory>\
             <vcpu current='1'>2</vcpu><os><type>hvm</type></os></domain>",
        )
        .unwrap();
        Snapshot {
            def: Arc::new(def),
            next_def: None,
            state,
            reason: Reason::Unknown,
            id: 1,
            persistent: true,
            autostart: false,
            started_at: state
                .is_active()
                .then(|| SystemTime::now() - std::time::Duration::from_secs(2)),
            run_taints: Vec::new(),
            visible: true,
            removed: false,
        }
    }

    #[test]
    fn running_domains_get_cpu_time_and_vcpu_states() {
        let r = record(&snapshot(State::Running), &StatsQuery::default());
        assert!(r.cpu.unwrap().time_ns >= 2_000_000_000);
        let vcpus = r.vcpu.unwrap().vcpus;
        assert_eq!(vcpus.len(), 2);
        assert_eq!(vcpus[0].state, VcpuState::Running);
        assert_eq!(vcpus[1].state, VcpuState::Offline);
    }

    #[test]
    fn shut_off_domains_only_get_their_config_figures() {
        let r = record(&snapshot(State::Shutoff), &StatsQuery::default());
        assert_eq!(r.cpu, None);
        assert!(r.vcpu.unwrap().vcpus.is_empty());
        let only_state = StatsQuery {
            groups: StatsGroups {
                state: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let r = record(&snapshot(State::Running), &only_state);
        assert_eq!(r.state, Some((State::Running, Reason::Unknown)));
        assert!(r.cpu.is_none() && r.vcpu.is_none() && r.balloon.is_none());
    }
}
