//! Statistics of a running QEMU, read without the domain's job lock: QMP queries (block
//! counters, balloon, vCPU threads), `/proc` (CPU time, RSS, per-vCPU thread times) and
//! `/sys/class/net` (tap counters).
//!
//! Every function takes what it reads from — the monitor, the QEMU pid, the live definition —
//! so it works on any QEMU, and the tests drive them against a real one. `query-blockstats`
//! is read raw: qapi 0.15's typed reply (from QEMU 9.1's schema) does not deserialize on 7.2.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::driver::QemuDriver;
use super::errors;
use super::monitor::{Monitor, MonitorError};
use crate::domains::Snapshot;
use crate::driver::core::{Core, Outcome};
use crate::error::{DomainError, Result};
use crate::model::{DomainRef, EventBody, Impact};
use crate::stats::{
    self as model, BlockStats, CpuStats, DomainStats, InterfaceStats, MemoryStats, StatsGroups,
    StatsQuery, VcpuEntry, VcpuState,
};
use crate::xml::DomainDef;
use crate::xml::Memballoon;

/// Each QMP query of a statistics call: stats are reads and must not hang a client behind a
/// QEMU that stopped answering.
pub const STATS_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the kernel shows network device counters.
pub const SYS_CLASS_NET: &str = "/sys/class/net";

// ---------------------------------------------------------------------------------------------
// Block devices: query-block (what is attached where) + query-blockstats (counters)

/// One `query-block` entry, the parts used here.
#[derive(Debug, Deserialize)]
struct BlockEntry {
    #[serde(default)]
    device: String,
    qdev: Option<String>,
    inserted: Option<Inserted>,
}

#[derive(Debug, Deserialize)]
struct Inserted {
    file: Option<String>,
    #[serde(rename = "node-name")]
    node_name: Option<String>,
    image: Option<Image>,
}

#[derive(Debug, Deserialize)]
struct Image {
    #[serde(rename = "virtual-size")]
    virtual_size: Option<u64>,
    #[serde(rename = "actual-size")]
    actual_size: Option<u64>,
}

/// One `query-blockstats` entry: counters of a device's top node, and of the node below it
/// (`parent`, the storage node, whose highest written offset is libvirt's "allocation").
#[derive(Debug, Deserialize)]
struct StatsEntry {
    #[serde(default)]
    device: String,
    qdev: Option<String>,
    #[serde(rename = "node-name")]
    node_name: Option<String>,
    stats: Counters,
    parent: Option<Box<ParentEntry>>,
}

#[derive(Debug, Deserialize)]
struct ParentEntry {
    stats: Counters,
}

/// QAPI's BlockDeviceStats, the fields libvirt reports.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Counters {
    rd_bytes: u64,
    wr_bytes: u64,
    rd_operations: u64,
    wr_operations: u64,
    flush_operations: u64,
    rd_total_time_ns: u64,
    wr_total_time_ns: u64,
    flush_total_time_ns: u64,
    wr_highest_offset: u64,
}

impl Counters {
    fn block_stats(&self) -> BlockStats {
        BlockStats {
            rd_req: self.rd_operations,
            rd_bytes: self.rd_bytes,
            wr_req: self.wr_operations,
            wr_bytes: self.wr_bytes,
            flush_req: self.flush_operations,
            rd_total_time_ns: self.rd_total_time_ns,
            wr_total_time_ns: self.wr_total_time_ns,
            flush_total_time_ns: self.flush_total_time_ns,
        }
    }
}

/// What QEMU says about one disk of the definition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskLive {
    pub stats: Option<BlockStats>,
    pub allocation: Option<u64>,
    pub capacity: Option<u64>,
    pub physical: Option<u64>,
}

/// The device id in a `qdev` path: `/machine/peripheral/virtio-disk0/virtio-backend` →
/// `virtio-disk0`. QEMU gives a bare id for some devices.
fn qdev_id(qdev: &str) -> Option<&str> {
    match qdev.strip_prefix("/machine/peripheral/") {
        Some(rest) => rest.split('/').next(),
        None if !qdev.starts_with('/') => Some(qdev),
        None => None,
    }
}

