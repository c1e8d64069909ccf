//! Monitoring vocabulary (proto-free): what `domstats`, `domblklist`, `domiflist`,
//! `domblkstat`, `domifstat` and `dommemstat` carry, and the parts every driver can derive
//! from a definition alone (device lists, configured sizes, a shut-off domain's record).
//!
//! Counters a driver cannot read are `None`, never 0, so a client can tell "nothing happened"
//! from "not known" (libvirt leaves such typed parameters out).

use std::sync::Arc;

use crate::domains::{DomainList, Snapshot};
use crate::error::{DomainError, Result};
use crate::impact;
use crate::model::{DomainRef, ListFilter, Reason, State};
use crate::xml::{DiskDevice, DomainDef, Interface};

/// libvirt's stat groups (VIR_DOMAIN_STATS_*).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsGroups {
    pub state: bool,
    pub cpu_total: bool,
    pub balloon: bool,
    pub vcpu: bool,
    pub interface: bool,
    pub block: bool,
}

impl StatsGroups {
    pub const ALL: StatsGroups = StatsGroups {
        state: true,
        cpu_total: true,
        balloon: true,
        vcpu: true,
        interface: true,
        block: true,
    };

    /// libvirt's rule: asking for no group means every group.
    pub fn or_all(self) -> StatsGroups {
        if self == StatsGroups::default() {
            StatsGroups::ALL
        } else {
            self
        }
    }
}

/// A `domstats` request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsQuery {
    /// The domains to report, in this order; empty = every domain `filter` matches.
    pub domains: Vec<DomainRef>,
    /// Only used when `domains` is empty.
    pub filter: ListFilter,
    pub groups: StatsGroups,
}

/// One domain's statistics; a group that was not asked for (or has nothing to say for this
/// domain) is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainStats {
    pub name: String,
    pub uuid: String,
    pub state: Option<(State, Reason)>,
    pub cpu: Option<CpuStats>,
    pub balloon: Option<BalloonStats>,
    pub vcpu: Option<VcpuStats>,
    pub interfaces: Option<Vec<InterfaceCounters>>,
    pub blocks: Option<Vec<BlockCounters>>,
}

/// `cpu.*`: CPU time of the domain's process, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuStats {
    pub time_ns: u64,
    pub user_ns: Option<u64>,
    pub system_ns: Option<u64>,
}

/// `balloon.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BalloonStats {
    pub current_kib: u64,
    pub maximum_kib: u64,
    /// The guest's figures, as `dommemstat` shows them.
    pub memory: MemoryStats,
}

/// virDomainMemoryStatStruct's tags; sizes in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    pub swap_in_kib: Option<u64>,
    pub swap_out_kib: Option<u64>,
    pub major_fault: Option<u64>,
    pub minor_fault: Option<u64>,
    pub unused_kib: Option<u64>,
    pub available_kib: Option<u64>,
    pub usable_kib: Option<u64>,
    pub actual_kib: Option<u64>,
    pub rss_kib: Option<u64>,
    /// When the guest last reported, seconds since the epoch.
    pub last_update: Option<u64>,
    pub disk_caches_kib: Option<u64>,
    pub hugetlb_pgalloc: Option<u64>,
    pub hugetlb_pgfail: Option<u64>,
}

/// libvirt's virVcpuState.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcpuState {
    Offline,
    Running,
    Blocked,
}

/// `vcpu.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VcpuStats {
    pub current: u32,
    pub maximum: u32,
    pub vcpus: Vec<VcpuEntry>,
}

/// `vcpu.N.*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VcpuEntry {
    pub index: u32,
    pub state: VcpuState,
    /// CPU time of the vCPU's thread.
    pub time_ns: Option<u64>,
    /// Time the vCPU's thread waited for a host CPU.
    pub delay_ns: Option<u64>,
}

/// virDomainInterfaceStatsStruct, from the guest's point of view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InterfaceStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errs: u64,
    pub rx_drop: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errs: u64,
    pub tx_drop: u64,
}

/// `net.N.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceCounters {
    /// The host-side device (tap), if the interface has one.
    pub name: Option<String>,
    pub mac: Option<String>,
    pub stats: Option<InterfaceStats>,
}

/// virDomainBlockStatsFlags' fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockStats {
    pub rd_req: u64,
    pub rd_bytes: u64,
    pub wr_req: u64,
    pub wr_bytes: u64,
    pub flush_req: u64,
    pub rd_total_time_ns: u64,
    pub wr_total_time_ns: u64,
    pub flush_total_time_ns: u64,
}

