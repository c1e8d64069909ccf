//! Monitoring: domstats, domblklist, domiflist, domblkstat, domifstat, dommemstat, with
//! virsh's text output (`virsh-domain-monitor.c`) and typed data for `-o json|yaml`.

use clap::Args;
use serde::Serialize;
use virtplane_proto::v1 as pb;

use super::{Ctx, domain_ref};
use crate::cli::ImpactArgs;
use crate::error::Error;
use crate::output::virsh_table;
use crate::view::{State, reason_words};

// ---------------------------------------------------------------------------------------------
// Arguments

/// `domstats [DOMAIN...] [--GROUP...] [--list-*]`.
#[derive(Debug, Args)]
pub struct DomstatsArgs {
    /// Domains (name or UUID); none = every domain the --list-* flags select
    #[arg(value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// Domain state and its reason
    #[arg(long)]
    pub state: bool,
    /// CPU time of the domain
    #[arg(long)]
    pub cpu_total: bool,
    /// Balloon size and the guest's memory figures
    #[arg(long)]
    pub balloon: bool,
    /// Virtual CPUs and their times
    #[arg(long)]
    pub vcpu: bool,
    /// Network interface counters
    #[arg(long)]
    pub interface: bool,
    /// Disk counters and sizes
    #[arg(long)]
    pub block: bool,
    /// Only active domains
    #[arg(long, conflicts_with = "domains")]
    pub list_active: bool,
    /// Only inactive domains
    #[arg(long, conflicts_with = "domains")]
    pub list_inactive: bool,
    /// Only persistent domains
    #[arg(long, conflicts_with = "domains")]
    pub list_persistent: bool,
    /// Only transient domains
    #[arg(long, conflicts_with = "domains")]
    pub list_transient: bool,
    /// Only running domains
    #[arg(long, conflicts_with = "domains")]
    pub list_running: bool,
    /// Only paused domains
    #[arg(long, conflicts_with = "domains")]
    pub list_paused: bool,
    /// Only shut-off domains
    #[arg(long, conflicts_with = "domains")]
    pub list_shutoff: bool,
    /// Only domains in other states
    #[arg(long, conflicts_with = "domains")]
    pub list_other: bool,
}

/// `domblklist DOMAIN [--inactive] [--details]`.
#[derive(Debug, Args)]
pub struct DomblklistArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// The persistent config rather than the running one
    #[arg(long)]
    pub inactive: bool,
    /// Also show each disk's type and device
    #[arg(long)]
    pub details: bool,
}

/// `domiflist DOMAIN [--inactive]`.
#[derive(Debug, Args)]
pub struct DomiflistArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// The persistent config rather than the running one
    #[arg(long)]
    pub inactive: bool,
}

/// `domblkstat DOMAIN [DEVICE] [--human]`.
#[derive(Debug, Args)]
pub struct DomblkstatArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// Disk target (vda) or source path; none = the sum over every disk
    #[arg(value_name = "DEVICE", default_value = "")]
    pub device: String,
    /// Spell out what each counter is
    #[arg(long)]
    pub human: bool,
}

/// `domifstat DOMAIN INTERFACE`.
#[derive(Debug, Args)]
pub struct DomifstatArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// The interface's host-side device (vnet0) or MAC address
    #[arg(value_name = "INTERFACE")]
    pub interface: String,
}

/// `dommemstat DOMAIN [--period SECS] [--live|--config|--current]`.
#[derive(Debug, Args)]
pub struct DommemstatArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// First set how often the guest reports its memory figures (seconds; 0 stops)
    #[arg(long, value_name = "SECS")]
    pub period: Option<u32>,
    #[command(flatten)]
    pub impact: ImpactArgs,
}

// ---------------------------------------------------------------------------------------------
// Commands

