//! The command line: virsh's command names and flags, plus virtctl's global options.
//!
//! Global options are `global = true`, so they are accepted before or after the command
//! (`virtctl -o json list` and `virtctl list -o json`), as kubectl users expect and as
//! virsh's own `--connect` is not.

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::Format;

/// virtctl: manage virtplane domains with virsh's commands.
///
/// The server comes from --server, else VIRTPLANE_SERVER, else `server:` in the config file
/// ($VIRTCTL_CONFIG, else $XDG_CONFIG_HOME/virtctl/config.yaml, else
/// ~/.config/virtctl/config.yaml). The token likewise from --token, VIRTPLANE_TOKEN (set but
/// empty = no token) or `token:`.
#[derive(Debug, Parser)]
#[command(
    name = "virtctl",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Server address: unix:/path.sock, http://host:port, host:port, or https://host:port
    /// (TLS; needs --tls-ca); host is a DNS name or an IP address ([v6] in brackets)
    /// [env: VIRTPLANE_SERVER]
    #[arg(
        long,
        global = true,
        value_name = "ADDR",
        help_heading = "Global options"
    )]
    pub server: Option<String>,

    /// Bearer token sent with every call; prefer VIRTPLANE_TOKEN, as arguments show in `ps`
    /// [env: VIRTPLANE_TOKEN]
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        help_heading = "Global options"
    )]
    pub token: Option<String>,

    /// PEM bundle of the CA certificates that verify an https:// server's certificate
    /// [env: VIRTPLANE_TLS_CA]
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "Global options"
    )]
    pub tls_ca: Option<std::path::PathBuf>,

    /// PEM certificate (chain, leaf first) presented to an https:// server that asks for
    /// client certificates; with --tls-key [env: VIRTPLANE_TLS_CERT]
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "Global options"
    )]
    pub tls_cert: Option<std::path::PathBuf>,

    /// PEM private key of --tls-cert [env: VIRTPLANE_TLS_KEY]
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "Global options"
    )]
    pub tls_key: Option<std::path::PathBuf>,

    /// The node a call is for, when the gateway serves many: where `define`/`create` put a
    /// new object, and which node answers per-node commands (`nodeinfo`, `event`, ...).
    /// Calls naming an object find its node without it [env: VIRTPLANE_NODE]
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        env = "VIRTPLANE_NODE",
        help_heading = "Global options"
    )]
    pub node: Option<String>,

    /// Output format
    #[arg(
        short = 'o',
        long = "output",
        global = true,
        value_enum,
        value_name = "FORMAT",
        help_heading = "Global options"
    )]
    pub output: Option<Format>,

    /// Seconds to wait for each call [default: 30]; for `event`, how long to listen (as
    /// virsh's `event --timeout`); for `vol-upload`/`vol-download` and `guest-file-read`, the
    /// longest stall; for `guest-exec`, how long to wait for the program; for
    /// `qemu-agent-command`, the agent's timeout; for `guest-agent-timeout`, the value to set
    /// (there 0 = the service's default)
    #[arg(
        long,
        global = true,
        value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(0..=u64::from(u32::MAX)),
        help_heading = "Global options"
    )]
    pub timeout: Option<u64>,

    #[command(subcommand)]
    pub command: Command,
}

/// Default deadline of a call, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

impl Cli {
    /// The rules of `--timeout` that clap cannot state for one global flag: 0 is a value only
    /// for `guest-agent-timeout` (where it means "the service's default"), and that command
    /// needs the flag, as virsh's does.
    pub fn check_timeout(&self) -> Result<(), clap::Error> {
        use clap::CommandFactory;
        use clap::error::ErrorKind;
        let is_agent_timeout = matches!(self.command, Command::GuestAgentTimeout(_));
        let message = match self.timeout {
            None if is_agent_timeout => {
                "guest-agent-timeout needs --timeout SECS (0 = the service's default)"
            }
            Some(0) if !is_agent_timeout => {
                "invalid value '0' for '--timeout <SECS>': give at least 1 second"
            }
            _ => return Ok(()),
        };
        let kind = if is_agent_timeout {
            ErrorKind::MissingRequiredArgument
        } else {
            ErrorKind::ValueValidation
        };
        Err(Cli::command().error(kind, message))
    }