impl BlockStats {
    /// Field-wise sum, for `domblkstat` without a device (libvirt sums every disk).
    pub fn add(&mut self, other: &BlockStats) {
        self.rd_req += other.rd_req;
        self.rd_bytes += other.rd_bytes;
        self.wr_req += other.wr_req;
        self.wr_bytes += other.wr_bytes;
        self.flush_req += other.flush_req;
        self.rd_total_time_ns += other.rd_total_time_ns;
        self.wr_total_time_ns += other.wr_total_time_ns;
        self.flush_total_time_ns += other.flush_total_time_ns;
    }
}

/// `block.N.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockCounters {
    /// The target, `vda`.
    pub name: String,
    /// The source file or device, if any.
    pub path: Option<String>,
    pub stats: Option<BlockStats>,
    pub allocation: Option<u64>,
    pub capacity: Option<u64>,
    pub physical: Option<u64>,
}

/// One `<disk>`, as `domblklist --details` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    pub target: String,
    pub source: Option<String>,
    pub disk_type: String,
    pub device: String,
}

/// One `<interface>`, as `domiflist` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceEntry {
    pub name: Option<String>,
    pub iface_type: String,
    pub source: Option<String>,
    pub model: Option<String>,
    pub mac: Option<String>,
}

/// The disks of a definition, in document order (virsh's domblklist reads the same).
pub fn block_devices(def: &DomainDef) -> Vec<BlockDevice> {
    def.devices
        .disks
        .iter()
        .map(|disk| BlockDevice {
            target: disk.target.dev.clone(),
            source: disk_source(disk),
            disk_type: disk.disk_type.clone(),
            device: disk.device.to_string(),
        })
        .collect()
}

/// virsh's `source/@file | @dev | @dir | @name | @volume`, first one set.
pub fn disk_source(disk: &crate::xml::Disk) -> Option<String> {
    let source = disk.source.as_ref()?;
    [
        &source.file,
        &source.dev,
        &source.dir,
        &source.name,
        &source.volume,
    ]
    .into_iter()
    .find_map(|s| s.clone())
}

/// The interfaces of a definition, in document order.
pub fn interface_entries(def: &DomainDef) -> Vec<InterfaceEntry> {
    def.devices
        .interfaces
        .iter()
        .map(|nic| InterfaceEntry {
            name: nic.target_dev.clone(),
            iface_type: nic.iface_type.clone(),
            source: interface_source(nic),
            model: nic.model.clone(),
            mac: nic.mac.clone(),
        })
        .collect()
}

/// virsh's `source/@bridge | @dev | @network`, first one set.
fn interface_source(nic: &Interface) -> Option<String> {
    let source = nic.source.as_ref()?;
    [&source.bridge, &source.dev, &source.network]
        .into_iter()
        .find_map(|s| s.clone())
}

/// Finds the interface `device` names, as libvirt's virDomainNetFind: by MAC address when
/// `device` is one, else by host-side device name. Returns its index.
pub fn find_interface(def: &DomainDef, device: &str) -> Option<usize> {
    let interfaces = &def.devices.interfaces;
    match parse_mac(device) {
        Some(mac) => interfaces
            .iter()
            .position(|nic| nic.mac.as_deref().and_then(parse_mac) == Some(mac)),
        None => interfaces
            .iter()
            .position(|nic| nic.target_dev.as_deref() == Some(device)),
    }
}