pub async fn domstats(ctx: &mut Ctx, a: DomstatsArgs) -> Result<(), Error> {
    let request = pb::GetDomainStatsRequest {
        domains: a.domains.iter().filter_map(|d| domain_ref(d)).collect(),
        groups: Some(pb::StatsGroups {
            state: a.state,
            cpu_total: a.cpu_total,
            balloon: a.balloon,
            vcpu: a.vcpu,
            interface: a.interface,
            block: a.block,
        }),
        filter: Some(pb::StatsDomainFilter {
            active: a.list_active,
            inactive: a.list_inactive,
            persistent: a.list_persistent,
            transient: a.list_transient,
            running: a.list_running,
            paused: a.list_paused,
            shutoff: a.list_shutoff,
            other: a.list_other,
        }),
    };
    let mut client = ctx.conn.stats();
    let reply = ctx
        .conn
        .unary(client.get_stats(ctx.conn.request(request)))
        .await?;
    if !ctx.out.is_table() {
        let views: Vec<StatsView> = reply.records.iter().map(StatsView::from_proto).collect();
        return ctx.out.data(&views);
    }
    ctx.out.raw(&render_domstats(&reply.records))
}

pub async fn domblklist(ctx: &mut Ctx, a: DomblklistArgs) -> Result<(), Error> {
    let mut client = ctx.conn.stats();
    let request = pb::ListBlockDevicesRequest {
        domain: domain_ref(&a.domain),
        inactive: a.inactive,
    };
    let reply = ctx
        .conn
        .unary(client.list_block_devices(ctx.conn.request(request)))
        .await?;
    if !ctx.out.is_table() {
        let views: Vec<BlockDeviceView> = reply
            .devices
            .iter()
            .map(|d| BlockDeviceView {
                target: d.target.clone(),
                source: non_empty(&d.source),
                r#type: d.r#type.clone(),
                device: d.device.clone(),
            })
            .collect();
        return ctx.out.data(&views);
    }
    ctx.out.raw(&render_domblklist(&reply.devices, a.details))
}

pub async fn domiflist(ctx: &mut Ctx, a: DomiflistArgs) -> Result<(), Error> {
    let mut client = ctx.conn.stats();
    let request = pb::ListInterfacesRequest {
        domain: domain_ref(&a.domain),
        inactive: a.inactive,
    };
    let reply = ctx
        .conn
        .unary(client.list_interfaces(ctx.conn.request(request)))
        .await?;
    if !ctx.out.is_table() {
        let views: Vec<InterfaceView> = reply
            .interfaces
            .iter()
            .map(|i| InterfaceView {
                interface: non_empty(&i.name),
                r#type: i.r#type.clone(),
                source: non_empty(&i.source),
                model: non_empty(&i.model),
                mac: non_empty(&i.mac),
            })
            .collect();
        return ctx.out.data(&views);
    }
    ctx.out.raw(&render_domiflist(&reply.interfaces))
}

pub async fn domblkstat(ctx: &mut Ctx, a: DomblkstatArgs) -> Result<(), Error> {
    let mut client = ctx.conn.stats();
    let request = pb::GetBlockStatsRequest {
        domain: domain_ref(&a.domain),
        device: a.device.clone(),
    };
    let reply = ctx
        .conn
        .unary(client.get_block_stats(ctx.conn.request(request)))
        .await?;
    let stats = reply.stats.unwrap_or_default();
    if !ctx.out.is_table() {
        return ctx.out.data(&BlockStatsView::from_proto(&stats));
    }
    ctx.out.raw(&render_domblkstat(&a.device, &stats, a.human))
}

pub async fn domifstat(ctx: &mut Ctx, a: DomifstatArgs) -> Result<(), Error> {
    let mut client = ctx.conn.stats();
    let request = pb::GetInterfaceStatsRequest {
        domain: domain_ref(&a.domain),
        device: a.interface.clone(),
    };
    let reply = ctx
        .conn
        .unary(client.get_interface_stats(ctx.conn.request(request)))
        .await?;
    let stats = reply.stats.unwrap_or_default();
    if !ctx.out.is_table() {
        return ctx.out.data(&InterfaceStatsView::from_proto(&stats));
    }
    ctx.out.raw(&render_domifstat(&a.interface, &stats))
}

