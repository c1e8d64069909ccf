//! The domain service: libvirt's virDomain* API over a driver.

pub mod xml;
