//! The domain service's own metrics: domains by state, counted from the driver's cached list
//! at scrape time (a read that never waits behind a job), and the outcome labels of QMP and
//! guest agent calls (recorded where those calls are made).

use std::sync::Arc;

use virtplane_common::metrics::{DOMAINS, on_scrape, set_objects_by_state};

use crate::driver::DomainDriver;
use crate::driver::qemu::agent::AgentError;
use crate::driver::qemu::monitor::MonitorError;
use crate::model::{ListFilter, State};

/// Every state, with its label (libvirt's `virsh domstate` words).
const STATES: [(State, &str); 8] = [
    (State::NoState, "nostate"),
    (State::Running, "running"),
    (State::Blocked, "blocked"),
    (State::Paused, "paused"),
    (State::Shutdown, "shutdown"),
    (State::Shutoff, "shutoff"),
    (State::Crashed, "crashed"),
    (State::PmSuspended, "pmsuspended"),
];

/// Keeps [`DOMAINS`] up to date on every scrape of `/metrics`.
pub fn count_domains_on_scrape(driver: Arc<dyn DomainDriver>) {
    on_scrape(move || {
        let counts = domains_by_state(driver.as_ref());
        async move { set_objects_by_state(DOMAINS, &counts) }
    });
}

/// How many domains are in each state, every state listed (zeros included).
pub fn domains_by_state(driver: &dyn DomainDriver) -> Vec<(&'static str, usize)> {
    let mut counts: Vec<(&'static str, usize)> =
        STATES.iter().map(|(_, label)| (*label, 0)).collect();
    for summary in driver.list(&ListFilter::default()) {
        if let Some(index) = STATES.iter().position(|(state, _)| *state == summary.state) {
            counts[index].1 += 1;
        }
    }
    counts
}

/// The `outcome` label of a QMP command.
pub fn qmp_outcome<T>(result: &Result<T, MonitorError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(MonitorError::Timeout { .. }) => "timeout",
        Err(MonitorError::Disconnected | MonitorError::Connect(_)) => "disconnected",
        Err(_) => "error",
    }
}

/// The `outcome` label of a guest agent call.
pub fn agent_outcome<T>(result: &Result<T, AgentError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(AgentError::Agent { .. }) => "refused",
        Err(AgentError::NotResponding { .. }) => "not_responding",
        Err(AgentError::Busy { .. }) => "busy",
        Err(AgentError::NotConnected { .. }) => "not_connected",
        Err(AgentError::Protocol(_)) => "protocol_error",
        Err(AgentError::Invalid(_)) => "invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::DriverConfig;

    #[tokio::test]
    async fn the_test_worlds_running_domain_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let config = DriverConfig {
            state_dir: dir.path().join("state"),
            run_dir: dir.path().join("run"),
            emulator: None,
            vm_cgroup_root: None,
            network_service: None,
            storage_service: None,
            guest_agent_timeout: None,
        };
        let driver = crate::driver::build(crate::driver::DriverKind::Test, &config)
            .await
            .unwrap();
        let counts = domains_by_state(driver.as_ref());
        assert_eq!(counts.len(), 8, "every state, zeros included");
        assert!(counts.contains(&("running", 1)), "{counts:?}");
        assert!(counts.contains(&("paused", 0)), "{counts:?}");
    }

    #[test]
    fn outcomes_are_named() {
        let timeout: Result<(), _> = Err(MonitorError::Timeout {
            command: "query-status".into(),
            after: std::time::Duration::from_secs(1),
        });
        assert_eq!(qmp_outcome(&timeout), "timeout");
        assert_eq!(qmp_outcome(&Ok::<_, MonitorError>(())), "ok");
        let refused: Result<(), _> = Err(AgentError::Agent {
            class: "CommandNotFound".into(),
            desc: "no".into(),
        });
        assert_eq!(agent_outcome(&refused), "refused");
    }
}
