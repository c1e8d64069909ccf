//! The storage service's own metric: pools by state (`running`, `inactive`, `building`,
//! `degraded`, `inaccessible`), counted from the driver's list at scrape time.

use std::sync::Arc;

use virtplane_common::metrics::{STORAGE_POOLS, on_scrape, set_objects_by_state};

use crate::driver::StorageDriver;
use crate::model::{PoolFilter, PoolState};

const STATES: [PoolState; 5] = [
    PoolState::Inactive,
    PoolState::Building,
    PoolState::Running,
    PoolState::Degraded,
    PoolState::Inaccessible,
];

/// Keeps [`STORAGE_POOLS`] up to date on every scrape of `/metrics`.
pub fn count_pools_on_scrape(driver: Arc<dyn StorageDriver>) {
    on_scrape(move || {
        let counts = pools_by_state(driver.as_ref());
        async move { set_objects_by_state(STORAGE_POOLS, &counts) }
    });
}

/// How many pools are in each state, every state listed (zeros included).
pub fn pools_by_state(driver: &dyn StorageDriver) -> Vec<(&'static str, usize)> {
    let pools = driver.list_pools(&PoolFilter::default());
    STATES
        .iter()
        .map(|state| {
            let count = pools.iter().filter(|pool| pool.state == *state).count();
            (state.as_str(), count)
        })
        .collect()
}