/// Lines QEMU's entries up with the definition's disks. A disk is found by its `<alias>`
/// (QEMU's device id, when the live XML carries one), else by its source path, else by the
/// device id the command line gave it (a `<disk type='volume'>` names no path); its counters
/// by the same `qdev` (or, for `-drive` setups, the same device name, or node name).
fn match_disks(def: &DomainDef, blocks: &[BlockEntry], stats: &[StatsEntry]) -> Vec<DiskLive> {
    let mut used = vec![false; blocks.len()];
    def.devices
        .disks
        .iter()
        .map(|disk| {
            if !model::disk_has_medium(disk) {
                return DiskLive::default();
            }
            let alias = disk.info.alias.as_deref();
            let path = model::disk_source(disk);
            let by_alias = alias.and_then(|alias| {
                blocks
                    .iter()
                    .position(|b| b.qdev.as_deref().and_then(qdev_id) == Some(alias))
            });
            let by_path = || {
                blocks.iter().enumerate().position(|(i, b)| {
                    !used[i]
                        && path.is_some()
                        && b.inserted.as_ref().and_then(|x| x.file.as_deref()) == path.as_deref()
                })
            };
            let by_device_id = || {
                let id = super::argv::disk_device_id(def, disk).ok()?;
                blocks.iter().enumerate().position(|(i, b)| {
                    !used[i] && b.qdev.as_deref().and_then(qdev_id) == Some(id.as_str())
                })
            };
            let found = by_alias.or_else(by_path).or_else(by_device_id);
            let Some(index) = found else {
                return DiskLive::default();
            };
            used[index] = true;
            let block = &blocks[index];
            let inserted = block.inserted.as_ref();
            let entry = stats.iter().find(|s| {
                (block.qdev.is_some() && s.qdev == block.qdev)
                    || (!block.device.is_empty() && s.device == block.device)
                    || (inserted.and_then(|x| x.node_name.as_ref()).is_some()
                        && s.node_name.as_ref() == inserted.and_then(|x| x.node_name.as_ref()))
            });
            let image = inserted.and_then(|x| x.image.as_ref());
            DiskLive {
                stats: entry.map(|e| e.stats.block_stats()),
                allocation: entry
                    .and_then(|e| e.parent.as_ref())
                    .map(|p| p.stats.wr_highest_offset),
                capacity: image.and_then(|i| i.virtual_size),
                physical: image.and_then(|i| i.actual_size),
            }
        })
        .collect()
}

/// Reads every disk's counters and sizes, one entry per disk of `def`, in its order.
pub async fn disks(monitor: &Monitor, def: &DomainDef) -> Result<Vec<DiskLive>, MonitorError> {
    let monitor = monitor.with_timeout(STATS_TIMEOUT);
    let (blocks, stats) = tokio::join!(
        monitor.execute_raw(json!({"execute": "query-block"})),
        monitor.execute_raw(json!({"execute": "query-blockstats"})),
    );
    let blocks: Vec<BlockEntry> = decode("query-block", blocks?)?;
    let stats: Vec<StatsEntry> = decode("query-blockstats", stats?)?;
    Ok(match_disks(def, &blocks, &stats))
}

fn decode<T: serde::de::DeserializeOwned>(command: &str, value: Value) -> Result<T, MonitorError> {
    serde_json::from_value(value)
        .map_err(|e| MonitorError::Protocol(format!("unexpected reply to {command}: {e}")))
}