    /// The deadline of each unary call: `--timeout`, except for the commands that give the
    /// flag a meaning of their own (they then get the default deadline, and stretch it
    /// themselves where that meaning needs it).
    pub fn call_timeout_secs(&self) -> u64 {
        let own_meaning = matches!(
            self.command,
            Command::GuestAgentTimeout(_) | Command::QemuAgentCmd(_) | Command::GuestExec(_)
        );
        match self.timeout {
            Some(secs) if !own_meaning => secs,
            _ => DEFAULT_TIMEOUT_SECS,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List domains (active ones unless --all or --inactive)
    List(ListArgs),
    /// Domain information
    Dominfo(DomainArg),
    /// Domain state
    Domstate(DomstateArgs),
    /// Define (but don't start) a domain from an XML file ('-' reads stdin)
    Define(FileArgs),
    /// Undefine a domain (a running one stays, as transient)
    Undefine(DomainArg),
    /// Create and start a transient domain from an XML file ('-' reads stdin)
    Create(CreateArgs),
    /// Start a defined, shut-off domain
    Start(StartArgs),
    /// Gracefully shut down a domain
    Shutdown(ShutdownArgs),
    /// Power off a domain at once
    Destroy(DestroyArgs),
    /// Reboot a domain
    Reboot(PowerArgs),
    /// Reset a domain, like pressing its reset button
    Reset(DomainArg),
    /// Suspend (pause) a domain
    Suspend(DomainArg),
    /// Resume a suspended domain
    Resume(DomainArg),
    /// Domain XML
    Dumpxml(DumpxmlArgs),
    /// Change the number of virtual CPUs
    Setvcpus(SetvcpusArgs),
    /// Show the number of virtual CPUs
    Vcpucount(VcpucountArgs),
    /// Change the memory allocation
    Setmem(MemArgs),
    /// Change the maximum memory
    Setmaxmem(MemArgs),
    /// Mark a domain to start with the host (or not, with --disable)
    Autostart(AutostartArgs),
    /// Attach a disk (an image file or block device) to a domain
    AttachDisk(Box<crate::commands::device::AttachDiskArgs>),
    /// Detach a disk, named by target or source path, from a domain
    DetachDisk(crate::commands::device::DetachDiskArgs),
    /// Attach a device from an XML file ('-' reads stdin)
    AttachDevice(crate::commands::device::DeviceFileArgs),
    /// Detach a device given as an XML file ('-' reads stdin)
    DetachDevice(crate::commands::device::DeviceFileArgs),
    /// Attach a network interface to a domain
    AttachInterface(Box<crate::commands::interface::AttachInterfaceArgs>),
    /// Detach a network interface, named by type (and MAC), from a domain
    DetachInterface(crate::commands::interface::DetachInterfaceArgs),
    /// Wait for domain events and print them
    Event(EventArgs),
    /// Connect to a domain's serial console (Ctrl-] detaches)
    Console(crate::commands::console::ConsoleArgs),
    /// Statistics of domains (all when none is named)
    Domstats(crate::commands::stats::DomstatsArgs),
    /// List a domain's disks
    Domblklist(crate::commands::stats::DomblklistArgs),
    /// List a domain's network interfaces
    Domiflist(crate::commands::stats::DomiflistArgs),
    /// IP addresses of a running domain's interfaces (DHCP leases, ARP table or guest agent)
    Domifaddr(crate::commands::addresses::DomifaddrArgs),
    /// Disk I/O counters of a domain
    Domblkstat(crate::commands::stats::DomblkstatArgs),
    /// Network interface counters of a domain
    Domifstat(crate::commands::stats::DomifstatArgs),
    /// Memory statistics of a domain
    Dommemstat(crate::commands::stats::DommemstatArgs),
    /// Send a raw QMP (or, with --hmp, HMP) command to a domain's QEMU (needs
    /// domain:passthrough)
    #[command(name = "qemu-monitor-command")]
    QemuMonitorCmd(crate::commands::qemu::MonitorCommandArgs),
    /// Print raw QMP events of a domain, or of every domain (needs domain:passthrough)
    QemuMonitorEvent(crate::commands::qemu::MonitorEventArgs),
    /// Print the domain's hostname, as the guest agent reports it
    Domhostname(crate::commands::guest::info::DomhostnameArgs),
    /// Filesystems mounted in the guest (via the guest agent)
    Domfsinfo(DomainArg),
    /// Freeze the guest's mounted filesystems (all, or --mountpoint ones)
    Domfsfreeze(crate::commands::guest::fs::DomfsfreezeArgs),
    /// Thaw the guest's frozen filesystems
    Domfsthaw(DomainArg),
    /// Run fstrim on the guest's mounted filesystems
    Domfstrim(crate::commands::guest::fs::DomfstrimArgs),
    /// Print the guest's clock, or set it (--now, --time, --sync)
    Domtime(crate::commands::guest::time::DomtimeArgs),
    /// Set a user's password inside the guest
    SetUserPassword(crate::commands::guest::users::SetUserPasswordArgs),
    /// Information about the guest from the guest agent (all kinds unless some are named)
    Guestinfo(crate::commands::guest::guestinfo::GuestinfoArgs),
    /// The guest's vCPUs as the guest sees them, or take them online/offline (--cpulist)
    Guestvcpus(crate::commands::guest::vcpus::GuestvcpusArgs),
    /// A guest user's authorized SSH keys
    GetUserSshkeys(crate::commands::guest::users::GetUserSshkeysArgs),
    /// Add, replace (--reset) or remove (--remove) a guest user's authorized SSH keys
    SetUserSshkeys(crate::commands::guest::users::SetUserSshkeysArgs),
    /// Run a program in the guest; its output is printed and its exit code is virtctl's
    /// (virtplane's addition)
    #[command(after_help = "\
The program's stdout and stderr become virtctl's, and virtctl exits with the program's exit \
code (128 + N when signal N ended it); virtctl's own failures exit 1 with an 'error:' line.
--timeout SECS stops waiting after SECS (the program keeps running in the guest).
Everything after '--' goes to the program untouched: guest-exec web -- ls -la /tmp")]
    GuestExec(crate::commands::guest::exec::GuestExecArgs),
    /// Print a file of the guest (virtplane's addition)
    GuestFileRead(crate::commands::guest::file::GuestFileReadArgs),
    /// Write a file in the guest from a local file or stdin (virtplane's addition)
    GuestFileWrite(crate::commands::guest::file::GuestFileWriteArgs),
    /// Send a raw guest agent command as JSON and print the reply (needs domain:passthrough)
    #[command(name = "qemu-agent-command")]
    QemuAgentCmd(crate::commands::guest::passthrough::AgentCommandArgs),
    /// Set how long the domain's guest agent calls may take (--timeout SECS; 0 = default)
    GuestAgentTimeout(DomainArg),
    /// Check that the guest agent answers (virtplane's addition)
    GuestPing(DomainArg),
    /// The guest agent's version and commands (virtplane's addition)
    GuestAgentInfo(DomainArg),
    /// List networks (active ones unless --all or --inactive)
    NetList(crate::commands::network::NetListArgs),
    /// Network information
    NetInfo(crate::commands::network::NetworkArg),
    /// Network XML
    NetDumpxml(crate::commands::network::NetDumpxmlArgs),
    /// Define (but don't start) a persistent network from an XML file ('-' reads stdin)
    NetDefine(crate::commands::network::NetFileArgs),
    /// Create and start a transient network from an XML file ('-' reads stdin)
    NetCreate(crate::commands::network::NetFileArgs),
    /// Start a defined, inactive network
    NetStart(crate::commands::network::NetworkArg),
    /// Stop an active network (a transient one disappears)
    NetDestroy(crate::commands::network::NetworkArg),
    /// Undefine a persistent network (an active one stays, as transient)
    NetUndefine(crate::commands::network::NetworkArg),
    /// Mark a network to start with the host (or not, with --disable)
    NetAutostart(crate::commands::network::NetAutostartArgs),
    /// DHCP leases of a network
    NetDhcpLeases(crate::commands::network::leases::NetDhcpLeasesArgs),
    /// Add, delete or modify one element of a network's live state and/or config
    NetUpdate(crate::commands::network::update::NetUpdateArgs),
    /// Print a network's UUID
    NetUuid(crate::commands::network::NetworkArg),
    /// Print the name of the network with this UUID
    NetName(crate::commands::network::NetNameArgs),
    /// Wait for network events and print them
    NetEvent(crate::commands::network::events::NetEventArgs),
    /// List the ports of an active network
    NetPortList(crate::commands::network::ports::NetPortListArgs),
    /// Create a network port from an XML file ('-' reads stdin)
    NetPortCreate(crate::commands::network::ports::NetPortCreateArgs),
    /// Network port XML
    NetPortDumpxml(crate::commands::network::ports::NetPortArgs),
    /// Delete a network port
    NetPortDelete(crate::commands::network::ports::NetPortArgs),
    /// List storage pools (active ones unless --all or --inactive)
    PoolList(crate::commands::storage::pools::PoolListArgs),
    /// Storage pool information
    PoolInfo(crate::commands::storage::pools::PoolInfoArgs),
    /// Storage pool XML
    PoolDumpxml(crate::commands::storage::pools::PoolDumpxmlArgs),
    /// Define (but don't start) a persistent pool from an XML file ('-' reads stdin)
    PoolDefine(crate::commands::storage::pools::PoolFileArgs),
    /// Define a persistent pool from arguments (--print-xml only prints its XML)
    PoolDefineAs(Box<crate::commands::storage::pools::PoolAsArgs>),
    /// Create and start a transient pool from an XML file ('-' reads stdin)
    PoolCreate(crate::commands::storage::pools::PoolCreateArgs),
    /// Create and start a transient pool from arguments (--print-xml only prints its XML)
    PoolCreateAs(Box<crate::commands::storage::pools::PoolCreateAsArgs>),
    /// Build a pool's target (for a dir pool: make the directory)
    PoolBuild(crate::commands::storage::pools::PoolBuildArgs),
    /// Start a defined, inactive pool
    PoolStart(crate::commands::storage::pools::PoolStartArgs),
    /// Stop an active pool (its volumes stay; a transient pool disappears)
    PoolDestroy(crate::commands::storage::pools::PoolArg),
    /// Delete a pool's target (for a dir pool: remove the empty directory)
    PoolDelete(crate::commands::storage::pools::PoolArg),
    /// Undefine an inactive persistent pool
    PoolUndefine(crate::commands::storage::pools::PoolArg),
    /// Mark a pool to start with the host (or not, with --disable)
    PoolAutostart(crate::commands::storage::pools::PoolAutostartArgs),
    /// Rescan a pool's target for volumes
    PoolRefresh(crate::commands::storage::pools::PoolArg),
    /// Print a pool's UUID
    PoolUuid(crate::commands::storage::pools::PoolArg),
    /// Print the name of the pool with this UUID
    PoolName(crate::commands::storage::pools::PoolNameArgs),
    /// Wait for storage pool and volume events and print them
    PoolEvent(crate::commands::storage::events::PoolEventArgs),
    /// List the volumes of a pool
    VolList(crate::commands::storage::volumes::VolListArgs),
    /// Volume information
    VolInfo(crate::commands::storage::volumes::VolInfoArgs),
    /// Volume XML
    VolDumpxml(crate::commands::storage::VolArg),
    /// Print a volume's path
    VolPath(crate::commands::storage::VolArg),
    /// Print a volume's key
    VolKey(crate::commands::storage::VolArg),
    /// Print the name of the volume with this key or path
    VolName(crate::commands::storage::volumes::VolKeyArg),
    /// Print the pool of the volume with this key or path
    VolPool(crate::commands::storage::volumes::VolPoolArgs),
    /// Create a volume from an XML file ('-' reads stdin)
    VolCreate(crate::commands::storage::volumes::VolCreateArgs),
    /// Create a volume from arguments (--print-xml only prints its XML)
    VolCreateAs(Box<crate::commands::storage::volumes::VolCreateAsArgs>),
    /// Create a volume from an XML file, filled from another volume
    VolCreateFrom(crate::commands::storage::volumes::VolCreateFromArgs),
    /// Clone a volume (into its own pool, or --newpool)
    VolClone(crate::commands::storage::volumes::VolCloneArgs),
    /// Delete a volume
    VolDelete(crate::commands::storage::VolArg),
    /// Resize a volume (a leading '-' shrinks by that much, with --shrink)
    VolResize(crate::commands::storage::volumes::VolResizeArgs),
    /// Wipe a volume's data
    VolWipe(crate::commands::storage::volumes::VolWipeArgs),
    /// Upload a file into a volume (--sparse keeps holes; --resume continues a cut-off upload)
    VolUpload(crate::commands::storage::transfer::VolUploadArgs),
    /// Download a volume into a file (--sparse keeps holes)
    VolDownload(crate::commands::storage::transfer::VolDownloadArgs),
    /// Versions of virtctl, the service and the hypervisor
    Version,
    /// Node (host) information
    Nodeinfo,
    /// Ask the server's standard gRPC health service; exit 0 only when it is SERVING
    Health(HealthArgs),
    /// Print a shell completion script: `source <(virtctl completion bash)`
    Completion(CompletionArgs),
}

/// `health [--service NAME]`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// A fully qualified service name, e.g. virtplane.v1.DomainService; default: the server
    /// as a whole
    #[arg(long, default_value = "")]
    pub service: String,
}

/// A command that only names a domain.
#[derive(Debug, Args)]
pub struct DomainArg {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// List active and inactive domains
    #[arg(long)]
    pub all: bool,
    /// List inactive domains only
    #[arg(long)]
    pub inactive: bool,
    /// List running domains
    #[arg(long)]
    pub state_running: bool,
    /// List paused domains
    #[arg(long)]
    pub state_paused: bool,
    /// List shut-off domains
    #[arg(long)]
    pub state_shutoff: bool,
    /// List domains in other states
    #[arg(long)]
    pub state_other: bool,
    /// List persistent domains
    #[arg(long)]
    pub persistent: bool,
    /// List transient domains
    #[arg(long)]
    pub transient: bool,
    /// List domains with autostart enabled
    #[arg(long)]
    pub autostart: bool,
    /// List domains with autostart disabled
    #[arg(long)]
    pub no_autostart: bool,
    /// Print domain names only
    #[arg(long)]
    pub name: bool,
    /// Print domain UUIDs only
    #[arg(long)]
    pub uuid: bool,
    /// Show the title column
    #[arg(long, conflicts_with_all = ["name", "uuid"])]
    pub title: bool,
}

#[derive(Debug, Args)]
pub struct DomstateArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// Also say why the domain is in this state
    #[arg(long)]
    pub reason: bool,
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// File with the domain XML; '-' or /dev/stdin reads standard input
    #[arg(value_name = "FILE")]
    pub file: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// File with the domain XML; '-' or /dev/stdin reads standard input
    #[arg(value_name = "FILE")]
    pub file: String,
    /// Leave the virtual CPUs paused
    #[arg(long)]
    pub paused: bool,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// Leave the virtual CPUs paused
    #[arg(long)]
    pub paused: bool,
}