pub async fn dommemstat(ctx: &mut Ctx, a: DommemstatArgs) -> Result<(), Error> {
    let mut client = ctx.conn.stats();
    if let Some(period_secs) = a.period {
        let request = pb::SetMemoryStatsPeriodRequest {
            domain: domain_ref(&a.domain),
            period_secs,
            flags: Some(a.impact.modify_flags()),
        };
        ctx.conn
            .unary(client.set_memory_stats_period(ctx.conn.request(request)))
            .await?;
    }
    let request = pb::GetMemoryStatsRequest {
        domain: domain_ref(&a.domain),
    };
    let reply = ctx
        .conn
        .unary(client.get_memory_stats(ctx.conn.request(request)))
        .await?;
    let stats = reply.stats.unwrap_or_default();
    if !ctx.out.is_table() {
        return ctx.out.data(&MemoryStatsView::from_proto(&stats));
    }
    let mut out = String::new();
    for (key, value) in memory_lines(&stats) {
        out.push_str(&format!("{key} {value}\n"));
    }
    ctx.out.raw(&out)
}

// ---------------------------------------------------------------------------------------------
// virsh's text

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s.to_string()
    }
}

/// domblklist's table: `Target Source`, or with `--details` `Type Device Target Source`.
pub fn render_domblklist(devices: &[pb::BlockDevice], details: bool) -> String {
    let rows: Vec<Vec<String>> = devices
        .iter()
        .map(|d| {
            if details {
                vec![
                    d.r#type.clone(),
                    d.device.clone(),
                    d.target.clone(),
                    dash(&d.source),
                ]
            } else {
                vec![d.target.clone(), dash(&d.source)]
            }
        })
        .collect();
    if details {
        virsh_table(&["Type", "Device", "Target", "Source"], &rows)
    } else {
        virsh_table(&["Target", "Source"], &rows)
    }
}

/// domiflist's table.
pub fn render_domiflist(interfaces: &[pb::InterfaceEntry]) -> String {
    let rows: Vec<Vec<String>> = interfaces
        .iter()
        .map(|i| {
            vec![
                dash(&i.name),
                i.r#type.clone(),
                dash(&i.source),
                dash(&i.model),
                dash(&i.mac),
            ]
        })
        .collect();
    virsh_table(&["Interface", "Type", "Source", "Model", "MAC"], &rows)
}

/// domblkstat's lines: `DEV legacy-name VALUE`, or with `--human` a `Device:` header and
/// spelled-out names padded to 31 (virsh's `domblkstat_output` table).
pub fn render_domblkstat(device: &str, s: &pb::BlockStats, human: bool) -> String {
    let fields: [(&str, &str, u64); 8] = [
        ("rd_req", "number of read operations:", s.rd_req),
        ("rd_bytes", "number of bytes read:", s.rd_bytes),
        ("wr_req", "number of write operations:", s.wr_req),
        ("wr_bytes", "number of bytes written:", s.wr_bytes),
        (
            "flush_operations",
            "number of flush operations:",
            s.flush_req,
        ),
        (
            "rd_total_times",
            "total duration of reads (ns):",
            s.rd_total_time_ns,
        ),
        (
            "wr_total_times",
            "total duration of writes (ns):",
            s.wr_total_time_ns,
        ),
        (
            "flush_total_times",
            "total duration of flushes (ns):",
            s.flush_total_time_ns,
        ),
    ];
    let mut out = String::new();
    let mut prefix = device;
    if human {
        out.push_str(&format!("Device: {device}\n"));
        prefix = "";
    }
    for (legacy, spelled, value) in fields {
        if human {
            out.push_str(&format!("{prefix} {spelled:<31} {value}\n"));
        } else {
            out.push_str(&format!("{prefix} {legacy} {value}\n"));
        }
    }
    out
}