/// `52:54:00:AA:bb:cc` → its six bytes; `None` for anything else.
fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut out {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Finds the disk `device` names, by target (`vda`) or by source path, as libvirt's
/// virDomainDiskByName. Returns its index.
pub fn find_disk(def: &DomainDef, device: &str) -> Option<usize> {
    let disks = &def.devices.disks;
    disks
        .iter()
        .position(|d| d.target.dev == device)
        .or_else(|| {
            disks
                .iter()
                .position(|d| disk_source(d).as_deref() == Some(device))
        })
}

/// The balloon's statistics period from `<memballoon><stats period='N'/>`, if the definition
/// carries one.
pub fn balloon_period(def: &DomainDef) -> Option<u32> {
    def.devices.memballoon.as_ref()?.stats_period
}

/// Whether the definition has a balloon device (libvirt adds a virtio one when the XML has
/// no `<memballoon>`; `model='none'` removes it).
pub fn has_balloon(def: &DomainDef) -> bool {
    def.devices
        .memballoon
        .as_ref()
        .is_none_or(|m| m.model != "none")
}

/// What a definition alone says for each requested group: the state, configured memory and
/// vCPU counts, and the device names and paths without counters. A shut-off domain's record
/// is exactly this (libvirt reports the same config values for inactive domains); drivers
/// fill in live figures for active ones.
pub fn config_record(snapshot: &Snapshot, groups: StatsGroups) -> DomainStats {
    let def = &snapshot.def;
    let active = snapshot.is_active();
    DomainStats {
        name: def.name.clone(),
        uuid: def.uuid.clone(),
        state: groups.state.then_some((snapshot.state, snapshot.reason)),
        cpu: None,
        balloon: groups.balloon.then(|| BalloonStats {
            current_kib: def.effective_current_memory_kib(),
            maximum_kib: def.memory_kib,
            memory: MemoryStats::default(),
        }),
        vcpu: groups.vcpu.then(|| VcpuStats {
            current: impact::vcpu_count(def, false),
            maximum: impact::vcpu_count(def, true),
            vcpus: Vec::new(),
        }),
        // libvirt reports interfaces of active domains only: only they have host devices.
        interfaces: (groups.interface && active).then(|| {
            def.devices
                .interfaces
                .iter()
                .map(|nic| InterfaceCounters {
                    name: nic.target_dev.clone(),
                    mac: nic.mac.clone(),
                    stats: None,
                })
                .collect()
        }),
        blocks: groups.block.then(|| {
            def.devices
                .disks
                .iter()
                .map(|disk| BlockCounters {
                    name: disk.target.dev.clone(),
                    path: disk_source(disk),
                    stats: None,
                    allocation: None,
                    capacity: None,
                    physical: None,
                })
                .collect()
        }),
    }
}

/// The snapshots a `domstats` query names: the listed domains in their order (a name that
/// is not found fails the call, as virDomainListGetStats does), or every domain the filter
/// matches, sorted by name.
pub fn select(domains: &DomainList, query: &StatsQuery) -> Result<Vec<Arc<Snapshot>>> {
    if query.domains.is_empty() {
        return Ok(domains
            .snapshots()
            .into_iter()
            .filter(|s| query.filter.matches(&s.summary()))
            .collect());
    }
    if query.filter != ListFilter::default() {
        return Err(DomainError::InvalidArg(
            "list filters (--list-*) apply only when no domain is named".into(),
        ));
    }
    query
        .domains
        .iter()
        .map(|domain| Ok(domains.find(domain)?.snapshot()))
        .collect()
}

/// Whether a disk can carry counters: an empty CD-ROM has no medium to count on.
pub fn disk_has_medium(disk: &crate::xml::Disk) -> bool {
    disk.device != DiskDevice::Cdrom || disk_source(disk).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_domain;

    const XML: &str = "<domain type='qemu'><name>web</name>\
        <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\
        <memory unit='MiB'>256</memory><currentMemory unit='MiB'>128</currentMemory>\
        <vcpu current='2'>4</vcpu><os><type>hvm</type></os><devices>\
        <disk type='file' device='disk'><source file='/img/web.qcow2'/><target dev='vda' bus='virtio'/></disk>\
        <disk type='file' device='cdrom'><target dev='sda' bus='sata'/></disk>\
        <interface type='bridge'><mac address='52:54:00:aa:bb:cc'/><source bridge='br0'/>\
        <target dev='vnet7'/><model type='virtio'/></interface>\
        <interface type='user'><mac address='52:54:00:00:00:01'/></interface>\
        <memballoon model='virtio'><stats period='5'/></memballoon>\
        </devices></domain>";

    fn def() -> DomainDef {
        parse_domain(XML).unwrap()
    }

    fn snapshot(state: State) -> Snapshot {
        Snapshot {
            def: Arc::new(def()),
            next_def: None,
            state,
            reason: Reason::Unknown,
            id: if state.is_active() { 3 } else { -1 },
            persistent: true,
            autostart: false,
            started_at: None,
            run_taints: Vec::new(),
            visible: true,
            removed: false,
        }
    }

    #[test]
    fn disks_and_interfaces_as_virsh_lists_them() {
        let def = def();
        assert_eq!(
            block_devices(&def),
            vec![
                BlockDevice {
                    target: "vda".into(),
                    source: Some("/img/web.qcow2".into()),
                    disk_type: "file".into(),
                    device: "disk".into(),
                },
                BlockDevice {
                    target: "sda".into(),
                    source: None,
                    disk_type: "file".into(),
                    device: "cdrom".into(),
                },
            ]
        );
        let nics = interface_entries(&def);
        assert_eq!(nics.len(), 2);
        assert_eq!(nics[0].name.as_deref(), Some("vnet7"));
        assert_eq!(nics[0].source.as_deref(), Some("br0"));
        assert_eq!(nics[0].model.as_deref(), Some("virtio"));
        assert_eq!(nics[1].iface_type, "user");
        assert_eq!(nics[1].name, None);
    }

    #[test]
    fn devices_are_found_like_libvirt_finds_them() {
        let def = def();
        assert_eq!(find_disk(&def, "vda"), Some(0));
        assert_eq!(find_disk(&def, "/img/web.qcow2"), Some(0));
        assert_eq!(find_disk(&def, "sda"), Some(1));
        assert_eq!(find_disk(&def, "vdb"), None);
        assert_eq!(find_interface(&def, "vnet7"), Some(0));
        assert_eq!(find_interface(&def, "52:54:00:AA:BB:CC"), Some(0));
        assert_eq!(find_interface(&def, "52:54:00:00:00:01"), Some(1));
        assert_eq!(find_interface(&def, "52:54:00:00:00:02"), None);
        assert_eq!(find_interface(&def, "eth0"), None);
        assert_eq!(parse_mac("52:54:00:aa:bb"), None);
        assert_eq!(parse_mac("52:54:00:aa:bb:cc:dd"), None);
    }

    #[test]
    fn balloon_period_and_presence() {
        assert_eq!(balloon_period(&def()), Some(5));
        assert!(has_balloon(&def()));
        let none = parse_domain(&XML.replace(
            "<memballoon model='virtio'><stats period='5'/></memballoon>",
            "<memballoon model='none'/>",
        ))
        .unwrap();
        assert!(!has_balloon(&none));
        assert_eq!(balloon_period(&none), None);
        let implicit = parse_domain(&XML.replace(
            "<memballoon model='virtio'><stats period='5'/></memballoon>",
            "",
        ))
        .unwrap();
        assert!(has_balloon(&implicit));
    }

    #[test]
    fn config_record_of_an_inactive_domain() {
        let record = config_record(&snapshot(State::Shutoff), StatsGroups::ALL);
        assert_eq!(record.state, Some((State::Shutoff, Reason::Unknown)));
        let balloon = record.balloon.unwrap();
        assert_eq!((balloon.current_kib, balloon.maximum_kib), (131072, 262144));
        let vcpu = record.vcpu.unwrap();
        assert_eq!((vcpu.current, vcpu.maximum), (2, 4));
        assert_eq!(record.interfaces, None, "no host devices while shut off");
        let blocks = record.blocks.unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].path.as_deref(), Some("/img/web.qcow2"));
        assert_eq!(blocks[0].stats, None);
        assert_eq!(record.cpu, None);

        let only_state = config_record(
            &snapshot(State::Running),
            StatsGroups {
                state: true,
                ..Default::default()
            },
        );
        assert!(only_state.balloon.is_none() && only_state.blocks.is_none());
        let running = config_record(&snapshot(State::Running), StatsGroups::ALL);
        assert_eq!(running.interfaces.unwrap().len(), 2);
    }

    #[test]
    fn select_names_or_filters() {
        let list = DomainList::default();
        let mut on = snapshot(State::Running);
        on.def = Arc::new(
            parse_domain(&XML.replace(">web<", ">on<").replace(
                "6695eb01-f6a4-8304-79aa-97f2502e193f",
                "6695eb01-f6a4-8304-79aa-97f2502e1900",
            ))
            .unwrap(),
        );
        list.insert_loaded(on);
        list.insert_loaded(snapshot(State::Shutoff));
        let names = |query: &StatsQuery| -> Vec<String> {
            select(&list, query)
                .unwrap()
                .iter()
                .map(|s| s.def.name.clone())
                .collect()
        };
        assert_eq!(names(&StatsQuery::default()), ["on", "web"]);
        let active = StatsQuery {
            filter: ListFilter {
                active: true,
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(names(&active), ["on"]);
        let named = StatsQuery {
            domains: vec![DomainRef::Name("web".into()), DomainRef::Name("on".into())],
            ..Default::default()
        };
        assert_eq!(names(&named), ["web", "on"], "in the order asked");
        let missing = StatsQuery {
            domains: vec![DomainRef::Name("nope".into())],
            ..Default::default()
        };
        assert!(matches!(
            select(&list, &missing),
            Err(DomainError::NotFound(_))
        ));
        let both = StatsQuery {
            filter: active.filter.clone(),
            ..named
        };
        assert!(matches!(
            select(&list, &both),
            Err(DomainError::InvalidArg(_))
        ));
    }

    #[test]
    fn no_group_means_all() {
        assert_eq!(StatsGroups::default().or_all(), StatsGroups::ALL);
        let one = StatsGroups {
            block: true,
            ..Default::default()
        };
        assert_eq!(one.or_all(), one);
    }

    #[test]
    fn block_stats_sum() {
        let mut total = BlockStats::default();
        let one = BlockStats {
            rd_req: 1,
            rd_bytes: 512,
            flush_total_time_ns: 7,
            ..Default::default()
        };
        total.add(&one);
        total.add(&one);
        assert_eq!(total.rd_req, 2);
        assert_eq!(total.rd_bytes, 1024);
        assert_eq!(total.flush_total_time_ns, 14);
    }
}