/// virDomainBlockStatsFlags: the disk `device` names (target or source path), or with an
/// empty `device` the sum over every disk with a medium.
pub async fn block_stats(monitor: &Monitor, def: &DomainDef, device: &str) -> Result<BlockStats> {
    let name = &def.name;
    let index = if device.is_empty() {
        None
    } else {
        Some(model::find_disk(def, device).ok_or_else(|| {
            DomainError::InvalidArg(format!("domain '{name}' has no disk '{device}'"))
        })?)
    };
    if let Some(i) = index
        && !model::disk_has_medium(&def.devices.disks[i])
    {
        return Err(DomainError::OperationInvalid(format!(
            "disk '{device}' of domain '{name}' has no medium"
        )));
    }
    let live = disks(monitor, def)
        .await
        .map_err(|e| errors::monitor(name, "read block statistics of", e))?;
    match index {
        Some(i) => live[i].stats.ok_or_else(|| {
            DomainError::OperationFailed(format!(
                "QEMU reports no counters for disk '{device}' of domain '{name}'"
            ))
        }),
        None => {
            let mut total = BlockStats::default();
            for stats in live.iter().filter_map(|d| d.stats.as_ref()) {
                total.add(stats);
            }
            Ok(total)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Network interfaces: the host side of each tap

/// Reads a network device's counters as the host sees them (`rx` = what the host received).
pub fn host_net_counters(sys_class_net: &Path, dev: &str) -> std::io::Result<InterfaceStats> {
    if dev.is_empty() || dev == "." || dev == ".." || dev.contains('/') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("'{dev}' is not a network device name"),
        ));
    }
    let dir = sys_class_net.join(dev).join("statistics");
    let read = |name: &str| -> std::io::Result<u64> {
        let text = std::fs::read_to_string(dir.join(name))?;
        text.trim().parse().map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", dir.join(name).display()),
            )
        })
    };
    Ok(InterfaceStats {
        rx_bytes: read("rx_bytes")?,
        rx_packets: read("rx_packets")?,
        rx_errs: read("rx_errors")?,
        rx_drop: read("rx_dropped")?,
        tx_bytes: read("tx_bytes")?,
        tx_packets: read("tx_packets")?,
        tx_errs: read("tx_errors")?,
        tx_drop: read("tx_dropped")?,
    })
}

/// A tap's counters seen from the guest: what the host's end sent, the guest received.
/// libvirt swaps for every type but `direct` (macvtap, which shares the host's view).
pub fn guest_view(host: InterfaceStats, iface_type: &str) -> InterfaceStats {
    if iface_type == "direct" {
        return host;
    }
    InterfaceStats {
        rx_bytes: host.tx_bytes,
        rx_packets: host.tx_packets,
        rx_errs: host.tx_errs,
        rx_drop: host.tx_drop,
        tx_bytes: host.rx_bytes,
        tx_packets: host.rx_packets,
        tx_errs: host.rx_errs,
        tx_drop: host.rx_drop,
    }
}

/// virDomainInterfaceStats for the interface `device` names (host-side name or MAC).
pub fn interface_stats(
    def: &DomainDef,
    device: &str,
    sys_class_net: &Path,
) -> Result<InterfaceStats> {
    let name = &def.name;
    let index = model::find_interface(def, device).ok_or_else(|| {
        DomainError::InvalidArg(format!("domain '{name}' has no interface '{device}'"))
    })?;
    let nic = &def.devices.interfaces[index];
    if nic.iface_type == "user" {
        return Err(DomainError::Unsupported {
            driver: super::DRIVER,
            what: format!(
                "interface counters for '{device}' of domain '{name}': user-mode networking \
                 (<interface type='user'>) runs inside QEMU and has no host device to count on"
            ),
        });
    }
    let Some(tap) = nic.target_dev.as_deref() else {
        return Err(DomainError::Unsupported {
            driver: super::DRIVER,
            what: format!(
                "interface counters for '{device}' of domain '{name}': it has no host device"
            ),
        });
    };
    let host = host_net_counters(sys_class_net, tap).map_err(|e| {
        DomainError::OperationFailed(format!(
            "cannot read the counters of '{tap}' (interface of domain '{name}'): {e}"
        ))
    })?;
    Ok(guest_view(host, &nic.iface_type))
}

// ---------------------------------------------------------------------------------------------
// Memory: the balloon and the guest's own figures

/// The balloon device's QOM path, found by type under `/machine/peripheral` (as libvirt
/// finds it), or `None` when the domain has none.
async fn balloon_path(monitor: &Monitor) -> Result<Option<String>, MonitorError> {
    let list = monitor
        .execute_raw(json!({"execute": "qom-list", "arguments": {"path": "/machine/peripheral"}}))
        .await?;
    #[derive(Deserialize)]
    struct Property {
        name: String,
        #[serde(rename = "type")]
        kind: String,
    }
    let properties: Vec<Property> = decode("qom-list", list)?;
    Ok(properties
        .into_iter()
        .find(|p| p.kind.starts_with("child<virtio-balloon"))
        .map(|p| format!("/machine/peripheral/{}", p.name)))
}