/// domifstat's lines.
pub fn render_domifstat(device: &str, s: &pb::InterfaceStats) -> String {
    [
        ("rx_bytes", s.rx_bytes),
        ("rx_packets", s.rx_packets),
        ("rx_errs", s.rx_errs),
        ("rx_drop", s.rx_drop),
        ("tx_bytes", s.tx_bytes),
        ("tx_packets", s.tx_packets),
        ("tx_errs", s.tx_errs),
        ("tx_drop", s.tx_drop),
    ]
    .iter()
    .map(|(key, value)| format!("{device} {key} {value}\n"))
    .collect()
}

/// dommemstat's `key value` pairs, in the order virsh prints a QEMU domain's: only those the
/// guest (or host) reported.
pub fn memory_lines(m: &pb::MemoryStats) -> Vec<(&'static str, u64)> {
    [
        ("actual", m.actual_kib),
        ("swap_in", m.swap_in_kib),
        ("swap_out", m.swap_out_kib),
        ("major_fault", m.major_fault),
        ("minor_fault", m.minor_fault),
        ("unused", m.unused_kib),
        ("available", m.available_kib),
        ("usable", m.usable_kib),
        ("last_update", m.last_update),
        ("disk_caches", m.disk_caches_kib),
        ("hugetlb_pgalloc", m.hugetlb_pgalloc),
        ("hugetlb_pgfail", m.hugetlb_pgfail),
        ("rss", m.rss_kib),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|v| (key, v)))
    .collect()
}

/// libvirt's per-state reason number (virDomainRunningReason, ...) for the proto's flattened
/// reason, as `state.reason` prints it.
pub fn libvirt_reason_number(reason: i32) -> i32 {
    use pb::StateReason as R;
    match R::try_from(reason).unwrap_or(R::Unknown) {
        R::Unknown => 0,
        R::RunningBooted => 1,
        R::RunningMigrated => 2,
        R::RunningRestored => 3,
        R::RunningFromSnapshot => 4,
        R::RunningUnpaused => 5,
        R::RunningWakeup => 8,
        R::RunningCrashed => 9,
        R::PausedUser => 1,
        R::PausedMigration => 2,
        R::PausedSave => 3,
        R::PausedDump => 4,
        R::PausedIoerror => 5,
        R::PausedWatchdog => 6,
        R::PausedShuttingDown => 8,
        R::PausedCrashed => 10,
        R::PausedStartingUp => 11,
        R::ShutdownUser => 1,
        R::ShutoffShutdown => 1,
        R::ShutoffDestroyed => 2,
        R::ShutoffCrashed => 3,
        R::ShutoffMigrated => 4,
        R::ShutoffSaved => 5,
        R::ShutoffFailed => 6,
        R::ShutoffFromSnapshot => 7,
        R::ShutoffDaemon => 8,
        R::CrashedPanicked => 1,
    }
}