/// How a shutdown or reboot request reaches the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PowerModeArg {
    /// ACPI power button
    Acpi,
    /// The guest agent (needs domain:write)
    Agent,
}

#[derive(Debug, Args)]
pub struct PowerArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// How to ask the guest (default: the driver's choice)
    #[arg(long, value_enum)]
    pub mode: Option<PowerModeArg>,
}

#[derive(Debug, Args)]
pub struct ShutdownArgs {
    #[command(flatten)]
    pub power: PowerArgs,
    /// Wait up to SECONDS for the domain to shut off, and fail if it has not (a guest may
    /// ignore the request). Without it, return once the guest was asked, as virsh does.
    #[arg(long, value_name = "SECONDS")]
    pub wait: Option<u32>,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// Only ask the process to quit, never kill it
    #[arg(long)]
    pub graceful: bool,
}

#[derive(Debug, Args)]
pub struct DumpxmlArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// The persistent config rather than the live one
    #[arg(long)]
    pub inactive: bool,
    /// Include secrets such as graphics passwords (needs domain:read_secure)
    #[arg(long)]
    pub security_info: bool,
}

/// libvirt's modification impact flags, shared by the typed edits.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct ImpactArgs {
    /// Change the persistent config
    #[arg(long)]
    pub config: bool,
    /// Change the running domain
    #[arg(long)]
    pub live: bool,
    /// Change the running domain if it runs, else the config
    #[arg(long, conflicts_with_all = ["live", "config"])]
    pub current: bool,
}

