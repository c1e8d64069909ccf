//! The network service's own metric: networks by state (`active`, `inactive`), counted from
//! the driver's list at scrape time.

use std::sync::Arc;

use virtplane_common::metrics::{NETWORKS, on_scrape, set_objects_by_state};

use crate::driver::NetworkDriver;
use crate::model::ListFilter;

/// Keeps [`NETWORKS`] up to date on every scrape of `/metrics`.
pub fn count_networks_on_scrape(driver: Arc<dyn NetworkDriver>) {
    on_scrape(move || {
        let counts = networks_by_state(driver.as_ref());
        async move { set_objects_by_state(NETWORKS, &counts) }
    });
}

/// How many networks are active and inactive (both listed, zeros included).
pub fn networks_by_state(driver: &dyn NetworkDriver) -> [(&'static str, usize); 2] {
    let networks = driver.list(&ListFilter::default());
    let active = networks.iter().filter(|network| network.active).count();
    [("active", active), ("inactive", networks.len() - active)]
}