/// One domain's `key=value` fields, with libvirt's names (virConnectGetAllDomainStats).
pub fn stats_fields(r: &pb::DomainStatsRecord) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = Vec::new();
    let mut put = |key: String, value: String| f.push((key, value));
    if let Some(s) = &r.state {
        put("state.state".into(), s.state.to_string());
        put(
            "state.reason".into(),
            libvirt_reason_number(s.reason).to_string(),
        );
    }
    if let Some(c) = &r.cpu {
        put("cpu.time".into(), c.time_ns.to_string());
        if let Some(v) = c.user_ns {
            put("cpu.user".into(), v.to_string());
        }
        if let Some(v) = c.system_ns {
            put("cpu.system".into(), v.to_string());
        }
    }
    if let Some(b) = &r.balloon {
        put("balloon.current".into(), b.current_kib.to_string());
        put("balloon.maximum".into(), b.maximum_kib.to_string());
        if let Some(m) = &b.memory {
            for (key, value) in memory_lines(m) {
                // `actual` is balloon.current; libvirt spells last_update with a dash here.
                let key = match key {
                    "actual" => continue,
                    "last_update" => "last-update",
                    other => other,
                };
                put(format!("balloon.{key}"), value.to_string());
            }
        }
    }
    if let Some(v) = &r.vcpu {
        put("vcpu.current".into(), v.current.to_string());
        put("vcpu.maximum".into(), v.maximum.to_string());
        for e in &v.vcpus {
            put(format!("vcpu.{}.state", e.index), e.state.to_string());
            if let Some(t) = e.time_ns {
                put(format!("vcpu.{}.time", e.index), t.to_string());
            }
            if let Some(d) = e.delay_ns {
                put(format!("vcpu.{}.delay", e.index), d.to_string());
            }
        }
    }
    if let Some(group) = &r.interfaces {
        put("net.count".into(), group.interfaces.len().to_string());
        for (i, n) in group.interfaces.iter().enumerate() {
            if !n.name.is_empty() {
                put(format!("net.{i}.name"), n.name.clone());
            }
            if let Some(s) = &n.stats {
                for (key, value) in [
                    ("rx.bytes", s.rx_bytes),
                    ("rx.pkts", s.rx_packets),
                    ("rx.errs", s.rx_errs),
                    ("rx.drop", s.rx_drop),
                    ("tx.bytes", s.tx_bytes),
                    ("tx.pkts", s.tx_packets),
                    ("tx.errs", s.tx_errs),
                    ("tx.drop", s.tx_drop),
                ] {
                    put(format!("net.{i}.{key}"), value.to_string());
                }
            }
        }
    }
    if let Some(group) = &r.blocks {
        put("block.count".into(), group.blocks.len().to_string());
        for (i, b) in group.blocks.iter().enumerate() {
            put(format!("block.{i}.name"), b.name.clone());
            if !b.path.is_empty() {
                put(format!("block.{i}.path"), b.path.clone());
            }
            if let Some(s) = &b.stats {
                for (key, value) in [
                    ("rd.reqs", s.rd_req),
                    ("rd.bytes", s.rd_bytes),
                    ("rd.times", s.rd_total_time_ns),
                    ("wr.reqs", s.wr_req),
                    ("wr.bytes", s.wr_bytes),
                    ("wr.times", s.wr_total_time_ns),
                    ("fl.reqs", s.flush_req),
                    ("fl.times", s.flush_total_time_ns),
                ] {
                    put(format!("block.{i}.{key}"), value.to_string());
                }
            }
            for (key, value) in [
                ("allocation", b.allocation),
                ("capacity", b.capacity),
                ("physical", b.physical),
            ] {
                if let Some(v) = value {
                    put(format!("block.{i}.{key}"), v.to_string());
                }
            }
        }
    }
    f
}