impl ImpactArgs {
    /// The proto flags: `--current` (or no flag) is neither live nor config, which the
    /// server reads as "live if running, else config", exactly libvirt's CURRENT.
    pub fn modify_flags(&self) -> virtplane_proto::v1::ModifyFlags {
        virtplane_proto::v1::ModifyFlags {
            live: self.live,
            config: self.config,
        }
    }
}

#[derive(Debug, Args)]
pub struct SetvcpusArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// Number of virtual CPUs
    #[arg(value_name = "COUNT")]
    pub count: u32,
    /// Change the maximum rather than the current count
    #[arg(long)]
    pub maximum: bool,
    #[command(flatten)]
    pub impact: ImpactArgs,
    /// Change the count inside the guest, through the guest agent
    #[arg(long, conflicts_with = "config")]
    pub guest: bool,
    /// Make the added vCPUs hot-unpluggable
    #[arg(long)]
    pub hotpluggable: bool,
}

#[derive(Debug, Args)]
pub struct VcpucountArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// The maximum count
    #[arg(long)]
    pub maximum: bool,
    /// The current count
    #[arg(long, conflicts_with = "maximum")]
    pub active: bool,
    /// Of the running domain
    #[arg(long, conflicts_with = "config")]
    pub live: bool,
    /// Of the persistent config
    #[arg(long)]
    pub config: bool,
    /// Of the running domain if it runs, else of the config
    #[arg(long, conflicts_with_all = ["live", "config"])]
    pub current: bool,
    /// As the guest agent reports it
    #[arg(long, conflicts_with = "config")]
    pub guest: bool,
}

