//! Plumbing shared by every virtplane daemon.

pub mod client;
pub mod daemon;
pub mod dial;
pub mod events;
pub mod health_listen;
pub mod http2;
pub mod identity;
pub mod logging;
pub mod metrics;
pub mod names;
pub mod object_files;
pub mod reply;
pub mod request_observer;
pub mod runtime;
pub mod server;
pub mod slot;
pub mod status;
pub mod store;
pub mod tls;
pub mod trace_context;