/// The balloon's `guest-stats` property.
#[derive(Debug, Deserialize)]
struct GuestStats {
    #[serde(default)]
    stats: serde_json::Map<String, Value>,
    #[serde(rename = "last-update", default)]
    last_update: u64,
}

impl GuestStats {
    /// Copies what the guest reported into `out`, as libvirt's qemuMonitorJSONGetMemoryStats
    /// maps it. QEMU reports a value the guest never sent as -1 (2^64-1): left out.
    fn fill(&self, out: &mut MemoryStats) {
        if self.last_update == 0 {
            return;
        }
        let get = |key: &str| {
            self.stats
                .get(key)
                .and_then(Value::as_u64)
                .filter(|v| *v != u64::MAX)
        };
        let kib = |key: &str| get(key).map(|b| b / 1024);
        out.swap_in_kib = kib("stat-swap-in");
        out.swap_out_kib = kib("stat-swap-out");
        out.major_fault = get("stat-major-faults");
        out.minor_fault = get("stat-minor-faults");
        out.unused_kib = kib("stat-free-memory");
        out.available_kib = kib("stat-total-memory");
        out.usable_kib = kib("stat-available-memory");
        out.disk_caches_kib = kib("stat-disk-caches");
        out.hugetlb_pgalloc = get("stat-htlb-pgalloc");
        out.hugetlb_pgfail = get("stat-htlb-pgfail");
        out.last_update = Some(self.last_update);
    }
}

/// virDomainMemoryStats: the balloon's size, the guest's figures (when its balloon driver
/// reports them: see [`set_stats_period`]) and the QEMU process's RSS.
pub async fn memory_stats(
    monitor: &Monitor,
    pid: i32,
    def: &DomainDef,
) -> Result<MemoryStats, MonitorError> {
    let monitor = monitor.with_timeout(STATS_TIMEOUT);
    let mut out = MemoryStats {
        rss_kib: proc_stat(&format!("/proc/{pid}/stat")).map(|s| s.rss_kib),
        ..MemoryStats::default()
    };
    if !model::has_balloon(def) {
        out.actual_kib = Some(def.memory_kib);
        return Ok(out);
    }
    let balloon = monitor
        .execute_raw(json!({"execute": "query-balloon"}))
        .await?;
    out.actual_kib = balloon
        .get("actual")
        .and_then(Value::as_u64)
        .map(|b| b / 1024);
    if let Some(path) = balloon_path(&monitor).await? {
        let stats = monitor
            .execute_raw(json!({"execute": "qom-get",
                "arguments": {"path": path, "property": "guest-stats"}}))
            .await?;
        let stats: GuestStats = decode("qom-get guest-stats", stats)?;
        stats.fill(&mut out);
    }
    Ok(out)
}

/// virDomainSetMemoryStatsPeriod, live: how often the guest's balloon driver reports its
/// figures (0 stops it).
pub async fn set_stats_period(monitor: &Monitor, def: &DomainDef, seconds: u32) -> Result<()> {
    let name = &def.name;
    let no_balloon =
        || DomainError::OperationInvalid(format!("domain '{name}' has no memory balloon device"));
    if !model::has_balloon(def) {
        return Err(no_balloon());
    }
    let monitor = monitor.with_timeout(STATS_TIMEOUT);
    let fail = |e| errors::monitor(name, "set the memory statistics period of", e);
    let path = balloon_path(&monitor)
        .await
        .map_err(fail)?
        .ok_or_else(no_balloon)?;
    monitor
        .execute_raw(json!({"execute": "qom-set", "arguments": {
            "path": path, "property": "guest-stats-polling-interval", "value": seconds}}))
        .await
        .map_err(fail)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// CPU: /proc

/// The fields of a `/proc/PID/stat` (or `/proc/PID/task/TID/stat`) line used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcStat {
    user_ns: u64,
    system_ns: u64,
    rss_kib: u64,
}

