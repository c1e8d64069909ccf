//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};

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
    /// Start, suspend+resume round trips and destroy of one minimal domain through the API
    /// (needs `virtplane-domaind --driver qemu` behind `--server`).
    Lifecycle(LifecycleArgs),
    /// The floor: the command line the qemu driver generates for the same domain, run
    /// directly and driven over its own QMP socket (no service involved).
    Floor(FloorArgs),
    /// Service restart with COUNT running VMs: starts its own `virtplane-domaind --driver
    /// qemu`, starts the VMs, SIGKILLs and restarts the service, and times until every domain
    /// is listed with its state and answers GetInfo (through `--server`).
    Restart(RestartArgs),
}

/// `<domain type=...>` of the lifecycle domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GuestType {
    /// `kvm` if this process can open /dev/kvm read-write (as `03_start.py` assumes), else `qemu`.
    Auto,
    Kvm,
    Qemu,
}

/// How many lifecycle iterations, and of which domain.
#[derive(Debug, ClapArgs)]
pub struct LifecycleArgs {
    /// Start/destroy iterations (after one warm-up iteration).
    #[arg(long, default_value_t = 20)]
    pub starts: usize,
    /// Suspend+resume round trips per start.
    #[arg(long, default_value_t = 25)]
    pub cycles: usize,
    #[arg(long = "type", value_enum, default_value = "auto")]
    pub guest: GuestType,
    /// The domain's name (defined at the beginning, undefined at the end).
    #[arg(long, default_value = "bench-life-0")]
    pub name: String,
}

/// The floor's iterations.
#[derive(Debug, ClapArgs)]
pub struct FloorArgs {
    #[arg(long, default_value_t = 20)]
    pub starts: usize,
    #[arg(long, default_value_t = 25)]
    pub cycles: usize,
    #[arg(long = "type", value_enum, default_value = "auto")]
    pub guest: GuestType,
    /// The emulator the generated command line runs (the domain XML names this one too).
    #[arg(long, default_value = "/usr/bin/qemu-system-x86_64")]
    pub emulator: PathBuf,
    /// Also move QEMU into cgroups of its own after the greeting, as the driver does, and time
    /// it (the start then includes it).
    #[arg(long)]
    pub place_cgroup: bool,
}

/// The restart benchmark's service and VMs.
#[derive(Debug, ClapArgs)]
pub struct RestartArgs {
    /// How many VMs run while the service restarts.
    #[arg(long, default_value_t = 100)]
    pub count: usize,
    /// Restarts with the VMs running (and as many with none, for the baseline).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Let the guests run their firmware (`cont`) instead of starting them paused. Under
    /// this host's KVM each SeaBIOS boot burns ~3 s of CPU, so the default keeps them paused
    /// (QEMU still runs, with its monitor, and is reattached the same way).
    #[arg(long)]
    pub running: bool,
    #[arg(long = "type", value_enum, default_value = "auto")]
    pub guest: GuestType,
    /// The `virtplane-domaind` binary to run.
    #[arg(long)]
    pub domaind: PathBuf,
    /// Its state dir (created; its VMs' run dirs live below it, which is how leftovers are
    /// recognised).
    #[arg(long)]
    pub state_dir: PathBuf,
    /// Where it listens (`unix:/path`); `--server` may be this or a gateway in front of it.
    #[arg(long)]
    pub listen: String,
    /// Its QEMUs' cgroup root (removed at the end if empty); default `virtplane.bench-<pid>`.
    #[arg(long)]
    pub vm_cgroup_root: Option<String>,
    /// Where its log goes (appended); default STATE_DIR/domaind.log.
    #[arg(long)]
    pub log: Option<PathBuf>,
}

impl GuestType {
    /// The `<domain type>` to use; every side of one run uses the same one.
    pub fn resolve(self) -> &'static str {
        match self {
            GuestType::Kvm => "kvm",
            GuestType::Qemu => "qemu",
            GuestType::Auto if virtplane_domain::driver::qemu::host::kvm_usable() => "kvm",
            GuestType::Auto => "qemu",
        }
    }
}