#[derive(Debug, Args)]
pub struct MemArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// New size: a number of KiB, or with a unit (b, KiB/k, KB, MiB/M, MB, GiB/G, GB, TiB/T, TB)
    #[arg(value_name = "SIZE", value_parser = crate::size::parse_kib)]
    pub size_kib: u64,
    #[command(flatten)]
    pub impact: ImpactArgs,
}

#[derive(Debug, Args)]
pub struct AutostartArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// Turn autostart off
    #[arg(long)]
    pub disable: bool,
}

/// The event types `event --event` accepts (virsh's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventKind {
    Lifecycle,
    ConfigChanged,
    Reboot,
    DeviceAdded,
    DeviceRemoved,
    AgentLifecycle,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Lifecycle => "lifecycle",
            EventKind::ConfigChanged => "config-changed",
            EventKind::Reboot => "reboot",
            EventKind::DeviceAdded => "device-added",
            EventKind::DeviceRemoved => "device-removed",
            EventKind::AgentLifecycle => "agent-lifecycle",
        }
    }
}

#[derive(Debug, Args)]
pub struct EventArgs {
    /// Only events of this domain (name or UUID)
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Only events of this type
    #[arg(long, value_enum, value_name = "TYPE", conflicts_with = "all")]
    pub event: Option<EventKind>,
    /// Events of every type (the default; accepted for virsh compatibility)
    #[arg(long)]
    pub all: bool,
    /// Keep printing events until --timeout or Ctrl-C, rather than stop after one
    #[arg(long = "loop")]
    pub loop_: bool,
    /// Print the local time before each event
    #[arg(long)]
    pub timestamp: bool,
    /// Start after this sequence number (replay retained events newer than it)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub after_sequence: u64,
    /// List the event types and exit
    #[arg(long, conflicts_with_all = ["event", "all"])]
    pub list: bool,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to write the script for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("virtctl").chain(args.iter().copied()))
    }

    #[test]
    fn output_before_and_after_command() {
        let a = parse(&["-o", "json", "list"]).unwrap();
        assert_eq!(a.output, Some(Format::Json));
        let b = parse(&["list", "-o", "yaml"]).unwrap();
        assert_eq!(b.output, Some(Format::Yaml));
        let c = parse(&["dominfo", "web", "--output", "json"]).unwrap();
        assert_eq!(c.output, Some(Format::Json));
        assert!(parse(&["list", "-o", "xml"]).is_err());
    }

    #[test]
    fn server_after_command() {
        let a = parse(&["list", "--server", "unix:/x.sock"]).unwrap();
        assert_eq!(a.server.as_deref(), Some("unix:/x.sock"));
    }

    #[test]
    fn conflicts_are_usage_errors() {
        assert!(parse(&["setvcpus", "web", "2", "--current", "--live"]).is_err());
        assert!(parse(&["setvcpus", "web", "2", "--current", "--config"]).is_err());
        assert!(parse(&["setvcpus", "web", "2", "--guest", "--config"]).is_err());
        assert!(parse(&["setvcpus", "web", "2", "--live", "--config"]).is_ok());
        assert!(parse(&["vcpucount", "web", "--maximum", "--active"]).is_err());
        assert!(parse(&["setmem", "web", "1G", "--current", "--live"]).is_err());
        assert!(parse(&["event", "--list", "--all"]).is_err());
    }

    #[test]
    fn bad_size_is_usage_error_naming_value() {
        let err = parse(&["setmem", "web", "12Q"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("12Q"), "{err}");
        match parse(&["setmaxmem", "web", "2G"]).unwrap().command {
            Command::Setmaxmem(m) => assert_eq!(m.size_kib, 2 * 1024 * 1024),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn timeout_meaning_per_command() {
        let secs = |args: &[&str]| parse(args).unwrap().call_timeout_secs();
        assert_eq!(secs(&["list", "--timeout", "5"]), 5);
        assert_eq!(secs(&["list"]), DEFAULT_TIMEOUT_SECS);
        // Where --timeout means something else, calls keep the default deadline.
        assert_eq!(
            secs(&["guest-agent-timeout", "web", "--timeout", "0"]),
            DEFAULT_TIMEOUT_SECS
        );
        assert_eq!(
            secs(&["guest-exec", "web", "--timeout", "2", "--", "true"]),
            DEFAULT_TIMEOUT_SECS
        );
        assert!(
            parse(&["guest-agent-timeout", "web", "--timeout", "0"])
                .unwrap()
                .check_timeout()
                .is_ok()
        );
        assert!(
            parse(&["guest-agent-timeout", "web"])
                .unwrap()
                .check_timeout()
                .is_err()
        );
    }

    #[test]
    fn guest_exec_takes_everything_after_the_separator() {
        let a = parse(&[
            "guest-exec",
            "web",
            "--env",
            "A=1",
            "--",
            "ls",
            "-la",
            "--timeout",
            "5",
            "--",
        ])
        .unwrap();
        assert_eq!(a.timeout, None);
        match a.command {
            Command::GuestExec(e) => {
                assert_eq!(e.command, ["ls", "-la", "--timeout", "5", "--"]);
                assert_eq!(e.env, ["A=1"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["guest-exec", "web"]).is_err());
        assert!(parse(&["guest-exec", "web", "ls"]).is_err());
    }

    #[test]
    fn event_timeout_is_the_global_one() {
        let a = parse(&["event", "--loop", "--timeout", "5"]).unwrap();
        assert_eq!(a.timeout, Some(5));
        // 0 parses (guest-agent-timeout takes it) but is refused for everything else.
        assert!(
            parse(&["list", "--timeout", "0"])
                .unwrap()
                .check_timeout()
                .is_err()
        );
        match a.command {
            Command::Event(e) => assert!(e.loop_),
            other => panic!("{other:?}"),
        }
    }
}