/// domstats' text: `Domain: 'NAME'` and two-space indented `key=value` lines per domain, a
/// blank line between domains.
pub fn render_domstats(records: &[pb::DomainStatsRecord]) -> String {
    let mut out = String::new();
    for (n, r) in records.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        out.push_str(&format!("Domain: '{}'\n", r.name));
        for (key, value) in stats_fields(r) {
            out.push_str(&format!("  {key}={value}\n"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Typed data for -o json|yaml

#[derive(Debug, Serialize)]
struct BlockDeviceView {
    target: String,
    source: Option<String>,
    r#type: String,
    device: String,
}

#[derive(Debug, Serialize)]
struct InterfaceView {
    interface: Option<String>,
    r#type: String,
    source: Option<String>,
    model: Option<String>,
    mac: Option<String>,
}

#[derive(Debug, Serialize)]
struct BlockStatsView {
    rd_req: u64,
    rd_bytes: u64,
    wr_req: u64,
    wr_bytes: u64,
    flush_req: u64,
    rd_total_time_ns: u64,
    wr_total_time_ns: u64,
    flush_total_time_ns: u64,
}

impl BlockStatsView {
    fn from_proto(s: &pb::BlockStats) -> Self {
        BlockStatsView {
            rd_req: s.rd_req,
            rd_bytes: s.rd_bytes,
            wr_req: s.wr_req,
            wr_bytes: s.wr_bytes,
            flush_req: s.flush_req,
            rd_total_time_ns: s.rd_total_time_ns,
            wr_total_time_ns: s.wr_total_time_ns,
            flush_total_time_ns: s.flush_total_time_ns,
        }
    }
}

#[derive(Debug, Serialize)]
struct InterfaceStatsView {
    rx_bytes: u64,
    rx_packets: u64,
    rx_errs: u64,
    rx_drop: u64,
    tx_bytes: u64,
    tx_packets: u64,
    tx_errs: u64,
    tx_drop: u64,
}

impl InterfaceStatsView {
    fn from_proto(s: &pb::InterfaceStats) -> Self {
        InterfaceStatsView {
            rx_bytes: s.rx_bytes,
            rx_packets: s.rx_packets,
            rx_errs: s.rx_errs,
            rx_drop: s.rx_drop,
            tx_bytes: s.tx_bytes,
            tx_packets: s.tx_packets,
            tx_errs: s.tx_errs,
            tx_drop: s.tx_drop,
        }
    }
}

/// dommemstat's figures; the ones not reported are left out.
#[derive(Debug, Default, Serialize)]
struct MemoryStatsView {
    #[serde(skip_serializing_if = "Option::is_none")]
    actual_kib: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    swap_in_kib: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    swap_out_kib: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    major_fault: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    minor_fault: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unused_kib: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    available_kib: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usable_kib: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_update: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disk_caches_kib: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hugetlb_pgalloc: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hugetlb_pgfail: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rss_kib: Option<u64>,
}

impl MemoryStatsView {
    fn from_proto(m: &pb::MemoryStats) -> Self {
        MemoryStatsView {
            actual_kib: m.actual_kib,
            swap_in_kib: m.swap_in_kib,
            swap_out_kib: m.swap_out_kib,
            major_fault: m.major_fault,
            minor_fault: m.minor_fault,
            unused_kib: m.unused_kib,
            available_kib: m.available_kib,
            usable_kib: m.usable_kib,
            last_update: m.last_update,
            disk_caches_kib: m.disk_caches_kib,
            hugetlb_pgalloc: m.hugetlb_pgalloc,
            hugetlb_pgfail: m.hugetlb_pgfail,
            rss_kib: m.rss_kib,
        }
    }
}

/// One domain's statistics: the groups that were reported.
#[derive(Debug, Serialize)]
struct StatsView {
    name: String,
    uuid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<StateView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<CpuView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    balloon: Option<BalloonView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vcpu: Option<VcpuView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interfaces: Option<Vec<NicView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocks: Option<Vec<BlockView>>,
}

#[derive(Debug, Serialize)]
struct StateView {
    state: State,
    reason: &'static str,
}

#[derive(Debug, Serialize)]
struct CpuView {
    time_ns: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_ns: Option<u64>,
}

#[derive(Debug, Serialize)]
struct BalloonView {
    current_kib: u64,
    maximum_kib: u64,
    #[serde(flatten)]
    memory: MemoryStatsView,
}

#[derive(Debug, Serialize)]
struct VcpuView {
    current: u32,
    maximum: u32,
    vcpus: Vec<VcpuEntryView>,
}

#[derive(Debug, Serialize)]
struct VcpuEntryView {
    index: u32,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay_ns: Option<u64>,
}

#[derive(Debug, Serialize)]
struct NicView {
    name: Option<String>,
    mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<InterfaceStatsView>,
}

#[derive(Debug, Serialize)]
struct BlockView {
    name: String,
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<BlockStatsView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allocation: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    physical: Option<u64>,
}

impl StatsView {
    fn from_proto(r: &pb::DomainStatsRecord) -> Self {
        StatsView {
            name: r.name.clone(),
            uuid: r.uuid.clone(),
            state: r.state.as_ref().map(|s| StateView {
                state: State::from_proto(s.state),
                reason: reason_words(s.reason).1,
            }),
            cpu: r.cpu.as_ref().map(|c| CpuView {
                time_ns: c.time_ns,
                user_ns: c.user_ns,
                system_ns: c.system_ns,
            }),
            balloon: r.balloon.as_ref().map(|b| BalloonView {
                current_kib: b.current_kib,
                maximum_kib: b.maximum_kib,
                memory: b
                    .memory
                    .as_ref()
                    .map(|m| MemoryStatsView {
                        // balloon.current already says it.
                        actual_kib: None,
                        ..MemoryStatsView::from_proto(m)
                    })
                    .unwrap_or_default(),
            }),
            vcpu: r.vcpu.as_ref().map(|v| VcpuView {
                current: v.current,
                maximum: v.maximum,
                vcpus: v
                    .vcpus
                    .iter()
                    .map(|e| VcpuEntryView {
                        index: e.index,
                        state: match pb::VcpuState::try_from(e.state) {
                            Ok(pb::VcpuState::Running) => "running",
                            Ok(pb::VcpuState::Blocked) => "blocked",
                            _ => "offline",
                        },
                        time_ns: e.time_ns,
                        delay_ns: e.delay_ns,
                    })
                    .collect(),
            }),
            interfaces: r.interfaces.as_ref().map(|g| {
                g.interfaces
                    .iter()
                    .map(|n| NicView {
                        name: non_empty(&n.name),
                        mac: non_empty(&n.mac),
                        stats: n.stats.as_ref().map(InterfaceStatsView::from_proto),
                    })
                    .collect()
            }),
            blocks: r.blocks.as_ref().map(|g| {
                g.blocks
                    .iter()
                    .map(|b| BlockView {
                        name: b.name.clone(),
                        path: non_empty(&b.path),
                        stats: b.stats.as_ref().map(BlockStatsView::from_proto),
                        allocation: b.allocation,
                        capacity: b.capacity,
                        physical: b.physical,
                    })
                    .collect()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domblklist_like_virsh() {
        let devices = vec![
            pb::BlockDevice {
                target: "vda".into(),
                source: "/var/lib/images/web.qcow2".into(),
                r#type: "file".into(),
                device: "disk".into(),
            },
            pb::BlockDevice {
                target: "sda".into(),
                source: String::new(),
                r#type: "file".into(),
                device: "cdrom".into(),
            },
        ];
        assert_eq!(
            render_domblklist(&devices, false),
            " Target   Source\n\
             -------------------------------------\n \
             vda      /var/lib/images/web.qcow2\n \
             sda      -\n"
        );
        let details = render_domblklist(&devices, true);
        assert!(
            details.starts_with(" Type   Device   Target   Source\n"),
            "{details}"
        );
        assert!(
            details.contains(" file   cdrom    sda      -\n"),
            "{details}"
        );
    }

    #[test]
    fn domiflist_like_virsh() {
        let nics = vec![pb::InterfaceEntry {
            name: String::new(),
            r#type: "user".into(),
            source: String::new(),
            model: "virtio".into(),
            mac: "52:54:00:aa:bb:cc".into(),
        }];
        assert_eq!(
            render_domiflist(&nics),
            " Interface   Type   Source   Model    MAC\n\
             ---------------------------------------------------------\n \
             -           user   -        virtio   52:54:00:aa:bb:cc\n"
        );
    }

    #[test]
    fn domblkstat_like_virsh() {
        let s = pb::BlockStats {
            rd_req: 3,
            rd_bytes: 1536,
            ..Default::default()
        };
        let text = render_domblkstat("vda", &s, false);
        assert!(text.starts_with("vda rd_req 3\nvda rd_bytes 1536\nvda wr_req 0\n"));
        assert!(text.ends_with("vda flush_total_times 0\n"), "{text}");
        assert_eq!(text.lines().count(), 8);
        // No device: the sum, printed with an empty device name as virsh does.
        assert!(render_domblkstat("", &s, false).starts_with(" rd_req 3\n"));
        let human = render_domblkstat("vda", &s, true);
        assert!(
            human.starts_with("Device: vda\n number of read operations:      3\n"),
            "{human:?}"
        );
    }

    #[test]
    fn domifstat_and_dommemstat_like_virsh() {
        let s = pb::InterfaceStats {
            rx_bytes: 10,
            tx_drop: 2,
            ..Default::default()
        };
        let text = render_domifstat("vnet0", &s);
        assert!(text.starts_with("vnet0 rx_bytes 10\n"));
        assert!(text.ends_with("vnet0 tx_drop 2\n"));
        let m = pb::MemoryStats {
            actual_kib: Some(1024),
            rss_kib: Some(300),
            unused_kib: Some(5),
            ..Default::default()
        };
        assert_eq!(
            memory_lines(&m),
            vec![("actual", 1024), ("unused", 5), ("rss", 300)]
        );
    }

    #[test]
    fn domstats_fields_use_libvirt_names() {
        let record = pb::DomainStatsRecord {
            name: "web".into(),
            uuid: "u".into(),
            state: Some(pb::StateStats {
                state: pb::DomainState::Shutoff.into(),
                reason: pb::StateReason::ShutoffDestroyed.into(),
            }),
            cpu: None,
            balloon: Some(pb::BalloonStats {
                current_kib: 512,
                maximum_kib: 1024,
                memory: Some(pb::MemoryStats {
                    actual_kib: Some(512),
                    last_update: Some(77),
                    ..Default::default()
                }),
            }),
            vcpu: Some(pb::VcpuStats {
                current: 1,
                maximum: 2,
                vcpus: vec![pb::VcpuEntry {
                    index: 0,
                    state: pb::VcpuState::Running.into(),
                    time_ns: Some(5),
                    delay_ns: None,
                }],
            }),
            interfaces: Some(pb::InterfaceGroup {
                interfaces: vec![pb::InterfaceCounters {
                    name: String::new(),
                    mac: "m".into(),
                    stats: None,
                }],
            }),
            blocks: Some(pb::BlockGroup {
                blocks: vec![pb::BlockCounters {
                    name: "vda".into(),
                    path: "/a.img".into(),
                    stats: Some(pb::BlockStats::default()),
                    allocation: None,
                    capacity: Some(100),
                    physical: None,
                }],
            }),
        };
        let text = render_domstats(&[record.clone(), record]);
        let first: Vec<&str> = text.split("\n\n").next().unwrap().lines().collect();
        assert_eq!(
            first[..9],
            [
                "Domain: 'web'",
                "  state.state=5",
                "  state.reason=2",
                "  balloon.current=512",
                "  balloon.maximum=1024",
                "  balloon.last-update=77",
                "  vcpu.current=1",
                "  vcpu.maximum=2",
                "  vcpu.0.state=1",
            ]
        );
        assert!(text.contains("  vcpu.0.time=5\n  net.count=1\n  block.count=1\n"));
        assert!(text.contains("  block.0.path=/a.img\n  block.0.rd.reqs=0\n"));
        assert!(text.contains("  block.0.capacity=100\n"));
        assert!(
            !text.contains("net.0.name"),
            "no name without a host device"
        );
        assert_eq!(text.matches("Domain: 'web'").count(), 2);
        assert!(
            !text.ends_with("\n\n"),
            "no blank line after the last domain"
        );
    }
}