fn proc_stat(path: &str) -> Option<ProcStat> {
    parse_proc_stat(
        &std::fs::read_to_string(path).ok()?,
        clock_ticks()?,
        page_size()?,
    )
}

/// Parses utime (field 14), stime (15) and rss (24, pages). The command name in parentheses
/// may hold spaces and parentheses, so fields are counted from the last `)`.
fn parse_proc_stat(text: &str, ticks_per_second: u64, page_size: u64) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3.
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    let ns = |ticks: u64| ticks.saturating_mul(1_000_000_000) / ticks_per_second;
    Some(ProcStat {
        user_ns: ns(field(14)?),
        system_ns: ns(field(15)?),
        rss_kib: field(24)?.saturating_mul(page_size) / 1024,
    })
}

fn clock_ticks() -> Option<u64> {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t > 0)
}

fn page_size() -> Option<u64> {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t > 0)
}

/// `cpu.*` of the QEMU process.
pub fn cpu_stats(pid: i32) -> Option<CpuStats> {
    let stat = proc_stat(&format!("/proc/{pid}/stat"))?;
    Some(CpuStats {
        time_ns: stat.user_ns + stat.system_ns,
        user_ns: Some(stat.user_ns),
        system_ns: Some(stat.system_ns),
    })
}

/// One `query-cpus-fast` entry, the parts used here.
#[derive(Debug, Deserialize)]
struct CpuEntry {
    #[serde(rename = "cpu-index")]
    cpu_index: u32,
    #[serde(rename = "thread-id")]
    thread_id: i32,
}

