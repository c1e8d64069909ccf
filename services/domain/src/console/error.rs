//! Why attaching to a console, or typing into it, failed.

use std::path::PathBuf;
use std::time::Duration;

use super::hub::Closed;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Another client is the console's writer and `force` was not given.
    #[error("console of '{domain}' is in use by another writer; use --force")]
    Busy { domain: String },
    /// A read-only client sent input.
    #[error("console of '{domain}' is attached read-only: input is not accepted")]
    ReadOnly { domain: String },
    #[error("cannot connect to console '{device}' of domain '{domain}' at {}: {source}", path.display())]
    Connect {
        domain: String,
        device: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("console '{device}' of domain '{domain}' did not accept a connection within {after:?}")]
    ConnectTimeout {
        domain: String,
        device: String,
        after: Duration,
    },
    /// The console ended while attaching (the domain stopped, or the service is stopping).
    #[error("{}", .0.message)]
    Closed(Closed),
}
