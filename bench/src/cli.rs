//! Command-line arguments.

use clap::{Parser, Subcommand};

/// Load generator for virtplane's domain service (directly or through the gateway).
#[derive(Debug, Parser)]
#[command(name = "virtplane-bench", version)]
pub struct Args {
    /// Server address: unix:/path/to.sock (domain service or gateway) or host:port.
    #[arg(long, env = "VIRTPLANE_SERVER", global = true, default_value = "")]
    pub server: String,
    /// Bearer token, sent as `authorization: Bearer <token>` (needed through the gateway).
    #[arg(long, env = "VIRTPLANE_TOKEN", global = true)]
    pub token: Option<String>,
    /// Concurrent clients, each with its own connection.
    #[arg(long, global = true, default_value_t = 1)]
    pub clients: usize,
    /// Length of each time-boxed trial, in seconds.
    #[arg(long, global = true, default_value_t = 2.0)]
    pub seconds: f64,
    /// Trials per measurement; throughput is the median over trials.
    #[arg(long, global = true, default_value_t = 3)]
    pub trials: usize,
    /// Free-form tag copied into every JSON line (e.g. "direct" or "gateway").
    #[arg(long, global = true, default_value = "")]
    pub label: String,
    /// `<domain type=...>` of the XML that define-undefine and populate send.
    #[arg(long, global = true, default_value = "kvm")]
    pub domain_type: String,
    /// Also report the CPU time per operation of this process (repeatable; e.g. the
    /// domain service's and the gateway's pids).
    #[arg(long = "watch-pid", value_name = "PID", global = true)]
    pub watch_pids: Vec<u32>,
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// What to measure (or prepare).
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Lookup then GetInfo by name (libvirt's lookupByName + info, 2 RPCs), then GetInfo
    /// by name alone (1 RPC, the same information in virtplane's API).
    LookupInfo,
    /// GetInfo by name alone.
    Info,
    /// List of every domain (virConnectListAllDomains).
    List,
    /// Define a domain with a unique name, then Undefine it (both durable).
    DefineUndefine,
    /// Make exactly COUNT domains `bench-0000`.. exist (removes higher-numbered ones).
    Populate {
        /// How many `bench-NNNN` domains should exist.
        count: usize,
    },
    /// Undefine every domain whose name starts with `bench-`.
    Cleanup,
}