/// Run delay of a thread (second field of `schedstat`), in nanoseconds.
fn sched_delay_ns(pid: i32, tid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat")).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// `vcpu.N.*`: every vCPU up to the maximum; online ones with their thread's times.
pub async fn vcpus(
    monitor: &Monitor,
    pid: i32,
    maximum: u32,
) -> Result<Vec<VcpuEntry>, MonitorError> {
    let reply = monitor
        .with_timeout(STATS_TIMEOUT)
        .execute_raw(json!({"execute": "query-cpus-fast"}))
        .await?;
    let online: Vec<CpuEntry> = decode("query-cpus-fast", reply)?;
    let maximum = maximum.max(online.iter().map(|c| c.cpu_index + 1).max().unwrap_or(0));
    Ok((0..maximum)
        .map(|index| match online.iter().find(|c| c.cpu_index == index) {
            Some(cpu) => {
                let thread = proc_stat(&format!("/proc/{pid}/task/{}/stat", cpu.thread_id));
                VcpuEntry {
                    index,
                    state: VcpuState::Running,
                    time_ns: thread.map(|t| t.user_ns + t.system_ns),
                    delay_ns: sched_delay_ns(pid, cpu.thread_id),
                }
            }
            None => VcpuEntry {
                index,
                state: VcpuState::Offline,
                time_ns: None,
                delay_ns: None,
            },
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// domstats

/// One running domain's `domstats` record: the definition's figures ([`model::config_record`])
/// with what QEMU, `/proc` and `/sys` say now. As libvirt does, a group whose live source
/// fails is reported with what is known and the failure is logged, so one odd domain does not
/// fail a whole listing.
pub async fn live_record(
    monitor: &Monitor,
    pid: i32,
    snapshot: &Snapshot,
    groups: StatsGroups,
) -> DomainStats {
    let def = &snapshot.def;
    let mut record = model::config_record(snapshot, groups);
    let name = def.name.as_str();
    let warn = |what: &str, error: &dyn std::fmt::Display| {
        tracing::debug!(domain = name, %error, "domstats: no live {what}");
    };
    let (memory, cpus, disks) = tokio::join!(
        async {
            if groups.balloon {
                Some(memory_stats(monitor, pid, def).await)
            } else {
                None
            }
        },
        async {
            if groups.vcpu {
                Some(vcpus(monitor, pid, def.vcpu.max).await)
            } else {
                None
            }
        },
        async {
            if groups.block {
                Some(disks(monitor, def).await)
            } else {
                None
            }
        },
    );
    if groups.cpu_total {
        record.cpu = cpu_stats(pid);
    }
    if let (Some(balloon), Some(memory)) = (record.balloon.as_mut(), memory) {
        match memory {
            Ok(memory) => {
                if let Some(actual) = memory.actual_kib {
                    balloon.current_kib = actual;
                }
                balloon.memory = memory;
            }
            Err(error) => warn("balloon", &error),
        }
    }
    if let (Some(vcpu), Some(cpus)) = (record.vcpu.as_mut(), cpus) {
        match cpus {
            Ok(entries) => vcpu.vcpus = entries,
            Err(error) => warn("vcpu", &error),
        }
    }
    if let Some(nics) = record.interfaces.as_mut() {
        for (nic, def_nic) in nics.iter_mut().zip(&def.devices.interfaces) {
            if def_nic.iface_type == "user" {
                continue;
            }
            if let Some(tap) = &nic.name {
                match host_net_counters(Path::new(SYS_CLASS_NET), tap) {
                    Ok(host) => nic.stats = Some(guest_view(host, &def_nic.iface_type)),
                    Err(error) => warn("interface", &error),
                }
            }
        }
    }
    if let (Some(blocks), Some(disks)) = (record.blocks.as_mut(), disks) {
        match disks {
            Ok(live) => {
                for (block, live) in blocks.iter_mut().zip(live) {
                    block.stats = live.stats;
                    block.allocation = live.allocation;
                    block.capacity = live.capacity;
                    block.physical = live.physical;
                }
            }
            Err(error) => warn("block", &error),
        }
    }
    record
}

// ---------------------------------------------------------------------------------------------
// The driver's side: which VM, never behind a job

impl QemuDriver {
    /// `domstats`: live records for running domains, the definition's for the others.
    pub(super) async fn stats_records(&self, query: &StatsQuery) -> Result<Vec<DomainStats>> {
        let groups = query.groups.or_all();
        let snapshots = model::select(&self.core.domains, query)?;
        let records = snapshots.iter().map(|snapshot| async move {
            if !snapshot.is_active() {
                return model::config_record(snapshot, groups);
            }
            match self.vm_of(snapshot) {
                Ok(vm) => live_record(&vm.monitor, vm.pid(), snapshot, groups).await,
                Err(error) => {
                    tracing::debug!(domain = %snapshot.def.name, %error, "domstats without a VM");
                    model::config_record(snapshot, groups)
                }
            }
        });
        Ok(futures::future::join_all(records).await)
    }

    pub(super) async fn block_stats_of(
        &self,
        domain: &DomainRef,
        device: &str,
    ) -> Result<BlockStats> {
        let (snapshot, vm) = self.running_vm(domain)?;
        block_stats(&vm.monitor, &snapshot.def, device).await
    }

    pub(super) fn interface_stats_of(
        &self,
        domain: &DomainRef,
        device: &str,
    ) -> Result<InterfaceStats> {
        let (snapshot, _vm) = self.running_vm(domain)?;
        interface_stats(&snapshot.def, device, Path::new(SYS_CLASS_NET))
    }

    pub(super) async fn memory_stats_of(&self, domain: &DomainRef) -> Result<MemoryStats> {
        let (snapshot, vm) = self.running_vm(domain)?;
        memory_stats(&vm.monitor, vm.pid(), &snapshot.def)
            .await
            .map_err(|e| errors::monitor(&snapshot.def.name, "read memory statistics of", e))
    }

    /// virDomainSetMemoryStatsPeriod: live (QMP `qom-set` on the balloon), in the config
    /// (`<memballoon><stats period>`, used at the next start), or both; the live definition
    /// records the new period too, so dumpxml and a service restart agree with QEMU.
    pub(super) async fn set_stats_period_of(
        &self,
        domain: &DomainRef,
        seconds: u32,
        impact: Impact,
    ) -> Result<()> {
        let locked = self.core.begin(domain).await?;
        let old = &locked.old;
        let targets = crate::impact::resolve(impact, old.is_active(), old.persistent)?;
        let next = Core::edit(old, targets, |live, config| {
            for def in [live, config].into_iter().flatten() {
                if !crate::stats::has_balloon(def) {
                    return Err(DomainError::OperationInvalid(format!(
                        "domain '{}' has no memory balloon device",
                        def.name
                    )));
                }
                // No <memballoon> means the x86 default, a virtio balloon: made explicit.
                let balloon = def.devices.memballoon.get_or_insert_with(|| Memballoon {
                    model: "virtio".into(),
                    ..Default::default()
                });
                balloon.stats_period = Some(seconds);
            }
            Ok(())
        })?;
        if targets.live && old.is_active() {
            let vm = self.vm_of(old)?;
            set_stats_period(&vm.monitor, &old.def, seconds).await?;
        }
        self.core
            .commit(
                &locked.object,
                &locked.old,
                Outcome::Update(next, vec![EventBody::ConfigChanged("memory-stats-period")]),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_domain;

    fn def(disks: &str) -> DomainDef {
        parse_domain(&format!(
            "<domain type='qemu'><name>web</name><memory>65536</memory><os><type>hvm</type></os>\
             <devices>{disks}</devices></domain>"
        ))
        .unwrap()
    }

    fn block(qdev: &str, file: &str, node: &str) -> BlockEntry {
        serde_json::from_value(json!({
            "device": "", "qdev": qdev,
            "inserted": {"file": file, "node-name": node,
                         "image": {"virtual-size": 1000, "actual-size": 10}}
        }))
        .unwrap()
    }

    fn stats(qdev: &str, node: &str, rd: u64) -> StatsEntry {
        serde_json::from_value(json!({
            "device": "", "qdev": qdev, "node-name": node,
            "stats": {"rd_operations": rd, "rd_bytes": rd * 512, "account_invalid": true,
                      "timed_stats": []},
            "parent": {"node-name": "x", "stats": {"wr_highest_offset": 4096}}
        }))
        .unwrap()
    }

    #[test]
    fn disks_are_matched_by_alias_then_path() {
        let d = def(
            "<disk type='file'><source file='/a.img'/><target dev='vda' bus='virtio'/></disk>\
             <disk type='file'><source file='/b.img'/><target dev='vdb' bus='virtio'/>\
               <alias name='virtio-disk1'/></disk>\
             <disk type='file' device='cdrom'><target dev='sda' bus='sata'/></disk>\
             <disk type='volume'><source pool='default' volume='c.qcow2'/>\
               <target dev='vdc' bus='virtio'/></disk>",
        );
        let blocks = [
            block(
                "/machine/peripheral/virtio-disk1/virtio-backend",
                "/b.img",
                "n1",
            ),
            block(
                "/machine/peripheral/virtio-disk0/virtio-backend",
                "/a.img",
                "n0",
            ),
            block(
                "/machine/peripheral/virtio-disk2/virtio-backend",
                "/pool/c.qcow2",
                "n2",
            ),
        ];
        let counters = [
            stats("/machine/peripheral/virtio-disk0/virtio-backend", "n0", 3),
            stats("/machine/peripheral/virtio-disk1/virtio-backend", "n1", 5),
            stats("/machine/peripheral/virtio-disk2/virtio-backend", "n2", 7),
        ];
        let live = match_disks(&d, &blocks, &counters);
        assert_eq!(live.len(), 4);
        assert_eq!(live[0].stats.unwrap().rd_req, 3);
        assert_eq!(live[0].stats.unwrap().rd_bytes, 1536);
        assert_eq!(live[1].stats.unwrap().rd_req, 5);
        assert_eq!(live[1].allocation, Some(4096));
        assert_eq!((live[1].capacity, live[1].physical), (Some(1000), Some(10)));
        assert_eq!(
            live[2],
            DiskLive::default(),
            "an empty CD-ROM has no counters"
        );
        assert_eq!(
            live[3].stats.unwrap().rd_req,
            7,
            "a volume disk is found by its device id"
        );
    }

    #[test]
    fn qdev_ids() {
        assert_eq!(
            qdev_id("/machine/peripheral/virtio-disk0/virtio-backend"),
            Some("virtio-disk0")
        );
        assert_eq!(qdev_id("/machine/peripheral/sata0-0-1"), Some("sata0-0-1"));
        assert_eq!(qdev_id("ide0-1-0"), Some("ide0-1-0"));
        assert_eq!(qdev_id("/machine/peripheral-anon/device[0]"), None);
    }

    #[test]
    fn proc_stat_fields() {
        // 20 user ticks, 10 system ticks, 300 pages, at 100 ticks/s and 4 KiB pages.
        let line = "77 (qemu (x) y) S 1 77 77 0 -1 4194560 10 0 0 0 20 10 0 0 20 0 3 0 \
                    5000 123456789 300 18446744073709551615";
        let s = parse_proc_stat(line, 100, 4096).unwrap();
        assert_eq!(s.user_ns, 200_000_000);
        assert_eq!(s.system_ns, 100_000_000);
        assert_eq!(s.rss_kib, 1200);
        assert_eq!(parse_proc_stat("1 (x) S 1 2", 100, 4096), None);
        let me = std::process::id() as i32;
        let cpu = cpu_stats(me).unwrap();
        assert_eq!(cpu.time_ns, cpu.user_ns.unwrap() + cpu.system_ns.unwrap());
    }

    #[test]
    fn guest_stats_mapping() {
        let mut out = MemoryStats::default();
        let unset: GuestStats = serde_json::from_value(json!({
            "stats": {"stat-free-memory": u64::MAX}, "last-update": 0
        }))
        .unwrap();
        unset.fill(&mut out);
        assert_eq!(out, MemoryStats::default(), "no report yet: nothing");
        let reported: GuestStats = serde_json::from_value(json!({
            "stats": {"stat-free-memory": 2048u64 * 1024, "stat-total-memory": 4096u64 * 1024,
                      "stat-major-faults": 7, "stat-swap-in": u64::MAX},
            "last-update": 1700000000u64
        }))
        .unwrap();
        reported.fill(&mut out);
        assert_eq!(out.unused_kib, Some(2048));
        assert_eq!(out.available_kib, Some(4096));
        assert_eq!(out.major_fault, Some(7));
        assert_eq!(out.swap_in_kib, None);
        assert_eq!(out.last_update, Some(1700000000));
    }

    #[test]
    fn tap_counters_are_swapped_to_the_guest_view() {
        let dir = tempfile::tempdir().unwrap();
        let stats = dir.path().join("vnet0/statistics");
        std::fs::create_dir_all(&stats).unwrap();
        for (file, value) in [
            ("rx_bytes", 100),
            ("rx_packets", 2),
            ("rx_errors", 0),
            ("rx_dropped", 1),
            ("tx_bytes", 900),
            ("tx_packets", 9),
            ("tx_errors", 0),
            ("tx_dropped", 0),
        ] {
            std::fs::write(stats.join(file), format!("{value}\n")).unwrap();
        }
        let host = host_net_counters(dir.path(), "vnet0").unwrap();
        assert_eq!((host.rx_bytes, host.tx_bytes), (100, 900));
        let guest = guest_view(host, "bridge");
        assert_eq!((guest.rx_bytes, guest.rx_packets), (900, 9));
        assert_eq!((guest.tx_bytes, guest.tx_drop), (100, 1));
        assert_eq!(guest_view(host, "direct"), host);
        assert!(host_net_counters(dir.path(), "../etc").is_err());
        assert!(host_net_counters(dir.path(), "missing0").is_err());
        // The real sysfs: the loopback device always exists.
        assert!(host_net_counters(Path::new(SYS_CLASS_NET), "lo").is_ok());
    }

    #[test]
    fn interface_stats_refuses_user_networking_clearly() {
        let d = def(
            "<interface type='user'><mac address='52:54:00:00:00:01'/></interface>\
             <interface type='ethernet'><mac address='52:54:00:00:00:02'/><target dev='lo'/></interface>",
        );
        let err = interface_stats(&d, "52:54:00:00:00:01", Path::new(SYS_CLASS_NET)).unwrap_err();
        assert!(matches!(err, DomainError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("user-mode networking"), "{err}");
        let err = interface_stats(&d, "vnet9", Path::new(SYS_CLASS_NET)).unwrap_err();
        assert!(matches!(err, DomainError::InvalidArg(_)), "{err}");
        // An ethernet interface on `lo`, the one device every host has: readable.
        interface_stats(&d, "lo", Path::new(SYS_CLASS_NET)).unwrap();
    }
}
